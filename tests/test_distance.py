"""Tests of sempix.distance: energies and pixel distances (hand-computed values + references)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sempix import distance as dist
from sempix.color import srgb_to_lab
from sempix.distance import distances as dmod
from sempix.distance import energy as emod
from sempix.errors import InputError
from sempix.features import FeatureMap


def _ref_gradient_l1(a: np.ndarray) -> np.ndarray:
    """Obviously-correct reference: numpy.gradient per channel, L1 over channels."""
    a = np.asarray(a, np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    H, W, C = a.shape
    out = np.zeros((H, W))
    for c in range(C):
        if W > 1:
            out += np.abs(np.gradient(a[:, :, c], axis=1))
        if H > 1:
            out += np.abs(np.gradient(a[:, :, c], axis=0))
    return out


# ------------------------------------------------------------------------------ colour


def test_luminance_hand_values():
    img = np.array([[[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]], np.float32)
    L = dist.luminance(img)
    assert L.shape == (1, 3) and L.dtype == np.float32
    # sRGB 0.5 -> linear 0.21404 -> L* = 116 * 0.21404^(1/3) - 16 = 53.39
    np.testing.assert_allclose(L[0], [0.0, 1.0, 0.5339], atol=2e-3)
    # an (H, W) map is taken as a luminance map already
    np.testing.assert_array_equal(dist.luminance(L), L)


def test_lab_red():
    red = np.array([[[1.0, 0.0, 0.0]]], np.float32)
    np.testing.assert_allclose(srgb_to_lab(red)[0, 0], [53.24, 80.09, 67.20], atol=0.05)


# ------------------------------------------------------------------------------ energies


def test_gradient_hand_values():
    # 1x3 single channel [0, 1, 4]: one-sided 1, central (4-0)/2 = 2, one-sided 3; dy = 0 (H = 1)
    np.testing.assert_allclose(dist.gradient_l1(np.array([[0.0, 1.0, 4.0]])), [[1, 2, 3]])
    # 3x3 single bright pixel in the middle (value 1):
    a = np.zeros((3, 3))
    a[1, 1] = 1.0
    expected = np.array(
        [
            # row 0: dx (0 | 0 | 0) ; dy one-sided a[1]-a[0] = (0, 1, 0)
            [0.0, 1.0, 0.0],
            # row 1: dx one-sided 1, central 0, one-sided 1 ; dy central (0 - 0)/2 = 0
            [1.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
        ]
    )
    np.testing.assert_allclose(dist.gradient_l1(a), expected)
    # L1 over channels: two channels with opposite ramps add up
    two = np.stack([np.array([[0.0, 1.0, 2.0]]), np.array([[2.0, 1.0, 0.0]])], axis=-1)
    np.testing.assert_allclose(dist.gradient_l1(two), [[2, 2, 2]])


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (7, 1, 3), (2, 2, 5), (13, 9, 4)])
def test_gradient_matches_reference_and_chunking(rng, shape):
    a = rng.random(shape).astype(np.float32)
    ref = _ref_gradient_l1(a)
    np.testing.assert_allclose(dist.gradient_l1(a), ref, rtol=1e-5, atol=1e-6)
    # tiny chunks (one row per block) give the same result
    np.testing.assert_allclose(dist.gradient_l1(a, chunk_bytes=1), ref, rtol=1e-5, atol=1e-6)


def test_energy_rgb_and_normalisation(rng):
    img = rng.random((20, 30, 3)).astype(np.float32)
    e = dist.energy_rgb(img)
    np.testing.assert_allclose(e, _ref_gradient_l1(img), rtol=1e-5, atol=1e-6)
    assert e.max() <= 6.0 + 1e-6
    en = dist.energy_rgb(img, normalize=True)
    assert en.mean() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(en, e / e.mean(), rtol=1e-5)
    # constant image -> zero energy, also normalised (no division by zero)
    flat = np.full((5, 6, 3), 0.3, np.float32)
    assert not dist.energy_rgb(flat, normalize=True).any()
    # RGBA input: alpha ignored
    rgba = np.dstack([img, rng.random((20, 30)).astype(np.float32)])
    np.testing.assert_allclose(dist.energy_rgb(rgba), e)


def test_energy_combined_weights_and_backend_invariance(rng):
    img = rng.random((16, 12, 3)).astype(np.float32)
    S = rng.normal(size=(16, 12, 8)).astype(np.float32)
    e_r = dist.energy_rgb(img, normalize=True)
    e_s = dist.energy_semantic(S, normalize=True)
    np.testing.assert_allclose(dist.energy_combined(img, S, lam=0.0), e_r, rtol=1e-6)
    np.testing.assert_allclose(dist.energy_combined(img, S, lam=1.0), e_s, rtol=1e-6)
    np.testing.assert_allclose(
        dist.energy_combined(img, S, lam=0.2), 0.2 * e_s + 0.8 * e_r, rtol=1e-5
    )
    # lam means the same whatever the feature scale or dimension (normalised terms)
    S_big = np.concatenate([S * 100.0, S * 100.0], axis=-1)
    np.testing.assert_allclose(
        dist.energy_combined(img, S_big, lam=0.3), dist.energy_combined(img, S, lam=0.3), rtol=1e-4
    )
    # ... which is not true without normalisation
    raw = dist.energy_combined(img, S_big, lam=0.3, normalize=False)
    assert not np.allclose(raw, dist.energy_combined(img, S, lam=0.3, normalize=False))
    # FeatureMap accepted, None -> colour only
    fm = FeatureMap(features=S, backend="lowlevel", semantic=False)
    np.testing.assert_allclose(dist.energy_semantic(fm), dist.energy_semantic(S))
    np.testing.assert_allclose(dist.energy_combined(img, None, lam=0.5), e_r)


def test_energy_errors(rng):
    img = rng.random((8, 8, 3)).astype(np.float32)
    with pytest.raises(InputError, match="aligned"):
        dist.energy_combined(img, np.zeros((8, 9, 4), np.float32))
    with pytest.raises(InputError, match="lam"):
        dist.energy_combined(img, None, lam=1.5)
    with pytest.raises(InputError):
        dist.energy_semantic(np.zeros((2, 2, 2, 2)))


def test_semantic_energy_memory_is_chunked(rng):
    """A (256, 256, 128) map (32 MiB) must not need several copies of itself."""
    S = rng.random((256, 256, 128), dtype=np.float32)
    tracemalloc.start()
    dist.energy_semantic(S)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.75 * S.nbytes + (1 << 20), f"peak {peak / 2**20:.1f} MiB"


# ------------------------------------------------------------------------------ distances


def test_parse_points():
    np.testing.assert_array_equal(dist.parse_points((2, 1), (3, 4)), [[2, 1]])
    np.testing.assert_array_equal(dist.parse_points([(0, 0), (3.4, 1.6)], (3, 4)), [[0, 0], [3, 2]])
    with pytest.raises(InputError, match="outside the 4x3 image"):
        dist.parse_points([(4, 0)], (3, 4))
    with pytest.raises(InputError, match="outside"):
        dist.parse_points([(0, -1)], (3, 4))
    with pytest.raises(InputError, match="at least one"):
        dist.parse_points(np.zeros((0, 2)), (3, 4))
    with pytest.raises(InputError):
        dist.parse_points([(1, 2, 3)], (3, 4))
    with pytest.raises(InputError):
        dist.parse_points([(np.nan, 0)], (3, 4))


def test_distance_luminance_hand_values():
    img = np.array([[[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]], np.float32)
    d = dist.distance_luminance(img, (0, 0))
    np.testing.assert_allclose(d[0], [0.0, 1.0, 0.5339], atol=2e-3)
    # min over two points (black and white): grey is 0.4661 from white
    d2 = dist.distance_luminance(img, [(0, 0), (1, 0)])
    np.testing.assert_allclose(d2[0], [0.0, 0.0, 0.4661], atol=2e-3)


def test_distance_luminance_many_points_matches_loop(rng):
    img = rng.random((9, 11, 3)).astype(np.float32)
    pts = [(int(x), int(y)) for x, y in zip(rng.integers(0, 11, 7), rng.integers(0, 9, 7))]
    L = dist.luminance(img)
    ref = np.min([np.abs(L - L[y, x]) for x, y in pts], axis=0)
    np.testing.assert_allclose(dist.distance_luminance(img, pts), ref, atol=1e-6)


def test_distance_lab_hand_values():
    img = np.array([[[0, 0, 0], [1, 0, 0], [0.5, 0.5, 0.5]]], np.float32)
    d = dist.distance_lab(img, (0, 0))
    # black -> red: sqrt(53.24^2 + 80.09^2 + 67.20^2) = 117.3 -> 1.173; black -> grey: L* only
    np.testing.assert_allclose(d[0], [0.0, 1.173, 0.5339], atol=2e-3)
    # a pure lightness change gives the same value as the luminance distance
    np.testing.assert_allclose(d[0, 2], dist.distance_luminance(img, (0, 0))[0, 2], atol=1e-4)


def test_distance_semantic_hand_values():
    S = np.array([[[1, 0], [0, 1], [-1, 0], [0, 0], [2, 0], [1, 1]]], np.float32)
    d = dist.distance_semantic(S, (0, 0))
    # same direction 0, orthogonal sqrt(2)/2, opposite 1, zero vector 1/2, scaled 0,
    # 45 degrees sqrt((1 - cos 45) / 2) = 0.38268
    np.testing.assert_allclose(d[0], [0, np.sqrt(0.5), 1, 0.5, 0, 0.38268], atol=1e-5)
    # distances are symmetric in the reference; min over points
    d2 = dist.distance_semantic(S, [(0, 0), (2, 0)])
    np.testing.assert_allclose(d2[0], [0, np.sqrt(0.5), 0, 0.5, 0, 0.38268], atol=1e-5)
    # zero vector to zero vector is 0
    assert dist.distance_semantic(S, (3, 0))[0, 3] == 0.0


def test_distance_semantic_scale_invariant_and_chunked(rng, monkeypatch):
    S = rng.normal(size=(17, 13, 6)).astype(np.float32)
    pts = [(3, 4), (12, 16)]
    U = S / np.linalg.norm(S, axis=-1, keepdims=True)
    ref = np.min([np.linalg.norm(U - U[y, x], axis=-1) / 2 for x, y in pts], axis=0)
    d = dist.distance_semantic(S, pts)
    np.testing.assert_allclose(d, ref, atol=1e-5)
    assert d.min() >= 0 and d.max() <= 1
    # independent of the backend's scale
    np.testing.assert_allclose(dist.distance_semantic(S * 37.0, pts), d, atol=1e-5)
    # tiny blocks give the same answer
    monkeypatch.setattr(dmod, "_CHUNK_BYTES", 1)
    np.testing.assert_allclose(dist.distance_semantic(S, pts), d, atol=1e-6)
    np.testing.assert_allclose(
        dist.distance_semantic_to(S, U[4, 3]), np.linalg.norm(U - U[4, 3], axis=-1) / 2, atol=1e-5
    )
    # a clicked pixel is exactly 0 from itself (no float32 cancellation residue)
    assert d[4, 3] == 0.0 and d[16, 12] == 0.0
    with pytest.raises(InputError, match="dimensions"):
        dist.distance_semantic_to(S, np.ones(5))


def test_distance_map_combination_is_min_of_combined():
    # pixel 2 is close to point A in colour and to point B semantically; the combined distance is
    # the min over points of the weighted sum, not the weighted sum of per-term minima
    img = np.array([[[0, 0, 0], [1, 1, 1], [0, 0, 0]]], np.float32)
    S = np.array([[[1, 0], [0, 1], [0, 1]]], np.float32)
    pts = [(0, 0), (1, 0)]
    lam = 0.5
    d = dist.distance_map(img, S, pts, lam=lam)
    # pixel 2: to A: sem sqrt(.5), lum 0 -> 0.35355 ; to B: sem 0, lum 1 -> 0.5  => 0.35355
    np.testing.assert_allclose(d[0], [0, 0, 0.5 * np.sqrt(0.5)], atol=1e-4)
    # lam = 0 -> colour only, lam = 1 -> semantic only
    np.testing.assert_allclose(
        dist.distance_map(img, S, pts, lam=0.0), dist.distance_luminance(img, pts)
    )
    np.testing.assert_allclose(
        dist.distance_map(img, S, pts, lam=1.0), dist.distance_semantic(S, pts), atol=1e-6
    )
    # S None -> colour only
    np.testing.assert_allclose(
        dist.distance_map(img, None, pts, lam=0.7), dist.distance_luminance(img, pts)
    )


def test_distance_map_lab_and_reference(rng, monkeypatch):
    img = rng.random((15, 10, 3)).astype(np.float32)
    S = rng.normal(size=(15, 10, 5)).astype(np.float32)
    pts = [(1, 2), (9, 14), (5, 5)]
    lam = 0.3
    ref = np.min(
        [
            lam * dist.distance_semantic(S, [p]) + (1 - lam) * dist.distance_lab(img, [p])
            for p in pts
        ],
        axis=0,
    )
    d = dist.distance_map(img, S, pts, lam=lam, space="lab")
    np.testing.assert_allclose(d, ref, atol=1e-5)
    monkeypatch.setattr(dmod, "_CHUNK_BYTES", 1)
    np.testing.assert_allclose(dist.distance_map(img, S, pts, lam=lam, space="lab"), d, atol=1e-6)
    np.testing.assert_allclose(
        dist.distance_map(img, None, pts, space="lab"), dist.distance_lab(img, pts), atol=1e-6
    )


def test_distance_map_errors(rng):
    img = rng.random((6, 5, 3)).astype(np.float32)
    with pytest.raises(InputError, match="space"):
        dist.distance_map(img, None, [(0, 0)], space="rgb")
    with pytest.raises(InputError, match="lam"):
        dist.distance_map(img, None, [(0, 0)], lam=-0.1)
    with pytest.raises(InputError, match="aligned"):
        dist.distance_map(img, np.zeros((5, 6, 2), np.float32), [(0, 0)])
    with pytest.raises(InputError, match="outside"):
        dist.distance_map(img, None, [(5, 0)])


def test_lab_distance_range_bound():
    """DeltaE76/100 between sRGB colours stays below 2.6 (documented range)."""
    corners = np.array([[[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]], np.float32)
    d = np.max([dist.distance_lab(corners, (x, 0)).max() for x in range(8)])
    assert 2.4 < d < 2.6
    _ = emod  # module import kept for monkeypatch users
