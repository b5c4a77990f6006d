"""Masked photographic adjustments in linear light.

All adjustments work on linear-light RGB (sRGB decoded with the exact IEC 61966-2-1 curve) and the
result is blended with the original *in linear light* through the soft mask, then encoded back to
sRGB. Pixels where the mask is exactly 0 are returned bit-for-bit unchanged.

The same maths runs in the browser (``sempix/web/static/editor.js``, function ``adjustPixels``) for
the live preview, so what the page shows is what the server renders for the download.

Order and definitions (``x`` linear RGB of one pixel, ``Y = 0.2126 R + 0.7152 G + 0.0722 B``):

1. exposure ``e`` (EV, any real): ``x *= 2**e``.
2. white balance, temperature ``t`` and tint ``g`` in [-1, 1] (positive = warmer / more magenta):
   channel gains ``(2**(0.5 t), 2**(-0.5 g), 2**(-0.5 t))`` divided by their luminance
   ``0.2126 gR + 0.7152 gG + 0.0722 gB`` so that neutral greys keep their luminance.
3. contrast ``c`` in [-1, 1]: per channel ``x = 0.18 * (x / 0.18) ** 2**c`` -- a slope change in
   log space pivoting at 18 % grey (``c = 0.2`` -> slope 1.15).
4. saturation ``s`` in [-1, 1]: ``x = Y + (1 + s) (x - Y)`` (``s = -1`` gives grey).
5. hue ``h`` in degrees: the luminance-preserving hue rotation matrix of SVG ``feColorMatrix``
   (``hueRotate``), applied to linear RGB.

Finally ``x`` is clipped to [0, 1], blended ``m * x + (1 - m) * x_orig`` and sRGB-encoded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from sempix.color import LUMA, linear_to_srgb, srgb_to_linear
from sempix.errors import InputError

#: accepted range of every adjustment
RANGES = {
    "exposure": (-10.0, 10.0),
    "contrast": (-1.0, 1.0),
    "saturation": (-1.0, 1.0),
    "temperature": (-1.0, 1.0),
    "tint": (-1.0, 1.0),
    "hue": (-360.0, 360.0),
}


@dataclass(frozen=True)
class Adjustments:
    """A set of adjustment values; all zero means identity.

    Attributes
    ----------
    exposure : EV (stops), e.g. +1 doubles linear light.
    contrast : [-1, 1], slope multiplier ``2**contrast`` in log space around 18 % grey.
    saturation : [-1, 1], -1 = grey, +1 = twice the chroma.
    temperature : [-1, 1], positive = warmer (more red, less blue).
    tint : [-1, 1], positive = more magenta (less green).
    hue : degrees, hue rotation.
    """

    exposure: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    temperature: float = 0.0
    tint: float = 0.0
    hue: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InputError(f"adjustment {f.name}={v!r} is not a number") from None
            lo, hi = RANGES[f.name]
            if not math.isfinite(v) or not lo <= v <= hi:
                raise InputError(f"adjustment {f.name}={v} is outside [{lo:g}, {hi:g}]")
            object.__setattr__(self, f.name, v)

    @property
    def is_identity(self) -> bool:
        return all(getattr(self, f.name) == 0.0 for f in fields(self))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict | None) -> Adjustments:
        """Build from a dict, refusing unknown names with a one-line :class:`InputError`."""
        values = dict(values or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"unknown adjustment {unknown[0]!r} (use: {', '.join(sorted(names))})")
        return cls(**values)


def parse_adjustments(spec: str) -> Adjustments:
    """Parse ``"exposure=+0.7,contrast=0.2,saturation=-0.3"`` into :class:`Adjustments`."""
    values: dict[str, float] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise InputError(f"bad adjustment {part!r}: write name=value, e.g. exposure=+0.7")
        name, _, val = part.partition("=")
        name = name.strip().lower()
        if name in values:
            raise InputError(f"adjustment {name!r} is given twice: give each adjustment once")
        try:
            values[name] = float(val.strip())
        except ValueError:
            raise InputError(
                f"bad adjustment value {val.strip()!r} for {name}: not a number"
            ) from None
    return Adjustments.from_mapping(values)


def white_balance_gains(temperature: float, tint: float) -> np.ndarray:
    """(3,) float64 channel gains for temperature/tint, normalised to keep grey luminance."""
    g = np.array([2.0 ** (0.5 * temperature), 2.0 ** (-0.5 * tint), 2.0 ** (-0.5 * temperature)])
    return g / float(LUMA @ g)


def color_matrix(saturation: float, hue_degrees: float) -> np.ndarray:
    """(3, 3) matrix ``M`` (applied as ``x @ M.T``): saturation then SVG hueRotate, both keep Y."""
    s = 1.0 + saturation
    lr, lg, lb = LUMA
    sat = np.array(
        [
            [lr + (1 - lr) * s, lg - lg * s, lb - lb * s],
            [lr - lr * s, lg + (1 - lg) * s, lb - lb * s],
            [lr - lr * s, lg - lg * s, lb + (1 - lb) * s],
        ]
    )
    a = math.radians(hue_degrees)
    c, sn = math.cos(a), math.sin(a)
    # SVG 1.1 feColorMatrix hueRotate (with its 0.213/0.715/0.072 luma weights)
    hue = np.array(
        [
            [
                0.213 + c * 0.787 - sn * 0.213,
                0.715 - c * 0.715 - sn * 0.715,
                0.072 - c * 0.072 + sn * 0.928,
            ],
            [
                0.213 - c * 0.213 + sn * 0.143,
                0.715 + c * 0.285 + sn * 0.140,
                0.072 - c * 0.072 - sn * 0.283,
            ],
            [
                0.213 - c * 0.213 - sn * 0.787,
                0.715 - c * 0.715 + sn * 0.715,
                0.072 + c * 0.928 + sn * 0.072,
            ],
        ]
    )
    return hue @ sat


def adjust_linear(lin: np.ndarray, adj: Adjustments) -> np.ndarray:
    """Apply ``adj`` to linear RGB ``(..., 3)``; returns linear RGB clipped to [0, 1] (float32)."""
    x = np.asarray(lin, dtype=np.float32)
    gains = (2.0**adj.exposure) * white_balance_gains(adj.temperature, adj.tint)
    x = x * gains.astype(np.float32)
    if adj.contrast != 0.0:
        k = np.float32(2.0**adj.contrast)
        x = np.float32(0.18) * np.power(np.maximum(x, 0.0) / np.float32(0.18), k)
    if adj.saturation != 0.0 or adj.hue != 0.0:
        m = color_matrix(adj.saturation, adj.hue).astype(np.float32)
        x = x @ m.T
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def apply_adjustments(
    image: np.ndarray, mask: np.ndarray | None, adj: Adjustments | dict | str
) -> np.ndarray:
    """Apply adjustments to an sRGB image through a soft mask.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    mask : (H, W) float32 in [0, 1] or None (whole image). Pixels with mask 0 are unchanged.
    adj : :class:`Adjustments`, a dict of values, or a spec string (see :func:`parse_adjustments`).

    Returns
    -------
    (H, W, 3) float32 sRGB in [0, 1].
    """
    if isinstance(adj, str):
        adj = parse_adjustments(adj)
    elif not isinstance(adj, Adjustments):
        adj = Adjustments.from_mapping(adj)
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"image must be (H, W, 3), got {img.shape}")
    if mask is None:
        m = np.ones(img.shape[:2], np.float32)
    else:
        m = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
        if m.shape != img.shape[:2]:
            raise InputError(f"mask shape {m.shape} does not match image {img.shape[:2]}")
    if adj.is_identity:
        return img.copy()
    lin = srgb_to_linear(img)
    out_lin = adjust_linear(lin, adj)
    mm = m[..., None]
    blended = mm * out_lin + (1.0 - mm) * lin
    out = linear_to_srgb(blended)
    out = np.where(mm > 0, out, img)
    return np.ascontiguousarray(out, dtype=np.float32)
