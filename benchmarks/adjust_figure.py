"""Figure for docs/adjust.md: input / target / ours / baseline / adjustment maps for a few
validation images, from style files written by benchmarks/adjust.py (--outdir).

    python benchmarks/adjust_figure.py --styles .bench/popout -o .bench/adjust_figure.jpg

The figure shows photos of Yan et al.'s dataset (research use, not redistributed): write it
outside the repository or into an ignored folder such as ``.bench/``; never commit it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", required=True)
    ap.add_argument("--effect", default="popout")
    ap.add_argument("--ours", default="huber-mt-s")
    ap.add_argument("--baseline", default="yan")
    ap.add_argument("--seed", type=int, default=0, help="style files NAME-sSEED.pt (benchmark)")
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--width", type=int, default=240)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    from sempix.adjust import adjust_image, load_style, preset_maps
    from sempix.adjust.data import find_pairs
    from sempix.color import label_colors
    from sempix.image import load_rgb, write_image
    from sempix.ops import resize

    styles = Path(args.styles)

    def style(v):
        p = styles / f"{args.effect}-{v}-s{args.seed}.pt"
        return load_style(p if p.is_file() else styles / f"{args.effect}-{v}.pt")

    ours, base = style(args.ours), style(args.baseline)
    val = ours[2]["config"]["model"]["data"]["val"][: args.n]
    data = Path(os.environ.get("SEMPIX_DATA_DIR", "")) / "adjust"
    by = {t[0]: t for t in find_pairs(data, args.effect)}
    rows = []
    for name in val:
        x, y = load_rgb(by[name][1]), load_rgb(by[name][2])
        o = adjust_image(ours[0], ours[2], x)
        b = adjust_image(base[0], base[2], x)
        tiles = [x, y, o, b]
        if getattr(ours[0].config, "adjustment_map", False):
            m = preset_maps(ours[0], ours[2], x)
            col = label_colors(m.shape[2] + 1)[1:].astype(np.float32) / 255.0
            tiles.append(np.einsum("hwk,kc->hwc", m, col))
        h = round(x.shape[0] * args.width / x.shape[1])
        rows.append(np.concatenate([resize(t, (h, args.width)) for t in tiles], axis=1))
    w = max(r.shape[1] for r in rows)
    fig = np.concatenate([np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0)), constant_values=1)
                          for r in rows], axis=0)
    write_image(args.output, fig, quality=85)
    print(f"{args.output}: columns input | target | {args.ours} | {args.baseline} | maps; "
          f"images {', '.join(val)}")


if __name__ == "__main__":
    main()
