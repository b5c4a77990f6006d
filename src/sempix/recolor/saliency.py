"""Salient-object maps for saliency-guided recolouring.

Built-in backend ``"rbd"`` (works everywhere, no model file): *robust background detection* of
Zhu, Liang, Wei & Sun (CVPR 2014) on SLIC superpixels of a downsized copy (longest side 200 px):

1. superpixel graph (adjacent superpixels, plus all image-border superpixels linked to each other),
   edge weight = Lab distance of the mean colours; geodesic distances by Dijkstra;
2. boundary connectivity ``BndCon(p) = Len_bnd(p) / sqrt(Area(p))`` with soft area/length
   ``exp(-d_geo^2 / 2 sigma_clr^2)``, sigma_clr = 10, giving a background probability
   ``w_bg = 1 - exp(-BndCon^2 / 2)``;
3. background-weighted colour contrast ``wCtr(p) = sum_q d_lab(p,q) exp(-d_xy^2 / 2*0.25^2)
  w_bg(q)``;
4. the least-squares saliency optimisation
   ``min sum w_bg s^2 + sum wCtr (1 - s)^2 + sum_adjacent w_ij (s_i - s_j)^2``.

Semantic prior (``semantic=True``, default when the ADE20K backend is available): the share of each
superpixel's pixels that the ADE20K network labels as a *thing* class (person, car, animal, flower,
furniture..., i.e. not one of the *stuff* classes in :data:`STUFF_CLASSES`) raises the foreground
term of step 4: ``w_fg = wCtr * (1 + alpha * thing_share)`` with alpha = 2, and the result is
blended ``s = (1 - beta) s + beta * thing_share * s_max`` with beta = 0.25.

Learned backend ``"u2netp"``: the U^2-Net-p salient-object detector (Qin et al. 2020, Apache-2.0)
as the ONNX file of the model store entry ``u2netp`` (``u2netp.onnx``, exported by rembg), run with
onnxruntime. Pre-processing as in U^2-Net/rembg: resize to 320x320 (Lanczos), divide by the maximum,
ImageNet mean/std per channel, NCHW float32; the first output (1, 1, 320, 320) is min-max normalised
and resized back to the image (bilinear). The file is not shipped; ``get_model_path`` finds it in
``$SEMPIX_MODEL_DIR``/the cache or downloads it (checksum verified), else a one-line
:class:`~sempix.errors.ModelUnavailableError` says where to put it. ``"auto"`` uses ``u2netp`` when
its file and onnxruntime are present locally (never downloads) and otherwise ``rbd`` with one
warning line.

Callers that pass no ``backend`` get the backend chosen with :func:`use_backend` (a context
variable; ``"rbd"`` by default); the CLI, the web API and the recolor core pass it explicitly.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from sempix._runtime import warn_once
from sempix.color import srgb_to_lab
from sempix.errors import InputError, ModelUnavailableError
from sempix.ops.resample import resize
from sempix.progress import ProgressFn, report

log = logging.getLogger(__name__)

SALIENCY_THRESHOLD = 0.9

#: Names accepted by :func:`compute_saliency` / :func:`use_backend`.
SALIENCY_BACKENDS = ("rbd", "u2netp", "auto")
U2NETP_MODEL = "u2netp"  # model store name
U2NETP_SIZE = 320
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

_default: ContextVar[tuple[str, str | None]] = ContextVar(
    "sempix_saliency_backend", default=("rbd", None)
)

# ADE20K classes treated as background "stuff"; everything else (except "others") is a "thing".
STUFF_CLASSES = frozenset([
    "others", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "grass", "sidewalk",
    "earth", "mountain", "plant", "water", "sea", "field", "fence", "rock", "sand", "skyscraper",
    "path", "stairs", "runway", "river", "bridge", "hill", "dirt", "land", "lake", "house",
    "windowpane", "curtain", "rug", "railing", "column", "grandstand", "stairway", "blind",
    "hovel", "tower", "awning", "canopy", "waterfall", "step", "pier", "palm", "escalator",
    "bannister", "floor,flooring", "pool", "swimming", "base",
])


@dataclass
class SaliencyMap:
    """A saliency map.

    Attributes
    ----------
    saliency : (H, W) float32 in [0, 1].
    backend : ``"rbd"``, ``"rbd+ade20k"`` or ``"u2netp"``.
    meta : extra information (e.g. the share of "thing" pixels, the model file).
    """

    saliency: np.ndarray
    backend: str
    meta: dict = field(default_factory=dict)


def _downsize(img: np.ndarray, max_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return img
    return np.clip(resize(img, (max(8, round(h * s)), max(8, round(w * s)))), 0.0, 1.0)


def thing_mask(labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """(H, W) bool: pixels whose ADE20K label is a "thing" class (not in :data:`STUFF_CLASSES`)."""
    is_thing = np.array(
        [
            (n.split(",")[0].split()[0].lower() if n else "others") not in STUFF_CLASSES
            for n in class_names
        ],
        bool,
    )
    lab = np.clip(labels, 0, len(class_names) - 1)
    return is_thing[lab]


def _rbd(
    small: np.ndarray, prior: np.ndarray | None, alpha: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    from skimage.segmentation import slic

    h, w = small.shape[:2]
    seg = slic(small, n_segments=250, compactness=10, start_label=0, channel_axis=-1)
    _, seg = np.unique(seg, return_inverse=True)
    seg = seg.reshape(h, w)
    n = int(seg.max()) + 1
    lab = srgb_to_lab(small).reshape(-1, 3).astype(np.float64)
    flat = seg.reshape(-1)
    cnt = np.bincount(flat, minlength=n).astype(np.float64)
    col = (
        np.stack([np.bincount(flat, weights=lab[:, c], minlength=n) for c in range(3)], 1)
        / cnt[:, None]
    )
    yy, xx = np.mgrid[0:h, 0:w]
    scale = float(max(h, w))
    pos = (
        np.stack(
            [
                np.bincount(flat, weights=(yy.reshape(-1) / scale), minlength=n),
                np.bincount(flat, weights=(xx.reshape(-1) / scale), minlength=n),
            ],
            1,
        )
        / cnt[:, None]
    )
    border = np.zeros(n, bool)
    border[np.unique(np.concatenate([seg[0], seg[-1], seg[:, 0], seg[:, -1]]))] = True
    # adjacency
    a = np.concatenate([seg[:, :-1].ravel(), seg[:-1, :].ravel()])
    b = np.concatenate([seg[:, 1:].ravel(), seg[1:, :].ravel()])
    m = a != b
    pairs = np.unique(np.sort(np.stack([a[m], b[m]], 1), axis=1), axis=0)
    bidx = np.flatnonzero(border)
    bpairs = np.array(
        [(i, j) for ii, i in enumerate(bidx) for j in bidx[ii + 1 :]], np.int64
    ).reshape(-1, 2)
    allp = np.unique(np.concatenate([pairs, bpairs]), axis=0) if len(bpairs) else pairs
    dcol = np.linalg.norm(col[allp[:, 0]] - col[allp[:, 1]], axis=1) + 1e-6
    graph = coo_matrix((dcol, (allp[:, 0], allp[:, 1])), shape=(n, n)).tocsr()
    geo = dijkstra(graph, directed=False)
    geo[~np.isfinite(geo)] = 1e6
    sig_clr = 10.0
    sim = np.exp(-(geo**2) / (2 * sig_clr**2))
    area = sim.sum(1)
    len_bnd = sim[:, border].sum(1)
    bndcon = len_bnd / np.sqrt(area)
    w_bg = 1 - np.exp(-(bndcon**2) / 2.0)
    d_app = np.linalg.norm(col[:, None] - col[None], axis=-1)
    d_spa = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    w_spa = np.exp(-(d_spa**2) / (2 * 0.25**2))
    wctr = (d_app * w_spa * w_bg[None, :]).sum(1)
    wctr = wctr / (wctr.max() + 1e-12)
    thing = None
    if prior is not None:
        thing = np.bincount(flat, weights=prior.reshape(-1).astype(np.float64), minlength=n) / cnt
        wctr = wctr * (1 + alpha * thing)
    # optimisation
    wij = (
        np.exp(
            -(np.linalg.norm(col[pairs[:, 0]] - col[pairs[:, 1]], axis=1) ** 2) / (2 * sig_clr**2)
        )
        + 0.1
    )
    from scipy.sparse import diags
    from scipy.sparse.linalg import spsolve

    lap = coo_matrix(
        (
            np.concatenate([-wij, -wij]),
            (
                np.concatenate([pairs[:, 0], pairs[:, 1]]),
                np.concatenate([pairs[:, 1], pairs[:, 0]]),
            ),
        ),
        shape=(n, n),
    ).tocsr()
    deg = -np.asarray(lap.sum(1)).ravel()
    A = (lap + diags(deg + w_bg + wctr + 1e-9)).tocsc()
    s = spsolve(A, wctr)
    s = (s - s.min()) / (s.max() - s.min() + 1e-12)
    if thing is not None:
        s = 0.75 * s + 0.25 * thing * s.max()
        s = (s - s.min()) / (s.max() - s.min() + 1e-12)
    return s[seg].astype(np.float32), seg


def semantic_labels(
    image: np.ndarray, backend: str = "ade20k"
) -> tuple[np.ndarray, list[str]] | None:
    """ADE20K labels ``(labels (H, W) int32, class_names)`` from the feature backend, or None.

    None when the backend is ``"none"``/``"lowlevel"``, not semantic, or not available (logged).
    """
    if backend in (None, "none", "lowlevel"):
        return None
    try:
        from sempix.features import compute_features

        fm = compute_features(image, backend)
    except ImportError:
        log.warning("semantic features are not available in this build; continuing without them")
        return None
    if not getattr(fm, "semantic", False) or fm.labels is None or fm.class_names is None:
        return None
    return np.asarray(fm.labels), list(fm.class_names)


def _check_backend(backend: str) -> str:
    if backend not in SALIENCY_BACKENDS:
        raise InputError(
            f"unknown saliency backend {backend!r} (available: {', '.join(SALIENCY_BACKENDS)})"
        )
    return backend


def default_backend() -> tuple[str, str | None]:
    """``(backend, model path or None)`` used when :func:`compute_saliency` gets no ``backend``."""
    return _default.get()


@contextlib.contextmanager
def use_backend(backend: str, model: str | os.PathLike | None = None) -> Iterator[None]:
    """Make ``backend`` (and an explicit ``model`` file) the default inside a ``with`` block.

    Parameters
    ----------
    backend : one of :data:`SALIENCY_BACKENDS`.
    model : explicit ``u2netp`` ONNX file (or a folder holding ``u2netp.onnx``); None = model store.
    """
    token = _default.set((_check_backend(backend), None if model is None else str(model)))
    try:
        yield
    finally:
        _default.reset(token)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ModelUnavailableError(
            "the u2netp saliency backend needs onnxruntime: pip install onnxruntime "
            "(or use the built-in rbd backend)"
        ) from None
    return onnxruntime


def u2netp_path(
    model: str | os.PathLike | None = None, *, download: bool = True, progress: bool = True
) -> Path:
    """Resolve the ``u2netp`` ONNX file (explicit file/folder, model dirs, cache, download).

    ``progress``: show the model store's download bar (stderr) if a download happens.

    Raises
    ------
    ModelUnavailableError
        onnxruntime missing, or the file is not available (one line saying where to put it).
    """
    from sempix.models import get_model_path

    _onnxruntime()
    return Path(get_model_path(U2NETP_MODEL, model, download=download, progress=progress))


@functools.lru_cache(maxsize=2)
def _session(path: str, mtime_ns: int, size: int):
    """onnxruntime session for ``path`` (cached per file version); checks the I/O signature."""
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelUnavailableError(
            f"{path}: not a usable u2netp ONNX model ({first}); "
            f"delete it and run `sempix models fetch {U2NETP_MODEL}`"
        ) from None
    inp = sess.get_inputs()
    shape = list(inp[0].shape) if inp else []
    # symbolic (str/None) dimensions are accepted; fixed ones must be 3 channels and 320x320
    if (
        len(inp) != 1
        or len(shape) != 4
        or (isinstance(shape[1], int) and shape[1] != 3)
        or any(isinstance(d, int) and d != U2NETP_SIZE for d in shape[2:])
    ):
        raise ModelUnavailableError(
            f"{path}: expected one 1x3x{U2NETP_SIZE}x{U2NETP_SIZE} input, got "
            f"{[(i.name, i.shape) for i in inp]}"
        )
    return sess


def u2netp_input(image: np.ndarray) -> np.ndarray:
    """U^2-Net/rembg pre-processing.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1].

    Returns
    -------
    (1, 3, 320, 320) float32: 8-bit copy resized to 320x320 (Lanczos), divided by its maximum,
    minus the ImageNet mean, divided by the ImageNet std, channels first.
    """
    from PIL import Image

    u8 = np.clip(np.rint(np.asarray(image, np.float32) * 255), 0, 255).astype(np.uint8)
    im = Image.fromarray(u8).resize((U2NETP_SIZE, U2NETP_SIZE), Image.LANCZOS)
    x = np.asarray(im, np.float32)
    x = x / max(float(x.max()), 1e-6)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


def _u2netp(img: np.ndarray, path: Path) -> np.ndarray:
    st = path.stat()
    sess = _session(str(path), st.st_mtime_ns, st.st_size)
    x = u2netp_input(img)
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    out = np.asarray(out, np.float32)
    if out.ndim != 4 or out.shape[:2] != (1, 1):
        raise ModelUnavailableError(
            f"{path}: first output has shape {out.shape}, expected (1, 1, H, W)"
        )
    pred = out[0, 0]
    lo, hi = float(pred.min()), float(pred.max())
    pred = (pred - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(pred)
    h, w = img.shape[:2]
    return np.clip(resize(pred, (h, w)), 0, 1)


def _auto_model(model: str | os.PathLike | None) -> Path | None:
    """The u2netp file for ``auto`` when it (and onnxruntime) are present locally, else None
    (warned)."""
    from sempix.models import find_local

    try:
        _onnxruntime()
    except ModelUnavailableError:
        warn_once(
            "saliency: onnxruntime is not installed; using the built-in rbd backend "
            "(pip install onnxruntime for u2netp)",
            logger=__name__,
        )
        return None
    if model is not None:
        try:
            return u2netp_path(model, download=False)
        except ModelUnavailableError as exc:
            warn_once(f"saliency: {exc}; using the built-in rbd backend", logger=__name__)
            return None
    found = find_local(U2NETP_MODEL)
    if found is None:
        warn_once(
            f"saliency: model {U2NETP_MODEL!r} not found locally; using the built-in rbd backend "
            f"(`sempix models fetch {U2NETP_MODEL}` to use the learned one)",
            logger=__name__,
        )
    return found


def resolve_backend(
    backend: str, model: str | os.PathLike | None = None, *, progress: bool = True
) -> tuple[str, Path | None]:
    """Turn a backend name into ``(concrete backend, u2netp file or None)``.

    ``"rbd"`` -> ``("rbd", None)``; ``"u2netp"`` -> ``("u2netp", path)`` (may download; raises
    :class:`ModelUnavailableError` when it cannot); ``"auto"`` -> u2netp when available locally,
    else ``("rbd", None)`` after one warning line (logged once per process and reason).
    """
    _check_backend(backend)
    if backend == "u2netp":
        return "u2netp", u2netp_path(model, progress=progress)
    if backend == "auto":
        path = _auto_model(model)
        return ("u2netp", path) if path is not None else ("rbd", None)
    return "rbd", None


def compute_saliency(
    image: np.ndarray,
    *,
    labels: tuple[np.ndarray, list[str]] | None = None,
    backend: str | None = None,
    model: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
) -> SaliencyMap:
    """Saliency map of an image.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1].
    labels : optional ``(labels (H, W) int, class_names)`` from an ADE20K feature map, used as the
        semantic "thing" prior of ``rbd`` (see :func:`semantic_labels`); ``u2netp`` does not use it.
    backend : ``"rbd"`` (built-in), ``"u2netp"`` (learned, model store; downloads when allowed) or
        ``"auto"`` (u2netp if its file and onnxruntime are present locally, else rbd with one
        warning); None = the :func:`use_backend` default (``"rbd"`` unless set). Other names raise
        :class:`InputError`.
    model : explicit u2netp ONNX file or folder (None = ``$SEMPIX_MODEL_DIR``, cache, download).

    Returns
    -------
    SaliencyMap with ``saliency`` (H, W) float32 in [0, 1].

    Raises
    ------
    ModelUnavailableError
        ``u2netp`` without onnxruntime or without an obtainable model file (one line).
    """
    if backend is None:
        backend, ctx_model = default_backend()
        model = ctx_model if model is None else model
    _check_backend(backend)
    img = np.asarray(image, np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError("saliency needs an (H, W, 3) RGB image")
    h, w = img.shape[:2]
    backend, path = resolve_backend(backend, model)
    if path is not None:
        report(progress, 0.2, "saliency (u2netp)")
        s = _u2netp(img, path)
        report(progress, 1.0, "saliency (u2netp)")
        return SaliencyMap(s.astype(np.float32), "u2netp", {"model": str(path)})
    small = _downsize(img, 200)
    prior = None
    meta: dict = {}
    if labels is not None:
        tm = thing_mask(*labels).astype(np.float32)
        prior = resize(tm, small.shape[:2]) if tm.shape != small.shape[:2] else tm
        meta["thing_share"] = float(tm.mean())
    report(progress, 0.2, "saliency")
    s_small, _ = _rbd(small, prior)
    s = np.clip(resize(s_small, (h, w)), 0, 1)
    report(progress, 1.0, "saliency")
    return SaliencyMap(s, "rbd+ade20k" if prior is not None else "rbd", meta)


def salient_mask(saliency: np.ndarray, threshold: float = SALIENCY_THRESHOLD) -> np.ndarray:
    """(H, W) bool: saliency > threshold (the paper's gamma = 0.9)."""
    return np.asarray(saliency) > threshold
