"""Evaluation of a slimmable checkpoint: mIoU, boundary-band accuracy, FLOPs, CPU speed per width.

* **mIoU**: per-class IoU from the confusion matrix over all valid pixels of the split, at the
  checkpoint's working size (logits upsampled to the label grid), averaged over the classes that
  occur in the labels or predictions.
* **band accuracy**: pixel accuracy of the segmentation restricted to the 3-px band around label
  boundaries (:func:`sempix.slimseg.losses.boundary_band`): how well borders are segmented.
* **FLOPs**: multiply-adds of the inference network (no boundary head) at the working size.
* **speed**: median wall time of a forward pass (batch 1, working size, no grad) on the device.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sempix.progress import ProgressFn, report
from sempix.slimseg.data import IGNORE, LabelledFolder
from sempix.slimseg.layers import set_width
from sempix.slimseg.losses import boundary_band
from sempix.slimseg.model import SlimDeepLab, count_flops, load_slimseg

__all__ = ["confusion", "evaluate_model", "evaluate_slimseg", "miou", "time_forward"]


def confusion(pred: torch.Tensor, labels: torch.Tensor, num_classes: int,
              mask: torch.Tensor | None = None) -> np.ndarray:
    """(C, C) int64 confusion matrix (rows = truth) over valid (and ``mask``) pixels."""
    valid = labels != IGNORE
    if mask is not None:
        valid = valid & mask
    t = labels[valid].long().flatten()
    p = pred[valid].long().flatten()
    cm = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return cm.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def miou(cm: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean IoU over classes present in truth or prediction, and the per-class IoU (NaN absent)."""
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return float(np.nanmean(iou)) if np.any(union > 0) else float("nan"), iou


@torch.no_grad()
def time_forward(model: SlimDeepLab, width: float, size: tuple[int, int], *, repeat: int = 5,
                 device: str | torch.device = "cpu") -> float:
    """Median seconds of one forward pass (batch 1) at ``width`` and input ``size`` (H, W)."""
    set_width(model, width)
    model.eval()
    x = torch.rand(1, 3, *size, device=device)
    model(x, boundary=False)  # warm-up
    times = []
    for _ in range(repeat):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model(x, boundary=False)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@torch.no_grad()
def evaluate_model(model: SlimDeepLab, data: LabelledFolder, *,
                   widths: Sequence[float] | None = None, batch: int = 4, speed: bool = True,
                   repeat: int = 5, progress: ProgressFn | None = None) -> list[dict]:
    """Metrics per width of ``model`` on ``data`` (see the module docstring).

    Returns
    -------
    list of dicts ``{"width", "miou", "pixel_acc", "band_acc", "iou", "macs", "params",
    "seconds"}`` (``seconds`` only when ``speed``), widest last.
    """
    dev = next(model.parameters()).device
    widths = sorted(widths or model.widths)
    n = len(data)
    size = tuple(data.images.shape[1:3])
    k = data.num_classes
    rows = []
    total = len(widths) * n
    done = 0
    model.eval()
    for w in widths:
        set_width(model, w)
        cm = np.zeros((k, k), np.int64)
        band_ok = band_n = 0
        for s in range(0, n, batch):
            idx = list(range(s, min(n, s + batch)))
            x, y = data.tensors(idx)
            x, y = x.to(dev), y.to(dev)
            logits = F.interpolate(model(x, boundary=False).logits, size=y.shape[1:],
                                   mode="bilinear", align_corners=True)
            pred = logits.argmax(1)
            cm += confusion(pred, y, k)
            band = boundary_band(y, ignore_index=IGNORE)
            band_ok += int(((pred == y) & band).sum())
            band_n += int(band.sum())
            done += len(idx)
            report(progress, done / total, f"width {w:g}: {s + len(idx)}/{n}")
        m, iou = miou(cm)
        fl = count_flops(model, w, size)
        row = {"width": w, "miou": m, "pixel_acc": float(np.trace(cm) / max(1, cm.sum())),
               "band_acc": band_ok / max(1, band_n), "iou": [float(v) for v in iou],
               "macs": fl["macs"], "params": fl["params"]}
        if speed:
            row["seconds"] = time_forward(model, w, size, repeat=repeat, device=dev)
        rows.append(row)
    set_width(model, max(model.widths))
    return rows


def evaluate_slimseg(data_root: str | os.PathLike, checkpoint: str | os.PathLike, *,
                     split: str = "val", device: str = "cpu", batch: int = 4, speed: bool = True,
                     limit: int | None = None, progress: ProgressFn | None = None) -> dict:
    """Evaluate a checkpoint on ``split`` of a labelled folder, at the checkpoint's working size.

    Returns
    -------
    dict ``{"widths": [per-width rows of evaluate_model], "size", "images", "class_names"}``.
    """
    model, ck = load_slimseg(checkpoint, device=device)
    d = ck["config"]["model"].get("data", {})
    size = tuple(d["size"]) if d.get("size") else None
    data = LabelledFolder(data_root, split, size=size, num_classes=model.config.num_classes,
                          void=d.get("void"), limit=limit)
    rows = evaluate_model(model, data, batch=batch, speed=speed, progress=progress)
    return {"widths": rows, "size": list(data.images.shape[1:3]), "images": len(data),
            "class_names": list(data.class_names)}
