"""Colour-harmony metrics with the hue templates of Cohen-Or et al. (2006, "Color Harmonization"),
and their hue-shift harmonization ("C-Harmony") as a baseline.

Definitions
-----------
* **Hue and saturation** are HSV on the sRGB-encoded values (:func:`sempix.color.srgb_to_hsv`):
  H in degrees [0, 360), S = (max - min) / max in [0, 1]. Achromatic pixels (max = min, S = 0)
  have no hue: they count as *inside* every template and add nothing to F.
* **Templates** (sector widths in degrees, sector centres relative to the rotation alpha):
  ``i`` one 18 sector; ``V`` one 93.6 sector; ``L`` 18 at 0 and 79.2 at +90 (its mirror image,
  79.2 at -90, is searched too and reported as ``L``); ``I`` 18 at 0 and 18 at 180; ``T`` one 180
  sector; ``Y`` 93.6 at 0 and 18 at 180; ``X`` 93.6 at 0 and 93.6 at 180. ``N`` (the grey-scale
  template) is not searched: it has no hue sectors; grey pixels are handled as said above.
* **Distance** of a hue to a template: 0 inside a sector, else the arc length in degrees to the
  nearest sector border.
* **F-score** (Cohen-Or Eq. 1; the Eq. 4.3 of Xue et al.): ``F = sum_p d(H(p)) * S(p)`` over the
  pixels outside the template. Reported per pixel (``f_score = F / number of pixels``, in
  degrees, so images of any size compare) and as the raw sum (``f_sum``, degrees). Lower = more
  harmonious.
* **PIT** (pixels in template): percentage of pixels inside the template (0..100).
* **MITS** (mean in-template saturation): mean HSV saturation (0..1) of the pixels inside.
* **Best template and rotation**: for every template the rotation alpha (0.5 degree steps)
  minimising F; the hue-saturation histogram (720 bins) is cross-correlated with the template's
  distance profile by FFT (vectorised over all 720 rotations at once). F, PIT and MITS are then
  recomputed exactly per pixel at that rotation. The best template is the one with the lowest F;
  ties (within 1e-6 degrees per pixel, e.g. several templates fitting perfectly) go to the
  template with the smallest total sector width (i < I < V < L < Y < T < X).

C-Harmony
---------
Every pixel is assigned to the nearest sector of the best template (nearest sector border; no
graph cut, unlike the paper), and its hue moves towards the sector centre C:
``H' = C + sign(H - C) * (w / 2) * (1 - G(|H - C|))`` with ``G(d) = exp(-d^2 / (2 sigma^2))``,
``sigma = w / 2`` by default (w = sector width). S and V are kept (HSV), so lightness can change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sempix.color import hsv_to_srgb, srgb_to_hsv
from sempix.errors import InputError

BINS = 720  # 0.5 degree rotation / histogram resolution
SMALL, LARGE, L_LARGE, HALF = 18.0, 93.6, 79.2, 180.0

# : template name -> list of alternatives (mirror images), each a list of (centre offset, width) in
# degrees
TEMPLATES: dict[str, list[list[tuple[float, float]]]] = {
    "i": [[(0.0, SMALL)]],
    "I": [[(0.0, SMALL), (180.0, SMALL)]],
    "V": [[(0.0, LARGE)]],
    "L": [[(0.0, SMALL), (90.0, L_LARGE)], [(0.0, SMALL), (-90.0, L_LARGE)]],
    "Y": [[(0.0, LARGE), (180.0, SMALL)]],
    "T": [[(0.0, HALF)]],
    "X": [[(0.0, LARGE), (180.0, LARGE)]],
}
TEMPLATE_ORDER = ("i", "I", "V", "L", "Y", "T", "X")  # by total sector width (tie-break order)
ACHROMATIC = 1e-6


def _circ(d: np.ndarray) -> np.ndarray:
    """Absolute circular difference in degrees, in [0, 180]."""
    d = np.abs(np.asarray(d, dtype=np.float64)) % 360.0
    return np.minimum(d, 360.0 - d)


def sector_distance(
    hue: np.ndarray, sectors: list[tuple[float, float]], alpha: float
) -> np.ndarray:
    """Distance (degrees) of hues to a rotated template: 0 inside a sector, else to the nearest
    border.

    Parameters
    ----------
    hue : (...) hues in degrees
    sectors : [(centre offset, width), ...]
    alpha : rotation in degrees

    Returns
    -------
    (...) float64 distances.
    """
    hue = np.asarray(hue, dtype=np.float64)
    out = np.full(hue.shape, np.inf)
    for off, w in sectors:
        d = np.maximum(_circ(hue - (alpha + off)) - w / 2.0, 0.0)
        out = np.minimum(out, d)
    return out


@dataclass
class HarmonyScore:
    """Harmony of one image with its best (or a given) template.

    Attributes
    ----------
    template : template name (``i V L I T Y X``)
    alpha : rotation in degrees
    f_score : F per pixel (degrees x saturation / pixel)
    f_sum : F summed over all pixels (degrees x saturation)
    pit : percentage of pixels inside the template (0..100)
    mits : mean HSV saturation (0..1) of the pixels inside
    per_template : template -> (best alpha, f_score) for every template searched (f_score exact for
        the templates that were candidates for the best, else the 720-bin histogram approximation,
        within 0.125 degrees x mean saturation of the exact value)
    """

    template: str
    alpha: float
    f_score: float
    f_sum: float
    pit: float
    mits: float
    per_template: dict[str, tuple[float, float]]
    sectors: list[tuple[float, float]]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_template"] = {
            k: {"alpha": a, "f_score": f} for k, (a, f) in self.per_template.items()
        }
        d["sectors"] = [{"center": c % 360.0, "width": w} for c, w in self.absolute_sectors()]
        return d

    def absolute_sectors(self) -> list[tuple[float, float]]:
        """[(centre in degrees, width)] of the rotated template."""
        return [((self.alpha + off) % 360.0, w) for off, w in self.sectors]


def _profile(sectors: list[tuple[float, float]]) -> np.ndarray:
    """Distance of every bin centre to the template at rotation 0. (BINS,)"""
    centres = (np.arange(BINS) + 0.5) * (360.0 / BINS)
    return sector_distance(centres, sectors, 0.0)


_PROFILES_FFT = {
    name: [np.conj(np.fft.rfft(_profile(s))) for s in alts] for name, alts in TEMPLATES.items()
}


def search_rotations(hist: np.ndarray, template: str) -> tuple[np.ndarray, int]:
    """F (unnormalised, bin-centre approximation) of every rotation of ``template``.

    Parameters
    ----------
    hist : (BINS,) saturation-weighted hue histogram
    template : template name

    Returns
    -------
    f : (n_alternatives, BINS) F for rotation ``r * 360 / BINS`` degrees
    best : flat index of the minimum (alternative * BINS + r)
    """
    hf = np.fft.rfft(hist)
    f = np.stack([np.fft.irfft(hf * p, n=BINS) for p in _PROFILES_FFT[template]])
    return f, int(np.argmin(f))


def _exact(hue, sat, sat_px, inverse, sectors, alpha):
    # sector_distance in float32 (hues of 8-bit colours need no more; numba kernel, per row of
    # hue / sat), summed in float64 per pixel
    from sempix.palette._template_kernels import _template_distance

    shifts = np.array([np.float32((alpha + off) % 360.0 - 180.0) for off, _ in sectors],
                      dtype=np.float32)
    halves = np.array([np.float32(w / 2.0) for _, w in sectors], dtype=np.float32)
    d = np.empty_like(hue)
    _template_distance(hue, sat, ACHROMATIC, shifts, halves, d)
    if inverse is not None:
        d = np.take(d, inverse)
    inside = d <= 1e-9
    n = d.size
    f_sum = float(np.dot(d.astype(np.float64), sat_px))
    pit = 100.0 * float(inside.sum()) / n
    mits = float(sat_px[inside].mean()) if inside.any() else 0.0
    return f_sum / n, f_sum, pit, mits


def harmony_metrics(
    image: np.ndarray, template: str | None = None, *, alpha: float | None = None
) -> HarmonyScore:
    """Best hue template and rotation of an image, with its F-score, PIT and MITS (module doc).

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1] (or (n, 3) colours)
    template : evaluate only this template (``i V L I T Y X``); None = search all and keep the best
    alpha : with ``template``: use this rotation (degrees) instead of searching

    Returns
    -------
    HarmonyScore
    """
    img = np.asarray(image, dtype=np.float32)
    if img.shape[-1] != 3 or img.ndim not in (2, 3):
        raise InputError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    if template is not None and template not in TEMPLATES:
        raise InputError(f"unknown template {template!r}: use one of {' '.join(TEMPLATE_ORDER)}")
    hsv = srgb_to_hsv(img.reshape(-1, 3))
    return harmony_from_hs(hsv[:, 0], hsv[:, 1], template, alpha=alpha)


def harmony_from_hs(
    hue: np.ndarray,
    sat: np.ndarray,
    template: str | None = None,
    *,
    alpha: float | None = None,
    inverse: np.ndarray | None = None,
) -> HarmonyScore:
    """:func:`harmony_metrics` of pixels given by their HSV hue and saturation (for callers that
    have them already, e.g. from per-colour conversions).

    Parameters
    ----------
    hue : (n,) degrees (as float32); sat : (n,) HSV saturation in [0, 1] (as float64); or with
        ``inverse``, (m,) of the distinct colours
    template, alpha : as in :func:`harmony_metrics`
    inverse : (n,) int64 row of ``hue`` / ``sat`` of every pixel
        (:func:`sempix.color.unique_colours`), or None when they have a row per pixel. The result
        is the same (bit for bit) as with the per-pixel values.
    """
    from sempix.palette._template_kernels import _hue_histogram

    if template is not None and template not in TEMPLATES:
        raise InputError(f"unknown template {template!r}: use one of {' '.join(TEMPLATE_ORDER)}")
    hue = np.ascontiguousarray(np.ravel(hue), dtype=np.float32)
    sat = np.ascontiguousarray(np.ravel(sat), dtype=np.float64)
    if inverse is not None:
        inverse = np.ascontiguousarray(inverse, dtype=np.int64)
    hist = np.zeros(BINS)
    _hue_histogram(np.zeros(0, np.int64) if inverse is None else inverse, hue, sat, ACHROMATIC,
                   BINS, hist)
    sat_px = sat if inverse is None else np.take(sat, inverse)  # per pixel, for the exact sums
    names = [template] if template is not None else list(TEMPLATE_ORDER)
    n = sat_px.size
    approx: dict[str, tuple[int, float, float]] = {}  # name -> (alternative, alpha, histogram F)
    for name in names:
        if alpha is None:
            f, best = search_rotations(hist, name)
            k, r = divmod(best, BINS)
            approx[name] = (k, r * 360.0 / BINS, float(f.ravel()[best]))
    # a pixel's hue is at most half a bin from its bin centre, so the histogram F is within
    # 0.25 * sum(S) of the exact F: only templates that close to the best need the exact check
    slack = 0.5 * (360.0 / BINS) * float(hist.sum()) + 1e-9
    hmin = min((v[2] for v in approx.values()), default=0.0)
    results = {}
    for name in names:
        alts = TEMPLATES[name]
        if alpha is not None:
            cands = [(k, float(alpha)) for k in range(len(alts))]
        elif approx[name][2] <= hmin + slack:
            cands = [approx[name][:2]]
        else:
            results[name] = (
                (approx[name][0], approx[name][1]),
                (approx[name][2] / n, np.inf, 0.0, 0.0),
            )
            continue
        best_r = None
        for k, a in cands:
            ex = _exact(hue, sat, sat_px, inverse, alts[k], a)
            if best_r is None or ex[0] < best_r[1][0]:
                best_r = ((k, a), ex)
        results[name] = best_r
    exact = [nm for nm in names if np.isfinite(results[nm][1][1])]
    fmin = min(results[nm][1][0] for nm in exact)
    chosen = next(nm for nm in exact if results[nm][1][0] <= fmin + 1e-6)
    (k, a), (f, fs, pit, mits) = results[chosen]
    return HarmonyScore(
        template=chosen,
        alpha=float(a % 360.0),
        f_score=f,
        f_sum=fs,
        pit=pit,
        mits=mits,
        per_template={n: (float(r[0][1] % 360.0), float(r[1][0])) for n, r in results.items()},
        sectors=list(TEMPLATES[chosen][k]),
    )


def shift_hues(
    hue: np.ndarray, sectors: list[tuple[float, float]], sigma_scale: float = 0.5
) -> np.ndarray:
    """Cohen-Or hue shift: each hue moves into its nearest sector with a Gaussian fall-off.

    Parameters
    ----------
    hue : (...) hues in degrees
    sectors : absolute [(centre, width)] in degrees
    sigma_scale : sigma = sigma_scale * width

    Returns
    -------
    (...) new hues in degrees [0, 360).
    """
    hue = np.asarray(hue, dtype=np.float64)
    best_d = np.full(hue.shape, np.inf)
    new = np.zeros_like(hue)
    for c, w in sectors:
        signed = (hue - c + 180.0) % 360.0 - 180.0  # in [-180, 180)
        dist = np.abs(signed)
        border = np.maximum(dist - w / 2.0, 0.0)
        sigma = sigma_scale * w
        h2 = c + np.sign(signed) * (w / 2.0) * (1.0 - np.exp(-(dist**2) / (2.0 * sigma**2)))
        take = border < best_d
        new = np.where(take, h2, new)
        best_d = np.where(take, border, best_d)
    return new % 360.0


def compress_into_template(
    hue: np.ndarray,
    sectors: list[tuple[float, float]],
    *,
    knee: float = 10.0,
    margin: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth, monotone hue compression into the nearest sector of a template.

    Each hue belongs to the sector whose border is nearest (as in C-Harmony). With ``h`` the
    half width of that sector, ``d`` the hue's distance from its centre, ``k = min(knee, h / 2)``
    and ``m`` the margin (clipped to ``k / 2``): hues with ``d <= h - k`` stay; beyond, ``d`` is
    mapped to ``h - k + (k - m) * tanh((d - h + k) / (k - m))``, which is continuous with slope 1
    at the knee and stays below ``h - m``: every hue ends up inside, hues already inside move by
    at most ``0.24 k`` degrees, the order of hues within a sector's half is kept.

    Parameters
    ----------
    hue : (n,) hues in degrees
    sectors : absolute [(centre, width)] in degrees (:meth:`HarmonyScore.absolute_sectors`)
    knee : width (degrees) of the band inside each border where hues are compressed
    margin : (n,) or scalar: how far inside the border (degrees) hues far outside end up (e.g.
        the hue error of 8-bit rounding of that pixel)

    Returns
    -------
    new_hue : (n,) float64 hues in [0, 360)
    outside : (n,) float64 distance (degrees) of the *input* hue to the template (0 inside)
    """
    hue = np.asarray(hue, dtype=np.float64)
    margin = np.broadcast_to(np.asarray(margin, dtype=np.float64), hue.shape)
    best = np.full(hue.shape, np.inf)
    new = hue.copy()
    for c, w in sectors:
        signed = (hue - c + 180.0) % 360.0 - 180.0
        dist = np.abs(signed)
        half = w / 2.0
        k = min(float(knee), half / 2.0)
        m = np.minimum(margin, k / 2.0)
        start = half - k
        over = np.maximum(dist - start, 0.0)
        nd = np.where(dist > start, start + (k - m) * np.tanh(over / (k - m)), dist)
        border = np.maximum(dist - half, 0.0)
        take = border < best
        new = np.where(take, c + np.sign(signed) * nd, new)
        best = np.where(take, border, best)
    return new % 360.0, best


def cohen_or_harmonize(
    image: np.ndarray, template: str | None = None, *, sigma_scale: float = 0.5
) -> tuple[np.ndarray, HarmonyScore]:
    """C-Harmony baseline: shift hues into the image's best template (module doc).

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1]
    template : force a template (None = best by F)
    sigma_scale : Gaussian sigma as a fraction of the sector width

    Returns
    -------
    (H, W, 3) float32 harmonized image, and the HarmonyScore of the input that chose the template.
    """
    img = np.asarray(image, dtype=np.float32)
    score = harmony_metrics(img, template)
    hsv = srgb_to_hsv(img)
    hsv[..., 0] = shift_hues(hsv[..., 0], score.absolute_sectors(), sigma_scale).astype(np.float32)
    out = hsv_to_srgb(hsv)
    return np.clip(out, 0.0, 1.0).astype(np.float32), score
