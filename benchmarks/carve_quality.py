"""Seam-carving quality: how much of the salient object does a resize to 80% width remove?

For every BSDS image with a salient-object mask in ``$SEMPIX_DATA_DIR/sod/masks`` (images in
``bsds500/images/train|val``): (a) RGB-only carving (lam = 0), (b) semantic carving (lam = 0.2,
ade20k features), (d) the CLI default since issue 21: (b) plus ``protect="auto"`` (people, animals
and vehicles of the ADE20K label map protected), (c) linear scaling; the mask is carried with the
same seams (like ``--also``). Reports the mean fraction of salient pixels removed, the fraction of
images where a variant removes less than (a), and on the images with protected classes the mean
fraction of those (label-map) pixels removed.
``--ablation`` adds variants (lambda, feature dimension and reduction, guided filter, energy).

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \
        .venv/bin/python benchmarks/carve_quality.py [--limit N] [--ablation] [--figure fig4.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def pairs(data: Path):
    for m in sorted((data / "sod" / "masks").glob("*.png")):
        for split in ("train", "val", "test"):
            p = data / "bsds500" / "images" / split / f"{m.stem}.jpg"
            if p.is_file():
                yield p, m
                break


def removed_fraction(mask: np.ndarray, carved_mask: np.ndarray) -> float:
    return 1.0 - float(carved_mask.sum()) / max(float(mask.sum()), 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all)")
    ap.add_argument("--ratio", type=float, default=0.8)
    ap.add_argument(
        "--ablation", action="store_true", help="also run lambda / dimension / filter variants"
    )
    ap.add_argument(
        "--figure", default=None, help="write a Figure-4 style picture of one image here"
    )
    ap.add_argument("--figure-id", default=None, help="image id for --figure (default: the first)")
    args = ap.parse_args()

    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data or not (Path(data) / "sod" / "masks").is_dir():
        sys.exit("set SEMPIX_DATA_DIR to the folder holding sod/masks and bsds500/images")
    from sempix.carve import carve
    from sempix.features import compute_features

    items = list(pairs(Path(data)))
    if args.limit:
        items = items[: args.limit]

    def fmap(img, dim, reduce="random", guided=False):
        fm = compute_features(
            img, "ade20k", dim=dim, reduce="random" if reduce == "pca" else reduce, guided=guided
        )
        if not fm.semantic:
            sys.exit("ade20k features unavailable: set SEMPIX_MODEL_DIR")
        return fm

    def feats(img, dim, reduce="random", guided=False):
        return fmap(img, dim, reduce, guided).features

    # variant name -> function(img) -> (features or None, carve kwargs)
    variants = {
        "(a) RGB only, lam=0": lambda img: (None, {}),
        "(b) semantic, lam=0.2 (default: 16-d features, input semantic energy carried)": (
            lambda img: (feats(img, 16), {"lam": 0.2})
        ),
        "(d) semantic, lam=0.2, protect=auto (CLI default)": (
            lambda img: (fmap(img, 16), {"lam": 0.2, "protect": "auto"})
        ),
    }
    if args.ablation:
        fw = {"semantic_energy": "forward"}
        gr = {"semantic_energy": "gradient"}
        variants.update(
            {
                "lam=0.1": lambda img: (feats(img, 16), {"lam": 0.1}),
                "lam=0.33": lambda img: (feats(img, 16), {"lam": 0.33}),
                "lam=0.5": lambda img: (feats(img, 16), {"lam": 0.5}),
                "semantic gradient recomputed after each seam, lam=0.2": lambda img: (
                    feats(img, 16),
                    {"lam": 0.2, **gr},
                ),
                "semantic gradient recomputed, lam=0.33": lambda img: (
                    feats(img, 16),
                    {"lam": 0.33, **gr},
                ),
                "semantic as forward costs, lam=0.2, 16-d": lambda img: (
                    feats(img, 16),
                    {"lam": 0.2, **fw},
                ),
                "semantic as forward costs, lam=0.4, 16-d": lambda img: (
                    feats(img, 16),
                    {"lam": 0.4, **fw},
                ),
                "semantic as forward costs, 32-d -> 16-d PCA": lambda img: (
                    feats(img, 32),
                    {"lam": 0.2, **fw},
                ),
                "32-d -> 16-d PCA": lambda img: (feats(img, 32), {"lam": 0.2}),
                "32-d -> 8-d PCA": lambda img: (feats(img, 32), {"lam": 0.2, "feature_dim": 8}),
                "64-d, no PCA": lambda img: (feats(img, 64), {"lam": 0.2, "feature_dim": None}),
                "256-d (all channels) -> 16-d PCA": lambda img: (feats(img, 0), {"lam": 0.2}),
                "guided-filtered 16-d features": lambda img: (
                    feats(img, 16, guided=True),
                    {"lam": 0.2},
                ),
                "backward energy, lam=0": lambda img: (None, {"energy": "backward"}),
                "backward energy, lam=0.2": lambda img: (
                    feats(img, 16),
                    {"lam": 0.2, "energy": "backward"},
                ),
            }
        )
    names = list(variants)
    frac = {n: [] for n in names}
    frac["(c) linear scaling"] = []
    pfrac = {n: [] for n in names}  # fraction of protected-class pixels removed (images with some)
    pfrac["(c) linear scaling"] = []
    from sempix.features import protect_mask

    times = {n: 0.0 for n in names}
    t_start = time.perf_counter()
    for k, (ip, mp) in enumerate(items):
        img = np.asarray(Image.open(ip).convert("RGB"), dtype=np.float32) / 255.0
        mask = np.asarray(Image.open(mp).convert("L"), dtype=np.float32) / 255.0
        if mask.shape != img.shape[:2]:
            mask = (
                np.asarray(
                    Image.fromarray((mask * 255).astype(np.uint8)).resize(img.shape[1::-1]),
                    dtype=np.float32,
                )
                / 255.0
            )
        mask = (mask > 0.5).astype(np.float32)
        H, W = mask.shape
        tw = round(W * args.ratio)
        pm = protect_mask(fmap(img, 16), "auto")[0]
        pm = None if pm is None else pm.astype(np.float32)
        for n in names:
            f, kw = variants[n](img)
            t = time.perf_counter()
            res = carve(img, tw, features=f, also=[mask] if pm is None else [mask, pm], **kw)
            times[n] += time.perf_counter() - t
            frac[n].append(removed_fraction(mask, res.also[0]))
            if pm is not None:
                pfrac[n].append(removed_fraction(pm, res.also[1]))
        lin = np.asarray(Image.fromarray(mask).resize((tw, H), Image.BILINEAR), dtype=np.float32)
        # the scaled mask holds (area kept) * tw / W of the original pixel count
        frac["(c) linear scaling"].append(removed_fraction(mask, lin))
        if pm is not None:
            plin = np.asarray(Image.fromarray(pm).resize((tw, H), Image.BILINEAR), dtype=np.float32)
            pfrac["(c) linear scaling"].append(removed_fraction(pm, plin))
        if (k + 1) % 25 == 0:
            print(
                f"  {k + 1}/{len(items)} images ({time.perf_counter() - t_start:.0f} s)",
                file=sys.stderr,
            )

    a = np.array(frac[names[0]])
    print(
        f"\n{len(items)} BSDS images with SOD masks, resized to {args.ratio:.0%} width; "
        f"os.cpu_count() = {os.cpu_count()}\n"
    )
    n_prot = len(pfrac[names[0]])
    print(
        "| method | mean fraction of salient pixels removed "
        "| images where it removes less than (a) | more than (a) "
        f"| protected-class pixels removed ({n_prot} images) | carve time/image (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for n in [*names, "(c) linear scaling"]:
        v = np.array(frac[n])
        less = float((v < a - 1e-9).mean())
        more = float((v > a + 1e-9).mean())
        t = times.get(n)
        pv = f"{np.mean(pfrac[n]):.4f}" if pfrac[n] else "-"
        print(
            f"| {n} | {v.mean():.4f} | {less:.1%} | {more:.1%} | {pv} | "
            f"{'' if t is None else f'{t / len(items):.3f}'} |"
        )
    b = np.array(frac[names[1]])
    print(
        f"\n(b) removes less than (a) on {float((b < a - 1e-9).mean()):.1%} of the images "
        f"(ties {float((np.abs(b - a) <= 1e-9).mean()):.1%}); median difference (a)-(b) "
        f"{float(np.median(a - b)):+.4f}"
    )

    if args.figure:
        from sempix.carve.figures import energy_figure
        from sempix.image import write_image

        pick = [p for p in items if p[0].stem == args.figure_id] or items[:1]
        ip, mp = pick[0]
        img = np.asarray(Image.open(ip).convert("RGB"), dtype=np.float32) / 255.0
        pic = energy_figure(
            img, feats(img, 16), round(img.shape[1] * args.ratio), None, lams=(0.0, 1.0, 0.2)
        )
        write_image(args.figure, pic)
        print(f"figure: {args.figure} ({ip.stem})")


if __name__ == "__main__":
    main()
