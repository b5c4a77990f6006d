"""Edge-aware and box filters: one box filter, one guided filter (He et al. 2010 / 2015).

Border rule (one for both): windows are clipped to the image and averages are taken over the
pixels inside (the normalised box filter of He et al.'s reference code), so a constant image
stays constant up to the border.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from sempix._runtime import run_parallel
from sempix.errors import InputError
from sempix.ops.resample import _split, bilinear_corners, resize, sample_coords


def box_filter(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the ``(2r+1) x (2r+1)`` window clipped to the image (axes 0, 1).

    Parameters
    ----------
    a : (H, W) or (H, W, ...) array
    r : window radius (>= 0)

    Returns
    -------
    float64 array of ``a``'s shape (scipy ``uniform_filter`` with zero padding, divided by the
    number of pixels of the clipped window).
    """
    from scipy.ndimage import uniform_filter

    a = np.asarray(a, dtype=np.float64)
    r = max(0, int(r))
    if r == 0:
        return a.copy()
    size = [2 * r + 1, 2 * r + 1] + [1] * (a.ndim - 2)
    s = uniform_filter(a, size=size, mode="constant", cval=0.0)
    h, w = a.shape[:2]
    cy = uniform_filter(np.ones(h), size=2 * r + 1, mode="constant")
    cx = uniform_filter(np.ones(w), size=2 * r + 1, mode="constant")
    cnt = np.outer(cy, cx)
    return s / cnt.reshape(cnt.shape + (1,) * (a.ndim - 2))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int | None = None, eps: float = 1e-3,
                  *, subsample: int | None = None, chunk: int = 8) -> np.ndarray:
    """Edge-aware smoothing of ``src`` with the colour image ``guide`` (He et al. 2010).

    Per window, ``q = a^T I + b`` with ``a = (Sigma_I + eps U)^-1 cov(I, p)`` (3x3 colour guide),
    ``a`` and ``b`` averaged over the windows covering each pixel. With ``subsample`` s > 1 this
    is the *fast* guided filter (He & Sun 2015): the coefficients are computed on an s-times
    smaller grid (radius r/s) and bilinearly upsampled, the final ``mean_a^T I + mean_b`` uses
    the full-resolution guide. Channels are processed ``chunk`` at a time to bound memory.

    It is an edge-*preserving* smoother: features stay smooth inside image regions and keep
    steps where the image has edges; it does not re-sharpen a boundary that is blurred over
    more than the window.

    Parameters
    ----------
    guide : (H, W, 3) float in [0, 1] (or (H, W) grey)
    src : (H, W, D) or (H, W) float
    radius : int, optional
        Window radius at full resolution; default ``max(2, round(min(H, W) / 128))``.
    eps : float
        Regularisation (in guide-intensity squared units).
    subsample : int, optional
        Default ``max(1, min(H, W) // 256)`` (1 = exact guided filter).

    Returns
    -------
    Same shape as ``src``, float32.
    """
    I_full = np.asarray(guide, dtype=np.float32)
    if I_full.ndim == 2:
        I_full = np.repeat(I_full[..., None], 3, axis=2)
    p_all = np.asarray(src, dtype=np.float32)
    squeeze = p_all.ndim == 2
    if squeeze:
        p_all = p_all[..., None]
    H, W = I_full.shape[:2]
    if p_all.shape[:2] != (H, W):
        raise InputError(f"guide {I_full.shape[:2]} and source {p_all.shape[:2]} sizes differ")
    r = max(2, round(min(H, W) / 128)) if radius is None else int(radius)
    s = max(1, min(H, W) // 256) if subsample is None else max(1, int(subsample))
    if s > 1:
        h, w = max(1, -(-H // s)), max(1, -(-W // s))
        I = resize(I_full, (h, w)).astype(np.float64)
        rs = max(1, round(r / s))
    else:
        h, w, I, rs = H, W, I_full.astype(np.float64), r
    mean_I = box_filter(I, rs)  # (h,w,3)
    II = I[..., :, None] * I[..., None, :]
    cov_I = (
        box_filter(II.reshape(h, w, 9), rs).reshape(h, w, 3, 3)
        - mean_I[..., :, None] * mean_I[..., None, :]
    )
    inv = np.linalg.inv(cov_I + eps * np.eye(3))  # (h,w,3,3)
    d = p_all.shape[2]
    coef = np.empty((h, w, 4, d), np.float32)  # mean_a (3) and mean_b per channel, low resolution
    for c0 in range(0, d, chunk):
        pc = p_all[..., c0 : c0 + chunk]
        p = (resize(pc, (h, w)) if s > 1 else pc).astype(np.float64)  # (h,w,k)
        k = p.shape[2]
        mean_p = box_filter(p, rs)
        Ip = box_filter((I[..., :, None] * p[..., None, :]).reshape(h, w, 3 * k), rs).reshape(
            h, w, 3, k
        )
        cov_Ip = Ip - mean_I[..., :, None] * mean_p[..., None, :]
        a = np.einsum("hwij,hwjk->hwik", inv, cov_Ip)  # (h,w,3,k)
        b = mean_p - np.einsum("hwi,hwik->hwk", mean_I, a)
        coef[:, :, :3, c0 : c0 + k] = box_filter(a.reshape(h, w, 3 * k), rs).reshape(h, w, 3, k)
        coef[:, :, 3, c0 : c0 + k] = box_filter(b, rs)
    if s > 1:
        yi0, yi1, wy = _split(sample_coords(H, h), h)
        xi0, xi1, wx = _split(sample_coords(W, w), w)
    else:
        yi0 = yi1 = np.arange(H, dtype=np.int64)
        xi0 = xi1 = np.arange(W, dtype=np.int64)
        wy, wx = np.zeros(H, np.float32), np.zeros(W, np.float32)
    out = np.empty((H, W, d), np.float32)
    run_parallel(_guided_apply, coef, np.ascontiguousarray(I_full), yi0, yi1, wy, xi0, xi1, wx, out)
    return out[..., 0] if squeeze else out


@njit(cache=True, parallel=True)
def _guided_apply(coef, I, yi0, yi1, wy, xi0, xi1, wx, out):  # pragma: no cover - numba
    # out[y, x, c] = sum_i up(mean_a)[y, x, i, c] * I[y, x, i] + up(mean_b)[y, x, c]
    one = np.float32(1.0)
    for y in prange(out.shape[0]):
        for x in range(out.shape[1]):
            a0, a1, b0, b1, w00, w01, w10, w11 = bilinear_corners(yi0, yi1, wy, xi0, xi1, wx, y, x,
                                                                  one)
            o = out[y, x]
            for c in range(o.shape[0]):
                o[c] = 0.0
            for i in range(4):
                g = I[y, x, i] if i < 3 else one
                c00 = coef[a0, b0, i]
                c01 = coef[a0, b1, i]
                c10 = coef[a1, b0, i]
                c11 = coef[a1, b1, i]
                for c in range(o.shape[0]):
                    o[c] += g * (w00 * c00[c] + w01 * c01[c] + w10 * c10[c] + w11 * c11[c])
