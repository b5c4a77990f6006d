"""Numba kernel of palette extraction (:func:`sempix.palette.extract.ab_histogram`'s sums; the
``np.bincount`` version in ``tests/reference/palette.py`` is its reference)."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def _bin_sums(inverse, idx, w, lab, out) -> None:
    """Per bin: total weight and weighted sums of L, a, b, added in pixel order.

    inverse : (n,) int64 row of ``lab`` / ``idx`` of each pixel (its distinct colour);
    idx : (m,) int64 bin of each row; w : (n,) float64 pixel weights, or (0,) for weight 1;
    lab : (m, 3) float32; out : (bins, 4) float64 zeros -> [weight, sum w L, sum w a, sum w b]
    (the same sums as ``np.bincount(bin, weights=w * lab[:, j].astype(float64))`` per pixel).
    """
    unit = w.shape[0] == 0
    for p in range(inverse.shape[0]):
        r = inverse[p]
        i = idx[r]
        wp = 1.0 if unit else w[p]
        out[i, 0] += wp
        out[i, 1] += wp * float(lab[r, 0])
        out[i, 2] += wp * float(lab[r, 1])
        out[i, 3] += wp * float(lab[r, 2])
