"""Colour conversions used by the energies and distances (CIE L*a*b*, D65, sRGB input)."""

from __future__ import annotations

import numpy as np

from sempix.errors import InputError


def _as_rgb(img: np.ndarray, name: str = "img") -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(f"{name} must be an (H, W, 3) RGB array, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    return np.asarray(arr, dtype=np.float32)


def lab(img: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB image.

    Parameters
    ----------
    img : (H, W, 3) float array
        sRGB-encoded values in [0, 1] (values outside are clipped).

    Returns
    -------
    (H, W, 3) float32
        L* in [0, 100], a*, b* roughly in [-128, 127] (skimage ``rgb2lab``).
    """
    from skimage.color import rgb2lab

    rgb = np.clip(_as_rgb(img), 0.0, 1.0)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        return np.zeros(rgb.shape, np.float32)
    return np.ascontiguousarray(rgb2lab(rgb), dtype=np.float32)


def luminance(img: np.ndarray) -> np.ndarray:
    """Perceptual lightness CIE L* / 100 of an sRGB image.

    Parameters
    ----------
    img : (H, W, 3) float array in [0, 1] (sRGB), or an (H, W) array that is returned as
        float32 unchanged (already a luminance map).

    Returns
    -------
    (H, W) float32 in [0, 1]: 0 = black, 1 = white (D65).
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        return np.asarray(arr, dtype=np.float32)
    return np.ascontiguousarray(lab(arr)[..., 0] / np.float32(100.0), dtype=np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Exact sRGB decoding (IEC 61966-2-1): encoded values in [0, 1] -> linear light, float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Exact sRGB encoding of linear values (clipped to [0, 1] first), float32."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)
