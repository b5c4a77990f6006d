"""DeepLabV3+ with a MobileNetV2 encoder, as an explicit PyTorch module.

This is the architecture of the ADE20K network the ``ade20k`` feature backend runs with LiteRT
(``deeplabv3-mnv2-ade20k``, 151 classes, index 0 = ``others``). The module holds no weights of
its own and never reads files: :mod:`sempix.nets.tflite` converts the TFLite file into a
``(config, state_dict)`` pair and :func:`sempix.features.ade20k_torch.load_deeplab` caches it.

Every layer is a plain :class:`torch.nn.Conv2d` with a bias (batch norm is folded into the
convolutions in the source model), so later work can slim layers or insert batch norms.
Named stages:

``stem``
    3x3 convolution, stride 2, ReLU6.
``blocks[i]``
    MobileNetV2 inverted-residual blocks: ``expand`` (1x1, ReLU6; absent when the expansion
    ratio is 1), ``depthwise`` (3x3, ReLU6, stride/dilation per block), ``project`` (1x1,
    linear), residual when stride 1 and in == out channels.
``aspp``
    image pooling (global average -> ``pool_conv`` 1x1 ReLU, broadcast back) and ``conv``
    (1x1 ReLU), concatenated and ``project``-ed (1x1 ReLU) to 256 channels.
``decoder``
    ``low_level`` (1x1 ReLU on the depthwise output of block ``low_level_block``, stride 4),
    concatenated with the ASPP map resized (bilinear, align-corners) to stride 4, then two
    separable convolutions ``dw0``/``pw0`` and ``dw1``/``pw1`` (ReLU): the penultimate
    256-channel map.
``classifier``
    1x1 convolution to the class logits.

Input: ``(N, 3, H, W)`` RGB in [0, 1] (the module maps it to [-1, 1] itself). Any size works;
stride-2 convolutions pad like TensorFlow's ``SAME`` (extra pixel at the bottom/right for even
sizes), so a 513x513 input gives the source model's 129x129 output grid exactly (sample ``k``
sits on input pixel ``4k``, align-corners).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BlockSpec", "DeepLabConfig", "DeepLabOutput", "DeepLabV3Plus", "InvertedResidual"]


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block: ``expand`` ratio, ``out`` channels, ``stride``, ``dilation``."""

    expand: int
    out: int
    stride: int = 1
    dilation: int = 1


def _ade20k_blocks() -> tuple[BlockSpec, ...]:
    # MobileNetV2 (depth multiplier 1) with output stride 8: the last two stride-2 blocks run
    # at stride 1 with dilation 2 and 4 instead (as read from the TFLite graph).
    spec = [
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 24, 1, 1),
        (6, 32, 2, 1),
        (6, 32, 1, 1),
        (6, 32, 1, 1),
        (6, 64, 1, 1),
        (6, 64, 1, 2),
        (6, 64, 1, 2),
        (6, 64, 1, 2),
        (6, 96, 1, 2),
        (6, 96, 1, 2),
        (6, 96, 1, 2),
        (6, 160, 1, 2),
        (6, 160, 1, 4),
        (6, 160, 1, 4),
        (6, 320, 1, 4),
    ]
    return tuple(BlockSpec(*s) for s in spec)


@dataclass(frozen=True)
class DeepLabConfig:
    """Architecture of :class:`DeepLabV3Plus` (stored with every checkpoint).

    The defaults are those of the ADE20K TFLite model (``deeplabv3-mnv2-ade20k``).
    """

    num_classes: int = 151
    stem_channels: int = 32
    blocks: tuple[BlockSpec, ...] = field(default_factory=_ade20k_blocks)
    aspp_channels: int = 256
    low_level_block: int = 2
    low_level_channels: int = 48
    decoder_channels: int = 256

    def to_dict(self) -> dict:
        """Plain-data form (JSON / ``torch.save`` with ``weights_only=True``)."""
        d = asdict(self)
        d["blocks"] = [list(asdict(b).values()) for b in self.blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DeepLabConfig:
        d = dict(d)
        d["blocks"] = tuple(BlockSpec(*b) for b in d["blocks"])
        return cls(**d)


class DeepLabOutput(NamedTuple):
    """``logits`` (N, C, h, w) and ``features`` (N, 256, h, w), h = ceil(H / 4)."""

    logits: torch.Tensor
    features: torch.Tensor


def same_pad(x: torch.Tensor, k: int, s: int, d: int = 1) -> torch.Tensor:
    """TensorFlow ``SAME`` padding (the extra pixel goes to the bottom/right)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 ``expand`` (optional), 3x3 ``depthwise``, 1x1 linear ``project``."""

    def __init__(self, cin: int, spec: BlockSpec) -> None:
        super().__init__()
        hidden = cin * spec.expand
        self.spec = spec
        self.expand = nn.Conv2d(cin, hidden, 1) if spec.expand != 1 else None
        pad = 0 if spec.stride > 1 else spec.dilation
        self.depthwise = nn.Conv2d(
            hidden,
            hidden,
            3,
            stride=spec.stride,
            padding=pad,
            dilation=spec.dilation,
            groups=hidden,
        )
        self.project = nn.Conv2d(hidden, spec.out, 1)
        self.residual = spec.stride == 1 and cin == spec.out

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        h = x if self.expand is None else F.relu6(self.expand(x))
        if self.spec.stride > 1:
            h = same_pad(h, 3, self.spec.stride, self.spec.dilation)
        h = F.relu6(self.depthwise(h))
        y = self.project(h)
        if self.residual:
            y = y + x
        return (y, h) if return_hidden else y


class ASPP(nn.Module):
    """Image pooling + 1x1 branch, concatenated and projected (DeepLab's MobileNetV2 head)."""

    def __init__(self, cin: int, ch: int) -> None:
        super().__init__()
        self.pool_conv = nn.Conv2d(cin, ch, 1)
        self.conv = nn.Conv2d(cin, ch, 1)
        self.project = nn.Conv2d(2 * ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = F.relu(self.pool_conv(x.mean(dim=(2, 3), keepdim=True)))
        p = p.expand(-1, -1, x.shape[2], x.shape[3])
        return F.relu(self.project(torch.cat([p, F.relu(self.conv(x))], dim=1)))


class Decoder(nn.Module):
    """DeepLabV3+ decoder: low-level 1x1, concat with the upsampled ASPP map, 2 separable convs."""

    def __init__(self, low_in: int, low_ch: int, aspp_ch: int, ch: int) -> None:
        super().__init__()
        cat = aspp_ch + low_ch
        self.low_level = nn.Conv2d(low_in, low_ch, 1)
        self.dw0 = nn.Conv2d(cat, cat, 3, padding=1, groups=cat)
        self.pw0 = nn.Conv2d(cat, ch, 1)
        self.dw1 = nn.Conv2d(ch, ch, 3, padding=1, groups=ch)
        self.pw1 = nn.Conv2d(ch, ch, 1)

    def forward(self, aspp: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        low = F.relu(self.low_level(low))
        up = F.interpolate(aspp, size=low.shape[2:], mode="bilinear", align_corners=True)
        x = torch.cat([up, low], dim=1)
        x = F.relu(self.pw0(F.relu(self.dw0(x))))
        return F.relu(self.pw1(F.relu(self.dw1(x))))


# encoder stages by *nominal* MobileNetV2 stride -> index of the last block at that stride
def _stage_blocks(cfg: DeepLabConfig) -> dict[str, int]:
    out: dict[str, int] = {}
    nominal = 2  # after the stem
    blocks = cfg.blocks
    for i, b in enumerate(blocks):
        # a block runs at a new nominal stride when it has stride 2, or when it is the block
        # whose stride was replaced by dilation (the next block's dilation rate grows)
        grows = i + 1 < len(blocks) and blocks[i + 1].dilation > b.dilation
        if b.stride > 1 or grows:
            nominal *= 2
        out[f"stride{nominal}"] = i
    return out


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ MobileNetV2 (see the module docstring for the stages).

    Parameters
    ----------
    config : DeepLabConfig, optional (default: the ADE20K model's architecture)

    Examples
    --------
    >>> net = DeepLabV3Plus()
    >>> out = net(torch.rand(1, 3, 513, 513))
    >>> out.logits.shape, out.features.shape      # (1, 151, 129, 129), (1, 256, 129, 129)
    """

    def __init__(self, config: DeepLabConfig | None = None) -> None:
        super().__init__()
        cfg = config or DeepLabConfig()
        self.config = cfg
        self.stem = nn.Conv2d(3, cfg.stem_channels, 3, stride=2)
        blocks = []
        cin = cfg.stem_channels
        self._block_in: list[int] = []
        for spec in cfg.blocks:
            self._block_in.append(cin)
            blocks.append(InvertedResidual(cin, spec))
            cin = spec.out
        self.blocks = nn.ModuleList(blocks)
        self.aspp = ASPP(cin, cfg.aspp_channels)
        lb = cfg.blocks[cfg.low_level_block]
        self.decoder = Decoder(
            self._block_in[cfg.low_level_block] * lb.expand,
            cfg.low_level_channels,
            cfg.aspp_channels,
            cfg.decoder_channels,
        )
        self.classifier = nn.Conv2d(cfg.decoder_channels, cfg.num_classes, 1)

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB -> the network's [-1, 1] input range."""
        return x * 2.0 - 1.0

    def _encode(self, x: torch.Tensor, keep: set[int] | None = None):
        x = F.relu6(self.stem(same_pad(self.normalize(x), 3, 2)))
        low = None
        kept: dict[int, torch.Tensor] = {}
        for i, block in enumerate(self.blocks):
            if i == self.config.low_level_block:
                x, low = block(x, return_hidden=True)
            else:
                x = block(x)
            if keep is not None and i in keep:
                kept[i] = x
        return x, low, kept

    def forward(self, x: torch.Tensor, *, upsample: bool = False) -> DeepLabOutput:
        """Logits and penultimate features.

        Parameters
        ----------
        x : (N, 3, H, W) float RGB in [0, 1]
        upsample : bool
            Resize both outputs to (H, W) (bilinear, align-corners, as the TFLite model's last op).

        Returns
        -------
        DeepLabOutput
            ``logits`` (N, num_classes, h, w), ``features`` (N, 256, h, w); h = ceil(H / 4)
            (stride 4, align-corners) unless ``upsample``.
        """
        enc, low, _ = self._encode(x)
        feats = self.decoder(self.aspp(enc), low)
        logits = self.classifier(feats)
        if upsample:
            size = x.shape[2:]
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
            feats = F.interpolate(feats, size=size, mode="bilinear", align_corners=True)
        return DeepLabOutput(logits, feats)

    def stage_names(self) -> list[str]:
        """Names accepted by :meth:`encoder_stages` (``stride2`` .. ``stride32``)."""
        return list(_stage_blocks(self.config))

    def encoder_stages(self, x: torch.Tensor, names=("stride4", "stride8", "stride16")) -> dict:
        """Encoder feature maps for hypercolumns.

        Stages are named by their *nominal* MobileNetV2 stride: the output of the last block
        of each resolution level (``stride4``: 24 channels, ``stride8``: 32, ``stride16``: 96,
        ``stride32``: 320). This network keeps stride 8 from ``stride16`` on (dilated
        convolutions), so those maps have 1/8 of the input resolution.

        Parameters
        ----------
        x : (N, 3, H, W) RGB in [0, 1]
        names : iterable of stage names (see :meth:`stage_names`)

        Returns
        -------
        dict name -> (N, C, h, w) tensor
        """
        table = _stage_blocks(self.config)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise ValueError(f"unknown stage {unknown[0]!r}; choose from {', '.join(table)}")
        want = {table[n] for n in names}
        # run only as far as needed
        last = max(want)
        h = F.relu6(self.stem(same_pad(self.normalize(x), 3, 2)))
        kept = {}
        for i, block in enumerate(self.blocks[: last + 1]):
            h = block(h)
            if i in want:
                kept[i] = h
        return {n: kept[table[n]] for n in names}
