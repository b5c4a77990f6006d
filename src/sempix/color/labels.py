"""The one colour map for class labels (web mask editor, CLI feature previews)."""

from __future__ import annotations

import colorsys

import numpy as np


def label_colors(n: int) -> np.ndarray:
    """``n`` distinct, deterministic colours for class indices (golden-ratio hues, alternating
    saturation and value); index 0 ("others") is dark grey.

    Returns
    -------
    (n, 3) uint8
    """
    out = np.zeros((n, 3), np.uint8)
    for i in range(n):
        if i == 0:
            out[i] = (40, 40, 40)  # "others"
            continue
        h = (i * 0.618033988749895) % 1.0
        s = 0.55 + 0.35 * ((i // 3) % 2)
        v = 0.95 - 0.3 * ((i // 2) % 2)
        out[i] = np.round(np.array(colorsys.hsv_to_rgb(h, s, v)) * 255)
    return out
