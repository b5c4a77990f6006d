"""The colour maps of the package: class labels (web editor, previews) and a sequential ramp."""

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


# a compact perceptual colormap (magma-like anchors), value 0 -> black, 1 -> light yellow
RAMP = np.array(
    [
        [0.001, 0.000, 0.014],
        [0.232, 0.060, 0.438],
        [0.550, 0.161, 0.506],
        [0.868, 0.288, 0.409],
        [0.994, 0.624, 0.427],
        [0.987, 0.991, 0.750],
    ],
    np.float32,
)



def colormap(x: np.ndarray) -> np.ndarray:
    """Sequential colour map (magma-like): (...) values in [0, 1] -> (..., 3) float32 in [0, 1].

    Values outside [0, 1] are clipped; 0 is near-black, 1 light yellow (energy maps, importance).
    """
    v = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    t = v * (len(RAMP) - 1)
    i0 = np.minimum(np.floor(t).astype(np.int32), len(RAMP) - 2)
    f = (t - i0)[..., None]
    return ((1 - f) * RAMP[i0] + f * RAMP[i0 + 1]).astype(np.float32)
