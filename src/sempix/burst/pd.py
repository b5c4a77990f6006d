"""Perception-distortion (P-D) curves and the Area of the Unattainable Region (AUR).

A P-D curve is a set of points ``(D, P)`` (distortion, perception; lower is better for both) traced
by
one restorer family, e.g. by interpolating a distortion-trained and a perception-trained network.
The AUR summarises it in one number:

1. **envelope** (removal of inflection points): only Pareto-optimal points are kept (sorted by D, a
   point stays when its P is lower than that of every point with smaller D), so the curve is
   non-increasing; ``kind="convex"`` additionally keeps only the lower convex hull (the P-D function
   of Blau & Michaeli is convex);
2. **normalisation and clamping**: both axes are mapped to [0, 1] with the bounds
   ``[d_min, d_max] x [p_min, p_max]`` -- give the same bounds to every curve you compare (see
   :func:`common_bounds`) -- and the curve is clamped into that box;
3. **area**: the unattainable region is everything in the box below the curve: for ``D`` left of the
   first point nothing is attainable (``P = p_max``); between points the curve is linear; right of
   the
   last point it stays at the last ``P``. AUR is its area in the unit square (0 = ideal, 1 = nothing
   attainable); lower is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sempix.errors import InputError

ENVELOPES = ("monotone", "convex", "none")


@dataclass(frozen=True)
class Bounds:
    """Box of the normalised P-D plane."""

    d_min: float
    d_max: float
    p_min: float
    p_max: float


def _points(points) -> np.ndarray:
    a = np.asarray(points, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or a.shape[0] == 0:
        raise InputError(
            f"P-D points must be an (n, 2) array of (distortion, perception), got {a.shape}"
        )
    a = a[np.all(np.isfinite(a), axis=1)]
    if a.shape[0] == 0:
        raise InputError("P-D points hold no finite value")
    return a


def envelope(points, kind: str = "monotone") -> np.ndarray:
    """Points (m, 2) of the lower envelope, sorted by distortion.

    ``monotone``: Pareto front (non-increasing P). ``convex``: lower convex hull of that front.
    ``none``: all points sorted by D.
    """
    if kind not in ENVELOPES:
        raise InputError(f"unknown envelope {kind!r}; use one of {', '.join(ENVELOPES)}")
    a = _points(points)
    a = a[np.lexsort((a[:, 1], a[:, 0]))]
    if kind == "none":
        return a
    front = []
    best = np.inf
    for d, p in a:
        if p < best:
            front.append((d, p))
            best = p
    f = np.asarray(front)
    if kind == "convex" and len(f) > 2:
        hull: list[tuple[float, float]] = []
        for pt in f:
            while len(hull) >= 2:
                (x1, y1), (x2, y2) = hull[-2], hull[-1]
                if (x2 - x1) * (pt[1] - y1) - (y2 - y1) * (pt[0] - x1) <= 0:
                    hull.pop()
                else:
                    break
            hull.append((float(pt[0]), float(pt[1])))
        f = np.asarray(hull)
    return f


def common_bounds(curves: Sequence | Mapping, margin: float = 0.0) -> Bounds:
    """Bounds covering every point of several curves (optionally widened by ``margin`` x range)."""
    vals = list(curves.values()) if isinstance(curves, Mapping) else list(curves)
    a = np.concatenate([_points(c) for c in vals])
    lo, hi = a.min(axis=0), a.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    return Bounds(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def normalise(points, bounds: Bounds) -> np.ndarray:
    """Map points into the unit square of ``bounds`` and clamp them to it."""
    a = _points(points)
    dd = bounds.d_max - bounds.d_min
    dp = bounds.p_max - bounds.p_min
    if dd <= 0 or dp <= 0:
        raise InputError(f"degenerate P-D bounds {bounds}")
    out = np.empty_like(a)
    out[:, 0] = (a[:, 0] - bounds.d_min) / dd
    out[:, 1] = (a[:, 1] - bounds.p_min) / dp
    return np.clip(out, 0.0, 1.0)


def curve_function(env: np.ndarray):
    """P(D) on [0, 1] of a normalised envelope: 1 left of it, linear inside, flat right of it."""
    d, p = env[:, 0], env[:, 1]

    def f(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        y = np.interp(x, d, p, left=1.0, right=p[-1])
        return np.where(x < d[0], 1.0, y)

    return f


def aur(points, bounds: Bounds | None = None, *, kind: str = "monotone") -> float:
    """Area of the Unattainable Region of one P-D curve (normalised, in [0, 1]; lower is better).

    Parameters
    ----------
    points : (n, 2) array of (distortion, perception).
    bounds : normalisation box (default: the points' own range -- only meaningful for comparisons
        when every curve uses the same box).
    kind : envelope, ``monotone`` | ``convex`` | ``none``.
    """
    a = _points(points)
    b = bounds if bounds is not None else common_bounds([a])
    env = envelope(normalise(envelope(a, kind), b), kind)
    d, p = env[:, 0], env[:, 1]
    area = d[0] * 1.0  # left of the first point: nothing attainable
    if len(d) > 1:
        area += float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(d)))
    area += (1.0 - d[-1]) * p[-1]
    return float(area)


def plot_curves(
    curves: Mapping[str, np.ndarray],
    path=None,
    *,
    title: str = "",
    xlabel: str = "distortion (RMSE)",
    ylabel: str = "perception (NIQE)",
    envelope_kind: str = "monotone",
    ax=None,
):
    """Plot P-D curves (points + envelope); save to ``path`` (PNG, atomic) when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    cmap = plt.get_cmap("viridis")
    for i, (label, pts) in enumerate(curves.items()):
        c = cmap(i / max(1, len(curves) - 1))
        a = _points(pts)
        ax.plot(a[:, 0], a[:, 1], "o", ms=3, color=c, alpha=0.5)
        e = envelope(a, envelope_kind)
        ax.plot(e[:, 0], e[:, 1], "-", color=c, label=str(label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if own:
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path)
        return fig
    return ax


def plot_aur_vs_n(
    series: Mapping[str, tuple[Sequence[int], Sequence[float]]],
    path=None,
    *,
    title: str = "",
    ylabel: str = "AUR (lower is better)",
):
    """Plot AUR (or any score) against burst length, one line per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for label, (ns, vals) in series.items():
        ax.plot(list(ns), list(vals), "o-", label=str(label))
    ax.set_xlabel("burst length n")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path, *, force: bool = False) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    from sempix.image import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue(), force=force)
