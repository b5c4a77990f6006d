"""Picture + numbers: the per-pixel colour-name guard on smooth ramps (banding check).

Usage::

    SEMPIX_MODEL_DIR=../shared/models python benchmarks/recolor_guard_ramp.py -o guard_ramps.png

Three ramps (red -> yellow, blue -> green, grey -> skin) go through a palette recolouring
(``sempix.palette.recolor_palette`` sampled on the 33^3 LUT, like ``sempix recolor``). For each ramp
the picture shows four strips: input, LUT output (no per-pixel guard: pixels change basic name),
hard guard (``soft=0``: steps at the name boundaries), soft guard (default ``soft=0.5``: ramps).
The table gives the pixels whose basic name changes and the largest Delta-E between neighbouring
pixels (the input ramp's own step is the reference; a large value is a visible band edge).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from sempix.image import write_image
from sempix.palette import recolor_palette, srgb_to_lab
from sempix.palette.naming import name_index
from sempix.recolor.core import name_table
from sempix.recolor.lut import GUARD_SOFT, apply_lut, build_lut, guard_names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="guard_ramps.png")
    args = ap.parse_args()
    w, h = 600, 50
    u = np.linspace(0, 1, w, dtype=np.float32)[:, None]
    ends = [((0.8, 0.15, 0.1), (0.9, 0.85, 0.1)), ((0.1, 0.2, 0.8), (0.1, 0.7, 0.3)),
            ((0.5, 0.5, 0.5), (0.85, 0.6, 0.45))]
    src = srgb_to_lab(np.array([[0.85, 0.5, 0.1], [0.1, 0.45, 0.55], [0.7, 0.55, 0.5]], np.float32))
    tgt = src.copy()
    tgt[:, 1:] += np.array([(15, -10), (-15, 12), (6, 12)], np.float32)
    lut = build_lut(lambda x: recolor_palette(x, src, tgt))
    strips = []
    print(f"cpu_count={os.cpu_count()}")
    print(
        "| ramp | input max step | LUT: name changes / max step | hard guard | soft guard "
        f"({GUARD_SOFT}) |"
    )
    print("|---|---|---|---|---|")

    def step(x):
        return float(np.linalg.norm(np.diff(srgb_to_lab(x[0]), axis=0), axis=1).max())

    for c0, c1 in ends:
        ramp = (np.array(c0, np.float32) * (1 - u) + np.array(c1, np.float32) * u)[None]
        out = apply_lut(ramp, lut)
        hard, _ = guard_names(ramp, out, name_table(), soft=0.0)
        soft, _ = guard_names(ramp, out, name_table())
        n0 = name_index(ramp)
        cells = [f"{int((name_index(x) != n0).sum())} / {step(x):.2f}" for x in (out, hard, soft)]
        print(f"| {c0} -> {c1} | {step(ramp):.2f} | " + " | ".join(cells) + " |")
        for x in (ramp, out, hard, soft):
            strips += [np.repeat(x, h, 0), np.ones((3, w, 3), np.float32)]
        strips.append(np.zeros((12, w, 3), np.float32))
    write_image(args.output, np.concatenate(strips, 0))
    print(f"wrote {args.output} (per ramp: input, LUT, hard guard, soft guard)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
