"""Colour constants (numpy only, cheap to import): sRGB primaries, D65 white, luma weights."""

from __future__ import annotations

import numpy as np

_M = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
_MINV = np.linalg.inv(_M)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0

#: Rec.709 / sRGB luma weights (the Y row of the sRGB -> XYZ matrix, rounded)
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float64)
