"""Colour-harmony benchmark on Kodak (``$SEMPIX_DATA_DIR/kodak24``).

For every image: harmony metrics (best Cohen-Or template; F per pixel, PIT %, MITS) of the input,
of the C-Harmony baseline (``method="cohen-or"``) and of sempix's name-based harmonization
(``method="names"``, palette names kept; the same without the neutral-safe rules,
``neutral_safe=False``; and the plain nearest-prototype rule for the name-change
rate), the warm wall time per image of each method, and whether the palette colours keep their
basic colour names.

Run (serialised with the other benchmarks)::

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        flock /tmp/sempix-bench.lock .venv/bin/python benchmarks/harmony.py [--out DIR] [--big]

``--big`` also times one 12-megapixel recolouring (a Kodak image tiled to 4000 x 3000).
Prototype generation is excluded from the timings (it is cached on disk; the first call loads it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=None, help="kodak24 folder (default $SEMPIX_DATA_DIR/kodak24)"
    )
    ap.add_argument("--out", type=Path, default=None, help="write outputs and previews here")
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    ap.add_argument("--big", action="store_true", help="also time a 12-megapixel recolouring")
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    args = ap.parse_args(argv)
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)

    from sempix.image import load_rgb, write_image
    from sempix.palette import extract_palette, harmonize_image, harmony_metrics
    from sempix.palette.prototypes import get_prototypes

    data = args.data or (Path(os.environ.get("SEMPIX_DATA_DIR", "")) / "kodak24")
    files = sorted(data.glob("*.png"))[: args.limit]
    if not files:
        print(f"no images in {data} (set SEMPIX_DATA_DIR)", file=sys.stderr)
        return 2
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)

    get_prototypes()  # load (or build) the prototype cache outside the timings
    warm = load_rgb(files[0])
    harmonize_image(warm)
    harmonize_image(warm, method="cohen-or")
    harmony_metrics(warm)

    rows = []
    for f in files:
        img = load_rgb(f)
        s_in = harmony_metrics(img)
        t, c = time.perf_counter(), time.process_time()
        co = harmonize_image(img, method="cohen-or")
        t_co, c_co = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        res = harmonize_image(img, method="names")
        t_names, c_names = time.perf_counter() - t, time.process_time() - c
        off = {"palette": res.source, "guard": "off"}
        plain = harmonize_image(img, method="names", keep_names=False, neutral_safe=False, **off)
        # the method as published, without the neutral-safe rules (colour casts on neutrals)
        raw = harmonize_image(img, method="names", neutral_safe=False, **off)
        # without the harmony guard (before issue 21): the result even where worse than the input
        t, c = time.perf_counter(), time.process_time()
        unguarded = harmonize_image(img, method="names", guard="off")
        t_ung, c_ung = time.perf_counter() - t, time.process_time() - c
        s_ung = harmony_metrics(unguarded.image)
        s_raw = harmony_metrics(raw.image)
        s_co = harmony_metrics(co.image)
        s_names = harmony_metrics(res.image)
        s_plain = harmony_metrics(plain.image)
        # names of the palette colours as they come out in the 8-bit result image
        out8 = np.rint(res.image * 255) / 255
        re_pal_names = extract_palette(out8, k=len(res.source)).names()
        rows.append(
            {
                "image": f.stem,
                "k": len(res.source),
                "s_in": s_in,
                "s_co": s_co,
                "s_names": s_names,
                "s_plain": s_plain,
                "s_raw": s_raw,
                "kept_raw": raw.names_kept,
                "s_ung": s_ung,
                "t_ung": t_ung,
                "c_ung": c_ung,
                "guard": res.info.get("guard", {}).get("action", "off"),
                "guard_strength": res.info.get("guard", {}).get("strength", 1.0),
                "t_co": t_co,
                "t_names": t_names,
                "c_co": c_co,
                "c_names": c_names,
                "kept": res.names_kept,
                "kept_plain": plain.names_kept,
                "kept_any": float(np.mean([n in re_pal_names for n in res.source_names])),
            }
        )
        if args.out:
            from sempix.palette.viz import harmonize_preview

            write_image(args.out / f"{f.stem}_names.png", res.image)
            write_image(args.out / f"{f.stem}_cohenor.png", co.image)
            write_image(
                args.out / f"{f.stem}_preview.png", harmonize_preview(img, res, s_in, s_names)
            )
        print(
            f"{f.stem}: k={len(res.source)} in F {s_in.f_score:.4f} PIT {s_in.pit:.2f} MITS "
            f"{s_in.mits:.3f} | "
            f"C-H F {s_co.f_score:.4f} PIT {s_co.pit:.2f} MITS {s_co.mits:.3f} ({t_co:.3f}s) | "
            f"sempix F {s_names.f_score:.4f} PIT {s_names.pit:.2f} MITS {s_names.mits:.3f} "
            f"({t_names:.3f}s) "
            f"names kept {res.names_kept:.2f} (plain rule {plain.names_kept:.2f})",
            file=sys.stderr,
        )

    def mean(key, attr):
        return float(np.mean([getattr(r[key], attr) for r in rows]))

    n = len(rows)
    h, w = load_rgb(files[0]).shape[:2]
    import numba

    print(
        f"\nKodak ({n} images, {w}x{h}), os.cpu_count() = {os.cpu_count()}, numba threads = "
        f"{numba.get_num_threads()}, load average at the end {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| method | F per pixel (deg x S) | F sum (deg x S) | PIT % | MITS "
        "| wall s / image (mean / median) | CPU s / image (all threads) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, key, tkey in (
        ("input", "s_in", None),
        ("C-Harmony (cohen-or)", "s_co", "co"),
        ("sempix (names; default guard: weaker step or the input where worse)", "s_names",
         "names"),
        ("sempix (names), guard off (before issue 21)", "s_ung", "ung"),
        ("sempix, without neutral-safe rules (neutral_safe=False, guard off)", "s_raw", None),
        ("paper's plain rule (names may change, no neutral-safe rules, guard off)", "s_plain",
         None),
    ):
        tt = cc = "-"
        if tkey is not None:
            wall = [r["t_" + tkey] for r in rows]
            tt = f"{np.mean(wall):.3f} / {statistics.median(wall):.3f}"
            cc = f"{np.mean([r['c_' + tkey] for r in rows]):.3f}"
        print(
            f"| {label} | {mean(key, 'f_score'):.4f} | {mean(key, 'f_sum'):.0f} | "
            f"{mean(key, 'pit'):.2f} | "
            f"{mean(key, 'mits'):.4f} | {tt} | {cc} |"
        )
    better_mits = sum(r["s_names"].mits > r["s_in"].mits for r in rows)
    better_pit = sum(r["s_names"].pit >= r["s_in"].pit for r in rows)
    strictly_pit = sum(r["s_names"].pit > r["s_in"].pit for r in rows)
    lower_f = sum(r["s_names"].f_score <= r["s_in"].f_score for r in rows)
    pal = sum(r["k"] for r in rows)
    from collections import Counter

    acts = Counter(r["guard"] for r in rows)
    print(
        f"harmony guard: {dict(acts)}; guard off: F higher than the input on "
        f"{sum(r['s_ung'].f_score > r['s_in'].f_score for r in rows)}/{n} images; "
        "with the guard on "
        f"{sum(r['s_names'].f_score > r['s_in'].f_score + 1e-9 for r in rows)}/{n}; reduced to "
        + ", ".join(
            f"{r['image']} {r['guard']} (strength {r['guard_strength']:.2f}, F in "
            f"{r['s_in'].f_score:.4f}, off {r['s_ung'].f_score:.4f}, "
            f"on {r['s_names'].f_score:.4f})"
            for r in rows
            if r["guard"] in ("reduced", "kept-input")
        )
    )
    print()
    print(
        "plain rule vs input: MITS higher on "
        f"{sum(r['s_plain'].mits > r['s_in'].mits for r in rows)}/{n}; "
        f"PIT strictly higher on {sum(r['s_plain'].pit > r['s_in'].pit for r in rows)}/{n}"
    )
    print(
        f"without neutral-safe rules vs input: MITS higher on "
        f"{sum(r['s_raw'].mits > r['s_in'].mits for r in rows)}/{n}; PIT strictly higher on "
        f"{sum(r['s_raw'].pit > r['s_in'].pit for r in rows)}/{n}; F lower or equal on "
        f"{sum(r['s_raw'].f_score <= r['s_in'].f_score for r in rows)}/{n}; names kept "
        f"{100 * np.mean([r['kept_raw'] for r in rows]):.1f}%"
    )
    print(
        f"sempix vs input: MITS higher on {better_mits}/{n} images; PIT higher or equal on "
        f"{better_pit}/{n} "
        f"(strictly higher on {strictly_pit}/{n}); F lower or equal on {lower_f}/{n}"
    )
    print(
        "palette colours keeping their basic name: "
        f"{sum(r['kept'] * r['k'] for r in rows):.0f}/{pal} "
        f"= {100 * np.mean([r['kept'] for r in rows]):.1f}% (default, keep_names=True); "
        f"plain nearest-prototype rule: {100 * np.mean([r['kept_plain'] for r in rows]):.1f}%"
    )
    print(
        f"source palette names found again among the names of the result's re-extracted palette: "
        f"{100 * np.mean([r['kept_any'] for r in rows]):.1f}%"
    )
    tm = np.array([r["t_names"] for r in rows])
    cm = np.array([r["c_names"] for r in rows])
    px = h * w
    print(
        f"sempix time per image: wall mean {tm.mean():.3f} s (max {tm.max():.3f}), CPU mean "
        f"{cm.mean():.3f} s, "
        f"for {px / 1e6:.2f} MP (scaled to 512x512: wall {tm.mean() * 512 * 512 / px:.3f} s, "
        f"CPU {cm.mean() * 512 * 512 / px:.3f} s); target <= 0.15 s; load average "
        f"{os.getloadavg()[0]:.1f}"
    )

    if args.big:
        from sempix.palette import recolor_palette

        img = load_rgb(files[0])
        big = np.tile(
            img, (int(np.ceil(3000 / img.shape[0])), int(np.ceil(4000 / img.shape[1])), 1)
        )[:3000, :4000]
        big = np.ascontiguousarray(big)
        t = time.perf_counter()
        res = harmonize_image(big)
        t_all = time.perf_counter() - t
        t = time.perf_counter()
        recolor_palette(big, res.source.lab, res.source.lab + 5)
        t_rec = time.perf_counter() - t
        print(
            f"12 MP ({big.shape[1]}x{big.shape[0]}): recolor_palette {t_rec:.2f} s, full harmonize "
            f"{t_all:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
