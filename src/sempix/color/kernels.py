"""numba kernels of the colour conversions (sRGB/D65, CIE 1976 L*a*b*); see :mod:`sempix.color`.

Scalar kernels (``srgb_to_lab1``, ``lab_to_lin1``, ``lab_to_srgb_gamut1``...) are inlined into other
tools' numba loops (palette transfer, recolor LUTs); the ``*_flat`` kernels convert (N, 3) arrays.
The slow obviously-correct references they are tested against live in ``tests/reference/color.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from sempix.color.constants import _DELTA, _M, _MINV, _WHITE  # noqa: F401 (re-exported)


# ----------------------------------------------------------------------------- numba scalar kernels
@njit(cache=True, inline="always")
def _to_lin(c: float) -> float:
    if c <= 0.04045:
        return c / 12.92
    return ((c + 0.055) / 1.055) ** 2.4


@njit(cache=True, inline="always")
def _from_lin(c: float) -> float:
    if c <= 0.0031308:
        return 12.92 * c
    return 1.055 * c ** (1.0 / 2.4) - 0.055


@njit(cache=True, inline="always")
def _f(t: float) -> float:
    if t > 0.008856451679035631:  # (6/29)^3
        return np.cbrt(t)
    return t / 0.12841854934601665 + 4.0 / 29.0  # 3 (6/29)^2


@njit(cache=True, inline="always")
def _finv(f: float) -> float:
    if f > 0.20689655172413793:
        return f * f * f
    return 0.12841854934601665 * (f - 4.0 / 29.0)


@njit(cache=True)
def srgb_to_lab1(r: float, g: float, b: float) -> tuple[float, float, float]:
    """One sRGB colour in [0, 1] -> (L, a, b)."""
    rl = _to_lin(r)
    gl = _to_lin(g)
    bl = _to_lin(b)
    x = (0.4124564 * rl + 0.3575761 * gl + 0.1804375 * bl) / 0.95047
    y = 0.2126729 * rl + 0.7151522 * gl + 0.0721750 * bl
    z = (0.0193339 * rl + 0.1191920 * gl + 0.9503041 * bl) / 1.08883
    fx = _f(x)
    fy = _f(y)
    fz = _f(z)
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


@njit(cache=True)
def lab_to_lin1(L: float, a: float, b: float) -> tuple[float, float, float]:
    """One Lab colour -> linear RGB (unclipped)."""
    fy = (L + 16.0) / 116.0
    x = _finv(fy + a / 500.0) * 0.95047
    y = _finv(fy)
    z = _finv(fy - b / 200.0) * 1.08883
    rl = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
    gl = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
    bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
    return rl, gl, bl


@njit(cache=True, inline="always")
def _out_of_gamut(r: float, g: float, b: float) -> bool:
    eps = 1e-6
    return r < -eps or g < -eps or b < -eps or r > 1 + eps or g > 1 + eps or b > 1 + eps


@njit(cache=True)
def chroma_fit1(L: float, a: float, b: float) -> tuple[float, float, float]:
    """One Lab colour -> linear RGB in [0, 1], keeping L and hue: an out-of-gamut colour has its
    chroma reduced (bisection on a scale of (a, b)) until it fits; a grey of the same L fits."""
    rl, gl, bl = lab_to_lin1(L, a, b)
    if _out_of_gamut(rl, gl, bl):
        lo = 0.0
        hi = 1.0
        for _ in range(18):
            mid = 0.5 * (lo + hi)
            r2, g2, b2 = lab_to_lin1(L, a * mid, b * mid)
            if _out_of_gamut(r2, g2, b2):
                hi = mid
            else:
                lo = mid
        rl, gl, bl = lab_to_lin1(L, a * lo, b * lo)
    return min(max(rl, 0.0), 1.0), min(max(gl, 0.0), 1.0), min(max(bl, 0.0), 1.0)


@njit(cache=True)
def lab_to_srgb_gamut1(L: float, a: float, b: float) -> tuple[float, float, float]:
    """One Lab colour -> sRGB in [0, 1], keeping L and hue: an out-of-gamut colour has its chroma
    reduced (bisection on a scale of (a, b)) until it fits; a grey of the same L always fits."""
    if L <= 0.0:
        return 0.0, 0.0, 0.0
    if L >= 100.0:
        return 1.0, 1.0, 1.0
    rl, gl, bl = chroma_fit1(L, a, b)
    return _from_lin(rl), _from_lin(gl), _from_lin(bl)


# ----------------------------------------------------------------------------- table-based fast
# kernels
# The sRGB transfer curve and its inverse are the costly part of a conversion (two pow per channel);
# the kernels below read them from finely sampled tables with linear interpolation (max error about
# 2e-8 for the encoding curve and 1e-7 for the decoding curve, far below 8-bit precision).
_TIN_N = 4096
_TOUT_N = 65536
TABLE_TO_LIN = np.where(
    np.linspace(0, 1, _TIN_N + 1) <= 0.04045,
    np.linspace(0, 1, _TIN_N + 1) / 12.92,
    ((np.linspace(0, 1, _TIN_N + 1) + 0.055) / 1.055) ** 2.4,
)
_lin = np.linspace(0, 1, _TOUT_N + 1)
TABLE_FROM_LIN = np.where(_lin <= 0.0031308, 12.92 * _lin, 1.055 * _lin ** (1 / 2.4) - 0.055)
del _lin


@njit(cache=True, inline="always")
def _interp(t: np.ndarray, n: int, c: float) -> float:
    if c <= 0.0:
        return t[0]
    if c >= 1.0:
        return t[n]
    x = c * n
    i = int(x)
    f = x - i
    return t[i] + f * (t[i + 1] - t[i])


@njit(cache=True)
def srgb_to_lab1_t(r: float, g: float, b: float, tin: np.ndarray) -> tuple[float, float, float]:
    """:func:`srgb_to_lab1` with the transfer curve read from ``TABLE_TO_LIN`` (inputs clipped to
    [0, 1])."""
    n = tin.shape[0] - 1
    rl = _interp(tin, n, r)
    gl = _interp(tin, n, g)
    bl = _interp(tin, n, b)
    x = (0.4124564 * rl + 0.3575761 * gl + 0.1804375 * bl) / 0.95047
    y = 0.2126729 * rl + 0.7151522 * gl + 0.0721750 * bl
    z = (0.0193339 * rl + 0.1191920 * gl + 0.9503041 * bl) / 1.08883
    fx = _f(x)
    fy = _f(y)
    fz = _f(z)
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


@njit(cache=True)
def lab_to_srgb_gamut1_t(
    L: float, a: float, b: float, tout: np.ndarray
) -> tuple[float, float, float]:
    """:func:`lab_to_srgb_gamut1` with the inverse transfer curve read from ``TABLE_FROM_LIN``."""
    if L <= 0.0:
        return 0.0, 0.0, 0.0
    if L >= 100.0:
        return 1.0, 1.0, 1.0
    rl, gl, bl = chroma_fit1(L, a, b)
    n = tout.shape[0] - 1
    return _interp(tout, n, rl), _interp(tout, n, gl), _interp(tout, n, bl)


# ----------------------------------------------------------------------------- array kernels
#: images with at least this many pixels use the parallel kernels (thread start-up and contention
#: cost more than they save on small images, especially on a busy 2-core machine)
PARALLEL_MIN_PIXELS = 1_000_000


@njit(cache=True, parallel=True)
def _rgb2lab_flat(src: np.ndarray, out: np.ndarray, tin: np.ndarray) -> None:
    for i in prange(src.shape[0]):
        L, a, b = srgb_to_lab1_t(src[i, 0], src[i, 1], src[i, 2], tin)
        out[i, 0] = L
        out[i, 1] = a
        out[i, 2] = b


@njit(cache=True)
def _rgb2lab_flat_s(src: np.ndarray, out: np.ndarray, tin: np.ndarray) -> None:
    for i in range(src.shape[0]):
        L, a, b = srgb_to_lab1_t(src[i, 0], src[i, 1], src[i, 2], tin)
        out[i, 0] = L
        out[i, 1] = a
        out[i, 2] = b


@njit(cache=True, parallel=True)
def _lab2rgb_flat(src: np.ndarray, out: np.ndarray, tout: np.ndarray) -> None:
    for i in prange(src.shape[0]):
        r, g, b = lab_to_srgb_gamut1_t(src[i, 0], src[i, 1], src[i, 2], tout)
        out[i, 0] = r
        out[i, 1] = g
        out[i, 2] = b


@njit(cache=True)
def _lab2rgb_flat_s(src: np.ndarray, out: np.ndarray, tout: np.ndarray) -> None:
    for i in range(src.shape[0]):
        r, g, b = lab_to_srgb_gamut1_t(src[i, 0], src[i, 1], src[i, 2], tout)
        out[i, 0] = r
        out[i, 1] = g
        out[i, 2] = b


@njit(cache=True, parallel=True)
def _hsv_flat(src: np.ndarray, out: np.ndarray) -> None:
    for i in prange(src.shape[0]):
        r, g, b = src[i, 0], src[i, 1], src[i, 2]
        mx = max(r, g, b)
        mn = min(r, g, b)
        d = mx - mn
        h = 0.0
        if d > 0:
            if mx == r:
                h = ((g - b) / d) % 6.0
            elif mx == g:
                h = (b - r) / d + 2.0
            else:
                h = (r - g) / d + 4.0
            h = (h * 60.0) % 360.0
        out[i, 0] = h
        out[i, 1] = d / mx if mx > 0 else 0.0
        out[i, 2] = mx


@njit(cache=True)
def _hsv_flat_s(src: np.ndarray, out: np.ndarray) -> None:
    for i in range(src.shape[0]):
        r, g, b = src[i, 0], src[i, 1], src[i, 2]
        mx = max(r, g, b)
        mn = min(r, g, b)
        d = mx - mn
        h = 0.0
        if d > 0:
            if mx == r:
                h = ((g - b) / d) % 6.0
            elif mx == g:
                h = (b - r) / d + 2.0
            else:
                h = (r - g) / d + 4.0
            h = (h * 60.0) % 360.0
        out[i, 0] = h
        out[i, 1] = d / mx if mx > 0 else 0.0
        out[i, 2] = mx


@njit(cache=True)
def lab_to_srgb_clip1_t(
    L: float, a: float, b: float, tout: np.ndarray
) -> tuple[float, float, float]:
    """One Lab colour -> sRGB in [0, 1], out-of-gamut linear values clipped per channel."""
    rl, gl, bl = lab_to_lin1(L, a, b)
    n = tout.shape[0] - 1
    return _interp(tout, n, rl), _interp(tout, n, gl), _interp(tout, n, bl)


@njit(cache=True, parallel=True)
def _lab2rgb_clip_flat(src: np.ndarray, out: np.ndarray, tout: np.ndarray) -> None:
    for i in prange(src.shape[0]):
        r, g, b = lab_to_srgb_clip1_t(src[i, 0], src[i, 1], src[i, 2], tout)
        out[i, 0] = r
        out[i, 1] = g
        out[i, 2] = b


@njit(cache=True)
def _lab2rgb_clip_flat_s(src: np.ndarray, out: np.ndarray, tout: np.ndarray) -> None:
    for i in range(src.shape[0]):
        r, g, b = lab_to_srgb_clip1_t(src[i, 0], src[i, 1], src[i, 2], tout)
        out[i, 0] = r
        out[i, 1] = g
        out[i, 2] = b


# ----------------------------------------------------------------------------- distinct colours
@njit(cache=True)
def _unique_rows(bits: np.ndarray, limit: int, first: np.ndarray, inverse: np.ndarray) -> int:
    """Distinct rows of an (n, 3) array of float32 bit patterns (viewed as uint32).

    Open addressing on a table of the next power of two >= 2 x min(n, limit) slots. Writes, for
    each distinct row in order of first appearance, the index of its first row into ``first`` and,
    for every row, the number of its distinct row into ``inverse``. Returns the number of distinct
    rows, or -1 as soon as there are more than ``limit`` (the outputs are then incomplete).
    """
    n = bits.shape[0]
    size = 2
    while size < 2 * min(n, limit + 1):
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, np.int32)
    m = 0
    for p in range(n):
        r = bits[p, 0]
        g = bits[p, 1]
        b = bits[p, 2]
        h = (
            np.uint64(r) * np.uint64(0x9E3779B97F4A7C15)
            ^ np.uint64(g) * np.uint64(0xC2B2AE3D27D4EB4F)
            ^ np.uint64(b) * np.uint64(0x165667B19E3779F9)
        )
        i = (h ^ (h >> np.uint64(29))) & mask
        while True:
            j = table[i]
            if j < 0:
                if m >= limit:
                    return -1
                table[i] = np.int32(m)
                first[m] = p
                inverse[p] = m
                m += 1
                break
            q = first[j]
            if bits[q, 0] == r and bits[q, 1] == g and bits[q, 2] == b:
                inverse[p] = j
                break
            i = (i + np.uint64(1)) & mask
    return m
