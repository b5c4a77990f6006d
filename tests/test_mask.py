"""Unit tests of sempix.mask: distances, combine, threshold, feather, refine, adjustments."""

from __future__ import annotations

import numpy as np
import pytest

from sempix.errors import InputError
from sempix.mask import (
    Adjustments,
    MaskSource,
    apply_adjustments,
    combine,
    guided_filter,
    linear_to_srgb,
    parse_adjustments,
    range_mask,
    refine_mask,
    srgb_to_linear,
    threshold,
)


def _two_region_image(rng, h=24, w=32):
    img = np.empty((h, w, 3), np.float32)
    img[:, : w // 2] = (0.2, 0.3, 0.6)
    img[:, w // 2 :] = (0.8, 0.7, 0.2)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def _slow_luminance(rgb):
    """Obviously-correct CIE L*/100 of one sRGB pixel (reference for the colour term)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    y = 0.2126729 * lin[0] + 0.7151522 * lin[1] + 0.0721750 * lin[2]
    f = y ** (1 / 3) if y > (6 / 29) ** 3 else y / (3 * (6 / 29) ** 2) + 4 / 29
    return (116 * f - 16) / 100


def test_colour_distance_matches_slow_reference(rng):
    img = rng.random((5, 6, 3)).astype(np.float32)
    src = MaskSource(img)
    d = src.colour_distance((2, 3), "luminance")
    ref_l = _slow_luminance(img[3, 2])
    for y in range(5):
        for x in range(6):
            assert d[y, x] == pytest.approx(abs(_slow_luminance(img[y, x]) - ref_l), abs=2e-3)
    assert d[3, 2] == 0


def test_semantic_distance_units_and_lowres_features(rng):
    img = _two_region_image(rng, 20, 40)
    S = np.zeros((10, 20, 4), np.float32)
    S[:, :10, 0] = 1.0  # left half: class A
    S[:, 10:, 1] = 1.0  # right half: class B (orthogonal)
    src = MaskSource(img, S)
    d = src.semantic_distance((3, 5))
    assert d.shape == (20, 40)
    assert d[5, 3] == pytest.approx(0.0, abs=1e-6)
    # orthogonal features -> sqrt(2)/2
    assert d[5, 35] == pytest.approx(np.sqrt(2) / 2, abs=1e-4)


def test_combine_is_min_over_points_of_blend():
    s1, c1 = np.array([[0.0, 0.5]], np.float32), np.array([[0.2, 0.4]], np.float32)
    s2, c2 = np.array([[0.6, 0.0]], np.float32), np.array([[0.0, 0.1]], np.float32)
    out = combine([s1, s2], [c1, c2], 0.25)
    exp = np.minimum(0.25 * s1 + 0.75 * c1, 0.25 * s2 + 0.75 * c2)
    np.testing.assert_allclose(out, exp, rtol=1e-6)
    # no semantic map: colour only
    np.testing.assert_allclose(combine([None], [c1], 0.9), c1)
    with pytest.raises(InputError):
        combine([s1], [c1], 1.5)


def test_threshold_hard_and_feather():
    d = np.linspace(0, 1, 101, dtype=np.float32)[None, :]
    hard = threshold(d, 0.3)
    assert hard[0, 29] == 1 and hard[0, 30] == 0 and hard[0, 31] == 0
    soft = threshold(d, 0.3, feather=0.1)
    assert soft[0, 20] == 1 and soft[0, 40] == 0
    assert soft[0, 30] == pytest.approx(0.5, abs=1e-6)
    assert np.all(np.diff(soft[0]) <= 1e-7)  # monotone fall-off
    with pytest.raises(InputError):
        threshold(d, -0.1)
    with pytest.raises(InputError):
        threshold(d, 0.3, feather=-1)


def test_range_mask_selects_clicked_region(rng):
    img = _two_region_image(rng)
    res = range_mask(img, [(3, 3)], lam=0.0, tau=0.1)
    assert res.mask[:, :16].mean() == 1.0
    assert res.mask[:, 16:].mean() == 0.0
    # two points: both regions
    res2 = range_mask(img, [(3, 3), (30, 20)], lam=0.0, tau=0.1)
    assert res2.mask.mean() == 1.0
    with pytest.raises(InputError):
        range_mask(img, [(99, 3)])


def test_semantic_term_separates_equal_luminance(rng):
    # two halves with the same colour but different features: only semantics can separate them
    img = np.full((16, 16, 3), 0.5, np.float32)
    S = np.zeros((16, 16, 3), np.float32)
    S[:, :8, 0] = 1
    S[:, 8:, 2] = 1
    lum = range_mask(img, [(2, 2)], features=S, lam=0.0, tau=0.2).mask
    sem = range_mask(img, [(2, 2)], features=S, lam=0.5, tau=0.2).mask
    assert lum.mean() == 1.0
    assert sem[:, :8].mean() == 1.0 and sem[:, 8:].mean() == 0.0


def test_guided_filter_matches_slow_reference(rng):
    """The mask tool uses the one guided filter of sempix.ops (windows clipped to the image)."""
    from reference.ops import guided_filter_reference

    I = rng.random((9, 11, 3)).astype(np.float32)
    p = rng.random((9, 11)).astype(np.float32)
    r, eps = 1, 1e-2
    fast = guided_filter(I, p, r, eps)
    np.testing.assert_allclose(fast, guided_filter_reference(I, p, r, eps), atol=2e-4)


def test_refine_snaps_to_image_edge(rng):
    img = np.zeros((40, 40, 3), np.float32)
    img[:, 20:] = 1.0
    # a blurry mask (linear ramp over 12 px) centred on the image edge
    rough = np.tile(np.clip((np.arange(40, dtype=np.float32) - 14) / 12, 0, 1), (40, 1))
    ref = refine_mask(rough, img, radius=6, eps=1e-4)
    assert ref.min() >= 0 and ref.max() <= 1
    # the mask's transition concentrates on the image edge (between columns 19 and 20)
    jump_before = rough[20, 20] - rough[20, 19]
    jump_after = ref[20, 20] - ref[20, 19]
    assert jump_after > 3 * jump_before
    assert np.argmax(np.diff(ref[20])) == 19


# ------------------------------------------------------------------------------ adjustments


def test_srgb_roundtrip(rng):
    x = rng.random(1000).astype(np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)


def test_exposure_doubles_linear_inside_and_nothing_outside(rng):
    img = (rng.random((10, 12, 3)) * 0.4).astype(np.float32)  # dark enough not to clip at +1 EV
    mask = np.zeros((10, 12), np.float32)
    mask[:, :6] = 1.0
    out = apply_adjustments(img, mask, "exposure=+1")
    np.testing.assert_allclose(
        srgb_to_linear(out[:, :6]), 2 * srgb_to_linear(img[:, :6]), rtol=1e-4, atol=1e-6
    )
    assert np.array_equal(out[:, 6:], img[:, 6:])


def test_soft_mask_blends_in_linear_light():
    img = np.full((1, 1, 3), 0.3, np.float32)
    out = apply_adjustments(img, np.array([[0.5]], np.float32), Adjustments(exposure=1))
    lin = srgb_to_linear(img)
    np.testing.assert_allclose(srgb_to_linear(out), 1.5 * lin, rtol=1e-4)


def test_saturation_and_hue_keep_grey_and_luminance(rng):
    grey = np.full((2, 2, 3), 0.4, np.float32)
    for spec in ("saturation=-0.7", "saturation=0.8", "hue=90", "temperature=0.6,tint=-0.4"):
        out = apply_adjustments(grey, None, spec)
        if "temperature" not in spec:
            np.testing.assert_allclose(out, grey, atol=1e-5)
    col = rng.random((8, 8, 3)).astype(np.float32) * 0.8
    out = apply_adjustments(col, None, "saturation=-1")
    assert np.abs(out - out[..., :1]).max() < 1e-5  # fully desaturated = grey
    y_in = srgb_to_linear(col) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    y_out = srgb_to_linear(out) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    np.testing.assert_allclose(y_out, y_in, atol=1e-4)


def test_white_balance_warms_and_keeps_grey_luminance():
    grey = np.full((1, 1, 3), 0.5, np.float32)
    warm = apply_adjustments(grey, None, "temperature=0.5")
    assert warm[0, 0, 0] > 0.5 > warm[0, 0, 2]
    y = srgb_to_linear(warm)[0, 0] @ np.array([0.2126, 0.7152, 0.0722])
    assert y == pytest.approx(srgb_to_linear(grey)[0, 0, 0], rel=1e-4)


def test_contrast_pivots_at_mid_grey():
    lin = np.array([0.05, 0.18, 0.5], np.float32)
    img = np.repeat(linear_to_srgb(lin)[:, None], 3, axis=1)[None]
    out = srgb_to_linear(apply_adjustments(img, None, "contrast=0.5"))[0, :, 0]
    assert out[1] == pytest.approx(0.18, rel=1e-3)
    assert out[0] < 0.05 and out[2] > 0.5


def test_parse_adjustments_errors():
    assert parse_adjustments("exposure=+0.7, contrast=0.2").exposure == pytest.approx(0.7)
    assert parse_adjustments("").is_identity
    for bad in ("exposure", "exposure=abc", "sharpness=1", "contrast=3", "hue=nan"):
        with pytest.raises(InputError):
            parse_adjustments(bad)


def test_identity_is_exact(rng):
    img = rng.random((5, 5, 3)).astype(np.float32)
    assert np.array_equal(apply_adjustments(img, None, Adjustments()), img)


def test_parse_adjustments_rejects_duplicates():
    """Regression (QA): "exposure=1,exposure=2" used to keep the last value silently."""
    with pytest.raises(InputError, match="twice"):
        parse_adjustments("exposure=1, Exposure=2")


def _slow_minimax(d, x, y):
    """Reference: for every threshold t (each value of d), the 4-connected component of d <= t
    that holds the click (scipy.ndimage.label); G(p) = the smallest t whose component holds p."""
    from scipy import ndimage

    out = np.full(d.shape, np.inf, np.float32)
    for t in np.unique(d):
        lab, _ = ndimage.label(d <= t)
        comp = lab == lab[y, x] if d[y, x] <= t else np.zeros(d.shape, bool)
        out[comp & ~np.isfinite(out)] = t
    return out


def test_minimax_distance_matches_slow_reference(rng):
    from sempix.distance import minimax_distance

    d = rng.random((13, 17)).astype(np.float32)
    g = minimax_distance(d, (4, 9))
    np.testing.assert_array_equal(g, _slow_minimax(d, 4, 9))
    assert g[9, 4] == d[9, 4] and np.all(g >= d)
    with pytest.raises(InputError):
        minimax_distance(d, (17, 0))
    with pytest.raises(InputError):
        minimax_distance(d[0], (0, 0))


def test_connected_mask_keeps_only_the_clicked_blob(rng):
    # two blobs of the same colour separated by a different colour: per-pixel criterion selects
    # both, the connected one only the clicked blob (and tau keeps its meaning inside it)
    img = np.full((20, 30, 3), 0.9, np.float32)
    img[5:15, 3:10] = (0.2, 0.3, 0.6)
    img[5:15, 20:27] = (0.2, 0.3, 0.6)
    plain = range_mask(img, [(5, 8)], lam=0.0, tau=0.1, connected=False).mask
    conn = range_mask(img, [(5, 8)], lam=0.0, tau=0.1, connected=True).mask
    assert plain[5:15, 20:27].mean() == 1.0 and plain[5:15, 3:10].mean() == 1.0
    assert conn[5:15, 3:10].mean() == 1.0 and conn.sum() == 70
    both = range_mask(img, [(5, 8), (22, 8)], lam=0.0, tau=0.1).mask  # default: connected
    np.testing.assert_array_equal(both, plain)
    assert range_mask(img, [(5, 8)], lam=0.0, tau=0.1).settings["connected"] is True


def test_combine_connected_is_min_of_minimax(rng):
    from sempix.distance import minimax_distance

    s = [rng.random((9, 11)).astype(np.float32) for _ in range(2)]
    c = [rng.random((9, 11)).astype(np.float32) for _ in range(2)]
    pts = np.array([[1, 2], [8, 6]])
    out = combine(s, c, 0.7, points=pts)
    exp = np.minimum(
        minimax_distance(0.7 * s[0] + 0.3 * c[0], pts[0]),
        minimax_distance(0.7 * s[1] + 0.3 * c[1], pts[1]),
    )
    np.testing.assert_allclose(out, exp, rtol=1e-6)
    with pytest.raises(InputError):
        combine(s, c, 0.7, points=pts[:1])
