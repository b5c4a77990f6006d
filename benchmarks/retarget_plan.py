"""Deep seam plan diagnostics on RetargetMe: how much of each reduction the deep seams do, per
percentile.

Usage::

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        .venv/bin/python benchmarks/retarget_plan.py [--limit 10] [--percentiles 20,50]

For every reduction set and percentile: deep seams removed at the deepest layer (of its width), the
energy kept by the retargeted deepest-layer target ``||F'_L|| / ||F_L(I)||`` (what the
reconstruction is
asked to reproduce), and the Semantic Score (deepest VGG layer) of ``multiop`` (the plan applied to
the
pixels). No reconstruction is run, so this takes seconds per set.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--limit", type=int, default=10, help="first N sets (reductions among them are used)"
    )
    ap.add_argument("--percentiles", default="20,50")
    args = ap.parse_args(argv)
    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data or not (Path(data) / "retargetme").is_dir():
        print("SEMPIX_DATA_DIR/retargetme not found; set SEMPIX_DATA_DIR", file=sys.stderr)
        return 2
    import torch

    from sempix.image import load_rgb
    from sempix.retarget import get_vgg
    from sempix.retarget.deep import plan
    from sempix.retarget.score import vgg_norm
    from sempix.retarget.vgg import PAPER_LAYERS, resolve_layers, to_tensor

    torch.set_num_threads(os.cpu_count() or 1)
    net = get_vgg()
    used = resolve_layers(list(PAPER_LAYERS), net.depth)
    deepest = used[-1]
    pcts = [float(p) for p in args.percentiles.split(",")]
    root = Path(data) / "retargetme"
    sets = sorted(p for p in root.iterdir() if p.is_dir() and (p / "src.jpg").is_file())[
        : args.limit
    ]
    acc: dict[float, list[tuple[float, float, float]]] = {p: [] for p in pcts}
    print(f"deepest layer {deepest}; os.cpu_count()={os.cpu_count()}")
    print(
        "| set | size | "
        + " | ".join(f"p{p:g}: deep seams / target energy / multiop SS" for p in pcts)
        + " |"
    )
    print("|" + "---|" * (2 + len(pcts)))
    for sd in sets:
        src = load_rgb(sd / "src.jpg")
        ref = load_rgb(sd / "1.jpg")
        h, w = src.shape[:2]
        th, tw = ref.shape[:2]
        if tw >= w or th != h:
            continue
        with torch.no_grad():
            feats = net(to_tensor(src), used)
        den = float(torch.linalg.vector_norm(feats[deepest]))
        den_img = vgg_norm(src, net)
        tws = {n: net.layer_size(n, h, tw)[1] for n in used}
        cells = []
        for pct in pcts:
            p = plan(feats, (h, w), tw, tws, percentile=pct)
            lv = p.levels[deepest]
            energy = float(torch.linalg.vector_norm(p.apply(deepest, feats[deepest]))) / den
            ss = vgg_norm(p.apply_image(src), net) / den_img
            acc[pct].append((lv.n_removed / lv.shape[1], energy, ss))
            cells.append(f"{lv.n_removed}/{lv.shape[1]} / {energy:.4f} / {ss:.4f}")
        print(f"| {sd.name} | {w}x{h}->{tw}x{th} | " + " | ".join(cells) + " |", flush=True)
    print()
    for pct in pcts:
        a = np.array(acc[pct])
        if a.size:
            print(
                f"percentile {pct:g}: {len(a)} reductions; deep columns removed "
                f"{100 * a[:, 0].mean():.1f} % "
                f"(mean); target energy {a[:, 1].mean():.4f}; multiop SS {a[:, 2].mean():.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
