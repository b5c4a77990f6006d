"""Classical burst restoration: align, merge (weighted average or robust), upsample.

``restore_classical(frames, scale)``:

1. alignment (:mod:`sempix.burst.align`): flows of every frame against frame 0;
2. merge weights: ``mean`` gives every frame weight 1; ``robust`` down-weights pixels that
   disagree with the per-pixel median of the aligned frames (Gaussian weights on the residual,
   width ``k * sigma`` with ``sigma`` the noise level estimated on the reference by the wavelet
   median estimator, :func:`estimate_noise`), which rejects misaligned or moving content;
3. upsampling: ``kernel`` = shift-and-add by normalised convolution -- every LR sample is splatted
   (bilinear) at its HR position ``scale * (q + d) + (scale - 1) / 2`` and numerator and weight
   images are smoothed by a Gaussian (default width ``0.45 * scale * n ** -0.2`` HR pixels, tuned on
   a few DTD crops) before dividing (multi-frame super-resolution); ``bicubic`` =
   the merged LR image (frames warped onto the reference grid) resized by bicubic interpolation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sempix.burst.align import align as _align
from sempix.burst.align import warp
from sempix.errors import InputError
from sempix.progress import ProgressFn, report, sub_progress

MERGES = ("mean", "robust")
UPSAMPLERS = ("kernel", "bicubic")


def estimate_noise(frame: np.ndarray) -> float:
    """Noise standard deviation of one frame in [0, 1] units (mean over its channels).

    Donoho's wavelet estimator (what ``skimage.restoration.estimate_sigma`` computes, without its
    PyWavelets dependency): ``median(|HH|) / 0.6745`` of the finest Haar diagonal detail band of
    each channel.
    """
    a = np.asarray(frame, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
    h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
    if h < 2 or w < 2:
        raise InputError("frame too small to estimate its noise")
    g = a[:h, :w]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0
    return float(np.mean(np.median(np.abs(hh), axis=(0, 1)) / 0.6745))


def _bicubic(img: np.ndarray, scale: int) -> np.ndarray:
    from skimage.transform import resize

    h, w = img.shape[:2]
    return resize(img, (h * scale, w * scale), order=3, mode="reflect", anti_aliasing=False).astype(
        np.float32
    )


def robust_weights(aligned: np.ndarray, sigma: float, k: float = 3.0) -> np.ndarray:
    """Per-pixel weights (n, h, w) in (0, 1] from residuals to the median of ``aligned``
    (n, h, w, C)."""
    med = np.median(aligned, axis=0)
    r2 = np.mean((aligned - med[None]) ** 2, axis=-1)
    s = max(float(sigma), 1.0 / 255.0) * k
    wgt = np.exp(-0.5 * r2 / s**2)
    wgt[0] = 1.0  # the reference always counts
    return wgt.astype(np.float32)


def _splat(
    values: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    shape: tuple[int, int],
    num: np.ndarray,
    den: np.ndarray,
) -> None:
    """Bilinear splat of samples at float HR positions into ``num`` (H,W,C) and ``den`` (H,W)."""
    H, W = shape
    r0 = np.floor(rows).astype(np.int64)
    c0 = np.floor(cols).astype(np.int64)
    fr, fc = rows - r0, cols - c0
    for dr, dc, wk in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        rr, cc = r0 + dr, c0 + dc
        ok = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
        idx = rr[ok] * W + cc[ok]
        ww = (wk * weights)[ok]
        np.add.at(den.reshape(-1), idx, ww)
        for ch in range(values.shape[-1]):
            np.add.at(num[..., ch].reshape(-1), idx, ww * values[..., ch][ok])


def shift_and_add(
    frames: np.ndarray,
    flows: np.ndarray,
    weights: np.ndarray,
    scale: int,
    sigma: float | None = None,
) -> np.ndarray:
    """Multi-frame super-resolution by normalised convolution.

    Parameters
    ----------
    frames : (n, h, w, C); flows : (n, h, w, 2) (alignment convention); weights : (n, h, w).
    scale : integer HR factor. sigma : Gaussian width in HR pixels (default
        ``0.45 * scale * n ** -0.2``: more frames, denser samples, less smoothing).

    Returns
    -------
    (h * scale, w * scale, C) float32; HR pixels without support fall back to bicubic.
    """
    n, h, w, C = frames.shape
    H, W = h * scale, w * scale
    num = np.zeros((H, W, C), np.float64)
    den = np.zeros((H, W), np.float64)
    rr, cc = np.meshgrid(
        np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij"
    )
    off = (scale - 1) / 2.0
    for i in range(n):
        # frame pixel q shows the reference position q - flow(q) (translation: q + d)
        pr = scale * (rr - flows[i, ..., 0]) + off
        pc = scale * (cc - flows[i, ..., 1]) + off
        _splat(
            frames[i].astype(np.float64), weights[i].astype(np.float64), pr, pc, (H, W), num, den
        )
    s = 0.45 * scale * n**-0.2 if sigma is None else float(sigma)
    if s > 0:
        num = np.stack(
            [ndimage.gaussian_filter(num[..., ch], s, mode="mirror") for ch in range(C)], axis=-1
        )
        den = ndimage.gaussian_filter(den, s, mode="mirror")
    eps = 1e-3 * max(float(den.max()), 1e-12)
    base = None
    out = np.empty((H, W, C), np.float32)
    good = den > eps
    out[good] = (num[good] / den[good][:, None]).astype(np.float32)
    if not good.all():
        base = _bicubic(frames[0], scale)
        out[~good] = base[~good]
    return out


def restore_classical(
    frames: np.ndarray,
    scale: int = 4,
    *,
    align: str = "phase",
    merge: str = "mean",
    upsample: str = "kernel",
    robust_k: float = 3.0,
    kernel_sigma: float | None = None,
    flow_method: str = "ilk",
    flows: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Restore a burst: align, merge, upsample.

    Parameters
    ----------
    frames : (n, h, w, 3) float32 in [0, 1], frame 0 the reference.
    scale : HR factor (1 = denoising only).
    align : ``none`` | ``phase`` | ``flow``; ignored when ``flows`` is given.
    merge : ``mean`` | ``robust``.
    upsample : ``kernel`` (shift-and-add) | ``bicubic`` (merge on the LR grid, then resize).

    Returns
    -------
    (h * scale, w * scale, 3) float32 in [0, 1].
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise InputError(f"expected frames of shape (n, h, w, C), got {frames.shape}")
    if merge not in MERGES:
        raise InputError(f"unknown merge {merge!r}; use one of {', '.join(MERGES)}")
    if upsample not in UPSAMPLERS:
        raise InputError(f"unknown upsampling {upsample!r}; use one of {', '.join(UPSAMPLERS)}")
    scale = int(scale)
    if flows is None:
        flows = _align(
            frames, align, flow_method=flow_method, progress=sub_progress(progress, 0, 0.7)
        )
    n = frames.shape[0]
    need_warp = merge == "robust" or upsample == "bicubic" or scale == 1
    aligned = (
        np.stack([warp(frames[i], flows[i]) if i else frames[0] for i in range(n)])
        if need_warp
        else None
    )
    if merge == "robust" and n > 2:
        wts = robust_weights(aligned, estimate_noise(frames[0]), robust_k)
    else:
        wts = np.ones(frames.shape[:3], np.float32)
    report(progress, 0.8, "merging")
    if upsample == "bicubic" or scale == 1:
        merged = (aligned * wts[..., None]).sum(0) / wts.sum(0)[..., None]
        out = merged if scale == 1 else _bicubic(merged, scale)
    else:
        # the robust weights live on the reference grid; carry them back to each frame's pixels
        fw = (
            np.stack(
                [warp(wts[i][..., None], -flows[i])[..., 0] if i else wts[0] for i in range(n)]
            )
            if merge == "robust" and n > 2
            else wts
        )
        out = shift_and_add(frames, flows, fw, scale, kernel_sigma)
    report(progress, 1.0, "merged")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def sharpen(img: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp masking ``img + amount * (img - G_sigma * img)`` clipped to [0, 1].

    The classical restorer's perception knob: ``amount = 0`` is the merge (lowest distortion),
    larger amounts restore high-frequency energy (more natural statistics, more distortion) -- the
    analogue of the toy model's gain and of network interpolation.
    """
    a = np.asarray(img, dtype=np.float32)
    blur = np.stack(
        [ndimage.gaussian_filter(a[..., c], sigma, mode="mirror") for c in range(a.shape[-1])],
        axis=-1,
    )
    return np.clip(a + float(amount) * (a - blur), 0.0, 1.0).astype(np.float32)
