"""Image reconstruction from retargeted deep features, and the grid-sampler refinement.

``loss(O) = sum_i lambda_i * ||F_i(O) - F'_i||_2`` (Frobenius norms, not squared), minimised over
the
pixels of O with Adam, starting from an initial image (linear scaling or seam carving). The
refinement
puts a grid sampler (spatial transformer, ``torch.nn.functional.grid_sample``) in front of the
network and
optimises the sampling grid with the pixels fixed; the best grid seen is kept, so the refinement
never
increases the loss (identity grid = the unrefined image).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from sempix.errors import InputError
from sempix.progress import ProgressFn, report

SnapshotFn = Callable[[int, np.ndarray], None]


def feature_loss(
    net, img: torch.Tensor, targets: dict[str, torch.Tensor], lambdas: dict[str, float]
) -> torch.Tensor:
    """``sum_i lambda_i ||F_i(img) - F'_i||_2`` over the layers with a non-zero lambda.

    Parameters
    ----------
    net : VGG19Features.
    img : (1, 3, H, W) tensor in [0, 1].
    targets : {layer: (1, C, h, w)} retargeted features F'_i.
    lambdas : {layer: weight}.
    """
    layers = [n for n, lam in lambdas.items() if lam != 0]
    feats = net(img, layers)
    loss = img.new_zeros(())
    for n in layers:
        loss = loss + lambdas[n] * torch.linalg.vector_norm(feats[n] - targets[n])
    return loss


def high_pass(img: torch.Tensor) -> torch.Tensor:
    """``img - G(img)``: the detail of a (1, C, H, W) image; ``G`` is the separable binomial
    [1, 4, 6, 4, 1] / 16 blur (about a Gaussian of sigma 1 px) with replicated borders."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=img.dtype, device=img.device) / 16.0
    c = img.shape[1]
    pad = F.pad(img, (2, 2, 2, 2), mode="replicate")
    blur = F.conv2d(pad, k.view(1, 1, 1, 5).expand(c, 1, 1, 5).contiguous(), groups=c)
    blur = F.conv2d(blur, k.view(1, 1, 5, 1).expand(c, 1, 5, 1).contiguous(), groups=c)
    return img - blur


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) JPEG (full-range, zero-centred chroma) Y, Cb, Cr -> R, G, B (linear map)."""
    y, cb, cr = ycc[:, 0:1], ycc[:, 1:2], ycc[:, 2:3]
    return torch.cat([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)


def check_reconstruction_options(
    hf_weight: float, residual_scale: int, chroma_scale: int
) -> tuple[float, int, int]:
    """Validate the three detail options of :func:`reconstruct` (one place for the library and
    :func:`sempix.retarget.retarget`); returns them as ``(float, int, int)``.

    Raises :class:`sempix.errors.InputError` (a ``ValueError``) for a negative or non-finite
    ``hf_weight`` or a scale that is not an integer >= 1.
    """
    if not (
        isinstance(hf_weight, (int, float))
        and not isinstance(hf_weight, bool)
        and math.isfinite(hf_weight)
        and hf_weight >= 0
    ):
        raise InputError(f"hf_weight must be a finite number >= 0 (got {hf_weight!r})")
    for nm, v in (("residual_scale", residual_scale), ("chroma_scale", chroma_scale)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 1:
            raise InputError(f"{nm} must be an integer >= 1 (got {v!r})")
    return float(hf_weight), int(residual_scale), int(chroma_scale)


def reconstruct(
    net,
    targets: dict[str, torch.Tensor],
    init: torch.Tensor,
    lambdas: dict[str, float],
    *,
    iterations: int = 50,
    lr: float = 0.02,
    hf_weight: float = 0.0,
    residual_scale: int = 1,
    chroma_scale: int = 1,
    progress: ProgressFn | None = None,
    snapshot: SnapshotFn | None = None,
    snapshot_every: int = 0,
) -> tuple[torch.Tensor, list[float]]:
    """Minimise the feature loss over the pixels with Adam.

    Parameters
    ----------
    init : (1, 3, H, W) tensor in [0, 1], the starting image.
    iterations, lr : Adam steps and learning rate (pixels in [0, 1], clamped after every step).
    hf_weight : weight of the high-frequency penalty (0 = none, the paper's loss). The objective
        becomes ``loss + hf_weight * L0 * ||HP(O) - HP(init)|| / ||HP(init)||``, with ``HP`` =
        :func:`high_pass` and ``L0`` the feature loss of ``init``: at weight 1, changing the
        detail of the starting image by as much as that detail itself costs as much as the
        starting feature loss. It keeps the optimisation from inventing fine texture (which a
        JPEG round trip removes) while the low frequencies move freely.
    residual_scale : 1 (default) optimises the pixels. ``k > 1`` optimises a residual at 1/k of
        the resolution, bilinearly upsampled and added to ``init`` (then clamped to [0, 1]), so
        the reconstruction changes only the low frequencies of the starting image.
    chroma_scale : 1 (default) = no colour constraint. ``k > 1`` optimises a residual in JPEG's
        YCbCr: luma at 1/``residual_scale`` of the resolution, the two chroma channels at
        1/(``residual_scale`` * k), upsampled, converted to RGB and added to ``init``; the
        reconstruction then cannot invent chroma detail finer than JPEG's 4:2:0 subsampling keeps
        (k = 2).

    Returns
    -------
    out : (1, 3, H, W) tensor in [0, 1] (the iterate with the lowest objective seen).
    losses : objective (feature loss + penalty) before every step and after the last one
        (``iterations + 1`` values).
    """
    hf_weight, residual_scale, chroma_scale = check_reconstruction_options(
        hf_weight, residual_scale, chroma_scale
    )
    x0 = init.detach()
    _, _, h, w = x0.shape

    def up(t: torch.Tensor) -> torch.Tensor:
        if t.shape[-2:] == (h, w):
            return t
        return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)

    if chroma_scale > 1:
        ks, kc = residual_scale, residual_scale * chroma_scale
        py = torch.zeros(1, 1, -(-h // ks), -(-w // ks), device=x0.device, requires_grad=True)
        pc = torch.zeros(1, 2, -(-h // kc), -(-w // kc), device=x0.device, requires_grad=True)
        params = [py, pc]

        def current() -> torch.Tensor:
            return (x0 + ycbcr_to_rgb(torch.cat([up(py), up(pc)], 1))).clamp(0.0, 1.0)

    elif residual_scale == 1:
        x = x0.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        params = [x]

        def current() -> torch.Tensor:
            return x

    else:
        hs, ws = -(-h // residual_scale), -(-w // residual_scale)
        param = torch.zeros(1, x0.shape[1], hs, ws, device=x0.device, requires_grad=True)
        params = [param]

        def current() -> torch.Tensor:
            return (x0 + up(param)).clamp(0.0, 1.0)

    hf_term = None
    if hf_weight > 0:
        hp0 = high_pass(x0)
        with torch.no_grad():
            l0 = float(feature_loss(net, x0, targets, lambdas))
        hp_norm = max(float(torch.linalg.vector_norm(hp0)), 1e-3 * hp0.numel() ** 0.5)
        scale = hf_weight * l0 / hp_norm

        def hf_term(img: torch.Tensor) -> torch.Tensor:
            return scale * torch.linalg.vector_norm(high_pass(img) - hp0)

    def objective(img: torch.Tensor) -> torch.Tensor:
        loss = feature_loss(net, img, targets, lambdas)
        if hf_term is not None:
            loss = loss + hf_term(img)
        return loss

    opt = torch.optim.Adam(params, lr=lr)
    losses: list[float] = []
    best, best_loss = x0.clone(), float("inf")
    for it in range(iterations):
        opt.zero_grad(set_to_none=True)
        cur = current()
        loss = objective(cur)
        val = float(loss.detach())
        losses.append(val)
        if val < best_loss:
            best_loss, best = val, cur.detach().clone()
        loss.backward()
        opt.step()
        if residual_scale == 1 and chroma_scale == 1:
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        if (
            snapshot is not None
            and snapshot_every
            and (it + 1) % snapshot_every == 0
            and it + 1 < iterations
        ):
            snapshot(it, _np(current()))
        report(
            progress,
            (it + 1) / max(1, iterations),
            f"reconstruction {it + 1}/{iterations} loss {val:.4g}",
        )
    with torch.no_grad():
        cur = current()
        val = float(objective(cur))
    losses.append(val)
    if val < best_loss:
        best = cur.detach().clone()
    return best, losses


def identity_grid(h: int, w: int, device=None) -> torch.Tensor:
    """(1, h, w, 2) sampling grid (x, y in [-1, 1],
    align_corners=False) that reproduces the input."""
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None]


def refine(
    net,
    targets: dict[str, torch.Tensor],
    image: torch.Tensor,
    lambdas: dict[str, float],
    *,
    iterations: int = 10,
    lr: float = 0.5,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Grid-sampler refinement: optimise the sampling grid, pixels fixed.

    The grid is the identity plus a displacement in pixel units (so ``lr`` is in pixels); the
    sampler is
    bilinear with border padding. The iterate with the lowest loss is returned (the identity grid is
    the first iterate), so the loss never increases.

    Returns
    -------
    out : (1, 3, H, W) refined image.
    losses : loss before every step and after the last one.
    """
    _, _, h, w = image.shape
    base = identity_grid(h, w, image.device)
    scale = torch.tensor([2.0 / w, 2.0 / h], device=image.device)
    disp = torch.zeros(1, h, w, 2, device=image.device, requires_grad=True)
    opt = torch.optim.Adam([disp], lr=lr)
    img = image.detach()

    def sample() -> torch.Tensor:
        return F.grid_sample(
            img, base + disp * scale, mode="bilinear", padding_mode="border", align_corners=False
        )

    best, best_loss = img.clone(), float("inf")
    losses: list[float] = []
    for it in range(iterations + 1):
        opt.zero_grad(set_to_none=True)
        out = sample()
        loss = feature_loss(net, out, targets, lambdas)
        val = float(loss.detach())
        losses.append(val)
        if val < best_loss:
            best_loss, best = val, (img.clone() if it == 0 else out.detach().clone())
        if it == iterations:
            break
        loss.backward()
        opt.step()
        report(
            progress,
            (it + 1) / max(1, iterations),
            f"refinement {it + 1}/{iterations} loss {val:.4g}",
        )
    return best, losses


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(
        x.detach().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32
    )
