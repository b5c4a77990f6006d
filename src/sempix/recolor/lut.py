"""3-D colour look-up tables: evaluate a per-pixel colour transform once on an RGB grid, then apply
it
to full-resolution images by trilinear interpolation (numba).

White balance and palette recolouring are both functions of the pixel colour alone, so their
composition is sampled on a ``size^3`` grid (default 33, i.e. every 8/255) and applied in one pass:
a 1 MP image takes a few milliseconds instead of two Lab round trips.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit, prange

from sempix._runtime import run_parallel

LUT_SIZE = 33


def grid_colors(size: int = LUT_SIZE) -> np.ndarray:
    """(size, size, size, 3) float32 grid of sRGB colours indexed [r, g, b]."""
    v = np.linspace(0.0, 1.0, size, dtype=np.float32)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1)


def build_lut(fn: Callable[[np.ndarray], np.ndarray], size: int = LUT_SIZE) -> np.ndarray:
    """Sample a colour transform ``fn((..., 3)) -> (..., 3)`` on the grid: (size, size, size, 3)
    f32."""
    grid = grid_colors(size)
    out = np.asarray(fn(grid.reshape(size * size, size, 3)), np.float32).reshape(
        size, size, size, 3
    )
    return np.ascontiguousarray(np.clip(out, 0, 1))


@njit(cache=True, parallel=True)
def _apply_lut(img, lut, out):  # pragma: no cover - numba
    h, w = img.shape[0], img.shape[1]
    n = lut.shape[0] - 1
    for y in prange(h):
        for x in range(w):
            fr = min(max(img[y, x, 0], 0.0), 1.0) * n
            fg = min(max(img[y, x, 1], 0.0), 1.0) * n
            fb = min(max(img[y, x, 2], 0.0), 1.0) * n
            r0 = min(int(fr), n - 1)
            g0 = min(int(fg), n - 1)
            b0 = min(int(fb), n - 1)
            dr = fr - r0
            dg = fg - g0
            db = fb - b0
            for c in range(3):
                c00 = lut[r0, g0, b0, c] * (1 - dr) + lut[r0 + 1, g0, b0, c] * dr
                c01 = lut[r0, g0, b0 + 1, c] * (1 - dr) + lut[r0 + 1, g0, b0 + 1, c] * dr
                c10 = lut[r0, g0 + 1, b0, c] * (1 - dr) + lut[r0 + 1, g0 + 1, b0, c] * dr
                c11 = lut[r0, g0 + 1, b0 + 1, c] * (1 - dr) + lut[r0 + 1, g0 + 1, b0 + 1, c] * dr
                c0 = c00 * (1 - dg) + c10 * dg
                c1 = c01 * (1 - dg) + c11 * dg
                out[y, x, c] = c0 * (1 - db) + c1 * db


def apply_lut(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Apply a (S, S, S, 3) LUT to an (H, W, 3) float32 image by trilinear interpolation."""
    img = np.ascontiguousarray(image, dtype=np.float32)
    out = np.empty_like(img)
    run_parallel(_apply_lut, img, np.ascontiguousarray(lut, dtype=np.float32), out)
    return out


# ----------------------------------------------------------------------------- per-pixel name guard
#: Forward search: samples on (0, 1] before the bisection; backward search: samples on (0, soft].
#: (Fewer samples for short displacements were tried: thin name regions between samples were then
#: found at some pixels and missed at their neighbours, which broke monotonicity along ramps.)
GUARD_MARCH = 8
GUARD_BACK_MARCH = 4
GUARD_BISECT = 6
#: Default width (fraction of each pixel's displacement) of the ramp that replaces the step at a
#: name boundary of the input (0 = hard guard: the output jumps there).
GUARD_SOFT = 0.5


@njit(cache=True, inline="always")
def _name_of(r, g, b, names):  # pragma: no cover - numba
    # exactly sempix.palette.naming._bin_index: rint(float32 * 255), clip to 0..255, >> 3
    s = np.float32(255.0)
    qr = min(max(np.rint(r * s), np.float32(0.0)), np.float32(255.0))
    qg = min(max(np.rint(g * s), np.float32(0.0)), np.float32(255.0))
    qb = min(max(np.rint(b * s), np.float32(0.0)), np.float32(255.0))
    return names[(int(qr) >> 3) + 32 * (int(qg) >> 3) + 1024 * (int(qb) >> 3)]


@njit(cache=True, inline="always")
def _cell(v):  # pragma: no cover - numba
    return int(min(max(np.rint(v * np.float32(255.0)), np.float32(0.0)), np.float32(255.0))) >> 3


@njit(cache=True, inline="always")
def _same_cell(ref, d, soft):  # pragma: no cover - numba
    # both ends of the searched segment [ref - soft d, ref + d] in one naming cell: every point
    # in between is too (the cell index is monotone along the segment in every channel)
    for c in range(3):
        if _cell(ref[c] - soft * d[c]) != _cell(ref[c] + d[c]):
            return False
    return True


@njit(cache=True, inline="always")
def _name_at(ref, d, t, sign, names):  # pragma: no cover - numba
    return _name_of(
        ref[0] + sign * t * d[0], ref[1] + sign * t * d[1], ref[2] + sign * t * d[2], names
    )


@njit(cache=True, inline="always")
def _last_same(ref, d, n0, names, sign, tmax, steps, bisect):  # pragma: no cover - numba
    """Largest t in [0, tmax] before the name along ref + sign t d first differs from ``n0``:
    march in ``steps`` steps, then ``bisect`` bisections; ``tmax`` when it never changes."""
    lo = np.float32(0.0)
    hi = tmax
    for k in range(1, steps + 1):
        t = tmax * np.float32(k) / np.float32(steps)
        if _name_at(ref, d, t, sign, names) != n0:
            hi = t
            for _ in range(bisect):
                mid = (lo + hi) * np.float32(0.5)
                if _name_at(ref, d, mid, sign, names) == n0:
                    lo = mid
                else:
                    hi = mid
            return lo
        lo = t
    return tmax


@njit(cache=True)
def _guard_scale(ref, d, n0, names, soft, march, back_march, bisect):  # pragma: no cover - numba
    """Blend factor s in [0, 1] for one pixel (see guard_names)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    if _same_cell(ref, d, soft):  # fast path: no name change is possible, s = 1
        return one
    # forward: the first name change along ref + t d, t in (0, 1] (march, then bisection)
    s = _last_same(ref, d, n0, names, one, one, march, bisect)
    # backward: the first name change along ref - t d, t in (0, soft]: pixels just past a name
    # boundary of the input (seen from where they move) are moved less, so the output is continuous
    if soft > zero and s > zero:
        tb = _last_same(ref, d, n0, names, -one, np.float32(soft), back_march, bisect)
        s = min(s, tb / soft)
    # final check (the name region need not be convex): halve until the name is kept, else 0
    for _ in range(12):
        if s <= zero or _name_at(ref, d, s, one, names) == n0:
            break
        s = s * half
    if s > zero and _name_at(ref, d, s, one, names) != n0:
        s = zero
    return s


@njit(cache=True, parallel=True)
def _guard_names(ref, out, names, soft, march, back_march, bisect):  # pragma: no cover - numba
    h, w = ref.shape[0], ref.shape[1]
    changed = np.zeros(h, np.int64)
    d = np.empty((h, 3), np.float32)
    for y in prange(h):
        for x in range(w):
            r0 = ref[y, x, 0]
            g0 = ref[y, x, 1]
            b0 = ref[y, x, 2]
            dr = out[y, x, 0] - r0
            dg = out[y, x, 1] - g0
            db = out[y, x, 2] - b0
            if dr == 0 and dg == 0 and db == 0:
                continue
            n0 = _name_of(r0, g0, b0, names)
            d[y, 0] = dr
            d[y, 1] = dg
            d[y, 2] = db
            s = _guard_scale(ref[y, x], d[y], n0, names, soft, march, back_march, bisect)
            if s < 1:
                out[y, x, 0] = r0 + s * dr
                out[y, x, 1] = g0 + s * dg
                out[y, x, 2] = b0 + s * db
                changed[y] += 1
    return changed.sum()


def guard_names(
    reference: np.ndarray,
    output: np.ndarray,
    names: np.ndarray,
    *,
    soft: float = GUARD_SOFT,
    march: int = GUARD_MARCH,
    back_march: int = GUARD_BACK_MARCH,
    bisect: int = GUARD_BISECT,
) -> tuple[np.ndarray, int]:
    """Per-pixel basic-name guard (numba): every pixel keeps the basic colour name of its reference.

    For each pixel with displacement ``d = output - reference`` the result is
    ``reference + s d`` with ``s = min(t_f, t_b / soft)`` where

    * ``t_f`` = the first name change along ``reference + t d`` (``march`` samples on (0, 1], then
      ``bisect`` bisection steps; the last sample that keeps the name), 1 if no sample changes it.
      The first change, not merely the end point, is what keeps the output monotone along ramps
      (a path that crosses another name and comes back would otherwise jump);
    * ``t_b`` (only with ``soft > 0``) = the first name change along ``reference - t d`` for t in
      (0, soft] (``back_march`` samples + bisection), ``soft`` if none: pixels that have just
      crossed
      a name boundary of the input (seen along their displacement) move less, which turns the
      output step at that boundary into a ramp of width ``soft |d|``;

    then ``s`` is halved until the name is kept (the name regions need not be convex; s = 0, i.e.
    the
    reference colour itself, always keeps it). Names are looked up exactly like
    :func:`sempix.palette.naming.name_index` (8-bit rounding, 32^3 cells).

    Parameters
    ----------
    reference : (H, W, 3) float32 sRGB, the colours whose names must be kept.
    output : (H, W, 3) float32 sRGB, the transformed colours.
    names : (32768,) int table: most probable name of each naming cell (``argmax`` of w2c rows).
    soft : ramp width as a fraction of the displacement (0 = hard guard).

    Returns
    -------
    guarded : (H, W, 3) float32.
    n_changed : number of pixels that were moved back.
    """
    ref = np.ascontiguousarray(reference, dtype=np.float32)
    out = np.array(output, dtype=np.float32, order="C", copy=True)
    if ref.shape != out.shape or ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError(
            f"reference and output must both be (H, W, 3), got {ref.shape} and {out.shape}"
        )
    n = run_parallel(
        _guard_names,
        ref,
        out,
        np.ascontiguousarray(names, dtype=np.int8),
        np.float32(soft),
        int(march),
        int(back_march),
        int(bisect),
    )
    return out, int(n)
