"""Seam removal on fixed importance maps (numba) and its slow reference.

The importance of a feature-map position (the L2 norm of its activations) does not change when
other positions are removed, so a carve on a fixed map is: repeat n times { dynamic programming for
the
8-connected vertical path of least total importance; remove it }. The result is a boolean mask of
the
removed positions in the *original* grid, exactly one per row per seam.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _carve_mask_nb(energy: np.ndarray, n: int, thresh: float, min_n: int) -> tuple[np.ndarray, int]:
    h, w = energy.shape
    removed = np.zeros((h, w), dtype=np.bool_)
    e = energy.astype(np.float64).copy()
    idx = np.empty((h, w), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            idx[y, x] = x
    cost = np.empty((h, w), dtype=np.float64)
    back = np.empty((h, w), dtype=np.int8)
    seam = np.empty(h, dtype=np.int64)
    cw = w
    done = 0
    for k in range(n):
        if cw <= 1:
            break
        for x in range(cw):
            cost[0, x] = e[0, x]
        for y in range(1, h):
            for x in range(cw):
                best = cost[y - 1, x]
                b = 0
                if x > 0 and cost[y - 1, x - 1] < best:
                    best = cost[y - 1, x - 1]
                    b = -1
                if x < cw - 1 and cost[y - 1, x + 1] < best:
                    best = cost[y - 1, x + 1]
                    b = 1
                cost[y, x] = e[y, x] + best
                back[y, x] = b
        xm = 0
        for x in range(1, cw):
            if cost[h - 1, x] < cost[h - 1, xm]:
                xm = x
        if k >= min_n and cost[h - 1, xm] / h > thresh:
            break
        seam[h - 1] = xm
        for y in range(h - 1, 0, -1):
            seam[y - 1] = seam[y] + back[y, seam[y]]
        for y in range(h):
            s = seam[y]
            removed[y, idx[y, s]] = True
            for x in range(s, cw - 1):
                e[y, x] = e[y, x + 1]
                idx[y, x] = idx[y, x + 1]
        cw -= 1
        done += 1
    return removed, done


def carve_mask(
    energy: np.ndarray, n: int, *, thresh: float = np.inf, min_n: int = 0
) -> tuple[np.ndarray, int]:
    """Remove up to ``n`` least-importance vertical seams from a fixed importance map.

    Parameters
    ----------
    energy : (H, W) float importance (not modified).
    n : maximum number of seams.
    thresh : stop before a seam whose mean importance exceeds ``thresh`` ...
    min_n : ... once at least ``min_n`` seams were removed.

    Returns
    -------
    removed : (H, W) bool, True at removed positions (``done`` per row).
    done : number of seams removed.
    """
    e = np.ascontiguousarray(energy, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError("energy must be 2-D")
    n = int(max(0, min(n, e.shape[1] - 1)))
    removed, done = _carve_mask_nb(e, n, float(thresh), int(min_n))
    return removed, int(done)
