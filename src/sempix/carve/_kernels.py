"""numba kernels of seam carving (vertical seams; horizontal seams run on transposed arrays).

Data layout of one carving pass
-------------------------------
The image ``img`` (H, W, C) and the feature map ``feat`` (H, W, D) are **never moved**: the pass
keeps
an index map ``idx`` (H, W) int32 whose first ``w`` columns give, for every pixel of the current
(carved) grid, its column in the pass input. Removing a seam shifts ``idx`` and the cost planes
``C`` (4, H, W) float32 left by one in each row from the seam on - 20 bytes per pixel, whatever the
number of feature channels - and only the costs next to the seam are recomputed (exact: every cost
depends only on a pixel's neighbours in the carved grid).

``C[0:3]`` are the forward-energy costs (Rubinstein et al. 2008) generalised to the combined
distance ``d(p, q) = wr * |I(p) - I(q)|_1 + ws * |S(p) - S(q)|_1``::

    CU(i, j) = d(P(i, j-1), P(i, j+1))          (new horizontal neighbours, any move)
    CL(i, j) = d(P(i-1, j), P(i, j-1))          (extra cost when the seam comes from j-1)
    CR(i, j) = d(P(i-1, j), P(i, j+1))          (extra cost when the seam comes from j+1)

with column indices clamped to the grid (``P(i, -1) = P(i, 0)``); at the first and last column
``CU`` is doubled (``2 d(P(i, 0), P(i, 1))``): a one-pixel difference estimates half of the
two-pixel
difference used inside, and without the factor the borders are systematically cheap and seams pile
up there. In backward mode ``C[0]`` is the
gradient energy (``numpy.gradient`` differences, identical to
:func:`sempix.distance.energy_combined`)
and ``CL = CR = 0``, so one dynamic programme serves both::

    M(0, j) = CU(0, j) + E(0, j)
    M(i, j) = min(M(i-1, j), M(i-1, j-1) + CL(i, j), M(i-1, j+1) + CR(i, j)) + CU(i, j) + E(i, j)

``C[3] = E`` is the user's per-pixel term: +KEEP on protected pixels, -DROP on pixels to remove.
Ties go to the straight move, then left, then right; the seam ends at the first minimum of the last
row.
``M`` is accumulated in float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

KEEP_PENALTY = np.float32(1e9)
DROP_BONUS = np.float32(-1e12)  # outweighs any number of keep pixels on a seam


@intrinsic
def _memmove_left(typingctx, arr, start, n):
    """arr[start:start+n] = arr[start+1:start+1+n] for a 1-D
    array with unit stride (LLVM memmove)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1:
        return None
    sig = types.void(arr, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        start_v = context.cast(builder, args[1], signature.args[1], types.intp)
        n_v = context.cast(builder, args[2], signature.args[2], types.intp)
        dst = builder.gep(ary.data, [start_v])
        src = builder.gep(ary.data, [builder.add(start_v, context.get_constant(types.intp, 1))])
        itemsize = context.get_abi_sizeof(context.get_data_type(aryty.dtype))
        cgutils.raw_memmove(builder, dst, src, n_v, itemsize)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _dist(img, feat, i1, c1, i2, c2, wr, ws):  # pragma: no cover - numba
    s = 0.0
    for k in range(img.shape[2]):
        s += abs(np.float64(img[i1, c1, k]) - np.float64(img[i2, c2, k]))
    r = wr * s
    if ws != 0.0:
        t = 0.0
        for k in range(feat.shape[2]):
            t += abs(np.float64(feat[i1, c1, k]) - np.float64(feat[i2, c2, k]))
        r += ws * t
    return r


@njit(cache=True)
def _grad_energy(img, feat, idx, i, j, w, wr, ws):  # pragma: no cover - numba
    """Backward (gradient) energy of pixel (i, j): numpy.gradient differences, L1."""
    H = idx.shape[0]
    e = 0.0
    if w > 1:
        if j == 0:
            e += _dist(img, feat, i, idx[i, 0], i, idx[i, 1], wr, ws)
        elif j == w - 1:
            e += _dist(img, feat, i, idx[i, w - 2], i, idx[i, w - 1], wr, ws)
        else:
            e += 0.5 * _dist(img, feat, i, idx[i, j - 1], i, idx[i, j + 1], wr, ws)
    if H > 1:
        if i == 0:
            e += _dist(img, feat, i, idx[0, j], i + 1, idx[1, j], wr, ws)
        elif i == H - 1:
            e += _dist(img, feat, H - 2, idx[H - 2, j], H - 1, idx[H - 1, j], wr, ws)
        else:
            e += 0.5 * _dist(img, feat, i - 1, idx[i - 1, j], i + 1, idx[i + 1, j], wr, ws)
    return e


@njit(cache=True)
def _cell_costs(img, feat, idx, C, i, j, w, wr, ws, mode):  # pragma: no cover - numba
    """Recompute C[0:3, i, j] for the current grid of width w.

    mode 0: backward energy; 1: forward energy with the combined distance; 2: forward energy of the
    colour term plus the semantic gradient energy ``ws * |dS/dx| + |dS/dy|`` of the pixel (in CU).
    """
    if mode == 0:
        C[0, i, j] = _grad_energy(img, feat, idx, i, j, w, wr, ws)
        C[1, i, j] = 0.0
        C[2, i, j] = 0.0
        return
    wsf = ws if mode == 1 else 0.0
    jl = j - 1 if j > 0 else 0
    jr = j + 1 if j < w - 1 else w - 1
    cu = _dist(img, feat, i, idx[i, jl], i, idx[i, jr], wr, wsf)
    if j == 0 or j == w - 1:
        cu = 2.0 * cu
    if mode == 2 and ws != 0.0:
        cu += _grad_energy(img, feat, idx, i, j, w, 0.0, ws)
    C[0, i, j] = cu
    if i > 0:
        up = idx[i - 1, j]
        C[1, i, j] = _dist(img, feat, i - 1, up, i, idx[i, jl], wr, wsf)
        C[2, i, j] = _dist(img, feat, i - 1, up, i, idx[i, jr], wr, wsf)
    else:
        C[1, i, j] = 0.0
        C[2, i, j] = 0.0


@njit(cache=True)
def init_costs(img, feat, idx, C, w, wr, ws, mode):  # pragma: no cover - numba
    """Fill C[0:3, :, :w] from scratch (general index map)."""
    H = idx.shape[0]
    for i in range(H):
        for j in range(w):
            _cell_costs(img, feat, idx, C, i, j, w, wr, ws, mode)


@njit(cache=True)
def init_costs_identity(img, feat, C, wr, ws, mode):  # pragma: no cover - numba
    """Fill C[0:3, :, :W] for the uncarved grid (identity index map)."""
    H, W = img.shape[0], img.shape[1]
    idx = np.empty((H, W), np.int32)
    for i in range(H):
        for j in range(W):
            idx[i, j] = j
    init_costs(img, feat, idx, C, W, wr, ws, mode)


def energy_maps(img, feat):
    """Raw backward (gradient, numpy.gradient differences, L1) energies of image and features.

    ``img`` (H, W, C) and ``feat`` (H, W, D) C-contiguous float32. Returns (e_rgb, e_sem), each
    (H, W) float32 (e_sem all zero when feat has no channel). Plain Python over
    :func:`init_costs_identity` (one compiled specialisation shared with the carving passes).
    """
    H, W = img.shape[0], img.shape[1]
    img = np.ascontiguousarray(img, dtype=np.float32)
    feat = np.ascontiguousarray(feat, dtype=np.float32)
    none = np.zeros((H, W, 0), np.float32)
    Cr = np.zeros((3, H, W), np.float32)
    init_costs_identity(img, none, Cr, 1.0, 0.0, 0)
    er = Cr[0].copy()
    es = np.zeros((H, W), np.float32)
    if feat.shape[2] > 0:
        init_costs_identity(none, feat, Cr, 0.0, 1.0, 0)
        es[:, :] = Cr[0]
    return er, es


@njit(cache=True)
def find_seam(C, w, M0, M1, dirs, seam, has_e):  # pragma: no cover - numba
    """Minimal vertical seam of the current grid (width w) into ``seam`` (H,); returns its cost.

    The interior of each row has no loop-carried dependency and is written branch-free so that
    LLVM vectorises it; ``M0``/``M1`` (W,) float64 and ``dirs`` (H, W) int8 are scratch buffers.
    """
    H = C.shape[1]
    CU = C[0]
    CL = C[1]
    CR = C[2]
    E = C[3]
    for j in range(w):
        M0[j] = np.float64(CU[0, j]) + (np.float64(E[0, j]) if has_e else 0.0)
    for i in range(1, H):
        cu = CU[i]
        cl = CL[i]
        cr = CR[i]
        e = E[i]
        dr = dirs[i]
        if has_e:
            for j in range(1, w - 1):
                m = M0[j]
                lv = M0[j - 1] + np.float64(cl[j])
                rv = M0[j + 1] + np.float64(cr[j])
                ml = min(m, lv)
                d1 = np.int8(-1) if lv < m else np.int8(0)
                m2 = min(ml, rv)
                dr[j] = np.int8(1) if rv < ml else d1
                M1[j] = m2 + np.float64(cu[j]) + np.float64(e[j])
        else:
            for j in range(1, w - 1):
                m = M0[j]
                lv = M0[j - 1] + np.float64(cl[j])
                rv = M0[j + 1] + np.float64(cr[j])
                ml = min(m, lv)
                d1 = np.int8(-1) if lv < m else np.int8(0)
                m2 = min(ml, rv)
                dr[j] = np.int8(1) if rv < ml else d1
                M1[j] = m2 + np.float64(cu[j])
        # borders (j = 0 and j = w - 1)
        if w == 1:
            M1[0] = M0[0] + np.float64(cu[0]) + (np.float64(e[0]) if has_e else 0.0)
            dr[0] = 0
        else:
            m = M0[0]
            rv = M0[1] + np.float64(cr[0])
            d = np.int8(0)
            if rv < m:
                m = rv
                d = np.int8(1)
            M1[0] = m + np.float64(cu[0]) + (np.float64(e[0]) if has_e else 0.0)
            dr[0] = d
            j = w - 1
            m = M0[j]
            lv = M0[j - 1] + np.float64(cl[j])
            d = np.int8(0)
            if lv < m:
                m = lv
                d = np.int8(-1)
            M1[j] = m + np.float64(cu[j]) + (np.float64(e[j]) if has_e else 0.0)
            dr[j] = d
        M0, M1 = M1, M0
    jbest = 0
    vbest = M0[0]
    for j in range(1, w):
        if M0[j] < vbest:
            vbest = M0[j]
            jbest = j
    seam[H - 1] = jbest
    j = jbest
    for i in range(H - 1, 0, -1):
        j += dirs[i, j]
        seam[i - 1] = j
    return vbest


@njit(cache=True)
def remove_seam(img, feat, idx, C, seam, w, wr, ws, mode, has_e):  # pragma: no cover - numba
    """Remove ``seam`` from idx and C (grid width w -> w - 1) and update the costs near it.

    Returns (number of keep pixels cut, number of drop pixels removed).
    """
    H = idx.shape[0]
    ncut = 0
    ndrop = 0
    for i in range(H):
        s = seam[i]
        if has_e:
            e = C[3, i, s]
            if e >= 0.5 * KEEP_PENALTY:
                ncut += 1
            elif e <= 0.5 * DROP_BONUS:
                ndrop += 1
        n = w - 1 - s
        if n > 0:
            _memmove_left(idx[i], s, n)
            _memmove_left(C[0, i], s, n)
            if mode != 0:  # CL = CR = 0 in backward mode
                _memmove_left(C[1, i], s, n)
                _memmove_left(C[2, i], s, n)
            if has_e:
                _memmove_left(C[3, i], s, n)
    wn = w - 1
    for i in range(H):
        # cells whose neighbours changed: forward costs of row i depend on rows i-1 and i,
        # gradient energies on rows i-1, i and i+1 (tests check this against full recomputation)
        lo = seam[i]
        hi = seam[i]
        if i > 0:
            lo = min(lo, seam[i - 1])
            hi = max(hi, seam[i - 1])
        if i < H - 1 and mode != 1:
            lo = min(lo, seam[i + 1])
            hi = max(hi, seam[i + 1])
        lo = max(lo - 1, 0)
        hi = min(hi + 1, wn - 1)
        for j in range(lo, hi + 1):
            _cell_costs(img, feat, idx, C, i, j, wn, wr, ws, mode)
    return ncut, ndrop


@njit(cache=True)
def carve_chunk(
    img,
    feat,
    idx,
    C,
    w,
    n,
    wr,
    ws,
    mode,
    has_e,
    seams,
    k0,
    stats,
    M0,
    M1,
    dirs,
    seam,
    stop_when_no_drop,
    drop_left,
):  # pragma: no cover - numba
    """Remove up to ``n`` seams; record their input columns in ``seams[k0 + k]``.

    ``stats[k0 + k] = (keep pixels cut, drop pixels removed)``. With ``stop_when_no_drop`` the chunk
    stops as soon as ``drop_left`` (pixels still marked for removal) reaches 0.
    Returns (new width, seams done, drop pixels left).
    """
    H = idx.shape[0]
    done = 0
    for k in range(n):
        if stop_when_no_drop and drop_left <= 0:
            break
        find_seam(C, w, M0, M1, dirs, seam, has_e)
        for i in range(H):
            seams[k0 + k, i] = idx[i, seam[i]]
        ncut, ndrop = remove_seam(img, feat, idx, C, seam, w, wr, ws, mode, has_e)
        stats[k0 + k, 0] = ncut
        stats[k0 + k, 1] = ndrop
        drop_left -= ndrop
        w -= 1
        done += 1
    return w, done, drop_left


@njit(cache=True, fastmath=True)
def project(X, B, mean, out):  # pragma: no cover - numba
    """out[i] = (X[i] - mean) @ B for X (N, D), B (D, k) float32 (single-threaded, predictable)."""
    n, D = X.shape
    k = B.shape[1]
    acc = np.empty(k, np.float32)
    for i in range(n):
        for c in range(k):
            acc[c] = 0.0
        for d in range(D):
            v = X[i, d] - mean[d]
            for c in range(k):
                acc[c] += v * B[d, c]
        for c in range(k):
            out[i, c] = acc[c]


@njit(cache=True)
def gather2(x, idx, out):  # pragma: no cover - numba
    """out[i, j] = x[i, idx[i, j]] for (N, M) arrays."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[i, idx[i, j]]


@njit(cache=True)
def gather3(x, idx, out):  # pragma: no cover - numba
    """out[i, j, :] = x[i, idx[i, j], :] for (N, M, C) arrays."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            c = idx[i, j]
            for k in range(out.shape[2]):
                out[i, j, k] = x[i, c, k]


@njit(cache=True)
def insertion_maps(seams, W):  # pragma: no cover - numba
    """Source columns (A, B) of a seam insertion: out = (X[A] + X[B]) / 2.

    ``seams`` (k, H) int32 input columns of k distinct seams per row. Every input pixel is kept, and
    a
    seam pixel at column c is followed by the average of c and c + 1 (c at the right border).
    Returns A, B (H, W + k) int32 and ``inserted`` (H, W + k) bool.
    """
    k, H = seams.shape
    A = np.empty((H, W + k), np.int32)
    B = np.empty((H, W + k), np.int32)
    ins = np.zeros((H, W + k), np.bool_)
    mark = np.zeros(W, np.bool_)
    for i in range(H):
        for c in range(W):
            mark[c] = False
        for t in range(k):
            mark[seams[t, i]] = True
        o = 0
        for c in range(W):
            A[i, o] = c
            B[i, o] = c
            o += 1
            if mark[c]:
                A[i, o] = c
                B[i, o] = c + 1 if c + 1 < W else c
                ins[i, o] = True
                o += 1
    return A, B, ins
