"""ESRGAN-style burst super-resolution network (RRDB trunk) and a small discriminator.

Plain PyTorch, no I/O: weights come from checkpoints (:mod:`sempix.train`).

``BurstRRDB(RRDBConfig(...))`` maps a burst ``(N, n, 3, h, w)`` (frame 0 the reference) to an image
``(N, 3, scale*h, scale*w)``. Frames are fused either by concatenation along channels (the thesis:
``fusion="concat"``, fixed burst length ``frames``) or by a shared per-frame head followed by a mean
over frames (``fusion="mean"``: any burst length, one network for every n). The trunk is Wang et
al.'s Residual-in-Residual Dense Block (ESRGAN 2018): ``blocks`` RRDBs of three 5-conv dense blocks
with growth ``growth`` and residual scaling 0.2, then nearest-neighbour x2 upsampling + conv stages.
The output adds a bilinear upsampling of the reference frame (global residual), which makes tiny
networks trainable in a few CPU minutes. Defaults are small (32 features, 2 blocks); the thesis's
network is ``RRDBConfig(features=64, growth=32, blocks=23)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("concat", "mean")


@dataclass
class RRDBConfig:
    """Architecture of :class:`BurstRRDB` (stored in checkpoints)."""

    frames: int = 10
    scale: int = 4
    features: int = 32
    growth: int = 16
    blocks: int = 2
    fusion: str = "mean"
    residual: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RRDBConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class DenseBlock(nn.Module):
    """Five 3x3 convs with dense connections; output scaled by 0.2 and added to the input."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(nf + i * gc, gc, 3, padding=1) for i in range(4)]
            + [nn.Conv2d(nf + 4 * gc, nf, 3, padding=1)]
        )
        for c in self.convs:
            nn.init.kaiming_normal_(c.weight, a=0.2)
            c.weight.data *= 0.1
            nn.init.zeros_(c.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(F.leaky_relu(y, 0.2))
        return x + 0.2 * y


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, residual scaling 0.2."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.b = nn.Sequential(DenseBlock(nf, gc), DenseBlock(nf, gc), DenseBlock(nf, gc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.b(x)


class BurstRRDB(nn.Module):
    """Burst -> HR image. ``forward(burst)`` with burst (N, n, 3, h, w) in [0, 1]."""

    def __init__(self, config: RRDBConfig | None = None) -> None:
        super().__init__()
        cfg = config or RRDBConfig()
        if cfg.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        if cfg.scale not in (1, 2, 4, 8):
            raise ValueError("scale must be 1, 2, 4 or 8")
        self.config = cfg
        nf = cfg.features
        in_ch = 3 * cfg.frames if cfg.fusion == "concat" else 3
        self.head = nn.Conv2d(in_ch, nf, 3, padding=1)
        self.fuse = nn.Conv2d(2 * nf, nf, 1) if cfg.fusion == "mean" else None
        self.trunk = nn.Sequential(*[RRDB(nf, cfg.growth) for _ in range(cfg.blocks)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.ups = nn.ModuleList(
            [nn.Conv2d(nf, nf, 3, padding=1) for _ in range(int(math.log2(cfg.scale)))]
        )
        self.hr_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.last = nn.Conv2d(nf, 3, 3, padding=1)
        if cfg.residual:
            nn.init.zeros_(self.last.weight)
            nn.init.zeros_(self.last.bias)

    def forward(self, burst: torch.Tensor) -> torch.Tensor:
        if burst.dim() != 5:
            raise ValueError(f"expected a burst (N, n, 3, h, w), got {tuple(burst.shape)}")
        N, n, C, h, w = burst.shape
        cfg = self.config
        if cfg.fusion == "concat":
            if n != cfg.frames:
                raise ValueError(f"this network takes bursts of {cfg.frames} frames, got {n}")
            feat = F.leaky_relu(self.head(burst.reshape(N, n * C, h, w)), 0.2)
        else:
            f = F.leaky_relu(self.head(burst.reshape(N * n, C, h, w)), 0.2).reshape(N, n, -1, h, w)
            feat = F.leaky_relu(self.fuse(torch.cat([f[:, 0], f.mean(1)], 1)), 0.2)
        x = feat + self.trunk_conv(self.trunk(feat))
        for up in self.ups:
            x = F.leaky_relu(up(F.interpolate(x, scale_factor=2, mode="nearest")), 0.2)
        out = self.last(F.leaky_relu(self.hr_conv(x), 0.2))
        if cfg.residual:
            ref = burst[:, 0]
            if cfg.scale > 1:
                ref = F.interpolate(
                    ref, scale_factor=cfg.scale, mode="bilinear", align_corners=False
                )
            out = out + ref
        return out


class Discriminator(nn.Module):
    """Small VGG-style discriminator (strided convs, LeakyReLU, global average pooling, linear).

    ``forward(x)`` with x (N, 3, H, W) -> (N,) logits.
    """

    def __init__(self, features: int = 32, stages: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), nn.LeakyReLU(0.2)]
        c = features
        for i in range(stages):
            c2 = min(features * 2 ** (i + 1), 256)
            layers += [
                nn.Conv2d(c, c2, 4, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(c2, c2, 3, padding=1),
                nn.LeakyReLU(0.2),
            ]
            c = c2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))[:, 0]


def interpolate_state(
    state_d: dict[str, torch.Tensor], state_p: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """Network interpolation ``theta = (1 - alpha) theta_D + alpha theta_P`` (floating tensors
    only)."""
    if state_d.keys() != state_p.keys():
        raise ValueError("the two networks have different parameters")
    out = {}
    for k, vd in state_d.items():
        vp = state_p[k]
        out[k] = ((1 - alpha) * vd + alpha * vp) if torch.is_floating_point(vd) else vd.clone()
    return out
