"""Soft-segmentation speed and peak memory per stage at 0.3, 0.6 and 1.2 MP.

    SEMPIX_MODEL_DIR=../shared/models python benchmarks/softseg.py [--sizes
    640x480,896x672,1280x960]

Each size runs in its own subprocess so that the peak resident memory (``ru_maxrss``, which also
counts C/Fortran allocations of SuperLU, BLAS, numba) belongs to that size alone. The image is a
real photograph (alphamatting GT04 from SEMPIX_DATA_DIR if present, else scikit-image's
astronaut) resized to each size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def child(w: int, h: int, work_pixels: int) -> None:
    import numpy as np
    from PIL import Image

    from sempix.softseg import soft_segment

    data = os.environ.get("SEMPIX_DATA_DIR", "")
    p = os.path.join(data, "alphamatting", "input", "GT04.png")
    if data and os.path.isfile(p):
        im = Image.open(p).convert("RGB")
    else:
        from skimage import data as skd

        im = Image.fromarray(skd.astronaut())
    img = np.asarray(im.resize((w, h), Image.BICUBIC), np.float32) / 255
    t = time.perf_counter()
    res = soft_segment(img, backend="ade20k", work_pixels=work_pixels or None)
    total = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    print(
        json.dumps(
            {
                "w": w,
                "h": h,
                "total": total,
                "peak_gib": rss,
                "timings": res.timings,
                "layers": res.n_layers,
                "backend": res.meta.get("backend"),
                "work_shape": res.meta.get("work_shape"),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="640x480,896x672,1280x960")
    ap.add_argument("--work-pixels", type=int, default=25000)
    ap.add_argument("--child", default="")
    args = ap.parse_args()
    if args.child:
        w, h = map(int, args.child.split("x"))
        child(w, h, args.work_pixels)
        return
    rows = []
    for s in args.sizes.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", s, "--work-pixels", str(args.work_pixels)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    stages = [
        "features",
        "laplacian",
        "eigen",
        "constrained",
        "laplacian_full",
        "relaxed",
        "colors",
    ]
    print(f"# softseg speed, cores={os.cpu_count()}, work_pixels={args.work_pixels}")
    print("| size | MP | " + " | ".join(stages) + " | total s | peak GiB | s/MP |")
    print("|---|---|" + "---|" * (len(stages) + 3))
    for r in rows:
        mp = r["w"] * r["h"] / 1e6
        print(
            f"| {r['w']}x{r['h']} | {mp:.2f} | "
            + " | ".join(f"{r['timings'].get(s, 0):.1f}" for s in stages)
            + f" | {r['total']:.1f} | {r['peak_gib']:.2f} | {r['total'] / mp:.1f} |"
        )
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(
            f"\ntime ratio {b['w']}x{b['h']} / {a['w']}x{a['h']}: {b['total'] / a['total']:.2f} "
            f"for a pixel ratio of {b['w'] * b['h'] / (a['w'] * a['h']):.2f}"
        )


if __name__ == "__main__":
    main()
