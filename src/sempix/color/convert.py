"""Colour conversions: sRGB <-> linear RGB <-> CIE XYZ <-> CIE L*a*b*, HSV, luma, hex.

Conventions (one set for the whole package): sRGB transfer curve (IEC 61966-2-1), sRGB/Rec.709
primaries, D65 white (Xn, Yn, Zn) = (0.95047, 1.0, 1.08883), CIE 1976 L*a*b* with L in [0, 100].
Images are float arrays ``(..., 3)``; sRGB values are encoded, in [0, 1].

Lab -> sRGB takes ``gamut="chroma"`` (keep L* and hue, reduce chroma until the colour fits: palette
colours, harmonization) or ``gamut="clip"`` (clip each linear channel: recolouring swatches and
the colour-naming rule were tuned with it).

``LUMA`` is the one luma weighting of the package: Rec.709 / sRGB ``Y`` row
(0.2126, 0.7152, 0.0722). Apply it to linear RGB for relative luminance (adjustments, white
balance) or to encoded values for a display luma (text colour on swatches, grey masks).
"""

from __future__ import annotations

import numpy as np

from sempix.color.constants import _DELTA, _M, _MINV, _WHITE, LUMA
from sempix.errors import InputError

#: D65 reference white (X, Y, Z)
WHITE_D65 = _WHITE
#: linear sRGB -> XYZ (D65)
SRGB_TO_XYZ = _M
GAMUTS = ("chroma", "clip")


def _colours(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 0 or a.shape[-1] != 3:
        raise InputError(f"{name} must be (..., 3) colours, got shape {a.shape}")
    return a


def _map(src: np.ndarray, serial: str, parallel: str, *tables: str) -> np.ndarray:
    """Run a (N, 3) -> (N, 3) kernel over ``src`` (..., 3); parallel above a million pixels."""
    from sempix._runtime import run_parallel
    from sempix.color import kernels as K

    flat = np.ascontiguousarray(src.reshape(-1, 3), dtype=np.float32)
    out = np.empty_like(flat)
    tabs = [getattr(K, t) for t in tables]
    if len(flat) >= K.PARALLEL_MIN_PIXELS:
        run_parallel(getattr(K, parallel), flat, out, *tabs)
    else:
        getattr(K, serial)(flat, out, *tabs)
    return out.reshape(src.shape)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Exact sRGB decoding (IEC 61966-2-1): encoded values -> linear light, float32, any shape."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Exact sRGB encoding of linear values (clipped to [0, 1] first), float32, any shape."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
        np.float32
    )


def linear_to_xyz(lin: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) -> CIE XYZ (..., 3) float64 (D65, Y of white = 1)."""
    return _colours(lin, "linear RGB").astype(np.float64) @ SRGB_TO_XYZ.T


def xyz_to_linear(xyz: np.ndarray) -> np.ndarray:
    """CIE XYZ (..., 3) -> linear sRGB (..., 3) float64 (unclipped)."""
    return _colours(xyz, "XYZ").astype(np.float64) @ _MINV.T


def xyz_to_lab(xyz: np.ndarray) -> np.ndarray:
    """CIE XYZ (D65) (..., 3) -> CIE L*a*b* (..., 3) float64."""
    t = _colours(xyz, "XYZ").astype(np.float64) / WHITE_D65
    d = _DELTA
    f = np.where(t > d**3, np.cbrt(t), t / (3 * d**2) + 4.0 / 29.0)
    return np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )


def lab_to_xyz(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (..., 3) -> CIE XYZ (D65) (..., 3) float64."""
    lab = _colours(lab, "Lab").astype(np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    d = _DELTA
    return np.where(f > d, f**3, 3 * d**2 * (f - 4.0 / 29.0)) * WHITE_D65


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> CIE L*a*b* (D65).

    Parameters
    ----------
    rgb : (..., 3) array; values outside [0, 1] are clipped.

    Returns
    -------
    (..., 3) float32 Lab (L in [0, 100], a and b roughly in [-128, 127]). Computed by a numba
    kernel with the transfer curve read from a fine table (max error ~1e-4 in L*, a*, b*), without
    image-sized temporaries.
    """
    rgb = _colours(rgb, "rgb")
    if rgb.size == 0:
        return np.zeros(rgb.shape, np.float32)
    return _map(rgb, "_rgb2lab_flat_s", "_rgb2lab_flat", "TABLE_TO_LIN")


def lab_to_srgb(lab: np.ndarray, *, gamut: str = "chroma") -> np.ndarray:
    """CIE L*a*b* -> sRGB in [0, 1].

    Parameters
    ----------
    lab : (..., 3) array.
    gamut : ``"chroma"`` (default): out-of-gamut colours keep L* and hue angle and get the largest
        chroma that fits (L <= 0 -> black, L >= 100 -> white); ``"clip"``: each linear channel is
        clipped to [0, 1].

    Returns
    -------
    (..., 3) float32 sRGB in [0, 1]; in-gamut colours round-trip to float precision.
    """
    lab = _colours(lab, "lab")
    if gamut not in GAMUTS:
        raise InputError(f"gamut must be one of {', '.join(GAMUTS)}, got {gamut!r}")
    if lab.size == 0:
        return np.zeros(lab.shape, np.float32)
    if gamut == "chroma":
        return _map(lab, "_lab2rgb_flat_s", "_lab2rgb_flat", "TABLE_FROM_LIN")
    return _map(lab, "_lab2rgb_clip_flat_s", "_lab2rgb_clip_flat", "TABLE_FROM_LIN")


def lightness(img: np.ndarray) -> np.ndarray:
    """Perceptual lightness CIE L* / 100 of an sRGB image.

    Parameters
    ----------
    img : (H, W, 3) float array in [0, 1] (sRGB), or an (H, W) array that is returned as float32
        unchanged (already a lightness map).

    Returns
    -------
    (H, W) float32 in [0, 1]: 0 = black, 1 = white (D65).
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        return np.asarray(arr, dtype=np.float32)
    return np.ascontiguousarray(srgb_to_lab(arr[..., :3])[..., 0] / np.float32(100.0))


def luma(rgb: np.ndarray) -> np.ndarray:
    """``rgb @ LUMA`` over the last axis, float32: relative luminance Y for linear RGB, luma Y'
    for encoded values."""
    return (np.asarray(rgb, dtype=np.float32)[..., :3] @ LUMA.astype(np.float32)).astype(np.float32)


def srgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> HSV (hexcone model, on the sRGB-encoded values).

    Parameters
    ----------
    rgb : (..., 3) array in [0, 1]

    Returns
    -------
    (..., 3) float32: H in degrees [0, 360), S = (max - min) / max in [0, 1] (0 where max = 0),
    V = max in [0, 1]. Achromatic colours (max = min) get H = 0 and S = 0.
    """
    c = _colours(rgb, "rgb")
    return _map(c, "_hsv_flat_s", "_hsv_flat")


def hsv_to_srgb(hsv: np.ndarray) -> np.ndarray:
    """HSV (H in degrees, S and V in [0, 1]) -> sRGB in [0, 1]. (..., 3) -> (..., 3) float32."""
    hsv = np.asarray(hsv, dtype=np.float32)
    h = (hsv[..., 0] % 360.0) / 60.0
    s, v = hsv[..., 1], hsv[..., 2]
    i = np.floor(h).astype(np.int32) % 6
    f = h - np.floor(h)
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def unique_colours(
    rgb: np.ndarray, *, max_share: float = 1.0
) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct colours of an image, as indices (numba hash table, one pass).

    Colours are compared by their exact float32 values (bit patterns), so a per-colour result
    gathered with ``inverse`` is bit-identical to computing it per pixel. An 8-bit photo of
    0.25 MP typically has 10-60 k distinct colours.

    Parameters
    ----------
    rgb : (..., 3) colours (converted to float32)
    max_share : give up (return None) when more than this share of the pixels are distinct
        colours (then working per colour saves nothing)

    Returns
    -------
    ``(first, inverse)``: ``first`` (m,) int64, the index (into ``rgb.reshape(-1, 3)``) of the
    first pixel of each distinct colour, in order of first appearance; ``inverse`` (n,) int64,
    the distinct colour of every pixel, so ``flat[first][inverse]`` equals ``flat``. None when
    more than ``max_share`` of the pixels are distinct.
    """
    from sempix.color import kernels as K

    flat = np.ascontiguousarray(_colours(rgb, "rgb").reshape(-1, 3), dtype=np.float32)
    n = len(flat)
    limit = max(1, min(n, int(max_share * n)))
    first = np.empty(limit, np.int64)
    inverse = np.empty(n, np.int64)
    m = K._unique_rows(flat.view(np.uint32), limit, first, inverse)
    if m < 0:
        return None
    return first[:m].copy(), inverse


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIE76 colour difference (Euclidean distance in Lab), shape (...)."""
    d = np.asarray(lab1, np.float32) - np.asarray(lab2, np.float32)
    return np.sqrt(np.sum(d**2, axis=-1))


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
