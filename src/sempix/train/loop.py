"""The one training loop of sempix (used by every learned component).

What it does, in one place:

* **seeding** (:func:`seed_everything`: python, numpy, torch) and **device choice**
  (:func:`resolve_device`: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``; asking for CUDA
  without
  one is an :class:`~sempix.errors.InputError`);
* **optimisers and schedules from a config** (:class:`TrainConfig`; one optimiser per parameter
  group name, e.g. ``{"g": generator, "d": discriminator}``; Adam/AdamW/SGD; constant, cosine,
  step/multistep schedules with linear warm-up);
* **gradient accumulation** (``accumulate`` micro-batches per optimiser step) and optional clipping;
* **progress**: ``progress(fraction, message)`` after every step; library code never prints;
* **periodic atomic checkpoints** (``checkpoint_every`` steps and at the end) holding
  ``{format, sempix_version, config, state_dicts, optimizers, schedulers, step, metrics, rng}``,
  written through a temporary file and renamed, so a killed run never leaves a half-written file;
* **resume** (``resume=path``: modules, optimisers, schedules, step and RNG state are restored and
  the loop continues where it stopped);
* **evaluation and early stopping** (``evaluate(ctx) -> metrics`` every ``eval_every`` steps;
  ``early_stop`` = patience in evaluations on ``monitor``).

The method supplies a *step function* ``step(batch, ctx) -> {name: loss tensor}``: the losses are
summed and back-propagated (divided by ``accumulate``), then every optimiser steps. A step function
that trains two networks against each other (GANs) freezes the one it must not update while building
a loss (:func:`set_requires_grad`) and detaches what the other loss consumes, so one backward pass
of
the sum gives each optimiser exactly its own gradients. Extra scalars to log go in the returned dict
under names starting with ``"log_"`` (plain floats or tensors; not back-propagated).

Example (a regression in a few lines)::

    cfg = TrainConfig(steps=100, lr=1e-3, checkpoint_every=50)
    net = torch.nn.Linear(3, 1)
    def step(batch, ctx):
        x, y = (t.to(ctx.device) for t in batch)
        return {"net": F.mse_loss(ctx.modules["net"](x), y)}
    result = train({"net": net}, step, data, cfg, checkpoint="run.pt", config={"model": "linear"})
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sempix.errors import InputError, SempixError
from sempix.progress import ProgressFn, report

CHECKPOINT_FORMAT = "sempix-checkpoint/1"
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step", "multistep", "poly")


@dataclass
class TrainConfig:
    """Optimisation settings (stored in every checkpoint).

    Attributes
    ----------
    steps : total optimiser steps.
    lr : learning rate (one float, or a mapping optimiser name -> lr).
    optimizer : ``adam`` | ``adamw`` | ``sgd``.
    betas, momentum, weight_decay : optimiser parameters.
    schedule : ``constant`` | ``cosine`` (to ``min_lr_ratio * lr``) | ``step`` (x ``gamma`` every
        ``step_size``) | ``multistep`` (x ``gamma`` at each of ``milestones``) | ``poly``
        (x ``(1 - step / steps) ** power``, DeepLab's schedule).
    warmup : linear warm-up steps.
    accumulate : micro-batches per optimiser step (gradient accumulation).
    grad_clip : max global gradient norm per optimiser (0 = off).
    checkpoint_every : steps between checkpoints (0 = only at the end).
    eval_every : steps between evaluations (0 = only at the end when ``evaluate`` is given).
    early_stop : patience in evaluations without improvement of ``monitor`` (0 = off).
    monitor, mode : metric name and ``min`` | ``max``.
    seed : seed of python/numpy/torch.
    device : ``cpu`` | ``cuda`` | ``cuda:N`` | ``auto``.
    """

    steps: int = 1000
    lr: float | dict = 1e-4
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.99)
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    min_lr_ratio: float = 0.0
    step_size: int = 1000
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    power: float = 0.9
    warmup: int = 0
    accumulate: int = 1
    grad_clip: float = 0.0
    checkpoint_every: int = 0
    eval_every: int = 0
    early_stop: int = 0
    monitor: str = "loss"
    mode: str = "min"
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> TrainConfig:
        if self.steps < 0 or self.accumulate < 1:
            raise InputError("steps must be >= 0 and accumulate >= 1")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(
                f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        if self.schedule not in SCHEDULES:
            raise InputError(
                f"unknown schedule {self.schedule!r}; use one of {', '.join(SCHEDULES)}"
            )
        if self.mode not in ("min", "max"):
            raise InputError("mode must be min or max")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainConfig:
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        if "milestones" in kw:
            kw["milestones"] = tuple(kw["milestones"])
        return cls(**kw)


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """The one place that turns ``cpu`` / ``cuda`` / ``cuda:N`` / ``auto`` into a torch device."""
    d = "cpu" if device is None else str(device)
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"--device {d}: CUDA is not available on this machine (use --device cpu)"
            )
        return torch.device(d)
    if d != "cpu":
        raise InputError(f"unknown device {d!r}; use cpu, cuda, cuda:N or auto")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Freeze (False) or unfreeze (True) every parameter of ``module``."""
    for p in module.parameters():
        p.requires_grad_(flag)


def _lr_of(cfg: TrainConfig, name: str) -> float:
    if isinstance(cfg.lr, Mapping):
        if name not in cfg.lr:
            raise InputError(f"no learning rate for optimiser {name!r} in {dict(cfg.lr)}")
        return float(cfg.lr[name])
    return float(cfg.lr)


def make_optimizer(params, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    """Optimiser from the config."""
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay
        )
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based)."""
    f = 1.0
    if cfg.warmup > 0 and step < cfg.warmup:
        f = (step + 1) / cfg.warmup
    if cfg.schedule == "cosine":
        t = min(1.0, step / max(1, cfg.steps))
        f *= cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    elif cfg.schedule == "step":
        f *= cfg.gamma ** (step // max(1, cfg.step_size))
    elif cfg.schedule == "multistep":
        f *= cfg.gamma ** sum(step >= m for m in cfg.milestones)
    elif cfg.schedule == "poly":
        f *= max(0.0, 1.0 - step / max(1, cfg.steps)) ** cfg.power
    return f


@dataclass
class TrainContext:
    """What a step function sees: modules (on the device), optimisers, device, step, config."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    device: torch.device
    config: TrainConfig
    step: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class TrainResult:
    """Outcome of :func:`train`: final step, last logs, evaluation history, checkpoint, time,
    epochs."""

    step: int
    logs: dict[str, float]
    history: list[dict]
    checkpoint: Path | None
    seconds: float
    epochs: int
    stopped_early: bool = False


def save_checkpoint(
    path: str | os.PathLike,
    *,
    modules: Mapping[str, nn.Module],
    config: Mapping[str, Any],
    step: int = 0,
    metrics: Mapping | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    extra: Mapping | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then rename)."""
    from sempix import __version__
    from sempix.image import atomic_output

    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "sempix_version": __version__,
        "config": dict(config),
        "state_dicts": {
            k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in modules.items()
        },
        "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()},
        "step": int(step),
        "metrics": dict(metrics or {}),
        "rng": {"torch": torch.get_rng_state(), "numpy": _np_state()},
    }
    if extra:
        ckpt["extra"] = dict(extra)
    with atomic_output(path, force=True) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def _np_state() -> dict:
    s = np.random.get_state()
    return {"keys": torch.from_numpy(s[1].astype(np.int64)), "pos": int(s[2])}


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors only,
    ``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: checkpoint not found")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        if reason.startswith("Weights only load failed"):
            # torch's text goes on to suggest weights_only=False, which sempix never does
            reason = "not a tensors-only torch file; sempix never loads pickled code"
        raise InputError(f"{p}: not a readable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{p}: not a sempix checkpoint")
    return ckpt


def _cycle(data: Iterable, counter: list[int]) -> Iterator:
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise InputError("the training data yielded no batch")
        counter[0] += 1


def train(
    modules: Mapping[str, nn.Module],
    step_fn: Callable[[Any, TrainContext], Mapping[str, Any]],
    data: Iterable,
    config: TrainConfig,
    *,
    optimize: Mapping[str, Iterable[str]] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    model_config: Mapping[str, Any] | None = None,
    evaluate: Callable[[TrainContext], Mapping[str, float]] | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train ``modules`` with ``step_fn`` on ``data`` (see the module docstring).

    Parameters
    ----------
    modules : name -> module; moved to the config's device.
    step_fn : ``step(batch, ctx) -> {loss name: tensor, "log_x": scalar, ...}``.
    data : re-iterable source of batches (an epoch is one pass; it is cycled).
    config : :class:`TrainConfig`.
    optimize : optimiser name -> names of the modules it updates (default: one optimiser per
        module, named like it). Modules in none of them are not trained.
    checkpoint : where to write checkpoints (atomic); None = no checkpoint.
    resume : a checkpoint to continue from (its modules, optimisers, step and RNG state).
    model_config : what is needed to rebuild the modules (stored as ``config["model"]``).
    evaluate : ``evaluate(ctx) -> metrics``, run with the modules in eval mode and no grad.
    progress : ``progress(fraction, message)``.
    """
    cfg = config.validate()
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    mods = {k: m.to(device) for k, m in modules.items()}
    groups = (
        {k: [k] for k in mods} if optimize is None else {k: list(v) for k, v in optimize.items()}
    )
    for name, members in groups.items():
        for m in members:
            if m not in mods:
                raise InputError(f"optimiser {name!r} refers to unknown module {m!r}")
    opts = {
        name: make_optimizer(
            [p for m in members for p in mods[m].parameters()], cfg, _lr_of(cfg, name)
        )
        for name, members in groups.items()
    }
    base_lrs = {name: [g["lr"] for g in o.param_groups] for name, o in opts.items()}
    start = 0
    history: list[dict] = []
    if resume is not None:
        ck = load_checkpoint(resume, map_location=device)
        for k, m in mods.items():
            if k in ck["state_dicts"]:
                m.load_state_dict(ck["state_dicts"][k])
        for k, o in opts.items():
            if k in ck.get("optimizers", {}):
                o.load_state_dict(ck["optimizers"][k])
        base_lrs = ck.get("extra", {}).get("base_lrs", base_lrs)
        start = int(ck["step"])
        history = list(ck.get("extra", {}).get("history", []))
        rng = ck.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "numpy" in rng:
            st = np.random.get_state()
            np.random.set_state(
                (st[0], rng["numpy"]["keys"].numpy().astype(np.uint32), rng["numpy"]["pos"], 0, 0.0)
            )
    full_config = {"train": cfg.to_dict(), "model": dict(model_config or {})}
    ctx = TrainContext(mods, opts, device, cfg, start)
    epochs = [0]
    it = _cycle(data, epochs)
    logs: dict[str, float] = {}
    best = None
    bad = 0
    stopped = False
    t0 = time.perf_counter()

    def _save(step: int, metrics: Mapping) -> None:
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                modules=mods,
                config=full_config,
                step=step,
                metrics=metrics,
                optimizers=opts,
                extra={"history": history, "base_lrs": base_lrs},
            )

    def _evaluate(step: int) -> dict:
        for m in mods.values():
            m.eval()
        with torch.no_grad():
            met = {k: float(v) for k, v in evaluate(ctx).items()}
        for m in mods.values():
            m.train()
        met["step"] = step
        history.append(met)
        return met

    for m in mods.values():
        m.train()
    step = start
    for step in range(start, cfg.steps):
        ctx.step = step
        f = lr_factor(cfg, step)
        for name, o in opts.items():
            for g, lr0 in zip(o.param_groups, base_lrs[name]):
                g["lr"] = lr0 * f
            o.zero_grad(set_to_none=True)
        acc: dict[str, float] = {}
        for _ in range(cfg.accumulate):
            out = step_fn(next(it), ctx)
            losses = [v for k, v in out.items() if not k.startswith("log_")]
            if losses:
                total = sum(losses) / cfg.accumulate
                if not torch.isfinite(total):
                    raise SempixError(f"training diverged at step {step} (loss {float(total)})")
                total.backward()
            for k, v in out.items():
                acc[k] = (
                    acc.get(k, 0.0)
                    + float(v.detach() if torch.is_tensor(v) else v) / cfg.accumulate
                )
        for name, o in opts.items():
            if cfg.grad_clip > 0:
                params = [p for g in o.param_groups for p in g["params"] if p.grad is not None]
                if params:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            o.step()
        logs = acc
        done = step + 1
        msg = " ".join(f"{k}={v:.4g}" for k, v in list(logs.items())[:4])
        report(progress, done / max(1, cfg.steps), f"step {done}/{cfg.steps} {msg}")
        if (
            evaluate is not None
            and cfg.eval_every
            and done % cfg.eval_every == 0
            and done < cfg.steps
        ):
            met = _evaluate(done)
            if cfg.early_stop:
                v = met.get(cfg.monitor)
                if v is not None and (
                    best is None or (v < best if cfg.mode == "min" else v > best)
                ):
                    best, bad = v, 0
                else:
                    bad += 1
                    if bad >= cfg.early_stop:
                        stopped = True
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            _save(done, logs)
        if stopped:
            break
    final = step + 1 if cfg.steps > start else start
    metrics = dict(logs)
    if evaluate is not None:
        metrics.update(_evaluate(final))
    _save(final, metrics)
    return TrainResult(
        step=final,
        logs=logs,
        history=history,
        checkpoint=Path(checkpoint) if checkpoint is not None else None,
        seconds=time.perf_counter() - t0,
        epochs=epochs[0],
        stopped_early=stopped,
    )
