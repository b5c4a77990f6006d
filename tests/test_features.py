"""Unit tests of sempix.features (no model needed): post-
processing, cache, lowlevel, fallback, CLI."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from click.testing import CliRunner

from sempix._runtime import reset_warnings
from sempix.errors import InputError, ModelUnavailableError
from sempix.features import FeatureMap, class_mask, compute_features, pca_rgb, post
from sempix.features import cache as fcache
from sempix.features.ade20k import ADE20K_CLASSES, grid_coords, letterbox
from sempix.features.lowlevel import DIM as LOW_DIM
from sempix.features.lowlevel import lowlevel_features
from sempix.ops import resize

from reference.ops import argmax_upsampled_reference, guided_filter_reference, upsample_reference


@pytest.fixture
def img(rng):
    """A small synthetic image: two colour regions plus noise."""
    a = np.zeros((37, 53, 3), np.float32)
    a[:, :25] = (0.8, 0.2, 0.1)
    a[:, 25:] = (0.1, 0.3, 0.9)
    return np.clip(a + 0.05 * rng.standard_normal(a.shape).astype(np.float32), 0, 1)


@pytest.fixture
def offline(monkeypatch):
    """No model anywhere: offline, no model dir; reset the once-per-process warning."""
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    monkeypatch.delenv("SEMPIX_MODEL_DIR", raising=False)
    monkeypatch.delenv("SEMPIX_SEGFORMER_DIR", raising=False)
    reset_warnings()
    yield
    reset_warnings()


# ---------------------------------------------------------------- upsampling


def test_upsample_matches_reference(rng):
    low = rng.standard_normal((7, 9, 5)).astype(np.float32)
    ys = np.sort(rng.uniform(-1, 8, 23))
    xs = rng.uniform(0, 8, 17)
    np.testing.assert_allclose(
        post.upsample(low, ys, xs), upsample_reference(low, ys, xs), atol=1e-5
    )
    # 2-D input and exact grid points
    np.testing.assert_allclose(
        post.upsample(low[..., 0], np.arange(7.0), np.arange(9.0)), low[..., 0], atol=1e-6
    )


def test_sample_coords_identity_and_align_corners():
    np.testing.assert_allclose(post.sample_coords(10, 10), np.arange(10))
    # image of 513 px in a stride-4 align-corners grid: pixel 4k sits on sample k
    c = post.sample_coords(513, 513, stride=4)
    assert c[0] == 0 and c[4] == 1 and c[512] == 128
    # clipping to the valid extent
    assert post.sample_coords(5, 2).min() >= 0 and post.sample_coords(5, 2).max() <= 1


def test_resize_bilinear_constant_and_shape(rng):
    a = np.full((4, 6, 2), 3.0, np.float32)
    out = resize(a, (9, 13))
    assert out.shape == (9, 13, 2) and np.allclose(out, 3.0)


# ---------------------------------------------------------------- reduction


def test_random_projection_seeded_and_norm_preserving(rng):
    r1 = post.random_projection(256, 128, seed=3)
    r2 = post.random_projection(256, 128, seed=3)
    r3 = post.random_projection(256, 128, seed=4)
    assert r1.shape == (256, 128) and r1.dtype == np.float32
    assert np.array_equal(r1, r2) and not np.allclose(r1, r3)
    x = rng.standard_normal((2000, 256)).astype(np.float32)
    ratios = np.sum((x @ r1) ** 2, 1) / np.sum(x**2, 1)
    assert abs(ratios.mean() - 1.0) < 0.05
    # pairwise distances roughly preserved too
    d0 = np.linalg.norm(x[:500] - x[500:1000], axis=1)
    d1 = np.linalg.norm((x[:500] - x[500:1000]) @ r1, axis=1)
    assert abs(np.mean(d1 / d0) - 1) < 0.05
    with pytest.raises(InputError):
        post.random_projection(10, 0)


def test_projection_commutes_with_upsampling(rng):
    low = rng.standard_normal((6, 8, 32)).astype(np.float32)
    ys, xs = post.sample_coords(20, 6), post.sample_coords(25, 8)
    a = post.project_random(post.upsample(low, ys, xs), 8, seed=1)
    b = post.upsample(post.project_random(low, 8, seed=1), ys, xs)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_pca_reduce_range_and_determinism(rng):
    f = rng.standard_normal((20, 30, 16)).astype(np.float32) * np.linspace(
        5, 0.1, 16, dtype=np.float32
    )
    out, info = post.pca_reduce(f, 3)
    assert out.shape == (20, 30, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out.min(axis=(0, 1)), 0, atol=1e-6)
    np.testing.assert_allclose(out.max(axis=(0, 1)), 1, atol=1e-6)
    # first axis follows the highest-variance input channel
    assert abs(info["axes"][0, 0]) > 0.9
    np.testing.assert_array_equal(out, post.pca_reduce(f, 3)[0])
    rgb = pca_rgb(f)
    assert rgb.shape == (20, 30, 3) and 0 <= rgb.min() and rgb.max() <= 1
    with pytest.raises(InputError):
        pca_rgb(f[..., 0])
    # constant input: no NaN
    assert np.isfinite(pca_rgb(np.ones((4, 4, 5), np.float32))).all()


# ---------------------------------------------------------------- guided filter


def test_box_filter_matches_brute_force(rng):
    a = rng.standard_normal((9, 11, 2))
    r = 2
    ref = np.zeros_like(a)
    for y in range(9):
        for x in range(11):
            ref[y, x] = a[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].mean(axis=(0, 1))
    np.testing.assert_allclose(post.box_filter(a, r), ref, atol=1e-10)


def test_guided_filter_matches_slow_reference(rng):
    guide = rng.uniform(0, 1, (10, 12, 3))
    src = rng.standard_normal((10, 12, 3)).astype(np.float32)
    out = post.guided_filter(guide, src, radius=2, eps=0.01, chunk=2)
    for c in range(3):
        ref = guided_filter_reference(guide, src[..., c], 2, 0.01)
        np.testing.assert_allclose(out[..., c], ref, atol=1e-4)


def test_guided_filter_is_edge_preserving(rng):
    # noise is smoothed inside regions while a step that coincides with the image edge survives
    # (a plain box filter of the same radius smears it)
    h, w = 24, 40
    guide = np.zeros((h, w, 3))
    guide[:, 20:] = 1.0
    truth = np.broadcast_to((np.arange(w) >= 20).astype(np.float32), (h, w))
    src = truth + 0.1 * rng.standard_normal((h, w)).astype(np.float32)
    out = post.guided_filter(guide, src, radius=4, eps=1e-4)
    box = post.box_filter(src, 4)
    err = np.abs(out - truth).mean()
    assert err < 0.5 * np.abs(src - truth).mean()
    assert err < 0.5 * np.abs(box - truth).mean()


# ---------------------------------------------------------------- labels


def test_argmax_upsampled_against_reference(rng):
    lg = rng.standard_normal((5, 6, 12)).astype(np.float32)
    ys, xs = post.sample_coords(17, 5), post.sample_coords(19, 6)
    ref = argmax_upsampled_reference(lg, ys, xs)
    np.testing.assert_array_equal(post.argmax_upsampled(lg, ys, xs, top=12), ref)
    # the default candidate set (top 4 of each neighbour) agrees on smooth logits
    smooth = (
        post.upsample(
            rng.standard_normal((4, 4, 30)).astype(np.float32),
            post.sample_coords(9, 4),
            post.sample_coords(9, 4),
        )
        * 3
    )
    ys, xs = post.sample_coords(40, 9), post.sample_coords(40, 9)
    agree = (
        post.argmax_upsampled(smooth, ys, xs) == argmax_upsampled_reference(smooth, ys, xs)
    ).mean()
    assert agree > 0.99


def test_softmax_rows_sum_to_one(rng):
    p = post.softmax(rng.standard_normal((3, 4, 7)) * 50)
    np.testing.assert_allclose(p.sum(-1), 1, atol=1e-5)
    assert p.dtype == np.float32


# ---------------------------------------------------------------- letterbox geometry


@pytest.mark.parametrize(
    "shape", [(1, 700), (700, 1), (2000, 50), (50, 2000), (1, 1), (513, 513), (300, 500)]
)
def test_letterbox_extreme_aspect_ratios(shape, rng):
    H, W = shape
    im = rng.uniform(0, 1, (H, W, 3)).astype(np.float32)
    x, (h, w) = letterbox(im)
    assert x.shape == (1, 513, 513, 3) and x.dtype == np.float32
    assert max(h, w) == 513 and h >= 1 and w >= 1
    assert abs(h / w - H / W) <= max(1 / w, 1 / h) * (H / W + 1) + 1e-9
    assert np.all(x[0, h:] == 0) and np.all(x[0, :, w:] == 0)  # mid-grey padding
    assert -1 <= x.min() and x.max() <= 1
    ys, xs, hc, wc = grid_coords(H, W, h, w)
    assert ys.shape == (H,) and xs.shape == (W,)
    assert 1 <= hc <= 129 and 1 <= wc <= 129
    assert ys.min() >= 0 and ys.max() <= hc - 1 and xs.max() <= wc - 1
    # stride-4 crop covers the image extent: the last content pixel maps within a sample of the edge
    assert (h - 1) / 4 - (hc - 1) < 1


# ---------------------------------------------------------------- lowlevel backend


def test_lowlevel_features_channels(img):
    f = lowlevel_features(img)
    assert f.shape == img.shape[:2] + (LOW_DIM,) and f.dtype == np.float32
    from skimage.color import rgb2lab

    np.testing.assert_allclose(f[..., 0], rgb2lab(img)[..., 0] / 100, atol=1e-4)
    assert f[0, 0, 9] == 0 and f[-1, 0, 9] > 0 and f[0, -1, 10] > 0
    # the two colour regions differ clearly in the region-colour channels
    assert np.linalg.norm(f[18, 5, 3:6] - f[18, 45, 3:6]) > 0.3


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (1, 1), (3, 200)])
def test_lowlevel_strips(shape, rng):
    im = rng.uniform(0, 1, shape + (3,)).astype(np.float32)
    fm = compute_features(im, "lowlevel", cache=False)
    assert fm.features.shape == shape + (LOW_DIM,)
    assert np.isfinite(fm.features).all()


def test_compute_features_lowlevel_contract(img):
    fm = compute_features(img, "lowlevel")
    assert isinstance(fm, FeatureMap)
    assert fm.backend == "lowlevel" and fm.semantic is False
    assert fm.labels is None and fm.class_names is None and fm.probs_lowres is None
    assert fm.features.dtype == np.float32 and fm.shape == img.shape[:2] and fm.dim == LOW_DIM
    pca = compute_features(img, "lowlevel", dim=3, reduce="pca")
    assert pca.dim == 3 and pca.features.min() >= 0 and pca.features.max() <= 1
    rp = compute_features(img, "lowlevel", dim=5)
    assert rp.dim == 5


def test_compute_features_accepts_uint8_grey_and_path(img, tmp_path):
    u8 = (img * 255).astype(np.uint8)
    assert compute_features(u8, "lowlevel", cache=False).shape == img.shape[:2]
    assert compute_features(img[..., 0], "lowlevel", cache=False).shape == img.shape[:2]
    from PIL import Image

    p = tmp_path / "x.png"
    Image.fromarray(u8).save(p)
    assert compute_features(str(p), "lowlevel", cache=False).shape == img.shape[:2]


@pytest.mark.parametrize(
    "kwargs", [{"backend": "ade2k"}, {"reduce": "svd"}, {"dim": -1}, {"dim": 2.5}]
)
def test_bad_arguments_raise_input_error(img, kwargs):
    with pytest.raises(InputError):
        compute_features(img, **kwargs)


def test_bad_images_raise_input_error(img):
    with pytest.raises(InputError):
        compute_features(np.zeros((4, 4, 5)), "lowlevel")
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError):
        compute_features(bad, "lowlevel")
    with pytest.raises(InputError, match="did you mean 'ade20k'"):
        compute_features(img, "ade20kk")


# ---------------------------------------------------------------- fallback


def test_fallback_one_warning_and_not_semantic(img, offline, caplog):
    with caplog.at_level(logging.WARNING, logger="sempix.features"):
        fm = compute_features(img, "ade20k")
        fm2 = compute_features(img, "ade20k", cache=False)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "\n" not in msg and "deeplabv3" in msg and "NOT semantic" in msg
    for f in (fm, fm2):
        assert f.backend == "lowlevel" and f.semantic is False and f.labels is None
        assert f.meta["requested_backend"] == "ade20k" and "fallback" in f.meta
    with pytest.raises(ModelUnavailableError):
        compute_features(img, "ade20k", strict=True)


def test_segformer_fallback_when_no_directory(img, offline, caplog):
    with caplog.at_level(logging.WARNING, logger="sempix.features"):
        fm = compute_features(img, "segformer")
    assert fm.backend == "lowlevel" and not fm.semantic
    assert sum(r.levelno >= logging.WARNING for r in caplog.records) == 1
    with pytest.raises(ModelUnavailableError):
        compute_features(img, "segformer", strict=True)


# ---------------------------------------------------------------- cache


def test_cache_hit_identical_and_keyed_by_settings(img, tmp_cache):
    a = compute_features(img, "lowlevel", dim=5)
    assert a.meta["cache"] == "miss"
    b = compute_features(img, "lowlevel", dim=5)
    assert b.meta["cache"] == "hit"
    # lowlevel entries keep the box-filtered channels on their float16 grid and recompute the
    # rest from the image (sempix.features.lowlevel.compact): the same numbers
    assert not b.materialised
    np.testing.assert_array_equal(a.features, b.features)
    assert b.features.dtype == np.float32 and b.backend == "lowlevel" and b.semantic is False
    # writable (copy-on-write): callers may modify in place without touching the cache
    b0 = b.features[0, 0, 0]
    b.features[0, 0, 0] = 123.0
    assert compute_features(img, "lowlevel", dim=5).features[0, 0, 0] == b0
    # other settings / seed / image -> miss
    assert compute_features(img, "lowlevel", dim=4).meta["cache"] == "miss"
    assert compute_features(img, "lowlevel", dim=5, seed=1).meta["cache"] == "miss"
    assert compute_features(img, "lowlevel", dim=5, guided=True).meta["cache"] == "miss"
    img2 = img.copy()
    img2[0, 0, 0] = 1 - img2[0, 0, 0]
    assert compute_features(img2, "lowlevel", dim=5).meta["cache"] == "miss"
    # cache=False neither reads nor writes
    n = len(fcache.entries())
    assert compute_features(img, "lowlevel", dim=7, cache=False).meta["cache"] == "off"
    assert len(fcache.entries()) == n
    assert fcache.cache_root() == tmp_cache / "features"
    assert not [p for p in fcache.cache_root().iterdir() if p.name.startswith(".tmp")]


def test_cache_lru_eviction(img, monkeypatch, rng):
    imgs = [np.clip(img + 0.01 * i, 0, 1) for i in range(3)]
    compute_features(imgs[0], "lowlevel")
    size = fcache.entries()[0][1]
    monkeypatch.setenv("SEMPIX_FEATURE_CACHE_MB", str(2.5 * size / 2**20))  # room for two entries
    compute_features(imgs[1], "lowlevel")
    assert compute_features(imgs[0], "lowlevel").meta["cache"] == "hit"  # 0 is now most recent
    compute_features(imgs[2], "lowlevel")  # evicts 1 (least recently used)
    assert len(fcache.entries()) == 2
    assert compute_features(imgs[0], "lowlevel").meta["cache"] == "hit"
    assert compute_features(imgs[1], "lowlevel").meta["cache"] == "miss"
    # an entry bigger than the cap is not stored
    monkeypatch.setenv("SEMPIX_FEATURE_CACHE_MB", "0")
    assert not fcache.store("k" * 40, {"features": np.zeros((10, 10, 3), np.float32)}, {})


def test_cache_survives_corrupt_entry(img):
    compute_features(img, "lowlevel")
    (entry,) = [e[2] for e in fcache.entries()]
    (entry / "features.npz").write_bytes(b"garbage")
    fm = compute_features(img, "lowlevel")
    assert fm.meta["cache"] == "miss" and fm.features.shape[2] == LOW_DIM


# ---------------------------------------------------------------- class_mask


def _fake_semantic_map():
    labels = np.array([[1, 2], [3, 3]], np.int32)
    return FeatureMap(
        features=np.zeros((2, 2, 4), np.float32),
        backend="ade20k",
        semantic=True,
        labels=labels,
        class_names=list(ADE20K_CLASSES),
    )


def test_class_mask():
    fm = _fake_semantic_map()
    np.testing.assert_array_equal(class_mask(fm, "sky"), [[False, False], [True, True]])
    np.testing.assert_array_equal(
        class_mask(fm, ["Wall", "building"]), [[True, True], [False, False]]
    )
    np.testing.assert_array_equal(class_mask(fm, "wall,sky"), [[True, False], [True, True]])
    with pytest.raises(InputError, match="'tree'"):
        class_mask(fm, "tre")
    with pytest.raises(InputError, match="unknown class name"):
        class_mask(fm, "zzzzqqq")
    low = FeatureMap(features=np.zeros((2, 2, 4), np.float32), backend="lowlevel", semantic=False)
    with pytest.raises(InputError, match="no class labels"):
        class_mask(low, "sky")
    assert [n for _, n, _ in fm.present_classes()] == ["sky", "wall", "building"]


def test_class_names_builtin_list():
    assert len(ADE20K_CLASSES) == 151 and ADE20K_CLASSES[0] == "others"
    assert len(set(ADE20K_CLASSES)) == 151


# ---------------------------------------------------------------- CLI


def _write_png(path, arr):
    from PIL import Image

    Image.fromarray((arr * 255).astype(np.uint8)).save(path)


def test_cli_lowlevel_npz_and_preview(img, tmp_path):
    from sempix.cli import cli

    src = tmp_path / "in.png"
    _write_png(src, img)
    out, prev = tmp_path / "f.npz", tmp_path / "p.png"
    r = CliRunner().invoke(
        cli,
        [
            "features",
            str(src),
            "-o",
            str(out),
            "--backend",
            "lowlevel",
            "--preview",
            str(prev),
            "--dim",
            "4",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert str(z["backend"]) == "lowlevel" and "features" not in z  # compact: rebuilt on load
    assert z["lowlevel_smooth"].dtype == np.float16 and z["project"].shape == (11, 4)
    assert not bool(z["semantic"]) and "labels" not in z
    from sempix.features.files import load_features

    assert load_features(out).features.shape == img.shape[:2] + (4,)
    from PIL import Image

    assert Image.open(prev).size[0] > img.shape[1]
    # --features alias
    r = CliRunner().invoke(
        cli, ["features", str(src), "-o", str(out), "--features", "lowlevel", "-q"]
    )
    assert r.exit_code == 0, r.output


def test_cli_bad_input_exit_2(img, tmp_path):
    from sempix.cli import cli

    src = tmp_path / "in.png"
    _write_png(src, img)
    run = CliRunner().invoke
    r = run(cli, ["features", str(tmp_path / "missing.png"), "-o", str(tmp_path / "f.npz")])
    assert r.exit_code == 2 and "error:" in r.output
    r = run(cli, ["features", str(src)])
    assert r.exit_code == 2 and "nothing to do" in r.output
    r = run(cli, ["features", str(src), "-o", str(tmp_path / "f.txt"), "--backend", "lowlevel"])
    assert r.exit_code == 2
    r = run(cli, ["features", str(src), "--preview", str(src), "--backend", "lowlevel"])
    assert r.exit_code == 2 and "refusing" in r.output
    r = run(cli, ["features", str(src), "-o", str(tmp_path / "f.npz"), "--backend", "nope"])
    assert r.exit_code == 2
    assert not (tmp_path / "f.npz").exists()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = run(cli, ["features", str(bad), "-o", str(tmp_path / "f.npz"), "--backend", "lowlevel"])
    assert r.exit_code == 2 and not (tmp_path / "f.npz").exists()


def test_cli_offline_fallback_succeeds_with_one_warning(img, tmp_path, offline):
    from sempix.cli import cli

    src = tmp_path / "in.png"
    _write_png(src, img)
    reset_warnings()
    r = CliRunner().invoke(cli, ["features", str(src), "--preview", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    warn_lines = [ln for ln in r.output.splitlines() if "WARNING" in ln]
    assert len(warn_lines) == 1 and "NOT semantic" in warn_lines[0], r.output
    assert "not semantic" in r.output.splitlines()[-1]
    assert (tmp_path / "p.png").exists()
    r = CliRunner().invoke(
        cli, ["features", str(src), "--preview", str(tmp_path / "p.png"), "--strict"]
    )
    assert r.exit_code == 2


def test_fast_guided_filter_close_to_exact(rng):
    # smooth guide and source: the subsampled (fast) filter approximates the exact one
    yy, xx = np.mgrid[0:64, 0:80] / 64.0
    guide = np.stack([np.sin(3 * xx), np.cos(2 * yy), xx * yy], -1) * 0.5 + 0.5
    src = np.stack([np.sin(4 * xx + yy), xx - yy], -1).astype(np.float32)
    exact = post.guided_filter(guide, src, radius=8, eps=1e-2, subsample=1)
    fast = post.guided_filter(guide, src, radius=8, eps=1e-2, subsample=4)
    assert fast.shape == src.shape and fast.dtype == np.float32
    assert np.abs(fast - exact).mean() < 0.02


def test_cli_list_classes(monkeypatch):
    from sempix.cli import cli

    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    monkeypatch.delenv("SEMPIX_MODEL_DIR", raising=False)
    r = CliRunner().invoke(cli, ["features", "--list-classes"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 151 and lines[0] == "0\tothers" and lines[21] == "21\tcar"
    r = CliRunner().invoke(cli, ["features", "--list-classes", "--backend", "lowlevel"])
    assert r.exit_code == 2
