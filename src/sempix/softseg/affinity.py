"""Affinities and the combined normalised Laplacian of semantic soft segmentation.

``L = D^-1/2 (D - (W_L + sigma_S W_S + sigma_C W_C)) D^-1/2`` (Aksoy et al. 2018, Eq. 6) where

* ``W_L`` are the matting affinities of Levin et al. (3x3 windows). pymatting's ``cf_laplacian``
  returns the matting *Laplacian* ``L_L = D_L - W_L``; its row sums of ``W_L`` (diagonal included)
  equal the number of 3x3 windows that contain the pixel, which we compute directly
  (:func:`window_counts`), so ``D - W = L_L + L_SP`` and ``D = D_L + rowsum(W_SP)``.
* ``W_C`` nonlocal colour affinities between SLIC superpixels whose centroids are closer than
  ``radius`` x image size: ``(erf(a_c (b_c - |c_s - c_t|)) + 1) / 2``;
* ``W_S`` semantic affinities between *adjacent* superpixels: ``erf(a_s (b_s - |f_s - f_t|))``
  (can be negative);

both superpixel affinities connect the superpixels' centroid pixels (the member pixel nearest to
the centroid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.special import erf


def matting_laplacian(image: np.ndarray, epsilon: float = 1e-7, radius: int = 1) -> sp.csr_matrix:
    """Matting Laplacian ``L_L = D_L - W_L`` of Levin et al. (pymatting's ``cf_laplacian``).

    Parameters
    ----------
    image : (H, W, 3) float array in [0, 1].
    epsilon, radius : regulariser and window radius (paper: 1e-7, 1 i.e. 3x3 windows).

    Returns
    -------
    (H*W, H*W) csr_matrix, float64, symmetric, rows sum to zero.
    """
    # not `import pymatting`: that compiles ~30 kernels (sempix.softseg._pymatting)
    from sempix.softseg._pymatting import cf_laplacian

    L = cf_laplacian(np.ascontiguousarray(image, dtype=np.float64), epsilon=epsilon, radius=radius)
    L.sum_duplicates()
    L.eliminate_zeros()
    return L.tocsr()


def window_counts(h: int, w: int, radius: int = 1) -> np.ndarray:
    """Number of (2r+1)^2 windows fully inside the image that contain each pixel, (H*W,) float64.

    This is the row sum of the matting affinity matrix ``W_L`` (diagonal included), i.e. ``D_L``.
    """
    def counts(n: int) -> np.ndarray:
        centre = np.zeros(n)
        centre[radius:n - radius] = 1.0
        k = np.ones(2 * radius + 1)
        return np.convolve(centre, k, mode="same")

    return np.outer(counts(h), counts(w)).ravel()


@njit(cache=True)
def _centroid_pixels(labels: np.ndarray, n: int, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
    h, w = labels.shape
    best = np.full(n, np.inf)
    idx = np.full(n, -1, dtype=np.int64)
    for y in range(h):
        for x in range(w):
            s = labels[y, x]
            d = (y - cy[s]) ** 2 + (x - cx[s]) ** 2
            if d < best[s]:
                best[s] = d
                idx[s] = y * w + x
    return idx


def centroid_pixels(labels: np.ndarray) -> np.ndarray:
    """For each superpixel the flat index of its member pixel nearest to its centroid.

    Parameters
    ----------
    labels : (H, W) int superpixel labels 0..n-1.

    Returns
    -------
    (n,) int64 flat pixel indices (-1 for empty labels).
    """
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    n = int(labels.max()) + 1
    h, w = labels.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cnt = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    cnt[cnt == 0] = 1
    cy = np.bincount(labels.ravel(), ys.ravel(), minlength=n) / cnt
    cx = np.bincount(labels.ravel(), xs.ravel(), minlength=n) / cnt
    return _centroid_pixels(labels, n, cy, cx)


@dataclass
class Superpixels:
    """SLIC superpixels and their statistics.

    Attributes
    ----------
    labels : (H, W) int64 labels 0..n-1.
    centre_pixel : (n,) flat index of each superpixel's centroid pixel.
    centre_yx : (n, 2) float centroid coordinates (row, col).
    mean_color : (n, 3) mean RGB in [0, 1].
    mean_feature : (n, D) mean feature vectors.
    """

    labels: np.ndarray
    centre_pixel: np.ndarray
    centre_yx: np.ndarray
    mean_color: np.ndarray
    mean_feature: np.ndarray

    @property
    def n(self) -> int:
        return len(self.centre_pixel)


def compute_superpixels(image: np.ndarray, features: np.ndarray, n_segments: int = 2500,
                        compactness: float = 10.0, seed: int = 0) -> Superpixels:
    """SLIC superpixels (scikit-image) with centroids, mean colours and mean features."""
    from skimage.segmentation import slic

    h, w = image.shape[:2]
    n_segments = int(max(1, min(n_segments, h * w // 4)))
    labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0,
                  enforce_connectivity=True, convert2lab=True)
    # relabel to 0..n-1 without gaps
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(h, w).astype(np.int64)
    n = int(labels.max()) + 1
    flat = labels.ravel()
    cnt = np.bincount(flat, minlength=n).astype(np.float64)
    ys, xs = np.mgrid[0:h, 0:w]
    cy = np.bincount(flat, ys.ravel(), n) / cnt
    cyx = np.stack([cy, np.bincount(flat, xs.ravel(), n) / cnt], 1)
    col = np.stack([np.bincount(flat, image[..., c].ravel(), n) / cnt for c in range(3)], 1)
    feat = np.stack(
        [np.bincount(flat, features[..., c].ravel(), n) / cnt for c in range(features.shape[2])], 1
    )
    return Superpixels(labels, centroid_pixels(labels), cyx, col, feat)


def adjacent_pairs(labels: np.ndarray) -> np.ndarray:
    """Unique pairs (s, t), s < t, of 4-adjacent superpixels, (m, 2) int64."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    m = a != b
    a, b = a[m], b[m]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    n = int(labels.max()) + 1
    key = np.unique(lo.astype(np.int64) * n + hi)
    return np.stack([key // n, key % n], 1)


def semantic_affinity(spx: Superpixels, a_s: float = 20.0, b_s: float = 0.2):
    """Semantic affinities of adjacent superpixels: ``erf(a_s (b_s - |f_s - f_t|))``.

    Returns
    -------
    pairs : (m, 2) superpixel index pairs; values : (m,) affinities in (-1, 1).
    """
    pairs = adjacent_pairs(spx.labels)
    d = np.linalg.norm(spx.mean_feature[pairs[:, 0]] - spx.mean_feature[pairs[:, 1]], axis=1)
    return pairs, erf(a_s * (b_s - d))


def nonlocal_color_affinity(
    spx: Superpixels,
    shape: tuple[int, int],
    a_c: float = 50.0,
    b_c: float = 0.05,
    radius: float = 0.2,
    min_value: float = 1e-4,
):
    """Nonlocal colour affinities of superpixels with centroids within ``radius`` x image size.

    "Image size" is ``max(H, W)``. Affinities below ``min_value`` (colour distance above
    about 2.5 / a_c + b_c) are dropped to keep the matrix sparse.

    Returns
    -------
    pairs : (m, 2) superpixel index pairs (s < t); values : (m,) in (0, 1).
    """
    from scipy.spatial import cKDTree

    r = radius * max(shape)
    tree = cKDTree(spx.centre_yx)
    pairs = tree.query_pairs(r, output_type="ndarray").astype(np.int64)
    if len(pairs) == 0:
        return pairs.reshape(0, 2), np.zeros(0)
    d = np.linalg.norm(spx.mean_color[pairs[:, 0]] - spx.mean_color[pairs[:, 1]], axis=1)
    v = (erf(a_c * (b_c - d)) + 1.0) / 2.0
    keep = v >= min_value
    return pairs[keep], v[keep]


@dataclass
class SoftSegParams:
    """Affinity parameters (paper defaults)."""

    sigma_s: float = 0.01
    sigma_c: float = 0.01
    a_s: float = 20.0
    b_s: float = 0.2
    a_c: float = 50.0
    b_c: float = 0.05
    color_radius: float = 0.2
    n_superpixels: int = 2500
    matting_epsilon: float = 1e-7
    matting_radius: int = 1


def combined_laplacian(
    image: np.ndarray,
    features: np.ndarray | None,
    params: SoftSegParams | None = None,
    *,
    matting_only: bool = False,
    superpixels: Superpixels | None = None,
):
    """The normalised Laplacian ``D^-1/2 (D - W) D^-1/2`` of the paper.

    Parameters
    ----------
    image : (H, W, 3) float in [0, 1].
    features : (H, W, D) float features (D = 3 after PCA in the paper), or None with
        ``matting_only``.
    matting_only : use ``W_L`` only (spectral matting ablation).

    Returns
    -------
    L : (N, N) csr_matrix float64 symmetric, N = H*W.
    spx : the :class:`Superpixels` (None with ``matting_only``).
    """
    p = params or SoftSegParams()
    h, w = image.shape[:2]
    n = h * w
    Lm = matting_laplacian(image, p.matting_epsilon, p.matting_radius)
    deg = window_counts(h, w, p.matting_radius)
    spx = None
    if not matting_only:
        if features is None:
            raise ValueError("features are required unless matting_only=True")
        spx = superpixels or compute_superpixels(image, features, p.n_superpixels)
        ps, vs = semantic_affinity(spx, p.a_s, p.b_s)
        pc, vc = nonlocal_color_affinity(spx, (h, w), p.a_c, p.b_c, p.color_radius)
        pairs = np.concatenate([ps, pc])
        vals = np.concatenate([p.sigma_s * vs, p.sigma_c * vc])
        i = spx.centre_pixel[pairs[:, 0]]
        j = spx.centre_pixel[pairs[:, 1]]
        Wsp = sp.coo_matrix(
            (np.concatenate([vals, vals]), (np.concatenate([i, j]), np.concatenate([j, i]))),
            shape=(n, n),
        ).tocsr()
        Wsp.sum_duplicates()
        rs = np.asarray(Wsp.sum(axis=1)).ravel()
        Lm = (Lm + sp.diags(rs) - Wsp).tocsr()
        deg = deg + rs
    deg = np.maximum(deg, 1e-6)
    dm = sp.diags(1.0 / np.sqrt(deg))
    L = (dm @ Lm @ dm).tocsr()
    # exact symmetry (remove round-off asymmetry)
    L = ((L + L.T) * 0.5).tocsr()
    L.sort_indices()
    return L, spx, deg
