"""VGG-19 feature extractor in plain torch (no torchvision), with two weight formats.

Weight formats
--------------
``"vgg19"``
    torchvision's ``vgg19-dcbb9e9d.pth`` state dict (keys ``features.N.weight`` /
    ``features.N.bias``):
    RGB in [0, 1] normalised with the ImageNet mean / std, zero padding, floor max-pooling.
``"vgg19-normalised-relu3_1"``
    the "normalised" Caffe VGG-19 of style transfer (pytorch-AdaIN / deep-transfer), stored as an
    old-format ``nn.Sequential`` state dict whose first 1x1 convolution maps RGB in [0, 1] to
    mean-subtracted BGR x 255; reflection padding, ceil max-pooling. The file available here stops
    at
    ``relu3_1``; the full ``vgg_normalised.pth`` (keys up to ``52.*``) is accepted too.

Layer names are ``relu1_1 .. relu5_4`` and ``pool1 .. pool5``; Keras-style names of the paper
(``block1_conv2``, ``block5_pool``) are accepted as aliases (``block4_conv5`` -> ``relu4_4``, since
VGG-19 has four convolutions in block 4). When the weights lack a requested layer, one warning is
logged and the deepest available layer is used instead.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sempix._runtime import warn_once
from sempix.errors import InputError, SempixError

log = logging.getLogger(__name__)

# (name, out_channels) per block; a pool follows each block.
_BLOCKS = [2, 2, 4, 4, 4]
_CHANNELS = [64, 128, 256, 512, 512]

#: every layer name in forward order
LAYER_NAMES: list[str] = []
for _b, _n in enumerate(_BLOCKS, start=1):
    LAYER_NAMES += [f"relu{_b}_{_i}" for _i in range(1, _n + 1)] + [f"pool{_b}"]

# : the paper's first layer set (Keras names block1_conv2, block2_conv2, block3_conv4, block4_conv4,
# block5_pool)
PAPER_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "pool5")

WEIGHT_FORMATS = ("vgg19", "vgg19-normalised-relu3_1")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def canonical_layer(name: str) -> str:
    """Map a layer name (``relu3_1``, ``conv3_1``, ``block3_conv1``, ``block5_pool``) to ``reluB_I``
    / ``poolB``.

    Raises
    ------
    InputError
        For a name that is not a VGG-19 layer.
    """
    n = name.strip().lower()
    m = re.fullmatch(r"block(\d)_conv(\d)", n)
    if m:
        b, i = int(m.group(1)), int(m.group(2))
        if 1 <= b <= 5:
            i = min(i, _BLOCKS[b - 1])  # block4_conv5 (paper's typo) -> relu4_4
        n = f"relu{b}_{i}"
    m = re.fullmatch(r"block(\d)_pool", n)
    if m:
        n = f"pool{m.group(1)}"
    m = re.fullmatch(r"conv(\d)_(\d)", n)
    if m:
        n = f"relu{m.group(1)}_{m.group(2)}"
    if n not in LAYER_NAMES:
        raise InputError(
            f"unknown VGG-19 layer {name!r}; use names like relu1_2, relu3_1, pool5 or block1_conv2"
        )
    return n


@dataclass(frozen=True)
class Op:
    """One spatial operation of the network: a 3x3 conv (with padding 1) or a 2x2/2 max-pool."""

    kind: str  # "conv" | "pool"
    name: str  # layer name reached after the op (+ ReLU for convs)
    in_ch: int
    out_ch: int


def _ops() -> list[Op]:
    ops = []
    c = 3
    for b, (n, ch) in enumerate(zip(_BLOCKS, _CHANNELS), start=1):
        for i in range(1, n + 1):
            ops.append(Op("conv", f"relu{b}_{i}", c, ch))
            c = ch
        ops.append(Op("pool", f"pool{b}", c, c))
    return ops


OPS = _ops()


def _torchvision_index() -> dict[str, int]:
    """Layer name -> index in torchvision's ``features`` Sequential (conv index for convs)."""
    idx, out = 0, {}
    for op in OPS:
        out[op.name] = idx
        idx += 2 if op.kind == "conv" else 1
    return out


def _normalised_index() -> dict[str, int]:
    """Layer name -> conv index in the normalised VGG Sequential (1x1 conv at 0, then
    pad/conv/relu)."""
    idx, out = 1, {}
    for op in OPS:
        if op.kind == "conv":
            out[op.name] = idx + 1  # ReflectionPad2d at idx, conv at idx + 1, ReLU at idx + 2
            idx += 3
        else:
            out[op.name] = idx
            idx += 1
    return out


def layer_size(name: str, h: int, w: int, *, ceil_pool: bool) -> tuple[int, int]:
    """Spatial size (h, w) of layer ``name`` for an (h, w) input."""
    for op in OPS:
        if op.kind == "pool":
            if ceil_pool:
                h, w = -(-h // 2), -(-w // 2)
            else:
                h, w = h // 2, w // 2
        if op.name == name:
            return h, w
    raise InputError(f"unknown layer {name!r}")


def relative_receptive_field(shallow: str | None, deep: str) -> tuple[int, int, int]:
    """Receptive field of a ``deep`` layer position in the ``shallow`` layer's grid.

    Position ``x`` of ``deep`` sees positions ``x * jump + start .. x * jump + start + size - 1`` of
    ``shallow`` (``shallow=None`` is the input image). Border clipping is left to the caller.

    Returns
    -------
    (jump, start, size) : ints
    """
    names = [op.name for op in OPS]
    i0 = 0 if shallow is None else names.index(shallow) + 1
    i1 = names.index(deep) + 1
    if i1 < i0:
        raise ValueError(f"{deep} is not deeper than {shallow}")
    jump, start, size = 1, 0, 1
    for op in OPS[i0:i1]:
        if op.kind == "conv":  # k=3, s=1, p=1
            start -= jump
            size += 2 * jump
        else:  # k=2, s=2, p=0
            size += jump
            jump *= 2
    return jump, start, size


class VGG19Features(nn.Module):
    """VGG-19 convolutional trunk up to the deepest loaded layer.

    Parameters
    ----------
    fmt : ``"vgg19"`` (torchvision) or ``"vgg19-normalised-relu3_1"`` (normalised Caffe VGG).
    depth : name of the deepest layer to build.

    ``forward(x, layers)`` takes ``x`` (N, 3, H, W) RGB in [0, 1] and returns ``{layer: (N, C, h,
    w)}``.
    """

    def __init__(self, fmt: str = "vgg19", depth: str = "pool5") -> None:
        super().__init__()
        if fmt not in WEIGHT_FORMATS:
            raise InputError(
                f"unknown VGG weight format {fmt!r}; use one of {', '.join(WEIGHT_FORMATS)}"
            )
        self.fmt = fmt
        self.normalised = fmt != "vgg19"
        self.depth = depth
        self.ceil_pool = self.normalised
        self.pre = nn.Conv2d(3, 3, 1) if self.normalised else None
        self.convs = nn.ModuleDict()
        self.ops: list[Op] = []
        for op in OPS:
            self.ops.append(op)
            if op.kind == "conv":
                self.convs[op.name] = nn.Conv2d(op.in_ch, op.out_ch, 3, padding=0)
            if op.name == depth:
                break
        if not self.normalised:
            self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @property
    def layers(self) -> list[str]:
        """Names of the layers this network computes, in forward order."""
        return [op.name for op in self.ops]

    def layer_size(self, name: str, h: int, w: int) -> tuple[int, int]:
        """Spatial size of layer ``name`` for an (h, w) input."""
        return layer_size(name, h, w, ceil_pool=self.ceil_pool)

    def forward(
        self, x: torch.Tensor, layers: list[str] | tuple[str, ...]
    ) -> dict[str, torch.Tensor]:
        want = set(layers)
        last = max(self.layers.index(n) for n in want)
        if self.normalised:
            x = self.pre(x)
            pad_mode = "reflect"
        else:
            x = (x - self.mean) / self.std
            pad_mode = "constant"
        out: dict[str, torch.Tensor] = {}
        for op in self.ops[: last + 1]:
            if op.kind == "conv":
                x = F.relu(self.convs[op.name](F.pad(x, (1, 1, 1, 1), mode=pad_mode)))
            else:
                x = F.max_pool2d(x, 2, 2, ceil_mode=self.ceil_pool)
            if op.name in want:
                out[op.name] = x
        return out

    # ----------------------------------------------------------------------------------- loading
    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Copy weights from a torchvision or normalised-VGG state dict (already truncated to
        ``depth``)."""
        if self.normalised:
            index = _normalised_index()
            self.pre.weight.data.copy_(state["0.weight"])
            self.pre.bias.data.copy_(state["0.bias"])
            prefix = ""
        else:
            index = _torchvision_index()
            prefix = "features."
        for name, conv in self.convs.items():
            k = f"{prefix}{index[name]}"
            w, b = state[k + ".weight"], state[k + ".bias"]
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise SempixError(
                    f"VGG weight {k}.weight has shape {tuple(w.shape)}, expected "
                    f"{tuple(conv.weight.shape)}"
                )
            conv.weight.data.copy_(w.float())
            conv.bias.data.copy_(b.float())


def detect_format(state: dict[str, torch.Tensor]) -> str:
    """``"vgg19"`` for torchvision keys (``features.*``), else the normalised format."""
    if any(k.startswith("features.") for k in state):
        return "vgg19"
    if "0.weight" in state and tuple(state["0.weight"].shape) == (3, 3, 1, 1):
        return "vgg19-normalised-relu3_1"
    raise SempixError(
        "unrecognised VGG state dict (expected torchvision vgg19 or normalised VGG keys)"
    )


def available_depth(state: dict[str, torch.Tensor], fmt: str) -> str:
    """Deepest layer whose weights are all present in ``state``."""
    index = _normalised_index() if fmt != "vgg19" else _torchvision_index()
    prefix = "" if fmt != "vgg19" else "features."
    deepest = None
    for op in OPS:
        if op.kind == "conv" and f"{prefix}{index[op.name]}.weight" not in state:
            break
        deepest = op.name
    if deepest is None:
        raise SempixError("the VGG state dict holds no convolution weights")
    return deepest


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise InputError(f"{path}: no such weights file (give a VGG-19 .pth state dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise SempixError(f"{path}: cannot read VGG weights ({exc})") from None
    if not isinstance(state, dict):
        raise SempixError(f"{path}: not a state dict")
    return state


def resolve_layers(requested: list[str] | tuple[str, ...], deepest: str) -> list[str]:
    """Canonicalise ``requested`` and replace layers deeper than ``deepest`` by ``deepest`` (one
    warning).

    Returns the layers in forward order without duplicates.
    """
    order = LAYER_NAMES
    limit = order.index(deepest)
    out: list[str] = []
    missing = []
    for r in requested:
        n = canonical_layer(r)
        if order.index(n) > limit:
            missing.append(n)
            n = deepest
        if n not in out:
            out.append(n)
    if missing:
        key = f"{deepest}:{','.join(missing)}"
        warn_once(
            "VGG weights stop at %s: layers %s replaced by %s",
            deepest,
            ", ".join(missing),
            deepest,
            key=key,
            logger=__name__,
        )
    return sorted(out, key=order.index)


def load_vgg(
    weights: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    depth: str | None = None,
) -> VGG19Features:
    """Load VGG-19 features from the model store or a file.

    Parameters
    ----------
    weights : model store name (``"vgg19"``, ``"vgg19-normalised-relu3_1"``), a path to a ``.pth``
        state dict, or None = the full torchvision ``vgg19`` if available locally, else the
        normalised
        partial network.
    device : torch device.
    depth : deepest layer to build (default: the deepest the weights hold).

    Returns
    -------
    VGG19Features in eval mode, gradients disabled for its parameters.
    """
    from sempix.models import get_model_path, is_available

    if weights is None:
        weights = "vgg19" if is_available("vgg19") else "vgg19-normalised-relu3_1"
    w = str(weights)
    path = Path(w) if (w.endswith(".pth") or Path(w).is_file()) else get_model_path(w)
    state = _load_state(path)
    fmt = detect_format(state)
    deepest = available_depth(state, fmt)
    if depth is not None:
        depth = canonical_layer(depth)
        if LAYER_NAMES.index(depth) < LAYER_NAMES.index(deepest):
            deepest = depth
    net = VGG19Features(fmt, deepest)
    net.load_weights(state)
    return net.to(device)


def to_tensor(img: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(H, W, 3) float32 -> (1, 3, H, W) tensor."""
    return torch.from_numpy(
        np.ascontiguousarray(img, dtype=np.float32).transpose(2, 0, 1)[None]
    ).to(device)


def to_image(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float32 in [0, 1]."""
    return np.ascontiguousarray(
        t.detach().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32
    )
