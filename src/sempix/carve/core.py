"""Semantic seam carving: content-aware resizing with a combined RGB + semantic energy.

The energy of Avidan & Shamir (2007) is replaced by the combined distance of the sempix paper::

    d(p, q) = (1 - lam) * |I(p) - I(q)|_1 / s_rgb + lam * |S(p) - S(q)|_1 / s_sem

where ``s_rgb`` and ``s_sem`` are the mean gradient energies (:func:`sempix.distance.energy_rgb` /
``energy_semantic``) of the *input* image and feature map, so that ``lam`` is the semantic share of
the energy for every image and backend (``energy="backward"`` then uses exactly
:func:`sempix.distance.energy_combined`). ``energy="forward"`` (default) is Rubinstein et al.'s
forward energy: the cost of a seam is the colour distance between the pixels that its removal makes
neighbours, plus the semantic gradient energy ``lam * e_semantic`` of the removed pixels, taken
from the input and carried with the pixels (``semantic_energy="input"``, default) or recomputed on
the
carved feature map (``"gradient"``), or (``"forward"``) the feature-space distance of the new
neighbours. The normalising constants are fixed
for the whole run, so the energies of the carved image are exact and only the costs next to each
removed seam are recomputed (see :mod:`sempix.carve._kernels`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np

from sempix.carve import _kernels as K
from sempix.errors import InputError
from sempix.features.protect import protect_mask
from sempix.ops.resample import resize
from sempix.ops.validate import parse_size
from sempix.progress import ProgressFn, report

#: Largest enlargement factor per dimension (target <= MAX_ENLARGE x input size).
MAX_ENLARGE = 3.0
#: One insertion step adds at most this fraction of the current size (Avidan & Shamir's steps).
INSERT_STEP = 0.5
#: Feature maps with more channels are reduced to this many dimensions by PCA before carving.
FEATURE_DIM = 16

ENERGIES = ("forward", "backward")
SEMANTIC_ENERGIES = ("input", "gradient", "forward")
ORDERS = ("width-first", "height-first", "optimal")
#: carried energy of a protected pixel (``protect``), in units of the mean-normalised energy (an
#: average pixel = 1): far above any seam's own cost, far below ``keep``'s penalty (keep wins).
PROTECT_ENERGY = np.float32(1e5)

# codes of CarveResult.seam_map
KEPT, REMOVED_V, REMOVED_H, INSERTED, DROPPED = 0, 1, 2, 3, 4
SEAM_COLOURS = {
    REMOVED_V: (1.0, 0.1, 0.1),
    REMOVED_H: (0.1, 0.4, 1.0),
    INSERTED: (0.1, 0.9, 0.2),
    DROPPED: (1.0, 0.1, 1.0),
}


@dataclass
class CarveResult:
    """Result of :func:`carve`.

    Attributes
    ----------
    image : (H', W', C) float32, the resized image (same channels as the input).
    also : list of arrays carved with the same seams, (H', W'[, C]) each, input dtypes.
    energy : (H, W) float32, the combined gradient energy of the input (mean-normalised, the map the
        first step starts from; ``lam`` share semantic).
    seam_map : (H, W) uint8, what happened to every input pixel: 0 kept, 1 removed by a vertical
        seam,
        2 removed by a horizontal seam, 3 duplicated by an inserted seam, 4 removed with the drop
        mask.
    features : (H', W', d) float32 carved (reduced) feature map, or None.
    keep : (H', W') bool carved keep mask or None.
    info : dict with sizes, seam counts, feature reduction and timings.
    """

    image: np.ndarray
    also: list
    energy: np.ndarray
    seam_map: np.ndarray
    carved_features: np.ndarray | None = None
    keep: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    feature_origin: tuple | None = field(default=None, repr=False)

    @property
    def features(self) -> np.ndarray | None:
        """(H', W', d) carved (reduced) feature map, or None.

        In the default ``semantic_energy="input"`` mode the features are not shifted seam by seam;
        they are gathered from the input through the carved map of input coordinates on first
        access.
        """
        if self.carved_features is None and self.feature_origin is not None:
            src, origin = self.feature_origin
            self.carved_features = np.ascontiguousarray(src[origin[..., 0], origin[..., 1]])
            self.feature_origin = None
        return self.carved_features

    def seams_vis(self, original: np.ndarray, strength: float = 0.85) -> np.ndarray:
        """Draw the seams over the input picture.

        Parameters
        ----------
        original : (H, W, C) or (H, W) float array in [0, 1], the image given to :func:`carve`.
        strength : opacity of the seam colours.

        Returns
        -------
        (H, W, 3) float32: removed vertical seams red, horizontal seams blue, inserted seams green,
        pixels removed with the drop mask magenta.
        """
        img = np.asarray(original, dtype=np.float32)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        img = img[:, :, :3] if img.shape[2] >= 3 else np.repeat(img[:, :, :1], 3, axis=2)
        if img.shape[:2] != self.seam_map.shape:
            raise InputError(
                f"seams_vis needs the original {self.seam_map.shape[1]}x{self.seam_map.shape[0]} "
                "image, "
                f"got {img.shape[1]}x{img.shape[0]}"
            )
        out = img.copy()
        for code, colour in SEAM_COLOURS.items():
            m = self.seam_map == code
            if m.any():
                out[m] = (1 - strength) * out[m] + strength * np.asarray(colour, np.float32)
        return out


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def reduce_features(
    features: np.ndarray, dim: int = FEATURE_DIM, *, seed: int = 0, max_samples: int = 50_000
) -> np.ndarray:
    """Project an (H, W, D) feature map on its ``dim`` principal components (PCA, L2-preserving).

    The basis is estimated from at most ``max_samples`` seeded random pixels; output is centred,
    not rescaled (distances keep their scale). Returns the input unchanged when ``D <= dim``.

    Returns
    -------
    (H, W, min(D, dim)) float32.
    """
    F = np.asarray(features, dtype=np.float32)
    H, W, D = F.shape
    if D <= dim:
        return np.ascontiguousarray(F)
    X = F.reshape(-1, D)
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    sample = X[rng.choice(n, size=min(n, max_samples), replace=False)].astype(np.float64)
    mean = sample.mean(axis=0)
    sample -= mean
    cov = sample.T @ sample / max(1, sample.shape[0] - 1)
    _vals, vecs = np.linalg.eigh(cov)
    basis = np.ascontiguousarray(vecs[:, ::-1][:, :dim], dtype=np.float32)
    out = np.empty((X.shape[0], dim), np.float32)
    # numba instead of BLAS: a tall-skinny product is memory-bound, and multi-threaded BLAS on a
    # busy machine was 2-8x slower than one thread
    K.project(np.ascontiguousarray(X), basis, mean.astype(np.float32), out)
    return out.reshape(H, W, dim)


def _mask(m, shape, name):
    if m is None:
        return None
    a = np.asarray(m)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.shape != tuple(shape):
        raise InputError(
            f"the {name} mask is {a.shape[1] if a.ndim > 1 else '?'}x{a.shape[0]} "
            f"but the image is {shape[1]}x{shape[0]}"
        )
    return a > 0.5 if a.dtype != np.bool_ else a.copy()


def _gather(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x (N, M[, C]) -> (N, m[, C]) with x[i, idx[i, j]] (numba for numeric dtypes)."""
    if x.dtype.kind not in "biuf":
        if x.ndim == 2:
            return np.take_along_axis(x, idx, axis=1)
        return np.take_along_axis(x, idx[:, :, None], axis=1)
    out = np.empty(idx.shape + x.shape[2:], x.dtype)
    # C-contiguous input: one compiled specialisation per dtype (height passes see transposed
    # views, which would each compile an 'A'/'F'-layout variant; the copy costs about a gather)
    x = np.ascontiguousarray(x)
    if x.ndim == 2:
        K.gather2(x, idx, out)
    else:
        K.gather3(x, idx, out)
    return out


def _gather_insert(x: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    a = _gather(x, A)
    if np.issubdtype(x.dtype, np.floating):
        b = _gather(x, B)
        return ((a + b) * x.dtype.type(0.5)).astype(x.dtype, copy=False)
    return a  # integers / bools: nearest (left) copy


def _energy_channels(img: np.ndarray) -> np.ndarray:
    if img.shape[2] == 3:
        return img
    if img.shape[2] > 3:
        return np.ascontiguousarray(img[:, :, :3])
    return np.ascontiguousarray(img[:, :, :1])


def _buffers(N: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """Index map (N, W) int32 (identity rows) and zeroed cost planes (4, N, W) float32.

    No padding: an earlier version padded the rows so that the planes would not sit a multiple of
    4 KiB apart (against cache-set aliasing), but its loop never ended when N % 64 == 0 and
    W % 16 == 0 (768x512, 1920x1080 ...), and a carve of 500x740, 600x1000 and 1000x1500 images
    was not measurably faster padded than with 4 KiB-aligned planes (issue 12).
    """
    idx = np.empty((N, W), np.int32)
    idx[:, :] = np.arange(W, dtype=np.int32)[None, :]
    C = np.zeros((4, N, W), np.float32)
    return idx, C


class _State:
    """Arrays carried through the passes, all (H, W, ...) aligned."""

    def __init__(self, image, feat, also, keep, drop, bias=None):
        H, W = image.shape[:2]
        self.bias = bias
        self.image = image
        self.feat = feat
        self.also = list(also)
        self.keep = keep
        self.drop = drop
        oy, ox = np.meshgrid(
            np.arange(H, dtype=np.int32), np.arange(W, dtype=np.int32), indexing="ij"
        )
        self.origin = np.stack([oy, ox], axis=2)

    @property
    def shape(self):
        return self.image.shape[:2]

    def arrays(self):
        return [self.image, self.feat, self.keep, self.drop, self.origin, self.bias, *self.also]

    def set_arrays(self, arrs):
        self.image, self.feat, self.keep, self.drop, self.origin, self.bias = arrs[:6]
        self.also = list(arrs[6:])


def _T(x, axis):
    """View for a pass: axis 1 (width) -> x; axis 0 (height) -> rows/columns swapped."""
    if x is None or axis == 1:
        return x
    return x.swapaxes(0, 1)


class _Carver:
    def __init__(self, wr, ws, mode, progress, total_seams, keep_strict):
        self.wr, self.ws, self.mode = float(wr), float(ws), int(mode)
        self.progress = progress
        self.total = max(1, total_seams)
        self.done = 0
        self.keep_strict = keep_strict
        self.stats = {"removed": 0, "inserted": 0, "dropped": 0, "keep_pixels_cut": 0}

    def _tick(self, n, msg):
        self.done += n
        report(self.progress, self.done / self.total, msg)

    def find_seams(self, st: _State, axis: int, n: int, *, drop_mode=False, msg="carving"):
        """Remove up to n seams in a working state; return (idx, seams (k, N), stats (k, 2))."""
        img = np.ascontiguousarray(_T(_energy_channels(st.image), axis))
        feat = st.feat
        if feat is None or self.ws == 0.0:
            feat = np.zeros((img.shape[0], img.shape[1], 0), np.float32)
        else:
            feat = np.ascontiguousarray(_T(feat, axis))
        N, Wc = img.shape[:2]
        idx, C = _buffers(N, Wc)
        drop_left = 0
        has_e = st.keep is not None or st.drop is not None or st.bias is not None
        if st.bias is not None:
            C[3, :, :Wc] = _T(st.bias, axis)
        if st.keep is not None:
            C[3, :, :Wc][_T(st.keep, axis)] = K.KEEP_PENALTY
        if st.drop is not None:
            d = _T(st.drop, axis)
            C[3, :, :Wc][d] = K.DROP_BONUS
            drop_left = int(d.sum())
        K.init_costs_identity(img, feat, C, self.wr, self.ws, self.mode)
        seams = np.empty((n, N), np.int32)
        stats = np.zeros((n, 2), np.int64)
        M0 = np.empty(Wc, np.float64)
        M1 = np.empty(Wc, np.float64)
        dirs = np.zeros((N, Wc), np.int8)
        seam = np.empty(N, np.int64)
        w = Wc
        k = 0
        chunk = max(1, min(64, n // 40 + 1))
        while k < n:
            m = min(chunk, n - k)
            w, done, drop_left = K.carve_chunk(
                img,
                feat,
                idx,
                C,
                w,
                m,
                self.wr,
                self.ws,
                self.mode,
                has_e,
                seams,
                k,
                stats,
                M0,
                M1,
                dirs,
                seam,
                drop_mode,
                drop_left,
            )
            k += done
            self._tick(done, msg)
            if drop_mode and (drop_left <= 0 or done < m):
                break
        return idx[:, :w].copy(), seams[:k], stats[:k]

    def remove(self, st: _State, axis: int, n: int, seam_map: np.ndarray, *, drop_mode=False):
        if n <= 0 and not drop_mode:
            return
        size = st.shape[axis]
        if drop_mode:
            n = size - 1
        name = "width" if axis == 1 else "height"
        idx, seams, stats = self.find_seams(
            st,
            axis,
            n,
            drop_mode=drop_mode,
            msg="removing the drop mask" if drop_mode else f"reducing {name}",
        )
        cut = int(stats[:, 0].sum())
        if cut and self.keep_strict and not drop_mode:
            first = int(np.argmax(stats[:, 0] > 0))
            raise InputError(
                f"the keep mask spans the whole {'height' if axis == 1 else 'width'}: only {first} "
                f"of {n} "
                f"{'vertical' if axis == 1 else 'horizontal'} seams can avoid it (protect less or "
                "resize less)"
            )
        self.stats["keep_pixels_cut"] += cut
        # mark removed pixels in the input's seam map
        org = _T(st.origin, axis)
        rows = np.broadcast_to(np.arange(seams.shape[1])[None, :], seams.shape)
        o = org[rows, seams]
        code = DROPPED if drop_mode else (REMOVED_V if axis == 1 else REMOVED_H)
        seam_map[o[..., 0], o[..., 1]] = code
        new = []
        for x in st.arrays():
            new.append(None if x is None else _T(_gather(_T(x, axis), idx), axis))
        st.set_arrays(new)
        if drop_mode:
            self.stats["dropped"] += seams.shape[0]
            st.drop = None
        else:
            self.stats["removed"] += seams.shape[0]

    def insert(self, st: _State, axis: int, n: int, seam_map: np.ndarray):
        name = "width" if axis == 1 else "height"
        while n > 0:
            size = st.shape[axis]
            k = min(n, max(1, int(size * INSERT_STEP)))
            _, seams, _ = self.find_seams(st, axis, k, msg=f"enlarging {name}")
            A, B, ins = K.insertion_maps(seams, size)
            org = _T(st.origin, axis)
            o = _gather(org, A)[ins]
            seam_map[o[:, 0], o[:, 1]] = np.maximum(seam_map[o[:, 0], o[:, 1]], INSERTED)
            new = []
            for i, x in enumerate(st.arrays()):
                if x is None:
                    new.append(None)
                elif i == 4:  # origin: the source pixel
                    new.append(_T(_gather(_T(x, axis), A), axis))
                else:
                    new.append(_T(_gather_insert(_T(x, axis), A, B), axis))
            st.set_arrays(new)
            n -= k
            self.stats["inserted"] += k

    def resize_axis(self, st, axis, target, seam_map):
        cur = st.shape[axis]
        if target < cur:
            self.remove(st, axis, cur - target, seam_map)
        elif target > cur:
            self.insert(st, axis, target - cur, seam_map)


def _seams_needed(cur: int, target: int) -> int:
    """Seams found to go from cur to target (insertion steps find k seams each)."""
    if target <= cur:
        return cur - target
    total, n = 0, target - cur
    while n > 0:
        k = min(n, max(1, int(cur * INSERT_STEP)))
        total += k
        cur += k
        n -= k
    return total


def _optimal_order(image, feat, wr, ws, mode, dr, dc, max_side=64):
    """Avidan & Shamir's transport map on a downscaled copy -> list of (axis, count) blocks.

    The dynamic programme over (rows removed, columns removed) needs a carving per table cell, so it
    runs on a copy whose larger side is at most ``max_side`` pixels with proportionally scaled seam
    counts; the resulting order is applied at full resolution as at most 8 alternating blocks.
    """
    H, W = image.shape[:2]
    f = min(1.0, max_side / max(H, W))
    h, w = max(2, round(H * f)), max(2, round(W * f))
    r, c = round(dr * h / H), round(dc * w / W)
    if r == 0 or c == 0:
        return [(1, dc), (0, dr)]

    def small(a):
        return np.ascontiguousarray(resize(a, (h, w)).reshape(h, w, a.shape[2]))

    img_s = small(_energy_channels(image).astype(np.float32))
    feat_s = small(feat) if (feat is not None and ws != 0.0) else np.zeros((h, w, 0), np.float32)

    def seam_cost(im, fe, axis):
        im_t = np.ascontiguousarray(im if axis == 1 else im.swapaxes(0, 1))
        fe_t = np.ascontiguousarray(fe if axis == 1 else fe.swapaxes(0, 1))
        N, M = im_t.shape[:2]
        _idx, C = _buffers(N, M)
        K.init_costs_identity(im_t, fe_t, C, wr, ws, mode)
        seam = np.empty(N, np.int64)
        cost = K.find_seam(C, M, np.empty(M), np.empty(M), np.zeros((N, M), np.int8), seam, False)
        keep = np.ones((N, M), bool)
        keep[np.arange(N), seam] = False
        im2 = im_t[keep].reshape(N, M - 1, -1)
        fe2 = fe_t[keep].reshape(N, M - 1, -1)
        if axis == 0:
            im2, fe2 = im2.swapaxes(0, 1), fe2.swapaxes(0, 1)
        return cost, np.ascontiguousarray(im2), np.ascontiguousarray(fe2)

    # T[i, j]: cost of removing i rows and j columns; images of the previous table row are kept.
    T = np.full((r + 1, c + 1), np.inf)
    choice = np.zeros((r + 1, c + 1), np.int8)  # 0: last step removed a row, 1: a column
    T[0, 0] = 0.0
    prev_row = [None] * (c + 1)
    for i in range(r + 1):
        row = [None] * (c + 1)
        for j in range(c + 1):
            if i == 0 and j == 0:
                row[0] = (img_s, feat_s)
                continue
            best = None
            if i > 0:
                cost, a, b = seam_cost(*prev_row[j], 0)
                best = (T[i - 1, j] + cost, 0, a, b)
            if j > 0:
                cost, a, b = seam_cost(*row[j - 1], 1)
                if best is None or T[i, j - 1] + cost < best[0]:
                    best = (T[i, j - 1] + cost, 1, a, b)
            T[i, j], choice[i, j] = best[0], best[1]
            row[j] = (best[2], best[3])
        prev_row = row
    # backtrack the path of choices, from (r, c) to (0, 0)
    seq = []
    i, j = r, c
    while i > 0 or j > 0:
        a = int(choice[i, j])
        seq.append(a)
        if a == 0:
            i -= 1
        else:
            j -= 1
    seq.reverse()
    # compress into at most 8 blocks, scaled to full resolution
    blocks = []
    for a in seq:
        if blocks and blocks[-1][0] == (0 if a == 0 else 1):
            blocks[-1][1] += 1
        else:
            blocks.append([0 if a == 0 else 1, 1])
    while len(blocks) > 8:  # merge the smallest block into its neighbours of the same axis
        k = min(range(1, len(blocks) - 1), key=lambda t: blocks[t][1])
        blocks[k - 1][1] += blocks[k + 1][1]
        # the small block moves to the end of its axis's work
        moved = blocks.pop(k)
        blocks.pop(k)
        blocks.append(moved)
        merged = []
        for b in blocks:
            if merged and merged[-1][0] == b[0]:
                merged[-1][1] += b[1]
            else:
                merged.append(b)
        blocks = merged
    # scale counts so that they sum to dr / dc exactly
    out = []
    tot = {0: r, 1: c}
    full = {0: dr, 1: dc}
    done = {0: 0, 1: 0}
    acc = {0: 0, 1: 0}
    for axis, cnt in blocks:
        acc[axis] += cnt
        target = round(full[axis] * acc[axis] / tot[axis])
        out.append((axis, target - done[axis]))
        done[axis] = target
    return [(a, n) for a, n in out if n > 0]


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarveOptions:
    """How to carve (every setting of :func:`carve` that is not per-image data), validated.

    Fronts (CLI, web, batch) build one and pass ``carve(image, w, h, options=opts, ...)``;
    library callers may keep using the keywords. The fields and their meaning are those of
    :func:`carve`'s keywords of the same names.

    Raises
    ------
    InputError
        An unknown ``energy`` / ``semantic_energy`` / ``order``, or ``lam`` outside [0, 1].
    """

    lam: float = 0.2
    energy: str = "forward"
    semantic_energy: str = "input"
    order: str = "width-first"
    feature_dim: int | None = FEATURE_DIM
    keep_strict: bool = True
    max_enlarge: float = MAX_ENLARGE
    protect: object = "auto"

    def __post_init__(self) -> None:
        if self.energy not in ENERGIES:
            raise InputError(f"energy must be one of {', '.join(ENERGIES)}, got {self.energy!r}")
        if self.semantic_energy not in SEMANTIC_ENERGIES:
            raise InputError(
                f"semantic_energy must be one of {', '.join(SEMANTIC_ENERGIES)}, got "
                f"{self.semantic_energy!r}"
            )
        if self.order not in ORDERS:
            raise InputError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        lam = float(self.lam)
        if not (0.0 <= lam <= 1.0) or math.isnan(lam):
            raise InputError(f"lambda must be in [0, 1], got {lam}")
        object.__setattr__(self, "lam", lam)

    @classmethod
    def resolve(cls, options: CarveOptions | None, **keywords) -> CarveOptions:
        """``options`` (default: all defaults) with every keyword that differs from its default
        applied on top (so ``carve(img, w, options=o, lam=0.5)`` uses ``o`` with ``lam=0.5``)."""
        base = options if options is not None else cls()
        defaults = {f.name: f.default for f in fields(cls)}
        changed = {k: v for k, v in keywords.items() if _differs(v, defaults[k])}
        return replace(base, **changed) if changed else base


def _differs(value, default) -> bool:
    if value is default:
        return False
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return True
    return type(value) is not type(default) or value != default


def carve(
    image: np.ndarray,
    width: int | str | None = None,
    height: int | str | None = None,
    *,
    features: np.ndarray | None = None,
    lam: float = 0.2,
    energy: str = "forward",
    semantic_energy: str = "input",
    order: str = "width-first",
    keep: np.ndarray | None = None,
    drop: np.ndarray | None = None,
    also: Sequence[np.ndarray] = (),
    progress: ProgressFn | None = None,
    feature_dim: int | None = FEATURE_DIM,
    keep_strict: bool = True,
    max_enlarge: float = MAX_ENLARGE,
    bias: np.ndarray | None = None,
    protect="auto",
    options: CarveOptions | None = None,
) -> CarveResult:
    """Resize an image by removing or inserting seams of lowest combined RGB + semantic energy.

    Parameters
    ----------
    image : (H, W, C) or (H, W) float array
        Usually (H, W, 3) float32 RGB in [0, 1]; with C = 4 the fourth channel (alpha) is carried
        along but does not contribute to the energy. Not modified.
    width, height : int or str or None
        Target size in pixels, or a percentage string such as ``"80%"``; None keeps the size (after
        ``drop``, None means "restore the input size"). Enlargement up to ``max_enlarge`` x.
    features : (H, W, D) float array or None
        Semantic feature map aligned with the image; None carves with colour only (``lam`` ignored).
        Maps with ``D > feature_dim`` are first projected on their ``feature_dim`` principal
        components (see docs/carve.md for the measured effect).
    lam : float in [0, 1]
        Semantic share of the energy (both terms are mean-normalised on the input).
    energy : ``"forward"`` (Rubinstein et al. 2008, default) or ``"backward"`` (gradient magnitude).
    semantic_energy : how the semantic term enters forward energy.
        ``"input"`` (default): the paper's ``lam * e_semantic = |dS/dx| + |dS/dy|`` of the *input*,
        a per-pixel energy carried with its pixels (like liblqr's bias maps) and added to the
        forward
        colour costs.
        ``"gradient"``: the same energy recomputed on the carved feature map near every removed
        seam.
        ``"forward"``: feature-space new-neighbour costs (forward energy with the combined
        distance).
        On the BSDS/SOD benchmark "input" keeps more of the salient object than RGB-only carving on
        76% of the images, "gradient"/"forward" on only 50-54% (docs/carve.md).
        Ignored for ``energy="backward"`` (both terms are gradient energies there, recomputed).
    order : ``"width-first"``, ``"height-first"`` or ``"optimal"`` (Avidan & Shamir's transport map,
        solved on a <= 64 px copy, applied in at most 8 alternating blocks).
    keep : (H, W) bool, pixels to protect (a seam crosses them only if every seam must).
    drop : (H, W) bool, pixels to remove: seams are removed (in the direction of the mask's smaller
        bounding-box side) until none is left, then the image is resized to ``width`` x ``height``.
    also : sequence of (H, W) or (H, W, C) arrays of any dtype carved with exactly the same seams
        (masks, alpha, depth...). Inserted pixels are averages for float arrays, copies otherwise.
    progress : callable(fraction, message) or None.
    feature_dim : int or None, see ``features``; None keeps every channel.
    keep_strict : bool
        True: raise :class:`InputError` when a reduction would have to cut the keep mask. False: cut
        it where unavoidable (best effort; ``info["keep_pixels_cut"]`` says how many pixels).
    max_enlarge : float, largest allowed target / input size ratio.
    bias : (H, W) float array or None
        Extra per-pixel energy carried with the pixels (not recomputed after a removal), in units of
        the mean-normalised energy (1 = an average pixel); e.g. a saliency map to protect, or
        ``w * sempix.distance.energy_semantic(S, normalize=True)`` (see docs/carve.md).
    protect : ``"auto"`` (default), ``"none"``, class names (``"person,dog"``) or an (H, W) map
        Semantic protection, resolved by :func:`sempix.features.protect_mask` against
        ``features``: ``"auto"`` protects the people, animals and vehicles
        (:data:`sempix.features.PROTECT_CLASSES`) of a ``FeatureMap`` with labels and does nothing
        for a bare feature array or ``None``.
        Protected pixels get :data:`PROTECT_ENERGY` of carried energy: a seam crosses them only
        where every seam must (best effort, never an error, unlike ``keep``);
        ``info["protect"]`` gives the classes, their pixel share and ``pixels_cut``.
    options : CarveOptions or None
        The settings above (``lam`` ... ``protect``) as one validated object; keywords that differ
        from their defaults override its fields.

    Returns
    -------
    CarveResult
        ``.image`` (height, width, C) float32, ``.also`` in the input order, ``.energy`` (H, W),
        ``.seam_map`` (H, W) uint8, ``.seams_vis(image)``.

    Raises
    ------
    InputError
        Bad shapes, target <= 0 or above ``max_enlarge`` x, unknown modes, a keep mask that blocks
        every seam (with ``keep_strict``).
    """
    t0 = time.perf_counter()
    opts = CarveOptions.resolve(
        options,
        lam=lam,
        energy=energy,
        semantic_energy=semantic_energy,
        order=order,
        feature_dim=feature_dim,
        keep_strict=keep_strict,
        max_enlarge=max_enlarge,
        protect=protect,
    )
    lam, energy, semantic_energy, order = opts.lam, opts.energy, opts.semantic_energy, opts.order
    feature_dim, keep_strict, max_enlarge = opts.feature_dim, opts.keep_strict, opts.max_enlarge
    protect = opts.protect
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[0] < 1 or img.shape[1] < 1 or img.shape[2] < 1:
        raise InputError(f"image must be an (H, W) or (H, W, C) array, got shape {np.shape(image)}")
    if not np.issubdtype(img.dtype, np.floating):
        raise InputError(f"image must be float in [0, 1], got dtype {img.dtype}")
    img = np.ascontiguousarray(img, dtype=np.float32)
    H, W = img.shape[:2]
    mode = 0 if energy == "backward" else (2 if semantic_energy == "gradient" else 1)
    carried = energy == "forward" and semantic_energy == "input"
    keep = _mask(keep, (H, W), "keep")
    drop = _mask(drop, (H, W), "drop")
    if keep is not None and drop is not None:
        keep &= ~drop  # drop wins where both are set
    if drop is not None and not drop.any():
        drop = None
    if keep is not None and not keep.any():
        keep = None

    tw = parse_size(width, W, "width")
    th = parse_size(height, H, "height")
    tw = W if tw is None else tw
    th = H if th is None else th
    for name, t, cur in (("width", tw, W), ("height", th, H)):
        if t <= 0:
            raise InputError(f"target {name} must be at least 1 pixel, got {t}")
        if t > max_enlarge * cur:
            raise InputError(
                f"target {name} {t} is more than {max_enlarge:g}x the input {name} {cur} "
                "(the largest enlargement seam carving supports here; resize in another tool "
                "first)"
            )

    also_arrs = []
    for k, a in enumerate(also):
        a = np.asarray(a)
        if a.ndim not in (2, 3) or a.shape[:2] != (H, W):
            raise InputError(
                f"also[{k}] has shape {a.shape}; it must be ({H}, {W}) or ({H}, {W}, C) like the "
                "image"
            )
        also_arrs.append(a)

    feat = None
    info: dict = {
        "input_size": (W, H),
        "lam": lam,
        "energy": energy,
        "order": order,
        "semantic_energy": semantic_energy,
    }
    if features is not None:
        F = np.asarray(getattr(features, "features", features))
        if F.ndim == 2:
            F = F[:, :, None]
        if F.ndim != 3 or F.shape[:2] != (H, W):
            raise InputError(
                f"features have shape {F.shape} but the image is {W}x{H}: they must be (H, W, D) "
                "aligned with it"
            )
        info["feature_dim_in"] = int(F.shape[2])
        tr = time.perf_counter()
        feat = (
            reduce_features(F, feature_dim)
            if feature_dim
            else np.ascontiguousarray(F, dtype=np.float32)
        )
        info["feature_dim"] = int(feat.shape[2])
        info["t_reduce"] = time.perf_counter() - tr

    # normalisation: mean gradient energies of the input
    e_rgb, e_sem = K.energy_maps(
        _energy_channels(img), feat if feat is not None else np.zeros((H, W, 0), np.float32)
    )
    s_rgb = float(e_rgb.mean(dtype=np.float64))
    s_rgb = s_rgb if s_rgb > 1e-12 else 1.0
    if feat is not None:
        s_sem = float(e_sem.mean(dtype=np.float64))
        s_sem = s_sem if s_sem > 1e-12 else 1.0
        wr, ws = (1.0 - lam) / s_rgb, lam / s_sem
        energy_first = (np.float32(wr) * e_rgb + np.float32(ws) * e_sem).astype(np.float32)
    else:
        wr, ws = 1.0 / s_rgb, 0.0
        energy_first = (e_rgb * np.float32(wr)).astype(np.float32)
    info["norm"] = {"s_rgb": s_rgb, "s_sem": (s_sem if feat is not None else None)}

    if bias is not None:
        bias = np.asarray(bias, dtype=np.float32)
        if bias.shape != (H, W) or not np.isfinite(bias).all():
            raise InputError(f"bias must be a finite ({H}, {W}) array, got shape {bias.shape}")
        bias = np.ascontiguousarray(bias)
    pmask, pinfo = protect_mask(features, protect, shape=(H, W))
    if pmask is not None and drop is not None:
        pmask = pmask & ~drop  # drop wins
    if pmask is not None and pmask.any():
        pbias = pmask.astype(np.float32) * PROTECT_ENERGY
        bias = pbias if bias is None else (bias + pbias).astype(np.float32)
    else:
        pmask = None
    info["protect"] = pinfo
    if carried and feat is not None and ws != 0.0:
        # semantic gradient energy of the input, carried with its pixels (computed once)
        sem = (np.float32(ws) * e_sem).astype(np.float32)
        bias = sem if bias is None else (bias + sem).astype(np.float32)
        ws = 0.0  # the kernels then never read the features
    feat_by_index = None
    if carried and feat is not None and ws == 0.0 and tw <= W and th <= H and drop is None:
        # Reduction only: instead of shifting all d feature channels on every seam, gather the
        # carved features at the end through the state's map of input coordinates (``origin``).
        feat_by_index, feat = feat, None
    seam_map = np.zeros((H, W), np.uint8)
    st = _State(img, feat, also_arrs, keep, drop, bias)

    drop_axis = None
    if drop is not None:
        ys, xs = np.nonzero(drop)
        drop_axis = 1 if (xs.max() - xs.min()) <= (ys.max() - ys.min()) else 0
        n_drop = (W if drop_axis == 1 else H) - 1
    # plan
    if order == "optimal" and tw < W and th < H and drop is None:
        plan = [(a, n) for a, n in _optimal_order(img, feat, wr, ws, mode, H - th, W - tw)]
        plan_targets = []
        cw, ch = W, H
        for a, n in plan:
            if a == 1:
                cw -= n
                plan_targets.append((1, cw))
            else:
                ch -= n
                plan_targets.append((0, ch))
        info["order_blocks"] = plan
    else:
        plan_targets = [(1, tw), (0, th)] if order != "height-first" else [(0, th), (1, tw)]
    total = sum(_seams_needed(W if a == 1 else H, t) for a, t in plan_targets)
    if drop is not None:
        total += max(int(np.ptp(np.nonzero(drop)[1 if drop_axis == 1 else 0])) + 1, 1)
    carver = _Carver(wr, ws, mode, progress, total, keep_strict)
    report(progress, 0.0, "carving")
    if drop is not None:
        carver.remove(st, drop_axis, n_drop, seam_map, drop_mode=True)
    for axis, target in plan_targets:
        carver.resize_axis(st, axis, target, seam_map)
    report(progress, 1.0, "done")

    out = np.ascontiguousarray(st.image)
    if image is not None and np.asarray(image).ndim == 2:
        out = out[:, :, 0]
    info.update(carver.stats)
    if pmask is not None:
        gone = (seam_map == REMOVED_V) | (seam_map == REMOVED_H) | (seam_map == DROPPED)
        info["protect"]["pixels_cut"] = int((gone & pmask).sum())
    info["output_size"] = (out.shape[1], out.shape[0])
    info["t_total"] = time.perf_counter() - t0
    carved_feat = None if st.feat is None else np.ascontiguousarray(st.feat)
    return CarveResult(
        image=out,
        also=[np.ascontiguousarray(a) for a in st.also],
        energy=energy_first,
        seam_map=seam_map,
        carved_features=carved_feat,
        keep=st.keep,
        info=info,
        feature_origin=None if feat_by_index is None else (feat_by_index, st.origin),
    )
