"""Harmonization per distinct colour (issue 19, time): the kernels behind it against their slow
references, and harmonize / extract_palette / harmony metrics bit-identical to the per-pixel
path."""

from __future__ import annotations

import numpy as np
import pytest

from sempix.color import hsv_to_srgb, srgb_to_hsv, srgb_to_lab, unique_colours
from sempix.palette import extract_palette, harmonize_image, harmony_metrics
from sempix.palette.extract import ab_histogram, palette_from_colours
from sempix.palette.hue_templates import BINS, TEMPLATES, harmony_from_hs
from sempix.palette.kmeans import _choice, _n_distinct_upto, _sqdist

from reference.color import unique_colours_ref
from reference.palette import ab_histogram_ref, hue_hist_ref, template_distance_ref


def quantised(rng, shape, levels=256) -> np.ndarray:
    """float32 image with values k / (levels - 1) (an 8-bit photo when levels = 256)."""
    return (rng.integers(0, levels, shape) / (levels - 1)).astype(np.float32)


def photo_like(rng, h=48, w=64) -> np.ndarray:
    """8-bit image of noisy hue / saturation ramps with a white patch, in 2 x 2 blocks: many
    repeated colours, as in a photo."""
    h, w = h // 2, w // 2
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    hue = (40.0 + 200.0 * x / w + 15.0 * np.sin(y / 3.0)) % 360.0
    sat = np.clip(0.15 + 0.7 * y / h + rng.normal(0, 0.03, (h, w)), 0, 1)
    val = np.clip(0.4 + 0.5 * x / w + rng.normal(0, 0.03, (h, w)), 0, 1)
    img = hsv_to_srgb(np.stack([hue, sat, val], -1).astype(np.float32))
    img[: h // 4, : w // 4] = 0.9  # a white patch (neutral)
    img = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    return (np.rint(img * 255.0) / 255.0).astype(np.float32)


# ----------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("n", [0, 1, 2, 3, 64, 1000, 4097])
def test_unique_colours_matches_np_unique(rng, n):
    x = quantised(rng, (n, 3), levels=5)
    first, inv = unique_colours(x)
    ref_first, ref_inv = unique_colours_ref(x)
    np.testing.assert_array_equal(first, ref_first)
    np.testing.assert_array_equal(inv, ref_inv)
    np.testing.assert_array_equal(x[first][inv], x)


def test_unique_colours_gives_up_above_max_share(rng):
    x = rng.random((1000, 3)).astype(np.float32)  # all distinct
    assert unique_colours(x, max_share=0.5) is None
    first, inv = unique_colours(x)
    assert len(first) == 1000
    # exact float values count: 0.1 and its float32 neighbour are two colours
    y = np.array([[0.1, 0.2, 0.3], [np.nextafter(np.float32(0.1), 1), 0.2, 0.3], [0.1, 0.2, 0.3]],
                 np.float32)
    assert unique_colours(y)[1].tolist() == [0, 1, 0]


def test_hue_histogram_kernel_matches_bincount(rng):
    from sempix.palette._template_kernels import _hue_histogram

    hsv = srgb_to_hsv(quantised(rng, (5000, 3), levels=9))
    hue, sat = np.ascontiguousarray(hsv[:, 0]), hsv[:, 1].astype(np.float64)
    chroma = sat > 1e-6
    got = np.zeros(BINS)
    _hue_histogram(np.zeros(0, np.int64), hue, sat, 1e-6, BINS, got)
    np.testing.assert_array_equal(got, hue_hist_ref(hue[chroma], sat[chroma]))
    first, inv = unique_colours(hsv)
    got2 = np.zeros(BINS)
    _hue_histogram(inv, hue[first], sat[first], 1e-6, BINS, got2)
    np.testing.assert_array_equal(got2, got)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_distance_kernel_matches_numpy_float32(rng, name):
    from sempix.palette._template_kernels import _template_distance

    hue = np.concatenate(
        [rng.uniform(0, 360, 20000), np.arange(0, 360, 0.01), [0.0, 360.0, 1e-6, 359.99997]]
    ).astype(np.float32)
    sat = rng.uniform(-0.2, 1.0, len(hue))
    for sectors in TEMPLATES[name]:
        for alpha in [0.0, 90.0, 179.5, 180.0, 359.5, *rng.uniform(0, 360, 5)]:
            shifts = np.array([(alpha + o) % 360.0 - 180.0 for o, _ in sectors], np.float32)
            halves = np.array([w / 2.0 for _, w in sectors], np.float32)
            got = np.empty_like(hue)
            _template_distance(hue, sat, 1e-6, shifts, halves, got)
            ref = template_distance_ref(hue.copy(), sat > 1e-6, sectors, float(alpha))
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("weighted", [False, True])
def test_ab_histogram_matches_bincount(rng, weighted):
    x = quantised(rng, (6000, 3), levels=12)
    lab = srgb_to_lab(x)
    w = rng.random(len(x)).astype(np.float32) if weighted else None
    ref = ab_histogram_ref(lab, w)
    for got in (ab_histogram(lab, w), ab_histogram(lab[unique_colours(x)[0]], w,
                                                      inverse=unique_colours(x)[1])):
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)


def test_kmeans_helpers_match_numpy(rng):
    for d in (2, 3):
        x, c = rng.normal(0, 30, (500, d)), rng.normal(0, 30, (7, d))
        np.testing.assert_array_equal(_sqdist(x, c), ((x[:, None] - c[None]) ** 2).sum(-1))
    p = rng.random(300) ** 3
    p[::3] = 0.0
    p /= p.sum()
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(50):
        assert _choice(a, p) == b.choice(len(p), p=p)
    assert a.random() == b.random()  # the same draws were used
    pts = np.array([[0.0, 1.0], [0.0, 1.0], [2.0, 3.0], [-0.0, 1.0], [5.0, 5.0]])
    assert [_n_distinct_upto(pts, k) for k in (1, 2, 3, 4, 9)] == [1, 2, 3, 3, 3]


# ----------------------------------------------------------------------------- bit-identical paths
def _no_dedupe(monkeypatch):
    import sempix.palette.extract as extract
    import sempix.palette.harmonize as harmonize

    monkeypatch.setattr(harmonize, "unique_colours", lambda *a, **k: None)
    monkeypatch.setattr(extract, "unique_colours", lambda *a, **k: None)


def test_extract_palette_and_metrics_per_colour_equal_per_pixel(rng, monkeypatch):
    img = photo_like(rng)
    pal = extract_palette(img)
    first, inv = unique_colours(img.reshape(-1, 3))
    pal2 = palette_from_colours(img.reshape(-1, 3)[first], inv)
    hsv = srgb_to_hsv(img.reshape(-1, 3))
    s = harmony_metrics(img)
    s2 = harmony_from_hs(hsv[first, 0], hsv[first, 1], inverse=inv)
    _no_dedupe(monkeypatch)
    ref = extract_palette(img)
    for p in (pal, pal2):
        np.testing.assert_array_equal(p.lab, ref.lab)
        np.testing.assert_array_equal(p.weights, ref.weights)
    assert s == s2


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"guard": "off"}, {"fit_template": False}, {"guard": "warn", "strength": 0.5},
     {"keep_names": False, "neutral_safe": False}],
)
def test_harmonize_per_colour_is_bit_identical_to_per_pixel(w2c_available, rng, monkeypatch,
                                                             kwargs):
    img = photo_like(rng)
    assert unique_colours(img, max_share=0.5) is not None  # the per-colour path is taken
    got = harmonize_image(img, model_path=w2c_available, **kwargs)
    _no_dedupe(monkeypatch)
    ref = harmonize_image(img, model_path=w2c_available, **kwargs)
    np.testing.assert_array_equal(got.image, ref.image)
    np.testing.assert_array_equal(got.target_rgb, ref.target_rgb)
    assert got.info.get("guard") == ref.info.get("guard")
    assert got.info.get("template_fit") == ref.info.get("template_fit")
    assert got.info.get("harmony") == ref.info.get("harmony")


@pytest.mark.parametrize("name", ["kodim05", "kodim12"])  # kodim12: the guard's saturation step
def test_harmonize_kodak_per_colour_is_bit_identical(w2c_available, data_dir, monkeypatch, name):
    from sempix.image import load_rgb

    path = data_dir / "kodak24" / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"{path} not found (real-data test)")
    img = np.ascontiguousarray(load_rgb(path), dtype=np.float32)
    got = harmonize_image(img, model_path=w2c_available)
    _no_dedupe(monkeypatch)
    ref = harmonize_image(img, model_path=w2c_available)
    np.testing.assert_array_equal(got.image, ref.image)
    assert got.info["guard"] == ref.info["guard"]
    assert got.info["template_fit"] == ref.info["template_fit"]
