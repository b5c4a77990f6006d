"""Slow, obviously correct references for :mod:`sempix.recolor` kernels (tests only)."""

from __future__ import annotations

import numpy as np

from sempix.palette.naming import name_index
from sempix.recolor.lut import GUARD_BACK_MARCH, GUARD_BISECT, GUARD_MARCH, GUARD_SOFT


def apply_lut_reference(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Slow, obviously correct trilinear interpolation (tests)."""
    from scipy.interpolate import RegularGridInterpolator

    n = lut.shape[0]
    v = np.linspace(0, 1, n)
    pts = np.clip(np.asarray(image, np.float64).reshape(-1, 3), 0, 1)
    out = np.stack([RegularGridInterpolator((v, v, v), lut[..., c].astype(np.float64))(pts)
                    for c in range(3)], -1)
    return out.reshape(image.shape).astype(np.float32)


def guard_names_reference(reference: np.ndarray, output: np.ndarray, *, soft: float = GUARD_SOFT,
                          march: int = GUARD_MARCH, back_march: int = GUARD_BACK_MARCH,
                          bisect: int = GUARD_BISECT) -> np.ndarray:
    """Slow, obviously correct version of :func:`guard_names` (pure Python per pixel, tests).

    Names come from :func:`sempix.palette.naming.name_index`; the arithmetic is float32 throughout.
    """

    f32 = np.float32
    ref = np.asarray(reference, f32).reshape(-1, 3)
    res = np.array(output, f32).reshape(-1, 3)
    soft = f32(soft)

    def name_at(r: np.ndarray, d: np.ndarray, t, sign) -> int:
        return int(name_index(np.array([r[c] + f32(sign) * f32(t) * d[c] for c in range(3)], f32)))

    def first_change(r, d, n0, top, steps, sign):
        lo, hi, found = f32(0), f32(top), False
        for k in range(1, steps + 1):
            t = f32(top) * f32(k) / f32(steps) if top != 1 else f32(k) / f32(steps)
            if name_at(r, d, t, sign) != n0:
                hi, found = t, True
                break
            lo = t
        if found:
            for _ in range(bisect):
                mid = (lo + hi) * f32(0.5)
                lo, hi = (mid, hi) if name_at(r, d, mid, sign) == n0 else (lo, mid)
        return lo, found

    for i in range(len(ref)):
        r = ref[i]
        d = (res[i] - r).astype(f32)
        if not d.any():
            continue
        n0 = int(name_index(r))
        s, found = first_change(r, d, n0, 1, march, 1)
        if not found:
            s = f32(1)
        if soft > 0 and s > 0:
            tb, found = first_change(r, d, n0, soft, back_march, -1)
            s = min(s, (tb if found else soft) / soft)
        for _ in range(12):
            if s <= 0 or name_at(r, d, s, 1) == n0:
                break
            s = s * f32(0.5)
        if s > 0 and name_at(r, d, s, 1) != n0:
            s = f32(0)
        if s < 1:
            res[i] = np.array([r[c] + s * d[c] for c in range(3)], f32)
    return res.reshape(np.shape(output))
