"""Colour-space conversions used by the palette tools (sRGB <-> CIE Lab, sRGB -> HSV).

All conversions use the sRGB transfer curve, the sRGB/D65 primaries and the D65 white point
(Xn, Yn, Zn) = (0.95047, 1.0, 1.08883). Lab is CIE 1976 L*a*b* with L in [0, 100].

The array kernels are numba loops (``@njit(cache=True)``) so a 12-megapixel image converts without
large temporaries; :func:`srgb_to_lab_ref` / :func:`lab_to_srgb_ref` are the slow, obviously
correct numpy references the tests compare them against.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_M = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
_MINV = np.linalg.inv(_M)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


# ----------------------------------------------------------------------------- numpy references
def srgb_to_lab_ref(rgb: np.ndarray) -> np.ndarray:
    """Slow reference sRGB -> Lab. ``rgb`` (..., 3) in [0, 1] -> (..., 3) float64 Lab."""
    c = np.asarray(rgb, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _M.T / _WHITE
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_srgb_ref(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """Slow reference Lab -> sRGB. ``lab`` (..., 3) -> (..., 3) float64 (clipped to [0, 1] if ``clip``)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0)) * _WHITE
    lin = xyz @ _MINV.T
    c = np.where(
        lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) * np.sign(lin) - 0.055
    )
    return np.clip(c, 0.0, 1.0) if clip else c


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


@njit(cache=True)
def lab_to_srgb_gamut1(L: float, a: float, b: float) -> tuple[float, float, float]:
    """One Lab colour -> sRGB in [0, 1], keeping L and hue: an out-of-gamut colour has its chroma
    reduced (bisection on a scale of (a, b)) until it fits; a grey of the same L always fits."""
    eps = 1e-6
    if L <= 0.0:
        return 0.0, 0.0, 0.0
    if L >= 100.0:
        return 1.0, 1.0, 1.0
    rl, gl, bl = lab_to_lin1(L, a, b)
    if rl < -eps or gl < -eps or bl < -eps or rl > 1 + eps or gl > 1 + eps or bl > 1 + eps:
        lo = 0.0
        hi = 1.0
        for _ in range(18):
            mid = 0.5 * (lo + hi)
            r2, g2, b2 = lab_to_lin1(L, a * mid, b * mid)
            if r2 < -eps or g2 < -eps or b2 < -eps or r2 > 1 + eps or g2 > 1 + eps or b2 > 1 + eps:
                hi = mid
            else:
                lo = mid
        rl, gl, bl = lab_to_lin1(L, a * lo, b * lo)
    rl = min(max(rl, 0.0), 1.0)
    gl = min(max(gl, 0.0), 1.0)
    bl = min(max(bl, 0.0), 1.0)
    return _from_lin(rl), _from_lin(gl), _from_lin(bl)


# ----------------------------------------------------------------------------- table-based fast kernels
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
    """:func:`srgb_to_lab1` with the transfer curve read from ``TABLE_TO_LIN`` (inputs clipped to [0, 1])."""
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
    eps = 1e-6
    if L <= 0.0:
        return 0.0, 0.0, 0.0
    if L >= 100.0:
        return 1.0, 1.0, 1.0
    rl, gl, bl = lab_to_lin1(L, a, b)
    if rl < -eps or gl < -eps or bl < -eps or rl > 1 + eps or gl > 1 + eps or bl > 1 + eps:
        lo = 0.0
        hi = 1.0
        for _ in range(18):
            mid = 0.5 * (lo + hi)
            r2, g2, b2 = lab_to_lin1(L, a * mid, b * mid)
            if r2 < -eps or g2 < -eps or b2 < -eps or r2 > 1 + eps or g2 > 1 + eps or b2 > 1 + eps:
                hi = mid
            else:
                lo = mid
        rl, gl, bl = lab_to_lin1(L, a * lo, b * lo)
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


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> CIE Lab.

    Parameters
    ----------
    rgb : (..., 3) array in [0, 1]

    Returns
    -------
    (..., 3) float32 Lab (L in [0, 100], a and b roughly in [-128, 127]).
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) colours, got shape {rgb.shape}")
    flat = np.ascontiguousarray(rgb.reshape(-1, 3), dtype=np.float32)
    out = np.empty_like(flat)
    (_rgb2lab_flat if len(flat) >= PARALLEL_MIN_PIXELS else _rgb2lab_flat_s)(
        flat, out, TABLE_TO_LIN
    )
    return out.reshape(rgb.shape)


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab -> sRGB in [0, 1], with L-preserving gamut mapping (chroma reduction).

    Parameters
    ----------
    lab : (..., 3) array

    Returns
    -------
    (..., 3) float32 sRGB in [0, 1]. In-gamut colours round-trip exactly (to float precision);
    out-of-gamut ones keep L and hue angle and get the largest chroma that fits.
    """
    lab = np.asarray(lab)
    if lab.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) colours, got shape {lab.shape}")
    flat = np.ascontiguousarray(lab.reshape(-1, 3), dtype=np.float32)
    out = np.empty_like(flat)
    (_lab2rgb_flat if len(flat) >= PARALLEL_MIN_PIXELS else _lab2rgb_flat_s)(
        flat, out, TABLE_FROM_LIN
    )
    return out.reshape(lab.shape)


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


def srgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> HSV (hexcone model, computed on the sRGB-encoded values).

    Parameters
    ----------
    rgb : (..., 3) array in [0, 1]

    Returns
    -------
    (..., 3) float32: H in degrees [0, 360), S = (max - min) / max in [0, 1] (0 where max = 0),
    V = max in [0, 1]. Achromatic colours (max = min) get H = 0 and S = 0.
    """
    c = np.asarray(rgb, dtype=np.float32)
    if c.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) colours, got shape {c.shape}")
    flat = np.ascontiguousarray(c.reshape(-1, 3))
    out = np.empty_like(flat)
    (_hsv_flat if len(flat) >= PARALLEL_MIN_PIXELS else _hsv_flat_s)(flat, out)
    return out.reshape(c.shape)


def srgb_to_hsv_ref(rgb: np.ndarray) -> np.ndarray:
    """Slow numpy reference of :func:`srgb_to_hsv`."""
    c = np.asarray(rgb, dtype=np.float32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    mx = np.max(c, axis=-1)
    mn = np.min(c, axis=-1)
    d = mx - mn
    safe = np.where(d > 0, d, 1.0)
    h = np.where(
        mx == r,
        ((g - b) / safe) % 6.0,
        np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    h = np.where(d > 0, h * 60.0, 0.0) % 360.0
    s = np.where(mx > 0, d / np.where(mx > 0, mx, 1.0), 0.0)
    return np.stack([h, s, mx], axis=-1).astype(np.float32)


def hsv_to_srgb(hsv: np.ndarray) -> np.ndarray:
    """HSV (H in degrees, S and V in [0, 1]) -> sRGB in [0, 1]. Shape (..., 3) -> (..., 3) float32."""
    hsv = np.asarray(hsv, dtype=np.float32)
    h = (hsv[..., 0] % 360.0) / 60.0
    s, v = hsv[..., 1], hsv[..., 2]
    i = np.floor(h).astype(np.int32) % 6
    f = h - np.floor(h)
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    choices_r = [v, q, p, p, t, v]
    choices_g = [t, v, v, q, p, p]
    choices_b = [p, p, t, v, v, q]
    r = np.choose(i, choices_r)
    g = np.choose(i, choices_g)
    b = np.choose(i, choices_b)
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def parse_color(text: str) -> np.ndarray:
    """Parse ``#rrggbb``, ``#rgb``, ``rrggbb`` or ``R,G,B`` (0-255) into a (3,) float32 in [0, 1].

    Raises ``ValueError`` with a one-line message for anything else.
    """
    t = text.strip()
    if "," in t:
        parts = [p.strip() for p in t.split(",")]
        if len(parts) != 3:
            raise ValueError(f"{text!r}: expected R,G,B with three values 0-255")
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{text!r}: expected R,G,B with three numbers 0-255") from None
        if not all(0 <= v <= 255 for v in vals):  # also refuses nan
            raise ValueError(f"{text!r}: R,G,B values must be in 0-255")
        return np.array(vals, dtype=np.float32) / 255.0
    h = t.removeprefix("#")
    if len(h) == 3:
        h = "".join(ch * 2 for ch in h)
    if len(h) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in h):
        raise ValueError(f"{text!r}: expected a colour like #ff8800, #f80 or 255,136,0")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


def to_hex(rgb: np.ndarray) -> str:
    """(3,) sRGB in [0, 1] -> ``#rrggbb``."""
    v = np.clip(np.rint(np.asarray(rgb, dtype=np.float64) * 255.0), 0, 255).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*v)
