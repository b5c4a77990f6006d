"""Slow, obviously correct references for :mod:`sempix.softseg` kernels (tests only)."""

from __future__ import annotations

import numpy as np


def centroid_pixels_reference(labels: np.ndarray) -> np.ndarray:
    """Slow reference of :func:`centroid_pixels` (for tests)."""
    n = int(labels.max()) + 1
    w = labels.shape[1]
    out = np.full(n, -1, dtype=np.int64)
    for s in range(n):
        ys, xs = np.nonzero(labels == s)
        if len(ys) == 0:
            continue
        cy, cx = ys.mean(), xs.mean()
        d = (ys - cy) ** 2 + (xs - cx) ** 2
        k = int(np.argmin(d))  # first minimum in raster order, like the fast version
        out[s] = ys[k] * w + xs[k]
    return out
