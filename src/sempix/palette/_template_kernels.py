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


@njit(cache=True)
def _hue_histogram(inverse, hue, sat, achromatic, nbins, hist) -> None:
    """Saturation-weighted hue histogram of the chromatic pixels (``sat > achromatic``).

    inverse : (n,) int64 row of ``hue`` / ``sat`` of each pixel (its distinct colour), or (0,)
    when they have a row per pixel; hue : (m,) float32 degrees; sat : (m,) float64;
    hist : (nbins,) float64, added to in pixel order (the same sums as
    ``np.bincount(bins, weights=sat)`` over the chromatic pixels).
    """
    scale = np.float32(nbins / 360.0)
    n = inverse.shape[0] if inverse.shape[0] > 0 else hue.shape[0]
    direct = inverse.shape[0] == 0
    for p in range(n):
        r = p if direct else inverse[p]
        s = sat[r]
        if s > achromatic:
            b = int(hue[r] * scale)
            if b > nbins - 1:
                b = nbins - 1
            hist[b] += s


@njit(cache=True)
def _template_distance(hue, sat, achromatic, shifts, halves, out) -> None:
    """Distance (degrees, float32) of each hue to a rotated template, 0 inside and for achromatic
    pixels (``sat <= achromatic``).

    hue : (n,) float32; sat : (n,) float64; shifts : (m,) float32 sector centre - 180 (degrees);
    halves : (m,) float32 half widths; out : (n,) float32. The float32 arithmetic of
    :func:`sempix.palette.hue_templates.sector_distance` as evaluated by ``harmony_metrics``.
    """
    m = shifts.shape[0]
    full = np.float32(360.0)
    half_turn = np.float32(180.0)
    zero = np.float32(0.0)
    for p in range(hue.shape[0]):
        if not sat[p] > achromatic:
            out[p] = zero
            continue
        h = hue[p]
        d = zero
        for i in range(m):
            x = h - shifts[i]
            # x mod 360 as numpy computes it for float32 (fmod, then + 360 if negative); hues are
            # in [0, 360] and shifts in [-180, 180), so a subtraction or an addition of 360
            # does it (the subtraction is exact there, the addition rounds as numpy's does)
            while x >= full:
                x -= full
            while x < zero:
                x += full
            x = abs(x - half_turn) - halves[i]
            if i == 0 or x < d:
                d = x
        out[p] = d if d > zero else zero
