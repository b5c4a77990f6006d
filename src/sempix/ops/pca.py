"""Dimensionality reduction of per-pixel features: seeded random projection and per-image PCA.

Both are linear maps of the feature vector, so they commute with bilinear interpolation
(``project(upsample(F)) == upsample(project(F))``): reduce before upsampling.
"""

from __future__ import annotations

import numpy as np

from sempix.errors import InputError


def random_projection(d_in: int, d_out: int, seed: int = 0) -> np.ndarray:
    """Seeded Gaussian random projection matrix.

    Entries are ``N(0, 1) / sqrt(d_out)`` so that ``E ||x @ R||^2 = ||x||^2``
    (Johnson-Lindenstrauss).
    The same ``(d_in, d_out, seed)`` always gives the same matrix.

    Returns
    -------
    (d_in, d_out) float32
    """
    if d_out < 1 or d_in < 1:
        raise InputError(f"projection dimensions must be >= 1 (got {d_in} -> {d_out})")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(d_in), int(d_out)]))
    return (rng.standard_normal((d_in, d_out)) / np.sqrt(d_out)).astype(np.float32)


def project_random(features: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """Project ``(..., D)`` features to ``(..., dim)`` with :func:`random_projection`."""
    f = np.asarray(features, dtype=np.float32)
    r = random_projection(f.shape[-1], dim, seed)
    return (f.reshape(-1, f.shape[-1]) @ r).reshape(f.shape[:-1] + (dim,))


def pca_basis(
    features: np.ndarray, n: int, *, max_samples: int = 20_000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of ``(..., D)`` features.

    Signs are fixed so that each axis' largest-magnitude loading is positive (deterministic).
    At most ``max_samples`` (seeded random) feature vectors are used (plenty for the leading
    axes of a smooth feature map, and it keeps PCA of a megapixel map fast).

    Returns
    -------
    mean : (D,) float64
    axes : (D, n) float64, columns = first ``n`` principal directions
    """
    f = np.asarray(features, dtype=np.float32).reshape(-1, features.shape[-1])
    if len(f) > max_samples:
        idx = np.random.default_rng(seed).choice(len(f), max_samples, replace=False)
        f = f[np.sort(idx)]
    mean = f.astype(np.float64).mean(axis=0)
    c = f - mean.astype(np.float32)
    cov = (c.T @ c).astype(np.float64) / max(1, len(f) - 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:n]
    axes = vecs[:, order]
    sign = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(axes.shape[1])])
    sign[sign == 0] = 1
    axes = axes * sign
    if axes.shape[1] < n:  # fewer input dims than requested: pad with zero axes
        axes = np.pad(axes, ((0, 0), (0, n - axes.shape[1])))
    return mean, axes


def pca_reduce(features: np.ndarray, n: int, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Per-image PCA to ``n`` dimensions, each normalised to [0, 1] by its min and max.

    Parameters
    ----------
    features : (..., D) float
    n : int
        Output dimensions (>= 1).

    Returns
    -------
    reduced : (..., n) float32 in [0, 1]
    info : dict with ``mean`` (D,), ``axes`` (D, n), ``lo`` (n,), ``hi`` (n,) so the same map
        can be applied to other (e.g. interpolated) features: ``((f - mean) @ axes - lo) / (hi -
        lo)``.
    """
    if n < 1:
        raise InputError(f"PCA needs n >= 1 (got {n})")
    f = np.asarray(features, dtype=np.float32)
    mean, axes = pca_basis(f, n, seed=seed)
    proj = (f.reshape(-1, f.shape[-1]) - mean.astype(np.float32)) @ axes.astype(np.float32)
    lo = proj.min(axis=0) if len(proj) else np.zeros(n, np.float32)
    hi = proj.max(axis=0) if len(proj) else np.ones(n, np.float32)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    out = np.clip((proj - lo) / span, 0.0, 1.0).astype(np.float32)
    return out.reshape(f.shape[:-1] + (n,)), {"mean": mean, "axes": axes, "lo": lo, "hi": hi}


def pca_rgb(features: np.ndarray, n: int = 3) -> np.ndarray:
    """Project ``(H, W, D)`` features to ``(H, W, n)`` by per-image PCA, normalised to [0, 1].

    Used for previews (n=3 -> RGB) and as soft-segmentation features.
    """
    f = np.asarray(features)
    if f.ndim != 3:
        raise InputError(f"pca_rgb expects (H, W, D) features, got shape {f.shape}")
    return pca_reduce(f, n)[0]
