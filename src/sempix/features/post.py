"""Label post-processing shared by the semantic feature backends.

* :func:`softmax` - numerically stable softmax.
* :func:`argmax_upsampled` - labels = argmax of bilinearly upsampled logits, computed without
  materialising the full-resolution logits.

Resampling, projection, PCA and the guided filter live in :mod:`sempix.ops` (re-exported here for
the backends' convenience).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from sempix._runtime import run_parallel
from sempix.ops.filters import box_filter, guided_filter
from sempix.ops.pca import pca_basis, pca_reduce, pca_rgb, project_random, random_projection
from sempix.ops.resample import _split, bilinear_corners, sample_coords, upsample

__all__ = [
    "argmax_upsampled", "box_filter", "guided_filter", "pca_basis", "pca_reduce", "pca_rgb",
    "project_random", "random_projection", "sample_coords", "softmax", "upsample",
]


# ----------------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------------


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax, float32."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


@njit(cache=True, parallel=True)
def _argmax_kernel(lg, topk, yi0, yi1, wy, xi0, xi1, wx, out):  # pragma: no cover - numba
    k = topk.shape[2]
    for y in prange(out.shape[0]):
        for x in range(out.shape[1]):
            a0, a1, b0, b1, w00, w01, w10, w11 = bilinear_corners(yi0, yi1, wy, xi0, xi1, wx, y, x,
                                                                  1.0)
            best = -np.inf
            arg = 0
            for n in range(4):
                ny = a0 if n < 2 else a1
                nx = b0 if n % 2 == 0 else b1
                for j in range(k):
                    c = topk[ny, nx, j]
                    v = (w00 * lg[a0, b0, c] + w01 * lg[a0, b1, c]
                         + w10 * lg[a1, b0, c] + w11 * lg[a1, b1, c])
                    if v > best or (v == best and c < arg):
                        best = v
                        arg = c
            out[y, x] = arg


def argmax_upsampled(
    logits: np.ndarray, ys: np.ndarray, xs: np.ndarray, *, top: int = 4
) -> np.ndarray:
    """``argmax`` over classes of the bilinearly upsampled logits, without materialising them.

    For each output pixel the candidates are the ``top`` highest classes of each of its four
    surrounding low-resolution samples; the interpolated logit of each candidate is computed
    and the largest wins. A class outside the top 4 of all four neighbours practically never
    wins the interpolation; ``top=C`` (all classes) is exact.

    Parameters
    ----------
    logits : (h, w, C)
    ys, xs : (H,), (W,) grid coordinates as for :func:`upsample`.
    top : int
        Candidates per low-resolution sample.

    Returns
    -------
    (H, W) int32 class indices.
    """
    lg = np.ascontiguousarray(logits, dtype=np.float32)
    c = lg.shape[2]
    k = max(1, min(top, c))
    if k < c:
        topk = np.argpartition(-lg, k - 1, axis=2)[..., :k]
    else:
        topk = np.broadcast_to(np.arange(c), lg.shape)
    topk = np.ascontiguousarray(topk, dtype=np.int64)
    h, w = lg.shape[:2]
    yi0, yi1, wy = _split(ys, h)
    xi0, xi1, wx = _split(xs, w)
    out = np.empty((len(ys), len(xs)), np.int32)
    run_parallel(_argmax_kernel, lg, topk, yi0, yi1, wy, xi0, xi1, wx, out)
    return out
