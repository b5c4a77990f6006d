"""Issue 19: harmonization's template fit (step 5) raises the template fit (PIT) and keeps MITS,
names, L* and neutrals; the hue compression kernel against its numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from sempix.color import hsv_to_srgb, srgb_to_hsv, srgb_to_lab
from sempix.palette.hue_templates import (
    TEMPLATES,
    compress_into_template,
    harmony_metrics,
    sector_distance,
)


def _kernel(hue, sectors, knee=10.0, margin=None):
    from sempix.palette._template_kernels import _compress_hues

    hue = np.ascontiguousarray(hue, dtype=np.float32)
    m = np.zeros_like(hue) if margin is None else np.ascontiguousarray(margin, dtype=np.float32)
    nh, d = np.empty_like(hue), np.empty_like(hue)
    c = np.array([s[0] for s in sectors], dtype=np.float64)
    w = np.array([s[1] for s in sectors], dtype=np.float64)
    _compress_hues(hue, m, c, w, float(knee), nh, d)
    return nh, d


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_kernel_matches_numpy_reference(name, rng):
    hue = (rng.random(4000) * 360.0).astype(np.float32)
    margin = (rng.random(4000) * 6.0).astype(np.float32)
    sectors = [((137.0 + off) % 360.0, w) for off, w in TEMPLATES[name][-1]]
    ref_h, ref_d = compress_into_template(hue, sectors, margin=margin)
    got_h, got_d = _kernel(hue, sectors, margin=margin)
    diff = np.abs((got_h - ref_h + 180.0) % 360.0 - 180.0)
    assert diff.max() < 1e-3
    np.testing.assert_allclose(got_d, ref_d, atol=1e-3)
    np.testing.assert_allclose(ref_d, sector_distance(hue, sectors, 0.0), atol=1e-3)


def test_compression_puts_every_hue_inside_smoothly(rng):
    sectors = [(30.0, 93.6), (210.0, 18.0)]  # Y template
    hue = np.sort(rng.random(20000) * 360.0)
    new, dist = compress_into_template(hue, sectors, margin=1.0)
    assert sector_distance(new, sectors, 0.0).max() == 0.0  # all inside
    assert (dist > 0).mean() > 0.3
    # hues well inside (before the knee) do not move; those near a border move < 0.25 x knee
    deep = sector_distance(hue, [(30.0, 93.6 - 20.0), (210.0, 18.0 - 9.0)], 0.0) == 0
    np.testing.assert_allclose(new[deep], hue[deep], atol=1e-9)
    inside = dist == 0
    turn = np.abs((new - hue + 180.0) % 360.0 - 180.0)
    assert turn[inside].max() <= 0.25 * 10.0 + 1.0  # 0.24 x knee + margin at most
    # monotone within each side of the big sector (the order of hues is kept)
    side = (hue > 30.0) & (hue < 120.0)
    assert np.all(np.diff(new[side]) >= -1e-9)


def _scene(rng):
    """Red, green, blue and yellow patches with noise, and a neutral grey strip."""
    cols = np.array([(180, 60, 50), (70, 120, 60), (60, 80, 150), (200, 180, 90)], np.float32)
    img = np.repeat(np.repeat(cols[None] / 255.0, 24, axis=0), 12, axis=1)
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1).astype(np.float32)
    grey = np.full((24, 8, 3), 0.5, np.float32)
    return np.concatenate([img, grey], axis=1)


def test_default_raises_pit_and_mits_keeps_names_lightness_and_greys(w2c_available, rng):
    from sempix.palette import color_names, harmonize_image
    from sempix.palette.naming import name_index

    img = _scene(rng)
    s_in = harmony_metrics(img)
    res = harmonize_image(img, model_path=w2c_available)
    s_out = harmony_metrics(res.image)
    assert s_out.pit > s_in.pit and s_out.mits > s_in.mits
    assert s_out.f_score < s_in.f_score
    assert res.info["template_fit"]["moved"] > 0
    assert res.info["harmony"]["result"].pit == pytest.approx(s_out.pit)
    # the palette step alone (before issue 19) fits the template less well
    before = harmonize_image(img, model_path=w2c_available, fit_template=False)
    assert "template_fit" not in before.info
    assert harmony_metrics(before.image).pit < s_out.pit
    # L* of every pixel, the palette names and every pixel's basic name are kept; grey stays grey
    np.testing.assert_allclose(
        srgb_to_lab(res.image)[..., 0], srgb_to_lab(img)[..., 0], atol=0.05
    )
    assert res.names_kept == 1.0
    assert list(color_names(res.target_rgb, model_path=w2c_available)) == res.source_names
    changed = np.abs(res.image - before.image).max(-1) > 1e-6
    assert changed.any()
    np.testing.assert_array_equal(
        name_index(res.image[changed], model_path=w2c_available),
        name_index(before.image[changed], model_path=w2c_available),
    )
    np.testing.assert_allclose(res.image[:, -8:], img[:, -8:], atol=1e-6)


def test_template_fit_moves_hues_only_and_respects_the_mits_floor(w2c_available, rng):
    """Step 5 alone: S and V barely change (L* restored), pixels enter only while MITS >= floor."""
    from sempix.palette.harmonize import _Indexed, _template_fit

    # a saturated orange group and a near-neutral yellowish group (its names allow the turn)
    hue = np.concatenate([rng.normal(30, 4, 300), rng.normal(60, 4, 100)]) % 360
    sat = np.concatenate([np.full(300, 0.8), np.full(100, 0.1)])
    img = hsv_to_srgb(np.stack([hue, sat, np.full_like(hue, 0.8)], -1).astype(np.float32))[None]
    score = harmony_metrics(img, "i")
    out_all, info_all = _template_fit(_Indexed.of(img), score, 0.0, w2c_available)
    out_hi, info_hi = _template_fit(_Indexed.of(img), score, score.mits, w2c_available)
    out_all, out_hi = out_all.image(), out_hi.image()
    assert info_all["moved"] > info_hi["moved"] >= 0.0
    fixed = harmony_metrics(out_all, "i", alpha=score.alpha)
    assert fixed.pit > 95.0 > score.pit
    high = harmony_metrics(out_hi, "i", alpha=score.alpha)
    assert high.mits >= score.mits - 1e-6
    hsv0, hsv1 = srgb_to_hsv(img), srgb_to_hsv(out_all)
    assert np.abs(hsv1[..., 2] - hsv0[..., 2]).max() < 0.2
