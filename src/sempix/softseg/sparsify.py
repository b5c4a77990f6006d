"""Constrained (spectral matting) and relaxed sparsification of soft segments."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.cluster.vq import kmeans2
from scipy.linalg import cho_solve


def kmeans(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Seeded k-means++ labels of ``points`` (M, d) into ``k`` clusters, (M,) int."""
    import warnings

    points = np.asarray(points, dtype=np.float64)
    uniq = np.unique(np.round(points[:: max(1, len(points) // 20000)], 6), axis=0)
    k = int(min(k, len(points), max(1, len(uniq)) if len(uniq) < k else k))
    if k <= 1:
        return np.zeros(len(points), dtype=np.int64)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, labels = kmeans2(points, k, minit="++", seed=rng, iter=20)
    return labels


def weighted_kmeans(
    points: np.ndarray, k: int, weights: np.ndarray, *, restarts: int = 10, seed: int = 0,
    n_iter: int = 100,
) -> np.ndarray:
    """k-means of a few weighted points (Lloyd), best of ``restarts`` seeded k-means++ starts.

    Minimises ``sum_i weights_i |points_i - c(i)|^2``; meant for tens of points (the grouping of
    soft layers, weighted by their alpha mass).

    Parameters
    ----------
    points : (M, d); weights : (M,) non-negative; k : clusters (clipped to M).

    Returns
    -------
    (M,) int labels in 0..k'-1 (empty clusters removed).
    """
    X = np.asarray(points, dtype=np.float64)
    wts = np.maximum(np.asarray(weights, dtype=np.float64), 0.0)
    M = len(X)
    if wts.sum() <= 0:
        wts = np.ones(M)
    k = int(min(k, M))
    if k <= 1:
        return np.zeros(M, dtype=np.int64)
    rng = np.random.default_rng(seed)
    best, best_lab = np.inf, np.zeros(M, dtype=np.int64)
    for _ in range(max(1, restarts)):
        C = [X[rng.choice(M, p=wts / wts.sum())]]
        for _ in range(k - 1):
            d = ((X[:, None] - np.asarray(C)[None]) ** 2).sum(-1).min(axis=1) * wts
            if d.sum() <= 0:
                break
            C.append(X[rng.choice(M, p=d / d.sum())])
        C = np.asarray(C)
        lab = np.zeros(M, dtype=np.int64)
        for it in range(n_iter):
            new = ((X[:, None] - C[None]) ** 2).sum(-1).argmin(axis=1)
            if it and np.array_equal(new, lab):
                break
            lab = new
            for j in range(len(C)):
                m = lab == j
                if m.any() and wts[m].sum() > 0:
                    C[j] = (wts[m, None] * X[m]).sum(0) / wts[m].sum()
        inertia = float((wts * ((X - C[lab]) ** 2).sum(-1)).sum())
        if inertia < best - 1e-12:
            best, best_lab = inertia, lab
    return np.unique(best_lab, return_inverse=True)[1].astype(np.int64)


def _irls_weights(a: np.ndarray, gamma, thr: float):
    u = np.maximum(np.abs(a), thr) ** (gamma - 2.0)
    v = np.maximum(np.abs(1.0 - a), thr) ** (gamma - 2.0)
    return u, v


def constrained_sparsification(
    eigvecs: np.ndarray,
    eigvals: np.ndarray,
    features: np.ndarray,
    n_layers: int = 40,
    gamma: float = 0.8,
    n_iter: int = 20,
    thr: float = 1e-3,
    smooth_weight: float = 1.0,
    samples: int | None = 12000,
    degree: np.ndarray | None = None,
    seed: int = 0,
    progress=None,
) -> np.ndarray:
    """Spectral-matting sparsification: alphas in the eigenvector span that sum to one.

    Minimises ``sum_k sum_p |a_kp|^gamma + |1 - a_kp|^gamma + smooth_weight * y_k^T Lambda y_k``
    with ``a_k = E y_k`` for k < K and ``a_K = 1 - sum_k a_k`` (Levin et al. 2008; Aksoy et al.
    2018 Sec. 4), by iteratively reweighted least squares. Initialisation: k-means of the
    per-pixel *feature vectors* into ``n_layers`` clusters, indicators projected on the span.

    Parameters
    ----------
    eigvecs : (N, m) orthonormal eigenvectors; eigvals : (m,).
    features : (N, d) per-pixel feature vectors (the 3-d PCA features).
    samples : evaluate the sparsity energy on this many fixed random pixels (None = all); the
        alphas are always formed on all pixels.
    degree : (N,) degrees ``D`` of the normalised Laplacian whose eigenvectors ``u`` are given;
        the basis is then ``D^-1/2 u`` (the generalised eigenvectors of ``(D - W) x = l D x``,
        which contain the constant vector, so layers do not fade at the image border), and the
        initial indicators are projected D-orthogonally.

    Returns
    -------
    (N, K) float64 alphas (not clipped) that sum to one per pixel.
    """
    E = np.asarray(eigvecs, dtype=np.float64)
    n, m = E.shape
    dw = np.ones(n)
    if degree is not None:
        dw = np.asarray(degree, dtype=np.float64)
        E = E / np.sqrt(dw)[:, None]
    labels = kmeans(features.reshape(n, -1), n_layers, seed)
    present = np.unique(labels)
    K = len(present)
    ind = (labels[:, None] == present[None, :]).astype(np.float64)
    Y = E.T @ (dw[:, None] * ind)  # (m, K), D-orthogonal projection
    if K < 2:
        return np.ones((n, 1))
    rng = np.random.default_rng(seed)
    idx = (
        np.sort(rng.choice(n, samples, replace=False)) if samples and samples < n else np.arange(n)
    )
    Es = E[idx]
    scale = n / len(idx)
    lam = smooth_weight * np.diag(np.abs(eigvals))
    # all weighted Gram matrices E^T diag(w) E of one iteration as ONE matrix product:
    # rows of P are the upper triangles of the per-pixel outer products e_p e_p^T
    iu = np.triu_indices(m)
    P = np.empty((len(idx), len(iu[0])), dtype=np.float32)
    for s0 in range(0, len(idx), 2048):
        blk = Es[s0 : s0 + 2048]
        P[s0 : s0 + 2048] = (blk[:, iu[0]] * blk[:, iu[1]]).astype(np.float32)

    def grams(weights: np.ndarray) -> np.ndarray:
        g = (weights.T.astype(np.float32) @ P).astype(np.float64) * scale  # (k, m(m+1)/2)
        out = np.zeros((weights.shape[1], m, m))
        out[:, iu[0], iu[1]] = g
        out[:, iu[1], iu[0]] = g
        return out

    for it in range(n_iter):
        A = Es @ Y[:, : K - 1]
        aK = 1.0 - A.sum(axis=1)
        U, V = _irls_weights(A, gamma, thr)
        uK, vK = _irls_weights(aK, gamma, thr)
        # last component substituted: energy uK (1 - s)^2 + vK s^2, s = sum_k a_k
        G = grams(np.concatenate([U + V, (uK + vK)[:, None]], axis=1))
        C = G[-1]
        B = G[:-1] + lam
        c = scale * Es.T @ uK  # (m,)
        b = scale * (Es.T @ V).T + c  # (K-1, m)
        # (blockdiag(B) + 11^T (x) C) y = b  via  s = sum_k y_k
        # B_k are SPD: one batched Cholesky, then per-k triangular solves for [b_k | C]
        chol = np.linalg.cholesky(B)
        Bb = np.empty((K - 1, m))
        SC = np.zeros((m, m))
        rhs = np.empty((m, m + 1))
        rhs[:, 1:] = C
        for k in range(K - 1):
            rhs[:, 0] = b[k]
            z = cho_solve((chol[k], True), rhs, check_finite=False)
            Bb[k] = z[:, 0]
            SC += z[:, 1:]
        s = np.linalg.solve(np.eye(m) + SC, Bb.sum(axis=0))
        Cs = C @ s
        Ynew = np.stack(
            [Bb[k] - cho_solve((chol[k], True), Cs, check_finite=False) for k in range(K - 1)]
        )
        Y[:, : K - 1] = Ynew.T
        if progress:
            progress((it + 1) / n_iter, f"constrained sparsification {it + 1}/{n_iter}")
    A = E @ Y[:, : K - 1]
    return np.concatenate([A, 1.0 - A.sum(axis=1, keepdims=True)], axis=1)


def drop_and_group(
    alphas: np.ndarray,
    features: np.ndarray,
    n_groups: int = 5,
    *,
    empty_alpha: float = 0.1,
    empty_fraction: float = 1e-3,
    seed: int = 0,
    restarts: int = 0,
):
    """Drop (nearly) empty layers and group the rest into ``n_groups`` by k-means on their
    alpha-weighted mean feature vectors.

    ``restarts=0``: one unweighted k-means++ run (scipy ``kmeans2``; the behaviour before
    issue 19); ``restarts >= 1``: :func:`weighted_kmeans` with each layer weighted by its alpha
    mass, best of ``restarts`` starts.

    A layer is empty when fewer than ``empty_fraction`` of the pixels have alpha above
    ``empty_alpha``. Alphas are clipped to [0, 1] and renormalised to sum to one first.

    Parameters
    ----------
    alphas : (N, K); features : (N, d).

    Returns
    -------
    grouped : (N, G) alphas summing to one; kept : (N, K') the non-empty initial layers;
    group_of : (K',) group index of each kept layer.
    """
    a = np.clip(alphas, 0.0, 1.0)
    a /= np.maximum(a.sum(axis=1, keepdims=True), 1e-12)
    n = a.shape[0]
    keep = (a > empty_alpha).sum(axis=0) >= max(1, empty_fraction * n)
    if not keep.any():
        keep[np.argmax(a.sum(axis=0))] = True
    kept = a[:, keep]
    kept /= np.maximum(kept.sum(axis=1, keepdims=True), 1e-12)
    # pixels whose mass was entirely in dropped layers: give them to the best kept layer
    zero = kept.sum(axis=1) < 0.5
    if zero.any():
        kept[zero] = 0.0
        kept[zero, np.argmax(alphas[zero][:, keep], axis=1)] = 1.0
    K = kept.shape[1]
    if K <= n_groups:
        return kept, kept, np.arange(K)
    mass = kept.sum(axis=0)
    means = (kept.T @ features.reshape(n, -1)) / mass[:, None]
    if restarts > 0:
        g = weighted_kmeans(means, n_groups, mass, restarts=restarts, seed=seed)
    else:
        g = kmeans(means, n_groups, seed)
    _, g = np.unique(g, return_inverse=True)
    grouped = np.zeros((n, g.max() + 1))
    for k in range(K):
        grouped[:, g[k]] += kept[:, k]
    return grouped, kept, g


def block_jacobi_pcg(
    L: sp.csr_matrix,
    diag_w: np.ndarray,
    delta: float,
    rhs: np.ndarray,
    x0: np.ndarray,
    max_iter: int = 50,
    tol: float = 1e-4,
) -> tuple[np.ndarray, int]:
    """Solve ``(I_K (x) L + diag(diag_w) + delta 11^T (x) I_N) x = rhs`` by PCG.

    The unknowns are stored as (N, K) arrays. Preconditioner: the exact inverse of the per-pixel
    K x K blocks ``diag(L_pp + w_pk) + delta 11^T`` (Sherman-Morrison).

    Returns
    -------
    x : (N, K); iterations used.
    """
    Ld = L.diagonal()[:, None]

    def matvec(x):
        return L @ x + diag_w * x + delta * x.sum(axis=1, keepdims=True)

    dinv = 1.0 / (Ld + diag_w)
    denom = 1.0 + delta * dinv.sum(axis=1, keepdims=True)

    def precond(r):
        z = dinv * r
        return z - dinv * (delta * z.sum(axis=1, keepdims=True) / denom)

    x = x0.copy()
    r = rhs - matvec(x)
    bnorm = np.linalg.norm(rhs) + 1e-30
    z = precond(r)
    p = z.copy()
    rz = np.vdot(r, z)
    it = 0
    for it in range(1, max_iter + 1):
        Ap = matvec(p)
        alpha = rz / np.vdot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        if np.linalg.norm(r) < tol * bnorm:
            break
        z = precond(r)
        rz_new = np.vdot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, it


def relaxed_sparsification(
    L: sp.csr_matrix,
    init: np.ndarray,
    gamma: np.ndarray | float,
    n_iter: int = 20,
    sigma_s: float = 1.0,
    sigma_f: float = 1.0,
    delta: float = 100.0,
    thr: float = 1e-4,
    cg_iter: int = 50,
    cg_tol: float = 1e-4,
    progress=None,
) -> np.ndarray:
    """Relaxed sparsification (Aksoy et al. 2018, Eqs. 13-17) by IRLS.

    Energy ``sum_k a_k^T L a_k + sigma_s sum |a|^gamma_p + |1-a|^gamma_p
    + sigma_f |a - a0|^2 + delta sum_p (1 - sum_k a_kp)^2``; each reweighting step solves the
    sparse linear system of Eq. 17 by block-Jacobi preconditioned conjugate gradients, warm
    started from the previous alphas.

    Parameters
    ----------
    L : (N, N) Laplacian; init : (N, K) initial alphas ``a0``; gamma : scalar or (N,)
        per-pixel sparsity exponents.

    Returns
    -------
    (N, K) alphas clipped to [0, 1] and normalised to sum to one.
    """
    a0 = np.asarray(init, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    a = a0.copy()
    L = sp.csr_matrix(L)
    for it in range(n_iter):
        u, v = _irls_weights(a, g, thr)
        w = sigma_s * (u + v) + sigma_f
        rhs = sigma_s * v + sigma_f * a0 + delta
        a, _ = block_jacobi_pcg(L, w, delta, rhs, a, cg_iter, cg_tol)
        if progress:
            progress((it + 1) / n_iter, f"relaxed sparsification {it + 1}/{n_iter}")
    a = np.clip(a, 0.0, 1.0)
    s = a.sum(axis=1, keepdims=True)
    bad = s[:, 0] < 1e-6
    a[bad] = a0[bad].clip(0, 1)
    s = a.sum(axis=1, keepdims=True)
    return a / s
