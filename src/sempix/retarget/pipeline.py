"""The retargeting pipeline behind :func:`sempix.retarget.retarget` (see the package doc)."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from sempix._runtime import BoundedCache, init_torch_threads
from sempix.errors import InputError, SempixError
from sempix.ops.validate import as_rgb
from sempix.progress import ProgressFn, report, sub_progress
from sempix.retarget.constants import (
    INITS,
    LAMBDA_NORMS,
    METHODS,
    PAPER_PERCENTILE,
    PROTECT_CLASSES,
    SHALLOW_PERCENTILE,
)
from sempix.retarget.deep import IMAGE, DeepPlan, plan
from sempix.retarget.reconstruct import (
    check_reconstruction_options,
    feature_loss,
    reconstruct,
    refine,
)
from sempix.retarget.vgg import PAPER_LAYERS, load_vgg, resolve_layers, to_image, to_tensor

log = logging.getLogger(__name__)


_NET_CACHE: BoundedCache = BoundedCache(maxsize=2, name="retarget.vgg")


def get_vgg(weights: str | None = None, device: str = "cpu"):
    """Load (once per process) the VGG-19 feature extractor; see
    :func:`sempix.retarget.vgg.load_vgg`."""

    def load():
        net = load_vgg(weights, device=device)
        if str(device) == "cpu":  # oneDNN convolutions are ~20% faster in NHWC on CPU
            net = net.to(memory_format=torch.channels_last)
        return net

    return _NET_CACHE.get_or_create((weights, str(device)), load)


@dataclass
class RetargetResult:
    """Output of :func:`retarget`.

    Attributes
    ----------
    image : (H', W', 3) float32 in [0, 1].
    method : method used.
    plans : deep plans of the width / height passes (``dnr``, ``multiop``, ``warp``), in order.
    losses : reconstruction loss per iteration (``dnr``), per pass concatenated.
    refine_losses : refinement loss per iteration (``dnr``).
    snapshots : list of (iteration, (H', W', 3) image) taken during reconstruction.
    meta : settings, layers used, timings (seconds).
    extra : the ``extra`` map of :func:`retarget`, resized like the image, or None.
    """

    image: np.ndarray
    method: str
    plans: list[DeepPlan] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    refine_losses: list[float] = field(default_factory=list)
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    extra: np.ndarray | None = None


def scale_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Linear scaling (bicubic, antialiased when shrinking) -> (height, width, C) float32."""
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32))[None]
    r = torch.nn.functional.interpolate(
        t, size=(height, width), mode="bicubic", align_corners=False, antialias=True
    )
    return np.ascontiguousarray(np.moveaxis(r[0].clamp(0, 1).numpy(), 0, -1), dtype=np.float32)


def _carve(
    image: np.ndarray,
    width: int,
    height: int,
    features: np.ndarray | None,
    lam: float,
    progress: ProgressFn | None,
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    from sempix.carve import carve

    res = carve(
        image,
        width,
        height,
        features=features,
        lam=lam,
        progress=progress,
        also=() if extra is None else (extra,),
    )
    out_extra = None if extra is None else np.asarray(res.also[0], dtype=np.float32)
    return np.asarray(res.image, dtype=np.float32), out_extra


def _check(image: np.ndarray) -> np.ndarray:
    img = as_rgb(image)
    if min(img.shape[:2]) < 8:
        raise InputError(
            f"image {img.shape[1]}x{img.shape[0]} is too small to retarget (at least 8x8)"
        )
    return img


def retarget(
    image: np.ndarray,
    width: int | None = None,
    height: int | None = None,
    *,
    method: str = "dnr",
    init: str = "scale",
    iterations: int = 50,
    refine_iterations: int = 10,
    lr: float = 0.05,
    refine_lr: float = 0.05,
    layers: tuple[str, ...] | list[str] = PAPER_LAYERS,
    lambdas: dict[str, float] | list[float] | None = None,
    alpha: float = 0.5,
    percentile: float | None = None,
    grid: int = 16,
    weights: str | None = None,
    device: str = "cpu",
    features: str | None = "ade20k",
    lam: float = 0.2,
    snapshot_every: int = 0,
    feature_interp: str = "cubic",
    lambda_norm: str = "none",
    hf_weight: float = 0.0,
    residual_scale: int = 1,
    chroma_scale: int = 1,
    extra: np.ndarray | None = None,
    protect: str | np.ndarray | None = "auto",
    protect_weight: float = 1.0,
    progress: ProgressFn | None = None,
) -> RetargetResult:
    """Resize ``image`` to ``width`` x ``height`` with one of :data:`METHODS`.

    Parameters
    ----------
    image : (H, W, 3) float32 RGB in [0, 1].
    width, height : target size in pixels (None = unchanged).
    method : ``dnr`` | ``multiop`` | ``seam`` | ``semantic-seam`` | ``scale`` | ``warp``.
    init : DNR's starting image: ``scale`` (linear scaling, the paper's default), ``seam`` (RGB seam
        carving) or ``multiop`` (the deep seams + warp applied to the pixels).
    iterations, lr : Adam steps / learning rate of the reconstruction.
    refine_iterations, refine_lr : Adam steps / learning rate (pixels) of the grid-sampler
        refinement
        (0 = no refinement).
    layers : VGG layers of the deep multi-operator (paper: relu1_2, relu2_2, relu3_4, relu4_4,
        pool5);
        layers missing from the weights are replaced by the deepest available one (one warning).
    lambdas : reconstruction weights per layer (dict, or list aligned with the resolved layers);
        default: the paper's lambda_1 = 1 for the shallowest layer, 0 for the others.
    alpha, percentile, grid : deep seam carving / warping parameters (paper: 0.5, 20, 16).
        ``percentile=None`` (default) = :func:`default_percentile`: the paper's 20 when the deepest
        layer
        used has a stride of at least 16 (the paper's pool5), 50 when the weights stop earlier
        (relu3_1 here): see docs/retarget.md, "Deep seam percentile".
    weights : VGG weights (model store name or path; None = full vgg19 if available, else the
        normalised
        network up to relu3_1).
    device : ``cpu`` or ``cuda``.
    features, lam : feature backend and lambda of ``semantic-seam``.
    snapshot_every : keep a reconstruction snapshot every N iterations (0 = none).
    feature_interp : column interpolation of the feature warp (``cubic``, ``linear``, ``nearest``).
    lambda_norm : ``none`` (the lambdas are used as given, the paper's form) or ``energy``: each
        layer's
        lambda is divided by the norm of its retargeted target ``||F'_i||`` and multiplied by that
        of the
        shallowest weighted layer, so every term is a relative error on the scale of the first one
        (a single-layer loss is unchanged).
    hf_weight : DNR only: weight of a high-frequency penalty in the reconstruction (0 = none, the
        paper's loss): the detail (image minus a ~1 px blur) of the result is pulled towards that
        of the starting image, so the optimisation does not invent fine texture; see
        :func:`sempix.retarget.reconstruct.reconstruct` and docs/retarget.md.
    residual_scale : DNR only: 1 (default) optimises the pixels; k > 1 optimises a residual at
        1/k resolution, upsampled and added to the starting image (only low frequencies change).
    chroma_scale : DNR only: 1 (default) = none; k > 1 optimises a YCbCr residual whose chroma is
        at 1/k of the luma's resolution (k = 2: no chroma detail finer than JPEG 4:2:0 keeps).
    extra : (H, W) map (e.g. alpha) resized with the same geometry -> ``result.extra``.
    protect : semantic protection of the deep methods (``dnr``, ``multiop``, ``warp``): ``"auto"``
        (default) = the ADE20K classes of :data:`PROTECT_CLASSES` (people, animals, vehicles) from
        the
        ``features`` backend, silently none when the image has none of them and one warning line
        when
        no semantic backend is available; a comma-separated list of ADE20K class names (an error
        when the backend is not available); an (H, W) map in [0, 1]; or ``None``/``"none"`` (the
        paper's importance only). See :func:`sempix.retarget.deep.protected_importance`.
    protect_weight : weight of the protection term (1 = a protected position counts as much as the
        most important unprotected one, on top of its own importance).
    progress : progress(fraction, message).

    Returns
    -------
    RetargetResult with ``image`` of shape (height, width, 3).
    """
    img = _check(image)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if feature_interp not in ("cubic", "linear", "nearest"):
        raise InputError(f"unknown feature_interp {feature_interp!r}; use cubic, linear or nearest")
    if init not in INITS:
        raise InputError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if lambda_norm not in LAMBDA_NORMS:
        raise InputError(
            f"unknown lambda_norm {lambda_norm!r}; use one of {', '.join(LAMBDA_NORMS)}"
        )
    hf_weight, residual_scale, chroma_scale = check_reconstruction_options(
        hf_weight, residual_scale, chroma_scale
    )
    if weights is not None and not os.path.exists(weights):
        raise InputError(f"{weights}: no such weights file (give a VGG-19 .pth state dict)")
    for name, v in (("lr", lr), ("refine_lr", refine_lr)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"the learning rate {name} must be a positive number (got {v})")
    h0, w0 = img.shape[:2]
    tw = w0 if width is None else int(width)
    th = h0 if height is None else int(height)
    if tw < 1 or th < 1:
        raise InputError(f"target size {tw}x{th} must be at least 1x1")
    if tw > 4 * w0 or th > 4 * h0:
        raise InputError(f"target {tw}x{th} is more than 4x the input {w0}x{h0}; resize in steps")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise InputError(f"unknown device {device!r}; use cpu or cuda")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda': no CUDA GPU is available to torch here; use device 'cpu'")
    init_torch_threads()
    t0 = time.perf_counter()
    meta: dict = {"method": method, "input": (h0, w0), "target": (th, tw)}
    result = RetargetResult(img, method, meta=meta)

    if extra is not None:
        extra = np.asarray(extra, dtype=np.float32)
        if extra.shape != (h0, w0):
            raise InputError(f"extra map has shape {extra.shape}, expected {(h0, w0)}")
    prot = None
    if method in ("dnr", "multiop", "warp"):
        prot = _protect_map(img, protect, features, meta, progress)
    if method == "scale":
        result.image = scale_image(img, tw, th)
        if extra is not None:
            result.extra = scale_image(extra[..., None], tw, th)[..., 0]
    elif method in ("seam", "semantic-seam"):
        feats = None
        if method == "semantic-seam":
            from sempix.features import compute_features

            fm = compute_features(
                img, features or "ade20k", progress=sub_progress(progress, 0.0, 0.3)
            )
            feats = fm.features
            meta["features"] = fm.backend
        l_ = lam if method == "semantic-seam" else 0.0
        result.image, result.extra = _carve(
            img,
            tw,
            th,
            feats,
            l_,
            sub_progress(progress, 0.3 if feats is not None else 0, 1),
            extra,
        )
    else:
        net = get_vgg(weights, device)
        used = resolve_layers(list(layers), net.depth)
        lam_map = _lambdas(used, lambdas)
        if percentile is None:
            percentile = default_percentile(used)
        elif not 0 <= float(percentile) <= 100:
            raise InputError(f"percentile {percentile} must be between 0 and 100")
        meta.update(
            layers=used, lambdas=lam_map, weights=net.fmt, deepest=net.depth, percentile=percentile
        )
        opts = PassOptions(
            method=method,
            init=init,
            iterations=iterations,
            refine_iterations=refine_iterations,
            lr=lr,
            refine_lr=refine_lr,
            alpha=alpha,
            percentile=percentile,
            grid=grid,
            device=device,
            snapshot_every=snapshot_every,
            feature_interp=feature_interp,
            lambda_norm=lambda_norm,
            protect_weight=protect_weight,
            hf_weight=hf_weight,
            residual_scale=residual_scale,
            chroma_scale=chroma_scale,
        )
        passes = [("width", tw)] if tw != w0 else []
        if th != h0:
            passes.append(("height", th))
        cur = img
        cur_extra = extra
        cur_prot = prot
        for k, (axis, target) in enumerate(passes):
            sp = sub_progress(progress, k / len(passes), (k + 1) / len(passes))
            work = cur if axis == "width" else np.ascontiguousarray(cur.transpose(1, 0, 2))
            wprot = None if cur_prot is None else _oriented(cur_prot, axis)
            po = _width_pass(
                net,
                work,
                target,
                used,
                lam_map,
                opts,
                transpose=(axis == "height"),
                protect=wprot,
                progress=sp,
            )
            _merge_pass(result, po)
            out = po.image
            cur = out if axis == "width" else np.ascontiguousarray(out.transpose(1, 0, 2))
            if cur_prot is not None and k + 1 < len(passes):
                cur_prot = _carry_map(cur_prot, result.plans[-1], axis)
            if cur_extra is not None:
                cur_extra = _carry_map(cur_extra, result.plans[-1], axis)
        result.image = cur
        result.extra = cur_extra
    if result.image.shape[:2] != (th, tw):
        raise SempixError(
            f"internal error: {method} produced {result.image.shape[:2]}, expected {(th, tw)}"
        )
    meta["seconds"] = time.perf_counter() - t0
    report(progress, 1.0, "done")
    return result


def _protect_map(
    img: np.ndarray, protect, features: str | None, meta: dict, progress: ProgressFn | None
) -> np.ndarray | None:
    """Resolve ``protect`` of :func:`retarget` to an (H, W) float32 map in [0, 1] or None."""
    h, w = img.shape[:2]
    if protect is None or (
        isinstance(protect, str) and protect.strip().lower() in ("none", "off", "")
    ):
        meta["protect"] = None
        return None
    if not isinstance(protect, str):
        m = np.asarray(protect, dtype=np.float32)
        if m.shape != (h, w):
            raise InputError(f"protect map has shape {m.shape}, expected {(h, w)}")
        meta["protect"] = {"classes": None, "share": float((m > 0.5).mean())}
        return np.clip(m, 0, 1)
    auto = protect.strip().lower() == "auto"
    names = list(PROTECT_CLASSES) if auto else [n.strip() for n in protect.split(",") if n.strip()]
    backend = features or "ade20k"
    if backend in ("none", "lowlevel"):
        if auto:
            meta["protect"] = None
            return None
        raise InputError(f"protect classes need a semantic feature backend, not {backend!r}")
    from sempix.features import compute_features, protect_mask

    fm = compute_features(img, backend, strict=not auto, progress=sub_progress(progress, 0.0, 0.02))
    if not getattr(fm, "semantic", False) or fm.labels is None:
        # the feature backend has already said (one warning line) that it fell back to non-semantic
        # features
        log.info(
            "retarget: no semantic labels (%s features); "
            "deep seams run without semantic protection",
            fm.backend,
        )
        meta["protect"] = {"classes": [], "share": 0.0, "backend": fm.backend, "unavailable": True}
        return None
    # the resolution is shared with carve (sempix.features.protect)
    mask, info = protect_mask(fm, "auto" if auto else names)
    meta["protect"] = {"classes": info["classes"], "share": info["share"], "backend": fm.backend,
                       "present": info.get("present", [])}
    return None if mask is None else mask.astype(np.float32)


def _oriented(m: np.ndarray, axis: str) -> np.ndarray:
    """An (H, W) map as the width pass sees it (transposed for a height pass)."""
    return m if axis == "width" else np.ascontiguousarray(m.T)


def _carry_map(m: np.ndarray, p: DeepPlan, axis: str) -> np.ndarray:
    """Resize an (H, W) map with the image-level geometry of one pass's plan, clipped to [0, 1]."""
    return _oriented(np.clip(p.apply(IMAGE, _oriented(m, axis)), 0, 1), axis)


def default_percentile(layers: list[str]) -> float:
    """Deep seam percentile for a resolved layer set.

    The paper's rule (more than one deepest-layer seam only while a seam's mean importance is within
    the 20th percentile of the importance map) is stated for pool5, where one position is 32 pixels
    wide. With a deepest layer of stride < 16 (relu3_1, stride 4, when the weights stop there) the
    same
    rule stopped after 1-23 of 147-171 positions on RetargetMe, leaving most of the change to the
    warp,
    which then acts like scaling; 50 lets the seams do the reduction (measured in docs/retarget.md).

    Returns
    -------
    20.0 when the deepest layer's stride is >= 16, else 50.0.
    """
    from sempix.retarget.vgg import LAYER_NAMES, relative_receptive_field

    deepest = max(layers, key=LAYER_NAMES.index)
    jump = relative_receptive_field(None, deepest)[0]
    return PAPER_PERCENTILE if jump >= 16 else SHALLOW_PERCENTILE


def _lambdas(used: list[str], lambdas) -> dict[str, float]:
    if lambdas is None:
        return {n: (1.0 if i == 0 else 0.0) for i, n in enumerate(used)}
    if isinstance(lambdas, dict):
        out = {n: 0.0 for n in used}
        for k, v in lambdas.items():
            from sempix.retarget.vgg import canonical_layer

            c = resolve_layers([canonical_layer(k)], used[-1])[
                0
            ]  # deeper than available -> deepest
            if c not in out:
                raise InputError(
                    f"lambda given for layer {k!r}, which is not in the layer set {used}"
                )
            out[c] += float(v)
    else:
        vals = [float(v) for v in lambdas]
        if len(vals) != len(used):
            raise InputError(f"{len(vals)} lambdas for {len(used)} layers ({', '.join(used)})")
        out = dict(zip(used, vals))
    if all(v == 0 for v in out.values()):
        raise InputError(
            "all reconstruction lambdas are 0; give at least one layer a positive weight"
        )
    if any(v < 0 for v in out.values()):
        raise InputError("reconstruction lambdas must be >= 0")
    return out


def _energy_lambdas(
    lam_map: dict[str, float], targets: dict[str, torch.Tensor], used: list[str]
) -> dict[str, float]:
    """lambda_i * ||F'_ref|| / ||F'_i|| (ref = shallowest weighted layer): relative errors per
    layer."""
    ref = next(n for n in used if lam_map.get(n, 0) != 0)
    e_ref = float(torch.linalg.vector_norm(targets[ref]))
    out = {}
    for n, v in lam_map.items():
        e = float(torch.linalg.vector_norm(targets[n])) if v != 0 else 0.0
        out[n] = v * e_ref / e if v != 0 and e > 0 else 0.0
    return out


@dataclass(frozen=True)
class PassOptions:
    """Settings of one deep width pass (see :func:`retarget` for their meaning)."""

    method: str
    init: str
    iterations: int
    refine_iterations: int
    lr: float
    refine_lr: float
    alpha: float
    percentile: float
    grid: int
    device: str
    snapshot_every: int
    feature_interp: str
    lambda_norm: str = "none"
    protect_weight: float = 1.0
    hf_weight: float = 0.0
    residual_scale: int = 1
    chroma_scale: int = 1


@dataclass
class PassOutput:
    """What one width pass produced; :func:`_merge_pass` adds it to the :class:`RetargetResult`."""

    image: np.ndarray
    plan: DeepPlan
    losses: list[float] = field(default_factory=list)
    refine_losses: list[float] = field(default_factory=list)
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    effective_lambdas: dict[str, float] | None = None


def _merge_pass(result: RetargetResult, po: PassOutput) -> None:
    result.plans.append(po.plan)
    result.losses += po.losses
    result.refine_losses += po.refine_losses
    result.snapshots += po.snapshots
    tim = result.meta.setdefault("timings", {})
    for k, v in po.timings.items():
        tim[k] = tim.get(k, 0) + v
    if po.effective_lambdas is not None:
        result.meta.setdefault("effective_lambdas", []).append(po.effective_lambdas)


def _width_pass(
    net,
    img: np.ndarray,
    target: int,
    used: list[str],
    lam_map: dict[str, float],
    opts: PassOptions,
    *,
    transpose: bool,
    protect: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> PassOutput:
    """One deep width reduction/enlargement of ``img`` (H, W, 3) to width ``target``."""
    h, w = img.shape[:2]
    x = to_tensor(img, opts.device)
    t = time.perf_counter()
    with torch.no_grad():
        feats = net(x, used)
    tw = {n: net.layer_size(n, h, target)[1] for n in used}
    p = plan(
        feats,
        (h, w),
        target,
        tw,
        alpha=opts.alpha,
        percentile=opts.percentile,
        grid=opts.grid,
        carve=(opts.method != "warp"),
        protect=protect,
        protect_weight=opts.protect_weight,
    )
    p.meta["transposed"] = transpose
    out = PassOutput(image=img, plan=p, timings={"plan": time.perf_counter() - t})
    report(progress, 0.05, "deep seams planned")
    if opts.method in ("multiop", "warp"):
        out.image = p.apply_image(img)
        return out
    # dnr: targets F'_i, init, reconstruction, refinement
    targets = {
        n: p.apply(n, feats[n], interp=opts.feature_interp) for n in used if lam_map.get(n, 0) != 0
    }
    if opts.lambda_norm == "energy":
        lam_map = _energy_lambdas(lam_map, targets, used)
        out.effective_lambdas = dict(lam_map)
    if opts.init == "scale":
        start = scale_image(img, target, h)
    elif opts.init == "multiop":
        start = p.apply_image(img)
    else:
        start = _carve(img, target, h, None, 0.0, None)[0]
    x0 = to_tensor(start, opts.device)
    n_it = max(0, int(opts.iterations))
    n_ref = max(0, int(opts.refine_iterations))
    total = max(1, n_it + n_ref)

    def snap(it: int, arr: np.ndarray) -> None:
        out.snapshots.append((it, arr.transpose(1, 0, 2).copy() if transpose else arr))

    if opts.snapshot_every:
        snap(0, start)
    t = time.perf_counter()
    rec, out.losses = reconstruct(
        net,
        targets,
        x0,
        lam_map,
        iterations=n_it,
        lr=opts.lr,
        hf_weight=opts.hf_weight,
        residual_scale=opts.residual_scale,
        chroma_scale=opts.chroma_scale,
        progress=sub_progress(progress, 0.05, 0.05 + 0.95 * n_it / total),
        snapshot=snap if opts.snapshot_every else None,
        snapshot_every=opts.snapshot_every,
    )
    out.timings["reconstruction"] = time.perf_counter() - t
    t = time.perf_counter()
    if n_ref:
        rec, out.refine_losses = refine(
            net,
            targets,
            rec,
            lam_map,
            iterations=n_ref,
            lr=opts.refine_lr,
            progress=sub_progress(progress, 0.05 + 0.95 * n_it / total, 1.0),
        )
    out.timings["refinement"] = time.perf_counter() - t
    out.image = to_image(rec)
    if opts.snapshot_every:
        snap(n_it, out.image)
    return out


def loss_of(image: np.ndarray, original: np.ndarray, result: RetargetResult, net=None) -> float:
    """Feature loss of ``image`` against the targets of ``result``'s first plan (diagnostics)."""
    net = net or get_vgg()
    used = result.meta["layers"]
    lam_map = result.meta["lambdas"]
    p = result.plans[0]
    with torch.no_grad():
        feats = net(to_tensor(original), used)
        targets = {n: p.apply(n, feats[n]) for n in used if lam_map.get(n, 0)}
        return float(feature_loss(net, to_tensor(image), targets, lam_map))
