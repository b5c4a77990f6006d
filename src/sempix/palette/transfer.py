"""Palette-based recolouring by inverse-distance weighting (IDW) in the ab plane, L unchanged.

For a pixel with Lab colour (L, x) (x = its (a, b)) and palette pairs (s_i -> t_i) in ab::

    w_i = 1 / (|x - s_i|^2 + eps)                 (eps = 1e-4, Lab units squared)
    x'  = x + sum_i (w_i / sum_j w_j) (t_i - s_i)
    L'  = L

The weights are normalised, so a pixel whose ab equals s_j moves (to float precision) to t_j;
pixels within 1e-5 ab units of a source colour are snapped to its target exactly. The result is
converted back to sRGB with an L-preserving gamut mapping (out-of-gamut chroma is reduced along
the hue line, see :func:`sempix.color.lab_to_srgb`), so the CIE L* of every pixel is
kept (up to float precision; 8-bit output adds at most about 0.2 L* of rounding).

Chroma guard (``chroma_guard=True``, used by harmonization): every palette term is scaled by the
pixel's own chroma relative to that palette colour's, capped at 1::

    g_i(x) = min(1, |x| / |s_i|)        (g_i = 1 when |s_i| is below 1e-6)
    x'     = x + sum_i (w_i / sum_j w_j) g_i(x) (t_i - s_i)

so a neutral pixel (|x| = 0) never moves and a near-neutral one moves in proportion to its
chroma, while a pixel equal to s_j still moves exactly to t_j (g_j = 1 there). Without the guard a
white or grey pixel takes a weighted mean of all palette shifts and gets a colour cast.

The whole chain (sRGB -> Lab -> IDW -> sRGB) runs per pixel in one numba loop (parallel over rows
from one megapixel up; below that, thread start-up costs more than it saves): no image-sized
temporaries besides the output.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from sempix._runtime import run_parallel
from sempix.color.kernels import (
    PARALLEL_MIN_PIXELS,
    TABLE_FROM_LIN,
    TABLE_TO_LIN,
    lab_to_srgb_gamut1_t,
    srgb_to_lab1_t,
)
from sempix.errors import InputError
from sempix.progress import ProgressFn, report

EPS = 1e-4


@njit(cache=True, inline="always")
def _idw_pixel(img, y, x, src, delta, eps, guard, out, tin, tout) -> None:
    k = src.shape[0]
    L, a, b = srgb_to_lab1_t(img[y, x, 0], img[y, x, 1], img[y, x, 2], tin)
    wsum = 0.0
    da = 0.0
    db = 0.0
    snapped = -1
    for i in range(k):
        d2 = (a - src[i, 0]) ** 2 + (b - src[i, 1]) ** 2
        if d2 < 1e-10:
            snapped = i
            break
        wi = 1.0 / (d2 + eps)
        wsum += wi
        g = 1.0
        if guard[i] > 0.0:  # guard[i] = 1 / |s_i| (0 = no guard for this term)
            g = min(1.0, math.sqrt(a * a + b * b) * guard[i])
        da += wi * g * delta[i, 0]
        db += wi * g * delta[i, 1]
    if snapped >= 0:
        a2 = src[snapped, 0] + delta[snapped, 0]
        b2 = src[snapped, 1] + delta[snapped, 1]
    else:
        a2 = a + da / wsum
        b2 = b + db / wsum
    r, g, bb = lab_to_srgb_gamut1_t(L, a2, b2, tout)
    out[y, x, 0] = r
    out[y, x, 1] = g
    out[y, x, 2] = bb


@njit(cache=True, parallel=True)
def _idw_rows_par(img, src, delta, eps, guard, out, tin, tout) -> None:
    for y in prange(img.shape[0]):
        for x in range(img.shape[1]):
            _idw_pixel(img, y, x, src, delta, eps, guard, out, tin, tout)


@njit(cache=True)
def _idw_rows_ser(img, src, delta, eps, guard, out, tin, tout) -> None:
    for y in range(img.shape[0]):
        for x in range(img.shape[1]):
            _idw_pixel(img, y, x, src, delta, eps, guard, out, tin, tout)


def _guard_factors(src_ab: np.ndarray, chroma_guard: bool) -> np.ndarray:
    """(k,) 1/|s_i| per palette colour, 0 where the guard is off or |s_i| < 1e-6."""
    c = np.hypot(src_ab[:, 0], src_ab[:, 1])
    if not chroma_guard:
        return np.zeros(len(src_ab))
    return np.where(c > 1e-6, 1.0 / np.maximum(c, 1e-6), 0.0)


def recolor_palette(
    image: np.ndarray,
    src_lab: np.ndarray,
    tgt_lab: np.ndarray,
    *,
    eps: float = EPS,
    chroma_guard: bool = False,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Recolour an image by moving its palette colours ``src_lab`` to ``tgt_lab`` (IDW in ab, L
    kept).

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1] (any (..., 3) array of colours works too)
    src_lab : (k, 3) source palette in Lab (only a, b are used)
    tgt_lab : (k, 3) target palette in Lab (only a, b are used; L of the pixels is never changed)
    eps : IDW regulariser in squared Lab units
    chroma_guard : scale each palette term by ``min(1, |x| / |s_i|)`` (pixel chroma over the palette
        colour's chroma; module doc), so that neutral pixels keep no colour cast. Palette colours
        still map exactly to their targets.

    Returns
    -------
    float32 sRGB in [0, 1], same shape as ``image``.
    """
    img = np.asarray(image)
    if img.ndim < 1 or img.shape[-1] != 3:
        raise InputError(
            f"expected (..., 3) RGB colours or an (H, W, 3) image, got shape {img.shape}"
        )
    shape = img.shape
    if img.ndim != 3:
        img = img.reshape(-1, 1, 3)
    s = np.asarray(src_lab, dtype=np.float64)
    t = np.asarray(tgt_lab, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 3 or s.shape != t.shape or len(s) == 0:
        raise InputError(
            f"source and target palettes must both be (k, 3) Lab arrays, got {s.shape} and "
            f"{t.shape}"
        )
    report(progress, 0.0, "recolouring")
    img32 = np.ascontiguousarray(img, dtype=np.float32)
    out = np.empty_like(img32)
    src_ab = np.ascontiguousarray(s[:, 1:])
    delta = np.ascontiguousarray(t[:, 1:] - s[:, 1:])
    guard = np.ascontiguousarray(_guard_factors(src_ab, chroma_guard))
    args = (img32, src_ab, delta, float(eps), guard, out, TABLE_TO_LIN, TABLE_FROM_LIN)
    if img32.shape[0] * img32.shape[1] >= PARALLEL_MIN_PIXELS:
        run_parallel(_idw_rows_par, *args)
    else:
        _idw_rows_ser(*args)
    report(progress, 1.0, "recoloured")
    return out.reshape(shape)
