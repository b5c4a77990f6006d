"""Saliency quality on the SOD masks (BSDS images): MAE and max F-measure (beta^2 = 0.3).

Usage::

    SEMPIX_DATA_DIR=../shared/data SEMPIX_MODEL_DIR=../shared/models \
        python benchmarks/saliency.py [--limit N] [--features ade20k|none] [--backend
        rbd|u2netp|auto]
                                      [--model FILE.onnx]

``--backend u2netp`` adds the learned U^2-Net-p detector (model store entry ``u2netp``: put
``u2netp.onnx`` in ``$SEMPIX_MODEL_DIR`` or run ``sempix models fetch u2netp``; needs onnxruntime)
to the table; ``auto`` adds it only when it is available locally. The model is resolved before the
run, so a missing file is one error line (exit 2) instead of a half-made table.

Metrics (standard salient-object-detection definitions):

* MAE: mean absolute difference between the saliency map in [0, 1] and the binary mask, per image,
  averaged over images.
* max F-measure: for 255 thresholds t, precision and recall of ``saliency >= t`` against the mask
  are
  averaged over images, ``F = (1 + b2) P R / (b2 P + R)`` with ``b2 = 0.3``; the maximum over t.

Baselines measured in the same run: a centred Gaussian ("centre prior") and the built-in backend
without the semantic prior.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sempix.errors import SempixError
from sempix.recolor.saliency import compute_saliency, resolve_backend, semantic_labels


def centre_prior(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-(((yy - h / 2) / (0.3 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2) / 2).astype(
        np.float32
    )


def scores(
    sal: np.ndarray, gt: np.ndarray, thresholds: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    mae = float(np.abs(sal - gt).mean())
    g = gt > 0.5
    prec, rec = [], []
    for t in thresholds:
        p = sal >= t
        tp = float(np.logical_and(p, g).sum())
        prec.append(tp / max(float(p.sum()), 1e-9) if p.any() else 0.0)
        rec.append(tp / max(float(g.sum()), 1e-9))
    return mae, np.array(prec), np.array(rec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--features", default="ade20k", choices=["ade20k", "none"])
    ap.add_argument(
        "--backend",
        default="rbd",
        choices=["rbd", "u2netp", "auto"],
        help="also measure the learned u2netp backend (auto: only if available locally)",
    )
    ap.add_argument(
        "--model", default=None, help="explicit u2netp .onnx file (default: model store)"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    learned = None
    if args.backend != "rbd":
        try:
            backend, learned = resolve_backend(args.backend, args.model)
        except SempixError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if backend == "rbd":
            learned = None
    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data:
        print("set SEMPIX_DATA_DIR", file=sys.stderr)
        return 2
    data = Path(data)
    masks = sorted((data / "sod" / "masks").glob("*.png"))
    if args.limit:
        masks = masks[: args.limit]
    thresholds = np.linspace(0, 1, 256)[1:]
    methods = ["centre prior", "rbd"] + (["rbd+ade20k"] if args.features == "ade20k" else [])
    if learned is not None:
        methods.append("u2netp")
    acc = {m: {"mae": [], "p": [], "r": [], "t": []} for m in methods}
    n = 0
    for mp in masks:
        img_path = None
        for split in ("train", "val", "test"):
            cand = data / "bsds500" / "images" / split / (mp.stem + ".jpg")
            if cand.is_file():
                img_path = cand
                break
        if img_path is None:
            continue
        img = np.asarray(Image.open(img_path).convert("RGB"), np.float32) / 255
        gt = np.asarray(Image.open(mp).convert("L"), np.float32) / 255
        if gt.shape != img.shape[:2]:
            continue
        n += 1
        maps = {"centre prior": (centre_prior(*gt.shape), 0.0)}
        t0 = time.perf_counter()
        maps["rbd"] = (compute_saliency(img).saliency, time.perf_counter() - t0)
        if "rbd+ade20k" in methods:
            t0 = time.perf_counter()
            lab = semantic_labels(img, "ade20k")
            maps["rbd+ade20k"] = (
                compute_saliency(img, labels=lab).saliency,
                time.perf_counter() - t0,
            )
        if learned is not None:
            t0 = time.perf_counter()
            maps["u2netp"] = (
                compute_saliency(img, backend="u2netp", model=learned).saliency,
                time.perf_counter() - t0,
            )
        for m, (s, dt) in maps.items():
            mae, p, r = scores(s, gt, thresholds)
            acc[m]["mae"].append(mae)
            acc[m]["p"].append(p)
            acc[m]["r"].append(r)
            acc[m]["t"].append(dt)
    print(
        f"SOD saliency: {n} images (BSDS), cpu_count={os.cpu_count()}"
        + (f", u2netp model: {learned}" if learned is not None else "")
    )
    print("| method | MAE (lower better) | max F (beta^2=0.3, higher better) | s/image |")
    print("|---|---|---|---|")
    for m in methods:
        p = np.mean(acc[m]["p"], 0)
        r = np.mean(acc[m]["r"], 0)
        f = (1.3 * p * r) / np.maximum(0.3 * p + r, 1e-12)
        print(
            f"| {m} | {np.mean(acc[m]['mae']):.3f} | {f.max():.3f} | {np.mean(acc[m]['t']):.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
