"""Weight-free low-level feature backend (fallback; NOT semantic).

Per pixel, 11 channels, computed at full resolution (``r = max(2, round(min(H, W) / 64))``):

====  ==========================================================  =========
 ch    what                                                        scale
====  ==========================================================  =========
 0-2   CIE L*, a*, b* of the pixel (D65)                           / 100
 3-5   L*, a*, b* averaged over a (4r+1)^2 box (region colour)       / 100
 6     std of L* over a (2r+1)^2 box (fine texture)                 / 25
 7     std of L* over a (4r+1)^2 box (coarse texture)               / 25
 8     mean gradient magnitude of L* over a (2r+1)^2 box (edges)    / 25
 9-10  row, column position / max(H, W)                           x 0.5
====  ==========================================================  =========

The scales make each group span roughly [0, 1] so that no group dominates L2 distances.
These features separate colour/texture regions; they know nothing about objects, and
:class:`~sempix.features.FeatureMap` says so with ``semantic=False`` and ``labels=None``.

The smooth box-filtered channels 3-8 are sampled on a grid of every ``max(2, r // 2)``-th pixel,
rounded to float16 and bilinearly interpolated (within a few 1e-3 of the exact box averages except
near sharp edges). That is what feature files and the cache store (:func:`compact`, ~0.25 MB per MP
instead of 22 MB of full-resolution float16); channels 0-2 and 9-10 are recomputed from the image
(:func:`rebuild`, much faster than :func:`lowlevel_features`), so a fresh map, a cache hit and a
loaded file are equal.
"""

from __future__ import annotations

import numpy as np

from sempix.color import srgb_to_lab
from sempix.ops.filters import box_filter

NAMES = ("L", "a", "b", "L_region", "a_region", "b_region", "std_fine", "std_coarse",
         "grad", "row", "col")
DIM = len(NAMES)
VERSION = 2  # 2: box-filtered channels interpolated from their float16 grid (issue 20)


#: channels kept on a coarse grid by :func:`compact` (box-filtered, smooth)
SMOOTH = slice(3, 9)


def radius(H: int, W: int) -> int:
    """Box radius ``r`` of the features of an ``H x W`` image."""
    return max(2, round(min(H, W) / 64))


def smooth_stride(H: int, W: int) -> int:
    """Grid step of the stored smooth channels (half the smallest box radius, at least 2)."""
    return max(2, radius(H, W) // 2)


def _knots(n: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions ``0, step, 2 step, ..., n - 1`` and every pixel's fractional knot index."""
    pos = np.minimum(np.arange((n + step - 2) // step + 1) * step, n - 1)
    coords = np.interp(np.arange(n, dtype=np.float64), pos, np.arange(len(pos), dtype=np.float64))
    return pos, coords


def compact(features: np.ndarray) -> dict[str, np.ndarray]:
    """What :func:`rebuild` needs besides the image: the smooth channels on a coarse grid.

    Parameters
    ----------
    features : (H, W, 11) float32 from :func:`lowlevel_features`

    Returns
    -------
    ``{"lowlevel_smooth": (h', w', 6) float16, "lowlevel_stride": () int}``
    """
    H, W = features.shape[:2]
    st = smooth_stride(H, W)
    py, _ = _knots(H, st)
    px, _ = _knots(W, st)
    return {
        "lowlevel_smooth": np.ascontiguousarray(features[py][:, px, SMOOTH], dtype=np.float16),
        "lowlevel_stride": np.array(st),
    }


def rebuild(image: np.ndarray, arrays) -> np.ndarray:
    """The 11 channels from the image and :func:`compact`'s arrays.

    Equal to :func:`lowlevel_features` of the same image (which interpolates channels 3-8 from
    the same float16 grid).

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1], the image the features were computed from
    arrays : mapping with ``lowlevel_smooth`` and ``lowlevel_stride``

    Returns
    -------
    (H, W, 11) float32
    """
    from sempix.ops.resample import upsample

    H, W = image.shape[:2]
    st = int(arrays["lowlevel_stride"])
    _, cy = _knots(H, st)
    _, cx = _knots(W, st)
    out = np.empty((H, W, DIM), np.float32)
    out[..., 0:3] = srgb_to_lab(image) / 100.0  # the expression of lowlevel_features (exact)
    out[..., SMOOTH] = upsample(np.asarray(arrays["lowlevel_smooth"], np.float32), cy, cx)
    s = 0.5 / max(H, W)
    out[..., 9] = (np.arange(H, dtype=np.float32) * s)[:, None]
    out[..., 10] = (np.arange(W, dtype=np.float32) * s)[None, :]
    return out


def lowlevel_features(image: np.ndarray) -> np.ndarray:
    """Compute the 11 low-level channels described in the module docstring.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1]

    Returns
    -------
    (H, W, 11) float32
    """
    H, W = image.shape[:2]
    r = radius(H, W)
    lab = srgb_to_lab(image)
    L = lab[..., 0].astype(np.float64)
    out = np.empty((H, W, DIM), np.float32)
    out[..., 0:3] = lab / 100.0
    out[..., 3:6] = box_filter(lab, 2 * r) / 100.0
    for ch, rad in ((6, r), (7, 2 * r)):
        m = box_filter(L, rad)
        m2 = box_filter(L * L, rad)
        out[..., ch] = np.sqrt(np.maximum(m2 - m * m, 0.0)) / 25.0
    gy = np.gradient(L, axis=0) if H > 1 else np.zeros_like(L)
    gx = np.gradient(L, axis=1) if W > 1 else np.zeros_like(L)
    out[..., 8] = box_filter(np.hypot(gy, gx), r) / 25.0
    s = 0.5 / max(H, W)
    out[..., 9] = (np.arange(H, dtype=np.float32) * s)[:, None]
    out[..., 10] = (np.arange(W, dtype=np.float32) * s)[None, :]
    # the box averages as stored (float16 grid, bilinear): a fresh map, a cache hit and a feature
    # file are then the same numbers (no results that depend on the cache's state)
    from sempix.ops.resample import upsample

    st = smooth_stride(H, W)
    py, cy = _knots(H, st)
    px, cx = _knots(W, st)
    grid = out[py][:, px, SMOOTH].astype(np.float16).astype(np.float32)
    out[..., SMOOTH] = upsample(grid, cy, cx)
    return out
