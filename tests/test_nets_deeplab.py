"""DeepLabV3+ MobileNetV2 module, TFLite converter and converted-weights cache."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch

from sempix.nets.deeplab import BlockSpec, DeepLabConfig, DeepLabV3Plus, same_pad

TINY = DeepLabConfig(
    num_classes=5,
    stem_channels=8,
    blocks=(
        BlockSpec(1, 8),
        BlockSpec(2, 8, 2),
        BlockSpec(2, 8),
        BlockSpec(2, 16, 2),
        BlockSpec(2, 16, 1, 1),
        BlockSpec(2, 24, 1, 2),
        BlockSpec(2, 24, 1, 2),
    ),
    aspp_channels=16,
    low_level_block=2,
    low_level_channels=8,
    decoder_channels=16,
)


def _tf_same_reference(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("n", [7, 8, 64, 65, 513, 512])
def test_same_pad_matches_tensorflow(n):
    x = torch.zeros(1, 1, n, n + 1)
    y = same_pad(x, 3, 2)
    top, bottom = _tf_same_reference(n, 3, 2)
    left, right = _tf_same_reference(n + 1, 3, 2)
    assert y.shape[-2:] == (n + top + bottom, n + 1 + left + right)


def test_default_config_is_the_ade20k_architecture():
    net = DeepLabV3Plus()
    n = sum(p.numel() for p in net.parameters())
    assert 2_000_000 < n < 3_000_000  # MobileNetV2 DeepLabV3+ (the int8 file is 2.4 MB)
    assert all(
        isinstance(m, torch.nn.Conv2d) for m in net.modules() if len(list(m.children())) == 0
    )
    assert net.stage_names() == ["stride2", "stride4", "stride8", "stride16", "stride32"]
    cfg = DeepLabConfig.from_dict(net.config.to_dict())
    assert cfg == net.config


@pytest.mark.parametrize("size", [(65, 65), (40, 57)])
def test_forward_shapes_any_size(size):
    torch.manual_seed(0)
    net = DeepLabV3Plus(TINY).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(x)
        up = net(x, upsample=True)
    h, w = (-(-size[0] // 4), -(-size[1] // 4))
    assert out.logits.shape == (2, 5, h, w)
    assert out.features.shape == (2, 16, h, w)
    assert up.logits.shape == (2, 5, *size)
    assert (out.features >= 0).all()  # after ReLU


def test_encoder_stages():
    torch.manual_seed(0)
    net = DeepLabV3Plus(TINY).eval()
    x = torch.rand(1, 3, 65, 65)
    st = net.encoder_stages(x, names=("stride4", "stride8", "stride16"))
    assert st["stride4"].shape == (1, 8, 17, 17)
    assert st["stride8"].shape[1] == 16 and st["stride8"].shape[2] == 9
    assert st["stride16"].shape == (1, 24, 9, 9)  # dilated: nominal 16, actual 8
    with pytest.raises(ValueError, match="unknown stage"):
        net.encoder_stages(x, names=("stride64",))


def test_gradients_reach_input_and_every_weight():
    torch.manual_seed(0)
    net = DeepLabV3Plus().train()  # the full ADE20K architecture, random weights
    for p in net.parameters():  # keep activations alive through the ReLUs
        torch.nn.init.normal_(p, 0.0, 0.05)
    x = torch.rand(1, 3, 33, 33, requires_grad=True)
    out = net(x)
    (out.logits.square().mean() + out.features.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


# ------------------------------------------------------------------------------------------
# converter (real model file)


def test_conversion_deterministic_and_complete(ade20k_available):
    from sempix.nets.tflite import convert_deeplab_tflite

    data = ade20k_available.read_bytes()
    cfg1, sd1 = convert_deeplab_tflite(data)
    cfg2, sd2 = convert_deeplab_tflite(data)
    assert cfg1 == cfg2 == DeepLabConfig()
    assert sd1.keys() == sd2.keys() == DeepLabV3Plus(cfg1).state_dict().keys()
    for k in sd1:
        assert sd1[k].dtype == torch.float32
        assert torch.equal(sd1[k], sd2[k]), k
    net = DeepLabV3Plus(cfg1)
    net.load_state_dict(sd1)  # strict


def test_conversion_rejects_other_files(tmp_path):
    from sempix.nets.tflite import TFLiteConversionError, convert_deeplab_tflite

    with pytest.raises(TFLiteConversionError):
        convert_deeplab_tflite(b"\0" * 64)


def _patch_classifier_bias(data: bytes) -> bytes:
    """Change one value of the logits bias inside the flatbuffer (keeps the file valid)."""
    from sempix.nets.tflite import read_graph

    g = read_graph(data)
    op = next(o for o in g.ops if o.name == "CONV_2D" and g.shapes[o.outputs[0]][-1] == 151)
    bias = g.consts[op.inputs[2]].astype(np.float32)
    raw = bias.tobytes()
    at = data.find(raw)
    assert at > 0 and data.find(raw, at + 1) < 0
    new = bias.copy()
    new[5] += 1.0
    return data[:at] + new.tobytes() + data[at + len(raw) :]


def test_cache_atomic_keyed_by_sha_and_invalidated(
    ade20k_available, tmp_path, tmp_cache, monkeypatch
):
    from sempix.features import ade20k_torch as at

    f = tmp_path / "model.tflite"
    shutil.copyfile(ade20k_available, f)
    p1 = at.load_state(f)
    sha1 = hashlib.sha256(f.read_bytes()).hexdigest()
    cp1 = at.cache_path(sha1)
    assert cp1.is_file() and p1["sha256"] == sha1 and p1["cache"] == str(cp1)
    assert tmp_cache in cp1.parents
    assert not list(cp1.parent.glob("*.part"))
    # second load comes from the cache (conversion not called)
    monkeypatch.setattr(at, "convert_file", lambda p: pytest.fail("converted again"))
    p2 = at.load_state(f)
    assert all(torch.equal(p1["state_dict"][k], p2["state_dict"][k]) for k in p1["state_dict"])
    monkeypatch.undo()
    # the file changes -> a new key, a new conversion with the new weights
    f.write_bytes(_patch_classifier_bias(f.read_bytes()))
    p3 = at.load_state(f)
    assert p3["sha256"] != sha1 and at.cache_path(p3["sha256"]).is_file()
    d = p3["state_dict"]["classifier.bias"] - p1["state_dict"]["classifier.bias"]
    assert d[5].item() == pytest.approx(1.0, abs=1e-5) and d.abs().sum().item() == pytest.approx(
        1.0, abs=1e-4
    )
    # a truncated cache file is converted again (and rewritten whole)
    cp3 = at.cache_path(p3["sha256"])
    cp3.write_bytes(cp3.read_bytes()[:1000])
    p4 = at.load_state(f)
    assert torch.equal(p4["state_dict"]["classifier.bias"], p3["state_dict"]["classifier.bias"])
    assert cp3.stat().st_size > 1_000_000


def test_cache_not_writable_still_converts(ade20k_available, tmp_path, monkeypatch):
    from sempix.features import ade20k_torch as at

    def boom(obj, path):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(at, "_atomic_save", boom)
    payload = at.load_state(ade20k_available)
    assert "cache" not in payload and len(payload["state_dict"]) > 100
