"""Colour helpers of the recolor tool that :mod:`sempix.palette.color` does not provide.

sRGB <-> Lab, hex parsing and formatting come from :mod:`sempix.palette.color` (``srgb_to_lab``,
``parse_color``, ``to_hex``); only the pieces below are recolor's own.
"""

from __future__ import annotations

import numpy as np

from sempix.distance.color import linear_to_srgb, srgb_to_linear  # noqa: F401 (re-exported)
from sempix.palette.color import lab_to_srgb_ref


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (..., 3) -> sRGB (..., 3) float32, out-of-gamut colours clipped per channel to [0, 1].

    Unlike :func:`sempix.palette.color.lab_to_srgb` (which reduces chroma to keep hue), this clips
    each channel; the colour-naming rule and the swatches were tuned with it.
    """
    return lab_to_srgb_ref(lab, clip=True).astype(np.float32)


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in Lab), shape (...)."""
    return np.sqrt(np.sum((np.asarray(lab1, np.float32) - np.asarray(lab2, np.float32)) ** 2, axis=-1))
