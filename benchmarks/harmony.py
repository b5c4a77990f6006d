"""Colour-harmony benchmark: Kodak24, BSDS500 and the recolour collections (``$SEMPIX_DATA_DIR``).

For every image: harmony metrics (best Cohen-Or template; F per pixel, PIT %, MITS) of the input
and of each method (rows below), per-image wins against the input (MITS higher; PIT higher, or
already 100 % and kept), the palette colours that keep their basic colour name, how far neutral
pixels drift (input pixels with CIE C* < 5: mean |delta C*|, and the share whose C* grows by more
than 3), and the time per image of the default.

Rows (``--rows all``; ``--rows core`` = the first three):

* ``input``
* ``default``: ``harmonize_image(img)`` (names, names kept, neutral-safe, template fit, guard)
* ``before issue 19``: the same with ``fit_template=False`` (palette recolouring only, guard)
* ``guard off, no fit``: ``fit_template=False, guard="off"`` (before issue 21)
* ``C-Harmony``: ``method="cohen-or"``
* ``published, no fit``: the paper's plain rule (names may change, no neutral-safe rules,
  guard off, ``fit_template=False``)
* ``default, N per name`` (``--per-name N,M``): the default with N prototypes per colour name
  (``prototypes_per_name``; the default is 10)

Datasets (``--datasets``, comma separated): ``kodak24`` (24 crops of 500x500), ``bsds-val``
(BSDS500 val, 481x321), ``bsds-train``, ``groups`` (collection01 + brochure sets + brochure
pages, resized to ``--size`` on the long side). Timing: warm, prototypes cached, CPU and wall
seconds per image, and as a ratio to an anchor measured in the same run (``np.sort`` of 2^20
float64, timed between the images), so runs at different machine loads compare.

Run (serialised with the other benchmarks)::

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        nice -n 10 .venv/bin/python benchmarks/harmony.py --datasets kodak24,bsds-val,groups \\
        [--rows core] [--limit N] [--out DIR] [--big] [--per-image]

``--big`` also times one 12-megapixel harmonization (a Kodak image tiled to 4000 x 3000).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = {
    "kodak24": ("kodak24", "*.png"),
    "bsds-val": ("bsds500/images/val", "*.jpg"),
    "bsds-train": ("bsds500/images/train", "*.jpg"),
    "groups": ("groups", "**/*"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ROWS_CORE = ("default", "before issue 19")
ROWS_ALL = ROWS_CORE + ("guard off, no fit", "C-Harmony", "published, no fit")
NEUTRAL_C = 5.0  # input pixels with CIE C* below this are "neutral"
TINT_DC = 3.0  # a neutral pixel whose C* grows by more than this got a visible tint


def _files(data: Path, name: str, limit: int | None) -> list[Path]:
    sub, pattern = DATASETS[name]
    files = sorted(
        p for p in (data / sub).glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    return files[:limit] if limit else files


def _load(path: Path, size: int) -> np.ndarray:
    from sempix.image import load_rgb
    from sempix.ops.resample import resize

    img = load_rgb(path)
    h, w = img.shape[:2]
    if max(h, w) > size:
        s = size / max(h, w)
        img = np.clip(resize(img, (max(1, round(h * s)), max(1, round(w * s)))), 0.0, 1.0)
    return np.ascontiguousarray(img, dtype=np.float32)


def _anchor() -> float:
    """CPU seconds of a fixed numpy workload (the timing anchor)."""
    x = np.random.default_rng(0).random(1 << 20)
    t = time.process_time()
    np.sort(x)
    return time.process_time() - t


def _run(name: str, img: np.ndarray, pal):
    from sempix.palette import harmonize_image

    if name == "default":
        return harmonize_image(img, palette=pal)
    if name == "before issue 19":
        return harmonize_image(img, palette=pal, fit_template=False)
    if name == "guard off, no fit":
        return harmonize_image(img, palette=pal, fit_template=False, guard="off")
    if name.startswith("default, ") and name.endswith(" per name"):  # --per-name rows
        n = int(name.split()[1])
        return harmonize_image(img, palette=pal, prototypes_per_name=n)
    if name == "C-Harmony":
        return harmonize_image(img, method="cohen-or", palette=pal, guard="off")
    if name == "published, no fit":
        return harmonize_image(
            img, palette=pal, keep_names=False, neutral_safe=False, guard="off",
            fit_template=False,
        )
    raise ValueError(name)


def _chroma(img: np.ndarray) -> np.ndarray:
    from sempix.color import srgb_to_lab

    lab = srgb_to_lab(img.reshape(-1, 3))
    return np.hypot(lab[:, 1], lab[:, 2])


def bench_dataset(name, files, rows, size, out_dir, per_image):
    from sempix.image import write_image
    from sempix.palette import harmonize_image, harmony_metrics

    recs = []
    for f in files:
        img = _load(f, size)
        s_in = harmony_metrics(img)
        c_in = _chroma(img)
        neutral = c_in < NEUTRAL_C
        a0 = _anchor()
        t, c = time.perf_counter(), time.process_time()
        res = harmonize_image(img)  # the default, timed end to end (palette extraction included)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        c = time.process_time()
        harmonize_image(img, fit_template=False)  # before issue 19, end to end, same conditions
        cpu_before = time.process_time() - c
        a1 = _anchor()
        pal = res.source
        rec = {"image": f.stem, "shape": img.shape[:2], "in": s_in, "wall": wall, "cpu": cpu,
               "cpu_before": cpu_before,
               "anchor": 0.5 * (a0 + a1), "k": len(pal), "rows": {}}
        for row in rows:
            c0 = time.process_time()
            r = res if row == "default" else _run(row, img, pal)
            row_cpu = cpu if row == "default" else time.process_time() - c0
            s = harmony_metrics(r.image)
            s8 = harmony_metrics(np.rint(r.image * 255.0) / 255.0) if row == "default" else None
            dc = _chroma(r.image)[neutral] - c_in[neutral]
            rec["rows"][row] = {
                "s": s,
                "s8": s8,
                "kept": r.names_kept if r.method == "names" else float("nan"),
                "drift": float(np.abs(dc).mean()) if neutral.any() else 0.0,
                "tinted": float((dc > TINT_DC).mean()) if neutral.any() else 0.0,
                "guard": (r.info.get("guard") or {}).get("action", "off"),
                "moved": (r.info.get("template_fit") or {}).get("moved", 0.0),
                "cpu": row_cpu,
            }
        recs.append(rec)
        if out_dir:
            write_image(out_dir / f"{name}_{f.stem}_default.png", res.image)
        if per_image:
            d = rec["rows"]["default"]["s"]
            b = rec["rows"].get("before issue 19", {}).get("s")
            print(
                f"{name}/{f.stem}: k={len(pal)} input PIT {s_in.pit:.2f} MITS {s_in.mits:.3f} F "
                f"{s_in.f_score:.4f} | default PIT {d.pit:.2f} MITS {d.mits:.3f} F {d.f_score:.4f}"
                + (f" | before PIT {b.pit:.2f} MITS {b.mits:.3f}" if b else "")
                + f" | {cpu:.3f} s CPU",
                file=sys.stderr,
            )
    return recs


def _wins(recs, row, attr="s"):
    mits = pit = both = strict = 0
    for r in recs:
        s, s0 = r["rows"][row][attr], r["in"]
        m = s.mits > s0.mits
        p = s.pit > s0.pit or (s0.pit >= 100.0 and s.pit >= 100.0)
        mits += m
        pit += p
        strict += s.pit > s0.pit
        both += m and p
    return mits, pit, strict, both


def report(name, recs, rows):
    n = len(recs)
    full = [r for r in recs if r["in"].pit >= 100.0]
    shape = recs[0]["shape"]
    print(
        f"\n### {name}: {n} images (first {shape[1]}x{shape[0]}); "
        f"{len(full)} already at PIT 100 %\n"
    )
    print(
        "| method | F per pixel | PIT % | MITS | MITS wins | PIT wins (higher, or 100 % kept) | "
        "PIT strictly higher | both | names kept | neutral drift mean abs dC* | neutral px tinted "
        "(dC* > 3) | guard acted |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ins = [r["in"] for r in recs]
    print(
        f"| input | {np.mean([s.f_score for s in ins]):.4f} | "
        f"{np.mean([s.pit for s in ins]):.2f} | {np.mean([s.mits for s in ins]):.4f} "
        "| - | - | - | - | - | - | - | - |"
    )
    for row in rows:
        ss = [r["rows"][row]["s"] for r in recs]
        m, p, st, b = _wins(recs, row)
        kept = [r["rows"][row]["kept"] for r in recs]
        kept_s = "-" if np.isnan(kept).all() else f"{100 * np.nanmean(kept):.1f} %"
        g = sum(r["rows"][row]["guard"] not in ("none", "off") for r in recs)
        print(
            f"| {row} | {np.mean([s.f_score for s in ss]):.4f} | "
            f"{np.mean([s.pit for s in ss]):.2f} | {np.mean([s.mits for s in ss]):.4f} | "
            f"{m}/{n} | {p}/{n} | {st}/{n} | {b}/{n} | "
            f"{kept_s} | {np.mean([r['rows'][row]['drift'] for r in recs]):.3f} | "
            f"{100 * np.mean([r['rows'][row]['tinted'] for r in recs]):.2f} % | {g}/{n} |"
        )
    s8 = [r["rows"]["default"]["s8"] for r in recs]
    m, p, st, b = _wins(recs, "default", "s8")
    print(
        f"| default, read back as 8-bit | {np.mean([s.f_score for s in s8]):.4f} | "
        f"{np.mean([s.pit for s in s8]):.2f} | {np.mean([s.mits for s in s8]):.4f} | {m}/{n} | "
        f"{p}/{n} | {st}/{n} | {b}/{n} | | | | |"
    )
    cpu = np.array([r["cpu"] for r in recs])
    wall = np.array([r["wall"] for r in recs])
    anc = np.array([r["anchor"] for r in recs])
    px = np.array([r["shape"][0] * r["shape"][1] for r in recs], dtype=float)
    at500 = cpu * (500 * 500) / px
    print(
        f"\ndefault time per image: CPU mean {cpu.mean():.3f} s (median "
        f"{statistics.median(cpu):.3f}), wall mean {wall.mean():.3f} s; scaled to 500x500: CPU "
        f"{at500.mean():.3f} s; anchor (np.sort 2^20) {anc.mean() * 1000:.1f} ms CPU, default = "
        f"{np.mean(cpu / anc):.1f} x anchor; template fit moved "
        f"{100 * np.mean([r['rows']['default']['moved'] for r in recs]):.2f} % of the pixels"
    )
    print("\n| method | CPU s / image (mean) | x anchor | x default |\n|---|---|---|---|")
    for row in rows:
        rc = np.array([r["rows"][row]["cpu"] for r in recs])
        print(
            f"| {row} | {rc.mean():.3f} | {np.mean(rc / anc):.1f} | {rc.mean() / cpu.mean():.2f} |"
        )
    print("(rows other than the default reuse its palette: no palette extraction in their time)")
    cb = np.array([r["cpu_before"] for r in recs])
    print(
        f"end to end, palette extraction included: default {cpu.mean():.3f} s "
        f"({np.mean(cpu / anc):.1f} x anchor), before issue 19 (fit_template=False) "
        f"{cb.mean():.3f} s ({np.mean(cb / anc):.1f} x anchor); default / before = "
        f"{cpu.mean() / cb.mean():.2f}"
    )
    return {
        "n": n,
        "cpu": float(cpu.mean()),
        "ratio": float(np.mean(cpu / anc)),
        "at500": float(at500.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="default $SEMPIX_DATA_DIR")
    ap.add_argument("--datasets", default="kodak24", help=f"comma list of {', '.join(DATASETS)}")
    ap.add_argument("--rows", choices=("core", "all"), default="all")
    ap.add_argument("--size", type=int, default=500, help="long side for larger images")
    ap.add_argument("--out", type=Path, default=None, help="write the default outputs here")
    ap.add_argument("--limit", type=int, default=None, help="first N images per dataset")
    ap.add_argument("--per-image", action="store_true", help="one line per image on stderr")
    ap.add_argument("--big", action="store_true", help="also time a 12-megapixel harmonization")
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    ap.add_argument("--per-name", default="", help="also the default with N prototypes per name "
                    "(comma list)")
    args = ap.parse_args(argv)
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
    from sempix.palette import harmonize_image, harmony_metrics
    from sempix.palette.prototypes import get_prototypes

    data = args.data or Path(os.environ.get("SEMPIX_DATA_DIR", ""))
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for d in names:
        if d not in DATASETS:
            print(f"unknown dataset {d!r}: use {', '.join(DATASETS)}", file=sys.stderr)
            return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    rows = ROWS_CORE if args.rows == "core" else ROWS_ALL
    rows = rows + tuple(
        f"default, {int(n)} per name" for n in args.per_name.split(",") if n.strip()
    )
    get_prototypes()  # load (or build) the prototype cache outside the timings
    warm = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    for r in rows:
        _run(r, warm, None)
    harmonize_image(warm)
    harmony_metrics(warm)
    import numba

    print(
        f"os.cpu_count() = {os.cpu_count()}, numba threads = {numba.get_num_threads()}, "
        f"load average at the start {os.getloadavg()[0]:.1f}"
    )
    summary = {}
    for d in names:
        files = _files(data, d, args.limit)
        if not files:
            print(f"no images for {d} under {data} (set SEMPIX_DATA_DIR)", file=sys.stderr)
            return 2
        recs = bench_dataset(d, files, rows, args.size, args.out, args.per_image)
        summary[d] = report(d, recs, rows)
        print(f"load average after {d}: {os.getloadavg()[0]:.1f}")

    if args.big:
        from sempix.image import load_rgb

        img = load_rgb(_files(data, "kodak24", 1)[0])
        big = np.tile(
            img, (int(np.ceil(3000 / img.shape[0])), int(np.ceil(4000 / img.shape[1])), 1)
        )[:3000, :4000]
        big = np.ascontiguousarray(big)
        t = time.perf_counter()
        harmonize_image(big)
        print(f"12 MP ({big.shape[1]}x{big.shape[0]}): harmonize {time.perf_counter() - t:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
