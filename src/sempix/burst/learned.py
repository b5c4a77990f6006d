"""Learned burst restorer: a configurable RRDB network trained in two stages, and interpolation.

Stage 1 (distortion): L1 loss. Stage 2 (perception), initialised from stage 1: perceptual loss
(L1 between VGG-19 ``relu3_1`` features of the normalised VGG from the model store,
``vgg19-normalised-relu3_1``; any VGG the store holds can be named) + adversarial loss (a small
discriminator, non-saturating GAN) + a small L1 term, the ESRGAN recipe at a CPU-friendly scale.
The P-D curve is traced by network interpolation ``theta = (1 - a) theta_D + a theta_P``.

Both stages run in :func:`sempix.train.train` (seeding, device, checkpoints, resume).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sempix.burst.data import BurstBatches
from sempix.burst.synth import BurstParams
from sempix.errors import InputError
from sempix.nets.rrdb import BurstRRDB, Discriminator, RRDBConfig, interpolate_state
from sempix.progress import ProgressFn, sub_progress
from sempix.train import TrainConfig, load_checkpoint, resolve_device, set_requires_grad, train


@dataclass
class LearnedConfig:
    """Two-stage training settings (stored in the checkpoints).

    Attributes
    ----------
    net : the network's :class:`RRDBConfig` as a dict.
    burst : the :class:`BurstParams` of the training bursts as a dict.
    n_choices, shake_choices, read_choices : per-batch draws (``fusion="mean"`` networks).
    steps_l1, steps_gan : optimiser steps of the two stages.
    lr, lr_d : learning rates (generator, discriminator).
    batch, crop : batch size and HR crop.
    w_l1, w_percep, w_adv : stage-2 loss weights (ESRGAN: 1e-2, 1, 5e-3).
    vgg, vgg_layer : VGG weights (model store name or path) and feature layer of the perceptual
        loss.
    seed, device : see :class:`~sempix.train.TrainConfig`.
    """

    net: dict = field(default_factory=lambda: RRDBConfig().to_dict())
    burst: dict = field(default_factory=lambda: dict(BurstParams().__dict__))
    n_choices: list = field(default_factory=list)
    shake_choices: list = field(default_factory=list)
    read_choices: list = field(default_factory=list)
    steps_l1: int = 300
    steps_gan: int = 300
    lr: float = 2e-4
    lr_d: float = 1e-4
    batch: int = 8
    crop: int = 64
    w_l1: float = 1e-2
    w_percep: float = 1.0
    w_adv: float = 5e-3
    vgg: str = "vgg19-normalised-relu3_1"
    vgg_layer: str = "relu3_1"
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LearnedConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _batches(images, cfg: LearnedConfig, seed_offset: int) -> BurstBatches:
    return BurstBatches(
        images,
        BurstParams(**cfg.burst),
        batch=cfg.batch,
        crop=cfg.crop,
        n_choices=cfg.n_choices or None,
        shake_choices=cfg.shake_choices or None,
        read_choices=cfg.read_choices or None,
        seed=cfg.seed + seed_offset,
    )


def build_network(net_config: dict) -> BurstRRDB:
    """A :class:`BurstRRDB` from its config dict."""
    return BurstRRDB(RRDBConfig.from_dict(net_config))


def train_distortion(
    images: Sequence[np.ndarray],
    cfg: LearnedConfig,
    checkpoint: str | os.PathLike,
    *,
    resume: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
):
    """Stage 1: L1 training. Writes ``checkpoint`` (module ``g``); returns the TrainResult."""
    net = build_network(cfg.net)

    def step(batch, ctx):
        burst, hr = (t.to(ctx.device) for t in batch)
        out = ctx.modules["g"](burst)
        return {"l1": F.l1_loss(out, hr)}

    tc = TrainConfig(
        steps=cfg.steps_l1,
        lr=cfg.lr,
        schedule="cosine",
        min_lr_ratio=0.1,
        warmup=10,
        checkpoint_every=cfg.checkpoint_every,
        seed=cfg.seed,
        device=cfg.device,
    )
    return train(
        {"g": net},
        step,
        _batches(images, cfg, 0),
        tc,
        checkpoint=checkpoint,
        resume=resume,
        model_config={"kind": "burst-rrdb", "stage": "distortion", "learned": cfg.to_dict()},
        progress=progress,
    )


class PerceptualLoss(torch.nn.Module):
    """L1 distance of VGG features (the network is frozen)."""

    def __init__(self, vgg: torch.nn.Module, layer: str) -> None:
        super().__init__()
        self.vgg = vgg
        self.layer = layer
        set_requires_grad(self.vgg, False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.vgg(x.clamp(0, 1), [self.layer])[self.layer]
        with torch.no_grad():
            fy = self.vgg(y, [self.layer])[self.layer]
        return F.l1_loss(fx, fy)


def load_perceptual_network(cfg: LearnedConfig, device) -> torch.nn.Module:
    """The VGG of the perceptual loss (model store; raises ModelUnavailableError when absent).

    Uses retarget's public loader (``sempix.retarget.get_vgg``, cached per process); the VGG module
    belongs in ``sempix.nets`` (design note) and can move there without changing this function.
    """
    from sempix.retarget import get_vgg

    return get_vgg(cfg.vgg, device=str(device))


def train_perception(
    images: Sequence[np.ndarray],
    cfg: LearnedConfig,
    distortion_checkpoint: str | os.PathLike,
    checkpoint: str | os.PathLike,
    *,
    resume: str | os.PathLike | None = None,
    vgg: torch.nn.Module | None = None,
    progress: ProgressFn | None = None,
):
    """Stage 2: perceptual + adversarial (+ small L1), starting from the stage-1 network."""
    device = resolve_device(cfg.device)
    ck = load_checkpoint(distortion_checkpoint)
    net = build_network(ck["config"]["model"]["learned"]["net"])
    net.load_state_dict(ck["state_dicts"]["g"])
    disc = Discriminator(features=32, stages=3)
    percep = PerceptualLoss(
        vgg if vgg is not None else load_perceptual_network(cfg, device), cfg.vgg_layer
    )
    percep.to(device)

    def step(batch, ctx):
        burst, hr = (t.to(ctx.device) for t in batch)
        g, d = ctx.modules["g"], ctx.modules["d"]
        fake = g(burst)
        set_requires_grad(d, False)
        logit_fake = d(fake)
        loss_adv = F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake))
        loss_p = percep(fake, hr)
        loss_l1 = F.l1_loss(fake, hr)
        set_requires_grad(d, True)
        lr_ = d(hr)
        lf_ = d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            lr_, torch.ones_like(lr_)
        ) + F.binary_cross_entropy_with_logits(lf_, torch.zeros_like(lf_))
        return {
            "g": cfg.w_percep * loss_p + cfg.w_adv * loss_adv + cfg.w_l1 * loss_l1,
            "d": loss_d,
            "log_percep": loss_p,
            "log_adv": loss_adv,
            "log_l1": loss_l1,
        }

    tc = TrainConfig(
        steps=cfg.steps_gan,
        lr={"g": cfg.lr * 0.5, "d": cfg.lr_d},
        betas=(0.9, 0.99),
        checkpoint_every=cfg.checkpoint_every,
        seed=cfg.seed + 1,
        device=cfg.device,
    )
    return train(
        {"g": net, "d": disc},
        step,
        _batches(images, cfg, 1),
        tc,
        checkpoint=checkpoint,
        resume=resume,
        model_config={"kind": "burst-rrdb", "stage": "perception", "learned": cfg.to_dict()},
        progress=progress,
    )


def train_two_stage(
    images: Sequence[np.ndarray],
    cfg: LearnedConfig,
    out_dir: str | os.PathLike,
    *,
    vgg: torch.nn.Module | None = None,
    progress: ProgressFn | None = None,
) -> tuple[Path, Path]:
    """Both stages; writes ``out_dir/distortion.pt`` and ``out_dir/perception.pt``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd_, pp = out / "distortion.pt", out / "perception.pt"
    train_distortion(images, cfg, pd_, progress=sub_progress(progress, 0, 0.5))
    train_perception(images, cfg, pd_, pp, vgg=vgg, progress=sub_progress(progress, 0.5, 1))
    return pd_, pp


def load_network(checkpoint: str | os.PathLike, device: str = "cpu") -> BurstRRDB:
    """The generator of a stage-1 or stage-2 checkpoint, in eval mode."""
    ck = load_checkpoint(checkpoint)
    model = ck["config"].get("model", {})
    if model.get("kind") != "burst-rrdb":
        raise InputError(f"{checkpoint}: not a burst restorer checkpoint")
    net = build_network(model["learned"]["net"])
    net.load_state_dict(ck["state_dicts"]["g"])
    return net.to(resolve_device(device)).eval()


def interpolated_network(net_d: BurstRRDB, net_p: BurstRRDB, alpha: float) -> BurstRRDB:
    """A new network with parameters ``(1 - alpha) theta_D + alpha theta_P``."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"interpolation weight must be in [0, 1], got {alpha}")
    net = BurstRRDB(net_d.config)
    net.load_state_dict(interpolate_state(net_d.state_dict(), net_p.state_dict(), alpha))
    return net.to(next(net_d.parameters()).device).eval()


@torch.no_grad()
def restore_learned(net: BurstRRDB, frames: np.ndarray) -> np.ndarray:
    """Run the network on one burst (n, h, w, 3) -> (scale*h, scale*w, 3) float32 in [0, 1]."""
    dev = next(net.parameters()).device
    t = torch.from_numpy(
        np.ascontiguousarray(np.asarray(frames, np.float32).transpose(0, 3, 1, 2))
    )[None]
    out = net(t.to(dev))[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(out, dtype=np.float32)
