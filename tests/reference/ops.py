"""Slow, obviously correct resampling and filtering references for :mod:`sempix.ops` and
:mod:`sempix.features.post` (tests only)."""

from __future__ import annotations

import numpy as np


def upsample_reference(lowres: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Slow, obviously correct bilinear sampling (for tests)."""
    a = np.asarray(lowres, dtype=np.float64)
    h, w = a.shape[:2]
    out = np.zeros((len(ys), len(xs)) + a.shape[2:])
    for i, y in enumerate(ys):
        y = min(max(float(y), 0.0), h - 1)
        y0 = min(int(np.floor(y)), h - 1)
        y1 = min(y0 + 1, h - 1)
        fy = y - y0
        for j, x in enumerate(xs):
            x = min(max(float(x), 0.0), w - 1)
            x0 = min(int(np.floor(x)), w - 1)
            x1 = min(x0 + 1, w - 1)
            fx = x - x0
            out[i, j] = ((1 - fy) * (1 - fx) * a[y0, x0] + (1 - fy) * fx * a[y0, x1]
                         + fy * (1 - fx) * a[y1, x0] + fy * fx * a[y1, x1])
    return out.astype(np.float32)


def guided_filter_reference(
    guide: np.ndarray, src: np.ndarray, radius: int, eps: float
) -> np.ndarray:
    """Slow per-window guided filter (loops over windows; for tests on tiny images)."""
    I = np.asarray(guide, dtype=np.float64)
    p = np.asarray(src, dtype=np.float64)
    h, w = p.shape[:2]
    A = np.zeros((h, w, 3))
    B = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys = slice(max(0, y - radius), min(h, y + radius + 1))
            xs = slice(max(0, x - radius), min(w, x + radius + 1))
            Iw = I[ys, xs].reshape(-1, 3)
            pw = p[ys, xs].reshape(-1)
            mu = Iw.mean(0)
            cov = (Iw - mu).T @ (Iw - mu) / len(Iw)
            cip = ((Iw - mu) * (pw - pw.mean())[:, None]).mean(0)
            a = np.linalg.solve(cov + eps * np.eye(3), cip)
            A[y, x] = a
            B[y, x] = pw.mean() - a @ mu
    q = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys = slice(max(0, y - radius), min(h, y + radius + 1))
            xs = slice(max(0, x - radius), min(w, x + radius + 1))
            q[y, x] = A[ys, xs].reshape(-1, 3).mean(0) @ I[y, x] + B[ys, xs].mean()
    return q


def argmax_upsampled_reference(logits: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Exact, memory-hungry reference: argmax of the fully upsampled logits (for tests)."""
    return np.argmax(upsample_reference(logits, ys, xs), axis=2).astype(np.int32)
