"""Multi-image colour consistency on $SEMPIX_DATA_DIR/groups.

Usage::

    SEMPIX_DATA_DIR=../shared/data SEMPIX_MODEL_DIR=../shared/models \
        python benchmarks/recolor.py [--features ade20k|none] [--skip-speed]

Collections: ``collection01`` and ``brochure_images/setN`` (group palette solved), and every
``brochure_images/setN`` against every ``brochure_pages/M`` (external palette from the page).

Metrics (per collection, inputs vs outputs; lower distance = more consistent):

* ``pal``: mean pairwise palette distance: palettes (``sempix.palette.extract_palette``, automatic
  k)
  of every pair of images; distance = symmetric weighted mean nearest-colour Delta-E (CIE76),
  ``0.5 * (sum_i w_i min_j |a_i - b_j| + sum_j w_j min_i |a_i - b_j|)``.
* ``hist``: mean pairwise ab-histogram distance: 1 - histogram intersection of 16x16 normalised
  histograms of a*, b* in [-80, 80] (chroma-weighted pixels below chroma 5 excluded as greys).
* ``broken``: share of source colours whose best association the colour-naming rule (d_name = 0.8)
  broke (naming on).
* ``names pal``: source palette colours whose basic colour name (argmax of the van de Weijer model)
  differs from the name of the colour it was recoloured to, with naming on / off.
* ``names sal``: the same for the palette of each image's salient region (saliency > 0.9), where
  the recoloured colour is the salient palette colour passed through the image's recolouring.
* ``names px`` / ``all px``: share of the full-resolution output pixels of the salient region / of
  the whole image whose basic name differs from the same pixel of the white-balanced input (WB is
  meant to change colours; the naming guarantee is about the recolouring).
* ``guarded``: share of pixels the per-pixel name guard moved back (naming on).
* time: seconds for the whole collection (analysis + solve + full-resolution render), native size.

Speed: 10 images of 1 MP (collection images resized), ``features=none`` and ``ade20k``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

from sempix.color import lab_to_srgb
from sempix.image import load_rgb
from sempix.palette import extract_palette, name_probabilities, srgb_to_lab
from sempix.palette.naming import name_index
from sempix.recolor.core import (
    color_transforms,
    downsize,
    name_table,
    palette_distance,
    pixel_guard_on,
    recolor_collection,
)
from sempix.recolor.lut import apply_lut, build_lut, guard_names
from sempix.recolor.whitebalance import apply_gains

EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTS)


def mean_pairwise_palette(imgs: list[np.ndarray]) -> float:
    pals = [extract_palette(downsize(i, 320)) for i in imgs]
    return float(
        np.mean(
            [
                palette_distance(a.lab, a.weights, b.lab, b.weights)
                for a, b in itertools.combinations(pals, 2)
            ]
        )
    )


def ab_hist(img: np.ndarray) -> np.ndarray:
    lab = srgb_to_lab(downsize(img, 320)).reshape(-1, 3)
    c = np.hypot(lab[:, 1], lab[:, 2])
    lab = lab[c > 5]
    h, _, _ = np.histogram2d(lab[:, 1], lab[:, 2], bins=16, range=[[-80, 80], [-80, 80]])
    return h / max(h.sum(), 1)


def mean_pairwise_hist(imgs: list[np.ndarray]) -> float:
    hs = [ab_hist(i) for i in imgs]
    return float(np.mean([1 - np.minimum(a, b).sum() for a, b in itertools.combinations(hs, 2)]))


def distance_to_palette(imgs: list[np.ndarray], pal) -> float:
    out = []
    for i in imgs:
        p = extract_palette(downsize(i, 320))
        out.append(palette_distance(p.lab, p.weights, pal.lab, pal.weights))
    return float(np.mean(out))


def _upsample_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = mask.shape
    yi = (np.arange(shape[0]) * h) // shape[0]
    xi = (np.arange(shape[1]) * w) // shape[1]
    return mask[yi[:, None], xi[None, :]]


def name_changes(result, imgs: list[np.ndarray]) -> dict:
    """Basic-colour-name changes caused by the recolouring (white balance excluded).

    ``pal``: source palette colours whose name differs from their target's; ``sal``: colours of the
    salient region's palette (saliency > 0.9, analysis image after white balance) passed through
    the image's recolouring (LUT + per-pixel guard when naming is on); ``px`` / ``all``: share of
    full-resolution output pixels in the salient region / in the whole image whose name differs
    from the same pixel of the *white-balanced* input (the input itself where WB is not applied).
    """
    sol = result.solution
    fns = color_transforms(sol, include_wb=False)
    guard = pixel_guard_on(sol)
    table = name_table()
    r = {"pal": [0, 0], "sal": [0, 0], "px": [0, 0], "all": [0, 0]}
    for img, out, an, tgt, fn in zip(imgs, result.images, sol.analyses, sol.targets(), fns):
        a = np.argmax(name_probabilities(an.src_rgb), -1)
        b = np.argmax(name_probabilities(lab_to_srgb(tgt, gamut="clip")), -1)
        r["pal"][0] += int((a != b).sum())
        r["pal"][1] += len(a)
        ref = apply_gains(img, an.wb_gains) if an.wb_applied else img
        changed = name_index(ref) != name_index(out)
        r["all"][0] += int(changed.sum())
        r["all"][1] += changed.size
        if an.saliency is None:
            continue
        m = an.saliency > 0.9
        if m.sum() < 20:
            continue
        big = _upsample_nearest(m, changed.shape)
        r["px"][0] += int(changed[big].sum())
        r["px"][1] += int(big.sum())
        if fn is None:
            continue
        sp = extract_palette(an.small, mask=m)
        src = sp.rgb.reshape(1, -1, 3).astype(np.float32)
        moved = apply_lut(src, build_lut(fn))
        if guard:
            moved, _ = guard_names(src, moved, table)
        a = np.argmax(name_probabilities(sp.rgb), -1)
        b = np.argmax(name_probabilities(moved.reshape(-1, 3)), -1)
        r["sal"][0] += int((a != b).sum())
        r["sal"][1] += len(a)
    return r


def run_collection(name: str, paths: list[Path], features: str, ext_palette=None) -> dict:
    imgs = [load_rgb(p) for p in paths]
    t0 = time.perf_counter()
    res = recolor_collection(
        imgs, features=features, palette=None if ext_palette is None else ext_palette.rgb
    )
    dt = time.perf_counter() - t0
    res_off = recolor_collection(
        imgs,
        features=features,
        names=None,
        palette=None if ext_palette is None else ext_palette.rgb,
    )
    row = {"name": name, "n": len(imgs), "time": dt}
    row["pal"] = (mean_pairwise_palette(imgs), mean_pairwise_palette(res.images))
    row["hist"] = (mean_pairwise_hist(imgs), mean_pairwise_hist(res.images))
    if ext_palette is not None:
        row["to_ext"] = (
            distance_to_palette(imgs, ext_palette),
            distance_to_palette(res.images, ext_palette),
        )
    st = res.solution.stats
    row["broken"] = st["broken_by_names"] / max(st["colours"], 1)
    row["names_on"] = name_changes(res, imgs)
    row["names_off"] = name_changes(res_off, imgs)
    row["guarded"] = res.solution.stats.get("guarded_pixels", 0) / max(
        sum(i.shape[0] * i.shape[1] for i in imgs), 1
    )
    row["wb"] = sum(st["wb_applied"])
    return row


def speed(paths: list[Path], features: str, n: int = 10) -> tuple[float, float, float, float]:
    """Wall and CPU seconds of ``recolor_collection`` on ``n`` 1 MP images, and the mean seconds per
    image of rendering (LUT) without / with the per-pixel name guard."""
    from PIL import Image

    from sempix.recolor.core import render_image

    imgs = []
    for p in itertools.islice(itertools.cycle(paths), n):
        im = Image.open(p).convert("RGB").resize((1155, 866), Image.BICUBIC)  # 1.0 MP
        imgs.append(np.asarray(im, np.float32) / 255)
    recolor_collection(imgs[:2], features=features)  # warm-up (numba, model)
    t0, c0 = time.perf_counter(), time.process_time()
    res = recolor_collection(imgs, features=features)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    fns = color_transforms(res.solution)
    times = {False: 0.0, True: 0.0}
    for guard in (False, True, False, True):
        t0 = time.perf_counter()
        for img, an, fn in zip(imgs, res.solution.analyses, fns):
            render_image(img, an, fn, guard=guard)
        times[guard] = time.perf_counter() - t0
    return wall, cpu, times[False] / n, times[True] / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default="ade20k", choices=["ade20k", "none"])
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument(
        "--only", default=None, help="run only the collections whose name contains this"
    )
    args = ap.parse_args()
    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data:
        print("set SEMPIX_DATA_DIR", file=sys.stderr)
        return 2
    load0 = os.getloadavg()[0]
    groups = Path(data) / "groups"
    cols = [("collection01", images_in(groups / "collection01"))]
    sets = (
        sorted((groups / "brochure_images").iterdir())
        if (groups / "brochure_images").is_dir()
        else []
    )
    cols += [(f"brochure_images/{s.name}", images_in(s)) for s in sets]
    pages = (
        sorted((groups / "brochure_pages").iterdir())
        if (groups / "brochure_pages").is_dir()
        else []
    )
    if args.speed_only:
        sets, cols_run = [], []
    else:
        cols_run = cols
    if args.only:
        cols_run = [c for c in cols_run if args.only in c[0]]
        sets = [s for s in sets if args.only in f"brochure_images/{s.name}"]
    rows = [run_collection(n, p, args.features) for n, p in cols_run if len(p) >= 2]
    ext_rows = []
    for s in sets:
        for pg in pages:
            page_imgs = images_in(pg)
            if not page_imgs:
                continue
            pal = extract_palette(downsize(load_rgb(page_imgs[0]), 320))
            ext_rows.append(
                run_collection(f"{s.name} -> page {pg.name}", images_in(s), args.features, pal)
            )
    print(
        f"recolor benchmark, features={args.features}, cpu_count={os.cpu_count()}, "
        f"load average at start {load0:.1f}, at end {os.getloadavg()[0]:.1f}"
    )
    print()
    print(
        "| collection | images | pal before | pal after | hist before | hist after | broken by "
        "naming "
        "| name changes: palette (naming on / off) | salient palette (on / off) | salient pixels % "
        "(on / off) "
        "| all pixels % (on / off) | guarded px % | WB | time s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def frac(x):
        return f"{x[0]}/{x[1]}"

    def pct(x):
        return f"{100 * x[0] / max(x[1], 1):.2f}"

    for r in rows + ext_rows:
        on, off = r["names_on"], r["names_off"]
        print(
            f"| {r['name']} | {r['n']} | {r['pal'][0]:.2f} | {r['pal'][1]:.2f} | "
            f"{r['hist'][0]:.3f} | "
            f"{r['hist'][1]:.3f} | {100 * r['broken']:.1f}% | {frac(on['pal'])} / "
            f"{frac(off['pal'])} | "
            f"{frac(on['sal'])} / {frac(off['sal'])} | {pct(on['px'])} / {pct(off['px'])} | "
            f"{pct(on['all'])} / {pct(off['all'])} | {100 * r['guarded']:.2f} | {r['wb']} | "
            f"{r['time']:.2f} |"
        )
    if ext_rows:
        print()
        print(
            "| collection -> external palette | mean palette distance to the page palette before | "
            "after |"
        )
        print("|---|---|---|")
        for r in ext_rows:
            print(f"| {r['name']} | {r['to_ext'][0]:.2f} | {r['to_ext'][1]:.2f} |")
    improved = sum(r["pal"][1] < r["pal"][0] for r in rows)
    print()
    if rows:
        print(
            f"consistency (palette distance) improved on {improved}/{len(rows)} collections; "
            "palette-colour name changes with naming on: "
            f"{sum(r['names_on']['pal'][0] for r in rows + ext_rows)}, "
            "salient-pixel name changes with naming on: "
            f"{sum(r['names_on']['px'][0] for r in rows + ext_rows)}, "
            "all-pixel name changes with naming on: "
            f"{sum(r['names_on']['all'][0] for r in rows + ext_rows)}"
        )
    if not args.skip_speed:
        paths = cols[0][1]
        for feat in ("none", args.features) if args.features != "none" else ("none",):
            t, cpu, r0, r1 = speed(paths, feat)
            print(
                f"speed: 10 images of 1.0 MP, features={feat}: {t:.2f} s wall, {cpu:.2f} s CPU of "
                "this process "
                f"({t / 10:.3f} s/image, cpu_count={os.cpu_count()}, load average "
                f"{os.getloadavg()[0]:.1f}, "
                f"target <= 5 s); render per 1 MP image: {1000 * r0:.0f} ms without, "
                f"{1000 * r1:.0f} ms with "
                f"the per-pixel name guard (+{1000 * (r1 - r0):.0f} ms)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
