"""Real-model tests of the ade20k backend (skip when
SEMPIX_MODEL_DIR / SEMPIX_DATA_DIR are unset)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

from sempix.features import ade20k as A
from sempix.features import class_mask, compute_features, post

#: classes compared in the ADE20K sanity check: the 150 benchmark names whose first word equals
#: the first word of the full ADE20K object name in the annotation (e.g. "car, auto, automobile")
PIXEL_ACCURACY_FLOOR = 0.70


@pytest.fixture
def kodim05(data_dir):
    from sempix.image import load_rgb

    p = data_dir / "kodak24" / "kodim05.png"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    return load_rgb(p)


def test_ade20k_shapes_dtypes_and_contract(ade20k_available, rng):
    img = rng.uniform(0, 1, (120, 200, 3)).astype(np.float32)
    fm = compute_features(img, "ade20k", strict=True, cache=False)
    assert fm.backend == "ade20k" and fm.semantic is True
    assert fm.features.shape == (120, 200, 64) and fm.features.dtype == np.float32
    assert fm.labels.shape == (120, 200) and fm.labels.dtype == np.int32
    assert len(fm.class_names) == 151 and fm.class_names[0] == "others"
    assert fm.labels.min() >= 0 and fm.labels.max() < 151
    # 200 px -> 513 wide, 120 -> 308 tall; 129 grid crop: (308 - 1) // 4 + 1 = 77 rows
    assert fm.probs_lowres.shape == (77, 129, 151)
    np.testing.assert_allclose(fm.probs_lowres.sum(-1), 1, atol=1e-4)
    full = compute_features(img, "ade20k", dim=0, strict=True, cache=False)
    assert full.dim == 256 and full.features.min() >= 0  # ReLU output
    pca = compute_features(img, "ade20k", dim=3, reduce="pca", strict=True, cache=False)
    assert pca.dim == 3 and pca.features.min() >= 0 and pca.features.max() <= 1
    # random projection at low resolution == projection of the full upsampled map (linear)
    np.testing.assert_allclose(fm.features, post.project_random(full.features, 64, 0), atol=2e-3)


def test_feature_tensor_found_through_graph(ade20k_available):
    r = A.get_runner(ade20k_available)
    details = {d["index"]: d for d in r.interp.get_tensor_details()}
    assert tuple(details[r.feat_index]["shape"]) == (1, 129, 129, 256)
    assert tuple(details[r.logit_index]["shape"]) == (1, 129, 129, 151)
    # the logits are a 1x1 convolution of the features: check linearity on real activations
    x, _ = A.letterbox(np.random.default_rng(0).uniform(0, 1, (200, 300, 3)).astype(np.float32))
    f, lg = r.run(x)
    X = np.c_[f.reshape(-1, 256), np.ones(129 * 129)]
    coef, *_ = np.linalg.lstsq(X[::7], lg.reshape(-1, 151)[::7], rcond=None)
    assert np.abs(X @ coef - lg.reshape(-1, 151)).max() < 0.5


def test_labels_match_models_own_513_output(ade20k_available, kodim05):
    # on a 513x513 input there is no resizing: our labels must equal the argmax of the model's own
    # bilinear (align-corners) 513x513 output, which checks the grid geometry
    img = (
        np.asarray(Image.fromarray((kodim05 * 255).astype(np.uint8)).resize((513, 513)), np.float32)
        / 255
    )
    fm = compute_features(img, "ade20k", strict=True, cache=False)
    r = A.get_runner(ade20k_available)
    out = r.interp.get_output_details()[0]
    with r.lock:
        r.interp.set_tensor(r.input_index, A.letterbox(img)[0])
        r.interp.invoke()
        ref = np.argmax(r.interp.get_tensor(out["index"])[0], axis=-1)
    assert (fm.labels == ref).mean() > 0.995


@pytest.mark.parametrize("shape", [(1, 300), (300, 1), (2000, 50), (50, 2000), (3, 3)])
def test_ade20k_extreme_aspect_ratios(ade20k_available, shape, rng):
    img = rng.uniform(0, 1, shape + (3,)).astype(np.float32)
    fm = compute_features(img, "ade20k", dim=8, strict=True, cache=False)
    assert fm.features.shape == shape + (8,) and np.isfinite(fm.features).all()
    assert fm.labels.shape == shape


def test_ade20k_cache_hit(ade20k_available, kodim05):
    a = compute_features(kodim05, "ade20k")
    b = compute_features(kodim05, "ade20k")
    assert (a.meta["cache"], b.meta["cache"]) == ("miss", "hit")
    # the cache stores network-resolution float16 features (sempix.features.files): ~1e-3 relative
    scale = float(np.abs(a.features).max())
    np.testing.assert_allclose(a.features, b.features, atol=2e-3 * scale)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.probs_lowres, b.probs_lowres, atol=0.5 / 255 + 1e-6)
    assert b.class_names == a.class_names and b.semantic
    np.testing.assert_allclose(b.probs([7]), a.probs([7]), atol=0.5 / 255 + 1e-6)  # 8-bit probs


def test_interpreter_thread_safe(ade20k_available, rng):
    imgs = [rng.uniform(0, 1, (64, 80, 3)).astype(np.float32) for _ in range(2)]
    ref = [compute_features(im, dim=4, cache=False).features for im in imgs]
    out: dict[int, np.ndarray] = {}

    def work(i):
        out[i] = compute_features(imgs[i % 2], dim=4, cache=False).features

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(4):
        np.testing.assert_allclose(out[i], ref[i % 2], atol=1e-5)


def ade20k_pixel_accuracy(data_dir, **kw) -> tuple[float, float, list[tuple[str, float]]]:
    """Pixel accuracy of ade20k labels on the ADE20K sample images where names match.

    Returns (accuracy over all compared pixels, fraction of pixels compared, per-image accuracies).
    """
    from sempix.image import load_rgb

    files = sorted((data_dir / "ade20k").glob("ADE_*.jpg"))
    if not files:
        pytest.skip("no ADE20K sample images in $SEMPIX_DATA_DIR/ade20k")
    correct = total = pixels = 0
    per = []
    for jpg in files:
        img = load_rgb(jpg)
        fm = compute_features(img, "ade20k", dim=4, strict=True, cache=False, **kw)
        seg = np.asarray(Image.open(jpg.with_name(jpg.stem + "_seg.png")).convert("RGB")).astype(
            np.int32
        )
        cls = seg[..., 0] // 10 * 256 + seg[..., 1]  # ADE20K full-index class of each pixel
        objs = json.loads(jpg.with_suffix(".json").read_text())["annotation"]["object"]
        lookup = {n: i for i, n in enumerate(fm.class_names) if i > 0}
        gt = np.full(cls.shape, -1, np.int32)
        for o in objs:
            if o["parts"]["part_level"] != 0:
                continue
            first = o["name"].split(",")[0].strip()
            if first in lookup:
                gt[cls == o["name_ndx"]] = lookup[first]
        valid = gt >= 0
        c = int((fm.labels[valid] == gt[valid]).sum())
        correct += c
        total += int(valid.sum())
        pixels += valid.size
        per.append((jpg.name, c / max(1, int(valid.sum()))))
    return correct / total, total / pixels, per


def test_ade20k_pixel_accuracy_on_samples(ade20k_available, data_dir, record_property):
    acc, covered, per = ade20k_pixel_accuracy(data_dir)
    record_property("ade20k_pixel_accuracy", acc)
    print(f"ADE20K pixel accuracy {acc:.3f} over {covered:.0%} of pixels; per image {per}")
    assert covered > 0.5
    assert acc >= PIXEL_ACCURACY_FLOOR, per


def test_class_mask_on_real_image(ade20k_available, data_dir):
    from sempix.image import load_rgb

    p = data_dir / "ade20k" / "ADE_train_00016869.jpg"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    img = load_rgb(p)[::4, ::4]  # street scene: road at the bottom, sky at the top
    fm = compute_features(img, dim=4, strict=True, cache=False)
    sky = class_mask(fm, "sky")
    road = class_mask(fm, ["road", "sidewalk"])
    h = img.shape[0]
    assert sky[: h // 4].mean() > sky[3 * h // 4 :].mean()
    assert road[3 * h // 4 :].mean() > road[: h // 4].mean()


def test_cli_preview_kodim05(ade20k_available, data_dir, tmp_path):
    from click.testing import CliRunner

    from sempix.cli import cli

    src = data_dir / "kodak24" / "kodim05.png"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    prev, out = tmp_path / "p.png", tmp_path / "f.npz"
    r = CliRunner().invoke(
        cli, ["features", str(src), "--backend", "ade20k", "--preview", str(prev), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    from sempix.features.files import load_features

    fm = load_features(out)  # compact file: network-resolution float16, upsampled on load
    assert fm.features.shape == (500, 500, 64) and fm.semantic
    assert out.stat().st_size < 5e6
    names = list(fm.class_names)
    present = {names[i] for i in np.unique(fm.labels)}
    assert "person" in present  # motocross riders
    assert Image.open(prev).size[0] >= 3 * 500 * 0.9
