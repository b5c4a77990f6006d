"""Private colour-space helpers (sRGB <-> CIE Lab, D65), float32 and vectorised.

Kept private to the recolor package so that it does not depend on another tool's internals.
"""

from __future__ import annotations

import numpy as np

_M_RGB2XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375],
     [0.2126729, 0.7151522, 0.0721750],
     [0.0193339, 0.1191920, 0.9503041]], dtype=np.float64)
_M_XYZ2RGB = np.linalg.inv(_M_RGB2XYZ)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear RGB, same shape, float32."""
    a = np.asarray(rgb, dtype=np.float32)
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB-encoded values, clipped to [0, 1], float32."""
    a = np.clip(np.asarray(lin, dtype=np.float32), 0.0, 1.0)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1 / 2.4) - 0.055).astype(np.float32)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in [0, 1] -> CIE Lab (..., 3) float32 (L in [0, 100])."""
    lin = srgb_to_linear(rgb)
    xyz = lin @ (_M_RGB2XYZ / _WHITE[:, None]).T.astype(np.float32)
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(np.maximum(xyz, 0)), (kappa * xyz + 16) / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (..., 3) -> sRGB (..., 3) float32, clipped to [0, 1]."""
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    eps, kappa = 216 / 24389, 24389 / 27

    def finv(t: np.ndarray) -> np.ndarray:
        t3 = t ** 3
        return np.where(t3 > eps, t3, (116 * t - 16) / kappa)

    xyz = np.stack([finv(fx), finv(fy), finv(fz)], axis=-1) * _WHITE.astype(np.float32)
    lin = xyz @ _M_XYZ2RGB.T.astype(np.float32)
    return linear_to_srgb(lin)


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in Lab), shape (...)."""
    return np.sqrt(np.sum((np.asarray(lab1, np.float32) - np.asarray(lab2, np.float32)) ** 2, axis=-1))


def hex_to_rgb(text: str) -> np.ndarray:
    """``"#aabbcc"`` (or ``"aabbcc"``, ``"#abc"``) -> (3,) float32 in [0, 1]; ValueError if malformed."""
    s = text.strip().lstrip("#")
    if len(s) == 3:
        s = "".join(c * 2 for c in s)
    if len(s) != 6 or any(c not in "0123456789abcdefABCDEF" for c in s):
        raise ValueError(f"not a hex colour: {text!r}")
    return np.array([int(s[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


def rgb_to_hex(rgb: np.ndarray) -> str:
    """(3,) float RGB in [0, 1] -> ``"#rrggbb"``."""
    v = np.clip(np.rint(np.asarray(rgb, dtype=np.float64) * 255), 0, 255).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*v)
