"""Slow, obviously correct colour conversions the :mod:`sempix.color` kernels are tested against."""

from __future__ import annotations

import numpy as np

from sempix.color.constants import _DELTA, _M, _MINV, _WHITE


def srgb_to_lab_ref(rgb: np.ndarray) -> np.ndarray:
    """Slow reference sRGB -> Lab. ``rgb`` (..., 3) in [0, 1] -> (..., 3) float64 Lab."""
    c = np.asarray(rgb, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _M.T / _WHITE
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_srgb_ref(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """Slow reference Lab -> sRGB. ``lab`` (..., 3) -> (..., 3) float64 (clipped to [0, 1] if
    ``clip``)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0)) * _WHITE
    lin = xyz @ _MINV.T
    c = np.where(
        lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) * np.sign(lin) - 0.055
    )
    return np.clip(c, 0.0, 1.0) if clip else c


def srgb_to_hsv_ref(rgb: np.ndarray) -> np.ndarray:
    """Slow numpy reference of :func:`srgb_to_hsv`."""
    c = np.asarray(rgb, dtype=np.float32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    mx = np.max(c, axis=-1)
    mn = np.min(c, axis=-1)
    d = mx - mn
    safe = np.where(d > 0, d, 1.0)
    h = np.where(
        mx == r,
        ((g - b) / safe) % 6.0,
        np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    h = np.where(d > 0, h * 60.0, 0.0) % 360.0
    s = np.where(mx > 0, d / np.where(mx > 0, mx, 1.0), 0.0)
    return np.stack([h, s, mx], axis=-1).astype(np.float32)


def unique_colours_ref(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct colours with ``np.unique`` over the float32 bit patterns: (first index of each
    distinct colour, in order of first appearance; inverse per pixel)."""
    bits = np.ascontiguousarray(np.asarray(rgb, dtype=np.float32).reshape(-1, 3)).view(np.uint32)
    _, first, inv = np.unique(bits, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # renumber by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[np.ravel(inv)]
