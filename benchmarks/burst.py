"""Burst perception-distortion benchmark: toy model vs Monte Carlo, empirical AUR vs burst length,
NIQE/BRISQUE against published MATLAB values, speed.

Usage::

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        .venv/bin/python benchmarks/burst.py [--sections toy,empirical,iqa,speed] [--out docs/burst]
        [--limit 20] [--ns 1,2,5,10,20] [--steps-l1 300] [--steps-gan 150] [--no-learned]
        [--calib-dir DIR]

Sections
--------
toy        closed form vs Monte Carlo (10^5 samples) over noise x n x shake; AUR vs n (plots).
empirical  DTD val crops (128x128, x4): AUR vs burst length, no shake at two read-noise levels and
           shake 1, 2, 3 at low/high read noise; classical restorer (no alignment and phase
           correlation; unsharp-mask family) and the small learned restorer (one mean-fusion RRDB
           trained on all settings: L1 stage, then perceptual + adversarial; interpolation family).
iqa        NIQE / BRISQUE of the five images of pyiqa's ResultsCalibra (``--calib-dir`` holding
           I03.bmp ... I19.bmp from the pyiqa 0.1.16 source distribution) against the MATLAB values
           published there (results_official.csv: original MATLAB scripts, rgb2gray input).
speed      synthesis and classical merge per burst; training seconds per epoch.

Every timing line is printed with os.cpu_count() and the load average. torch runs on one thread
(fastest on the shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# MATLAB values published by pyiqa (ResultsCalibra/results_official.csv, pyiqa 0.1.16):
# the authors' MATLAB NIQE / BRISQUE scripts on rgb2gray images.
PUBLISHED = {
    "I03.bmp": {"niqe": 15.7536293917814, "brisque": 94.6421},
    "I04.bmp": {"niqe": 3.65492152353770, "brisque": -0.107618},
    "I06.bmp": {"niqe": 3.23547743716998, "brisque": 0.992889},
    "I08.bmp": {"niqe": 3.18403333858339, "brisque": 5.35827},
    "I19.bmp": {"niqe": 8.63519663862637, "brisque": 72.2617},
}


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def header(title: str) -> None:
    print(f"\n## {title}\n\nos.cpu_count()={os.cpu_count()}, {load()}\n", flush=True)


# --------------------------------------------------------------------------------------------- toy


def section_toy(out: Path, samples: int) -> dict:
    from sempix.burst.pd import plot_aur_vs_n, plot_curves
    from sempix.burst.toy import aur_vs_n, compare, monte_carlo, spectrum, toy_curve

    header("1. Toy model: closed form vs Monte Carlo")
    sp = spectrum("power", 8)
    rows = []
    t0 = time.perf_counter()
    print(
        f"Monte Carlo: {samples} samples per setting, power-law spectrum (8 radial frequencies)\n"
    )
    print(
        "| noise | shake | n | D_min closed | D_min MC | max rel. diff D(a) "
        "| rel. diff mean Var(x_hat) |"
        " rel. diff mean Var(x_hat)/S | max rel. diff P(a), P >= 0.01 nat "
        "| max abs. diff P, P < 0.01 (nat) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for noise in (0.03, 0.3, 3.0):
        for shake in (0.0, 1.0, 2.0):
            for n in (1, 5, 20):
                c = toy_curve(n, noise, shake, sp)
                m = monte_carlo(n, noise, shake, sp, samples=samples, seed=n + 100 * int(shake))
                cmp = compare(c, m)
                rows.append({"noise": noise, "shake": shake, "n": n, **cmp})
                rp = "-" if np.isnan(cmp["rel_P"]) else f"{cmp['rel_P']:.3%}"
                print(
                    f"| {noise} | {shake} | {n} | {c.d_min:.5f} | {m.d_min:.5f} "
                    f"| {cmp['rel_D']:.3%} |"
                    f" {cmp['rel_V']:.3%} | {cmp['rel_Q']:.3%} | {rp} | {cmp['abs_P_small']:.5f} |",
                    flush=True,
                )
    worst_d = max(r["rel_D"] for r in rows)
    worst_v = max(max(r["rel_V"], r["rel_Q"]) for r in rows)
    worst_p = float(np.nanmax([r["rel_P"] for r in rows]))
    worst_a = max(r["abs_P_small"] for r in rows)
    print(
        f"\nmax relative difference: D {worst_d:.3%}, second-order statistics {worst_v:.3%}, "
        f"P (>= 0.01 nat) {worst_p:.3%}; max abs. difference of P below 0.01 nat {worst_a:.5f} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    # conclusions
    ns = list(range(1, 51))
    res = {
        "mc": rows,
        "max_rel_D": worst_d,
        "max_rel_V": worst_v,
        "max_rel_P": worst_p,
        "max_abs_P_small": worst_a,
    }
    series0, series1 = {}, {}
    print("\n| shake | noise | AUR n=1 | n=5 | n=10 | n=20 | n=50 | best n (AUR) | monotone? |")
    print("|---|---|---|---|---|---|---|---|---|")
    best = {}
    for shake in (0.0, 1.0):
        for noise in (0.03, 0.1, 0.3, 1.0, 3.0):
            a, _ = aur_vs_n(ns, noise, shake, sp)
            (series0 if shake == 0 else series1)[f"noise {noise}"] = (ns, a)
            mono = bool(np.all(np.diff(a) <= 1e-12))
            b = ns[int(np.argmin(a))]
            best[(shake, noise)] = b
            print(
                f"| {shake} | {noise} | {a[0]:.4f} | {a[4]:.4f} | {a[9]:.4f} | {a[19]:.4f} | "
                f"{a[49]:.4f} |"
                f" {b} | {mono} |"
            )
    res["best_n"] = {f"{k[0]}/{k[1]}": v for k, v in best.items()}
    plot_aur_vs_n(series0, out / "toy_aur_noshake.png", title="toy model, no shake")
    plot_aur_vs_n(series1, out / "toy_aur_shake1.png", title="toy model, shake 1 px")
    for shake, name in ((0.0, "toy_curves_noshake.png"), (1.0, "toy_curves_shake1.png")):
        curves = {f"n={n}": toy_curve(n, 0.3, shake, sp).points(48) for n in (1, 2, 5, 10, 20, 50)}
        plot_curves(
            curves,
            out / name,
            xlabel="distortion (MSE)",
            ylabel="perception (KL)",
            title=f"toy P-D curves, noise 0.3, shake {shake}",
        )
    return res


# --------------------------------------------------------------------------------------- empirical

SETTINGS = [
    (0.0, 5.0),
    (0.0, 20.0),
    (1.0, 5.0),
    (1.0, 20.0),
    (2.0, 5.0),
    (2.0, 20.0),
    (3.0, 5.0),
    (3.0, 20.0),
]


def section_empirical(
    out: Path,
    limit: int,
    ns: list[int],
    learned: bool,
    steps_l1: int,
    steps_gan: int,
    n_train: int,
    classical: bool = True,
    resume: bool = False,
    learned_ns: list[int] | None = None,
) -> dict:
    import torch

    from sempix.burst.data import load_images
    from sempix.burst.evaluate import evaluate_curves, make_bursts
    from sempix.burst.learned import LearnedConfig, load_network, train_distortion, train_perception
    from sempix.burst.pd import plot_aur_vs_n
    from sempix.burst.synth import BurstParams
    from sempix.nets.rrdb import RRDBConfig

    header("2. Empirical AUR vs burst length (DTD val crops, x4)")
    data = Path(os.environ["SEMPIX_DATA_DIR"]) / "dtd10"
    val = load_images(data / "val", limit)
    # spread the evaluation images over the 10 classes (20 per class, sorted by name)
    allv = load_images(data / "val")
    val = [allv[i] for i in np.linspace(0, len(allv) - 1, limit).astype(int)]
    print(
        f"{len(val)} val images, burst lengths {ns}, scale 4, shot noise 0, read noise 5 / 20 "
        f"(8-bit)"
    )
    alphas = [0.0, 0.33, 0.67, 1.0]
    results: dict = {"classical-none": {}, "classical-phase": {}, "learned": {}}
    nets = None
    if learned:
        imgs = load_images(data / "train", n_train)
        cfg = LearnedConfig(
            net=RRDBConfig(
                frames=max(ns), scale=4, features=32, growth=16, blocks=2, fusion="mean"
            ).to_dict(),
            burst=dict(BurstParams(n=5, scale=4, read=5.0).__dict__),
            n_choices=[n for n in ns if n <= 10] or [1],
            shake_choices=[0, 1, 2, 3],
            read_choices=[5.0, 20.0],
            steps_l1=steps_l1,
            steps_gan=steps_gan,
            batch=8,
            crop=64,
            checkpoint_every=100,
            seed=0,
        )
        import tempfile

        ck = Path(tempfile.gettempdir()) / "sempix_burst_bench"  # checkpoints never in the repo
        ck.mkdir(exist_ok=True)
        t = time.perf_counter()
        start1 = 0
        if resume and (ck / "distortion.pt").is_file():
            from sempix.train import load_checkpoint

            start1 = int(load_checkpoint(ck / "distortion.pt")["step"])
            print(f"stage 1 resumed from step {start1}")
        r1 = train_distortion(
            imgs, cfg, ck / "distortion.pt", resume=ck / "distortion.pt" if start1 else None
        )
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        r2 = train_perception(imgs, cfg, ck / "distortion.pt", ck / "perception.pt")
        t2 = time.perf_counter() - t
        spe = len(imgs) // cfg.batch
        print(
            f"\nlearned restorer: RRDB 2 blocks x 32 features (mean fusion, "
            f"{sum(p.numel() for p in load_network(ck / 'distortion.pt').parameters())} "
            f"parameters), "
            f"{len(imgs)} train images, batch 8, crop 64; n in {cfg.n_choices}, shake in 0..3, "
            f"read 5/20"
        )
        done1 = max(1, steps_l1 - start1)
        print(
            f"stage 1 (L1): {steps_l1} steps ({done1} in this run) in {t1:.0f} s "
            f"({t1 / done1:.2f} s/step, "
            f"{t1 / done1 * spe:.0f} s/epoch of {spe} steps), final L1 {r1.logs.get('l1', 0):.4f}"
        )
        print(
            f"stage 2 (perceptual relu3_1 + adversarial + 0.01 L1): {steps_gan} steps in "
            f"{t2:.0f} s "
            f"({t2 / max(1, steps_gan):.2f} s/step, {t2 / max(1, steps_gan) * spe:.0f} s/epoch); "
            f"{load()}"
        )
        results["train"] = {
            "l1_s_per_step": t1 / done1,
            "gan_s_per_step": t2 / max(1, steps_gan),
            "steps_per_epoch": spe,
            "l1_final": r1.logs.get("l1"),
            "gan_logs": r2.logs,
        }
        nets = (load_network(ck / "distortion.pt"), load_network(ck / "perception.pt"))
        torch.set_grad_enabled(False)
    t0 = time.perf_counter()
    for shake, read in SETTINGS:
        params = BurstParams(n=max(ns), scale=4, shake=shake, read=read)
        bursts = make_bursts(val, params, max(ns), seed=7)
        key = f"shake {shake:g}, read {read:g}"
        fams = (
            (
                ("classical-none", {"restorer": "classical", "align": "none"}),
                ("classical-phase", {"restorer": "classical", "align": "phase"}),
            )
            if classical
            else ()
        )
        for fam, kw in fams:
            r = evaluate_curves(val, params, ns, alphas, bursts=bursts, **kw)
            results[fam][key] = r
        if nets is not None:
            lns = learned_ns or ns
            results["learned"][key] = evaluate_curves(
                val, params, lns, alphas, restorer="learned", nets=nets, bursts=bursts
            )
        print(f"  {key}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    summary = {}
    for fam, per in results.items():
        if fam == "train" or not per:
            continue
        fam_ns = sorted(next(iter(per.values()))["aur"].keys())
        print(
            f"\n### {fam}: AUR per burst length (NIQE pooled vs RMSE; bounds common to the n of "
            f"a setting)\n"
        )
        print(
            "| setting | "
            + " | ".join(f"n={n}" for n in fam_ns)
            + " | best n | RMSE n=1 -> best (alpha=0) |"
        )
        print("|---|" + "---|" * (len(fam_ns) + 2))
        series = {}
        for key, r in per.items():
            a = [r["aur"][n] for n in fam_ns]
            b = fam_ns[int(np.argmin(a))]
            d0 = r["curves"][fam_ns[0]][0, 0]
            dmin = min(r["curves"][n][0, 0] for n in fam_ns)
            print(
                f"| {key} | "
                + " | ".join(f"{v:.3f}" for v in a)
                + f" | {b} | {d0:.4f} -> {dmin:.4f} |"
            )
            series[key] = (fam_ns, a)
            summary.setdefault(fam, {})[key] = {
                "aur": a,
                "best": b,
                "rmse_alpha0": [float(r["curves"][n][0, 0]) for n in fam_ns],
                "niqe_alpha0": [float(r["curves"][n][0, 1]) for n in fam_ns],
            }
        plot_aur_vs_n(series, out / f"aur_{fam}.png", title=fam)
        print("\nRMSE at alpha = 0 (no sharpening / distortion network):\n")
        print("| setting | " + " | ".join(f"n={n}" for n in fam_ns) + " |")
        print("|---|" + "---|" * len(fam_ns))
        for key, s in summary[fam].items():
            print(f"| {key} | " + " | ".join(f"{v:.4f}" for v in s["rmse_alpha0"]) + " |")
    if results.get("classical-phase"):
        from sempix.burst.pd import plot_curves

        r = results["classical-phase"]["shake 0, read 20"]
        plot_curves(
            {f"n={n}": c for n, c in r["curves"].items()},
            out / "pd_classical_noshake.png",
            title="classical (phase), no shake, read 20",
        )
        if results["learned"]:
            r = results["learned"]["shake 0, read 20"]
            plot_curves(
                {f"n={n}": c for n, c in r["curves"].items()},
                out / "pd_learned_noshake.png",
                title="learned (interpolation), no shake, read 20",
            )
    return {"summary": summary, "train": results.get("train")}


# --------------------------------------------------------------------------------------------- iqa


def section_iqa(calib: Path | None) -> dict:
    from sempix.burst.metrics import brisque, niqe
    from sempix.image import load_rgb

    header("3. NIQE / BRISQUE vs published MATLAB values")
    if calib is None or not calib.is_dir():
        print(
            "--calib-dir not given (the five ResultsCalibra images of the pyiqa 0.1.16 sdist); "
            "skipped"
        )
        return {}
    print(
        "| image | NIQE ours (rgb2gray) | NIQE MATLAB | rel. diff | NIQE ours (Y) | BRISQUE ours |"
        " BRISQUE MATLAB | diff |"
    )
    print("|---|---|---|---|---|---|---|---|")
    out = {}
    for name, ref in PUBLISHED.items():
        p = calib / name
        if not p.is_file():
            continue
        x = load_rgb(p)
        a = niqe(x, convert="gray")
        y = niqe(x, convert="y")
        try:
            b = brisque(x)
        except Exception as exc:  # noqa: BLE001 - the BRISQUE model is a user download
            b = float("nan")
            print(f"(BRISQUE unavailable: {exc})")
        out[name] = {"niqe": a, "niqe_y": y, "brisque": b}
        print(
            f"| {name} | {a:.4f} | {ref['niqe']:.4f} | {abs(a - ref['niqe']) / ref['niqe']:.2%} "
            f"| {y:.4f} |"
            f" {b:.3f} | {ref['brisque']:.3f} | {b - ref['brisque']:+.3f} |"
        )
    return out


# ------------------------------------------------------------------------------------------- speed


def section_speed(reps: int, train_steps: int = 0) -> dict:
    from sempix.burst.classical import restore_classical
    from sempix.burst.data import load_images
    from sempix.burst.synth import synthesize

    header("4. Speed (one 128x128 DTD crop, x4, n = 10, read 10, shake 1)")
    img = load_images(Path(os.environ["SEMPIX_DATA_DIR"]) / "dtd10" / "val", 1)[0]

    def timeit(fn):
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    b = synthesize(img, n=10, scale=4, shake=1.0, read=10.0, seed=0)
    anchor = timeit(lambda: synthesize(img, n=10, scale=4, shake=1.0, read=10.0, seed=0))
    rows = [("synthesis (anchor)", anchor)]
    for al, mg, up in (
        ("none", "mean", "kernel"),
        ("phase", "mean", "kernel"),
        ("phase", "robust", "kernel"),
        ("phase", "mean", "bicubic"),
        ("flow", "mean", "bicubic"),
    ):
        rows.append(
            (
                f"merge align={al} merge={mg} upsample={up}",
                timeit(
                    lambda al=al, mg=mg, up=up: restore_classical(
                        b.frames, 4, align=al, merge=mg, upsample=up
                    )
                ),
            )
        )
    print("| step | ms per burst | x anchor |")
    print("|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t * 1e3:.1f} | {t / anchor:.2f} |")
    res = {name: t for name, t in rows}
    # alignment accuracy: RMS error of the estimated global translation against the true shift
    from sempix.burst.align import align, translations

    imgs = load_images(Path(os.environ["SEMPIX_DATA_DIR"]) / "dtd10" / "val")[::20]
    print(
        "\nalignment accuracy (RMS error of the per-frame translation, LR px; 10 crops x 9 "
        "frames):\n"
    )
    print("| scale | read | shake (HR px) | phase correlation | optical flow (ILK, mean) |")
    print("|---|---|---|---|---|")
    for scale, read, shake in ((1, 5.0, 2.0), (1, 20.0, 2.0), (4, 5.0, 2.0), (4, 20.0, 2.0)):
        errs = {"phase": [], "flow": []}
        for k, img in enumerate(imgs):
            b = synthesize(img, n=10, scale=scale, shake=shake, read=read, seed=k)
            for m, acc in errs.items():
                e = translations(align(b.frames, m)) - b.lr_shifts
                acc.append(e[1:])
        pe = float(np.sqrt(np.mean(np.concatenate(errs["phase"]) ** 2)))
        fe = float(np.sqrt(np.mean(np.concatenate(errs["flow"]) ** 2)))
        print(f"| {scale} | {read:g} | {shake:g} | {pe:.3f} | {fe:.3f} |")
        res[f"align_rms_scale{scale}_read{read:g}"] = {"phase": pe, "flow": fe}
    if train_steps:
        import tempfile

        from sempix.burst.learned import LearnedConfig, train_distortion, train_perception
        from sempix.burst.synth import BurstParams
        from sempix.nets.rrdb import RRDBConfig

        imgs = load_images(Path(os.environ["SEMPIX_DATA_DIR"]) / "dtd10" / "train")
        cfg = LearnedConfig(
            net=RRDBConfig(frames=10, scale=4).to_dict(),
            burst=dict(BurstParams(n=5, scale=4, read=10.0, shake=1.0).__dict__),
            n_choices=[1, 2, 5, 10],
            steps_l1=train_steps,
            steps_gan=max(1, train_steps // 2),
            batch=8,
            crop=64,
            checkpoint_every=0,
        )
        spe = len(imgs) // cfg.batch
        with tempfile.TemporaryDirectory() as td:
            r1 = train_distortion(imgs, cfg, Path(td) / "d.pt")
            r2 = train_perception(imgs, cfg, Path(td) / "d.pt", Path(td) / "p.pt")
        a, b = r1.seconds / cfg.steps_l1, r2.seconds / cfg.steps_gan
        print(
            f"\ntraining, small RRDB (2 blocks x 32), batch 8, crop 64, n in 1..10, 1 torch "
            f"thread; "
            f"an epoch = {len(imgs)} DTD train images = {spe} steps ({load()}):\n"
        )
        print("| stage | steps timed | s per step | s per epoch |")
        print("|---|---|---|---|")
        print(f"| L1 | {cfg.steps_l1} | {a:.2f} | {a * spe:.0f} |")
        print(f"| perceptual + adversarial | {cfg.steps_gan} | {b:.2f} | {b * spe:.0f} |")
        res.update({"train_l1_s_per_step": a, "train_gan_s_per_step": b, "steps_per_epoch": spe})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="toy,empirical,iqa,speed")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "burst"))
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--ns", default="1,2,5,10,20")
    ap.add_argument("--no-learned", action="store_true")
    ap.add_argument("--no-classical", action="store_true")
    ap.add_argument(
        "--resume", action="store_true", help="continue stage 1 from its temp checkpoint"
    )
    ap.add_argument("--learned-ns", default=None, help="burst lengths for the learned restorer")
    ap.add_argument("--steps-l1", type=int, default=300)
    ap.add_argument("--steps-gan", type=int, default=150)
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--calib-dir", default=None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--train-steps", type=int, default=10, help="L1 steps timed in the speed section"
    )
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    secs = args.sections.split(",")
    res = {}
    t0 = time.perf_counter()
    if "toy" in secs:
        res["toy"] = section_toy(out, args.samples)
    if "iqa" in secs:
        res["iqa"] = section_iqa(Path(args.calib_dir) if args.calib_dir else None)
    if "speed" in secs:
        res["speed"] = section_speed(args.reps, args.train_steps)
    if "empirical" in secs:
        res["empirical"] = section_empirical(
            out,
            args.limit,
            [int(n) for n in args.ns.split(",")],
            not args.no_learned,
            args.steps_l1,
            args.steps_gan,
            args.n_train,
            classical=not args.no_classical,
            resume=args.resume,
            learned_ns=[int(n) for n in args.learned_ns.split(",")] if args.learned_ns else None,
        )
    print(f"\ntotal {time.perf_counter() - t0:.0f} s, os.cpu_count()={os.cpu_count()}, {load()}")
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
