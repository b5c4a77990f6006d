"""Deep seam carving and grid warping in VGG feature space (the deep multi-operator of Arar et al.).

Plan (all widths; heights are handled by transposing the image):

1. importance of layer l: ``E_l = ||F_l||_2`` over channels (Eq. 1), an (h_l, w_l) map;
2. carve the deepest layer first: at least one seam, more only while the seam's mean importance is
   within the ``percentile`` (20th) of ``E_L`` and the target width is not reached; the removed
   ratio is
   ``r = n_L / w_L``;
3. every shallower layer m (and the image itself, as the last level) removes ``round(r * w_m)``
  seams
   from ``E_m`` scaled by ``alpha`` (0.5) inside the receptive fields, in m's grid, of the positions
   removed at the next deeper level (Eq. 2), so that seams stay consistent across layers;
4. the remaining width is done by grid warping: ``grid`` (16) equal column cells of the carved
  maps get
   new widths from their aggregated importance (each level's carved importance, upsampled to the
   carved
   image width, normalised by its maximum and averaged; Eq. 3 in our form, see :func:`cell_scales`),
   and
   every level is resampled with the same normalised piecewise-linear column mapping.

The plan stores, per level, the removed-positions mask and the mapping, and :meth:`DeepPlan.apply`
retargets any array or tensor of that level (features for the reconstruction, the image for the
``multiop`` method).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
from numba import njit

from sempix.ops.resample import resize
from sempix.retarget.seams import carve_mask
from sempix.retarget.vgg import relative_receptive_field

IMAGE = "image"


@njit(cache=True)
def _rf_mask_nb(
    removed: np.ndarray,
    jump: int,
    start: int,
    size: int,
    h: int,
    w: int,
    cjump: int,
    cstart: int,
    csize: int,
) -> np.ndarray:
    out = np.zeros((h, w), dtype=np.bool_)
    hd, wd = removed.shape
    for y in range(hd):
        y0 = max(0, y * jump + start)
        y1 = min(h - 1, y * jump + start + size - 1)
        for x in range(wd):
            if removed[y, x]:
                x0 = max(0, x * cjump + cstart)
                x1 = min(w - 1, x * cjump + cstart + csize - 1)
                for yy in range(y0, y1 + 1):
                    for xx in range(x0, x1 + 1):
                        out[yy, xx] = True
    return out


def receptive_field_mask(
    removed_deep: np.ndarray, deep: str, shallow: str | None, shape: tuple[int, int]
) -> np.ndarray:
    """Positions of the ``shallow`` level (None = image) inside the receptive fields of
    ``removed_deep``.

    Parameters
    ----------
    removed_deep : (h_d, w_d) bool, positions removed at layer ``deep``.
    shape : (h, w) of the shallow level.

    Returns
    -------
    (h, w) bool.
    """
    jump, start, size = relative_receptive_field(shallow, deep)
    return _rf_mask_nb(
        np.ascontiguousarray(removed_deep), jump, start, size, shape[0], shape[1], jump, start, size
    )


def importance(feat: torch.Tensor | np.ndarray) -> np.ndarray:
    """Eq. 1: L2 norm over channels. ``feat`` (1, C, h, w) or (C, h, w) -> (h, w) float32."""
    if isinstance(feat, torch.Tensor):
        f = feat.detach()
        if f.ndim == 4:
            f = f[0]
        return f.float().norm(dim=0).cpu().numpy().astype(np.float32)
    f = np.asarray(feat, dtype=np.float32)
    if f.ndim == 4:
        f = f[0]
    return np.sqrt((f * f).sum(axis=0)).astype(np.float32)


def _bisect_increasing(fn, target: float) -> float | None:
    """Smallest ``x >= 0`` (to bisection precision) with ``fn(x) >= target`` for a non-decreasing
    ``fn``; None when no ``x <= 1e12`` reaches it."""
    lo, hi = 0.0, 1.0
    while fn(hi) < target:
        hi *= 2
        if hi > 1e12:
            return None
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if fn(mid) < target:
            lo = mid
        else:
            hi = mid
    return hi


def cell_scales(
    imp: np.ndarray, factor: float, *, s_min: float = 0.2, s_max: float = 4.0
) -> np.ndarray:
    """Scale factors of the warping cells (our form of Eq. 3).

    Parameters
    ----------
    imp : (G,) cell importance, >= 0 (normalised here by its maximum).
    factor : required mean scale (target width / carved width).

    Returns
    -------
    (G,) float64 scales whose mean is ``factor`` (to rounding): for a reduction
    ``s_i = clip(a * imp_i, s_lo, 1)`` (important cells keep their width, unimportant ones shrink),
    for an
    enlargement ``s_i = clip(1 + b * (1 - imp_i), 1, s_max)`` (unimportant cells stretch); ``a`` /
    ``b``
    found by bisection. Uniform scaling when importance is flat.
    """
    imp = np.asarray(imp, dtype=np.float64)
    g = imp.size
    if g == 0:
        return imp
    m = imp.max()
    if not np.isfinite(m) or m <= 0 or abs(factor - 1.0) < 1e-12 or np.ptp(imp) < 1e-9 * m:
        return np.full(g, factor)
    imp = imp / m
    if factor < 1:
        lo_clip = min(s_min, factor)

        def mean_s(a: float) -> float:
            return float(np.clip(a * imp, lo_clip, 1.0).mean())

        hi = _bisect_increasing(mean_s, factor)
        if hi is None:
            return np.full(g, factor)
        s = np.clip(hi * imp, lo_clip, 1.0)
    else:
        hi_clip = max(s_max, factor)

        def mean_s(b: float) -> float:
            return float(np.clip(1 + b * (1 - imp), 1.0, hi_clip).mean())

        hi = _bisect_increasing(mean_s, factor)
        if hi is None:
            return np.full(g, factor)
        s = np.clip(1 + hi * (1 - imp), 1.0, hi_clip)
    return s * (factor / s.mean())


def warp_edges(cell_imp: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cell edges: source (equal cells) and destination (scaled), both (G+1,) from 0 to
    1."""
    g = len(cell_imp)
    s = cell_scales(cell_imp, factor)
    src = np.linspace(0.0, 1.0, g + 1)
    dst = np.concatenate([[0.0], np.cumsum(s)])
    dst /= dst[-1]
    return src, dst


def warp_cell_widths(width: int, target: int, cell_imp: np.ndarray) -> np.ndarray:
    """Integer output widths of the cells of a ``width``-wide map warped to ``target`` (sum ==
    target)."""
    _, dst = warp_edges(cell_imp, target / width)
    edges = np.rint(dst * target).astype(int)
    return np.diff(edges)


def column_sources(
    w_in: int, w_out: int, src_edges: np.ndarray, dst_edges: np.ndarray
) -> np.ndarray:
    """Source column coordinate (pixel-centre convention) of
    every output column, (w_out,) float64."""
    u = (np.arange(w_out) + 0.5) / w_out
    v = np.interp(u, dst_edges, src_edges)
    return np.clip(v * w_in - 0.5, 0.0, w_in - 1.0)


def _cubic_weights(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution weights of the taps at offsets -1, 0, 1, 2 for fractions ``t`` -> (4,
    n)."""
    d = np.stack([1 + t, t, 1 - t, 2 - t])
    ad = np.abs(d)
    w = np.where(
        ad <= 1,
        (a + 2) * ad**3 - (a + 3) * ad**2 + 1,
        np.where(ad < 2, a * ad**3 - 5 * a * ad**2 + 8 * a * ad - 4 * a, 0.0),
    )
    return w.astype(np.float32)


def resample_columns(arr, xs: np.ndarray, *, kind: str = "cubic"):
    """Interpolate columns at positions ``xs``: ``arr`` (..., W) numpy or torch, ``xs`` (W',) ->
    (..., W').

    ``kind``: ``"cubic"`` (Keys, a = -0.5, sharp; the default), ``"linear"`` or ``"nearest"`` (whole
    columns are dropped or repeated: no smoothing). Borders are clamped.
    """
    w = int(arr.shape[-1])
    x0 = np.floor(xs).astype(np.int64)
    t = (xs - x0).astype(np.float64)
    if kind == "nearest":
        taps = [(np.clip(np.rint(xs).astype(np.int64), 0, w - 1), np.ones_like(t))]
    elif kind == "linear":
        taps = [(x0, 1 - t), (np.minimum(x0 + 1, w - 1), t)]
    else:
        wts = _cubic_weights(t)
        taps = [(np.clip(x0 + k, 0, w - 1), wts[k + 1]) for k in (-1, 0, 1, 2)]
    out = None
    for idx, wt in taps:
        wt = np.asarray(wt, dtype=np.float32)
        if isinstance(arr, torch.Tensor):
            term = arr.index_select(-1, torch.from_numpy(idx).to(arr.device)) * torch.from_numpy(
                wt
            ).to(arr.device, arr.dtype)
        else:
            term = arr[..., idx] * wt
        out = term if out is None else out + term
    return out


def remove_positions(arr, removed: np.ndarray):
    """Remove the positions of ``removed`` (h, w) bool (same count per row) from ``arr`` (..., h,
    w)."""
    h, w = removed.shape
    k = int(removed[0].sum())
    if k == 0:
        return arr
    keep_idx = np.nonzero(~removed)[1].reshape(h, w - k)
    if isinstance(arr, torch.Tensor):
        idx = torch.from_numpy(keep_idx).to(arr.device)
        idx = idx.expand(*arr.shape[:-2], h, w - k)
        return torch.gather(arr, -1, idx)
    idx = np.broadcast_to(keep_idx, arr.shape[:-2] + (h, w - k))
    return np.take_along_axis(arr, idx, axis=-1)


@dataclass
class Level:
    """One level of the plan (a VGG layer or the image)."""

    name: str
    shape: tuple[int, int]
    target_width: int
    importance: np.ndarray  # (h, w) Eq. 1
    scaled: np.ndarray  # (h, w) after Eq. 2
    removed: np.ndarray  # (h, w) bool
    n_removed: int

    @property
    def carved_width(self) -> int:
        return self.shape[1] - self.n_removed


@dataclass
class DeepPlan:
    """Result of :func:`plan`: per-level seams and the shared warping."""

    levels: dict[str, Level]
    order: list[str]  # deepest first, image last
    ratio: float
    src_edges: np.ndarray
    dst_edges: np.ndarray
    cell_importance: np.ndarray
    meta: dict = field(default_factory=dict)

    def apply(self, name: str, arr, *, interp: str = "cubic"):
        """Retarget an array/tensor (..., h, w) of level ``name``: remove its seams, then warp.

        ``interp``: column interpolation of the warp (``cubic``, ``linear``, ``nearest``).
        """
        lv = self.levels[name]
        if tuple(arr.shape[-2:]) != tuple(lv.shape):
            raise ValueError(
                f"{name}: expected spatial shape {lv.shape}, got {tuple(arr.shape[-2:])}"
            )
        carved = remove_positions(arr, lv.removed)
        xs = column_sources(lv.carved_width, lv.target_width, self.src_edges, self.dst_edges)
        return resample_columns(carved, xs, kind=interp)

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """Retarget an (H, W, C) image with the image level's seams and the warp -> (H, W', C)."""
        out = self.apply(IMAGE, np.moveaxis(np.asarray(image, dtype=np.float32), -1, 0))
        return np.ascontiguousarray(np.clip(np.moveaxis(out, 0, -1), 0, 1), dtype=np.float32)


def plan(
    features: dict[str, torch.Tensor | np.ndarray],
    image_shape: tuple[int, int],
    target_width: int,
    target_widths: dict[str, int],
    *,
    alpha: float = 0.5,
    percentile: float = 20.0,
    grid: int = 16,
    carve: bool = True,
    protect: np.ndarray | None = None,
    protect_weight: float = 1.0,
) -> DeepPlan:
    """Plan the deep multi-operator for one width change.

    Parameters
    ----------
    features : {layer: (1, C, h, w)} activations of the input, any VGG layers (see
        ``vgg.LAYER_NAMES``).
    image_shape : (H, W) of the input image.
    target_width : W' of the output image.
    target_widths : {layer: w'_l}, the width each layer has for an (H, W') input.
    alpha : importance scale inside the receptive fields of deeper seams (Eq. 2).
    percentile : deepest-layer seams continue while their mean importance <= this percentile of E_L.
    grid : number of column cells of the warp.
    carve : False = warping only (used for enlargement).
    protect : optional (H, W) map in [0, 1] of content to protect (e.g. ADE20K person pixels). Every
        level's importance becomes ``E_l + protect_weight * P_l * max(E_l)``, ``P_l`` = the map
        area-averaged to the level's grid, before seams, the percentile rule and the warp's cell
        importance are computed. None = the paper's importance only.
    protect_weight : weight of the protection term.

    Returns
    -------
    DeepPlan
    """
    from sempix.retarget.vgg import LAYER_NAMES

    names = sorted(features, key=LAYER_NAMES.index, reverse=True)  # deepest first
    w_img = image_shape[1]
    levels: dict[str, Level] = {}
    reducing = target_width < w_img
    ratio = 0.0
    prev: str | None = None
    order = names + [IMAGE]
    for i, name in enumerate(order):
        if name == IMAGE:
            # the image level uses the shallowest layer's importance, resized to the image if needed
            base = levels[names[-1]].importance if names else np.zeros(image_shape, np.float32)
            imp = resize(base, image_shape)
            tw = target_width
        else:
            imp = importance(features[name])
            tw = int(target_widths[name])
            if protect is not None and protect_weight > 0:
                imp = protected_importance(imp, protect, protect_weight)
        h, w = imp.shape
        scaled = imp.copy()
        if prev is not None and levels[prev].n_removed > 0:
            rf = receptive_field_mask(
                levels[prev].removed, prev, None if name == IMAGE else name, (h, w)
            )
            scaled[rf] *= alpha
        n_max = max(0, w - tw) if (carve and reducing) else 0
        if i == 0:
            if n_max > 0:
                thr = float(np.percentile(imp, percentile))
                removed, n = carve_mask(scaled, n_max, thresh=thr, min_n=1)
            else:
                removed, n = np.zeros((h, w), bool), 0
            ratio = n / w
        else:
            n = min(n_max, round(ratio * w))
            removed, n = carve_mask(scaled, n) if n > 0 else (np.zeros((h, w), bool), 0)
        levels[name] = Level(name, (h, w), tw, imp, scaled, removed, n)
        prev = name
    # aggregated importance on the carved image grid
    img_lv = levels[IMAGE]
    hc, wc = img_lv.shape[0], img_lv.carved_width
    agg = np.zeros((hc, wc), np.float64)
    for name in order:
        lv = levels[name]
        carved = remove_positions(lv.importance, lv.removed)
        up = resize(carved, (hc, wc))
        m = up.max()
        if m > 0:
            agg += up / m
    agg /= len(order)
    cols = agg.mean(axis=0)
    g = int(max(1, min(grid, wc)))
    cell_edges = np.rint(np.linspace(0, wc, g + 1)).astype(int)
    cell_imp = np.array([cols[a : max(a + 1, b)].mean() for a, b in itertools.pairwise(cell_edges)])
    src, dst = warp_edges(cell_imp, target_width / wc)
    return DeepPlan(
        levels,
        order,
        ratio,
        src,
        dst,
        cell_imp,
        meta={
            "alpha": alpha,
            "percentile": percentile,
            "grid": g,
            "aggregated": agg,
            "protect": None
            if protect is None or protect_weight <= 0
            else np.asarray(protect, dtype=np.float32),
        },
    )


def protected_importance(imp: np.ndarray, protect: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """``imp + weight * P * max(imp)`` with ``P`` = ``protect`` (H, W) in [0, 1] area-averaged to
    ``imp``'s grid.

    Parameters
    ----------
    imp : (h, w) importance of one level.
    protect : (H, W) protection map at image resolution (any size; resampled).

    Returns
    -------
    (h, w) float32.
    """
    p = np.asarray(protect, dtype=np.float32)
    if p.shape != imp.shape:
        t = torch.from_numpy(np.ascontiguousarray(p))[None, None]
        mode = "area" if p.shape[0] >= imp.shape[0] and p.shape[1] >= imp.shape[1] else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        p = torch.nn.functional.interpolate(t, size=tuple(imp.shape), mode=mode, **kw)[0, 0].numpy()
    m = float(imp.max()) if imp.size else 0.0
    return (imp + float(weight) * np.clip(p, 0, 1) * m).astype(np.float32)
