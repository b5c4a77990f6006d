"""Semantic range masks: distances to clicked pixels, threshold, feather, refine.

Criterion (Lightroom/darktable range masks extended with semantics): pixel ``p`` joins the mask of
the clicked pixels ``x_1..x_N`` when

    D(p) = min_k [ lam * d_sem(p, x_k) + (1 - lam) * d_col(p, x_k) ]  <  tau

with the image-independent units of :mod:`sempix.distance`:

* ``d_col``: luminance ``|L*(p) - L*(x)| / 100`` (``space="luminance"``) or CIE76
  ``DeltaE_ab / 100`` (``space="lab"``); 0.1 = 10 L* units, a clearly visible step.
* ``d_sem``: ``||s(p) - s(x)||_2 / 2`` of per-pixel L2-normalised features, i.e.
  ``sqrt((1 - cos) / 2)`` in [0, 1]; for the (non-negative) ADE20K features it stays below
  ~0.7 in practice (0.71 = orthogonal features, unrelated classes; the 64-d random projection
  keeps cosines only approximately).
* ``lam`` in [0, 1] is the semantic share; ``tau`` is on the same scale as both terms, so the
  same (lam, tau) behave alike across images. Defaults ``lam=0.8, tau=0.3``, ``space="lab"``.
* ``connected`` (default): each click's ``d_k`` is replaced by its minimax path distance
  ``G_k(p) = min over 4-connected paths click -> p of max d_k`` (:mod:`sempix.distance.geodesic`),
  so ``G_k < tau`` is exactly the connected component of ``d_k < tau`` holding the click: same
  units, same tau, but disconnected look-alikes (another tree, the sky's reflection) stay out.
  On BSDS500 this is the largest gain of issue 19 (docs/mask.md).

Feathering replaces the hard cut ``D < tau`` by a smoothstep from 1 at ``D <= tau - F`` to 0 at
``D >= tau + F`` (``F`` in the same units). Refinement runs a colour guided filter (He et al.)
with the image as guide to snap the mask's edges to image edges.

Speed: the semantic term is computed at the feature map's resolution (``work`` resolution, at
most ``work_pixels``; the features come from a ~0.02 MP network output anyway) and upsampled
bilinearly; the colour term at full resolution. :class:`MaskSource` caches what is needed so that
each click costs one pass over the pixels (the web editor calls it once per click).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sempix.color import lightness, srgb_to_lab
from sempix.errors import InputError
from sempix.ops.filters import guided_filter
from sempix.ops.resample import resize
from sempix.ops.validate import as_features, as_mask, as_rgb

SPACES = ("luminance", "lab")
#: default colour term: Lab (CIE76) beats luminance on the BSDS500 mask benchmark (docs/mask.md)
DEFAULT_SPACE = "lab"
#: lam and tau chosen on BSDS500 *train* with the connected Lab criterion (docs/mask.md)
DEFAULT_LAM = 0.8
DEFAULT_TAU = 0.3
DEFAULT_WORK_PIXELS = 120_000
#: keep only the part of ``D < tau`` connected to each click (minimax path distance): +0.09
#: best-tau IoU on BSDS500 train (docs/mask.md)
DEFAULT_CONNECTED = True


def _distance():
    import sempix.distance as d

    return d


def _sample_vector(S: np.ndarray, x: float, y: float) -> np.ndarray:
    """Bilinear sample of S (h, w, D) at continuous pixel
    position (x, y) (pixel centres at ints)."""
    h, w = S.shape[:2]
    x = min(max(x, 0.0), w - 1.0)
    y = min(max(y, 0.0), h - 1.0)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = (1 - fx) * S[y0, x0] + fx * S[y0, x1]
    bot = (1 - fx) * S[y1, x0] + fx * S[y1, x1]
    return ((1 - fy) * top + fy * bot).astype(np.float32)


class MaskSource:
    """Per-image data for fast per-point distances (used by the CLI, the library and the web app).

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    features : (h, w, D) float32 features or a FeatureMap, or None (colour only). ``(h, w)`` may be
        smaller than ``(H, W)`` (same aspect ratio): the semantic term is then computed at ``(h,
        w)``
        and upsampled bilinearly.
    """

    def __init__(self, image: np.ndarray, features=None):
        self.image = as_rgb(image)
        self.shape = self.image.shape[:2]
        self.features = None if features is None else as_features(features)
        self._lum: np.ndarray | None = None
        self._lab: np.ndarray | None = None

    @property
    def has_semantic(self) -> bool:
        return self.features is not None

    @property
    def nbytes(self) -> int:
        n = self.image.nbytes
        for a in (self.features, self._lum, self._lab):
            if a is not None:
                n += a.nbytes
        return n

    def colour_image(self, space: str) -> np.ndarray:
        """Cached luminance (H, W) or Lab (H, W, 3) of the image."""
        if space not in SPACES:
            raise InputError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
        if space == "luminance":
            if self._lum is None:
                self._lum = lightness(self.image)
            return self._lum
        if self._lab is None:
            self._lab = srgb_to_lab(self.image)
        return self._lab

    def check_point(self, point) -> tuple[int, int]:
        pts = _distance().parse_points(point, self.shape)
        return int(pts[0, 0]), int(pts[0, 1])

    def colour_distance(self, point, space: str = "luminance") -> np.ndarray:
        """(H, W) float32 colour distance to one point (x, y)."""
        x, y = self.check_point(point)
        c = self.colour_image(space)
        if space == "luminance":
            return np.abs(c - c[y, x]).astype(np.float32)
        return _distance().distance_lab_to(c, c[y, x][None, :])

    def semantic_distance(self, point) -> np.ndarray | None:
        """(H, W) float32 semantic distance to one point, or None without features."""
        x, y = self.check_point(point)
        if self.features is None:
            return None
        S = self.features
        h, w = S.shape[:2]
        H, W = self.shape
        fx = (x + 0.5) * w / W - 0.5
        fy = (y + 0.5) * h / H - 0.5
        ref = _sample_vector(S, fx, fy)
        d = _distance().distance_semantic_to(S, ref[None, :])
        if (h, w) != (H, W):
            d = resize(d, (H, W))
        return np.clip(d, 0.0, 1.0).astype(np.float32)

    def distances(self, point, space: str = "luminance") -> tuple[np.ndarray | None, np.ndarray]:
        """(semantic (H, W) or None, colour (H, W)) distances to one point."""
        return self.semantic_distance(point), self.colour_distance(point, space)

    def distance(
        self,
        points,
        *,
        lam: float = DEFAULT_LAM,
        space: str = DEFAULT_SPACE,
        connected: bool = DEFAULT_CONNECTED,
    ) -> np.ndarray:
        """Combined distance ``min_k lam d_sem + (1 - lam) d_col`` (H, W) float32; with
        ``connected`` each click's term is its minimax path distance (see :func:`combine`)."""
        pts = _distance().parse_points(points, self.shape)
        check_lam(lam)
        sems, cols = [], []
        for p in pts:
            s, c = self.distances((int(p[0]), int(p[1])), space)
            sems.append(s)
            cols.append(c)
        return combine(sems, cols, lam, points=pts if connected else None)


def check_lam(lam: float) -> float:
    lam = float(lam)
    if not np.isfinite(lam) or not 0.0 <= lam <= 1.0:
        raise InputError(f"lambda must be in [0, 1], got {lam}")
    return lam


def check_tau(tau: float) -> float:
    tau = float(tau)
    if not np.isfinite(tau) or tau < 0:
        raise InputError(f"tau must be >= 0 (distances are in [0, ~1]), got {tau}")
    return tau


def check_lam_tau(lam: float, tau: float, feather: float = 0.0) -> None:
    """Validate lam in [0, 1], tau >= 0, feather >= 0 (InputError with one line otherwise)."""
    check_lam(lam)
    check_tau(tau)
    f = float(feather)
    if not np.isfinite(f) or f < 0:
        raise InputError(f"feather must be >= 0, got {feather}")


def combine(
    sems: Sequence[np.ndarray | None],
    cols: Sequence[np.ndarray],
    lam: float,
    points=None,
) -> np.ndarray:
    """``min_k lam * sems[k] + (1 - lam) * cols[k]``; a missing semantic map counts as colour only.

    Parameters
    ----------
    sems : per-point (H, W) semantic distances (or None).
    cols : per-point (H, W) colour distances.
    lam : semantic weight in [0, 1].
    points : optional (N, 2) clicked pixels (x, y), one per map: each point's blended map is
        replaced by its minimax path distance from the point
        (:func:`sempix.distance.minimax_distance`), so ``D < tau`` is the union of the connected
        components of each click's ``d_k < tau`` that contain the click.

    Returns
    -------
    (H, W) float32.
    """
    lam = check_lam(lam)
    if not cols:
        raise InputError("at least one point is needed")
    out = None
    if points is not None:
        points = np.asarray(points).reshape(-1, 2)
        if len(points) != len(cols):
            raise InputError(f"{len(points)} points for {len(cols)} distance maps")
    for k, (s, c) in enumerate(zip(sems, cols)):
        if s is None:
            d = np.asarray(c, np.float32).copy()
        else:
            d = np.float32(lam) * s + np.float32(1.0 - lam) * c
        if points is not None:
            d = _distance().minimax_distance(d, points[k])
        out = d if out is None else np.minimum(out, d, out=out)
    return out.astype(np.float32, copy=False)


def threshold(distance: np.ndarray, tau: float = DEFAULT_TAU, feather: float = 0.0) -> np.ndarray:
    """Mask from a distance map.

    Parameters
    ----------
    distance : (H, W) float distances.
    tau : threshold; hard mask ``distance < tau`` when ``feather == 0``.
    feather : half-width ``F`` of a smoothstep fall-off: 1 at ``d <= tau - F``, 0 at ``d >= tau
        + F``.

    Returns
    -------
    (H, W) float32 mask in [0, 1].
    """
    tau = check_tau(tau)
    feather = float(feather)
    if not np.isfinite(feather) or feather < 0:
        raise InputError(f"feather must be >= 0, got {feather}")
    d = np.asarray(distance, dtype=np.float32)
    if feather == 0.0:
        return (d < tau).astype(np.float32)
    t = np.clip((np.float32(tau + feather) - d) / np.float32(2 * feather), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def default_refine_radius(shape: tuple[int, int]) -> int:
    """Default guided-filter radius: ``max(2, round(min(H, W) / 100))``."""
    return max(2, int(round(min(shape) / 100)))


def refine_mask(
    mask: np.ndarray, image: np.ndarray, radius: int | None = None, eps: float = 1e-3
) -> np.ndarray:
    """Align a mask's edges with the image's edges (colour guided filter), clipped to [0, 1].

    Parameters
    ----------
    mask : (H, W) float in [0, 1].
    image : (H, W, 3) float sRGB in [0, 1], the guide.
    radius : window radius (default :func:`default_refine_radius`).
    eps : regularisation (smaller = follows image edges more tightly).

    Returns
    -------
    (H, W) float32 in [0, 1].
    """
    m = as_mask(mask, np.asarray(image).shape)
    r = default_refine_radius(m.shape) if radius is None else int(radius)
    return np.clip(guided_filter(image, m, r, eps), 0.0, 1.0).astype(np.float32)


@dataclass
class MaskResult:
    """Result of :func:`range_mask`.

    Attributes
    ----------
    mask : (H, W) float32 in [0, 1].
    distance : (H, W) float32 combined distance map (before threshold).
    points : (N, 2) int (x, y).
    settings : lam, tau, space, feather, refine, semantic (bool).
    """

    mask: np.ndarray
    distance: np.ndarray
    points: np.ndarray
    settings: dict = field(default_factory=dict)


def range_mask(
    image: np.ndarray,
    points,
    *,
    features=None,
    lam: float = DEFAULT_LAM,
    tau: float = DEFAULT_TAU,
    space: str = DEFAULT_SPACE,
    feather: float = 0.0,
    refine: bool = False,
    refine_radius: int | None = None,
    source: MaskSource | None = None,
    connected: bool = DEFAULT_CONNECTED,
) -> MaskResult:
    """Semantic range mask of the pixels close to any of the clicked points.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    points : (x, y) pair or (N, 2) pairs (column, row).
    features : (h, w, D) features / FeatureMap (``h, w`` may be a downscaled working resolution),
        or None: colour only (``lam`` ignored).
    lam, tau, space, feather : see the module docstring.
    refine : align the edges with the image (guided filter).
    source : a prepared :class:`MaskSource` (reuses cached colour/feature data).
    connected : keep only what is connected to a click (minimax path distance, see
        :func:`combine`); False gives the plain per-pixel criterion.

    Returns
    -------
    MaskResult
    """
    check_lam(lam)
    check_tau(tau)
    if space not in SPACES:
        raise InputError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    src = source if source is not None else MaskSource(image, features)
    pts = _distance().parse_points(points, src.shape)
    dist = src.distance(pts, lam=lam, space=space, connected=connected)
    mask = threshold(dist, tau, feather)
    if refine:
        mask = refine_mask(mask, src.image, refine_radius)
    return MaskResult(
        mask,
        dist,
        pts,
        {
            "lam": float(lam),
            "tau": float(tau),
            "space": space,
            "feather": float(feather),
            "refine": bool(refine),
            "connected": bool(connected),
            "semantic": src.has_semantic,
        },
    )
