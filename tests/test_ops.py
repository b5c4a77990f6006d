"""sempix.ops against scipy / scikit-image / numpy and the slow references (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sempix import ops
from sempix.errors import InputError

from reference.ops import guided_filter_reference


def test_box_filter_clipped_window(rng):
    a = rng.random((9, 11, 2))
    r = 2
    ref = np.zeros_like(a)
    for y in range(9):
        for x in range(11):
            ref[y, x] = a[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1].mean((0, 1))
    np.testing.assert_allclose(ops.box_filter(a, r), ref, atol=1e-12)
    # interior equals scipy's uniform filter
    np.testing.assert_allclose(ops.box_filter(a[..., 0], r)[r:-r, r:-r],
                               ndimage.uniform_filter(a[..., 0], 2 * r + 1)[r:-r, r:-r], atol=1e-12)
    np.testing.assert_allclose(ops.box_filter(np.full((5, 6), 3.0), 4), 3.0)


def test_guided_filter_matches_reference_one_border_rule(rng):
    guide = rng.random((12, 14, 3)).astype(np.float32)
    src = rng.random((12, 14)).astype(np.float32)
    out = ops.guided_filter(guide, src, 2, 1e-2, subsample=1)
    np.testing.assert_allclose(out, guided_filter_reference(guide, src, 2, 1e-2), atol=1e-4)
    # the mask tool's refinement uses the same filter
    from sempix.mask import refine_mask

    m = (rng.random((12, 14)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(refine_mask(m, guide, radius=2, eps=1e-2),
                               np.clip(ops.guided_filter(guide, m, 2, 1e-2), 0, 1), atol=1e-6)


def test_resize_against_skimage_and_no_8bit_rounding(rng):
    from skimage.transform import resize as sk_resize

    small = rng.random((6, 7, 3)).astype(np.float32)
    up = ops.resize(small, (18, 21))
    ref = sk_resize(small.astype(np.float64), (18, 21, 3), order=1, mode="edge",
                    anti_aliasing=False)
    np.testing.assert_allclose(up, ref, atol=1e-5)
    big = rng.random((40, 60)).astype(np.float32) * 1e-3  # below one 8-bit step
    down = ops.resize(big, (10, 15), filter="box")
    np.testing.assert_allclose(down, big.reshape(10, 4, 15, 4).mean((1, 3)), atol=1e-7)
    assert down.max() > 0  # not rounded to 8 bits
    assert ops.resize(big, (20, 30)).dtype == np.float32
    np.testing.assert_allclose(ops.resize(np.full((7, 9), 0.25), (3, 4)), 0.25, atol=1e-6)
    gauss = sk_resize(big.astype(np.float64), (10, 15), order=1, mode="edge", anti_aliasing=True)
    np.testing.assert_allclose(ops.resize(big, (10, 15), filter="gaussian"), gauss, atol=1e-9)
    with pytest.raises(InputError, match="filter"):
        ops.resize(big, (3, 3), filter="cubic")
    assert ops.work_shape((1000, 2000), 20000) == (100, 200)


def test_pca_matches_numpy_svd(rng):
    x = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6))
    mean, axes = ops.pca_basis(x.astype(np.float32), 3)
    u, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    for k in range(3):
        assert abs(abs(float(axes[:, k] @ vt[k])) - 1) < 1e-4
    red, info = ops.pca_reduce(x.reshape(20, 25, 6).astype(np.float32), 3)
    assert red.shape == (20, 25, 3) and red.min() >= 0 and red.max() <= 1
    r = ops.random_projection(6, 4, seed=3)
    np.testing.assert_array_equal(r, ops.random_projection(6, 4, seed=3))


def test_validate_messages():
    img = np.zeros((4, 5, 4), np.uint8)
    assert ops.as_rgb(img).shape == (4, 5, 3)
    assert ops.as_rgb(np.full((2, 2), 65535, np.uint16), grey_ok=True).max() == 1.0
    with pytest.raises(InputError, match=r"got shape \(4, 5\)"):
        ops.as_rgb(np.zeros((4, 5)))
    with pytest.raises(InputError, match=r"got \(3, 5\) vs image \(4, 5\)"):
        ops.as_mask(np.zeros((3, 5)), (4, 5, 3))
    assert ops.as_mask(np.ones((4, 5), bool), (4, 5)).dtype == np.float32
    with pytest.raises(InputError, match=r"got \(4, 6\) vs image \(4, 5\)"):
        ops.as_features(np.zeros((4, 6, 2)), (4, 5))
    with pytest.raises(InputError, match="NaN"):
        ops.as_rgb(np.full((2, 2, 3), np.nan), finite=True)


@pytest.mark.parametrize(
    "value,want", [("80%", 80), ("64", 64), (64, 64), (64.0, 64), (None, None)]
)
def test_parse_size(value, want):
    assert ops.parse_size(value, 100, "width") == want


@pytest.mark.parametrize("value,needle", [("abc", "pixels"), ("0", "at least 1"), (2.5, "whole")])
def test_parse_size_errors_name_no_cli_flags(value, needle):
    with pytest.raises(InputError, match=needle) as exc:
        ops.parse_size(value, 100, "width")
    assert "--" not in str(exc.value)
