"""Segment one image with a slimmable checkpoint at one width (``sempix slimseg predict``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from sempix._runtime import BoundedCache

_models: BoundedCache = BoundedCache(maxsize=2, name="slimseg.predict")

__all__ = ["Prediction", "checkpoint_class_names", "predict"]


@dataclass
class Prediction:
    """``labels`` (H, W) int32, ``features`` (h, w, D) and ``logits`` (h, w, C) at the network's
    resolution, ``ys``/``xs`` their sampling coordinates, ``class_names``, ``width``, ``seconds``
    (network time)."""

    labels: np.ndarray
    features: np.ndarray
    logits: np.ndarray
    ys: np.ndarray
    xs: np.ndarray
    class_names: list[str]
    width: float
    seconds: float


def checkpoint_class_names(ckpt: dict, num_classes: int) -> list[str]:
    """Class names stored in a slimseg checkpoint (``config.model.class_names`` of ``distill``,
    ``config.model.data.class_names`` of ``train``, or the export), else ``class 0`` ..
    ``class C-1``."""
    model_cfg = (ckpt.get("config") or {}).get("model") or {}
    names = (model_cfg.get("class_names") or (model_cfg.get("data") or {}).get("class_names")
             or (ckpt.get("export") or {}).get("class_names"))
    if names and len(names) == num_classes:
        return list(names)
    return [f"class {i}" for i in range(num_classes)]


def _load(path: str | os.PathLike, device: str):
    from pathlib import Path

    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, device)

    def build():
        from sempix.slimseg.model import load_slimseg

        return load_slimseg(p, device=device)

    return _models.get_or_create(key, build)


def predict(image: np.ndarray, checkpoint: str | os.PathLike, *, width: float | None = None,
            size: int = 513, device: str = "cpu") -> Prediction:
    """Labels of ``image`` by the width-``width`` sub-network of a slimseg checkpoint.

    The image is letterboxed like the ``ade20k`` feature backend (longest side ``size``,
    mid-grey padding) and the logits are upsampled to the image (bilinear, argmax).

    Parameters
    ----------
    image : (H, W, 3) float32 RGB in [0, 1]
    checkpoint : a checkpoint of ``sempix slimseg train`` or ``distill``
    width : one of the checkpoint's widths (None: the widest)
    size : letterbox side

    Raises
    ------
    InputError
        Not a slimseg checkpoint, or a width it does not hold.
    """
    import time

    import torch

    from sempix.errors import InputError
    from sempix.features.ade20k import grid_coords, letterbox
    from sempix.features.post import argmax_upsampled
    from sempix.ops.validate import as_rgb

    image = np.clip(as_rgb(image, grey_ok=True, finite=True), 0.0, 1.0)
    model, ck = _load(checkpoint, device)
    widths = [float(w) for w in model.widths]
    w = max(widths) if width is None else float(width)
    if not any(abs(w - c) < 1e-6 for c in widths):
        raise InputError(f"width {w:g} is not in the checkpoint "
                         f"(widths: {', '.join(f'{c:g}' for c in widths)})")
    w = min(widths, key=lambda c: abs(c - w))
    H, W = image.shape[:2]
    x, (h, wd) = letterbox(image, size)
    t = torch.from_numpy((x + 1.0) * 0.5).permute(0, 3, 1, 2).to(device)
    t0 = time.perf_counter()
    model.set_width(w)
    with torch.inference_mode():
        out = model(t, boundary=False)
    seconds = time.perf_counter() - t0
    ys, xs, hc, wc = grid_coords(H, W, h, wd)
    logits = np.ascontiguousarray(out.logits[0].permute(1, 2, 0).float().cpu().numpy()[:hc, :wc])
    feats = np.ascontiguousarray(out.features[0].permute(1, 2, 0).float().cpu().numpy()[:hc, :wc])
    return Prediction(
        labels=argmax_upsampled(logits, ys, xs),
        features=feats,
        logits=logits,
        ys=ys,
        xs=xs,
        class_names=checkpoint_class_names(ck, logits.shape[-1]),
        width=w,
        seconds=seconds,
    )
