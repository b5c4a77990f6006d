"""Slimmable layers: convolutions whose active width is switched at run time.

Every layer holds the parameters of its widest form. At width multiplier ``w`` a channel group of
``C`` channels uses its first ``round(w * C)`` channels (at least 1), so the parameters of a narrow
width are a slice of those of a wider one (nested: theta_0.25 in theta_0.5 in ... in theta_1.0).

A layer's channels may be the concatenation of several groups (the ASPP projection reads
``[pool branch, 1x1 branch]``, the decoder reads ``[ASPP, low-level]``): each group is sliced on its
own (``in_parts`` / ``out_parts``), so concatenating narrow tensors gives exactly the active input
channels of the consumer.

Batch norm is *switchable*: :class:`SwitchableBatchNorm2d` keeps one independent
:class:`torch.nn.BatchNorm2d` (affine parameters and running statistics) per width, because the
statistics of a narrow sub-network differ from those of the wide one.

The active width is an attribute ``width`` of every slimmable layer; :func:`set_width` sets it on a
whole model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sempix.nets.deeplab import same_pad

__all__ = [
    "SlimConv2d",
    "SwitchableBatchNorm2d",
    "active_channels",
    "get_width",
    "set_width",
    "slim_channels",
]


def slim_channels(channels: int, width: float) -> int:
    """Active channels of a ``channels``-wide group at width ``width``: ``max(1, round(w * C))``."""
    return max(1, int(round(float(width) * channels)))


def active_channels(parts: Sequence[int], width: float) -> torch.Tensor:
    """Indices of the active channels of a concatenation of groups ``parts`` at ``width``.

    Returns
    -------
    (K,) int64 tensor: the first ``slim_channels(p, width)`` channels of every group, in order.
    """
    idx = []
    off = 0
    for p in parts:
        idx.append(torch.arange(off, off + slim_channels(p, width)))
        off += p
    return torch.cat(idx)


class SlimConv2d(nn.Conv2d):
    """A convolution (regular, depthwise or 1x1) that runs on a channel prefix of its weights.

    Parameters
    ----------
    in_parts, out_parts : channel groups of the input / output (a plain int = one group).
        ``slim_in=False`` / ``slim_out=False`` keep that side at full width (the RGB input,
        the class logits).
    kernel_size, stride, dilation : as :class:`torch.nn.Conv2d`; padding is ``dilation *
        (k // 2)`` for stride 1 and TensorFlow ``SAME`` for stride > 1.
    depthwise : one filter per channel (``groups`` = active channels; ``in_parts`` is used for
        both sides).
    bias : add a bias (layers followed by batch norm have none).

    Notes
    -----
    Input ``(N, C_in(w), H, W)``, output ``(N, C_out(w), H', W')`` where ``C(w)`` sums
    ``slim_channels(part, w)`` over the parts.
    """

    def __init__(
        self,
        in_parts: int | Sequence[int],
        out_parts: int | Sequence[int],
        kernel_size: int = 1,
        *,
        stride: int = 1,
        dilation: int = 1,
        depthwise: bool = False,
        bias: bool = False,
        slim_in: bool = True,
        slim_out: bool = True,
    ) -> None:
        in_parts = (in_parts,) if isinstance(in_parts, int) else tuple(in_parts)
        out_parts = (out_parts,) if isinstance(out_parts, int) else tuple(out_parts)
        if depthwise:
            out_parts = in_parts
        cin, cout = sum(in_parts), sum(out_parts)
        pad = 0 if stride > 1 else dilation * (kernel_size // 2)
        super().__init__(
            cin,
            cout,
            kernel_size,
            stride=stride,
            padding=pad,
            dilation=dilation,
            groups=cin if depthwise else 1,
            bias=bias,
        )
        self.in_parts = in_parts
        self.out_parts = out_parts
        self.depthwise = depthwise
        self.slim_in = slim_in
        self.slim_out = slim_out
        self.width = 1.0
        self._index_cache: dict[tuple[float, str], torch.Tensor] = {}

    def _index(self, side: str) -> torch.Tensor | None:
        slim = self.slim_in if side == "in" else self.slim_out
        parts = self.in_parts if side == "in" else self.out_parts
        if not slim or self.width >= 1.0:
            return None
        key = (self.width, side)
        idx = self._index_cache.get(key)
        if idx is None:
            idx = active_channels(parts, self.width)
            if len(parts) == 1:  # a prefix: slicing, not a gather
                idx = slice(0, int(idx.numel()))
            self._index_cache[key] = idx
        return idx

    def active_weight(self) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """``(weight, bias, groups)`` of the current width (views/gathers of the full tensors)."""
        w, b = self.weight, self.bias
        oi = self._index("in" if self.depthwise else "out")
        if oi is not None:
            w = w[oi]
            b = b[oi] if b is not None else None
        if self.depthwise:
            return w, b, w.shape[0]
        ii = self._index("in")
        if ii is not None:
            w = w[:, ii]
        return w, b, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b, groups = self.active_weight()
        if x.shape[1] != w.shape[1] * groups:
            raise ValueError(
                f"width {self.width}: expected {w.shape[1] * groups} input channels, "
                f"got {x.shape[1]}"
            )
        if self.stride[0] > 1:
            x = same_pad(x, self.kernel_size[0], self.stride[0], self.dilation[0])
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, groups)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, parts={self.in_parts}->{self.out_parts}"


class SwitchableBatchNorm2d(nn.Module):
    """One :class:`torch.nn.BatchNorm2d` per width (independent affine and running statistics).

    Parameters
    ----------
    parts : full channel count, or the channel groups of a concatenation (as
        :class:`SlimConv2d`); the batch norm of width ``w`` has ``active_channels(parts, w)``
        channels.
    widths : the width multipliers of the model; the active one is ``self.width``.
    """

    def __init__(self, parts: int | Sequence[int], widths: Sequence[float], *,
                 eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.parts = (parts,) if isinstance(parts, int) else tuple(parts)
        self.widths = tuple(float(w) for w in widths)
        self.width = max(self.widths)
        self.bn = nn.ModuleList(
            nn.BatchNorm2d(int(active_channels(self.parts, w).numel()), eps=eps,
                           momentum=momentum)
            for w in self.widths
        )

    def active(self) -> nn.BatchNorm2d:
        """The batch norm of the current width."""
        try:
            return self.bn[self.widths.index(float(self.width))]
        except ValueError:
            raise ValueError(
                f"width {self.width} has no batch norm; widths are {list(self.widths)}"
            ) from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.active()(x)


def set_width(module: nn.Module, width: float) -> nn.Module:
    """Set the active width of every slimmable layer of ``module`` (returns ``module``)."""
    width = float(width)
    if not 0.0 < width <= 1.0:
        raise ValueError(f"width must be in (0, 1], got {width}")
    for m in module.modules():
        if isinstance(m, SwitchableBatchNorm2d) and width not in m.widths:
            raise ValueError(f"width {width} is not one of the model's widths {list(m.widths)}")
    for m in module.modules():
        if isinstance(m, (SlimConv2d, SwitchableBatchNorm2d)):
            m.width = width
    if hasattr(module, "width"):
        module.width = width
    return module


def get_width(module: nn.Module) -> float:
    """The active width of ``module`` (of its first slimmable layer; 1.0 when it has none)."""
    for m in module.modules():
        if isinstance(m, (SlimConv2d, SwitchableBatchNorm2d)):
            return float(m.width)
    return 1.0
