"""SA-AdjustNet benchmark: per effect, on the seeded validation split of $SEMPIX_DATA_DIR/adjust.

Rows: the input (no change; the anchor), baselines (a) context-free and (b) Yan-style, and the four
variants (+MSE, +Huber, +Huber+MT, +Huber+MT+S), all trained with the SAME schedule (printed).
Error: per-pixel Euclidean distance in CIELab between the output (applied at the image's full
resolution through the affine colour mapping) and the retouched target, averaged over pixels,
then over images ("L2"); "RMS" = sqrt of the per-image mean squared distance, averaged over images.
Also: training time, inference time for a 512 px and a 12-megapixel image; for the context rows
"L2 ctx-swap" = the same model with each validation image's context replaced by the context of
another validation image (if it is no worse than L2, the context is not used); for variant S the
share of pixels whose most probable preset is each preset and the mean max probability (whether the
adjustment maps differentiate). ``--seeds 0,1`` trains the ``--seed-rows`` with several seeds (the
validation split stays the same) and reports mean and spread.

    python benchmarks/adjust.py --effect popout --steps 30 --size 160 --lr 1e-3   # short
    python benchmarks/adjust.py --effect popout                                     # default config

Style files go to a temporary folder (never into the repository).
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--lr", type=float, default=1e-3)
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
    ap.add_argument("--seeds", default="0", help="training seeds of the --seed-rows")
    ap.add_argument("--seed-rows", default="huber-mt,huber-mt-s")
    ap.add_argument("--mt-weight", type=float, default=None, help="default: TrainSettings'")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    ap.add_argument("--eval", default=None, metavar="STYLE[,STYLE]",
                    help="evaluate existing style files (e.g. from `sempix adjust train`) on the "
                         "same validation split instead of training rows")
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
    if args.mt_weight is not None:
        ts.mt_weight = args.mt_weight
    _, val = split_pairs(names, args.val, ts.seed)
    vals = [(load_rgb(by[n][1]), load_rgb(by[n][2])) for n in val]
    print(f"effect {args.effect}: {len(names)} pairs, {len(names) - len(val)} train / "
          f"{len(val)} validation (seed {ts.seed}); cores {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}, torch threads {args.threads or torch.get_num_threads()}")
    if not args.eval:
        print(f"schedule (all rows): steps {ts.steps}, batch {ts.batch}, Adam lr {ts.lr} "
              f"(backbone x{ts.backbone_lr_ratio}), {ts.pixels} px/image, network long side "
              f"{ts.size}, rotation +-{ts.rotate} deg + flips, MT weight {ts.mt_weight}, "
              f"device {ts.device}")
    inp = [lab_errors(x, y) for x, y in vals]
    in_l2 = float(np.mean([e[0] for e in inp]))
    in_rms = float(np.mean([e[1] for e in inp]))
    rows = [{"row": "input", "l2": [in_l2], "rms": [in_rms]}]
    if args.eval:
        evaluate_styles(args.eval.split(","), vals, val, (in_l2, in_rms), args)
        return
    outdir = Path(args.outdir or tempfile.mkdtemp(prefix="sempix-adjust-bench-"))
    rng = np.random.default_rng(0)
    img512 = resize(vals[0][0], (341, 512)) if vals else rng.random((341, 512, 3), np.float32)
    img12 = rng.random((3000, 4000, 3)).astype(np.float32)
    seeds = [int(x) for x in args.seeds.split(",")]
    variants = args.rows.split(",")
    byv = {}
    for v in variants:
        byv[v] = {"row": LABEL[v], "variant": v, "l2": [], "rms": [], "train_s": [],
                  "seeds": [], "loads": []}
        rows.append(byv[v])
    # every row with the first seed first, then the extra seeds (droppable when time runs out)
    jobs = [(v, seeds[0]) for v in variants]
    jobs += [(v, s) for s in seeds[1:] for v in variants if v in args.seed_rows.split(",")]
    for v, seed in jobs:
        row = byv[v]
        ts.seed = seed
        style = outdir / f"{args.effect}-{v}-s{seed}.pt"
        r = train_style(data, style, effect=args.effect, variant=v, k=args.k, settings=ts)
        model, cfg, ck = load_style(style, args.device)
        outs = [adjust_image(model, ck, x, device=args.device) for x, _ in vals]
        errs = [lab_errors(o, y) for o, (_, y) in zip(outs, vals)]
        row["l2"].append(float(np.mean([e[0] for e in errs])))
        row["rms"].append(float(np.mean([e[1] for e in errs])))
        row["train_s"].append(r["seconds"])
        row["seeds"].append(seed)
        row["loads"].append(os.getloadavg()[0])
        if seed == seeds[0]:
            if cfg.uses_context:
                row["l2_ctx_swap"] = context_swap_l2(model, ck, vals, args.device)
            if cfg.adjustment_map:
                row["maps"] = map_stats(model, ck, vals, args.device)
            t = time.perf_counter()
            adjust_image(model, ck, img512, device=args.device)
            row["t512"] = time.perf_counter() - t
            if v in args.mp12_rows.split(","):
                t = time.perf_counter()
                adjust_image(model, ck, img12, device=args.device)
                row["t12"] = time.perf_counter() - t
        print(f"  done {v} seed {seed}: L2 {row['l2'][-1]:.2f} train {r['seconds']:.0f} s "
              f"(load {os.getloadavg()[0]:.1f}) {row.get('l2_ctx_swap', '')} "
              f"{row.get('maps', '')}", flush=True)
        if args.json:  # partial results survive an interrupted run
            Path(args.json).write_text(json.dumps(
                {"effect": args.effect, "schedule": ts.to_dict(), "input": [in_l2, in_rms],
                 "rows": rows}, indent=1))
    print()
    print(f"| {args.effect} | mean L2 | L2 / input | RMS | RMS / input | L2 ctx-swap | seeds | "
          "train s | 512 px s | 12 MP s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in [r for r in rows if r["l2"]]:
        l2, rms = float(np.mean(r["l2"])), float(np.mean(r["rms"]))
        spread = f" ({min(r['l2']):.2f}-{max(r['l2']):.2f})" if len(r["l2"]) > 1 else ""
        f = (lambda x, d=1: "-" if x is None else f"{x:.{d}f}")
        print(f"| {r['row']} | {l2:.2f}{spread} | {l2 / in_l2:.3f} | {rms:.2f} | "
              f"{rms / in_rms:.3f} | {f(r.get('l2_ctx_swap'), 2)} | {len(r['l2'])} | "
              f"{f(np.mean(r['train_s']) if r.get('train_s') else None, 0)} | "
              f"{f(r.get('t512'), 2)} | {f(r.get('t12'))} |")
    for r in rows:
        if "maps" in r:
            print(f"{r['row']} adjustment maps on the validation images: {r['maps']}")
    print(f"\nload average at the end: {os.getloadavg()}; style files in {outdir}")


def evaluate_styles(paths, vals, val, inp, args) -> None:
    """``--eval``: the benchmark's errors (and ctx-swap, 512 px time) of existing style files."""
    from sempix.adjust import adjust_image, load_style

    in_l2, in_rms = inp
    print("| style | steps | mean L2 | L2 / input | RMS | RMS / input | L2 ctx-swap | 512 px s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| input | - | {in_l2:.2f} | 1.000 | {in_rms:.2f} | 1.000 | - | - |")
    out = []
    for path in paths:
        model, cfg, ck = load_style(path, args.device)
        split = ck["config"]["model"]["data"].get("val")
        if split is not None and sorted(split) != sorted(val):
            raise SystemExit(f"{path}: trained with another validation split")
        errs = [lab_errors(adjust_image(model, ck, x, device=args.device), y) for x, y in vals]
        l2, rms = float(np.mean([e[0] for e in errs])), float(np.mean([e[1] for e in errs]))
        swap = context_swap_l2(model, ck, vals, args.device) if cfg.uses_context else None
        t = time.perf_counter()
        adjust_image(model, ck, vals[0][0], device=args.device)
        t512 = time.perf_counter() - t
        sw = "-" if swap is None else f"{swap:.2f}"
        print(f"| {path} ({cfg.variant}) | {ck['step']} | {l2:.2f} | {l2 / in_l2:.3f} | "
              f"{rms:.2f} | {rms / in_rms:.3f} | {sw} | {t512:.2f} |", flush=True)
        out.append({"style": str(path), "variant": cfg.variant, "step": ck["step"], "l2": l2,
                    "rms": rms, "per_image_l2": [e[0] for e in errs], "l2_ctx_swap": swap,
                    "t512": t512})
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"effect": args.effect, "input": [in_l2, in_rms], "styles": out}, indent=1))
    print(f"\nload average: {os.getloadavg()}")


def context_swap_l2(model, ck, vals, device) -> float:
    """Mean L2 when each validation image gets the context map of the next validation image
    (resized to its own context grid): the context ablation."""
    import torch
    import torch.nn.functional as F

    from sempix.adjust import adjust_image
    from sempix.adjust.data import to_net

    size = int(ck["config"]["model"]["settings"]["size"])
    orig = model.context
    ctxs = []
    with torch.no_grad():
        for x, _ in vals:
            small = to_net(x, size)
            t = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)))[None]
            ctxs.append(orig(t.to(device)))
    errs = []
    try:
        for i, (x, y) in enumerate(vals):
            other = ctxs[(i + 1) % len(vals)]

            def swapped(rgb, other=other):
                shape = orig(rgb).shape[2:]
                return F.interpolate(other, size=shape, mode="bilinear", align_corners=False)

            model.context = swapped
            errs.append(lab_errors(adjust_image(model, ck, x, device=device), y)[0])
    finally:
        del model.context  # back to the class method
    return float(np.mean(errs))


def map_stats(model, ck, vals, device) -> dict:
    """Variant S: share of validation pixels per most-probable preset, mean max probability."""
    from sempix.adjust import preset_maps

    shares, conf = [], []
    for x, _ in vals:
        m = preset_maps(model, ck, x, device=device)
        shares.append(np.bincount(m.argmax(2).ravel(), minlength=m.shape[2]) / m[..., 0].size)
        conf.append(float(m.max(2).mean()))
    return {"argmax_share": [round(float(v), 3) for v in np.mean(shares, 0)],
            "mean_max_prob": round(float(np.mean(conf)), 3)}


if __name__ == "__main__":
    main()
