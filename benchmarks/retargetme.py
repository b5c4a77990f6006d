"""RetargetMe comparison: Semantic Score of 8 published operators vs sempix dnr / semantic-seam /
seam.

Usage::

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        flock /tmp/sempix-bench.lock .venv/bin/python benchmarks/retargetme.py [--limit N] [--sets
        001,002]
        [--methods dnr,semantic-seam,seam] [--iterations 50] [--init multiop] [--lr 0.05]
        [--lambdas 1,1,1] [--lambda-norm energy] [--jpeg 85] [--jpeg-also 85] [--calibrate]
        [--variant NAME:key=value,key=value ...] [--sets-every 5:2] [--out DIR] [--no-ade20k]
        [--threads 1]

Each set ``$SEMPIX_DATA_DIR/retargetme/NNN/`` holds ``src.jpg`` and ``1.jpg .. 8.jpg``, the results
of
the operators named in ``operators.tsv`` (in the set or in the ``retargetme`` folder:
``file<TAB>operator``,
optionally a ``ratio`` row or column). The target size is the size of the published results (the
ratio
column when given). sempix's outputs are scored as written (PNG), or after a JPEG round trip at
quality
``--jpeg`` (the published results are JPEG files). ``--calibrate`` adds, per published operator, a
row ``OP+q85``: its JPEG decoded and re-encoded at quality 85 (the effect of a second compression
on an output that already is a q85 JPEG). ``--variant NAME:key=value,...`` adds a ``sempix-NAME``
row: dnr (or ``method=...``) with those keyword arguments of ``retarget`` (``init=multiop``), so a
changed setting and the defaults are scored in one run. ``--sets-every N:K`` keeps every N-th set
from the K-th, 0-based (``5:2`` = the development subset of issue 19), ``N:-K`` all the others.
Besides the means it prints, per sempix row, on how many sets it scores above each published
operator (pairwise wins) and its margin over the best published mean.

Semantic Score ``SS = ||F(O)|| / ||F(I)||`` (Arar et al.) is reported with two feature maps:
``SS-VGG`` = the deepest VGG-19 layer the weights hold (relu3_1 with the normalised network here;
the paper
uses block5_conv1) and ``SS-ADE`` = the ADE20K semantic pixel features of sempix
(``compute_features(img, "ade20k").features``: the 256-d decoder features, seeded random projection
to 64-d).
Prints a table like the paper's Table 1 (mean, std, and how often each operator is the best),
per-set
scores, and run times, with ``os.cpu_count()`` and the load average.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sempix.image import load_rgb, write_image


def read_operators(root: Path, set_dir: Path) -> tuple[dict[str, str], float | None]:
    """{file: operator name} and an optional ratio from
    operators.tsv (set folder first, then root)."""
    for p in (set_dir / "operators.tsv", root / "operators.tsv"):
        if p.is_file():
            ops, ratio = {}, None
            with open(p, newline="") as fh:
                rows = list(csv.reader(fh, delimiter="\t"))
            header = [h.strip().lower() for h in rows[0]] if rows else []
            for row in rows[1:]:
                if not row or not row[0].strip():
                    continue
                rec = dict(zip(header, [c.strip() for c in row]))
                if rec.get("file", "").lower() == "ratio":
                    ratio = float(rec.get("operator", "nan"))
                    continue
                if rec.get("ratio"):
                    ratio = float(rec["ratio"])
                ops[rec.get("file", row[0])] = rec.get("operator", row[-1])
            return ops, ratio
    return {f"{i}.jpg": f"op{i}" for i in range(1, 9)}, None


def short(name: str) -> str:
    return name.split(" ")[0]


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    from sempix.image import to_uint8

    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255.0


def select_every(items: list, spec: str) -> list:
    """``N:K`` -> every N-th item from the K-th (0-based); ``N:-K`` -> all the other items."""
    n_txt, _, k_txt = spec.partition(":")
    others = k_txt.strip().startswith("-")
    pick = set(range(int(k_txt.strip().lstrip("-")), len(items), int(n_txt)))
    return [it for i, it in enumerate(items) if (i in pick) != others]


def _best(row: dict[str, float]) -> str:
    """The highest-scoring row, calibration rows (``OP+q85``) excluded."""
    return max((nm for nm in row if not nm.endswith("+q85")), key=row.get)


def _value(v: str):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(v.lower(), v)


def parse_variant(spec: str) -> tuple[str, dict]:
    """``NAME:key=value,key=value`` -> (NAME, kwargs); ``lambdas=1/1/1`` gives a list."""
    name, _, rest = spec.partition(":")
    kw: dict = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        kw[k.strip().replace("-", "_")] = (
            [float(x) for x in v.split("/")] if "/" in v else _value(v.strip())
        )
    kw.setdefault("method", "dnr")
    return name, kw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N sets")
    ap.add_argument("--sets", default=None, help="comma-separated set ids")
    ap.add_argument("--methods", default="dnr,semantic-seam,seam")
    ap.add_argument(
        "--iterations", type=int, default=None, help="dnr iterations (default: the library's)"
    )
    ap.add_argument("--refine-iterations", type=int, default=None)
    ap.add_argument("--init", default=None, help="dnr init (scale|seam|multiop)")
    ap.add_argument(
        "--lr", type=float, default=None, help="dnr Adam learning rate (default: the library's)"
    )
    ap.add_argument("--lambdas", default=None, help="dnr lambdas per resolved layer, e.g. 1,1,1")
    ap.add_argument("--lambda-norm", default=None, help="dnr lambda normalisation (none|energy)")
    ap.add_argument(
        "--percentile",
        type=float,
        default=None,
        help="deep seam percentile (default: the library's)",
    )
    ap.add_argument(
        "--alpha", type=float, default=None, help="Eq. 2 alpha (default: the library's)"
    )
    ap.add_argument(
        "--protect",
        default=None,
        help="semantic protection (auto|none|classes; default: the library's)",
    )
    ap.add_argument(
        "--jpeg", type=int, default=0, help="score sempix outputs after a JPEG round trip (quality)"
    )
    ap.add_argument(
        "--jpeg-also",
        type=int,
        default=0,
        help="also score sempix outputs after a JPEG round trip at this quality, as extra rows "
        "(the published results are JPEG quality 85: their quantisation tables are IJG q85)",
    )
    ap.add_argument(
        "--calibrate",
        action="store_true",
        help="also score every published result after one more JPEG q85 round trip (rows OP+q85)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:key=value,... an extra sempix row (dnr unless method=...) with these retarget "
        "keyword arguments; repeatable",
    )
    ap.add_argument(
        "--sets-every",
        default=None,
        help="N:K = every N-th set starting at the K-th (0-based); N:-K = all the others",
    )
    ap.add_argument("--reductions-only", action="store_true", help="skip the enlargement sets")
    ap.add_argument("--no-ade20k", action="store_true", help="only the VGG Semantic Score")
    ap.add_argument("--out", default=None, help="folder for sempix's outputs (PNG)")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads (default 0: all cores)"
    )
    args = ap.parse_args(argv)

    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data or not (Path(data) / "retargetme").is_dir():
        print("SEMPIX_DATA_DIR/retargetme not found; set SEMPIX_DATA_DIR", file=sys.stderr)
        return 2
    import torch

    from sempix._runtime import init_torch_threads
    from sempix.retarget import get_vgg, retarget
    from sempix.retarget.score import ade20k_norm, vgg_layer_name, vgg_norm

    init_torch_threads()  # once per process: the library will not change the count below again
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    root = Path(data) / "retargetme"
    sets = sorted(p for p in root.iterdir() if p.is_dir() and (p / "src.jpg").is_file())
    if args.sets:
        want = set(args.sets.split(","))
        sets = [s for s in sets if s.name in want]
    if args.sets_every:
        sets = select_every(sets, args.sets_every)
    methods = [m for m in args.methods.split(",") if m]
    variants = dict(parse_variant(v) for v in args.variant)
    methods += list(variants)
    net = get_vgg()
    layer = vgg_layer_name(net)
    kinds = ["vgg"] + ([] if args.no_ade20k else ["ade20k"])
    out_dir = Path(args.out) if args.out else None
    kw = {}
    if args.iterations is not None:
        kw["iterations"] = args.iterations
    if args.refine_iterations is not None:
        kw["refine_iterations"] = args.refine_iterations
    if args.init:
        kw["init"] = args.init
    if args.lr is not None:
        kw["lr"] = args.lr
    if args.lambdas:
        kw["lambdas"] = [float(v) for v in args.lambdas.split(",")]
    if args.lambda_norm:
        kw["lambda_norm"] = args.lambda_norm
    if args.percentile is not None:
        kw["percentile"] = args.percentile
    if args.alpha is not None:
        kw["alpha"] = args.alpha
    if args.protect is not None:
        kw["protect"] = args.protect

    scores: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    times: dict[str, list[float]] = {m: [] for m in methods}
    per_set: list[tuple[str, str, dict[str, dict[str, float]]]] = []
    op_order: list[str] = []
    done = 0
    for sd in sets:
        if args.limit is not None and done >= args.limit:
            break
        ops, ratio = read_operators(root, sd)
        src = load_rgb(sd / "src.jpg")
        H, W = src.shape[:2]
        first = next((sd / f for f in ops if (sd / f).is_file()), None)
        if first is None:
            continue
        ref = load_rgb(first)
        th, tw = ref.shape[:2]
        if ratio is not None:  # explicit ratio: applies to the changed dimension
            if th == H:
                tw = round(ratio * W)
            else:
                th = round(ratio * H)
        if args.reductions_only and (tw > W or th > H):
            continue
        done += 1
        outs: dict[str, np.ndarray] = {}
        for f, name in ops.items():
            p = sd / f
            if p.is_file():
                outs[short(name)] = load_rgb(p)
                if short(name) not in op_order:
                    op_order.append(short(name))
                if args.calibrate:
                    outs[short(name) + "+q85"] = jpeg_roundtrip(outs[short(name)], 85)
        for m in methods:
            t = time.perf_counter()
            mkw = {**kw, **variants[m]} if m in variants else {**kw, "method": m}
            res = retarget(src, tw, th, **mkw)
            times[m].append(time.perf_counter() - t)
            img = res.image
            if out_dir is not None:
                write_image(out_dir / sd.name / f"sempix-{m}.png", img)
            outs[f"sempix-{m}"] = jpeg_roundtrip(img, args.jpeg) if args.jpeg else img
            if args.jpeg_also:
                outs[f"sempix-{m}-q{args.jpeg_also}"] = jpeg_roundtrip(img, args.jpeg_also)
        row: dict[str, dict[str, float]] = {}
        for k in kinds:
            den = vgg_norm(src, net, layer) if k == "vgg" else ade20k_norm(src)
            row[k] = {}
            for name, img in outs.items():
                num = vgg_norm(img, net, layer) if k == "vgg" else ade20k_norm(img)
                row[k][name] = num / den
                scores[k].setdefault(name, []).append(num / den)
        per_set.append((sd.name, f"{W}x{H}->{tw}x{th}", row))
        best = {k: _best(row[k]) for k in kinds}
        print(
            f"{sd.name} {W}x{H}->{tw}x{th} "
            + " ".join(f"{k}:best={best[k]}" for k in kinds)
            + " "
            + " ".join(f"{m}={times[m][-1]:.1f}s" for m in methods),
            flush=True,
        )

    names = op_order + [f"sempix-{m}" for m in methods]
    if args.calibrate:
        names += [f"{op}+q85" for op in op_order]
    if args.jpeg_also:
        names += [f"sempix-{m}-q{args.jpeg_also}" for m in methods]
    n = len(per_set)
    print()
    print(
        f"RetargetMe, {n} sets; os.cpu_count()={os.cpu_count()}, torch "
        f"threads={torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f}; VGG weights {net.fmt} (SS-VGG layer {layer}); "
        f"sempix outputs scored {f'after JPEG q{args.jpeg}' if args.jpeg else 'as written (PNG)'}; "
        f"dnr settings {kw or 'library defaults'}"
    )
    labels = {"vgg": f"SS-VGG ({layer})", "ade20k": "SS-ADE (ADE20K features)"}
    header = "| operator | " + " | ".join(f"{labels[k]} mean ± std | best in" for k in kinds) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(kinds)))
    wins = {k: {nm: 0 for nm in names} for k in kinds}
    for _, _, row in per_set:
        for k in kinds:
            wins[k][_best(row[k])] += 1
    for nm in names:
        cells = []
        for k in kinds:
            v = np.array(scores[k].get(nm, []))
            cells.append(f"{v.mean():.4f} ± {v.std():.4f}" if v.size else "-")
            cells.append(f"{wins[k][nm]}/{n}")
        print(f"| {nm} | " + " | ".join(cells) + " |")
    print()
    for k in kinds:
        pub = [nm for nm in op_order if scores[k].get(nm)]
        best_pub = max(pub, key=lambda nm: np.mean(scores[k][nm])) if pub else None
        for m in [nm[len("sempix-") :] for nm in names if nm.startswith("sempix-")]:
            ours = np.mean(scores[k].get(f"sempix-{m}", [np.nan]))
            if best_pub:
                bp = np.mean(scores[k][best_pub])
                verdict = "MEETS" if ours >= bp else "MISSES"
                print(
                    f"{labels[k]}: sempix-{m} {ours:.4f} vs best published {best_pub} {bp:.4f} -> "
                    f"{verdict} "
                    f"(beats {sum(ours >= np.mean(scores[k][p]) for p in pub)}/{len(pub)} "
                    "operators)"
                )
    ours_rows = [nm for nm in names if nm.startswith("sempix-")]
    for k in kinds:
        pub = [nm for nm in op_order if scores[k].get(nm)]
        if not pub or not ours_rows:
            continue
        best_pub = max(pub, key=lambda nm: np.mean(scores[k][nm]))
        print()
        print(f"Pairwise wins per set, {labels[k]} (sets where the sempix row scores above the "
              f"operator, of {n}), and margin over the best published mean ({best_pub}):")
        print("| sempix row | " + " | ".join(pub) + " | all 8 | margin |")
        print("|" + "---|" * (3 + len(pub)))
        for nm in ours_rows:
            mine = np.array(scores[k][nm])
            # per set, only the operators that set has (enlargements lack some results)
            cells = [
                str(sum(p in row[k] and row[k][nm] > row[k][p] for _, _, row in per_set))
                for p in pub
            ]
            above_all = int(
                sum(
                    all(row[k][nm] > row[k][p] for p in pub if p in row[k])
                    for _, _, row in per_set
                )
            )
            margin = mine.mean() - np.mean(scores[k][best_pub])
            print(f"| {nm} | " + " | ".join(cells) + f" | {above_all} | {margin:+.4f} |")
        cal = [
            (nm, np.mean(np.array(scores[k][nm]) - np.array(scores[k][nm[: -len("+q85")]])))
            for nm in names
            if nm.endswith("+q85") and scores[k].get(nm)
        ]
        if args.jpeg_also:
            suf = f"-q{args.jpeg_also}"
            cal += [
                (nm, np.mean(np.array(scores[k][nm]) - np.array(scores[k][nm[: -len(suf)]])))
                for nm in names
                if nm.endswith(suf) and scores[k].get(nm)
            ]
        if cal:
            print(
                f"Calibration, {labels[k]}: mean change of the score by one more JPEG round trip: "
                + ", ".join(f"{nm} {d:+.4f}" for nm, d in cal)
            )
    for k in kinds:
        print()
        print(f"Per set, {labels[k]}:")
        print("| set | size | " + " | ".join(names) + " |")
        print("|" + "---|" * (2 + len(names)))
        for sid, size, row in per_set:
            best_nm = _best(row[k])
            cells = [
                (f"**{row[k][nm]:.4f}**" if nm == best_nm else f"{row[k][nm]:.4f}")
                if nm in row[k]
                else "-"
                for nm in names
            ]
            print(f"| {sid} | {size} | " + " | ".join(cells) + " |")
    print()
    print("| method | mean s | median s | max s | per megapixel s |")
    print("|---|---|---|---|---|")
    for m in methods:
        t = np.array(times[m])
        if t.size:
            mp = np.array(
                [
                    int(s.split("->")[0].split("x")[0]) * int(s.split("->")[0].split("x")[1]) / 1e6
                    for _, s, _ in per_set
                ]
            )
            print(
                f"| {m} | {t.mean():.1f} | {np.median(t):.1f} | {t.max():.1f} | "
                f"{np.mean(t / mp):.1f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
