"""Smallest eigenvectors of the (sparse, symmetric) soft-segmentation Laplacian."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla


def smallest_eigenvectors(L: sp.spmatrix, k: int = 100, *, method: str = "eigsh",
                          shift: float = 1e-5, tol: float = 1e-3, max_iter: int = 60,
                          seed: int = 0, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenpairs of ``L`` with the smallest eigenvalues.

    Parameters
    ----------
    L : (N, N) sparse symmetric matrix (N = pixels).
    k : number of eigenvectors (paper: 100); clipped to N - 2.
    method : ``"eigsh"`` (ARPACK in shift-invert mode around ``-shift``: a sparse LU of
        ``L + shift I`` and Lanczos on its inverse), ``"subspace"`` (block shift-invert subspace
        iteration with Rayleigh-Ritz on the same LU, block size ``k + k/2``) or ``"lobpcg"``
        (LOBPCG preconditioned by pyamg smoothed aggregation).
    shift : the shift; ``-shift`` lies below the spectrum (L may have tiny negative eigenvalues
        from negative semantic affinities).
    tol : residual tolerance ``|L v - lambda v|`` (subspace, lobpcg).

    Returns
    -------
    values : (k,) ascending eigenvalues; vectors : (N, k) float64 orthonormal columns.
    """
    n = L.shape[0]
    k = int(min(k, n - 2))
    L = sp.csc_matrix(L, dtype=np.float64)
    if method == "eigsh":
        lu = sla.splu((L + shift * sp.eye(n, format="csc")).tocsc())
        op = sla.LinearOperator((n, n), matvec=lu.solve, dtype=np.float64)
        if progress:
            progress(0.3, "eigenvectors (Lanczos)")
        v0 = np.random.default_rng(seed).standard_normal(n)
        mu, vecs = sla.eigsh(op, k=k, which="LM", v0=v0, tol=tol)
        vals = 1.0 / mu - shift
    elif method == "subspace":
        lu = sla.splu((L + shift * sp.eye(n, format="csc")).tocsc())
        p = k + max(10, k // 2)
        X = np.random.default_rng(seed).standard_normal((n, p))
        Lr = L.tocsr()
        for it in range(max_iter):
            Q, _ = np.linalg.qr(lu.solve(X))
            H = Q.T @ (Lr @ Q)
            w, V = np.linalg.eigh((H + H.T) / 2)
            X = Q @ V
            res = np.linalg.norm(Lr @ X[:, :k] - X[:, :k] * w[:k], axis=0).max()
            if progress:
                progress(
                    min(1.0, (it + 1) / max_iter), f"eigenvectors (it {it + 1}, res {res:.1e})"
                )
            if res < tol:
                break
        vals, vecs = w[:k], X[:, :k]
    elif method == "lobpcg":
        import pyamg

        ml = pyamg.smoothed_aggregation_solver(
            (L + shift * sp.eye(n)).tocsr(), symmetry="symmetric"
        )
        X = np.random.default_rng(seed).standard_normal((n, k))
        vals, vecs = sla.lobpcg(
            L.tocsr(), X, M=ml.aspreconditioner(), largest=False, tol=tol, maxiter=max_iter * 5
        )
    else:
        raise ValueError(f"unknown eigen method {method!r}")
    order = np.argsort(vals)
    return vals[order], np.ascontiguousarray(vecs[:, order])
