"""Image-quality metrics: RMSE, PSNR, SSIM (full reference); NIQE and BRISQUE (no reference).

NIQE (Mittal, Soundararajan & Bovik 2013) follows the authors' MATLAB release
(``computequality.m``, as re-implemented by BasicSR): 96x96 blocks without overlap, 7x7 Gaussian
window (sigma 7/6, ``imfilter(..., 'replicate')``), MSCN with ``+1`` in the denominator, 18 AGGD
features per block at two scales (the second after MATLAB ``imresize(im, 0.5)``: bicubic with
anti-aliasing, see :func:`imresize_matlab`), a multivariate Gaussian fitted to the blocks and
compared
with the pristine model ``niqe_pris_params.npz`` from the model store. Input is the MATLAB Y channel
(``rgb2ycbcr``, BasicSR's default) or ``rgb2gray`` (the original script), rounded like uint8 images.

BRISQUE (Mittal, Moorthy & Bovik 2012) follows ``brisque_feature.m`` / ``brisquescore.m``: 36
features (GGD of the MSCN coefficients + AGGD of four pairwise products, two scales, ``filter2``
zero-padded correlation), scaled with the published ranges (``allrange``) to [-1, 1] and fed to the
published epsilon-SVR (RBF kernel, ``allmodel``) evaluated here in numpy. The SVR and the ranges are
the files bundled with the PyPI package ``brisque`` 0.2.0 (``brisque/models/svm.txt`` and
``normalize.pickle``), registered in the model store as ``brisque-svm`` and ``brisque-range``.

LPIPS (AlexNet, v0.1) runs :class:`sempix.nets.lpips.LPIPS` with the store's ``alexnet``
(torchvision)
and ``lpips-alex`` weights, downloads for users who can reach them.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import gamma as _gamma

from sempix.errors import InputError, SempixError

# --------------------------------------------------------------------------------- full reference


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def rmse(x: np.ndarray, y: np.ndarray, *, border: int = 0) -> float:
    """Root-mean-square error of two images in [0, 1] (``border`` pixels cropped on each side)."""
    a, b = _check_pair(x, y)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return float(np.sqrt(np.mean((a - b) ** 2)))


def psnr(x: np.ndarray, y: np.ndarray, *, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    e = rmse(x, y, border=border)
    return float("inf") if e == 0 else float(20 * np.log10(1.0 / e))


def ssim(x: np.ndarray, y: np.ndarray, *, border: int = 0) -> float:
    """SSIM (``skimage.metrics.structural_similarity``, Gaussian window as in Wang et al.)."""
    from skimage.metrics import structural_similarity

    a, b = _check_pair(x, y)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    kw = {"channel_axis": -1} if a.ndim == 3 else {}
    return float(
        structural_similarity(
            a,
            b,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            **kw,
        )
    )


# ------------------------------------------------------------------------ MATLAB-compatible helpers


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_len, P) and 0-based indices (out_len, P) of MATLAB's imresize (bicubic)."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = math.ceil(kernel_width) + 2
    ind = left[:, None] + np.arange(p)[None, :]
    dist = u[:, None] - ind
    if scale < 1 and antialias:
        weights = scale * _cubic(dist * scale)
    else:
        weights = _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric padding
    ind = aux[np.mod(ind.astype(np.int64) - 1, aux.size)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], ind[:, keep]


def imresize_matlab(img: np.ndarray, scale: float, *, antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` with the default bicubic kernel (double precision).

    img (h, w) or (h, w, C) float; output size ``ceil(h * scale), ceil(w * scale)``.
    """
    a = np.asarray(img, dtype=np.float64)
    squeeze = a.ndim == 2
    if squeeze:
        a = a[..., None]
    h, w = a.shape[:2]
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    wh, ih = _contributions(h, oh, scale, antialias)
    a = np.einsum("op,opwc->owc", wh, a[ih])
    ww, iw = _contributions(w, ow, scale, antialias)
    a = np.einsum("op,hopc->hoc", ww, a[:, iw])
    return a[..., 0] if squeeze else a


def _to_255(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    if a.max(initial=0) <= 1.0 + 1e-6:
        a = a * 255.0
    return a


def to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` Y of an RGB image in [0, 1] (or [0, 255]), as [16, 235] float,
    rounded."""
    a = _to_255(img)
    if a.ndim == 2:
        return np.round(a)
    y = 16.0 + (a[..., :3] / 255.0) @ np.array([65.481, 128.553, 24.966])
    return np.round(y)


def to_gray_matlab(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of an 8-bit image (rounded like uint8), [0, 255] float."""
    a = np.round(_to_255(img))
    if a.ndim == 2:
        return a
    return np.round(
        a[..., :3] @ np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    )


def _luma(img: np.ndarray, convert: str) -> np.ndarray:
    if convert == "y":
        return to_y(img)
    if convert == "gray":
        return to_gray_matlab(img)
    raise InputError(f"unknown conversion {convert!r}; use y or gray")


# ------------------------------------------------------------------------------------ AGGD / GGD

_GAM = np.arange(0.2, 10.001, 0.001)
_R_AGGD = _gamma(2 / _GAM) ** 2 / (_gamma(1 / _GAM) * _gamma(3 / _GAM))
_R_GGD = _gamma(1 / _GAM) * _gamma(3 / _GAM) / _gamma(2 / _GAM) ** 2


def aggd_params(vec: np.ndarray) -> tuple[float, float, float]:
    """``estimateaggdparam.m``: (alpha, left std, right std) of an asymmetric GGD."""
    v = np.asarray(vec, dtype=np.float64).ravel()
    left = np.sqrt(np.mean(v[v < 0] ** 2)) if np.any(v < 0) else 0.0
    right = np.sqrt(np.mean(v[v > 0] ** 2)) if np.any(v > 0) else 0.0
    ms = np.mean(v**2)
    if right == 0 or ms == 0:
        return float("nan"), float(left), float(right)
    gh = left / right
    rhat = np.mean(np.abs(v)) ** 2 / ms
    rn = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    alpha = _GAM[np.argmin((_R_AGGD - rn) ** 2)]
    return float(alpha), float(left), float(right)


def ggd_params(vec: np.ndarray) -> tuple[float, float]:
    """``estimateggdparam.m``: (alpha, sigma) of a generalised Gaussian."""
    v = np.asarray(vec, dtype=np.float64).ravel()
    s2 = np.mean(v**2)
    e = np.mean(np.abs(v))
    if e == 0:
        return float("nan"), 0.0
    rho = s2 / e**2
    return float(_GAM[np.argmin(np.abs(rho - _R_GGD))]), float(np.sqrt(s2))


# ------------------------------------------------------------------------------------------ NIQE


@dataclass(frozen=True)
class NiqeModel:
    """Pristine multivariate Gaussian: mu (36,), cov (36, 36), window (7, 7)."""

    mu: np.ndarray
    cov: np.ndarray
    window: np.ndarray


@lru_cache(maxsize=4)
def load_niqe_model(path: str | None = None) -> NiqeModel:
    """Load ``niqe_pris_params.npz`` (model store name ``niqe-pris-params`` or a path)."""
    from sempix.models import get_model_path

    p = Path(path) if path else get_model_path("niqe-pris-params")
    try:
        with np.load(p, allow_pickle=False) as d:
            return NiqeModel(
                np.asarray(d["mu_pris_param"], np.float64).ravel(),
                np.asarray(d["cov_pris_param"], np.float64),
                np.asarray(d["gaussian_window"], np.float64),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise SempixError(f"{p}: not a NIQE parameter file ({exc})") from None


def _niqe_block_features(block: np.ndarray) -> list[float]:
    alpha, bl, br = aggd_params(block)
    sc = math.sqrt(_gamma(1 / alpha) / _gamma(3 / alpha)) if np.isfinite(alpha) else float("nan")
    feat = [alpha, (bl * sc + br * sc) / 2]
    for sh in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        pair = block * np.roll(block, sh, axis=(0, 1))
        alpha, bl, br = aggd_params(pair)
        if np.isfinite(alpha):
            sc = math.sqrt(_gamma(1 / alpha) / _gamma(3 / alpha))
            bl, br = bl * sc, br * sc
            mean = (br - bl) * (_gamma(2 / alpha) / _gamma(1 / alpha))
        else:
            mean = float("nan")
        feat += [alpha, mean, bl, br]
    return feat


def _mscn(img: np.ndarray, window: np.ndarray, mode: str) -> np.ndarray:
    if mode == "replicate":
        mu = ndimage.correlate(img, window, mode="nearest")
        s2 = ndimage.correlate(img * img, window, mode="nearest")
    else:  # filter2(..., 'same'): zero padding
        mu = ndimage.correlate(img, window, mode="constant", cval=0.0)
        s2 = ndimage.correlate(img * img, window, mode="constant", cval=0.0)
    sigma = np.sqrt(np.abs(s2 - mu * mu))
    return (img - mu) / (sigma + 1.0)


def niqe_features(
    img: np.ndarray, *, convert: str = "y", block: int = 96, model: NiqeModel | None = None
) -> np.ndarray:
    """NIQE block features (nblocks, 36) of one image (RGB in [0, 1] or a luma plane in [0,
    255])."""
    model = model or load_niqe_model()
    im = _luma(img, convert) if np.asarray(img).ndim == 3 else np.round(_to_255(img))
    h, w = im.shape
    nh, nw = h // block, w // block
    if nh == 0 or nw == 0:
        raise InputError(f"NIQE needs an image of at least {block}x{block} pixels, got {w}x{h}")
    im = im[: nh * block, : nw * block]
    per_scale = []
    for scale in (1, 2):
        s = _mscn(im, model.window, "replicate")
        bs = block // scale
        feats = [
            _niqe_block_features(s[r * bs : (r + 1) * bs, c * bs : (c + 1) * bs])
            for c in range(nw)
            for r in range(nh)
        ]
        per_scale.append(np.asarray(feats))
        if scale == 1:
            im = imresize_matlab(im / 255.0, 0.5) * 255.0
    return np.concatenate(per_scale, axis=1)


def niqe_from_features(feats: np.ndarray, model: NiqeModel | None = None) -> float:
    """NIQE distance of the MVG fitted to block features (nblocks, 36) from the pristine model."""
    model = model or load_niqe_model()
    f = np.asarray(feats, dtype=np.float64)
    mu = np.nanmean(f, axis=0)
    ok = f[~np.isnan(f).any(axis=1)]
    cov = np.cov(ok, rowvar=False) if ok.shape[0] > 1 else np.zeros_like(model.cov)
    d = model.mu - mu
    q = d @ np.linalg.pinv((model.cov + cov) / 2) @ d
    return float(np.sqrt(max(q, 0.0)))


def niqe(
    img: np.ndarray, *, convert: str = "y", border: int = 0, model: NiqeModel | None = None
) -> float:
    """NIQE of one image (lower = more natural). img (H, W, 3) in [0, 1]; >= 96x96 after
    ``border``."""
    a = np.asarray(img)
    if border:
        a = a[border:-border, border:-border]
    return niqe_from_features(niqe_features(a, convert=convert, model=model), model)


def niqe_pooled(images, *, convert: str = "y", model: NiqeModel | None = None) -> float:
    """NIQE of a set of images: one MVG fitted to the blocks of all of them.

    Small images (e.g. 128x128 crops hold one 96x96 block) have too few blocks for a covariance of
    their own; pooling is how NIQE is used for a test set of small crops here.
    """
    feats = [niqe_features(im, convert=convert, model=model) for im in images]
    return niqe_from_features(np.concatenate(feats, axis=0), model)


# --------------------------------------------------------------------------------------- BRISQUE


@dataclass(frozen=True)
class BrisqueModel:
    """epsilon-SVR with RBF kernel: support vectors (m, 36), coefficients (m,), gamma, rho,
    ranges."""

    sv: np.ndarray
    coef: np.ndarray
    gamma: float
    rho: float
    lo: np.ndarray
    hi: np.ndarray


class _RangeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a range file")


def parse_libsvm_model(
    text: str, n_features: int = 36
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Parse a LIBSVM text model (RBF epsilon-SVR): (sv, coef, gamma, rho)."""
    header: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines) and lines[i].strip() != "SV":
        k, _, v = lines[i].partition(" ")
        header[k] = v.strip()
        i += 1
    if header.get("kernel_type") != "rbf" or "gamma" not in header or "rho" not in header:
        raise SempixError("BRISQUE model: expected a LIBSVM RBF model with gamma and rho")
    coefs, svs = [], []
    for line in lines[i + 1 :]:
        parts = line.split()
        if not parts:
            continue
        coefs.append(float(parts[0]))
        row = np.zeros(n_features)
        for tok in parts[1:]:
            k, _, v = tok.partition(":")
            row[int(k) - 1] = float(v)
        svs.append(row)
    return (
        np.asarray(svs),
        np.asarray(coefs),
        float(header["gamma"]),
        float(header["rho"].split()[0]),
    )


@lru_cache(maxsize=4)
def load_brisque_model(svm: str | None = None, ranges: str | None = None) -> BrisqueModel:
    """Load the BRISQUE SVR (``brisque-svm``) and feature ranges (``brisque-range``)."""
    from sempix.models import get_model_path

    svm_p = Path(svm) if svm else get_model_path("brisque-svm")
    rng_p = Path(ranges) if ranges else get_model_path("brisque-range")
    sv, coef, g, rho = parse_libsvm_model(svm_p.read_text())
    with open(rng_p, "rb") as f:
        d = _RangeUnpickler(f).load()
    lo = np.asarray(d["min_"], np.float64)
    hi = np.asarray(d["max_"], np.float64)
    return BrisqueModel(sv, coef, g, rho, lo, hi)


def brisque_features(img: np.ndarray, *, convert: str = "gray") -> np.ndarray:
    """The 36 BRISQUE features of one image (``brisque_feature.m``)."""
    im = _luma(img, convert) if np.asarray(img).ndim == 3 else np.round(_to_255(img))
    x = np.arange(7) - 3
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    win = g / g.sum()
    feat: list[float] = []
    for scale in (1, 2):
        s = _mscn(im, win, "zero")
        alpha, sigma = ggd_params(s)
        feat += [alpha, sigma**2]
        for sh in ((0, 1), (1, 0), (1, 1), (-1, 1)):
            pair = s * np.roll(s, sh, axis=(0, 1))
            a, ls, rs = aggd_params(pair)
            const = math.sqrt(_gamma(1 / a)) / math.sqrt(_gamma(3 / a))
            mean = (rs - ls) * (_gamma(2 / a) / _gamma(1 / a)) * const
            feat += [a, mean, ls**2, rs**2]
        if scale == 1:
            im = imresize_matlab(im, 0.5)
    return np.asarray(feat)


def brisque(img: np.ndarray, *, convert: str = "gray", model: BrisqueModel | None = None) -> float:
    """BRISQUE score of one image (lower = better; ~0-100). img (H, W, 3) in [0, 1]."""
    model = model or load_brisque_model()
    f = brisque_features(img, convert=convert)
    z = -1.0 + 2.0 * (f - model.lo) / (model.hi - model.lo)
    k = np.exp(-model.gamma * np.sum((model.sv - z[None]) ** 2, axis=1))
    return float(k @ model.coef - model.rho)


# ----------------------------------------------------------------------------------------- LPIPS


def load_lpips(device: str = "cpu", *, alexnet: str | None = None, lin: str | None = None):
    """LPIPS-Alex with weights from the model store (``alexnet`` and ``lpips-alex``; downloads for
    users, not shipped). Raises ModelUnavailableError when they cannot be found or fetched."""
    import torch

    from sempix.models import get_model_path
    from sempix.nets.lpips import LPIPS

    a = torch.load(
        Path(alexnet) if alexnet else get_model_path("alexnet"),
        map_location="cpu",
        weights_only=True,
    )
    b = torch.load(
        Path(lin) if lin else get_model_path("lpips-alex"), map_location="cpu", weights_only=True
    )
    net = LPIPS()
    net.load_weights(a, b)
    return net.to(device)


def lpips(x: np.ndarray, y: np.ndarray, net=None) -> float:
    """LPIPS distance of two (H, W, 3) images in [0, 1] (lower = more similar)."""
    import torch

    a, b = _check_pair(x, y)
    net = net if net is not None else load_lpips()
    dev = next(net.parameters()).device
    ta = torch.from_numpy(a.transpose(2, 0, 1)[None].astype(np.float32)).to(dev)
    tb = torch.from_numpy(b.transpose(2, 0, 1)[None].astype(np.float32)).to(dev)
    with torch.no_grad():
        return float(net(ta, tb)[0])
