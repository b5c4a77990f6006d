"""Slow, obviously correct references for :mod:`sempix.image` kernels (tests only)."""

from __future__ import annotations

import numpy as np


def png_unfilter_reference(raw: np.ndarray, H: int, stride: int, bpp: int) -> np.ndarray:
    """Slow, obviously-correct PNG unfilter (reference for tests)."""
    out = np.zeros((H, stride), np.int64)
    for y in range(H):
        ft = int(raw[y * (stride + 1)])
        row = raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)].astype(np.int64)
        for i in range(stride):
            a = out[y, i - bpp] if i >= bpp else 0
            b = out[y - 1, i] if y > 0 else 0
            c = out[y - 1, i - bpp] if (y > 0 and i >= bpp) else 0
            if ft == 0:
                pred = 0
            elif ft == 1:
                pred = a
            elif ft == 2:
                pred = b
            elif ft == 3:
                pred = (a + b) // 2
            elif ft == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
            else:
                raise ValueError(f"bad PNG filter type {ft}")
            out[y, i] = (row[i] + pred) & 255
    return out.astype(np.uint8)
