"""Minimax ("connected") distance: the mask stays connected to the click.

For a distance map ``D`` (H, W) and a clicked pixel ``x``, the minimax path distance is

    G(p) = min over 4-connected paths x -> p of  max_{q on the path} D(q)

so ``G < tau`` is exactly the 4-connected component of ``D < tau`` that contains the click (empty
when ``D(x) >= tau``), for every ``tau`` at once: thresholding ``G`` is what a flood fill from the
click on ``D < tau`` would give, and ``tau`` / feather keep their meaning. ``G >= D`` everywhere.
Computed by a priority flood (Dijkstra with ``max`` instead of ``+``), O(N log N).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sempix.errors import InputError


@njit(cache=True)
def _minimax_kernel(d: np.ndarray, y0: int, x0: int) -> np.ndarray:  # pragma: no cover - numba
    H, W = d.shape
    out = np.full((H, W), np.inf, dtype=np.float32)
    done = np.zeros((H, W), dtype=np.bool_)
    n = H * W
    # binary heap of (key, flat index)
    keys = np.empty(4 * n + 4, dtype=np.float32)
    idx = np.empty(4 * n + 4, dtype=np.int64)
    size = 0
    keys[0] = d[y0, x0]
    idx[0] = y0 * W + x0
    size = 1
    out[y0, x0] = d[y0, x0]
    while size > 0:
        k = keys[0]
        i = idx[0]
        size -= 1
        if size > 0:  # move last to the root and sift down
            lk = keys[size]
            li = idx[size]
            j = 0
            while True:
                c = 2 * j + 1
                if c >= size:
                    break
                if c + 1 < size and keys[c + 1] < keys[c]:
                    c += 1
                if keys[c] < lk:
                    keys[j] = keys[c]
                    idx[j] = idx[c]
                    j = c
                else:
                    break
            keys[j] = lk
            idx[j] = li
        y = i // W
        x = i - y * W
        if done[y, x]:
            continue
        done[y, x] = True
        for t in range(4):
            yy = y
            xx = x
            if t == 0:
                yy = y - 1
            elif t == 1:
                yy = y + 1
            elif t == 2:
                xx = x - 1
            else:
                xx = x + 1
            if yy < 0 or yy >= H or xx < 0 or xx >= W or done[yy, xx]:
                continue
            v = d[yy, xx]
            if k > v:
                v = k
            if v < out[yy, xx]:
                out[yy, xx] = v
                # push and sift up
                j = size
                size += 1
                while j > 0:
                    p = (j - 1) // 2
                    if keys[p] > v:
                        keys[j] = keys[p]
                        idx[j] = idx[p]
                        j = p
                    else:
                        break
                keys[j] = v
                idx[j] = yy * W + xx
    return out


def minimax_distance(distance: np.ndarray, point) -> np.ndarray:
    """Minimax path distance from one pixel (see the module docstring).

    Parameters
    ----------
    distance : (H, W) float distance map (finite).
    point : (x, y) pixel (column, row) inside the map.

    Returns
    -------
    (H, W) float32, ``>= distance``, equal to ``distance`` at ``point``.
    """
    d = np.ascontiguousarray(distance, dtype=np.float32)
    if d.ndim != 2 or d.size == 0:
        raise InputError(f"distance must be a non-empty (H, W) map, got shape {d.shape}")
    x, y = int(point[0]), int(point[1])
    H, W = d.shape
    if not (0 <= x < W and 0 <= y < H):
        raise InputError(f"point ({x}, {y}) is outside the {W}x{H} map")
    if not np.isfinite(d).all():
        raise InputError("distance must be finite")
    return _minimax_kernel(d, y, x)
