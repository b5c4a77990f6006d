"""Distillation of the full ADE20K network into a slimmable one, on unlabelled photos.

The *teacher* is the ADE20K DeepLabV3+ MobileNetV2 of the ``ade20k`` feature backend, run in
PyTorch (:func:`sempix.features.ade20k_torch.load_deeplab`). For every photo it is run once, on
the same 513x513 letterbox as the feature backend, and its output is **cached on disk per photo
at the network's resolution** (the stride-4 grid, 129x129 at most): the ``topk`` most probable
classes of every grid sample with their probabilities (float16) and the letterboxed photo itself
(uint8), in ``<cache>/slimseg-teacher/<teacher id>-<size>-k<topk>/<photo hash>.npz``
(:func:`teacher_cache_dir`). A second run, or a resumed one, reads these files instead of running
the teacher again; the key is the photo's *content* hash and the teacher file's hash, so an
edited photo or another teacher gets new targets.

The *student* is the slimmable network (:class:`sempix.slimseg.model.SlimDeepLab`), initialised
from the same ADE20K weights (``from_deeplab``). Each training step takes random ``crop``-pixel
windows of the letterboxed photos (corners on the stride-4 grid, so the student's output grid
is exactly a window of the teacher's; by default the whole 513 letterbox, optional flips) and
follows Algorithm 1 of the
SlimSeg chapter with the teacher in place of labels:

* the widest width is trained towards the teacher's (renormalised top-k) probabilities
  (soft-target cross-entropy);
* each narrower width towards the next wider one's probabilities, detached (stepwise
  in-place distillation, ``teacher="prev"``);
* losses of all widths are accumulated, widest first, and one SGD step (momentum 0.9, weight
  decay 5e-4, poly learning rate with power 0.9) is taken.

Grid samples outside the photo (letterbox padding) are ignored. The boundary head is not used
here (the teacher's label map is soft; see docs/slimseg.md).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sempix.errors import InputError
from sempix.progress import ProgressFn, report

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
STRIDE = 4
TEACHER_FORMAT = 1

__all__ = [
    "TeacherTargets",
    "cache_teacher_targets",
    "list_photos",
    "load_targets",
    "photo_hash",
    "teacher_cache_dir",
    "teacher_targets",
]


@dataclass
class TeacherTargets:
    """What the teacher says about one letterboxed photo.

    Attributes
    ----------
    image : (h, w, 3) uint8, the photo resized so that its longest side is ``size`` (the part of
        the letterbox it occupies; the rest is mid-grey).
    index : (gh, gw, k) uint8 class indices of the ``k`` most probable classes, most probable
        first, on the stride-4 grid (``gh = (h - 1) // 4 + 1``).
    prob : (gh, gw, k) float16 their probabilities.
    """

    image: np.ndarray
    index: np.ndarray
    prob: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """(gh, gw) int64: the teacher's label (argmax) per grid sample."""
        return self.index[..., 0].astype(np.int64)


def list_photos(folder: str | os.PathLike) -> list[Path]:
    """The image files under ``folder`` (recursive, sorted); InputError when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of photos")
    photos = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not photos:
        raise InputError(
            f"{root}: no photos found (looked for {', '.join(IMAGE_SUFFIXES)} files)"
        )
    return photos


def photo_hash(path: str | os.PathLike) -> str:
    """blake2b (16 bytes, hex) of a file's content."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def teacher_cache_dir(teacher_id: str, size: int, topk: int, root=None) -> Path:
    """Folder of the cached targets of one teacher at one letterbox size."""
    if root is None:
        from sempix._config import cache_dir

        root = cache_dir("slimseg-teacher")
    return Path(root) / f"{teacher_id[:16]}-{int(size)}-k{int(topk)}"


def teacher_targets(image: np.ndarray, teacher, *, size: int = 513, topk: int = 5,
                    device: str = "cpu") -> TeacherTargets:
    """Run ``teacher`` on the ``size`` letterbox of ``image``.

    Parameters
    ----------
    image : (H, W, 3) float32 RGB in [0, 1]
    teacher : a :class:`~sempix.nets.deeplab.DeepLabV3Plus` (eval mode) on ``device``
    size : letterbox side (513 = what the ``ade20k`` backend feeds the network)
    topk : classes kept per grid sample (<= 255 classes are supported)

    Returns
    -------
    TeacherTargets
    """
    import torch

    from sempix.features.ade20k import letterbox

    x, (h, w) = letterbox(image, size)
    t = torch.from_numpy((x + 1.0) * 0.5).permute(0, 3, 1, 2).to(device)
    with torch.inference_mode():
        logits = teacher(t).logits[0].float()
    gh, gw = (h - 1) // STRIDE + 1, (w - 1) // STRIDE + 1
    p = torch.softmax(logits[:, :gh, :gw], dim=0)
    k = min(int(topk), p.shape[0])
    val, idx = torch.topk(p, k, dim=0)
    img_u8 = np.round((x[0, :h, :w] + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    return TeacherTargets(
        image=img_u8,
        index=idx.permute(1, 2, 0).cpu().numpy().astype(np.uint8),
        prob=val.permute(1, 2, 0).cpu().numpy().astype(np.float16),
    )


def load_targets(path: str | os.PathLike) -> TeacherTargets:
    """Read a cached :class:`TeacherTargets` file (``.npz``)."""
    with np.load(path, allow_pickle=False) as z:
        if int(z["format"]) != TEACHER_FORMAT:
            raise ValueError(f"{path}: teacher cache format {int(z['format'])}")
        return TeacherTargets(image=z["image"], index=z["index"], prob=z["prob"])


def cache_teacher_targets(
    photos: Sequence[str | os.PathLike],
    cache: str | os.PathLike,
    *,
    teacher=None,
    size: int = 513,
    topk: int = 5,
    device: str = "cpu",
    progress: ProgressFn | None = None,
) -> list[Path]:
    """Make sure every photo has its teacher targets on disk; return their files (in order).

    Parameters
    ----------
    photos : image files
    cache : the folder of this teacher's targets (:func:`teacher_cache_dir`)
    teacher : the network, or None to load the ADE20K network lazily (only when a photo has no
        cached targets yet)
    size, topk, device : see :func:`teacher_targets`

    Returns
    -------
    list of ``.npz`` paths, one per photo. Files are written atomically; an unreadable cached
    file is recomputed.
    """
    from sempix.image import atomic_save_npz, load_rgb

    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    n = len(photos)
    for i, photo in enumerate(photos):
        dest = cache / f"{photo_hash(photo)}.npz"
        ok = dest.is_file()
        if ok:
            try:
                load_targets(dest)
            except Exception:  # noqa: BLE001 - truncated/corrupt/old file: label again
                ok = False
        if not ok:
            if teacher is None:
                from sempix.features.ade20k_torch import load_deeplab

                teacher = load_deeplab(device=device)
                teacher.requires_grad_(False)
            tt = teacher_targets(load_rgb(photo), teacher, size=size, topk=topk, device=device)
            atomic_save_npz(dest, compressed=True, format=np.int64(TEACHER_FORMAT),
                            image=tt.image, index=tt.index, prob=tt.prob, force=True)
        out.append(dest)
        report(progress, (i + 1) / n, f"teacher labels {i + 1}/{n}")
    return out


# ------------------------------------------------------------------------------------------------
# the student's data: random grid-aligned crops of the letterboxed photos


def crop_grid(crop: int) -> int:
    """Grid samples per side of a ``crop``-pixel window (``crop = 4 (g - 1) + 1``)."""
    return (int(crop) - 1) // STRIDE + 1


def check_crop(crop: int) -> int:
    """``crop`` checked: ``4 k + 1`` pixels, at least 33 (InputError otherwise)."""
    crop = int(crop)
    if crop < 33 or (crop - 1) % STRIDE:
        raise InputError(f"crop must be 4 k + 1 pixels and >= 33, e.g. 257 or 321 (got {crop})")
    return crop


def sample_batch(targets: Sequence[TeacherTargets], batch: int, crop: int,
                 rng: np.random.Generator | None = None, *, flip: bool = True):
    """A random batch of crops with their teacher targets.

    Each crop's top-left corner lies on the stride-4 grid (so the student's output grid is a
    window of the teacher's); a photo smaller than the crop is padded with mid-grey whose
    targets are ignored; with ``flip`` half the crops are flipped left-right.

    Returns
    -------
    x (B, 3, crop, crop) float32 in [0, 1], index (B, k, g, g) int64, prob (B, k, g, g) float32
    (top-k teacher probabilities renormalised to sum 1), valid (B, g, g) bool; torch tensors.
    """
    import torch

    rand = rng if rng is not None else np.random  # the module state is restored on resume
    g = crop_grid(crop)
    k = targets[0].index.shape[-1]
    x = np.full((batch, crop, crop, 3), 0.5, np.float32)
    idx = np.zeros((batch, g, g, k), np.int64)
    prob = np.zeros((batch, g, g, k), np.float32)
    valid = np.zeros((batch, g, g), bool)
    for b in range(batch):
        t = targets[int(rand.randint(len(targets)))]
        gh, gw = t.index.shape[:2]
        ky = int(rand.randint(max(1, gh - g + 1)))
        kx = int(rand.randint(max(1, gw - g + 1)))
        img = t.image[STRIDE * ky: STRIDE * ky + crop, STRIDE * kx: STRIDE * kx + crop]
        x[b, : img.shape[0], : img.shape[1]] = img.astype(np.float32) / 255.0
        ti = t.index[ky: ky + g, kx: kx + g]
        tp = t.prob[ky: ky + g, kx: kx + g].astype(np.float32)
        idx[b, : ti.shape[0], : ti.shape[1]] = ti
        prob[b, : tp.shape[0], : tp.shape[1]] = tp
        valid[b, : ti.shape[0], : ti.shape[1]] = True
        if flip and rand.rand() < 0.5:  # left-right flip: pixel j <-> crop-1-j, sample k <-> g-1-k
            x[b] = x[b, :, ::-1]
            idx[b], prob[b], valid[b] = idx[b, :, ::-1], prob[b, :, ::-1], valid[b, :, ::-1]
    prob /= np.maximum(prob.sum(-1, keepdims=True), 1e-6)
    return (
        torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
        torch.from_numpy(np.ascontiguousarray(idx.transpose(0, 3, 1, 2))),
        torch.from_numpy(np.ascontiguousarray(prob.transpose(0, 3, 1, 2))),
        torch.from_numpy(np.ascontiguousarray(valid)),
    )


class CropBatches:
    """Re-iterable source of :func:`sample_batch` batches for :func:`sempix.train.train`
    (one pass = ``len(targets) // batch`` batches, at least 1)."""

    def __init__(self, targets: Sequence[TeacherTargets], batch: int, crop: int,
                 flip: bool = False) -> None:
        self.targets, self.batch, self.crop = list(targets), int(batch), int(crop)
        self.flip = bool(flip)

    def __iter__(self):
        for _ in range(max(1, len(self.targets) // self.batch)):
            yield sample_batch(self.targets, self.batch, self.crop, flip=self.flip)


# ------------------------------------------------------------------------------------------------
# the loss of Algorithm 1 with the teacher's targets


def distill_losses(model, batch, widths: Sequence[float], device="cpu", *,
                   backward: bool = False) -> dict:
    """Losses of one batch at every width, widest first (Algorithm 1, teacher = ``prev``).

    The widest width: soft-target cross-entropy against the teacher's renormalised top-k
    probabilities; each narrower width: soft-target cross-entropy against the next wider
    width's probabilities (detached). Only valid grid samples count.

    ``backward=True`` back-propagates each width's loss at once (gradients accumulate across
    widths and each width's graph is freed before the next runs, as in Algorithm 1) and returns
    detached values.

    Returns
    -------
    {"seg_x<w>": loss tensor} for every width (sum them for the step).
    """
    import torch
    import torch.nn.functional as F

    from sempix.slimseg.layers import set_width

    x, idx, prob, valid = (t.to(device) for t in batch)
    n_valid = valid.sum().clamp_min(1)
    out = {}
    prev = None
    for n, w in enumerate(sorted(widths, reverse=True)):
        set_width(model, w)
        logits = model(x, boundary=False).logits
        if logits.shape[-2:] != valid.shape[-2:]:
            raise ValueError(f"student grid {tuple(logits.shape[-2:])} != "
                             f"teacher grid {tuple(valid.shape[-2:])}")
        logp = F.log_softmax(logits.float(), dim=1)
        if n == 0:
            per = -(prob * logp.gather(1, idx)).sum(1)
        else:
            per = -(prev * logp).sum(1)
        loss = (per * valid).sum() / n_valid
        if backward:
            loss.backward()
            loss = loss.detach()
        out[f"seg_x{w:g}"] = loss
        prev = torch.softmax(logits.detach().float(), dim=1)
    set_width(model, max(widths))
    return out


# ------------------------------------------------------------------------------------------------
# export: every width as a plain DeepLabV3Plus (batch norm folded)


def _fold(conv_bn) -> tuple:
    """(weight, bias) of a ``ConvBN`` at its current width with its batch norm folded (eval)."""
    import torch

    w, b, _groups = conv_bn.conv.active_weight()
    bn = conv_bn.bn.active()
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    wf = w * scale.view(-1, 1, 1, 1)
    bf = bn.bias - bn.running_mean * scale
    if b is not None:
        bf = bf + b * scale
    return wf.detach().clone(), bf.detach().clone()


def export_width(model, width: float) -> dict:
    """The width-``width`` sub-network of a ``SlimDeepLab`` as a plain DeepLabV3+.

    Returns
    -------
    {"config": DeepLabConfig dict, "state_dict": {...}} loadable by
    :class:`sempix.nets.deeplab.DeepLabV3Plus`, computing the same function as ``model`` in
    eval mode at that width (tested).

    Raises
    ------
    ValueError
        A width whose expanded channels are not ``expand x`` the sliced input channels (widths
        like 0.35 on this architecture); the standard 0.25 / 0.5 / 0.75 / 1.0 all export.
    """
    from sempix.nets.deeplab import BlockSpec, DeepLabConfig, DeepLabV3Plus
    from sempix.slimseg.layers import get_width, set_width, slim_channels
    from sempix.slimseg.model import ConvBN

    a = model.config.arch
    sc = lambda c: slim_channels(c, width)  # noqa: E731
    cfg = DeepLabConfig(
        num_classes=a.num_classes,
        stem_channels=sc(a.stem_channels),
        blocks=tuple(BlockSpec(b.expand, sc(b.out), b.stride, b.dilation) for b in a.blocks),
        aspp_channels=sc(a.aspp_channels),
        low_level_block=a.low_level_block,
        low_level_channels=sc(a.low_level_channels),
        decoder_channels=sc(a.decoder_channels),
    )
    cin = a.stem_channels
    for b in a.blocks:
        if sc(cin * b.expand) != sc(cin) * b.expand:
            raise ValueError(f"width {width:g} cannot be exported as a plain DeepLabV3+ "
                             f"({sc(cin * b.expand)} expanded channels != {b.expand} x {sc(cin)})")
        cin = b.out
    prev, was = get_width(model), model.training
    model.eval()
    set_width(model, width)
    sd = {}
    try:
        for name, mod in model.named_modules():
            if isinstance(mod, ConvBN) and not name.startswith("boundary"):
                sd[f"{name}.weight"], sd[f"{name}.bias"] = _fold(mod)
        for name in ("aspp.pool_conv", "classifier"):
            conv = model.get_submodule(name)
            w, b, _g = conv.active_weight()
            sd[f"{name}.weight"], sd[f"{name}.bias"] = w.detach().clone(), b.detach().clone()
    finally:
        set_width(model, prev)
        model.train(was)
    ref = DeepLabV3Plus(cfg).state_dict()
    if set(ref) != set(sd) or any(tuple(ref[k].shape) != tuple(sd[k].shape) for k in ref):
        bad = sorted(set(ref) ^ set(sd)) or [k for k in ref if ref[k].shape != sd[k].shape]
        raise ValueError(f"width {width:g}: export does not match DeepLabV3Plus ({bad[:3]})")
    return {"config": cfg.to_dict(), "state_dict": {k: v.cpu().contiguous() for k, v in sd.items()}}


def export_model(model, class_names: Sequence[str] | None = None) -> dict:
    """``{"format", "widths", "class_names", "nets"}``: every width of ``model`` exported
    (:func:`export_width`), as the ``slimseg`` feature backend reads it."""
    from sempix.features.slimseg import EXPORT_FORMAT, width_key

    nets = {width_key(w): export_width(model, w) for w in model.widths}
    return {
        "format": EXPORT_FORMAT,
        "widths": [float(w) for w in model.widths],
        "class_names": list(class_names) if class_names else None,
        "nets": nets,
    }


def add_export(path: str | os.PathLike, class_names: Sequence[str] | None = None) -> Path:
    """Add (or refresh) the ``export`` part of a slimseg checkpoint file, atomically."""
    import torch

    from sempix.image import atomic_output
    from sempix.slimseg.model import load_slimseg

    model, ck = load_slimseg(path)
    if class_names is None:
        from sempix.slimseg.predict import checkpoint_class_names

        class_names = checkpoint_class_names(ck, model.config.num_classes)
    ck["export"] = export_model(model, class_names)
    with atomic_output(Path(path), force=True) as tmp:
        torch.save(ck, tmp)
    return Path(path)


# ------------------------------------------------------------------------------------------------
# the whole run


@dataclass
class DistillOptions:
    """Settings of :func:`distill` (stored in the checkpoint).

    widths : switchable widths; steps : optimiser steps; batch : crops per step; crop : crop
    side in pixels (``4 k + 1``; 513 = the whole letterbox, the default: the teacher run on a
    193-pixel crop agrees with its own whole-letterbox labels on only 58.5 % of the samples,
    measured, so smaller crops train towards targets the crop cannot explain); flip : random
    left-right flips (off by default: the teacher is not flip-invariant, 91.5 % agreement,
    measured); lr : base learning rate of SGD (momentum 0.9, weight decay
    5e-4, poly schedule with power 0.9); size : letterbox side of the teacher and of the
    feature backend (513); topk : teacher classes kept per grid sample; checkpoint_every :
    steps between checkpoints; grad_clip : maximum global gradient norm (0 = off; the folded
    ADE20K weights are large and SGD without clipping diverged at lr 0.01, measured);
    freeze_bn : keep every width's batch-norm statistics at their calibrated values (eval-mode
    batch norm; the per-width affine parameters still learn): with a few crops per step, batch
    statistics turn the x1.0 network (= the teacher) into a different function (its loss
    started near that of a uniform guess, measured), so they are not used by default; seed;
    device : ``cpu`` | ``cuda``.
    """

    widths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    steps: int = 300
    batch: int = 4
    crop: int = 513
    flip: bool = False
    lr: float = 0.003
    momentum: float = 0.9
    weight_decay: float = 5e-4
    size: int = 513
    topk: int = 5
    checkpoint_every: int = 25
    grad_clip: float = 5.0
    freeze_bn: bool = True
    seed: int = 0
    device: str = "cpu"


@dataclass
class DistillResult:
    """What :func:`distill` did: the checkpoint, the final step, the last losses, seconds."""

    checkpoint: Path
    step: int
    logs: dict
    photos: int
    teacher_cache: Path
    seconds: float


def distill(
    photos: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    options: DistillOptions | None = None,
    *,
    teacher=None,
    teacher_id: str | None = None,
    student=None,
    class_names: Sequence[str] | None = None,
    cache_root: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
):
    """Distil the ADE20K network into a slimmable one on a folder of unlabelled photos.

    Parameters
    ----------
    photos : a folder (searched recursively) or a list of image files
    output : the checkpoint to write (resumed when it exists: same options, more ``steps``)
    options : :class:`DistillOptions`
    teacher, teacher_id : the teacher network and a string identifying its weights (cache
        key); default the ADE20K network of the model store (id = its file's hash)
    student : a ``SlimDeepLab`` to start from (default: ``pretrained_slimseg()``, the ADE20K
        weights, channels ordered by importance)
    class_names : stored with the export (default: the ADE20K names)
    cache_root : root of the teacher-target cache (default ``<cache>/slimseg-teacher``)
    progress : ``progress(fraction, message)``

    Returns
    -------
    DistillResult; the checkpoint holds the training state of every width (resumable, read by
    ``sempix slimseg eval/predict``) and their exported plain networks (read by the
    ``slimseg`` feature backend).
    """
    import time

    import torch

    from sempix.progress import sub_progress
    from sempix.slimseg.model import calibrate_bn, parse_widths
    from sempix.train import TrainConfig, train

    t0 = time.perf_counter()
    opt = options or DistillOptions()
    widths = parse_widths(opt.widths)
    crop = check_crop(opt.crop)
    if opt.steps < 1 or opt.batch < 1:
        raise InputError("steps and batch must be >= 1")
    files = list_photos(photos) if isinstance(photos, (str, os.PathLike)) else [
        Path(p) for p in photos]
    if not files:
        raise InputError("no photos given")
    out = Path(output)
    if teacher is None and teacher_id is None:
        from sempix.features.ade20k import model_path
        from sempix.features.cache import file_identity

        teacher_id = file_identity(model_path())
    if teacher_id is None:
        raise InputError("teacher_id is required with a custom teacher")
    cdir = teacher_cache_dir(teacher_id, opt.size, opt.topk, cache_root)
    paths = cache_teacher_targets(files, cdir, teacher=teacher, size=opt.size, topk=opt.topk,
                                  device=opt.device, progress=sub_progress(progress, 0.0, 0.25))
    targets = [load_targets(p) for p in paths]
    if class_names is None:
        from sempix.features.ade20k import class_names as ade_names

        class_names = ade_names()
    resume = out if out.is_file() else None
    if student is None:
        if resume is not None:
            from sempix.slimseg.model import load_slimseg

            student = load_slimseg(resume)[0]
        else:
            from sempix.slimseg.model import pretrained_slimseg

            student = pretrained_slimseg(widths=widths, boundary_head=False, seed=opt.seed)
    if tuple(student.widths) != widths:
        raise InputError(f"the student's widths {list(student.widths)} differ from "
                         f"{list(widths)}")
    if resume is None:  # batch-norm statistics of every width from real crops
        report(progress, 0.26, "calibrating batch norms")
        rs = np.random.RandomState(opt.seed)
        calib = sample_batch(targets, max(2, min(8, len(targets))), crop, rng=rs)[0]
        calibrate_bn(student, calib.to(next(student.parameters()).device))
    cfg = TrainConfig(
        steps=int(opt.steps), lr=float(opt.lr), optimizer="sgd", momentum=opt.momentum,
        weight_decay=opt.weight_decay, schedule="poly", checkpoint_every=opt.checkpoint_every,
        grad_clip=float(opt.grad_clip),
        seed=opt.seed, device=opt.device,
    )
    model_config = {
        "slimseg": student.config.to_dict(),
        "class_names": list(class_names),
        "distill": {**{k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in opt.__dict__.items()},
                    "teacher_id": teacher_id, "photos": len(files)},
    }

    def step(batch, ctx):  # back-propagated width by width; the loop only steps the optimiser
        if opt.freeze_bn:
            for m in ctx.modules["model"].modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        losses = distill_losses(ctx.modules["model"], batch, widths, ctx.device, backward=True)
        total = sum(float(v) for v in losses.values())
        if not np.isfinite(total):
            from sempix.errors import SempixError

            raise SempixError(f"distillation diverged at step {ctx.step} (loss {total})")
        return {"log_loss": total, **{f"log_{k}": v for k, v in losses.items()}}

    torch.manual_seed(opt.seed)
    res = train({"model": student}, step, CropBatches(targets, opt.batch, crop, opt.flip), cfg,
                checkpoint=out, resume=resume, model_config=model_config,
                progress=sub_progress(progress, 0.27, 0.98))
    report(progress, 0.99, "exporting widths")
    add_export(out, class_names)
    report(progress, 1.0, "done")
    return DistillResult(checkpoint=out, step=res.step, logs=dict(res.logs), photos=len(files),
                         teacher_cache=cdir, seconds=time.perf_counter() - t0)
