"""SegFormer backend with a tiny randomly initialised model saved to a temp directory."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_segformer(tmp_path_factory):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    names = {0: "wall", 1: "building", 2: "sky", 3: "floor", 4: "tree"}
    cfg = SegformerConfig(
        num_channels=3,
        num_encoder_blocks=4,
        depths=[1, 1, 1, 1],
        sr_ratios=[8, 4, 2, 1],
        hidden_sizes=[8, 16, 24, 32],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        num_labels=5,
        id2label=names,
        label2id={v: k for k, v in names.items()},
    )
    model = SegformerForSemanticSegmentation(cfg).eval()
    d = tmp_path_factory.mktemp("segformer-tiny")
    model.save_pretrained(d)
    (d / "preprocessor_config.json").write_text('{"size": {"height": 128, "width": 128}}')
    return d, model


def test_segformer_backend(tiny_segformer, monkeypatch, rng):
    from sempix.features import compute_features, segformer

    d, model = tiny_segformer
    monkeypatch.setenv("SEMPIX_SEGFORMER_DIR", str(d))
    img = rng.uniform(0, 1, (50, 90, 3)).astype(np.float32)
    fm = compute_features(img, "segformer", dim=0, strict=True)
    assert fm.backend == "segformer" and fm.semantic
    assert fm.features.shape == (50, 90, 16) and fm.features.dtype == np.float32
    assert fm.labels.shape == (50, 90) and fm.class_names == [
        "wall",
        "building",
        "sky",
        "floor",
        "tree",
    ]
    assert fm.labels.max() < 5
    # features are the classifier's input: the classifier applied to them gives the logits
    x = segformer.prepare(img, 128)
    assert x.shape == (64, 128, 3)  # 50x90 -> longest side 128, multiples of 32
    with torch.inference_mode():
        t = torch.from_numpy(x).permute(2, 0, 1)[None]
        hidden = {}
        h = model.decode_head.classifier.register_forward_hook(
            lambda m, a, o: hidden.update(inp=a[0], out=o)
        )
        model(pixel_values=t)
        h.remove()
        again = model.decode_head.classifier(hidden["inp"])
    np.testing.assert_allclose(again.numpy(), hidden["out"].numpy(), atol=1e-5)
    low = segformer.compute_lowres(img, d)
    np.testing.assert_allclose(low.features, hidden["inp"][0].permute(1, 2, 0).numpy(), atol=1e-5)
    np.testing.assert_allclose(low.logits, hidden["out"][0].permute(1, 2, 0).numpy(), atol=1e-5)
    assert fm.probs_lowres.shape == (16, 32, 5)
    # default dim 64 > 16 channels: all kept; PCA works too
    assert compute_features(img, "segformer", strict=True, cache=False).dim == 16
    pca = compute_features(img, "segformer", dim=3, reduce="pca", strict=True, cache=False)
    assert pca.dim == 3 and 0 <= pca.features.min() and pca.features.max() <= 1


def test_segformer_bad_directory(tmp_path, monkeypatch):
    from sempix.errors import ModelUnavailableError
    from sempix.features import compute_features

    monkeypatch.setenv("SEMPIX_SEGFORMER_DIR", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="config.json"):
        compute_features(np.zeros((8, 8, 3), np.float32), "segformer", strict=True)
