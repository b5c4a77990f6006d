"""SA-AdjustNet benchmark: per effect, on the seeded validation split of $SEMPIX_DATA_DIR/adjust.

Rows: the input (no change; the anchor), baselines (a) context-free and (b) Yan-style, and the four
variants (+MSE, +Huber, +Huber+MT, +Huber+MT+S), all trained with the SAME schedule (printed).
Error: per-pixel Euclidean distance in CIELab between the output (applied at the image's full
resolution through the affine colour mapping) and the retouched target, averaged over pixels,
then over images ("L2"); "RMS" = sqrt of the per-image mean squared distance, averaged over images.
Also: training time, inference time for a 512 px and a 12-megapixel image.

    python benchmarks/adjust.py --effect popout --steps 30 --size 160 --lr 1e-3   # short
    python benchmarks/adjust.py --effect popout                                     # default config

Style files go to a temporary folder (never into the repository).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = ("context-free", "yan", "mse", "huber", "huber-mt", "huber-mt-s")
LABEL = {"context-free": "(a) context-free", "yan": "(b) Yan-style", "mse": "+MSE",
         "huber": "+Huber", "huber-mt": "+Huber+MT", "huber-mt-s": "+Huber+MT+S"}


def lab_errors(out: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    from sempix.color import srgb_to_lab

    d = np.linalg.norm(srgb_to_lab(out) - srgb_to_lab(target), axis=2)
    return float(d.mean()), float(np.sqrt((d**2).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--effect", default="popout")
    ap.add_argument("--data", default=None, help="default: $SEMPIX_DATA_DIR/adjust")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--pixels", type=int, default=2048)
    ap.add_argument("--val", type=int, default=10)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--mp12-rows", default="huber-mt,yan",
                    help="rows whose 12-megapixel inference time is measured")
    ap.add_argument("--outdir", default=None, help="keep style files here (default: temp dir)")
    args = ap.parse_args()

    import torch

    from sempix.adjust import TrainSettings, adjust_image, load_style, train_style
    from sempix.adjust.data import find_pairs, split_pairs
    from sempix.image import load_rgb
    from sempix.ops import resize

    data = Path(args.data or Path(os.environ.get("SEMPIX_DATA_DIR", "")) / "adjust")
    triples = find_pairs(data, args.effect)
    names = [t[0] for t in triples]
    by = {t[0]: t for t in triples}
    ts = TrainSettings(steps=args.steps, batch=args.batch, lr=args.lr, size=args.size,
                       pixels=args.pixels, n_val=args.val, device=args.device,
                       threads=args.threads, checkpoint_every=0)
    _, val = split_pairs(names, args.val, ts.seed)
    vals = [(load_rgb(by[n][1]), load_rgb(by[n][2])) for n in val]
    print(f"effect {args.effect}: {len(names)} pairs, {len(names) - len(val)} train / "
          f"{len(val)} validation (seed {ts.seed}); cores {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}, torch threads {args.threads or torch.get_num_threads()}")
    print(f"schedule (all rows): steps {ts.steps}, batch {ts.batch}, Adam lr {ts.lr} (backbone x"
          f"{ts.backbone_lr_ratio}), {ts.pixels} px/image, network long side {ts.size}, "
          f"rotation +-{ts.rotate} deg + flips, device {ts.device}")
    inp = [lab_errors(x, y) for x, y in vals]
    in_l2 = float(np.mean([e[0] for e in inp]))
    in_rms = float(np.mean([e[1] for e in inp]))
    rows = [("input", in_l2, in_rms, None, None, None)]
    outdir = Path(args.outdir or tempfile.mkdtemp(prefix="sempix-adjust-bench-"))
    rng = np.random.default_rng(0)
    img512 = resize(vals[0][0], (341, 512)) if vals else rng.random((341, 512, 3), np.float32)
    img12 = rng.random((3000, 4000, 3)).astype(np.float32)
    for v in args.rows.split(","):
        style = outdir / f"{args.effect}-{v}.pt"
        r = train_style(data, style, effect=args.effect, variant=v, k=args.k, settings=ts)
        model, cfg, ck = load_style(style, args.device)
        errs = [lab_errors(adjust_image(model, ck, x, device=args.device), y) for x, y in vals]
        t = time.perf_counter()
        adjust_image(model, ck, img512, device=args.device)
        t512 = time.perf_counter() - t
        t12 = None
        if v in args.mp12_rows.split(","):
            t = time.perf_counter()
            adjust_image(model, ck, img12, device=args.device)
            t12 = time.perf_counter() - t
        rows.append((LABEL[v], float(np.mean([e[0] for e in errs])),
                     float(np.mean([e[1] for e in errs])), r["seconds"], t512, t12))
        print(f"  done {v}: L2 {rows[-1][1]:.2f} train {r['seconds']:.0f} s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    print()
    print(f"| {args.effect} | mean L2 | L2 / input | RMS | train s | 512 px s | 12 MP s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, l2, rms, tt, t5, t12 in rows:
        f = (lambda x: "-" if x is None else f"{x:.1f}")
        print(f"| {name} | {l2:.2f} | {l2 / in_l2:.3f} | {rms:.2f} | {f(tt)} | "
              f"{'-' if t5 is None else f'{t5:.2f}'} | {f(t12)} |")
    print(f"\nload average at the end: {os.getloadavg()}; style files in {outdir}")


if __name__ == "__main__":
    main()
