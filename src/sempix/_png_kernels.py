"""numba kernel of the PNG reader (:func:`sempix.image.read_image`, 16-bit PNGs).

A module of its own so that ``sempix.image`` imports numba only when a PNG needs unfiltering.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def unfilter(raw, H, stride, bpp):  # pragma: no cover - numba
    """PNG unfilter of ``raw`` (H * (stride + 1),) uint8 -> ((H, stride) uint8, ok)."""
    out = np.zeros((H, stride), np.uint8)
    for y in range(H):
        base = y * (stride + 1)
        ft = raw[base]
        if ft > 4:
            return out, False
        for i in range(stride):
            x = np.int32(raw[base + 1 + i])
            a = np.int32(out[y, i - bpp]) if i >= bpp else np.int32(0)
            b = np.int32(out[y - 1, i]) if y > 0 else np.int32(0)
            c = np.int32(out[y - 1, i - bpp]) if (y > 0 and i >= bpp) else np.int32(0)
            if ft == 0:
                pred = np.int32(0)
            elif ft == 1:
                pred = a
            elif ft == 2:
                pred = b
            elif ft == 3:
                pred = (a + b) // 2
            else:
                pa = abs(b - c)
                pb = abs(a - c)
                pc = abs(a + b - 2 * c)
                if pa <= pb and pa <= pc:
                    pred = a
                elif pb <= pc:
                    pred = b
                else:
                    pred = c
            out[y, i] = np.uint8((x + pred) & 255)
    return out, True
