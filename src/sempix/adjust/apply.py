"""Applying a trained style: prediction at network resolution, the full-resolution colour mapping
(a per-pixel affine colour transform fitted at network resolution and upsampled, as in the fast
guided filter, so the output keeps the full-resolution detail instead of upscaled pixels), the
adjustment maps of variant S, and personal maps replacing them."""

from __future__ import annotations

import numpy as np
import torch

from sempix.errors import InputError
from sempix.progress import report

__all__ = ["adjust_image", "affine_fit", "apply_affine", "edit_probs", "predict_lab",
           "preset_maps"]


def _labels_for(model, ck: dict, rgb_t: torch.Tensor):
    from sempix.adjust.model import YanNet
    from sempix.adjust.train import _backbone, parse_labels

    if not isinstance(model, YanNet):
        return None
    net = _backbone(ck["config"]["model"].get("labels_backbone", "ade20k"), "cpu")
    return parse_labels(net, rgb_t.cpu())


def _ordered(maps) -> list[tuple[int, np.ndarray]]:
    """User maps as an ordered list of ``(preset 1..K, (H, W) map)``: a dict is taken in preset
    order, a sequence as given (later entries paint over earlier ones)."""
    if maps is None:
        return []
    items = sorted(maps.items()) if isinstance(maps, dict) else list(maps)
    return [(int(i), np.asarray(m, np.float32)) for i, m in items]


def edit_probs(probs, maps, k: int):
    """Paint user maps over preset probabilities: for each ``(preset, m)`` in order,
    ``probs = m * onehot(preset) + (1 - m) * probs``.

    ``probs``: (P, K) torch tensor or (..., K) numpy array; every map must have ``P`` (or
    ``probs.shape[:-1]``) values. Returns the edited probabilities (same type).
    """
    for idx, m in _ordered(maps):
        if not 1 <= idx <= k:
            raise InputError(f"map {idx}: this style has presets 1..{k}")
        if isinstance(probs, torch.Tensor):
            mm = torch.from_numpy(np.clip(m, 0, 1).reshape(-1)).to(probs)[:, None]
            one = torch.zeros_like(probs)
        else:
            mm = np.clip(m, 0, 1).reshape(probs.shape[:-1])[..., None]
            one = np.zeros_like(probs)
        one[..., idx - 1] = 1.0
        probs = mm * one + (1 - mm) * probs
    return probs


def _user_presets(maps, k: int, shape: tuple[int, int]):
    """A function editing the (P, K) probabilities with the user's maps (network resolution)."""
    from sempix.ops import resize

    ms = [(i, np.clip(resize(m, shape), 0, 1)) for i, m in _ordered(maps)]
    for idx, _ in ms:
        if not 1 <= idx <= k:
            raise InputError(f"map {idx}: this style has presets 1..{k}")

    def edit(probs: torch.Tensor) -> torch.Tensor:
        return edit_probs(probs, ms, k)

    return edit


@torch.no_grad()
def predict_lab(model, ck: dict, rgb_net: np.ndarray, *, maps: dict[int, np.ndarray] | None = None,
                device: str = "cpu") -> np.ndarray:
    """The style's CIELab prediction (h, w, 3) for a network-resolution image (h, w, 3)."""
    from sempix.adjust.data import sample_pixels
    from sempix.adjust.model import YanNet
    from sempix.color import srgb_to_lab

    h, w = rgb_net.shape[:2]
    lab = srgb_to_lab(rgb_net).astype(np.float32)
    rgb_t = torch.from_numpy(np.ascontiguousarray(rgb_net.transpose(2, 0, 1))).to(device)
    lab_t = torch.from_numpy(np.ascontiguousarray(lab.transpose(2, 0, 1))).to(device)
    grid = sample_pixels(h, w, h * w).to(device)
    if isinstance(model, YanNet):
        labels = _labels_for(model, ck, rgb_t).to(device)
        out = model(rgb_t[None], lab_t[None], grid, labels)["out"]
    else:
        presets = None
        if maps:
            if not model.config.adjustment_map:
                raise InputError("personal maps need a style trained with --variant huber-mt-s")
            presets = _user_presets(maps, model.config.k, (h, w))
        out = model(rgb_t[None], lab_t[None], grid, presets=presets)["out"]
    return (out.cpu().numpy().reshape(h, w, 3) * 100.0).astype(np.float32)


def affine_fit(guide: np.ndarray, target: np.ndarray, radius: int = 2,
               eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Local affine colour transforms ``target ~ A guide + b`` (guided-filter coefficients).

    Parameters
    ----------
    guide, target : (h, w, 3) float
    radius, eps : window radius and regularisation (guided filter)

    Returns
    -------
    A (h, w, 3, 3) and b (h, w, 3) float32, averaged over the windows covering each pixel.
    """
    from sempix.ops import box_filter

    h, w = guide.shape[:2]
    I = guide.astype(np.float64)
    p = target.astype(np.float64)
    mI, mp = box_filter(I, radius), box_filter(p, radius)
    cII = box_filter((I[..., :, None] * I[..., None, :]).reshape(h, w, 9), radius)
    cII = cII.reshape(h, w, 3, 3)
    cII -= mI[..., :, None] * mI[..., None, :]
    cIp = box_filter((p[..., :, None] * I[..., None, :]).reshape(h, w, 9), radius)
    cIp = cIp.reshape(h, w, 3, 3)
    cIp -= mp[..., :, None] * mI[..., None, :]  # [out channel, guide channel]
    A = np.einsum("hwij,hwjk->hwik", cIp, np.linalg.inv(cII + eps * np.eye(3)))
    b = mp - np.einsum("hwij,hwj->hwi", A, mI)
    A = box_filter(A.reshape(h, w, 9), radius).reshape(h, w, 3, 3)
    b = box_filter(b, radius)
    return A.astype(np.float32), b.astype(np.float32)


def apply_affine(image: np.ndarray, A: np.ndarray, b: np.ndarray,
                 chunk_rows: int = 512) -> np.ndarray:
    """Apply low-resolution affine colour transforms to a full-resolution image (H, W, 3): the
    coefficients are bilinearly upsampled (row chunks bound memory on 12-megapixel images)."""
    from sempix.ops import sample_coords, upsample

    H, W = image.shape[:2]
    h, w = A.shape[:2]
    coef = np.concatenate([A.reshape(h, w, 9), b], axis=2)
    ys, xs = sample_coords(H, h), sample_coords(W, w)
    out = np.empty((H, W, 3), np.float32)
    for r0 in range(0, H, chunk_rows):
        c = upsample(coef, ys[r0 : r0 + chunk_rows], xs)
        img = image[r0 : r0 + chunk_rows]
        Ac = c[..., :9].reshape(*c.shape[:2], 3, 3)
        out[r0 : r0 + chunk_rows] = np.einsum("hwij,hwj->hwi", Ac, img) + c[..., 9:]
    return np.clip(out, 0.0, 1.0)


def adjust_image(model, ck: dict, image: np.ndarray, *, strength: float = 1.0,
                 maps: dict[int, np.ndarray] | None = None, size: int | None = None,
                 device: str = "cpu", progress=None) -> np.ndarray:
    """Apply a style to a full-resolution image.

    Parameters
    ----------
    model, ck : from :func:`sempix.adjust.load_style`
    image : (H, W, 3) float32 sRGB in [0, 1]
    strength : 0 = input, 1 = the learned adjustment
    maps : preset number (1..K) -> (H, W) user map in [0, 1] (variant S personalisation), or
        a list of ``(preset, map)`` painted in order (later maps over earlier ones)
    size : network long side (default: the style's training size)

    Returns
    -------
    (H, W, 3) float32 sRGB in [0, 1]
    """
    from sempix.adjust.data import to_net
    from sempix.color import lab_to_srgb
    from sempix.ops import as_rgb

    image = as_rgb(image)
    size = int(size or ck["config"]["model"]["settings"]["size"])
    report(progress, 0.05, "predicting")
    small = to_net(image, size)
    pred = lab_to_srgb(predict_lab(model, ck, small, maps=maps, device=device), gamut="clip")
    pred = small + float(strength) * (pred - small)
    report(progress, 0.6, "full-resolution mapping")
    A, b = affine_fit(small, pred)
    out = apply_affine(image, A, b)
    report(progress, 1.0, "done")
    return out


@torch.no_grad()
def preset_maps(model, ck: dict, image: np.ndarray, *, maps=None,
                device: str = "cpu") -> np.ndarray:
    """The adjustment maps of a variant-S style at image resolution: (H, W, K) in [0, 1];
    ``maps`` (as in :func:`adjust_image`, at image resolution) are painted over them."""
    from sempix.adjust.data import to_net
    from sempix.ops import as_rgb, sample_coords, upsample

    if not getattr(model.config, "adjustment_map", False):
        raise InputError("this style has no adjustment maps (train with --variant huber-mt-s)")
    image = as_rgb(image)
    small = to_net(image, int(ck["config"]["model"]["settings"]["size"]))
    rgb_t = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None].to(device)
    m = model.adjustment_maps(rgb_t)[0].permute(1, 2, 0).cpu().numpy()
    H, W = image.shape[:2]
    # the stride-8 map covers the network image: half-pixel centres in both grids
    ys = sample_coords(H, m.shape[0])
    xs = sample_coords(W, m.shape[1])
    out = np.clip(upsample(m, ys, xs), 0, 1)
    if maps:
        from sempix.ops import resize

        ms = [(i, v if v.shape == (H, W) else np.clip(resize(v, (H, W)), 0, 1))
              for i, v in _ordered(maps)]
        out = edit_probs(out, ms, out.shape[2]).astype(np.float32)
    return out
