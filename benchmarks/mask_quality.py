"""Range-mask quality on BSDS500: does the mask from one click match a human segment?

For every image of ``$SEMPIX_DATA_DIR/bsds500/images/<split>`` and each of the ``--segments``
largest segments of the first human annotation (``groundTruth{1}.Segmentation``), click the
segment's most interior pixel (maximum of its distance transform), compute the distance map of
each method and the IoU between ``distance < tau`` and the segment:

* ``luminance``  : |dL*|/100 (lam = 0)
* ``lab``        : DeltaE76/100 (lam = 0)
* ``semantic``   : ade20k feature distance only (lam = 1)
* ``combined``   : lam * semantic + (1 - lam) * luminance with the documented default lam = 0.5
* ``combined-lab``: the same with the Lab colour term
* ``combined-0.8`` / ``combined-lab-0.8``: the same with lam = 0.8
* ``combined-best-lam``: per segment the best lam of {0, 0.1, ..., 1} (oracle, luminance term)
* ``old-default``: the pre-issue-19 default (= ``combined``: lam 0.5, luminance, tau 0.25)
* ``default``: what ``range_mask`` does with no options today (``sempix.mask`` defaults: lam,
  colour space, connected-to-the-click minimax distance, tau)

"best tau" = the threshold maximising that segment's IoU (sweep of 1000 thresholds); "IoU at
default tau" = what a user gets without touching the threshold (0.25 for every row but
``default``, which uses ``sempix.mask.DEFAULT_TAU``); "tuned tau" = the single threshold
per method that maximises the mean IoU over all evaluated segments (tuned on the same images, so
optimistic). Win rate = share of segments where a row's best-tau IoU beats luminance's
(ties counted separately); the second table counts, per segment and per image (mean over its
segments), where ``default`` beats each single cue, on best-tau IoU and on IoU at the default tau.
Choose and tune on ``--split train``; ``val`` is then unseen.

    flock /tmp/sempix-bench.lock .venv/bin/python benchmarks/mask_quality.py --split val [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

METHODS = (
    "luminance",
    "lab",
    "semantic",
    "combined",
    "combined-lab",
    "combined-0.8",
    "combined-lab-0.8",
    "combined-best-lam",
    "old-default",
    "default",
)
#: single cues the default must beat
CUES = ("luminance", "lab", "semantic")
HIGH_LAM = 0.8
DEFAULT_LAM = 0.5  # the lam of the "combined*" rows (the pre-issue-19 default)
OLD_TAU = 0.25  # the pre-issue-19 default threshold (all rows but "default")
LAMS = tuple(round(0.1 * k, 1) for k in range(11))
N_TAU = 1000
TAU_MAX = 3.0


def iou_curve(d: np.ndarray, seg: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """IoU of ``d < tau`` with ``seg`` for every tau (sorted ascending). Exact, O(N log N)."""
    flat = d.ravel()
    s = seg.ravel()
    order = np.argsort(flat, kind="stable")
    ds = flat[order]
    cum_in = np.concatenate([[0], np.cumsum(s[order])])
    k = np.searchsorted(ds, taus, side="left")  # pixels with d < tau
    inter = cum_in[k]
    union = s.sum() + k - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def interior_point(seg: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel farthest from the segment's boundary."""
    from scipy.ndimage import distance_transform_edt

    dt = distance_transform_edt(np.pad(seg, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return int(x), int(y)


def load_segments(mat_path: Path, n: int, min_frac: float) -> list[np.ndarray]:
    from scipy.io import loadmat

    gt = loadmat(str(mat_path))["groundTruth"]
    seg = np.asarray(gt[0, 0]["Segmentation"][0, 0])
    ids, counts = np.unique(seg, return_counts=True)
    order = np.argsort(-counts)
    out = []
    for i in order[:n]:
        if counts[i] >= min_frac * seg.size:
            out.append(seg == ids[i])
    return out


def evaluate(
    split: str,
    limit: int | None,
    n_segments: int,
    backend: str,
    min_frac: float,
    progress: bool = True,
    figure_rows: int = 0,
) -> dict:
    from sempix.image import read_image
    from sempix.mask import DEFAULT_TAU, MaskSource, mask_features

    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data:
        raise SystemExit("set SEMPIX_DATA_DIR (folder with bsds500/)")
    root = Path(data) / "bsds500"
    images = sorted((root / "images" / split).glob("*.jpg"))
    if limit:
        images = images[:limit]
    if not images:
        raise SystemExit(f"no images in {root / 'images' / split}")
    taus = np.linspace(0.0, TAU_MAX, 3 * N_TAU + 1)[1:]
    i_old = int(np.argmin(np.abs(taus - OLD_TAU)))
    i_new = int(np.argmin(np.abs(taus - DEFAULT_TAU)))
    image_of: list[int] = []
    curves: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    best_lams: list[float] = []
    semantic_backend = None
    fig_rows: list[np.ndarray] = []
    t0 = time.perf_counter()
    feat_time = 0.0
    for n_img, path in enumerate(images):
        segs = load_segments(
            root / "groundTruth" / split / (path.stem + ".mat"), n_segments, min_frac
        )
        if not segs:
            continue
        img = read_image(path).rgb
        if segs[0].shape != img.shape[:2]:
            continue
        tf = time.perf_counter()
        fm = mask_features(img, backend, strict=True)
        feat_time += time.perf_counter() - tf
        semantic_backend = fm.backend
        src = MaskSource(img, fm)
        for seg in segs:
            pt = interior_point(seg)
            sem, lum = src.distances(pt, "luminance")
            lab = src.colour_distance(pt, "lab")
            maps = {
                "luminance": lum,
                "lab": lab,
                "semantic": sem,
                "combined": DEFAULT_LAM * sem + (1 - DEFAULT_LAM) * lum,
                "combined-lab": DEFAULT_LAM * sem + (1 - DEFAULT_LAM) * lab,
                "combined-0.8": HIGH_LAM * sem + (1 - HIGH_LAM) * lum,
                "combined-lab-0.8": HIGH_LAM * sem + (1 - HIGH_LAM) * lab,
                "old-default": DEFAULT_LAM * sem + (1 - DEFAULT_LAM) * lum,
                "default": src.distance([pt]),
            }
            image_of.append(n_img)
            for m, d in maps.items():
                curves[m].append(iou_curve(d, seg, taus))
            best, best_c, best_l = -1.0, None, None
            for lam in LAMS:
                c = iou_curve(lam * sem + (1 - lam) * lum, seg, taus)
                if c.max() > best:
                    best, best_c, best_l = float(c.max()), c, lam
            curves["combined-best-lam"].append(best_c)
            best_lams.append(best_l)
            if len(fig_rows) < figure_rows:
                fig_rows.append(_figure_row(img, seg, pt, maps, taus))
        if progress:
            print(
                f"\r{n_img + 1}/{len(images)} images, {len(curves['luminance'])} segments, "
                f"{time.perf_counter() - t0:.0f} s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(file=sys.stderr)
    res = {
        "split": split,
        "images": len(images),
        "segments": len(curves["luminance"]),
        "backend": semantic_backend,
        "seconds": time.perf_counter() - t0,
        "feature_seconds": feat_time,
        "cpu_count": os.cpu_count(),
        "rows": {},
        "best_lams": best_lams,
        "figure": fig_rows,
        "default_tau": DEFAULT_TAU,
        "wins": {},
    }
    lum_best = np.array([c.max() for c in curves["luminance"]])
    for m in METHODS:
        C = np.stack(curves[m])  # (segments, taus)
        best = C.max(axis=1)
        mean_curve = C.mean(axis=0)
        k = int(np.argmax(mean_curve))
        i_def = i_new if m == "default" else i_old
        row = {
            "best_tau_iou": float(best.mean()),
            "iou_at_default": float(C[:, i_def].mean()),
            "default_tau": float(taus[i_def]),
            "tuned_tau": float(taus[k]),
            "iou_at_tuned": float(mean_curve[k]),
            "median_best_tau": float(np.median(taus[C.argmax(axis=1)])),
        }
        if m != "luminance":
            row["win_vs_luminance"] = float((best > lum_best + 1e-9).mean())
            row["tie_vs_luminance"] = float((np.abs(best - lum_best) <= 1e-9).mean())
        res["rows"][m] = row
    img_ids = np.array(image_of)
    per = {}
    for m in (*CUES, "old-default", "default"):
        C = np.stack(curves[m])
        i_def = i_new if m == "default" else i_old
        per[m] = (C.max(axis=1), C[:, i_def])
    for m in (*CUES, "old-default"):
        w = {}
        for j, what in enumerate(("best", "at_default")):
            a, b = per["default"][j], per[m][j]
            w[f"seg_{what}"] = (int((a > b + 1e-9).sum()), int((a < b - 1e-9).sum()))
            ia = np.array([a[img_ids == i].mean() for i in np.unique(img_ids)])
            ib = np.array([b[img_ids == i].mean() for i in np.unique(img_ids)])
            w[f"img_{what}"] = (int((ia > ib + 1e-9).sum()), int((ia < ib - 1e-9).sum()))
        res["wins"][m] = w
    res["n_eval_images"] = int(len(np.unique(img_ids)))
    return res


FIG_METHODS = ("luminance", "lab", "semantic", "combined")


def _figure_row(img, seg, pt, maps, taus) -> np.ndarray:
    """One row of the figure: image + point, human segment, best-tau mask of each method."""
    H = seg.shape[0]
    x, y = pt
    a = img.copy()
    a[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4] = (1, 0, 0)
    tiles = [a, np.repeat(seg[..., None].astype(np.float32), 3, -1)]
    for m in FIG_METHODS:
        c = iou_curve(maps[m], seg, taus)
        k = int(np.argmax(c))
        mk = (maps[m] < taus[k]).astype(np.float32)
        t = np.repeat(mk[..., None], 3, -1) * 0.8 + 0.2 * img
        t[seg & (mk == 0)] = (0.9, 0.2, 0.2)  # missed
        tiles.append(_label(t, f"{m} {c[k]:.2f}"))
    gap = np.ones((H, 4, 3), np.float32)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [gap, t]
    return np.concatenate(row, axis=1)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray((np.clip(tile, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 7 * len(text) + 6, 14], fill=(0, 0, 0))
    d.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(im, dtype=np.float32) / 255


def save_figure(rows: list[np.ndarray], path: str) -> None:
    from sempix.image import write_image

    W = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, W - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    write_image(path, np.concatenate(rows, axis=0))


def print_table(res: dict) -> None:
    print(
        f"\nBSDS500 {res['split']}: {res['images']} images, {res['segments']} segments "
        f"(largest segments of the first annotation), semantic backend {res['backend']}, "
        f"{res['seconds']:.0f} s ({res['feature_seconds']:.0f} s features), "
        f"os.cpu_count()={res['cpu_count']}"
    )
    print(
        f"lam = {DEFAULT_LAM} for combined; default tau {OLD_TAU} (old), "
        f"{res['default_tau']} (default row)\n"
    )
    print(
        "| method | mean best-tau IoU | win rate vs luminance (ties) | IoU at default tau "
        "| tuned tau | IoU at tuned tau |"
    )
    print("|---|---|---|---|---|---|")
    for m, r in res["rows"].items():
        win = (
            "-"
            if m == "luminance"
            else f"{100 * r['win_vs_luminance']:.0f}% ({100 * r['tie_vs_luminance']:.0f}%)"
        )
        print(
            f"| {m} | {r['best_tau_iou']:.3f} | {win} | {r['iou_at_default']:.3f} "
            f"(tau {r['default_tau']:.2f}) | "
            f"{r['tuned_tau']:.3f} | {r['iou_at_tuned']:.3f} |"
        )
    nseg, nimg = res["segments"], res["n_eval_images"]
    print(
        f"\ndefault vs each row: wins / losses (rest ties) over {nseg} segments and "
        f"{nimg} images (image = mean over its segments)\n"
    )
    print(
        "| default vs | segments, best tau | images, best tau | segments, default tau "
        "| images, default tau |"
    )
    print("|---|---|---|---|---|")
    for m, w in res["wins"].items():
        cells = " | ".join(
            f"{w[k][0]} / {w[k][1]}"
            for k in ("seg_best", "img_best", "seg_at_default", "img_at_default")
        )
        print(f"| {m} | {cells} |")
    if res["best_lams"]:
        vals, counts = np.unique(res["best_lams"], return_counts=True)
        print(
            "\nbest lam per segment (combined-best-lam): "
            + ", ".join(f"{v:.1f}: {c}" for v, c in zip(vals, counts))
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val", choices=["val", "train", "test"])
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--segments", type=int, default=4, help="largest segments per image")
    ap.add_argument(
        "--min-frac", type=float, default=0.02, help="ignore segments smaller than this"
    )
    ap.add_argument("--backend", default="ade20k", choices=["ade20k", "segformer", "lowlevel"])
    ap.add_argument(
        "--figure",
        default=None,
        help="write a picture of the first segments' masks "
        "(columns: image + click, human segment, best-tau mask per method; red = missed)",
    )
    ap.add_argument("--figure-rows", type=int, default=6)
    args = ap.parse_args(argv)
    res = evaluate(
        args.split,
        args.limit,
        args.segments,
        args.backend,
        args.min_frac,
        figure_rows=args.figure_rows if args.figure else 0,
    )
    print_table(res)
    if args.figure and res["figure"]:
        save_figure(res["figure"], args.figure)
        print(f"\nfigure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
