"""Colour helpers of the recolor tool that :mod:`sempix.palette.color` does not provide.

sRGB <-> Lab, hex parsing and formatting come from :mod:`sempix.palette.color` (``srgb_to_lab``,
``parse_color``, ``to_hex``); only the pieces below are recolor's own.
"""

from __future__ import annotations

import numpy as np

from sempix.palette.color import lab_to_srgb_ref


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear RGB, same shape, float32."""
    a = np.asarray(rgb, dtype=np.float32)
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB-encoded values, clipped to [0, 1], float32."""
    a = np.clip(np.asarray(lin, dtype=np.float32), 0.0, 1.0)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1 / 2.4) - 0.055).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (..., 3) -> sRGB (..., 3) float32, out-of-gamut colours clipped per channel to [0, 1].

    Unlike :func:`sempix.palette.color.lab_to_srgb` (which reduces chroma to keep hue), this clips
    each channel; the colour-naming rule and the swatches were tuned with it.
    """
    return lab_to_srgb_ref(lab, clip=True).astype(np.float32)


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in Lab), shape (...)."""
    return np.sqrt(np.sum((np.asarray(lab1, np.float32) - np.asarray(lab2, np.float32)) ** 2, axis=-1))
