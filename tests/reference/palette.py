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
