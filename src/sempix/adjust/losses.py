"""Losses of SA-AdjustNet: Huber / MSE per pixel, the exact expected loss over K presets, the
moving-average preset re-weighting, and the scene-parsing cross-entropy (multi-task)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["HUBER_DELTA", "PresetReweighting", "expected_loss", "pixel_loss"]

HUBER_DELTA = 0.04  # in Lab / 100 units (= 4 Lab units)


def pixel_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "huber",
               delta: float = HUBER_DELTA) -> torch.Tensor:
    """Per-pixel loss (summed over the 3 Lab channels): ``(..., 3)`` -> ``(...)``.

    ``huber``: 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta); ``mse``: d^2.
    """
    if kind == "mse":
        return ((pred - target) ** 2).sum(-1)
    return F.huber_loss(pred, target, reduction="none", delta=delta).sum(-1)


def expected_loss(per_preset: torch.Tensor, probs: torch.Tensor, target: torch.Tensor,
                  kind: str = "huber", weights: torch.Tensor | None = None) -> torch.Tensor:
    """Exact expectation of the loss over the K presets of an adjustment map.

    Parameters
    ----------
    per_preset : (P, K, 3) prediction of each preset
    probs : (P, K) preset probabilities (softmax of the map)
    target : (P, 3)
    weights : (P,) optional pixel weights (re-weighting)

    Returns
    -------
    scalar: mean over pixels of ``w_p * sum_k probs[p, k] * loss(per_preset[p, k], target[p])``
    """
    lk = pixel_loss(per_preset, target[:, None, :].expand_as(per_preset), kind)  # (P, K)
    e = (probs * lk).sum(1)
    if weights is not None:
        e = e * weights
    return e.mean()


class PresetReweighting:
    """Re-weighting of the adjustment-map loss by a moving average of soft preset frequencies.

    ``f_k`` = moving average (``momentum``) of the mean soft assignment of preset k; class weights
    ``w_k = f_k ** -gamma`` normalised so ``sum_k f_k w_k = 1`` (the average weight stays 1); a
    pixel's weight is ``sum_k p_k w_k`` (its soft preset's weight, not back-propagated). Pixels
    of rare presets weigh more, so a preset that owns few pixels still gets fitted and can grow
    (the class re-balancing of Zhang et al.'s colorization, on soft classes).
    """

    def __init__(self, k: int, gamma: float = 0.8, momentum: float = 0.99) -> None:
        self.gamma = float(gamma)
        self.momentum = float(momentum)
        self.freq = torch.full((k,), 1.0 / k)

    def update(self, probs: torch.Tensor) -> None:
        f = probs.detach().float().mean(0).to(self.freq.device)
        self.freq.mul_(self.momentum).add_((1 - self.momentum) * f)  # in place (a model buffer)

    def class_weights(self) -> torch.Tensor:
        w = (self.freq.clamp_min(1e-4)) ** (-self.gamma)
        return w / (self.freq * w).sum()

    def pixel_weights(self, probs: torch.Tensor) -> torch.Tensor:
        return probs.detach() @ self.class_weights().to(probs)

    def state_dict(self) -> dict:
        return {"freq": self.freq.clone(), "gamma": self.gamma, "momentum": self.momentum}

    def load_state_dict(self, d: dict) -> None:
        self.freq.copy_(d["freq"])
