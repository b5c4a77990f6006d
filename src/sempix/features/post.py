"""Post-processing shared by every feature backend.

* :func:`sample_coords` / :func:`upsample` - bilinear resampling of a low-resolution map at
  arbitrary (fractional) grid coordinates, separable, in numba.
* :func:`random_projection` / :func:`project_random` - seeded Gaussian random projection.
* :func:`pca_reduce` / :func:`pca_rgb` - per-image PCA, output normalised to [0, 1].
* :func:`guided_filter` - He et al.'s guided filter with the colour image as guide (box filters
  through cumulative sums, vectorised over channel chunks).
* :func:`argmax_upsampled` - labels = argmax of bilinearly upsampled logits, computed in row
  chunks without materialising the full-resolution logits.

Random projection and PCA are linear maps of the feature vector and bilinear interpolation is a
convex combination of grid vectors, so ``project(upsample(F)) == upsample(project(F))`` exactly:
:func:`sempix.features.compute_features` always reduces *before* upsampling.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from sempix.errors import InputError

_par_lock = threading.Lock()
_par_safe: bool | None = None


def _par(kernel, *args) -> None:
    """Call a ``parallel=True`` numba kernel; serialised when numba's threading layer is
    ``workqueue`` (not thread-safe; the web server computes features from several threads)."""
    global _par_safe
    if _par_safe:
        kernel(*args)
        return
    with _par_lock:
        kernel(*args)
        if _par_safe is None:
            import numba

            try:
                _par_safe = numba.threading_layer() != "workqueue"
            except ValueError:  # pragma: no cover
                _par_safe = False


# ----------------------------------------------------------------------------------------------
# bilinear resampling
# ----------------------------------------------------------------------------------------------


def sample_coords(n_out: int, n_in: int, *, scale: float | None = None, stride: float = 1.0,
                  limit: float | None = None) -> np.ndarray:
    """Grid coordinates of output pixel centres in a low-resolution map.

    Output pixel ``i`` has its centre at ``(i + 0.5) * scale - 0.5`` in the (letterboxed)
    network-input pixel grid (half-pixel convention, as PIL's resize), which is at
    ``that / stride`` in a feature grid whose sample ``k`` sits on input pixel ``k * stride``
    (align-corners networks such as DeepLab: stride 4 for 513 -> 129).

    Parameters
    ----------
    n_out : int
        Number of output pixels along the axis (the image size).
    n_in : int
        Number of network-input pixels the image occupies along the axis.
    scale : float, optional
        ``n_in / n_out`` (default).
    stride : float
        Feature-grid stride in network-input pixels.
    limit : float, optional
        Largest allowed coordinate (last valid feature sample); coordinates are clipped to
        ``[0, limit]``.

    Returns
    -------
    (n_out,) float64 coordinates.
    """
    if scale is None:
        scale = n_in / n_out
    c = ((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5) / stride
    hi = (n_in - 1) / stride if limit is None else limit
    return np.clip(c, 0.0, max(hi, 0.0))


def _split(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.clip(np.asarray(coords, dtype=np.float64), 0.0, n - 1)
    i0 = np.floor(c).astype(np.int64)
    i0 = np.minimum(i0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (c - i0).astype(np.float32)
    return i0, i1, w


@njit(cache=True, parallel=True)
def _interp_rows(src, i0, i1, w, out):  # pragma: no cover - numba
    # src (h, W, D) -> out (H, W, D): out[y] = (1-w) src[i0[y]] + w src[i1[y]]
    n = out.shape[0]
    for y in prange(n):
        a = src[i0[y]]
        b = src[i1[y]]
        wy = w[y]
        vy = np.float32(1.0) - wy
        o = out[y]
        for x in range(o.shape[0]):
            for d in range(o.shape[1]):
                o[x, d] = vy * a[x, d] + wy * b[x, d]


@njit(cache=True, parallel=True)
def _interp_cols(src, i0, i1, w, out):  # pragma: no cover - numba
    # src (h, w, D) -> out (h, W, D) along axis 1
    for y in prange(out.shape[0]):
        s = src[y]
        o = out[y]
        for x in range(o.shape[0]):
            wx = w[x]
            vx = np.float32(1.0) - wx
            a = s[i0[x]]
            b = s[i1[x]]
            for d in range(o.shape[1]):
                o[x, d] = vx * a[d] + wx * b[d]


def upsample(lowres: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear sampling of a map at the grid coordinates ``ys`` x ``xs``.

    Parameters
    ----------
    lowres : (h, w, D) or (h, w) array
    ys : (H,) float row coordinates in ``[0, h-1]`` (clipped)
    xs : (W,) float column coordinates in ``[0, w-1]`` (clipped)

    Returns
    -------
    (H, W, D) or (H, W) float32
    """
    a = np.asarray(lowres, dtype=np.float32)
    squeeze = a.ndim == 2
    if squeeze:
        a = a[..., None]
    a = np.ascontiguousarray(a)
    h, w, d = a.shape
    yi0, yi1, wy = _split(ys, h)
    xi0, xi1, wx = _split(xs, w)
    tmp = np.empty((h, len(xs), d), np.float32)
    _par(_interp_cols, a, xi0, xi1, wx, tmp)
    out = np.empty((len(ys), len(xs), d), np.float32)
    _par(_interp_rows, tmp, yi0, yi1, wy, out)
    return out[..., 0] if squeeze else out


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


def resize_bilinear(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(h, w[, D])`` to ``(height, width[, D])`` with half-pixel-centre bilinear sampling."""
    h, w = arr.shape[:2]
    return upsample(arr, sample_coords(height, h), sample_coords(width, w))


# ----------------------------------------------------------------------------------------------
# dimensionality reduction
# ----------------------------------------------------------------------------------------------


def random_projection(d_in: int, d_out: int, seed: int = 0) -> np.ndarray:
    """Seeded Gaussian random projection matrix.

    Entries are ``N(0, 1) / sqrt(d_out)`` so that ``E ||x @ R||^2 = ||x||^2`` (Johnson-Lindenstrauss).
    The same ``(d_in, d_out, seed)`` always gives the same matrix.

    Returns
    -------
    (d_in, d_out) float32
    """
    if d_out < 1 or d_in < 1:
        raise InputError(f"projection dimensions must be >= 1 (got {d_in} -> {d_out})")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(d_in), int(d_out)]))
    return (rng.standard_normal((d_in, d_out)) / np.sqrt(d_out)).astype(np.float32)


def project_random(features: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """Project ``(..., D)`` features to ``(..., dim)`` with :func:`random_projection`."""
    f = np.asarray(features, dtype=np.float32)
    r = random_projection(f.shape[-1], dim, seed)
    return (f.reshape(-1, f.shape[-1]) @ r).reshape(f.shape[:-1] + (dim,))


def pca_basis(features: np.ndarray, n: int, *, max_samples: int = 20_000, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of ``(..., D)`` features.

    Signs are fixed so that each axis' largest-magnitude loading is positive (deterministic).
    At most ``max_samples`` (seeded random) feature vectors are used (plenty for the leading
    axes of a smooth feature map, and it keeps PCA of a megapixel map fast).

    Returns
    -------
    mean : (D,) float64
    axes : (D, n) float64, columns = first ``n`` principal directions
    """
    f = np.asarray(features, dtype=np.float32).reshape(-1, features.shape[-1])
    if len(f) > max_samples:
        idx = np.random.default_rng(seed).choice(len(f), max_samples, replace=False)
        f = f[np.sort(idx)]
    mean = f.astype(np.float64).mean(axis=0)
    c = f - mean.astype(np.float32)
    cov = (c.T @ c).astype(np.float64) / max(1, len(f) - 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:n]
    axes = vecs[:, order]
    sign = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(axes.shape[1])])
    sign[sign == 0] = 1
    axes = axes * sign
    if axes.shape[1] < n:  # fewer input dims than requested: pad with zero axes
        axes = np.pad(axes, ((0, 0), (0, n - axes.shape[1])))
    return mean, axes


def pca_reduce(features: np.ndarray, n: int, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Per-image PCA to ``n`` dimensions, each normalised to [0, 1] by its min and max.

    Parameters
    ----------
    features : (..., D) float
    n : int
        Output dimensions (>= 1).

    Returns
    -------
    reduced : (..., n) float32 in [0, 1]
    info : dict with ``mean`` (D,), ``axes`` (D, n), ``lo`` (n,), ``hi`` (n,) so the same map
        can be applied to other (e.g. interpolated) features: ``((f - mean) @ axes - lo) / (hi - lo)``.
    """
    if n < 1:
        raise InputError(f"PCA needs n >= 1 (got {n})")
    f = np.asarray(features, dtype=np.float32)
    mean, axes = pca_basis(f, n, seed=seed)
    proj = ((f.reshape(-1, f.shape[-1]) - mean.astype(np.float32)) @ axes.astype(np.float32))
    lo = proj.min(axis=0) if len(proj) else np.zeros(n, np.float32)
    hi = proj.max(axis=0) if len(proj) else np.ones(n, np.float32)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    out = np.clip((proj - lo) / span, 0.0, 1.0).astype(np.float32)
    return out.reshape(f.shape[:-1] + (n,)), {"mean": mean, "axes": axes, "lo": lo, "hi": hi}


def pca_rgb(features: np.ndarray, n: int = 3) -> np.ndarray:
    """Project ``(H, W, D)`` features to ``(H, W, n)`` by per-image PCA, normalised to [0, 1].

    Used for previews (n=3 -> RGB) and as soft-segmentation features.
    """
    f = np.asarray(features)
    if f.ndim != 3:
        raise InputError(f"pca_rgb expects (H, W, D) features, got shape {f.shape}")
    return pca_reduce(f, n)[0]


# ----------------------------------------------------------------------------------------------
# guided filter
# ----------------------------------------------------------------------------------------------


def box_filter(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the ``(2r+1) x (2r+1)`` window clipped to the image (axes 0, 1), any trailing dims."""
    a = np.asarray(a, dtype=np.float64)
    h, w = a.shape[:2]

    def _axis(x: np.ndarray, axis: int, n: int) -> np.ndarray:
        c = np.cumsum(x, axis=axis)
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 0)
        c = np.pad(c, pad)
        idx = np.arange(n)
        hi = np.minimum(idx + r + 1, n)
        lo = np.maximum(idx - r, 0)
        return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)

    s = _axis(_axis(a, 0, h), 1, w)
    ones = np.ones((h, w))
    cnt = _axis(_axis(ones, 0, h), 1, w)
    return s / cnt.reshape(cnt.shape + (1,) * (a.ndim - 2))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int | None = None, eps: float = 1e-3,
                  *, subsample: int | None = None, chunk: int = 8) -> np.ndarray:
    """Edge-aware smoothing of ``src`` with the colour image ``guide`` (He et al. 2010).

    Per window, ``q = a^T I + b`` with ``a = (Sigma_I + eps U)^-1 cov(I, p)`` (3x3 colour guide),
    ``a`` and ``b`` averaged over the windows covering each pixel. With ``subsample`` s > 1 this
    is the *fast* guided filter (He & Sun 2015): the coefficients are computed on an s-times
    smaller grid (radius r/s) and bilinearly upsampled, the final ``mean_a^T I + mean_b`` uses
    the full-resolution guide. Channels are processed ``chunk`` at a time to bound memory.

    It is an edge-*preserving* smoother: features stay smooth inside image regions and keep
    steps where the image has edges; it does not re-sharpen a boundary that is blurred over
    more than the window.

    Parameters
    ----------
    guide : (H, W, 3) float in [0, 1] (or (H, W) grey)
    src : (H, W, D) or (H, W) float
    radius : int, optional
        Window radius at full resolution; default ``max(2, round(min(H, W) / 128))``.
    eps : float
        Regularisation (in guide-intensity squared units).
    subsample : int, optional
        Default ``max(1, min(H, W) // 256)`` (1 = exact guided filter).

    Returns
    -------
    Same shape as ``src``, float32.
    """
    I_full = np.asarray(guide, dtype=np.float32)
    if I_full.ndim == 2:
        I_full = np.repeat(I_full[..., None], 3, axis=2)
    p_all = np.asarray(src, dtype=np.float32)
    squeeze = p_all.ndim == 2
    if squeeze:
        p_all = p_all[..., None]
    H, W = I_full.shape[:2]
    if p_all.shape[:2] != (H, W):
        raise InputError(f"guide {I_full.shape[:2]} and source {p_all.shape[:2]} sizes differ")
    r = max(2, round(min(H, W) / 128)) if radius is None else int(radius)
    s = max(1, min(H, W) // 256) if subsample is None else max(1, int(subsample))
    if s > 1:
        h, w = max(1, -(-H // s)), max(1, -(-W // s))
        I = resize_bilinear(I_full, h, w).astype(np.float64)
        rs = max(1, round(r / s))
    else:
        h, w, I, rs = H, W, I_full.astype(np.float64), r
    mean_I = box_filter(I, rs)  # (h,w,3)
    II = I[..., :, None] * I[..., None, :]
    cov_I = box_filter(II.reshape(h, w, 9), rs).reshape(h, w, 3, 3) - mean_I[..., :, None] * mean_I[..., None, :]
    inv = np.linalg.inv(cov_I + eps * np.eye(3))  # (h,w,3,3)
    d = p_all.shape[2]
    coef = np.empty((h, w, 4, d), np.float32)  # mean_a (3) and mean_b per channel, low resolution
    for c0 in range(0, d, chunk):
        pc = p_all[..., c0:c0 + chunk]
        p = (resize_bilinear(pc, h, w) if s > 1 else pc).astype(np.float64)  # (h,w,k)
        k = p.shape[2]
        mean_p = box_filter(p, rs)
        Ip = box_filter((I[..., :, None] * p[..., None, :]).reshape(h, w, 3 * k), rs).reshape(h, w, 3, k)
        cov_Ip = Ip - mean_I[..., :, None] * mean_p[..., None, :]
        a = np.einsum("hwij,hwjk->hwik", inv, cov_Ip)  # (h,w,3,k)
        b = mean_p - np.einsum("hwi,hwik->hwk", mean_I, a)
        coef[:, :, :3, c0:c0 + k] = box_filter(a.reshape(h, w, 3 * k), rs).reshape(h, w, 3, k)
        coef[:, :, 3, c0:c0 + k] = box_filter(b, rs)
    if s > 1:
        yi0, yi1, wy = _split(sample_coords(H, h), h)
        xi0, xi1, wx = _split(sample_coords(W, w), w)
    else:
        yi0 = yi1 = np.arange(H, dtype=np.int64)
        xi0 = xi1 = np.arange(W, dtype=np.int64)
        wy, wx = np.zeros(H, np.float32), np.zeros(W, np.float32)
    out = np.empty((H, W, d), np.float32)
    _par(_guided_apply, coef, np.ascontiguousarray(I_full), yi0, yi1, wy, xi0, xi1, wx, out)
    return out[..., 0] if squeeze else out


@njit(cache=True, parallel=True)
def _guided_apply(coef, I, yi0, yi1, wy, xi0, xi1, wx, out):  # pragma: no cover - numba
    # out[y, x, c] = sum_i up(mean_a)[y, x, i, c] * I[y, x, i] + up(mean_b)[y, x, c]
    one = np.float32(1.0)
    for y in prange(out.shape[0]):
        a0 = yi0[y]
        a1 = yi1[y]
        fy = wy[y]
        for x in range(out.shape[1]):
            b0 = xi0[x]
            b1 = xi1[x]
            fx = wx[x]
            w00 = (one - fy) * (one - fx)
            w01 = (one - fy) * fx
            w10 = fy * (one - fx)
            w11 = fy * fx
            o = out[y, x]
            for c in range(o.shape[0]):
                o[c] = 0.0
            for i in range(4):
                g = I[y, x, i] if i < 3 else one
                c00 = coef[a0, b0, i]
                c01 = coef[a0, b1, i]
                c10 = coef[a1, b0, i]
                c11 = coef[a1, b1, i]
                for c in range(o.shape[0]):
                    o[c] += g * (w00 * c00[c] + w01 * c01[c] + w10 * c10[c] + w11 * c11[c])


def guided_filter_reference(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------------


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax, float32."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


@njit(cache=True, parallel=True)
def _argmax_kernel(lg, topk, yi0, yi1, wy, xi0, xi1, wx, out):  # pragma: no cover - numba
    k = topk.shape[2]
    for y in prange(out.shape[0]):
        a0 = yi0[y]
        a1 = yi1[y]
        fy = wy[y]
        for x in range(out.shape[1]):
            b0 = xi0[x]
            b1 = xi1[x]
            fx = wx[x]
            w00 = (1.0 - fy) * (1.0 - fx)
            w01 = (1.0 - fy) * fx
            w10 = fy * (1.0 - fx)
            w11 = fy * fx
            best = -np.inf
            arg = 0
            for n in range(4):
                ny = a0 if n < 2 else a1
                nx = b0 if n % 2 == 0 else b1
                for j in range(k):
                    c = topk[ny, nx, j]
                    v = (w00 * lg[a0, b0, c] + w01 * lg[a0, b1, c]
                         + w10 * lg[a1, b0, c] + w11 * lg[a1, b1, c])
                    if v > best or (v == best and c < arg):
                        best = v
                        arg = c
            out[y, x] = arg


def argmax_upsampled(logits: np.ndarray, ys: np.ndarray, xs: np.ndarray, *, top: int = 4) -> np.ndarray:
    """``argmax`` over classes of the bilinearly upsampled logits, without materialising them.

    For each output pixel the candidates are the ``top`` highest classes of each of its four
    surrounding low-resolution samples; the interpolated logit of each candidate is computed
    and the largest wins. A class outside the top 4 of all four neighbours practically never
    wins the interpolation; ``top=C`` (all classes) is exact.

    Parameters
    ----------
    logits : (h, w, C)
    ys, xs : (H,), (W,) grid coordinates as for :func:`upsample`.
    top : int
        Candidates per low-resolution sample.

    Returns
    -------
    (H, W) int32 class indices.
    """
    lg = np.ascontiguousarray(logits, dtype=np.float32)
    c = lg.shape[2]
    k = max(1, min(top, c))
    if k < c:
        topk = np.argpartition(-lg, k - 1, axis=2)[..., :k]
    else:
        topk = np.broadcast_to(np.arange(c), lg.shape)
    topk = np.ascontiguousarray(topk, dtype=np.int64)
    h, w = lg.shape[:2]
    yi0, yi1, wy = _split(ys, h)
    xi0, xi1, wx = _split(xs, w)
    out = np.empty((len(ys), len(xs)), np.int32)
    _par(_argmax_kernel, lg, topk, yi0, yi1, wy, xi0, xi1, wx, out)
    return out


def argmax_upsampled_reference(logits: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Exact, memory-hungry reference: argmax of the fully upsampled logits (for tests)."""
    return np.argmax(upsample_reference(logits, ys, xs), axis=2).astype(np.int32)
