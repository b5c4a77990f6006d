"""sempix.color against scikit-image and published values (issue 13: one core for colour)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skc

from sempix import color
from sempix.errors import InputError

from reference.color import lab_to_srgb_ref, srgb_to_hsv_ref, srgb_to_lab_ref


@pytest.fixture
def colours(rng):
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return np.concatenate([grid, rng.random((500, 3))]).astype(np.float32)


def test_srgb_to_lab_matches_skimage(colours):
    got = color.srgb_to_lab(colours)
    want = skc.rgb2lab(colours.astype(np.float64))
    # skimage's sRGB matrix differs from IEC 61966-2-1's in the 4th-5th digit
    assert np.abs(got - want).max() < 0.02
    assert np.abs(got - srgb_to_lab_ref(colours)).max() < 1e-3
    assert got.dtype == np.float32 and got.shape == colours.shape


def test_known_values():
    # CIE L*a*b* of the sRGB primaries (D65), as tabulated by Lindbloom / skimage
    red = color.srgb_to_lab(np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(red, [53.24, 80.09, 67.20], atol=0.05)
    np.testing.assert_allclose(color.srgb_to_lab(np.ones(3)), [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(color.srgb_to_lab(np.zeros(3)), [0, 0, 0], atol=1e-4)
    # 18% grey: L* = 50 at encoded value ~0.4663
    assert color.srgb_to_lab(np.full(3, 0.46635))[0] == pytest.approx(50.0, abs=0.02)


@pytest.mark.filterwarnings("ignore:Conversion from CIE-LAB")
def test_lab_to_srgb_round_trip_and_gamuts(colours):
    lab = color.srgb_to_lab(colours)
    for gamut in color.GAMUTS:
        back = color.lab_to_srgb(lab, gamut=gamut)
        assert np.abs(back - colours).max() < 2e-4
    out_of_gamut = np.array([[60.0, 120.0, -90.0], [30.0, -80.0, 90.0]])
    clip = color.lab_to_srgb(out_of_gamut, gamut="clip")
    np.testing.assert_allclose(clip, lab_to_srgb_ref(out_of_gamut, clip=True), atol=1e-5)
    np.testing.assert_allclose(clip, np.clip(skc.lab2rgb(out_of_gamut), 0, 1), atol=0.01)
    chroma = color.lab_to_srgb(out_of_gamut, gamut="chroma")
    lab_c = color.srgb_to_lab(chroma)
    assert np.abs(lab_c[:, 0] - out_of_gamut[:, 0]).max() < 0.05  # L* kept
    hue = np.arctan2(out_of_gamut[:, 2], out_of_gamut[:, 1])
    np.testing.assert_allclose(np.arctan2(lab_c[:, 2], lab_c[:, 1]), hue, atol=0.01)  # hue kept
    with pytest.raises(InputError, match="gamut"):
        color.lab_to_srgb(out_of_gamut, gamut="nope")


def test_linear_xyz_lab_chain_matches_skimage(colours):
    lin = color.srgb_to_linear(colours)
    np.testing.assert_allclose(color.linear_to_srgb(lin), colours, atol=1e-5)
    xyz = color.linear_to_xyz(lin)
    np.testing.assert_allclose(xyz, skc.rgb2xyz(colours.astype(np.float64)), atol=2e-4)
    np.testing.assert_allclose(color.xyz_to_lab(xyz), srgb_to_lab_ref(colours), atol=1e-4)
    np.testing.assert_allclose(color.lab_to_xyz(color.xyz_to_lab(xyz)), xyz, atol=1e-9)
    np.testing.assert_allclose(color.xyz_to_linear(xyz), lin, atol=1e-6)


def test_hsv_matches_skimage(colours):
    hsv = color.srgb_to_hsv(colours)
    sk = skc.rgb2hsv(colours)
    np.testing.assert_allclose(hsv[:, 1:], sk[:, 1:], atol=1e-5)
    chromatic = sk[:, 1] > 1e-3
    d = np.abs(hsv[chromatic, 0] / 360.0 - sk[chromatic, 0])
    assert np.minimum(d, 1 - d).max() < 1e-4
    np.testing.assert_allclose(hsv, srgb_to_hsv_ref(colours), atol=1e-4)
    np.testing.assert_allclose(color.hsv_to_srgb(hsv), colours, atol=1e-5)


def test_one_luma_and_lightness():
    np.testing.assert_allclose(color.LUMA, [0.2126, 0.7152, 0.0722])
    assert color.LUMA.sum() == pytest.approx(1.0)
    grey = np.full((2, 2, 3), 0.3, np.float32)
    np.testing.assert_allclose(color.luma(grey), 0.3, atol=1e-6)
    img = np.random.default_rng(1).random((4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(color.lightness(img), skc.rgb2lab(img)[..., 0] / 100, atol=2e-4)
    np.testing.assert_array_equal(color.lightness(img[..., 0]), img[..., 0])


def test_hex_and_errors():
    np.testing.assert_allclose(color.parse_color("#ff8800"), [1, 136 / 255, 0])
    assert color.to_hex(color.parse_color("12,34,56")) == "#0c2238"
    with pytest.raises(ValueError):
        color.parse_color("#zz0000")
    with pytest.raises(InputError, match="got shape"):
        color.srgb_to_lab(np.zeros((4, 2)))
    assert color.srgb_to_lab(np.zeros((0, 3))).shape == (0, 3)


def test_label_colors_one_map():
    from sempix.features.preview import class_colors

    cols = color.label_colors(20)
    assert cols.shape == (20, 3) and cols.dtype == np.uint8
    assert tuple(cols[0]) == (40, 40, 40)
    assert len({tuple(c) for c in cols}) == 20
    assert class_colors is color.label_colors  # previews and the web editor share it
