"""Numba kernel of the template-fit step of harmonization (:func:`compress_into_template`'s
per-pixel loop; the numpy version in :mod:`sempix.palette.hue_templates` is its reference)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _compress_hues(hue, margin, centres, widths, knee, new_hue, outside) -> None:
    """Per pixel: new hue (degrees, [0, 360)) and distance to the template (0 inside).

    hue, margin : (n,) float32; centres, widths : (m,) float64 (absolute sectors); knee : float64;
    new_hue, outside : (n,) float32 outputs. Same mapping as
    :func:`sempix.palette.hue_templates.compress_into_template`.
    """
    m = centres.shape[0]
    for p in range(hue.shape[0]):
        h = float(hue[p])
        best = np.inf
        b_signed = 0.0
        b_i = 0
        for i in range(m):  # nearest sector (by distance to its border)
            x = h - centres[i] + 180.0
            signed = x - 360.0 * math.floor(x / 360.0) - 180.0  # in [-180, 180)
            border = max(abs(signed) - 0.5 * widths[i], 0.0)
            if border < best:
                best = border
                b_signed = signed
                b_i = i
        dist = abs(b_signed)
        half = 0.5 * widths[b_i]
        k = min(knee, 0.5 * half)
        mg = min(float(margin[p]), 0.5 * k)
        start = half - k
        nd = dist
        if dist > start:
            nd = start + (k - mg) * math.tanh((dist - start) / (k - mg))
        nh = centres[b_i] + (nd if b_signed >= 0.0 else -nd)
        new_hue[p] = nh - 360.0 * math.floor(nh / 360.0)
        outside[p] = best
