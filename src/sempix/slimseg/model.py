"""Slim-DeepLabV3+ MobileNetV2: one network, every layer slimmable, switchable batch norm.

The architecture is that of :class:`sempix.nets.deeplab.DeepLabV3Plus` (the ADE20K network,
same stage names and strides), with every convolution a :class:`~sempix.slimseg.layers.SlimConv2d`
followed by a :class:`~sempix.slimseg.layers.SwitchableBatchNorm2d` (the source model has its batch
norms folded into the convolutions; slimmable training needs one batch norm per width), plus a
boundary head used in training only.

Units (``ConvBN``: slim conv + switchable BN + activation):

``stem``, ``blocks[i].{expand, depthwise, project}``
    MobileNetV2 encoder (output stride 8, dilated last stages).
``aspp.{pool_conv, conv, project}``
    image pooling (``pool_conv`` is a plain slim 1x1 convolution with a bias: batch norm on a 1x1
    pooled map needs batches > 1), 1x1 branch, projection of their concatenation.
``decoder.{low_level, dw0, pw0, dw1, pw1}``
    DeepLabV3+ decoder at stride 4.
``classifier``
    1x1 convolution to the logits (output channels are never slimmed).
``boundary.{unit, out}``
    boundary head: a slimmable 3x3 unit on the decoder's stride-4 low-level features + 1x1 conv to
    one logit (sigmoid = boundary probability). Built when ``SlimSegConfig.boundary_head``; run only
    when asked (training); never part of the FLOPs of inference.

Pretrained start (:func:`from_deeplab`): the x1.0 sub-network gets the ADE20K weights with the
channels of every *channel space* (a tensor between layers, e.g. a block's expanded hidden map,
or a residual stream shared by a run of blocks) permuted so that the most important channels come
first, hence survive in the narrow widths. Importance of channel ``c`` of a space =
(sum over the layers that *produce* it of the L1 norm of their filter ``c``, each layer's norms
divided by their mean) x (the same for the layers that *consume* it, L1 norm of input column
``c``). With batch norm folded into the source convolutions, a channel whose filters are small on
both sides carries little signal. Every producer (output rows, biases, depthwise filters) and
consumer (input columns) of a space is permuted the same way, so the x1.0 network computes exactly
the source network's function (tested). Batch norms start as identities that keep the folded
biases; :func:`calibrate_bn` then sets each width's batch-norm statistics and affine parameters
from a batch of images without changing the function on that batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sempix.nets.deeplab import BlockSpec, DeepLabConfig, DeepLabV3Plus
from sempix.slimseg.layers import (
    SlimConv2d,
    SwitchableBatchNorm2d,
    active_channels,
    get_width,
    set_width,
)

__all__ = [
    "DEFAULT_WIDTHS",
    "SlimDeepLab",
    "SlimOutput",
    "SlimSegConfig",
    "calibrate_bn",
    "channel_order",
    "count_flops",
    "from_deeplab",
    "load_slimseg",
    "parse_widths",
    "pretrained_slimseg",
]

DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)


def parse_widths(widths: str | Sequence[float]) -> tuple[float, ...]:
    """``"0.25,0.5,1"`` or a sequence -> sorted unique widths in (0, 1]."""
    if isinstance(widths, str):
        try:
            vals = [float(v) for v in widths.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"widths must be numbers separated by commas, got {widths!r}") \
                from None
    else:
        vals = [float(v) for v in widths]
    if not vals or any(not 0.0 < v <= 1.0 for v in vals):
        raise ValueError(f"widths must be in (0, 1], got {widths!r}")
    return tuple(sorted(set(vals)))


@dataclass(frozen=True)
class SlimSegConfig:
    """Architecture of :class:`SlimDeepLab` (stored with every checkpoint).

    ``arch`` is the full-width DeepLabV3+ (its ``num_classes`` is the model's), ``widths`` the
    switchable width multipliers, ``boundary_head`` whether the training-only boundary head exists.
    """

    arch: DeepLabConfig = field(default_factory=DeepLabConfig)
    widths: tuple[float, ...] = DEFAULT_WIDTHS
    boundary_head: bool = True

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    def to_dict(self) -> dict:
        return {
            "arch": self.arch.to_dict(),
            "widths": list(self.widths),
            "boundary_head": self.boundary_head,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> SlimSegConfig:
        return cls(
            arch=DeepLabConfig.from_dict(d["arch"]),
            widths=parse_widths(d["widths"]),
            boundary_head=bool(d.get("boundary_head", True)),
        )


class SlimOutput(NamedTuple):
    """``logits`` (N, C, h, w), ``features`` (N, 256 w, h, w), ``boundary`` logits (N, 1, h, w)
    or None; h = ceil(H / 4) unless upsampled."""

    logits: torch.Tensor
    features: torch.Tensor
    boundary: torch.Tensor | None


_ACTS = {"relu6": F.relu6, "relu": F.relu, None: None}


class ConvBN(nn.Module):
    """Slim convolution + switchable batch norm + activation (``relu6`` | ``relu`` | None)."""

    def __init__(self, cin, cout, k, widths, *, act=None, stride=1, dilation=1,
                 depthwise=False, slim_in=True) -> None:
        super().__init__()
        self.conv = SlimConv2d(cin, cout, k, stride=stride, dilation=dilation,
                               depthwise=depthwise, slim_in=slim_in)
        self.bn = SwitchableBatchNorm2d(self.conv.out_parts, widths)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        f = _ACTS[self.act]
        return y if f is None else f(y)


class SlimInvertedResidual(nn.Module):
    def __init__(self, cin: int, spec: BlockSpec, widths) -> None:
        super().__init__()
        hidden = cin * spec.expand
        self.spec = spec
        self.expand = ConvBN(cin, hidden, 1, widths, act="relu6") if spec.expand != 1 else None
        self.depthwise = ConvBN(hidden, hidden, 3, widths, act="relu6", stride=spec.stride,
                                dilation=spec.dilation, depthwise=True)
        self.project = ConvBN(hidden, spec.out, 1, widths)
        self.residual = spec.stride == 1 and cin == spec.out

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        h = x if self.expand is None else self.expand(x)
        h = self.depthwise(h)
        y = self.project(h)
        if self.residual:
            y = y + x
        return (y, h) if return_hidden else y


class SlimASPP(nn.Module):
    def __init__(self, cin: int, ch: int, widths) -> None:
        super().__init__()
        self.pool_conv = SlimConv2d(cin, ch, 1, bias=True)
        self.conv = ConvBN(cin, ch, 1, widths, act="relu")
        self.project = ConvBN((ch, ch), ch, 1, widths, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = F.relu(self.pool_conv(x.mean(dim=(2, 3), keepdim=True)))
        p = p.expand(-1, -1, x.shape[2], x.shape[3])
        return self.project(torch.cat([p, self.conv(x)], dim=1))


class SlimDecoder(nn.Module):
    def __init__(self, low_in: int, low_ch: int, aspp_ch: int, ch: int, widths) -> None:
        super().__init__()
        cat = (aspp_ch, low_ch)
        self.low_level = ConvBN(low_in, low_ch, 1, widths, act="relu")
        self.dw0 = ConvBN(cat, cat, 3, widths, act="relu", depthwise=True)
        self.pw0 = ConvBN(cat, ch, 1, widths, act="relu")
        self.dw1 = ConvBN(ch, ch, 3, widths, act="relu", depthwise=True)
        self.pw1 = ConvBN(ch, ch, 1, widths, act="relu")

    def forward(self, aspp: torch.Tensor, low: torch.Tensor):
        low = self.low_level(low)
        up = F.interpolate(aspp, size=low.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([up, low], dim=1)
        x = self.pw0(self.dw0(x))
        return self.pw1(self.dw1(x)), low


class BoundaryHead(nn.Module):
    """Slimmable unit (3x3 conv + BN + ReLU) + 1x1 conv to one boundary logit."""

    def __init__(self, ch: int, widths) -> None:
        super().__init__()
        self.unit = ConvBN(ch, ch, 3, widths, act="relu")
        self.out = SlimConv2d(ch, 1, 1, bias=True, slim_out=False)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.out(self.unit(low))


class SlimDeepLab(nn.Module):
    """Slimmable DeepLabV3+ MobileNetV2 (see the module docstring).

    Parameters
    ----------
    config : SlimSegConfig

    Examples
    --------
    >>> net = SlimDeepLab(SlimSegConfig(DeepLabConfig(num_classes=11)))
    >>> set_width(net, 0.5)
    >>> net.eval()(torch.rand(1, 3, 180, 240)).logits.shape     # (1, 11, 45, 60)
    """

    def __init__(self, config: SlimSegConfig | None = None) -> None:
        super().__init__()
        cfg = config or SlimSegConfig()
        self.config = cfg
        a, widths = cfg.arch, cfg.widths
        self.width = max(widths)
        self.stem = ConvBN(3, a.stem_channels, 3, widths, act="relu6", stride=2, slim_in=False)
        blocks, cin, block_in = [], a.stem_channels, []
        for spec in a.blocks:
            block_in.append(cin)
            blocks.append(SlimInvertedResidual(cin, spec, widths))
            cin = spec.out
        self.blocks = nn.ModuleList(blocks)
        self.aspp = SlimASPP(cin, a.aspp_channels, widths)
        lb = a.blocks[a.low_level_block]
        self.decoder = SlimDecoder(block_in[a.low_level_block] * lb.expand, a.low_level_channels,
                                   a.aspp_channels, a.decoder_channels, widths)
        self.classifier = SlimConv2d(a.decoder_channels, a.num_classes, 1, bias=True,
                                     slim_out=False)
        self.boundary = BoundaryHead(a.low_level_channels, widths) if cfg.boundary_head else None
        set_width(self, self.width)

    @property
    def widths(self) -> tuple[float, ...]:
        return self.config.widths

    def set_width(self, width: float) -> SlimDeepLab:
        """Switch every layer to ``width`` (one of ``self.widths``)."""
        return set_width(self, width)

    def forward(self, x: torch.Tensor, *, upsample: bool = False,
                boundary: bool | None = None) -> SlimOutput:
        """Logits, penultimate features and (training) boundary logits at the current width.

        Parameters
        ----------
        x : (N, 3, H, W) RGB in [0, 1]
        upsample : resize the outputs to (H, W) (bilinear, align-corners).
        boundary : run the boundary head (default: in training mode, when the model has one).
        """
        h = self.stem(x * 2.0 - 1.0)
        low = None
        for i, block in enumerate(self.blocks):
            if i == self.config.arch.low_level_block:
                h, low = block(h, return_hidden=True)
            else:
                h = block(h)
        feats, low48 = self.decoder(self.aspp(h), low)
        logits = self.classifier(feats)
        run_b = self.training if boundary is None else boundary
        b = self.boundary(low48) if (run_b and self.boundary is not None) else None
        if upsample:
            size = x.shape[2:]
            up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=True)  # noqa: E731
            logits, feats = up(logits), up(feats)
            b = up(b) if b is not None else None
        return SlimOutput(logits, feats, b)


# ------------------------------------------------------------------------------------------------
# FLOPs and parameters


def count_flops(model: SlimDeepLab, width: float, size: tuple[int, int] = (360, 480)) -> dict:
    """Multiply-adds and parameters of the inference network at ``width`` for an input ``size``.

    The boundary head (training only) is excluded.

    Returns
    -------
    dict ``{"width", "macs", "params"}`` (multiply-accumulates of convolutions; parameters
    of the active convolution weights/biases and batch norms).
    """
    prev = get_width(model)
    set_width(model, width)
    macs = [0]
    params = [0]
    hooks = []
    skip = set(model.boundary.modules()) if model.boundary is not None else set()

    def conv_hook(m, inp, out):
        w, b, _groups = m.active_weight()
        macs[0] += out.shape[2] * out.shape[3] * w.numel()
        params[0] += w.numel() + (b.numel() if b is not None else 0)

    for m in model.modules():
        if m in skip:
            continue
        if isinstance(m, SlimConv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, SwitchableBatchNorm2d):
            params[0] += 2 * m.active().num_features
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *size, device=next(model.parameters()).device),
                  boundary=False)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
        set_width(model, prev)
    return {"width": float(width), "macs": int(macs[0]), "params": int(params[0])}


# ------------------------------------------------------------------------------------------------
# pretrained start from the ADE20K DeepLabV3+


def _spaces(cfg: DeepLabConfig) -> list[dict]:
    """Channel spaces of a DeepLabV3Plus state dict: producers/consumers with channel offsets.

    Each space is ``{"n": channels, "prod": [(layer, offset)], "cons": [(layer, offset)]}``;
    producers are permuted on their output rows (depthwise filters included), consumers on
    their input columns.
    """
    spaces = []
    stream = {"n": cfg.stem_channels, "prod": [("stem", 0)], "cons": []}
    cin = cfg.stem_channels
    for i, spec in enumerate(cfg.blocks):
        p = f"blocks.{i}"
        if spec.expand != 1:
            stream["cons"].append((f"{p}.expand", 0))
            hidden = {"n": cin * spec.expand, "prod": [(f"{p}.expand", 0), (f"{p}.depthwise", 0)],
                      "cons": [(f"{p}.project", 0)]}
            spaces.append(hidden)
        else:
            stream["prod"].append((f"{p}.depthwise", 0))
            stream["cons"].append((f"{p}.project", 0))
            hidden = stream
        if i == cfg.low_level_block:
            hidden["cons"].append(("decoder.low_level", 0))
        residual = spec.stride == 1 and cin == spec.out
        if residual:
            stream["prod"].append((f"{p}.project", 0))
        else:
            spaces.append(stream)
            stream = {"n": spec.out, "prod": [(f"{p}.project", 0)], "cons": []}
        cin = spec.out
    stream["cons"] += [("aspp.pool_conv", 0), ("aspp.conv", 0)]
    spaces.append(stream)
    a, lo, d = cfg.aspp_channels, cfg.low_level_channels, cfg.decoder_channels
    spaces += [
        {"n": a, "prod": [("aspp.pool_conv", 0)], "cons": [("aspp.project", 0)]},
        {"n": a, "prod": [("aspp.conv", 0)], "cons": [("aspp.project", a)]},
        {"n": a, "prod": [("aspp.project", 0), ("decoder.dw0", 0)], "cons": [("decoder.pw0", 0)]},
        {"n": lo, "prod": [("decoder.low_level", 0), ("decoder.dw0", a)],
         "cons": [("decoder.pw0", a)]},
        {"n": d, "prod": [("decoder.pw0", 0), ("decoder.dw1", 0)], "cons": [("decoder.pw1", 0)]},
        {"n": d, "prod": [("decoder.pw1", 0)], "cons": [("classifier", 0)]},
    ]
    return spaces


def _is_depthwise(w: torch.Tensor) -> bool:
    return w.shape[1] == 1 and w.shape[2] > 1


def channel_order(state_dict: Mapping[str, torch.Tensor], cfg: DeepLabConfig) -> list[dict]:
    """The importance order of every channel space of a DeepLabV3Plus state dict.

    Returns the spaces of :func:`_spaces` with ``"perm"`` (most important channel first) and
    ``"score"`` (importance in the original order) added. See the module docstring.
    """
    out = []
    for sp in _spaces(cfg):
        n = sp["n"]
        prod = torch.zeros(n, dtype=torch.float64)
        cons = torch.zeros(n, dtype=torch.float64)
        for name, off in sp["prod"]:
            w = state_dict[f"{name}.weight"][off: off + n].double()
            v = w.abs().flatten(1).sum(1)
            prod += v / v.mean().clamp_min(1e-12)
        for name, off in sp["cons"]:
            w = state_dict[f"{name}.weight"][:, off: off + n].double()
            v = w.abs().transpose(0, 1).flatten(1).sum(1)
            cons += v / v.mean().clamp_min(1e-12)
        score = prod * (cons if sp["cons"] else 1.0)
        perm = torch.argsort(score, descending=True, stable=True)
        out.append({**sp, "perm": perm, "score": score})
    return out


def _permute(sd: dict, spaces: list[dict]) -> dict:
    sd = {k: v.clone() for k, v in sd.items()}
    for sp in spaces:
        perm, n = sp["perm"], sp["n"]
        for name, off in sp["prod"]:
            for suffix in ("weight", "bias"):
                t = sd[f"{name}.{suffix}"]
                t[off: off + n] = t[off: off + n][perm]
        for name, off in sp["cons"]:
            w = sd[f"{name}.weight"]
            if not _is_depthwise(w):
                w[:, off: off + n] = w[:, off: off + n][:, perm]
    return sd


def from_deeplab(
    source: DeepLabV3Plus | Mapping[str, torch.Tensor],
    *,
    num_classes: int | None = None,
    widths: Sequence[float] = DEFAULT_WIDTHS,
    boundary_head: bool = True,
    arch: DeepLabConfig | None = None,
    permute: bool = True,
    seed: int = 0,
) -> SlimDeepLab:
    """A :class:`SlimDeepLab` whose x1.0 sub-network starts from a DeepLabV3+ (e.g. ADE20K).

    Parameters
    ----------
    source : a :class:`~sempix.nets.deeplab.DeepLabV3Plus` or its state dict.
    num_classes : classes of the new model (default: the source's). With another count the
        classifier is initialised randomly (seeded); with the same count it is copied.
    widths : switchable widths.
    boundary_head : build the training-only boundary head (random init, seeded).
    arch : the source's architecture when ``source`` is a state dict (default: ADE20K's).
    permute : order channels by importance (see the module docstring); False keeps the order.
    seed : seed of the randomly initialised layers.

    Returns
    -------
    SlimDeepLab in training mode at its widest width; every width's batch norms are identities
    that hold the folded biases (run :func:`calibrate_bn` before training with batch statistics).
    """
    if isinstance(source, DeepLabV3Plus):
        src_cfg = source.config
        sd = {k: v.detach().cpu().float() for k, v in source.state_dict().items()}
    else:
        src_cfg = arch or DeepLabConfig()
        sd = {k: v.detach().cpu().float() for k, v in source.items()}
    ncls = src_cfg.num_classes if num_classes is None else int(num_classes)
    cfg = SlimSegConfig(
        arch=DeepLabConfig(**{**src_cfg.__dict__, "num_classes": ncls}),
        widths=parse_widths(widths),
        boundary_head=boundary_head,
    )
    if permute:
        sd = _permute(sd, channel_order(sd, src_cfg))
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = SlimDeepLab(cfg)
    own = model.state_dict()
    new = {}
    for name, mod in model.named_modules():
        if isinstance(mod, ConvBN) and not name.startswith("boundary."):
            w, b = sd[f"{name}.weight"], sd[f"{name}.bias"]
            new[f"{name}.conv.weight"] = w
            sbn = mod.bn
            for k, wd in enumerate(sbn.widths):
                idx = active_channels(sbn.parts, wd)
                pre = f"{name}.bn.bn.{k}"
                new[f"{pre}.weight"] = torch.ones(idx.numel())
                new[f"{pre}.bias"] = b[idx]
                new[f"{pre}.running_mean"] = torch.zeros(idx.numel())
                new[f"{pre}.running_var"] = torch.ones(idx.numel()) - sbn.bn[k].eps
    new["aspp.pool_conv.weight"] = sd["aspp.pool_conv.weight"]
    new["aspp.pool_conv.bias"] = sd["aspp.pool_conv.bias"]
    if ncls == src_cfg.num_classes:
        new["classifier.weight"] = sd["classifier.weight"]
        new["classifier.bias"] = sd["classifier.bias"]
    for k in new:
        if k not in own or own[k].shape != new[k].shape:
            raise ValueError(f"{k}: the source does not match the slim architecture")
    own.update(new)
    model.load_state_dict(own)
    return model


@torch.no_grad()
def calibrate_bn(model: SlimDeepLab, images: torch.Tensor,
                 widths: Sequence[float] | None = None) -> SlimDeepLab:
    """Set every width's batch norms from a batch without changing the function on that batch.

    For each batch norm (in forward order) the statistics ``mu, var`` of its input on
    ``images`` become its running statistics, and its affine parameters are rescaled so that
    normalising with ``mu, var`` gives the same output as before. Train-mode batch norm then
    starts close to the pretrained function (the source network has no batch norm).

    Parameters
    ----------
    images : (N, 3, H, W) RGB in [0, 1], N >= 2.
    widths : the widths to calibrate (default: all).
    """
    prev, was = get_width(model), model.training
    model.eval()

    def pre_hook(bn: nn.BatchNorm2d, inp):
        x = inp[0]
        mu = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - scale * bn.running_mean
        std = torch.sqrt(var + bn.eps)
        bn.weight.copy_(scale * std)
        bn.bias.copy_(shift + scale * mu)
        bn.running_mean.copy_(mu)
        bn.running_var.copy_(var)

    try:
        for w in widths or model.widths:
            set_width(model, w)
            hooks = [m.active().register_forward_pre_hook(pre_hook)
                     for m in model.modules() if isinstance(m, SwitchableBatchNorm2d)]
            try:
                model(images, boundary=model.boundary is not None)
            finally:
                for h in hooks:
                    h.remove()
    finally:
        set_width(model, prev)
        model.train(was)
    return model


def pretrained_slimseg(num_classes: int | None = None, *, widths=DEFAULT_WIDTHS,
                       boundary_head: bool = True, permute: bool = True,
                       seed: int = 0) -> SlimDeepLab:
    """:func:`from_deeplab` on the ADE20K network of the model store.

    The TFLite file ``deeplabv3-mnv2-ade20k`` is converted once and cached by
    :func:`sempix.features.ade20k_torch.load_state` (raises
    :class:`~sempix.errors.ModelUnavailableError` when the file cannot be found).
    """
    from sempix.features.ade20k_torch import load_state

    payload = load_state()
    return from_deeplab(payload["state_dict"], num_classes=num_classes, widths=widths,
                        boundary_head=boundary_head,
                        arch=DeepLabConfig.from_dict(payload["config"]), permute=permute,
                        seed=seed)


def load_slimseg(path, *, device: str = "cpu") -> tuple[SlimDeepLab, dict]:
    """Load a checkpoint of ``sempix slimseg train`` / ``distill``: ``(model in eval mode, ckpt)``.

    The checkpoint (:func:`sempix.train.save_checkpoint` format) holds the model config under
    ``ckpt["config"]["model"]["slimseg"]`` and the weights of all widths under
    ``ckpt["state_dicts"]["model"]``.
    """
    from sempix.errors import InputError
    from sempix.train import load_checkpoint, resolve_device

    dev = resolve_device(device)
    ck = load_checkpoint(path, map_location="cpu")
    try:
        cfg = SlimSegConfig.from_dict(ck["config"]["model"]["slimseg"])
        sd = ck["state_dicts"]["model"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a slimseg checkpoint ({exc})") from None
    model = SlimDeepLab(cfg)
    model.load_state_dict(sd)
    return model.to(dev).eval(), ck
