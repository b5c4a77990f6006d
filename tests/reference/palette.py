"""Slow, obviously correct references for :mod:`sempix.palette` kernels (tests only)."""

from __future__ import annotations

import numpy as np

from sempix.palette.transfer import EPS


def idw_ab_ref(
    ab: np.ndarray,
    src_ab: np.ndarray,
    tgt_ab: np.ndarray,
    eps: float = EPS,
    chroma_guard: bool = False,
) -> np.ndarray:
    """Slow numpy reference of the IDW mapping in ab. ``ab`` (n, 2), ``src_ab``/``tgt_ab`` (k, 2) ->
    (n, 2)."""
    ab = np.asarray(ab, dtype=np.float64)
    s = np.asarray(src_ab, dtype=np.float64)
    t = np.asarray(tgt_ab, dtype=np.float64)
    d2 = ((ab[:, None, :] - s[None]) ** 2).sum(-1)
    w = 1.0 / (d2 + eps)
    w /= w.sum(1, keepdims=True)
    if chroma_guard:
        cs = np.hypot(s[:, 0], s[:, 1])
        cx = np.hypot(ab[:, 0], ab[:, 1])
        g = np.where(
            cs[None] > 1e-6, np.minimum(1.0, cx[:, None] / np.maximum(cs[None], 1e-6)), 1.0
        )
        w = w * g
    return ab + w @ (t - s)


def hue_hist_ref(hue: np.ndarray, sat: np.ndarray, bins: int = 720) -> np.ndarray:
    """Saturation-weighted hue histogram with ``np.bincount`` (the numpy version that
    ``_hue_histogram`` replaced; pass only chromatic pixels)."""
    b = np.minimum((hue * (bins / 360.0)).astype(np.int64), bins - 1)
    return np.bincount(b.ravel(), weights=sat.ravel().astype(np.float64), minlength=bins)


def template_distance_ref(
    hue: np.ndarray, chroma: np.ndarray, sectors: list[tuple[float, float]], alpha: float
) -> np.ndarray:
    """Distance (float32 degrees) of float32 hues to a rotated template, 0 inside and where
    ``chroma`` is False: the numpy float32 version that ``_template_distance`` replaced."""
    d = None
    for off, w in sectors:
        x = hue - np.float32((alpha + off) % 360.0 - 180.0)
        np.mod(x, np.float32(360.0), out=x)
        x -= np.float32(180.0)
        np.abs(x, out=x)
        x -= np.float32(w / 2.0)
        d = x if d is None else np.minimum(d, x, out=d)
    np.maximum(d, np.float32(0.0), out=d)
    d[~chroma] = 0.0
    return d


def ab_histogram_ref(lab: np.ndarray, weights: np.ndarray | None = None, bin_size: float = 2.0):
    """``ab_histogram`` with ``np.bincount`` per pixel (the numpy version that ``_bin_sums``
    replaced): mean (a, b), weight and mean L of each non-empty bin."""
    nb = int(np.ceil(256.0 / bin_size))
    ia = np.clip(((lab[:, 1] + 128.0) / bin_size).astype(np.int64), 0, nb - 1)
    ib = np.clip(((lab[:, 2] + 128.0) / bin_size).astype(np.int64), 0, nb - 1)
    idx = ia * nb + ib
    w = np.ones(len(lab)) if weights is None else np.asarray(weights, dtype=np.float64)
    cnt = np.bincount(idx, weights=w, minlength=nb * nb)
    nz = np.flatnonzero(cnt > 0)
    c = cnt[nz]
    sums = [
        np.bincount(idx, weights=w * lab[:, j].astype(np.float64), minlength=nb * nb)[nz] / c
        for j in range(3)
    ]
    return np.stack([sums[1], sums[2]], axis=1), c, sums[0]
