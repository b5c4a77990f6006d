"""Resampling: one float resize for images, masks and feature maps, and grid sampling.

* :func:`resize` - ``(h, w[, C])`` float -> ``(H, W[, C])`` float32, pixel-centre aligned.
  Downscaling averages (Pillow's antialiased bilinear filter, or ``filter="box"``: area average);
  upscaling is plain bilinear (half-pixel centres, edge samples clamped). Never rounds to 8 bits.
* :func:`sample_coords` / :func:`upsample` - bilinear sampling of a low-resolution map at
  arbitrary (fractional) grid coordinates, separable, in numba (network outputs -> image grid).
* :func:`work_shape` - a shape scaled down to a pixel budget.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sempix.errors import InputError

FILTERS = ("bilinear", "box", "nearest", "lanczos", "gaussian")


def work_shape(shape: tuple[int, int], work_pixels: int | None) -> tuple[int, int]:
    """(h, w) of ``shape`` scaled down (aspect kept) to at most ``work_pixels`` pixels."""
    H, W = int(shape[0]), int(shape[1])
    if not work_pixels or H * W <= work_pixels:
        return H, W
    s = (work_pixels / float(H * W)) ** 0.5
    return max(1, int(round(H * s))), max(1, int(round(W * s)))


def resize(arr: np.ndarray, shape: tuple[int, int], *, filter: str = "bilinear") -> np.ndarray:
    """Resize an ``(h, w)`` or ``(h, w, C)`` float array to ``shape`` = ``(H, W)``.

    Parameters
    ----------
    arr : (h, w) or (h, w, C) array (any real dtype; computed in float32).
    shape : (H, W) target size, each >= 1.
    filter : ``"bilinear"`` (antialiased when downscaling, the default), ``"box"`` (area
        average), ``"nearest"`` or ``"lanczos"`` (Pillow's filters on float32 planes), or
        ``"gaussian"``: scikit-image's ``resize`` (Gaussian prefilter when downscaling, then
        bilinear; computed in float64), which the soft segmentation was calibrated with.

    Returns
    -------
    (H, W) or (H, W, C) float32 (a copy, also when the size is unchanged).
    """
    from PIL import Image as PILImage

    a = np.asarray(arr, dtype=np.float32)
    if a.ndim not in (2, 3):
        raise InputError(f"resize expects an (h, w) or (h, w, C) array, got shape {a.shape}")
    if filter not in FILTERS:
        raise InputError(f"filter must be one of {', '.join(FILTERS)}, got {filter!r}")
    H, W = int(shape[0]), int(shape[1])
    if H < 1 or W < 1:
        raise InputError(f"resize target must be at least 1x1, got {H}x{W}")
    if a.shape[:2] == (H, W):
        return a.copy()
    h, w = a.shape[:2]
    if filter == "gaussian":
        from skimage.transform import resize as sk_resize

        down = H < h
        out = sk_resize(np.asarray(arr, dtype=np.float64), (H, W) + a.shape[2:], order=1,
                        mode="edge", anti_aliasing=down, preserve_range=True)
        return out.astype(np.float32)
    if filter == "bilinear" and H >= h and W >= w:  # pure upscaling: separable numba kernel
        return upsample(a, sample_coords(H, h), sample_coords(W, w))
    resample = {"bilinear": PILImage.BILINEAR, "box": PILImage.BOX, "nearest": PILImage.NEAREST,
                "lanczos": PILImage.LANCZOS}[filter]

    def plane(p: np.ndarray) -> np.ndarray:
        im = PILImage.fromarray(np.ascontiguousarray(p), mode="F")
        return np.asarray(im.resize((W, H), resample), dtype=np.float32)

    if a.ndim == 2:
        return plane(a)
    return np.stack([plane(a[..., c]) for c in range(a.shape[2])], axis=-1)


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


@njit(cache=True, inline="always")
def bilinear_corners(yi0, yi1, wy, xi0, xi1, wx, y, x, one):  # pragma: no cover - numba
    """Output pixel (y, x) of a grid gather (see :func:`_split`): rows (a0, a1), columns (b0, b1)
    and weights (w00, w01, w10, w11) of its 4 neighbours; ``one`` sets the weights' precision
    (``np.float32(1.0)`` or ``1.0``)."""
    fy = wy[y]
    fx = wx[x]
    return (yi0[y], yi1[y], xi0[x], xi1[x],
            (one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx)


@njit(cache=True)
def _interp_rows(src, i0, i1, w, out):  # pragma: no cover - numba
    # src (h, W*D) -> out (H, W*D): out[y] = (1-w) src[i0[y]] + w src[i1[y]]; rows flattened so
    # the inner loop is one contiguous, vectorised run. Serial on purpose: the pass is memory-bound,
    # and a parallel launch was 2-40x slower and erratic whenever another process held a core.
    for y in range(out.shape[0]):
        a = src[i0[y]]
        b = src[i1[y]]
        wy = w[y]
        vy = np.float32(1.0) - wy
        o = out[y]
        for k in range(o.shape[0]):
            o[k] = vy * a[k] + wy * b[k]


@njit(cache=True)
def _interp_cols(src, i0, i1, w, out):  # pragma: no cover - numba
    # src (h, w, D) -> out (h, W, D) along axis 1 (serial, see _interp_rows)
    for y in range(out.shape[0]):
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
    _interp_cols(a, xi0, xi1, wx, tmp)
    out = np.empty((len(ys), len(xs), d), np.float32)
    _interp_rows(tmp.reshape(h, -1), yi0, yi1, wy, out.reshape(len(ys), -1))
    return out[..., 0] if squeeze else out
