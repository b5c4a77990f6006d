"""Training of a slimmable segmentation network: Algorithm 1 of Xue's chapter 2, on the shared loop.

One optimiser step visits the widths *widest first*. For each width the loss

    L = L_seg + 10 L_b + 1 L_g

is back-propagated at once (gradients accumulate across widths; the graph of a width is freed
before the next width runs), then SGD (momentum 0.9, weight decay 5e-4, poly learning rate with
power 0.9) steps once for all widths:

* widest width: ``L_seg`` = cross-entropy with the labels (online hard example mining by default),
  ``L_b`` = BCE of the boundary head against the 3-px boundary band of the labels, ``L_g`` =
  cross-entropy on the pixels whose predicted boundary probability exceeds 0.7;
* narrower widths: the same three terms with the teacher's (detached) probabilities instead of the
  labels (soft-target cross-entropy; boundary probabilities for ``L_b``); the teacher is chosen
  by ``teacher`` (``prev`` = the next wider width, stepwise; ``largest``; ``mean``; ``larger``,
  see :func:`sempix.slimseg.losses.teacher_targets`).

``kd=False`` supervises every width with the labels; ``boundary=False`` drops ``L_b`` and ``L_g``
(and the boundary head); ``independent=w`` trains a plain network of width ``w`` alone (the
baseline of measurement 1; same initialisation, same budget).

The checkpoint (:func:`sempix.train.save_checkpoint`, resumable) holds all widths' weights under
``state_dicts["model"]`` and ``config["model"] = {"slimseg": SlimSegConfig, "data": ...,
"options": ...}`` (see :func:`sempix.slimseg.model.load_slimseg`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from sempix.errors import InputError, SempixError
from sempix.nets.deeplab import DeepLabConfig
from sempix.progress import ProgressFn, report
from sempix.slimseg.data import IGNORE, AugmentedBatches, LabelledFolder
from sempix.slimseg.layers import set_width
from sempix.slimseg.losses import (
    TEACHERS,
    boundary_band,
    boundary_bce,
    boundary_kd,
    guided_mask,
    kd_loss,
    ohem_ce,
    seg_ce,
    teacher_targets,
)
from sempix.slimseg.model import (
    DEFAULT_WIDTHS,
    SlimDeepLab,
    SlimSegConfig,
    calibrate_bn,
    parse_widths,
    pretrained_slimseg,
)

__all__ = ["TEACHERS", "TrainOptions", "build_model", "slimseg_step", "train_slimseg"]


@dataclass
class TrainOptions:
    """Settings of :func:`train_slimseg` (stored in the checkpoint).

    Attributes
    ----------
    widths : switchable widths. teacher : ``prev`` | ``largest`` | ``mean`` | ``larger``.
    kd : in-place distillation of narrow widths (False: labels for every width).
    boundary : boundary head, ``L_b`` and ``L_g``. independent : train only this width.
    steps, batch, lr, momentum, weight_decay, power : SGD with a poly schedule.
    size : working (H, W) of the images; crop : training crop (H, W); scale : random scale range.
    ohem : hard example mining for the label cross-entropy (threshold 0.7, >= 1/16 of pixels).
    w_boundary, w_guided, tau : loss weights and the boundary-guidance threshold.
    pretrained : ``ade20k`` (x1.0 from the ADE20K network, channels ordered by importance) or
        ``none`` (random init; tests). permute : importance ordering of the ADE20K channels.
    limit : use only the first ``limit`` training images. num_classes, void : classes and void
        label value of the folder (default: CamVid's 11 and 11, else max label + 1).
    arch : architecture for ``pretrained="none"`` (default: the ADE20K one).
    threads : CPU threads (0 = all).
    """

    widths: tuple[float, ...] = DEFAULT_WIDTHS
    teacher: str = "prev"
    kd: bool = True
    boundary: bool = True
    independent: float | None = None
    steps: int = 3000
    batch: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    power: float = 0.9
    size: tuple[int, int] = (360, 480)
    crop: tuple[int, int] = (360, 360)
    scale: tuple[float, float] = (0.5, 2.0)
    ohem: bool = True
    w_boundary: float = 10.0
    w_guided: float = 1.0
    tau: float = 0.7
    pretrained: str = "ade20k"
    permute: bool = True
    limit: int | None = None
    num_classes: int | None = None
    void: int | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    checkpoint_every: int = 100
    arch: dict | None = field(default=None, repr=False)

    def validate(self) -> TrainOptions:
        self.widths = parse_widths(self.widths)
        if self.teacher not in TEACHERS:
            raise InputError(f"teacher must be one of {', '.join(TEACHERS)}")
        if self.independent is not None:
            w = float(self.independent)
            if not 0.0 < w <= 1.0:
                raise InputError("independent width must be in (0, 1]")
            self.independent = w
            self.widths = (w,)
        if self.steps < 0 or self.batch < 1 or self.lr <= 0:
            raise InputError("steps >= 0, batch >= 1 and lr > 0 are required")
        if self.pretrained not in ("ade20k", "none"):
            raise InputError("pretrained must be ade20k or none")
        if min(self.crop) < 8 or min(self.size) < 8:
            raise InputError("size and crop must be at least 8 pixels")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("widths", "size", "crop", "scale"):
            d[k] = list(d[k])
        return d


def build_model(opts: TrainOptions, num_classes: int) -> SlimDeepLab:
    """The model to train: ADE20K-initialised (``pretrained="ade20k"``) or random."""
    if opts.pretrained == "ade20k":
        return pretrained_slimseg(num_classes, widths=opts.widths, boundary_head=opts.boundary,
                                  permute=opts.permute, seed=opts.seed)
    arch = DeepLabConfig.from_dict(opts.arch) if opts.arch else DeepLabConfig()
    arch = DeepLabConfig(**{**arch.__dict__, "num_classes": num_classes})
    torch.manual_seed(opts.seed)
    return SlimDeepLab(SlimSegConfig(arch, opts.widths, opts.boundary))


def _up(t: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(t, size=size, mode="bilinear", align_corners=True)


def slimseg_step(model: SlimDeepLab, x: torch.Tensor, y: torch.Tensor, opts: TrainOptions,
                 *, scale: float = 1.0) -> dict[str, float]:
    """One pass of Algorithm 1 over all widths (widest first); back-propagates each width's loss
    (times ``scale``) at once and returns the losses as floats (``loss`` = their sum)."""
    use_b = opts.boundary and model.boundary is not None
    valid = y != IGNORE
    band = boundary_band(y, ignore_index=IGNORE) if use_b else None
    wider_p: list[torch.Tensor] = []  # nearest wider first
    wider_b: list[torch.Tensor] = []
    logs: dict[str, float] = {"loss": 0.0}
    size = y.shape[1:]
    for i, w in enumerate(sorted(opts.widths, reverse=True)):
        set_width(model, w)
        out = model(x, boundary=use_b)
        logits = _up(out.logits, size)
        b = _up(out.boundary, size) if use_b else None
        distil = i > 0 and opts.kd
        if distil:
            teachers = teacher_targets(wider_p, opts.teacher)
            l_seg = torch.stack([kd_loss(logits, t) for t in teachers]).mean()
        else:
            l_seg = (ohem_ce if opts.ohem else seg_ce)(logits, y, ignore_index=IGNORE)
        loss = l_seg
        if use_b:
            mask = guided_mask(b, tau=opts.tau)
            if distil:
                tb = teacher_targets(wider_b, opts.teacher)
                l_b = boundary_kd(b, tb, valid)
                l_g = torch.stack([kd_loss(logits, t, mask=mask & valid) for t in teachers]).mean()
            else:
                l_b = boundary_bce(b, band, valid)
                l_g = seg_ce(logits, y, ignore_index=IGNORE, mask=mask)
            loss = loss + opts.w_boundary * l_b + opts.w_guided * l_g
            logs[f"b_{w:g}"] = float(l_b.detach())
        if not torch.isfinite(loss):
            raise SempixError(f"training diverged at width {w:g} (loss {float(loss)})")
        (loss * scale).backward()
        logs["loss"] += float(loss.detach())
        logs[f"seg_{w:g}"] = float(l_seg.detach())
        with torch.no_grad():
            wider_p.insert(0, torch.softmax(logits.detach(), dim=1))
            if use_b:
                wider_b.insert(0, b.detach())
    set_width(model, max(opts.widths))
    return logs


def train_slimseg(
    data_root: str | os.PathLike,
    output: str | os.PathLike,
    options: TrainOptions | None = None,
    *,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> dict:
    """Train a slimmable network on a labelled folder (see the module docstring).

    Parameters
    ----------
    data_root : folder with a ``train`` split (:mod:`sempix.slimseg.data`).
    output : checkpoint path (written atomically every ``checkpoint_every`` steps and at the end).
    options : :class:`TrainOptions`.
    resume : continue the checkpoint at ``output`` up to ``options.steps``.

    Returns
    -------
    dict ``{"step", "seconds", "loss", "logs", "checkpoint"}``.
    """
    from sempix._runtime import init_torch_threads
    from sempix.train import TrainConfig, load_checkpoint, seed_everything, train

    opts = (options or TrainOptions()).validate()
    if opts.threads > 0:
        torch.set_num_threads(int(opts.threads))
    else:
        init_torch_threads()
    out = Path(output)
    if resume:
        ck = load_checkpoint(out)
        saved = ck["config"]["model"].get("options", {})
        for k in ("widths", "independent", "kd", "boundary", "teacher"):
            if k in saved and saved[k] != (list(opts.widths) if k == "widths" else
                                           getattr(opts, k)):
                raise InputError(f"{out}: was trained with {k}={saved[k]}; resume with the same")
    seed_everything(opts.seed)

    def sub(lo, hi):
        return lambda f, m="": report(progress, lo + (hi - lo) * f, m)

    data = LabelledFolder(data_root, "train", size=opts.size, num_classes=opts.num_classes,
                          void=opts.void, limit=opts.limit, progress=sub(0.0, 0.05))
    batches = AugmentedBatches(data, min(opts.batch, len(data)), opts.crop, opts.scale)
    model = build_model(opts, data.num_classes)
    if opts.pretrained == "ade20k" and not resume:
        xs, _ = next(iter(batches))
        calibrate_bn(model, xs)
    tc = TrainConfig(steps=opts.steps, lr=opts.lr, optimizer="sgd", momentum=opts.momentum,
                     weight_decay=opts.weight_decay, schedule="poly", power=opts.power,
                     checkpoint_every=opts.checkpoint_every, seed=opts.seed, device=opts.device)

    def step(batch, ctx):
        x, y = (t.to(ctx.device) for t in batch)
        logs = slimseg_step(ctx.modules["model"], x, y, opts, scale=1.0 / ctx.config.accumulate)
        return {f"log_{k}": v for k, v in logs.items()}

    model_config = {
        "slimseg": model.config.to_dict(),
        "data": {"num_classes": data.num_classes, "class_names": list(data.class_names),
                 "void": data.void, "size": list(opts.size), "root": str(data_root)},
        "options": opts.to_dict(),
    }
    res = train({"model": model}, step, batches, tc, checkpoint=out,
                resume=out if resume else None, model_config=model_config,
                progress=sub(0.05, 1.0))
    return {"step": res.step, "seconds": res.seconds, "loss": res.logs.get("log_loss"),
            "logs": res.logs, "checkpoint": str(out)}
