"""LPIPS (Zhang et al. 2018, "The unreasonable effectiveness of deep features"), AlexNet variant,
in plain PyTorch (no torchvision, no I/O).

``LPIPS()(x, y)`` with x, y (N, 3, H, W) in [0, 1] returns (N,) distances. The trunk is
torchvision's
AlexNet ``features`` (taps after relu1..relu5); the linear heads are LPIPS v0.1's ``lin0..lin4``.
Weights are loaded with :meth:`LPIPS.load_weights` from two state dicts (torchvision
``alexnet-owt-7be5be79.pth`` and LPIPS ``weights/v0.1/alex.pth``); random weights otherwise (tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (in, out, kernel, stride, padding, max-pool before)
_ALEX = [
    (3, 64, 11, 4, 2, False),
    (64, 192, 5, 1, 2, True),
    (192, 384, 3, 1, 1, True),
    (384, 256, 3, 1, 1, False),
    (256, 256, 3, 1, 1, False),
]
_TV_INDEX = [0, 3, 6, 8, 10]  # conv indices in torchvision's alexnet.features


class LPIPS(nn.Module):
    """LPIPS-Alex distance; ``forward(x, y)`` with images in [0, 1] -> (N,) tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(i, o, k, s, p) for i, o, k, s, p, _ in _ALEX])
        self.lins = nn.ModuleList([nn.Conv2d(o, 1, 1, bias=False) for _, o, *_ in _ALEX])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for conv, (*_, pool) in zip(self.convs, _ALEX):
            if pool:
                h = F.max_pool2d(h, 3, 2)
            h = F.relu(conv(h))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for fx, fy, lin in zip(self.features(x), self.features(y), self.lins):
            nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((nx - ny) ** 2).mean(dim=(2, 3))
        return total[:, 0]

    def load_weights(self, alexnet_state: dict, lin_state: dict) -> None:
        """Copy torchvision AlexNet (``features.N.*``) and LPIPS v0.1 (``linK.model.1.weight``)
        weights."""
        for conv, idx in zip(self.convs, _TV_INDEX):
            conv.weight.data.copy_(alexnet_state[f"features.{idx}.weight"])
            conv.bias.data.copy_(alexnet_state[f"features.{idx}.bias"])
        for k, lin in enumerate(self.lins):
            lin.weight.data.copy_(lin_state[f"lin{k}.model.1.weight"])
