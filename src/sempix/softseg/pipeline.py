"""Semantic soft segmentation pipeline (Aksoy, Oh, Paris, Pollefeys, Matusik, SIGGRAPH 2018)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from sempix.errors import InputError
from sempix.ops.resample import resize
from sempix.progress import ProgressFn, report, sub_progress
from sempix.softseg.affinity import SoftSegParams, combined_laplacian
from sempix.softseg.eigen import smallest_eigenvectors
from sempix.softseg.sparsify import (
    constrained_sparsification,
    drop_and_group,
    relaxed_sparsification,
)


@dataclass
class SoftSegConfig:
    """All parameters (defaults: the paper's, except ``work_pixels``; see docs/softseg.md).

    Attributes
    ----------
    n_layers : final number of layers (grouping target, paper 5).
    n_eigvecs : eigenvectors of the Laplacian (paper 100).
    n_initial : initial layers of the constrained sparsification (paper 40).
    gamma : sparsity exponent of the constrained sparsification (paper 0.8).
    constrained_iter / relaxed_iter : IRLS iterations (relaxed: paper ~20).
    work_pixels : the eigendecomposition and the constrained sparsification run on the image
        downscaled to at most this many pixels (None = full resolution, the paper's setting);
        the relaxed sparsification always runs at full resolution with the full-resolution
        Laplacian, which restores fine soft transitions.
    affinity : :class:`SoftSegParams` (sigma_S = sigma_C = 0.01, a_s = 20, b_s = 0.2, a_c = 50,
        b_c = 0.05, 2500 superpixels, 20% radius, matting epsilon 1e-7, 3x3 windows).
    matting_only : W_L only (spectral matting ablation, Fig. 4a of the paper).
    eigen_method : "eigsh" | "subspace" | "lobpcg" (see :func:`smallest_eigenvectors`).
    constrained_samples : pixels sampled for the constrained-sparsification energy (None = all).
    relaxed_sigma_s, relaxed_sigma_f, relaxed_delta : weights of E_S, E_F, E_C (1, 1, 100).
    relaxed_thr : IRLS floor of |a| and |1 - a| in the sparsity weights (a layer's alpha cannot
        fall much below about thr^(2 - gamma) / 2 where another layer is opaque).
    grad_offset : gamma_p = min(grad_offset + |grad c_p|, 1) (0.9).
    colors : estimate per-layer colours (pymatting multilevel foreground estimation).
    keep_intermediate : keep eigenvectors and initial layers (for previews).
    blas_threads : BLAS threads during the eigen and constrained stages (needs threadpoolctl;
        None = no limit).
    """

    n_layers: int = 5
    n_eigvecs: int = 100
    n_initial: int = 40
    gamma: float = 0.8
    constrained_iter: int = 20
    relaxed_iter: int = 20
    work_pixels: int | None = 25_000
    affinity: SoftSegParams = field(default_factory=SoftSegParams)
    matting_only: bool = False
    eigen_method: str = "eigsh"
    constrained_samples: int | None = 8_000
    relaxed_sigma_s: float = 1.0
    relaxed_sigma_f: float = 1.0
    relaxed_delta: float = 100.0
    relaxed_cg_iter: int = 30
    relaxed_thr: float = 1e-4
    grad_offset: float = 0.9
    colors: bool = True
    keep_intermediate: bool = False
    blas_threads: int | None = 1
    group_by: str = "semantic"
    group_restarts: int = 100
    seed: int = 0


@dataclass
class SoftSegResult:
    """Soft layers of an image.

    Attributes
    ----------
    alphas : (H, W, K) float32 in [0, 1], summing to one over K.
    colors : (K, H, W, 3) float32 layer colours in [0, 1] (None when not estimated);
        ``sum_k alphas[..., k, None] * colors[k]`` recomposes the image.
    features : (H, W, d) float32 features used (d = 3 after PCA).
    eigvecs : (h, w, m) eigenvectors at the working resolution (when kept).
    eigvals : (m,) eigenvalues (when kept).
    initial : (h, w, K') non-empty layers of the constrained sparsification (when kept).
    grouped_initial : (H, W, K) grouped layers before the relaxed sparsification (when kept).
    timings : seconds per stage.
    meta : backend, sizes, solver statistics.
    """

    alphas: np.ndarray
    colors: np.ndarray | None
    features: np.ndarray
    eigvecs: np.ndarray | None = None
    eigvals: np.ndarray | None = None
    initial: np.ndarray | None = None
    grouped_initial: np.ndarray | None = None
    timings: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return self.alphas.shape[2]

    def layer_rgba(self, k: int) -> np.ndarray:
        """(H, W, 4) float32 RGBA of layer ``k`` (colours + alpha)."""
        rgb = (
            self.colors[k]
            if self.colors is not None
            else np.zeros(self.alphas.shape[:2] + (3,), np.float32)
        )
        return np.dstack([rgb, self.alphas[..., k]]).astype(np.float32)

    def recompose(self) -> np.ndarray:
        """(H, W, 3) sum of layer colours times alphas."""
        if self.colors is None:
            raise ValueError("layer colours were not estimated")
        return np.einsum("hwk,khwc->hwc", self.alphas, self.colors)


def sparsity_exponent(image: np.ndarray, offset: float = 0.9) -> np.ndarray:
    """Spatially varying sparsity ``gamma_p = min(offset + |grad c_p|, 1)``, (H, W).

    The colour gradient uses the Farid-Simoncelli derivative filters (``skimage.filters.farid_h``
    and ``farid_v``) per channel; ``|grad c_p|`` is the Euclidean norm over channels and both
    directions.
    """
    from skimage.filters import farid_h, farid_v

    g2 = np.zeros(image.shape[:2])
    for c in range(3):
        g2 += farid_h(image[..., c]) ** 2 + farid_v(image[..., c]) ** 2
    return np.minimum(offset + np.sqrt(g2), 1.0)


def layer_colors(image: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Per-layer colours such that ``sum_k alpha_k F_k`` reproduces the image.

    Each layer's foreground is estimated with pymatting's multilevel foreground estimation
    (``estimate_foreground_ml``, Germer et al. 2020) against the rest of the image; then the
    recomposition residual ``r = I - sum_k alpha_k F_k`` is added to every layer (the minimum of
    ``sum_k alpha_k |dF_k|^2`` subject to exact recomposition, as the alphas sum to one) and the
    colours are clipped to [0, 1].

    Parameters
    ----------
    image : (H, W, 3) float; alphas : (H, W, K) summing to one.

    Returns
    -------
    (K, H, W, 3) float32.
    """
    from sempix.softseg._pymatting import estimate_foreground_ml  # not `import pymatting` (slow)

    img = np.asarray(image, dtype=np.float64)
    K = alphas.shape[2]
    F = np.empty((K,) + img.shape)
    for k in range(K):
        a = alphas[..., k].astype(np.float64)
        if a.max() < 1e-6:
            F[k] = img
        else:
            F[k] = estimate_foreground_ml(img, a)
    r = img - np.einsum("hwk,khwc->hwc", alphas, F)
    F = np.clip(F + r[None], 0.0, 1.0)
    return F.astype(np.float32)


def _blas_limit(threads: int | None):
    """Context limiting BLAS threads (threadpoolctl if installed, else a no-op).

    The eigen-solver (ARPACK + SuperLU) and the constrained sparsification make many small BLAS
    calls (100 x 100 systems, BLAS-2 orthogonalisation) where multi-threading costs more than it
    gives, especially on a loaded machine (measured 9 s vs 33 s for the constrained step).
    """
    import contextlib

    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def grouping_features(
    image: np.ndarray,
    backend: str,
    shape: tuple[int, int],
    *,
    max_side: int = 513,
    progress: ProgressFn | None = None,
) -> np.ndarray | None:
    """Unit-length native network features on a ``shape`` grid (for grouping soft layers).

    The feature network (all its channels, 256 for ade20k, no reduction, no guided filter) runs
    on the image box-downscaled to ``max_side`` pixels on the long side (the ade20k network
    sees a 513-pixel letterbox anyway, and the full-resolution 256-channel map would cost
    1 GB per megapixel); its network-resolution map is sampled bilinearly at the pixel centres
    of a ``shape`` grid over the same extent and every vector is scaled to unit length, so
    that Euclidean distances are chordal cosine distances.

    Parameters
    ----------
    image : (H, W, 3) float in [0, 1].
    backend : a semantic feature backend (``"ade20k"``, ``"segformer..."``).
    shape : (h, w) output grid.

    Returns
    -------
    (h, w, D) float32 unit vectors, or None when the backend is not semantic (``lowlevel``, or
    the model is unavailable).
    """
    from sempix.features import compute_features
    from sempix.ops.resample import upsample

    if backend == "lowlevel":
        return None
    img = np.asarray(image, dtype=np.float32)
    H, W = img.shape[:2]
    s = min(1.0, max_side / max(H, W))
    if s < 1.0:
        img = np.clip(resize(img, (max(8, round(H * s)), max(8, round(W * s))), filter="box"),
                      0, 1)
    fm = compute_features(img, backend, dim=0, guided=False, progress=progress)
    if not fm.semantic or fm.lowres is None:
        return None
    f, gy, gx = fm.lowres
    Hs, Ws = img.shape[:2]
    h, w = shape
    # pixel centres of the (h, w) grid in small-image pixels, then in network-grid units
    ys = np.interp((np.arange(h) + 0.5) * Hs / h - 0.5, np.arange(Hs), np.asarray(gy, float))
    xs = np.interp((np.arange(w) + 0.5) * Ws / w - 0.5, np.arange(Ws), np.asarray(gx, float))
    g = upsample(np.asarray(f, np.float32), ys, xs)
    g /= np.maximum(np.linalg.norm(g, axis=2, keepdims=True), 1e-6)
    return g.astype(np.float32)


def _features(image, features, backend, progress):
    if features is not None:
        f = np.asarray(features, dtype=np.float32)
        if f.ndim != 3 or f.shape[:2] != image.shape[:2]:
            raise InputError(
                f"features must be (H, W, D) with H, W = {image.shape[:2]} (got {f.shape})"
            )
        return f, {"backend": "given", "semantic": None}
    from sempix.features import compute_features

    fm = compute_features(image, backend, dim=3, reduce="pca", guided=True, progress=progress)
    return fm.features.astype(np.float32), {
        "backend": fm.backend,
        "semantic": fm.semantic,
        "fm": fm,
    }


def soft_segment(
    image: np.ndarray,
    *,
    features: np.ndarray | None = None,
    backend: str = "ade20k",
    group_features: np.ndarray | None = None,
    config: SoftSegConfig | None = None,
    progress: ProgressFn | None = None,
    **overrides,
) -> SoftSegResult:
    """Decompose an image into soft layers (semantic soft segmentation).

    Parameters
    ----------
    image : (H, W, 3) float32 RGB in [0, 1].
    features : (H, W, D) features to use instead of computing them; the paper uses 3-d PCA
        features in [0, 1] (``compute_features(image, backend, dim=3, reduce="pca",
        guided=True)``, which is what is computed when None).
    backend : feature backend when ``features`` is None.
    group_features : (H', W', C) map over the image extent (any resolution) used to group the
        initial layers instead of the one ``config.group_by`` selects (e.g.
        :func:`grouping_features` computed by the caller).
    config : :class:`SoftSegConfig`; keyword ``overrides`` replace its fields.
    progress : progress callback ``(fraction, message)``.

    Returns
    -------
    SoftSegResult with ``alphas`` (H, W, K) and ``colors`` (K, H, W, 3).
    """
    cfg = replace(config or SoftSegConfig(), **overrides)
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"image must be (H, W, 3) RGB (got shape {img.shape})")
    H, W = img.shape[:2]
    if H < 8 or W < 8:
        raise InputError(f"image is too small for soft segmentation ({W}x{H}); need at least 8x8")
    if not 1 <= cfg.n_layers <= 64:
        raise InputError(f"the number of layers must be between 1 and 64 (got {cfg.n_layers})")
    if cfg.group_by not in ("semantic", "features"):
        raise InputError(f"group_by must be 'semantic' or 'features' (got {cfg.group_by!r})")
    if not isinstance(cfg.seed, (int, np.integer)) or not 0 <= int(cfg.seed) < 2**32:
        raise InputError(f"the seed must be an integer in 0..4294967295 (got {cfg.seed})")
    img64 = img.astype(np.float64)
    times: dict[str, float] = {}
    meta: dict = {"shape": (H, W), "config": cfg}
    stages = [
        ("features", 0.0, 0.12),
        ("laplacian", 0.12, 0.17),
        ("eigen", 0.17, 0.45),
        ("constrained", 0.45, 0.65),
        ("relaxed", 0.65, 0.9),
        ("colors", 0.9, 1.0),
    ]
    span = {s: (a, b) for s, a, b in stages}

    def stage_progress(name):
        return sub_progress(progress, *span[name])

    t = time.perf_counter()
    report(progress, 0.0, "features")
    feats, fmeta = _features(img, features, backend, stage_progress("features"))
    meta.update({k: v for k, v in fmeta.items() if k != "fm"})
    meta["feature_map"] = fmeta.get("fm")
    times["features"] = time.perf_counter() - t

    # working resolution for the eigen-decomposition and the constrained sparsification
    t = time.perf_counter()
    report(progress, span["laplacian"][0], "Laplacian")
    scale = 1.0
    if cfg.work_pixels and H * W > cfg.work_pixels:
        scale = np.sqrt(cfg.work_pixels / (H * W))
    h, w = max(8, round(H * scale)), max(8, round(W * scale))
    if (h, w) != (H, W):
        img_w = np.clip(resize(img64, (h, w), filter="gaussian"), 0, 1)
        feat_w = resize(feats, (h, w), filter="gaussian")
        aff_w = replace(
            cfg.affinity, n_superpixels=int(min(cfg.affinity.n_superpixels, h * w // 16))
        )
    else:
        img_w, feat_w, aff_w = img64, feats.astype(np.float64), cfg.affinity
    L_w, _, deg_w = combined_laplacian(
        img_w, None if cfg.matting_only else feat_w, aff_w, matting_only=cfg.matting_only
    )
    times["laplacian"] = time.perf_counter() - t
    meta["work_shape"] = (h, w)

    t = time.perf_counter()
    report(progress, span["eigen"][0], "eigenvectors")
    with _blas_limit(cfg.blas_threads):
        vals, vecs = smallest_eigenvectors(
            L_w,
            cfg.n_eigvecs,
            method=cfg.eigen_method,
            seed=cfg.seed,
            progress=stage_progress("eigen"),
        )
    times["eigen"] = time.perf_counter() - t
    del L_w

    t = time.perf_counter()
    report(progress, span["constrained"][0], "constrained sparsification")
    with _blas_limit(cfg.blas_threads):
        init = constrained_sparsification(
            vecs,
            vals,
            feat_w.reshape(h * w, -1),
            n_layers=cfg.n_initial,
            gamma=cfg.gamma,
            n_iter=cfg.constrained_iter,
            samples=cfg.constrained_samples,
            degree=deg_w,
            seed=cfg.seed,
            progress=stage_progress("constrained"),
        )
    gfeat = None
    if group_features is not None:
        gfeat = np.asarray(group_features, dtype=np.float32)
        if gfeat.ndim != 3:
            raise InputError(f"group_features must be (H, W, C) (got shape {gfeat.shape})")
        if gfeat.shape[:2] != (h, w):
            gfeat = resize(gfeat, (h, w), filter="gaussian")
    elif cfg.group_by == "semantic" and features is None:
        fmap = fmeta.get("fm")
        if fmap is not None and fmap.semantic:
            gfeat = grouping_features(img, fmap.backend, (h, w))
    meta["group_by"] = (
        "given" if group_features is not None else "semantic" if gfeat is not None else "features"
    )
    if gfeat is None:
        gfeat = feat_w
    grouped, kept, group_of = drop_and_group(
        init, gfeat.reshape(h * w, -1), cfg.n_layers, seed=cfg.seed,
        restarts=cfg.group_restarts,
    )
    times["constrained"] = time.perf_counter() - t
    meta["n_initial_nonempty"] = kept.shape[1]
    meta["group_of"] = group_of

    t = time.perf_counter()
    report(progress, span["relaxed"][0], "relaxed sparsification")
    K = grouped.shape[1]
    g_full = grouped.reshape(h, w, K)
    if (h, w) != (H, W):
        g_full = np.clip(resize(g_full, (H, W), filter="gaussian"), 0, 1)
        g_full /= np.maximum(g_full.sum(axis=2, keepdims=True), 1e-12)
    L_full, _, deg = combined_laplacian(
        img64,
        None if cfg.matting_only else feats.astype(np.float64),
        cfg.affinity,
        matting_only=cfg.matting_only,
    )
    # E_L uses (D - W) / median(D): equal to the paper's normalised Laplacian where D is constant
    # (the interior, D = 9), but with the constant vector in its null space at the border too
    sq = sp.diags(np.sqrt(deg))
    L_full = (sq @ L_full @ sq / np.median(deg)).tocsr()
    times["laplacian_full"] = time.perf_counter() - t
    t = time.perf_counter()
    gam = sparsity_exponent(img64, cfg.grad_offset).ravel()
    if cfg.relaxed_iter > 0:
        alphas = relaxed_sparsification(
            L_full,
            g_full.reshape(H * W, K),
            gam,
            n_iter=cfg.relaxed_iter,
            sigma_s=cfg.relaxed_sigma_s,
            sigma_f=cfg.relaxed_sigma_f,
            delta=cfg.relaxed_delta,
            cg_iter=cfg.relaxed_cg_iter,
            thr=cfg.relaxed_thr,
            progress=stage_progress("relaxed"),
        )
    else:
        alphas = g_full.reshape(H * W, K)
    del L_full
    # order layers by decreasing mass (stable output)
    order = np.argsort(-alphas.sum(axis=0), kind="stable")
    alphas = alphas[:, order].reshape(H, W, K).astype(np.float32)
    times["relaxed"] = time.perf_counter() - t

    colors = None
    if cfg.colors:
        t = time.perf_counter()
        report(progress, span["colors"][0], "layer colours")
        colors = layer_colors(img64, alphas)
        times["colors"] = time.perf_counter() - t
    report(progress, 1.0, "done")
    res = SoftSegResult(alphas=alphas, colors=colors, features=feats, timings=times, meta=meta)
    if cfg.keep_intermediate:
        res.eigvecs = vecs.reshape(h, w, -1).astype(np.float32)
        res.eigvals = vals
        res.initial = kept.reshape(h, w, -1).astype(np.float32)
        res.grouped_initial = g_full[..., order].astype(np.float32)
    return res
