"""Compact feature files and cache entries (sempix.features.files): float16 round trip budgets."""

from __future__ import annotations

import numpy as np
import pytest

from sempix.features import FeatureMap, compute_features
from sempix.features import cache as fcache
from sempix.features.files import load_features, pack, save_features, unpack
from sempix.features.post import sample_coords, upsample


def _semantic_map(rng, H=90, W=120, h=24, w=31, D=16, C=6):
    lr = rng.normal(0.0, 1.0, (h, w, D)).astype(np.float32)
    ys, xs = sample_coords(H, h), sample_coords(W, w)
    logits = rng.normal(0.0, 2.0, (h, w, C)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = upsample(logits, ys, xs).argmax(-1).astype(np.int32)
    return FeatureMap(
        features=upsample(lr, ys, xs),
        backend="ade20k",
        semantic=True,
        labels=labels,
        class_names=[f"c{i}" for i in range(C)],
        probs_lowres=probs.astype(np.float32),
        meta={"dim": D},
        lowres=(lr, ys, xs),
    )


def _pair_distances(F, rng, n=4000):
    H, W = F.shape[:2]
    a = rng.integers(0, H * W, n)
    b = rng.integers(0, H * W, n)
    X = F.reshape(-1, F.shape[2])
    return np.abs(X[a] - X[b]).sum(1)


def test_round_trip_distance_budget(rng):
    fm = _semantic_map(rng)
    got = unpack(
        pack(fm.features, labels=fm.labels, probs_lowres=fm.probs_lowres, lowres=fm.lowres)
    )
    assert got["features"] is None  # built lazily
    assert got["shape"] == fm.shape and got["dim"] == fm.dim
    got["features"] = got["build"]()
    assert got["features"].dtype == np.float32 and got["features"].shape == fm.features.shape
    d0 = _pair_distances(fm.features, np.random.default_rng(1))
    d1 = _pair_distances(got["features"], np.random.default_rng(1))
    # float16 keeps 11 significant bits: pixel L1 distances within 1e-3 of their mean scale
    err = np.abs(d1 - d0)
    assert err.max() <= 2e-3 * d0.mean(), (err.max(), d0.mean())
    assert np.median(err) <= 5e-4 * d0.mean()
    np.testing.assert_array_equal(got["labels"], fm.labels)
    assert np.abs(got["probs_lowres"] - fm.probs_lowres).max() <= 0.5 / 255 + 1e-6


def test_compact_is_small_and_full_is_exact(rng, tmp_path):
    fm = _semantic_map(rng, H=300, W=400)
    small, full = tmp_path / "f.npz", tmp_path / "full.npz"
    save_features(small, fm)
    save_features(full, fm, full=True)
    mp = 300 * 400 / 1e6
    assert small.stat().st_size / mp < 5e6  # <= 5 MB per megapixel
    assert full.stat().st_size > 10 * small.stat().st_size
    a, b = load_features(small), load_features(full)
    np.testing.assert_array_equal(b.features, fm.features)  # full: float32, exact
    np.testing.assert_allclose(a.features, fm.features, atol=4e-3 * np.abs(fm.features).max())
    assert a.class_names == fm.class_names and a.semantic and a.backend == "ade20k"
    np.testing.assert_array_equal(a.labels, fm.labels)
    assert a.lowres is not None and a.lowres[0].shape == fm.lowres[0].shape
    # probs() of a loaded map still upsamples with the stored grid
    assert a.probs([0, 1]).shape == (300, 400, 2)


def test_lowlevel_pca_is_float16_full_res(img_small, tmp_path):
    fm = compute_features(img_small, "lowlevel", dim=3, reduce="pca", cache=False)
    assert fm.lowres is None and fm.compact is None
    z = pack(fm.features)
    assert z["features"].dtype == np.float16 and "features_lowres" not in z
    p = save_features(tmp_path / "l.npz", fm)
    np.testing.assert_allclose(load_features(p).features, fm.features, rtol=1e-3, atol=1e-3)


def _photo_like(rng, H, W):
    """Smooth regions with sharp edges and a little texture, 8-bit (as a decoded JPEG)."""
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in range(3)], -1)
    img[(xx - 0.4) ** 2 + (yy - 0.35) ** 2 < 0.04] = (0.9, 0.2, 0.1)
    img[: H // 3, W // 2 :] = (0.2, 0.4, 0.8)
    img = img + rng.normal(0.0, 0.02, img.shape)
    return (np.rint(np.clip(img, 0.0, 1.0) * 255) / np.float32(255)).astype(np.float32)


@pytest.mark.parametrize("dim", [0, 6])
def test_lowlevel_compact_rebuild_budget(rng, tmp_path, dim):
    img = _photo_like(rng, 480, 640)
    fm = compute_features(img, "lowlevel", dim=dim, cache=False)
    assert fm.compact is not None and fm.lowres is None
    p = save_features(tmp_path / "l.npz", fm)
    mp = 480 * 640 / 1e6
    assert p.stat().st_size / mp < 5e6  # <= 5 MB per megapixel (was 22 MB of float16)
    with np.load(p) as z:
        assert z["source_rgb"].dtype == np.uint8  # an 8-bit image is stored exactly
    got = load_features(p)
    assert not got.materialised and got.shape == fm.shape and got.dim == fm.dim
    F0, F1 = fm.features, got.features
    assert got.materialised and F1.dtype == np.float32
    # rebuilt from the exactly stored 8-bit image and the float16 grid that lowlevel_features
    # itself interpolates: equal to the fresh map
    np.testing.assert_array_equal(F1, F0)


def test_lowlevel_grid_close_to_exact_box_averages(rng):
    """The interpolated box channels stay close to the exact ones (pixel distances)."""
    from sempix.features import lowlevel

    img = _photo_like(rng, 240, 320)
    F = lowlevel.lowlevel_features(img)
    exact = F.copy()
    H, W = img.shape[:2]
    r = lowlevel.radius(H, W)
    L = (F[..., 0] * 100.0).astype(np.float64)
    exact[..., 3:6] = lowlevel.box_filter(F[..., 0:3].astype(np.float64) * 100.0, 2 * r) / 100.0
    for ch, rad in ((6, r), (7, 2 * r)):
        m = lowlevel.box_filter(L, rad)
        m2 = lowlevel.box_filter(L * L, rad)
        exact[..., ch] = np.sqrt(np.maximum(m2 - m * m, 0.0)) / 25.0
    d0 = _pair_distances(exact[..., :8], np.random.default_rng(1))
    d1 = _pair_distances(F[..., :8], np.random.default_rng(1))
    err = np.abs(d1 - d0)
    assert np.median(err) <= 5e-3 * d0.mean(), (np.median(err), d0.mean())
    assert np.percentile(err, 99) <= 3e-2 * d0.mean(), (np.percentile(err, 99), d0.mean())


def test_lowlevel_cache_hit_is_lazy_and_small(rng, tmp_cache):
    img = _photo_like(rng, 200, 260)
    fm = compute_features(img, "lowlevel")
    hit = compute_features(img, "lowlevel")
    assert hit.meta["cache"] == "hit" and not hit.materialised
    (entry,) = fcache.entries()
    assert entry[1] < 0.08 * fm.features.nbytes  # smooth channels only, every 2nd pixel
    np.testing.assert_array_equal(hit.features, fm.features)  # rebuilt: the same numbers


def test_guided_file_is_rebuilt_from_the_image(rng, tmp_path):
    img = _photo_like(rng, 120, 160)
    fm = _semantic_map(rng, H=120, W=160)
    from sempix.ops.filters import guided_filter

    guided = FeatureMap(
        features=guided_filter(img, fm.features, radius=2, eps=1e-3),
        backend="ade20k",
        semantic=True,
        labels=fm.labels,
        class_names=fm.class_names,
        probs_lowres=fm.probs_lowres,
        compact={"features_lowres": fm.lowres[0].astype(np.float16), "grid_ys": fm.lowres[1],
                 "grid_xs": fm.lowres[2], "guided": np.array([2, 1e-3, 0.0])},
        source=img,
    )
    p = save_features(tmp_path / "g.npz", guided)
    assert p.stat().st_size < 0.2 * guided.features.astype(np.float16).nbytes
    got = load_features(p)
    assert not got.materialised and got.shape == (120, 160)
    np.testing.assert_allclose(
        got.features, guided.features, atol=4e-3 * np.abs(guided.features).max()
    )


def test_lazy_map_pickles_built(rng):
    import pickle

    fm = _semantic_map(rng)
    lazy = FeatureMap(backend="ade20k", semantic=True, lowres=fm.lowres)
    assert not lazy.materialised and lazy.shape == fm.shape and lazy.dim == fm.dim
    assert "lazy" in repr(lazy)
    back = pickle.loads(pickle.dumps(lazy))
    assert back.materialised
    np.testing.assert_array_equal(back.features, fm.features)
    assert lazy.full() is lazy.features and lazy.materialised  # built once, then kept
    lazy.features = np.zeros((3, 4, 2), np.float32)  # callers may replace the map
    assert lazy.shape == (3, 4) and lazy.dim == 2


def test_cache_entry_stores_network_resolution(rng, tmp_cache):
    fm = _semantic_map(rng, H=300, W=400)
    assert fcache.store(
        "a" * 40,
        {
            "features": fm.features,
            "labels": fm.labels,
            "probs_lowres": fm.probs_lowres,
            "lowres": fm.lowres,
        },
        {"x": 1},
    )
    (entry,) = [e for e in fcache.entries()]
    assert entry[1] < 0.1 * fm.features.nbytes  # vs float32 full resolution
    hit = fcache.load("a" * 40)
    assert hit["meta"] == {"x": 1}
    assert hit["features"] is None  # built lazily by the FeatureMap
    np.testing.assert_allclose(hit["build"](), fm.features, atol=4e-3 * np.abs(fm.features).max())
    np.testing.assert_array_equal(hit["labels"], fm.labels)
    assert hit["lowres"][0].shape == fm.lowres[0].shape


def test_load_features_rejects_garbage(tmp_path):
    from sempix.errors import InputError

    p = tmp_path / "x.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(InputError):
        load_features(p)


@pytest.fixture
def img_small(rng):
    return rng.random((40, 52, 3), dtype=np.float32)


def test_lowlevel_cache_key_follows_the_version():
    import inspect

    from sempix.features import compute, lowlevel

    # the cache key of lowlevel maps names the feature version (old entries must miss)
    assert f'"lowlevel-v{lowlevel.VERSION}"' in inspect.getsource(compute)
