"""Losses of slimmable segmentation (Xue's chapter 2): CE/OHEM, in-place KD, boundary losses.

Shapes: logits ``(N, C, H, W)``, labels ``(N, H, W)`` int64 with ``ignore_index`` for void pixels,
boundary logits ``(N, 1, H, W)``. Every teacher tensor is detached here, so a distillation loss
never sends gradients into the (wider) teacher width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "BOUNDARY_RADIUS",
    "GUIDE_TAU",
    "TEACHERS",
    "boundary_band",
    "boundary_bce",
    "boundary_kd",
    "guided_mask",
    "kd_loss",
    "ohem_ce",
    "seg_ce",
    "teacher_targets",
]

IGNORE = 255
BOUNDARY_RADIUS = 3
GUIDE_TAU = 0.7
TEACHERS = ("prev", "largest", "mean", "larger")


def _masked_mean(v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return v.mean()
    m = mask.to(v.dtype)
    return (v * m).sum() / m.sum().clamp_min(1.0)


def seg_ce(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE,
           mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over valid pixels (and over ``mask`` (N, H, W) bool when given)."""
    per = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    valid = labels != ignore_index
    if mask is not None:
        valid = valid & mask
    return _masked_mean(per, valid)


def ohem_ce(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE,
            thresh: float = 0.7, min_kept: float = 1 / 16) -> torch.Tensor:
    """Online hard example mining cross-entropy.

    Keeps the valid pixels whose probability of the true class is below ``thresh`` (loss above
    ``-log(thresh)``), and at least the ``min_kept`` fraction of valid pixels with the largest
    losses.
    """
    per = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    valid = labels != ignore_index
    vals = per[valid]
    if vals.numel() == 0:
        return per.sum() * 0.0
    k = max(1, int(round(min_kept * vals.numel())))
    kth = torch.topk(vals.detach(), min(k, vals.numel())).values[-1]
    cut = torch.minimum(kth, torch.tensor(-float(torch.log(torch.tensor(thresh))),
                                          device=per.device))
    keep = vals.detach() >= cut
    return vals[keep].mean()


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, *,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Soft-target cross-entropy ``-sum_c t_c log s_c`` averaged over pixels (``mask``: bool
    (N, H, W) pixels to use). The teacher is detached."""
    t = teacher_probs.detach()
    per = -(t * F.log_softmax(student_logits, dim=1)).sum(dim=1)
    return _masked_mean(per, mask)


def teacher_targets(wider_probs: Sequence[torch.Tensor], mode: str) -> list[torch.Tensor]:
    """The teacher distributions of a width, from the probabilities of all wider widths.

    Parameters
    ----------
    wider_probs : probabilities of the wider widths, *nearest first* (``[p^{n+1}, ..., p^N]``).
    mode : ``prev`` (the next wider width, stepwise), ``largest`` (the widest), ``mean`` (one
        teacher: the average of all wider widths' probabilities), ``larger`` (every wider width
        is a teacher; the KD terms are averaged).

    Returns
    -------
    list of detached teacher tensors; the KD loss is the mean of the KD against each.
    """
    if not wider_probs:
        raise ValueError("a teacher needs at least one wider width")
    ps = [p.detach() for p in wider_probs]
    if mode == "prev":
        return [ps[0]]
    if mode == "largest":
        return [ps[-1]]
    if mode == "mean":
        return [torch.stack(ps).mean(0)]
    if mode == "larger":
        return ps
    raise ValueError(f"unknown teacher {mode!r}; use one of {', '.join(TEACHERS)}")


def boundary_band(labels: torch.Tensor, *, radius: int = BOUNDARY_RADIUS,
                  ignore_index: int = IGNORE) -> torch.Tensor:
    """Pixels within ``radius`` px (Chebyshev) of a boundary between two valid labels.

    A pixel is in the band when its ``(2 radius + 1)^2`` window holds two different valid
    labels. Ignored pixels are no class: a class next to void is not a boundary, and ignored
    pixels themselves are never in the band.

    Parameters
    ----------
    labels : (N, H, W) or (H, W) int.

    Returns
    -------
    bool tensor of the same shape.
    """
    squeeze = labels.dim() == 2
    lab = labels[None] if squeeze else labels
    valid = lab != ignore_index
    x = lab.float()[:, None]
    big = float(lab[valid].max()) + 1.0 if bool(valid.any()) else 1.0
    hi = torch.where(valid[:, None], x, torch.full_like(x, -1.0))
    lo = torch.where(valid[:, None], x, torch.full_like(x, big))
    k = 2 * radius + 1
    mx = F.max_pool2d(hi, k, stride=1, padding=radius)
    mn = -F.max_pool2d(-lo, k, stride=1, padding=radius)
    band = (mx > mn) & (mx >= 0) & (mn < big)
    band = band[:, 0] & valid
    return band[0] if squeeze else band


def boundary_bce(boundary_logits: torch.Tensor, band: torch.Tensor,
                 valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the boundary head against the band (mean over valid pixels)."""
    per = F.binary_cross_entropy_with_logits(
        boundary_logits[:, 0], band.to(boundary_logits.dtype), reduction="none"
    )
    return _masked_mean(per, valid)


def boundary_kd(boundary_logits: torch.Tensor, teacher_logits: Sequence[torch.Tensor],
                valid: torch.Tensor | None = None) -> torch.Tensor:
    """Boundary distillation: BCE against the (detached) teachers' boundary probabilities."""
    losses = []
    for t in teacher_logits:
        target = torch.sigmoid(t.detach()[:, 0])
        per = F.binary_cross_entropy_with_logits(boundary_logits[:, 0], target,
                                                 reduction="none")
        losses.append(_masked_mean(per, valid))
    return torch.stack(losses).mean()


def guided_mask(boundary_logits: torch.Tensor, *, tau: float = GUIDE_TAU) -> torch.Tensor:
    """Pixels whose predicted boundary probability exceeds ``tau``: (N, H, W) bool (no grad)."""
    return torch.sigmoid(boundary_logits.detach()[:, 0]) > tau
