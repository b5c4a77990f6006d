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
"""

from __future__ import annotations

import numpy as np

from sempix.color import srgb_to_lab
from sempix.ops.filters import box_filter

NAMES = ("L", "a", "b", "L_region", "a_region", "b_region", "std_fine", "std_coarse",
         "grad", "row", "col")
DIM = len(NAMES)
VERSION = 1


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
    r = max(2, round(min(H, W) / 64))
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
    return out
