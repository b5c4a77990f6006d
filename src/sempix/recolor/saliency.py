"""Salient-object maps for saliency-guided recolouring.

Built-in backend ``"rbd"`` (works everywhere, no model file): *robust background detection* of
Zhu, Liang, Wei & Sun (CVPR 2014) on SLIC superpixels of a downsized copy (longest side 200 px):

1. superpixel graph (adjacent superpixels, plus all image-border superpixels linked to each other),
   edge weight = Lab distance of the mean colours; geodesic distances by Dijkstra;
2. boundary connectivity ``BndCon(p) = Len_bnd(p) / sqrt(Area(p))`` with soft area/length
   ``exp(-d_geo^2 / 2 sigma_clr^2)``, sigma_clr = 10, giving a background probability
   ``w_bg = 1 - exp(-BndCon^2 / 2)``;
3. background-weighted colour contrast ``wCtr(p) = sum_q d_lab(p,q) exp(-d_xy^2 / 2*0.25^2) w_bg(q)``;
4. the least-squares saliency optimisation
   ``min sum w_bg s^2 + sum wCtr (1 - s)^2 + sum_adjacent w_ij (s_i - s_j)^2``.

Semantic prior (``semantic=True``, default when the ADE20K backend is available): the share of each
superpixel's pixels that the ADE20K network labels as a *thing* class (person, car, animal, flower,
furniture..., i.e. not one of the *stuff* classes in :data:`STUFF_CLASSES`) raises the foreground
term of step 4: ``w_fg = wCtr * (1 + alpha * thing_share)`` with alpha = 2, and the result is
blended ``s = (1 - beta) s + beta * thing_share * s_max`` with beta = 0.25.

A learned salient-object network is not bundled: none of the model files this project can test
with is a salient-object detector (see docs/recolor.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from sempix.errors import InputError
from sempix.palette import srgb_to_lab
from sempix.progress import ProgressFn, report

log = logging.getLogger(__name__)

SALIENCY_THRESHOLD = 0.9

# ADE20K classes treated as background "stuff"; everything else (except "others") is a "thing".
STUFF_CLASSES = frozenset(["others", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk", "earth", "mountain", "plant", "water", "sea", "field", "fence", "rock", "sand", "skyscraper", "path", "stairs", "runway", "river", "bridge", "hill", "dirt", "land", "lake", "house", "windowpane", "curtain", "rug", "railing", "column", "grandstand", "stairway", "blind", "hovel", "tower", "awning", "canopy", "waterfall", "step", "pier", "palm", "escalator", "bannister", "floor,flooring", "pool", "swimming", "base"])


@dataclass
class SaliencyMap:
    """A saliency map.

    Attributes
    ----------
    saliency : (H, W) float32 in [0, 1].
    backend : ``"rbd"`` or ``"rbd+ade20k"``.
    meta : extra information (e.g. the share of "thing" pixels).
    """

    saliency: np.ndarray
    backend: str
    meta: dict = field(default_factory=dict)


def _downsize(img: np.ndarray, max_side: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return img
    size = (max(8, round(w * s)), max(8, round(h * s)))
    u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(u8).resize(size, Image.BILINEAR), np.float32) / 255.0


def _resize_map(m: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    if m.shape == (h, w):
        return m.astype(np.float32)
    im = Image.fromarray(m.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR)
    return np.asarray(im, np.float32)


def thing_mask(labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """(H, W) bool: pixels whose ADE20K label is a "thing" class (not in :data:`STUFF_CLASSES`)."""
    is_thing = np.array([(n.split(",")[0].split()[0].lower() if n else "others") not in STUFF_CLASSES
                         for n in class_names], bool)
    lab = np.clip(labels, 0, len(class_names) - 1)
    return is_thing[lab]


def _rbd(small: np.ndarray, prior: np.ndarray | None, alpha: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    from skimage.segmentation import slic

    h, w = small.shape[:2]
    seg = slic(small, n_segments=250, compactness=10, start_label=0, channel_axis=-1)
    _, seg = np.unique(seg, return_inverse=True)
    seg = seg.reshape(h, w)
    n = int(seg.max()) + 1
    lab = srgb_to_lab(small).reshape(-1, 3).astype(np.float64)
    flat = seg.reshape(-1)
    cnt = np.bincount(flat, minlength=n).astype(np.float64)
    col = np.stack([np.bincount(flat, weights=lab[:, c], minlength=n) for c in range(3)], 1) / cnt[:, None]
    yy, xx = np.mgrid[0:h, 0:w]
    scale = float(max(h, w))
    pos = np.stack([np.bincount(flat, weights=(yy.reshape(-1) / scale), minlength=n),
                    np.bincount(flat, weights=(xx.reshape(-1) / scale), minlength=n)], 1) / cnt[:, None]
    border = np.zeros(n, bool)
    border[np.unique(np.concatenate([seg[0], seg[-1], seg[:, 0], seg[:, -1]]))] = True
    # adjacency
    a = np.concatenate([seg[:, :-1].ravel(), seg[:-1, :].ravel()])
    b = np.concatenate([seg[:, 1:].ravel(), seg[1:, :].ravel()])
    m = a != b
    pairs = np.unique(np.sort(np.stack([a[m], b[m]], 1), axis=1), axis=0)
    bidx = np.flatnonzero(border)
    bpairs = np.array([(i, j) for ii, i in enumerate(bidx) for j in bidx[ii + 1:]], np.int64).reshape(-1, 2)
    allp = np.unique(np.concatenate([pairs, bpairs]), axis=0) if len(bpairs) else pairs
    dcol = np.linalg.norm(col[allp[:, 0]] - col[allp[:, 1]], axis=1) + 1e-6
    graph = coo_matrix((dcol, (allp[:, 0], allp[:, 1])), shape=(n, n)).tocsr()
    geo = dijkstra(graph, directed=False)
    geo[~np.isfinite(geo)] = 1e6
    sig_clr = 10.0
    sim = np.exp(-geo ** 2 / (2 * sig_clr ** 2))
    area = sim.sum(1)
    len_bnd = sim[:, border].sum(1)
    bndcon = len_bnd / np.sqrt(area)
    w_bg = 1 - np.exp(-bndcon ** 2 / 2.0)
    d_app = np.linalg.norm(col[:, None] - col[None], axis=-1)
    d_spa = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    w_spa = np.exp(-d_spa ** 2 / (2 * 0.25 ** 2))
    wctr = (d_app * w_spa * w_bg[None, :]).sum(1)
    wctr = wctr / (wctr.max() + 1e-12)
    thing = None
    if prior is not None:
        thing = np.bincount(flat, weights=prior.reshape(-1).astype(np.float64), minlength=n) / cnt
        wctr = wctr * (1 + alpha * thing)
    # optimisation
    wij = np.exp(-np.linalg.norm(col[pairs[:, 0]] - col[pairs[:, 1]], axis=1) ** 2 / (2 * sig_clr ** 2)) + 0.1
    from scipy.sparse import diags
    from scipy.sparse.linalg import spsolve

    lap = coo_matrix((np.concatenate([-wij, -wij]), (np.concatenate([pairs[:, 0], pairs[:, 1]]),
                                                    np.concatenate([pairs[:, 1], pairs[:, 0]]))),
                     shape=(n, n)).tocsr()
    deg = -np.asarray(lap.sum(1)).ravel()
    A = (lap + diags(deg + w_bg + wctr + 1e-9)).tocsc()
    s = spsolve(A, wctr)
    s = (s - s.min()) / (s.max() - s.min() + 1e-12)
    if thing is not None:
        s = 0.75 * s + 0.25 * thing * s.max()
        s = (s - s.min()) / (s.max() - s.min() + 1e-12)
    return s[seg].astype(np.float32), seg


def semantic_labels(image: np.ndarray, backend: str = "ade20k") -> tuple[np.ndarray, list[str]] | None:
    """ADE20K labels ``(labels (H, W) int32, class_names)`` from the feature backend, or None.

    None when the backend is ``"none"``/``"lowlevel"``, not semantic, or not available (logged).
    """
    if backend in (None, "none", "lowlevel"):
        return None
    try:
        from sempix.features import compute_features

        fm = compute_features(image, backend)
    except ImportError:
        log.warning("semantic features are not available in this build; continuing without them")
        return None
    if not getattr(fm, "semantic", False) or fm.labels is None or fm.class_names is None:
        return None
    return np.asarray(fm.labels), list(fm.class_names)


def compute_saliency(image: np.ndarray, *, labels: tuple[np.ndarray, list[str]] | None = None,
                     backend: str = "rbd", progress: ProgressFn | None = None) -> SaliencyMap:
    """Saliency map of an image.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1].
    labels : optional ``(labels (H, W) int, class_names)`` from an ADE20K feature map, used as the
        semantic "thing" prior (see :func:`semantic_labels`).
    backend : ``"rbd"`` (built-in). Other names raise :class:`InputError`.

    Returns
    -------
    SaliencyMap with ``saliency`` (H, W) float32 in [0, 1].
    """
    if backend != "rbd":
        raise InputError(f"unknown saliency backend {backend!r} (available: rbd)")
    img = np.asarray(image, np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError("saliency needs an (H, W, 3) RGB image")
    h, w = img.shape[:2]
    small = _downsize(img, 200)
    prior = None
    meta: dict = {}
    if labels is not None:
        tm = thing_mask(*labels).astype(np.float32)
        prior = _resize_map(tm, *small.shape[:2]) if tm.shape != small.shape[:2] else tm
        meta["thing_share"] = float(tm.mean())
    report(progress, 0.2, "saliency")
    s_small, _ = _rbd(small, prior)
    s = np.clip(_resize_map(s_small, h, w), 0, 1)
    report(progress, 1.0, "saliency")
    return SaliencyMap(s, "rbd+ade20k" if prior is not None else "rbd", meta)


def salient_mask(saliency: np.ndarray, threshold: float = SALIENCY_THRESHOLD) -> np.ndarray:
    """(H, W) bool: saliency > threshold (the paper's gamma = 0.9)."""
    return np.asarray(saliency) > threshold
