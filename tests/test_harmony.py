"""Tests of the Cohen-Or harmony metrics (F-score, PIT, MITS) and the C-Harmony baseline."""

from __future__ import annotations

import numpy as np
import pytest

from sempix.color import hsv_to_srgb, srgb_to_hsv
from sempix.errors import InputError
from sempix.palette.hue_templates import (
    BINS,
    TEMPLATES,
    _profile,
    cohen_or_harmonize,
    harmony_metrics,
    search_rotations,
    sector_distance,
    shift_hues,
)

from reference.palette import hue_hist_ref as _hist


def hue_image(hues, sats, counts=None, v=1.0) -> np.ndarray:
    """(1, N, 3) image with the given HSV hues (degrees) and saturations, ``counts`` pixels each."""
    counts = counts or [1] * len(hues)
    h = np.repeat(np.asarray(hues, np.float32), counts)
    s = np.repeat(np.asarray(sats, np.float32), counts)
    return hsv_to_srgb(np.stack([h, s, np.full_like(h, v)], -1))[None]


def test_single_hue_fits_i_template_perfectly():
    sc = harmony_metrics(hue_image([200.0], [0.8], [50]))
    assert sc.template == "i"  # every template fits; the smallest one wins the tie
    assert sc.f_score == 0.0 and sc.pit == 100.0
    assert sc.mits == pytest.approx(0.8, abs=1e-3)
    assert all(f == pytest.approx(0.0, abs=1e-9) for _, f in sc.per_template.values())


def test_two_hues_hand_computed_f_for_i_template():
    # hues 0 and 40, S = 1, equal counts; an 18-degree sector between them leaves 40 - 18 = 22
    # degrees of total distance, one pixel of each hue: F per pixel = 22 / 2 = 11.
    img = hue_image([0.0, 40.0], [1.0, 1.0], [10, 10])
    sc = harmony_metrics(img, "i")
    assert sc.template == "i"
    assert sc.f_score == pytest.approx(11.0, abs=1e-3)
    assert sc.f_sum == pytest.approx(220.0, abs=1e-2)
    # sector fits snugly between the two hues
    assert 9.0 - 1e-6 <= sc.alpha <= 31.0 + 1e-6
    # V (93.6 degrees) fits both
    assert harmony_metrics(img).template == "V" and harmony_metrics(img).f_score == 0.0


def test_pit_mits_hand_computed_with_outlier_and_greys():
    # 8 pixels at hue 100 (S .5), 1 pixel at hue 160 (S 1), 1 grey pixel; template i at alpha 100:
    # outlier at distance 60 - 9 = 51 degrees -> F = 51 * 1 / 10 = 5.1; PIT = 9/10; MITS = (8*.5 +
    # 0)/9
    img = np.concatenate(
        [hue_image([100.0, 160.0], [0.5, 1.0], [8, 1]), np.full((1, 1, 3), 0.5, np.float32)], axis=1
    )
    sc = harmony_metrics(img, "i", alpha=100.0)
    assert sc.f_score == pytest.approx(5.1, abs=1e-3)
    assert sc.pit == pytest.approx(90.0)
    assert sc.mits == pytest.approx(4.0 / 9.0, abs=1e-3)


def test_complementary_hues_fit_I_and_best_is_argmin():
    img = hue_image([30.0, 210.0], [0.9, 0.6], [5, 7])
    sc = harmony_metrics(img)
    assert sc.template == "I" and sc.f_score == pytest.approx(0.0, abs=1e-9) and sc.pit == 100.0
    assert sc.f_score <= min(f for _, f in sc.per_template.values()) + 1e-9


def test_rotation_search_matches_brute_force(rng):
    hue = rng.uniform(0, 360, 400)
    sat = rng.uniform(0, 1, 400)
    hist = _hist(hue, sat)
    centres = (np.arange(BINS) + 0.5) * 360.0 / BINS
    for name, alts in TEMPLATES.items():
        f, best = search_rotations(hist, name)
        for k, sectors in enumerate(alts):
            brute = np.array(
                [
                    (hist * sector_distance(centres, sectors, r * 360.0 / BINS)).sum()
                    for r in range(0, BINS, 37)
                ]
            )
            np.testing.assert_allclose(f[k, ::37], brute, rtol=1e-6, atol=1e-6)
        assert f.ravel()[best] == pytest.approx(f.min())


def test_sector_distance_and_profile():
    d = sector_distance(np.array([0.0, 9.0, 10.0, 100.0, 350.0]), [(0.0, 18.0)], 0.0)
    np.testing.assert_allclose(d, [0, 0, 1, 91, 1])
    d = sector_distance(np.array([180.0, 95.0]), TEMPLATES["X"][0], 0.0)
    np.testing.assert_allclose(d, [0.0, min(95.0, 85.0) - 46.8])
    assert _profile(TEMPLATES["T"][0]).max() == pytest.approx(90.0, abs=0.5)


def test_shift_hues_moves_everything_inside_with_gaussian_falloff():
    sectors = [(100.0, 18.0)]
    h = np.array([100.0, 104.0, 130.0, 280.0])
    out = shift_hues(h, sectors)
    assert out[0] == pytest.approx(100.0)
    assert (sector_distance(out, sectors, 0.0) == 0).all()
    # H' = C + sign * w/2 * (1 - exp(-d^2 / (2 sigma^2))), sigma = w/2 = 9
    assert out[1] == pytest.approx(100 + 9 * (1 - np.exp(-16 / 162)), abs=1e-6)
    assert out[2] == pytest.approx(100 + 9 * (1 - np.exp(-900 / 162)), abs=1e-6)
    # order within the sector is preserved
    assert out[0] < out[1] < out[2]


def test_cohen_or_harmonize_gives_full_pit(rng):
    img = rng.random((20, 20, 3)).astype(np.float32)
    out, score_in = cohen_or_harmonize(img)
    assert out.shape == img.shape and out.dtype == np.float32
    sc = harmony_metrics(out, score_in.template, alpha=score_in.alpha)
    assert sc.pit > 99.0
    np.testing.assert_allclose(srgb_to_hsv(out)[..., 1:], srgb_to_hsv(img)[..., 1:], atol=1e-4)


def test_errors():
    with pytest.raises(InputError):
        harmony_metrics(np.zeros((4, 4, 3), np.float32), "Q")
    with pytest.raises(InputError):
        harmony_metrics(np.zeros((4, 4), np.float32))
    grey = np.full((5, 5, 3), 0.3, np.float32)
    sc = harmony_metrics(grey)
    assert sc.pit == 100.0 and sc.f_score == 0.0 and sc.mits == 0.0
