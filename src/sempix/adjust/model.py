"""SA-AdjustNet (Nam & Kim, "Deep Semantics-Aware Photo Adjustment") as plain PyTorch modules.

Data flow for one image at network resolution (h, w) and P query pixels::

    rgb (1, 3, h, w) --backbone (ADE20K DeepLabV3+ MobileNetV2 encoder)--> stride4/8/16 maps
        hypercolumn at the stride-8 grid: each map / its per-pixel L2 norm, + ReNet(hypercolumn)
        / its norm, concatenated, 1x1 conv "squeeze" -> context map (1, Cz, h/8, w/8)
    lab (1, 3, h, w) -> [lab / 100, conv3x3(lab) / ||conv3x3(lab)||]   colour features (Cx)
    sampled at the P pixels -> x (P, Cx), z (P, Cz)
    out = P^T (tanh(U^T x + b_x) * tanh(V^T z + b_z)) + b;  prediction = lab / 100 + out

Variant ``S`` replaces z by a K-channel softmax "adjustment map": one bilinear output per preset
(z = one-hot preset), blended by the map's probabilities. The context-free baseline uses a learned
constant z (a global colour mapping). :class:`YanNet` is the Yan et al.-style baseline.

What replaces ResNet-50: the only pretrained segmentation network available here is the ADE20K
DeepLabV3+ MobileNetV2 (the ``ade20k`` feature backend, converted to PyTorch), so its encoder's
stride-4/8/16 stages (24/32/96 channels) are the hypercolumn; it is ~20x cheaper than ResNet-50's
first three stages, which is what makes CPU training feasible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdjustConfig", "BilinearHead", "ReNet", "SAAdjustNet", "YanNet", "VARIANTS"]

#: model variants: the four ablations of the paper + the two baselines
VARIANTS = ("mse", "huber", "huber-mt", "huber-mt-s", "context-free", "yan")
STAGES = ("stride4", "stride8", "stride16")


@dataclass
class AdjustConfig:
    """Architecture + loss choice of one style (stored in the style file)."""

    variant: str = "huber-mt"
    k: int = 2  # presets of variant S
    color_channels: int = 16  # first-layer conv features
    context_channels: int = 64  # squeeze output (paper: 512)
    renet_channels: int = 16  # per direction (paper: 1024 in total)
    rank: int = 64  # bilinear rank
    num_classes: int = 151  # scene-parsing head (ADE20K labels)
    yan_scales: tuple[int, ...] = (1, 3, 9)  # Yan baseline: label-histogram pooling radii
    yan_hidden: int = 64
    map_init_std: float = 2.0  # variant S: init of the map layer (logit std ~1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["yan_scales"] = list(self.yan_scales)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AdjustConfig:
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "yan_scales" in kw:
            kw["yan_scales"] = tuple(kw["yan_scales"])
        return cls(**kw)

    @property
    def uses_context(self) -> bool:
        return self.variant not in ("context-free", "yan")

    @property
    def multitask(self) -> bool:
        return self.variant in ("huber-mt", "huber-mt-s")

    @property
    def adjustment_map(self) -> bool:
        return self.variant == "huber-mt-s"


def _unit(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Divide a (N, C, ...) map by its per-pixel L2 norm over channels."""
    return x / (x.norm(dim=1, keepdim=True) + eps)


class BilinearHead(nn.Module):
    """Low-rank bilinear model ``P^T (tanh(U^T x + b_x) * tanh(V^T z + b_z)) + b``.

    ``x`` (..., cx), ``z`` (..., cz) -> (..., out). All-zero weights give 0 (the residual
    identity of the adjustment network).
    """

    def __init__(self, cx: int, cz: int, rank: int, out: int = 3) -> None:
        super().__init__()
        self.U = nn.Linear(cx, rank)
        self.V = nn.Linear(cz, rank)
        self.P = nn.Linear(rank, out)
        nn.init.zeros_(self.P.weight)  # start at the identity mapping
        nn.init.zeros_(self.P.bias)

    def joint(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.U(x))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.P(torch.tanh(self.U(x)) * torch.tanh(self.V(z)))


class ReNet(nn.Module):
    """Four directional GRU sweeps (left/right over rows, then up/down over columns), batch norm.

    (N, C, h, w) -> (N, 2 * hidden, h, w).
    """

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.horizontal = nn.GRU(cin, hidden, batch_first=True, bidirectional=True)
        self.bn1 = nn.BatchNorm2d(2 * hidden)
        self.vertical = nn.GRU(2 * hidden, hidden, batch_first=True, bidirectional=True)
        self.bn2 = nn.BatchNorm2d(2 * hidden)

    @staticmethod
    def _sweep(gru: nn.GRU, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(n * h, w, c)  # each row a sequence
        y, _ = gru(seq)
        return y.reshape(n, h, w, -1).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self._sweep(self.horizontal, x))
        x = self._sweep(self.vertical, x.transpose(2, 3)).transpose(2, 3)
        return self.bn2(x)


def encoder_only(net: nn.Module) -> nn.Module:
    """Drop the parts of a DeepLabV3Plus the hypercolumn does not use (ASPP, decoder, classifier,
    blocks after ``stride16``); :meth:`encoder_stages` keeps working."""
    from sempix.nets.deeplab import _stage_blocks

    last = max(_stage_blocks(net.config)[s] for s in STAGES)
    net.blocks = nn.ModuleList(list(net.blocks)[: last + 1])
    net.aspp = None
    net.decoder = None
    net.classifier = None
    return net


def sample_at(fmap: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``fmap`` (1, C, h, w) at normalised coords ``grid`` (P, 2) (x, y in
    [-1, 1], align_corners=False) -> (P, C)."""
    g = grid.view(1, 1, -1, 2).to(fmap.dtype)
    s = F.grid_sample(fmap, g, mode="bilinear", padding_mode="border", align_corners=False)
    return s[0, :, 0].T


class SAAdjustNet(nn.Module):
    """The adjustment network (see the module docstring). ``backbone``: a DeepLabV3Plus (its
    encoder is used; pass ``None`` for the context-free baseline)."""

    def __init__(self, config: AdjustConfig, backbone: nn.Module | None) -> None:
        super().__init__()
        self.config = cfg = config
        self.color_conv = nn.Conv2d(3, cfg.color_channels, 3, padding=1, padding_mode="replicate")
        cx = 3 + cfg.color_channels
        self.backbone = None
        if cfg.uses_context:
            if backbone is None:
                raise ValueError(f"variant {cfg.variant!r} needs a backbone")
            self.backbone = encoder_only(backbone)
            with torch.no_grad():
                probe = self.backbone.encoder_stages(torch.zeros(1, 3, 32, 32), names=STAGES)
            hyper = sum(t.shape[1] for t in probe.values())
            self.renet = ReNet(hyper, cfg.renet_channels)
            self.squeeze = nn.Conv2d(hyper + 2 * cfg.renet_channels, cfg.context_channels, 1)
            if cfg.multitask:
                self.parse = nn.Conv2d(cfg.context_channels, cfg.num_classes, 1)
            if cfg.adjustment_map:
                self.to_map = nn.Conv2d(cfg.context_channels, cfg.k, 1)
                # symmetry breaking: the squeezed context is small (~0.1 per channel), so the
                # default init gives logits of std ~0.05 and maps uniform to +-3 %; with every
                # preset predicting the same colour at the start the map then gets no gradient.
                # A larger init (logit std ~1) starts the presets on different (semantically
                # coherent) pixel sets so that they specialise.
                nn.init.normal_(self.to_map.weight, std=cfg.map_init_std)
                nn.init.zeros_(self.to_map.bias)
                # moving soft preset frequencies of the loss re-weighting (training state; a
                # buffer of the map layer so that it travels with the non-backbone weights)
                self.to_map.register_buffer("preset_freq", torch.full((cfg.k,), 1.0 / cfg.k))
                cz = cfg.k
            else:
                cz = cfg.context_channels
        else:
            self.z_const = nn.Parameter(torch.zeros(8))
            cz = 8
        self.head = BilinearHead(cx, cz, cfg.rank)

    # ------------------------------------------------------------------------------------------
    def color_features(self, lab: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) CIELab -> (N, 3 + C, h, w): Lab / 100 and the unit-norm conv features."""
        ln = lab / 100.0
        return torch.cat([ln, _unit(self.color_conv(ln))], dim=1)

    def context(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) RGB in [0, 1] -> squeezed context map (N, Cz, h8, w8)."""
        st = self.backbone.encoder_stages(rgb, names=STAGES)
        size = st["stride8"].shape[2:]
        maps = [
            _unit(F.interpolate(t, size=size, mode="bilinear", align_corners=False)
                  if t.shape[2:] != size else t)
            for t in st.values()
        ]
        hyper = torch.cat(maps, dim=1)
        return self.squeeze(torch.cat([hyper, _unit(self.renet(hyper))], dim=1))

    def forward(self, rgb: torch.Tensor, lab: torch.Tensor, grid: torch.Tensor | None = None,
                presets: torch.Tensor | None = None) -> dict:
        """Predict at the query pixels.

        Parameters
        ----------
        rgb, lab : (1, 3, h, w) input image (sRGB in [0, 1]) and its CIELab
        grid : (P, 2) normalised (x, y) query coordinates; None = every pixel (row-major)
        presets : (P, K) user adjustment-map probabilities replacing the predicted ones, or a
            function of the predicted (P, K) probabilities returning new ones (variant S only)

        Returns
        -------
        dict: ``out`` (P, 3) predicted Lab / 100 (expectation over presets for S);
        ``per_preset`` (P, K, 3) and ``probs`` (P, K) for S; ``parse`` (P, classes) with MT.
        """
        h, w = lab.shape[2:]
        if grid is None:
            ys = (torch.arange(h, dtype=lab.dtype) + 0.5) / h * 2 - 1
            xs = (torch.arange(w, dtype=lab.dtype) + 0.5) / w * 2 - 1
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(lab.device)
        cf = sample_at(self.color_features(lab), grid)  # (P, cx)
        base = cf[:, :3]
        res: dict = {}
        cfg = self.config
        if not cfg.uses_context:
            z = self.z_const.expand(cf.shape[0], -1)
            res["out"] = base + self.head(cf, z)
            return res
        ctx = self.context(rgb)
        if cfg.multitask:
            res["parse"] = sample_at(self.parse(ctx), grid)
        if cfg.adjustment_map:
            probs = torch.softmax(sample_at(self.to_map(ctx), grid), dim=1)
            if presets is not None:
                probs = presets(probs) if callable(presets) else presets.to(probs)
            eye = torch.eye(cfg.k, dtype=cf.dtype, device=cf.device)
            tz = torch.tanh(self.head.V(eye))  # (K, rank)
            joint = self.head.joint(cf)  # (P, rank)
            per = self.head.P(joint[:, None, :] * tz[None]) + base[:, None, :]  # (P, K, 3)
            res.update(per_preset=per, probs=probs, out=(probs[..., None] * per).sum(1))
            return res
        res["out"] = base + self.head(cf, sample_at(ctx, grid))
        return res

    def adjustment_maps(self, rgb: torch.Tensor) -> torch.Tensor:
        """(1, K, h8, w8) preset probabilities (variant S)."""
        return torch.softmax(self.to_map(self.context(rgb)), dim=1)


class YanNet(nn.Module):
    """Yan et al.-style baseline: multi-scale pooled ADE20K label histograms + colour -> MLP ->
    a per-pixel quadratic colour transform (3 x 10 coefficients) applied to the Lab colour."""

    def __init__(self, config: AdjustConfig) -> None:
        super().__init__()
        self.config = cfg = config
        fin = 3 + cfg.num_classes * len(cfg.yan_scales)
        self.mlp = nn.Sequential(nn.Linear(fin, cfg.yan_hidden), nn.ReLU(),
                                 nn.Linear(cfg.yan_hidden, cfg.yan_hidden), nn.ReLU(),
                                 nn.Linear(cfg.yan_hidden, 30))
        nn.init.zeros_(self.mlp[-1].weight)
        with torch.no_grad():  # identity transform at start: out = lab
            b = torch.zeros(3, 10)
            b[0, 0] = b[1, 1] = b[2, 2] = 1.0
            self.mlp[-1].bias.copy_(b.reshape(-1))

    @staticmethod
    def quadratic_basis(c: torch.Tensor) -> torch.Tensor:
        L, a, b = c.unbind(-1)
        one = torch.ones_like(L)
        return torch.stack([L, a, b, L * L, a * a, b * b, L * a, L * b, a * b, one], dim=-1)

    def histograms(self, labels: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(h, w) int labels -> (1, classes * scales, h8, w8) pooled label histograms."""
        h8, w8 = max(1, -(-h // 8)), max(1, -(-w // 8))
        onehot = F.one_hot(labels.long(), self.config.num_classes).permute(2, 0, 1)[None].float()
        cell = F.adaptive_avg_pool2d(onehot, (h8, w8))
        outs = [F.avg_pool2d(cell, 2 * s + 1 if s > 1 else 1, stride=1, padding=s if s > 1 else 0,
                             count_include_pad=False) if s > 1 else cell
                for s in self.config.yan_scales]
        return torch.cat(outs, dim=1)

    def forward(self, rgb: torch.Tensor, lab: torch.Tensor, grid: torch.Tensor,
                labels: torch.Tensor) -> dict:
        h, w = lab.shape[2:]
        c = sample_at(lab / 100.0, grid)
        hist = sample_at(self.histograms(labels, h, w).to(lab), grid)
        coef = self.mlp(torch.cat([c, hist], dim=1)).view(-1, 3, 10)
        return {"out": torch.einsum("pij,pj->pi", coef, self.quadratic_basis(c))}
