"""Slow, obviously correct references for :mod:`sempix.retarget` kernels (tests only)."""

from __future__ import annotations

import numpy as np


def carve_mask_reference(energy: np.ndarray, n: int) -> np.ndarray:
    """Slow, obviously-correct reference of :func:`carve_mask` (no threshold): Python lists, plain
    loops."""
    h, w = energy.shape
    rows = [[(float(energy[y, x]), x) for x in range(w)] for y in range(h)]
    removed = np.zeros((h, w), dtype=bool)
    for _ in range(n):
        cw = len(rows[0])
        cost = [[0.0] * cw for _ in range(h)]
        back = [[0] * cw for _ in range(h)]
        for x in range(cw):
            cost[0][x] = rows[0][x][0]
        for y in range(1, h):
            for x in range(cw):
                best, b = cost[y - 1][x], 0
                if x > 0 and cost[y - 1][x - 1] < best:
                    best, b = cost[y - 1][x - 1], -1
                if x < cw - 1 and cost[y - 1][x + 1] < best:
                    best, b = cost[y - 1][x + 1], 1
                cost[y][x] = rows[y][x][0] + best
                back[y][x] = b
        xm = min(range(cw), key=lambda x: (cost[h - 1][x], x))
        path = [0] * h
        path[h - 1] = xm
        for y in range(h - 1, 0, -1):
            path[y - 1] = path[y] + back[y][path[y]]
        for y in range(h):
            removed[y, rows[y][path[y]][1]] = True
            del rows[y][path[y]]
    return removed
