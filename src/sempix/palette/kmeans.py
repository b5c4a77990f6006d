"""Small weighted k-means (k-means++ seeding, Lloyd iterations), deterministic for a given seed.

Used on colour histograms (a few thousand weighted points), so plain vectorised numpy is enough.
"""

from __future__ import annotations

import numpy as np


def _sqdist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(n, d), (k, d) -> (n, k) squared Euclidean distances (summed over d in order, as
    ``((x[:, None] - c[None]) ** 2).sum(-1)`` does, without the (n, k, d) temporary)."""
    out = (x[:, None, 0] - c[None, :, 0]) ** 2
    for j in range(1, x.shape[1]):
        out += (x[:, None, j] - c[None, :, j]) ** 2
    return out


def _choice(rng: np.random.Generator, p: np.ndarray) -> int:
    """``rng.choice(len(p), p=p)`` for a valid probability vector, without its checks: the
    same draw (one ``rng.random()``) and the same index."""
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))


def _n_distinct_upto(x: np.ndarray, k: int) -> int:
    """min(k, number of distinct rows of x), in k passes at most."""
    n = 0
    rest = x
    while n < k and len(rest):
        rest = rest[np.any(rest != rest[0], axis=1)]
        n += 1
    return n


def _seed(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    p = w / w.sum()
    centres = [x[_choice(rng, p)]]
    d2 = _sqdist(x, centres[0][None])[:, 0]
    for _ in range(1, k):
        score = w * d2
        tot = score.sum()
        if tot <= 0:  # all remaining mass sits on chosen centres
            break
        i = _choice(rng, score / tot)
        centres.append(x[i])
        d2 = np.minimum(d2, _sqdist(x, x[i][None])[:, 0])
    return np.array(centres, dtype=np.float64)


def weighted_kmeans(
    x: np.ndarray,
    w: np.ndarray | None,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 4,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted k-means.

    Parameters
    ----------
    x : (n, d) points
    w : (n,) non-negative weights (None = all ones)
    k : number of clusters (reduced to the number of distinct points with weight if smaller)
    seed, n_init : restarts with different k-means++ seeds; the lowest weighted SSE wins

    Returns
    -------
    centres : (k', d) float64 (weighted means of their members), k' <= k
    labels : (n,) int64 cluster of each point
    sse : float, weighted sum of squared distances to the assigned centre
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=np.float64)
    keep = w > 0
    if not keep.any():
        raise ValueError("k-means needs at least one point with positive weight")
    xs, ws = x[keep], w[keep]
    k = max(1, _n_distinct_upto(xs, int(k)))
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, float] | None = None
    for _ in range(max(1, n_init)):
        c = _seed(xs, ws, k, rng)
        prev = np.inf
        for _ in range(max_iter):
            lab = np.argmin(_sqdist(xs, c), axis=1)
            wsum = np.bincount(lab, weights=ws, minlength=len(c))
            new = np.stack(
                [
                    np.bincount(lab, weights=ws * xs[:, j], minlength=len(c))
                    for j in range(xs.shape[1])
                ],
                1,
            )
            empty = wsum <= 0
            new[~empty] /= wsum[~empty, None]
            if empty.any():  # re-seed an empty cluster at the worst-served point
                d = np.min(_sqdist(xs, c), axis=1) * ws
                for j in np.flatnonzero(empty):
                    i = int(np.argmax(d))
                    new[j] = xs[i]
                    d[i] = 0
            c = new
            sse = float((ws * np.min(_sqdist(xs, c), axis=1)).sum())
            if prev - sse <= tol * max(prev, 1e-12):
                break
            prev = sse
        if best is None or sse < best[1]:
            best = (c, sse)
    assert best is not None
    centres = best[0]
    labels = np.argmin(_sqdist(x, centres), axis=1)
    return centres, labels, best[1]
