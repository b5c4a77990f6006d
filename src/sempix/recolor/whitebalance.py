"""White balance before palette extraction (Xue et al. 2023, module 1).

Method: the general grey-world framework of van de Weijer, Gevers & Gijsenij (2007),

    e_c  ~  ( sum_x | d^n (G_sigma * f_c)(x) |^p )^(1/p),   c in {R, G, B},

computed on *linear* RGB, with

* ``"shades-of-grey"`` (Finlayson & Trezzi 2004): n = 0, p = 6, sigma = 0 (default),
* ``"grey-edge"``: n = 1, p = 6, sigma = 2 (gradient magnitude of the Gaussian-smoothed image),
* ``"grey-world"``: n = 0, p = 1.

The illuminant estimate ``e`` is normalised to unit length and the image is corrected by a von Kries
diagonal transform ``f_c / (sqrt(3) e_c)`` (a neutral illuminant (1,1,1)/sqrt(3) leaves the image
unchanged), then scaled so that the mean luminance does not change. Over-/under-exposed pixels
(any channel > 0.98 or all < 0.02) are excluded from the estimate.

Decision rule (the paper's ``d_wb = 20``): the corrected image is used only when the mean CIE76
Delta-E between the original and the corrected image is larger than ``d_wb``; users can force the
correction on or off per image.

Single-colour safeguard (automatic mode only). Grey-world-type estimates cannot tell a colour cast
from a scene that really is dominated by one colour (a lawn, a sunset, an orange-walled room): both
move the image's mean chromaticity away from grey, and the correction turns the dominant colour
grey.
A von Kries cast roughly *translates* the whole chromaticity distribution and leaves its spread
alone, whereas a single-colour scene is a tight cluster far from grey. The *dominance* of an image
is therefore

    D = |median(a*, b*)| / sqrt(mean |(a*, b*) - median(a*, b*)|^2)

over the estimate's valid pixels (CIE Lab of the analysis view): the distance of the typical
chromaticity from grey in units of the chromaticity spread. Varied scenes, with or without a strong
cast, have D < 1 (measured: 0.04-0.65 on the photos of ``$SEMPIX_DATA_DIR/groups`` without an
obvious dominant colour and 0.55-0.64 for strong synthetic casts); single-colour scenes have D > 1.5
(a textured lawn 5.9, the orange restaurant of brochure set 4 2.9). In ``auto`` mode the correction
is weakened in the log domain, ``gains ** s`` with strength
``s = clip((D_HI - D) / (D_HI - D_LO), 0, 1)``, ``D_LO = 1``, ``D_HI = 2`` (full correction below
D = 1, none above D = 2), *before* the Delta-E rule is applied to it. ``on`` always applies the full
correction; ``off`` never applies any. The price: a strong cast on a scene that has little colour
variety (fog, snow under a coloured light) is not corrected automatically — use ``on`` for such
images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sempix.color import LUMA, delta_e, linear_to_srgb, srgb_to_lab, srgb_to_linear
from sempix.errors import InputError

WB_METHODS = ("shades-of-grey", "grey-edge", "grey-world")
D_WB = 20.0
#: Dominance below which the automatic correction is used in full / above which it is not used.
DOMINANCE_LO = 1.0
DOMINANCE_HI = 2.0


@dataclass
class WhiteBalance:
    """Result of :func:`white_balance`.

    Attributes
    ----------
    image : (H, W, 3) float32, the corrected image if ``applied`` else the input.
    corrected : (H, W, 3) float32, the corrected image (whether applied or not).
    illuminant : (3,) float32, unit-length estimated illuminant colour (linear RGB).
    gains : (3,) float32 linear-RGB gains of the correction (see :func:`apply_gains`).
    delta_e : mean CIE76 Delta-E between input and corrected image.
    applied : whether the correction was used.
    dominance : single-colour dominance D of the input (see the module doc).
    strength : exponent s in [0, 1] applied to the gains (1 = full correction; below 1 only in
        ``auto`` mode with the safeguard on).
    """

    image: np.ndarray
    corrected: np.ndarray
    illuminant: np.ndarray
    gains: np.ndarray
    delta_e: float
    applied: bool
    dominance: float = 0.0
    strength: float = 1.0


def _analysis_view(img: np.ndarray, max_side: int = 400) -> np.ndarray:
    h, w = img.shape[:2]
    step = max(1, int(np.ceil(max(h, w) / max_side)))
    return img[::step, ::step]


def estimate_illuminant(
    image: np.ndarray,
    method: str = "shades-of-grey",
    *,
    p: float | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """Estimate the scene illuminant colour.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    method : one of :data:`WB_METHODS`.
    p : Minkowski norm (default 6, or 1 for grey-world).
    sigma : Gaussian scale in pixels (default 0, or 2 for grey-edge).

    Returns
    -------
    (3,) float32 unit vector (linear RGB).
    """
    if method not in WB_METHODS:
        raise InputError(
            f"unknown white-balance method {method!r} (use one of {', '.join(WB_METHODS)})"
        )
    lin = srgb_to_linear(_analysis_view(np.asarray(image, np.float32))).astype(np.float64)
    p = (1.0 if method == "grey-world" else 6.0) if p is None else float(p)
    sigma = (2.0 if method == "grey-edge" else 0.0) if sigma is None else float(sigma)
    srgb = linear_to_srgb(lin)
    valid = ~(np.any(srgb > 0.98, axis=-1) | np.all(srgb < 0.02, axis=-1))
    if valid.sum() < 16:
        valid[:] = True
    if method == "grey-edge":
        chans = []
        for c in range(3):
            gx = ndimage.gaussian_filter(lin[..., c], sigma, order=(0, 1))
            gy = ndimage.gaussian_filter(lin[..., c], sigma, order=(1, 0))
            chans.append(np.hypot(gx, gy))
        data = np.stack(chans, -1)
        valid = ndimage.binary_erosion(valid, iterations=1) if valid.sum() > 64 else valid
    else:
        data = ndimage.gaussian_filter(lin, (sigma, sigma, 0)) if sigma > 0 else lin
    v = data[valid]
    e = np.power(np.mean(np.power(np.abs(v), p), axis=0), 1.0 / p)
    n = np.linalg.norm(e)
    if not np.isfinite(n) or n <= 1e-12:
        return np.full(3, 1 / np.sqrt(3), np.float32)
    return (e / n).astype(np.float32)


def correction_gains(image: np.ndarray, illuminant: np.ndarray) -> np.ndarray:
    """Linear-RGB gains (3,) of the von Kries correction, scaled to keep the mean luminance of
    ``image``."""
    lin = srgb_to_linear(_analysis_view(np.asarray(image, np.float32)))
    gains = 1.0 / (np.sqrt(3.0) * np.maximum(np.asarray(illuminant, np.float64), 1e-6))
    lum = LUMA
    y0 = float(np.mean(lin @ lum))
    y1 = float(np.mean((lin * gains) @ lum))
    if y1 > 1e-8:
        gains = gains * (y0 / y1)
    return gains.astype(np.float32)


def apply_gains(rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Per-pixel correction: sRGB (..., 3) -> linear -> times
    ``gains`` -> sRGB (clipped), float32."""
    return linear_to_srgb(srgb_to_linear(rgb) * np.asarray(gains, np.float32))


def apply_illuminant_correction(image: np.ndarray, illuminant: np.ndarray) -> np.ndarray:
    """Von Kries correction of (H, W, 3) sRGB by the unit illuminant (linear RGB); keeps mean
    luminance."""
    return apply_gains(image, correction_gains(image, illuminant))


def colour_dominance(image: np.ndarray) -> float:
    """Single-colour dominance ``D`` of an (H, W, 3) sRGB image (see the module doc).

    ``|median(a*, b*)| / rms(|(a*, b*) - median|)`` over the pixels that are neither clipped
    (a channel > 0.98) nor black (all channels < 0.02), on the analysis view. 0 for a grey image.
    """
    v = _analysis_view(np.asarray(image, np.float32)).reshape(-1, 3)
    valid = ~(np.any(v > 0.98, axis=-1) | np.all(v < 0.02, axis=-1))
    if valid.sum() < 16:
        valid[:] = True
    ab = srgb_to_lab(v[valid])[:, 1:].astype(np.float64)
    med = np.median(ab, axis=0)
    spread = float(np.sqrt(np.mean(np.sum((ab - med) ** 2, axis=1))))
    return float(np.linalg.norm(med) / max(spread, 1.0))


def safeguard_strength(
    dominance: float, lo: float = DOMINANCE_LO, hi: float = DOMINANCE_HI
) -> float:
    """Correction strength ``clip((hi - D) / (hi - lo), 0, 1)`` for a dominance ``D``."""
    return float(np.clip((hi - dominance) / (hi - lo), 0.0, 1.0))


def white_balance(
    image: np.ndarray,
    *,
    mode: str | bool = "auto",
    method: str = "shades-of-grey",
    d_wb: float = D_WB,
    safeguard: bool = True,
) -> WhiteBalance:
    """White-balance an image with the Delta-E decision rule.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    mode : ``"auto"`` (apply when mean Delta-E > ``d_wb``), ``True``/``"on"`` (always), ``False``/
        ``"off"`` (never; the correction is still computed for display).
    method : colour-constancy method, see :data:`WB_METHODS`.
    d_wb : Delta-E threshold of the automatic rule (CIE76 units).
    safeguard : in ``auto`` (and ``off``, for display) mode, weaken the correction of images
        dominated by one colour (see the module doc); ``on`` always uses the full correction.

    Returns
    -------
    WhiteBalance
    """
    if mode not in ("auto", None, True, "on", False, "off"):
        raise InputError(f"white-balance mode must be auto, on or off, not {mode!r}")
    img = np.asarray(image, np.float32)
    e = estimate_illuminant(img, method)
    full = mode in (True, "on")
    dom = colour_dominance(img)
    strength = 1.0 if (full or not safeguard) else safeguard_strength(dom)
    e_used = e
    if strength < 1.0:  # gains ** s  <=>  illuminant ** s (the luminance rescaling follows)
        e_used = np.power(np.maximum(e.astype(np.float64), 1e-6), strength)
        e_used = (e_used / np.linalg.norm(e_used)).astype(np.float32)
    gains = correction_gains(img, e_used)
    corrected = apply_gains(img, gains)
    view_a, view_b = _analysis_view(img), _analysis_view(corrected)
    de = float(np.mean(delta_e(srgb_to_lab(view_a), srgb_to_lab(view_b))))
    if mode in ("auto", None):
        applied = de > d_wb
    else:
        applied = full
    return WhiteBalance(
        corrected if applied else img, corrected, e, gains, de, bool(applied), dom, strength
    )
