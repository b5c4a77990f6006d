"""Empirical P-D curves of burst restorers on a set of images.

For each burst length ``n`` and evaluation image, one burst of ``max(ns)`` frames is synthesised
(seed
``(seed, image index)``) and its first ``n`` frames form the burst of length ``n`` (nested bursts,
so
burst lengths are compared on the same shakes and noise). Each restorer family yields one curve
per ``n``:

* ``classical``: :func:`~sempix.burst.classical.restore_classical` followed by unsharp masking
  with amount ``sharpen_max * alpha`` (alpha in [0, 1]);
* ``learned``: the interpolated networks ``(1 - alpha) theta_D + alpha theta_P``.

Distortion is the mean RMSE over the images; perception is NIQE pooled over the images (one
multivariate Gaussian fitted to the blocks of all outputs, since 128x128 crops hold one 96x96
block each) or the mean BRISQUE. AURs use bounds common to all curves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sempix.burst.classical import restore_classical, sharpen
from sempix.burst.metrics import brisque, niqe_pooled, rmse
from sempix.burst.pd import aur, common_bounds
from sempix.burst.synth import BurstParams, synthesize
from sempix.errors import InputError
from sempix.progress import ProgressFn, report


def perception_score(images: Sequence[np.ndarray], metric: str = "niqe") -> float:
    """Perception of a set of outputs: pooled NIQE or mean BRISQUE."""
    if metric == "niqe":
        return niqe_pooled(images)
    if metric == "brisque":
        return float(np.mean([brisque(im) for im in images]))
    raise InputError(f"unknown perception metric {metric!r}; use niqe or brisque")


def make_bursts(images: Sequence[np.ndarray], params: BurstParams, n_max: int, seed: int = 0):
    """One burst of ``n_max`` frames per image (nested bursts are its prefixes)."""
    return [synthesize(img, params, n=int(n_max), seed=[seed, k]) for k, img in enumerate(images)]


def evaluate_curves(
    images: Sequence[np.ndarray],
    params: BurstParams,
    ns: Sequence[int],
    alphas: Sequence[float],
    *,
    restorer: str = "classical",
    checkpoints=(None, None),
    nets=None,
    align: str = "phase",
    merge: str = "mean",
    upsample: str = "kernel",
    sharpen_max: float = 2.0,
    metric: str = "niqe",
    seed: int = 0,
    device: str = "cpu",
    bursts=None,
    progress: ProgressFn | None = None,
) -> dict:
    """P-D points per burst length and their AUR (common bounds).

    Returns
    -------
    dict with ``curves`` {n: (len(alphas), 2) array of (RMSE, perception)}, ``aur`` {n: float},
    ``bounds`` (d_min, d_max, p_min, p_max).
    """
    ns = [int(n) for n in ns]
    alphas = [float(a) for a in alphas]
    if not alphas or min(alphas) < 0 or max(alphas) > 1:
        raise InputError("alphas must be values in [0, 1]")
    bursts = bursts if bursts is not None else make_bursts(images, params, max(ns), seed)
    if restorer == "learned":
        from sempix.burst.learned import interpolated_network, load_network, restore_learned

        if nets is None:
            if None in checkpoints:
                raise InputError("the learned restorer needs its two checkpoints")
            nets = (load_network(checkpoints[0], device), load_network(checkpoints[1], device))
        family = [interpolated_network(nets[0], nets[1], a) for a in alphas]
    elif restorer != "classical":
        raise InputError(f"unknown restorer {restorer!r}; use classical or learned")
    curves: dict[int, np.ndarray] = {}
    total = len(ns) * len(bursts)
    done = 0
    for n in ns:
        outs: list[list[np.ndarray]] = [[] for _ in alphas]
        for b in bursts:
            frames = b.frames[:n]
            if restorer == "classical":
                base = restore_classical(
                    frames, b.params.scale, align=align, merge=merge, upsample=upsample
                )
                for j, a in enumerate(alphas):
                    outs[j].append(sharpen(base, sharpen_max * a) if a > 0 else base)
            else:
                for j, net in enumerate(family):
                    outs[j].append(restore_learned(net, frames))
            done += 1
            report(progress, done / total, f"n={n}")
        pts = []
        for j in range(len(alphas)):
            d = float(np.mean([rmse(o, b.hr) for o, b in zip(outs[j], bursts)]))
            pts.append((d, perception_score(outs[j], metric)))
        curves[n] = np.asarray(pts)
    b = common_bounds(curves)
    return {
        "curves": curves,
        "aur": {n: aur(c, b) for n, c in curves.items()},
        "bounds": (b.d_min, b.d_max, b.p_min, b.p_max),
    }
