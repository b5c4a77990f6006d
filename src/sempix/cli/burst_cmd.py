"""``sempix burst ...``: synthetic bursts, burst restoration, P-D curves, toy models, advice.

Subcommands: ``synth``, ``train``, ``curve``, ``toy``, ``advise``, ``merge``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from sempix.cli.common import command, number_list
from sempix.errors import InputError

DEVICE = click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where networks run.",
)
THREADS = click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="torch CPU threads (0 = torch's default; 1 is fastest on a busy machine).",
)


def _ints(text: str, what: str) -> list[int]:
    vals = number_list(text, what, kind=int, example="1,5,10")
    if not vals or min(vals) < 1:
        raise InputError(f"--{what} {text!r}: values must be >= 1")
    return vals


def _floats(text: str | None, what: str) -> list[float]:
    return number_list(text, what) if text else []


def _threads(n: int) -> None:
    if n:
        import torch

        torch.set_num_threads(int(n))


def _default_dir(sub: str) -> str | None:
    base = os.environ.get("SEMPIX_DATA_DIR")
    if base and (Path(base) / "dtd10" / sub).is_dir():
        return str(Path(base) / "dtd10" / sub)
    return None


def _load_frames(paths) -> np.ndarray:  # noqa: F821
    import numpy as np

    from sempix.image import load_rgb

    if len(paths) < 1:
        raise InputError("give the burst's frames (the first one is the reference)")
    frames = [load_rgb(p) for p in paths]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise InputError(f"the frames differ in size: {sorted(shapes)}")
    return np.stack(frames)


def _burst_options(fn):
    fn = click.option("--motion", type=click.Choice(["random", "correlated"]), default="random",
                      show_default=True, help="i.i.d. shake or a random walk.")(fn)
    fn = click.option("--read", type=click.FloatRange(min=0), default=10.0, show_default=True,
                      help="Gaussian read noise sigma_g (8-bit scale).")(fn)
    fn = click.option(
        "--shot",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="Poisson shot-noise gain lambda_p (variance lambda_p * x, 8-bit scale).",
    )(fn)
    fn = click.option("--shake", type=click.FloatRange(min=0), default=0.0, show_default=True,
                      help="Camera shake sigma_s in HR pixels.")(fn)
    fn = click.option("--scale", type=click.IntRange(min=1), default=4, show_default=True,
                      help="Subsampling factor alpha.")(fn)
    return fn


@click.group("burst", context_settings={"help_option_names": ["-h", "--help"]})
def burst() -> None:
    """Burst perception-distortion toolkit: synthesis, restoration, P-D curves, AUR, advice.

    \b
      sempix burst synth photo.png -o burst/ -n 10 --shake 1 --read 10
      sempix burst merge burst/frame_*.png -o merged.png --scale 4
      sempix burst advise my_burst/*.jpg -o advice.png
      sempix burst toy --noise 0.3 --shake 1 -o toy.png
    """


@command("synth")
@click.argument("source", type=click.Path(exists=True))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@click.option("-n", "--frames", "n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Burst length.")
@_burst_options
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Only the first N images of a folder."
)
@click.option("--force", is_flag=True, help="Allow overwriting input files.")
def synth(source, output, n, scale, shake, shot, read, motion, seed, limit, force, quiet, debug):
    """Synthesise a burst from an image (or one per image of a folder).

    Writes frame_XX.png (frame 00 = reference), hr.png and burst.json (true shifts, parameters).
    """
    from sempix.burst.data import synthesize_folder
    from sempix.burst.synth import BurstParams
    from sempix.progress import cli_progress

    p = BurstParams(n=n, scale=scale, shake=shake, shot=shot, read=read, motion=motion).validate()
    src = Path(source)
    if src.is_dir():
        with cli_progress("synth", quiet) as prog:
            dirs = synthesize_folder(
                src, output, p, seed=seed, limit=limit, force=force, progress=prog
            )
        if not quiet:
            click.echo(f"{len(dirs)} bursts in {output}")
        return
    import numpy as np

    from sempix.burst.synth import synthesize
    from sempix.image import atomic_write_bytes, load_rgb, write_image

    b = synthesize(load_rgb(src), p, seed=seed)
    out = Path(output)
    for i, fr in enumerate(b.frames):
        write_image(out / f"frame_{i:02d}.png", fr, inputs=[src], force=force)
    write_image(out / "hr.png", b.hr, inputs=[src], force=force)
    meta = {"source": str(src), "params": p.__dict__, "seed": seed, "shifts_hr": b.shifts.tolist()}
    atomic_write_bytes(out / "burst.json", json.dumps(meta, indent=1).encode(), force=True)
    if not quiet:
        click.echo(
            f"{n} frames {b.frames.shape[2]}x{b.frames.shape[1]} in {out} "
            f"(shake rms {float(np.sqrt(np.mean(b.shifts[1:] ** 2))) if n > 1 else 0:.2f} px)"
        )


burst.add_command(synth)


@command("train")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Training images [default: $SEMPIX_DATA_DIR/dtd10/train].")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for distortion.pt and perception.pt (checkpoints; never in git).")
@_burst_options
@click.option(
    "--n-choices", default="1,2,4,8", show_default=True, help="Burst lengths drawn per batch."
)
@click.option("--shake-choices", default=None, help="Shakes drawn per batch (default: --shake).")
@click.option("--read-choices", default=None, help="Read noises drawn per batch (default: --read).")
@click.option("--blocks", type=click.IntRange(min=1), default=2, show_default=True,
              help="RRDB blocks (the thesis: 23).")
@click.option("--features", "nf", type=click.IntRange(min=4), default=32, show_default=True)
@click.option("--growth", type=click.IntRange(min=4), default=16, show_default=True)
@click.option(
    "--fusion",
    type=click.Choice(["mean", "concat"]),
    default="mean",
    show_default=True,
    help="mean = any burst length; concat = the thesis (fixed length = max of --n-choices).",
)
@click.option("--steps-l1", type=click.IntRange(min=0), default=300, show_default=True)
@click.option("--steps-gan", type=click.IntRange(min=0), default=300, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--crop", type=click.IntRange(min=8), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Use only N training images."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the checkpoints in OUTPUT.")
@DEVICE
@THREADS
def train_cmd(
    data_dir,
    output,
    scale,
    shake,
    shot,
    read,
    motion,
    n_choices,
    shake_choices,
    read_choices,
    blocks,
    nf,
    growth,
    fusion,
    steps_l1,
    steps_gan,
    batch,
    crop,
    lr,
    limit,
    seed,
    resume,
    device,
    threads,
    quiet,
    debug,
):
    """Train the learned restorer: L1 (distortion.pt), then perceptual + adversarial
    (perception.pt)."""
    from sempix.burst.data import load_images
    from sempix.burst.learned import LearnedConfig, train_distortion, train_perception
    from sempix.nets.rrdb import RRDBConfig
    from sempix.progress import cli_progress, sub_progress

    _threads(threads)
    d = data_dir or _default_dir("train")
    if d is None:
        raise InputError("give --data FOLDER (or set SEMPIX_DATA_DIR with dtd10/train)")
    ns = _ints(n_choices, "n-choices")
    net = RRDBConfig(
        frames=max(ns), scale=scale, features=nf, growth=growth, blocks=blocks, fusion=fusion
    )
    if fusion == "concat":
        ns = [max(ns)]
    cfg = LearnedConfig(
        net=net.to_dict(),
        burst={
            "n": max(ns),
            "scale": scale,
            "shake": shake,
            "shot": shot,
            "read": read,
            "motion": motion,
            "clip": True,
        },
        n_choices=ns,
        shake_choices=_floats(shake_choices, "shake-choices"),
        read_choices=_floats(read_choices, "read-choices"),
        steps_l1=steps_l1,
        steps_gan=steps_gan,
        lr=lr,
        batch=batch,
        crop=crop,
        seed=seed,
        device=device,
    )
    images = load_images(d, limit)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    pd_, pp = out / "distortion.pt", out / "perception.pt"
    with cli_progress("train", quiet) as prog:
        r1 = train_distortion(images, cfg, pd_, resume=pd_ if resume and pd_.is_file() else None,
                              progress=sub_progress(prog, 0, 0.5))
        r2 = train_perception(images, cfg, pd_, pp, resume=pp if resume and pp.is_file() else None,
                              progress=sub_progress(prog, 0.5, 1))
    if not quiet:
        click.echo(
            f"distortion: {pd_} ({r1.step} steps, {r1.seconds:.0f} s, "
            f"l1 {r1.logs.get('l1', 0):.4f})"
        )
        click.echo(f"perception: {pp} ({r2.step} steps, {r2.seconds:.0f} s)")


burst.add_command(train_cmd, "train")


def _read_points(path: str) -> dict:
    """Curves from a JSON file ({label: [[D, P], ...]} or the --json output) or a CSV
    (label,D,P)."""
    import numpy as np

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    curves: dict = {}
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}: not valid JSON ({exc.msg})") from None
        data = data.get("curves", data) if isinstance(data, dict) else None
        if not isinstance(data, dict):
            raise InputError(f"{p}: expected {{label: [[D, P], ...]}}")
        for k, v in data.items():
            curves[str(k)] = np.asarray(v, dtype=float)
    else:
        for i, line in enumerate(text.splitlines(), 1):
            parts = [t.strip() for t in line.split(",")]
            if not line.strip() or parts[0].lower() in ("label", "#"):
                continue
            try:
                curves.setdefault(parts[0], []).append((float(parts[1]), float(parts[2])))
            except (IndexError, ValueError):
                raise InputError(f"{p}:{i}: expected 'label,D,P'") from None
        curves = {k: np.asarray(v) for k, v in curves.items()}
    if not curves:
        raise InputError(f"{p}: no points")
    return curves


@command("curve")
@click.option("--points", "points_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Given P-D points instead of running a restorer: CSV 'label,D,P' or JSON "
                   "{label: [[D, P], ...]}; prints the AURs (common bounds) and plots.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Evaluation images [default: $SEMPIX_DATA_DIR/dtd10/val].")
@click.option("--distortion", "ck_d", type=click.Path(dir_okay=False), default=None,
              help="Stage-1 checkpoint (with --perception: the learned restorer's curve).")
@click.option("--perception", "ck_p", type=click.Path(dir_okay=False), default=None)
@click.option("--alphas", default="0,0.25,0.5,0.75,1", show_default=True,
              help="Interpolation weights (learned) or sharpening amounts x2 (classical).")
@click.option("-n", "--frames", "ns", default="1,5,10", show_default=True, help="Burst lengths.")
@_burst_options
@click.option(
    "--align",
    type=click.Choice(["none", "phase", "flow"]),
    default="phase",
    show_default=True,
    help="Alignment of the classical restorer.",
)
@click.option("--perception-metric", type=click.Choice(["niqe", "brisque"]), default="niqe",
              show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Evaluation images.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Plot (PNG).")
@click.option(
    "--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Points + AUR."
)
@DEVICE
@THREADS
def curve(points_file, data_dir, ck_d, ck_p, alphas, ns, scale, shake, shot, read, motion, align,
          perception_metric, limit, seed, output, json_out, device, threads, quiet, debug):
    """P-D curves (RMSE vs NIQE/BRISQUE) per burst length, their AUR (common bounds) and a plot.

    With --points, the curves are read from a file and only the envelope, AUR and plot are computed.
    """
    from sempix.burst.evaluate import evaluate_curves
    from sempix.burst.pd import aur, common_bounds, plot_curves
    from sempix.burst.synth import BurstParams
    from sempix.image import atomic_write_bytes
    from sempix.progress import cli_progress

    if points_file:
        curves = _read_points(points_file)
        b = common_bounds(curves)
        aurs = {k: aur(v, b) for k, v in curves.items()}
        for k, v in aurs.items():
            click.echo(f"{k}  AUR={v:.4f}")
        if output:
            plot_curves(curves, output, xlabel="distortion", ylabel="perception")
        if json_out:
            payload = {"curves": {k: v.tolist() for k, v in curves.items()}, "aur": aurs,
                       "bounds": [b.d_min, b.d_max, b.p_min, b.p_max]}
            atomic_write_bytes(json_out, json.dumps(payload, indent=1).encode(), force=True)
        return
    _threads(threads)
    d = data_dir or _default_dir("val")
    if d is None:
        raise InputError("give --data FOLDER (or set SEMPIX_DATA_DIR with dtd10/val)")
    if (ck_d is None) != (ck_p is None):
        raise InputError(
            "give both --distortion and --perception checkpoints (or neither: classical)"
        )
    from sempix.burst.data import load_images

    images = load_images(d, limit)
    params = BurstParams(
        n=1, scale=scale, shake=shake, shot=shot, read=read, motion=motion
    ).validate()
    with cli_progress("curve", quiet) as prog:
        res = evaluate_curves(images, params, _ints(ns, "frames"), _floats(alphas, "alphas"),
                              restorer="learned" if ck_d else "classical", checkpoints=(ck_d, ck_p),
                              align=align, metric=perception_metric, seed=seed, device=device,
                              progress=prog)
    for n, pts in res["curves"].items():
        click.echo(
            f"n={n:>3}  AUR={res['aur'][n]:.4f}  "
            + "  ".join(f"({d_:.4f},{p_:.3f})" for d_, p_ in pts)
        )
    if output:
        plot_curves({f"n={n}": p for n, p in res["curves"].items()}, output,
                    ylabel=f"perception ({perception_metric.upper()})",
                    title=f"shake {shake}, read {read}, shot {shot}")
    if json_out:
        payload = {"curves": {str(k): v.tolist() for k, v in res["curves"].items()},
                   "aur": {str(k): v for k, v in res["aur"].items()}, "bounds": res["bounds"]}
        atomic_write_bytes(json_out, json.dumps(payload, indent=1).encode(), force=True)


burst.add_command(curve)


@command("toy")
@click.option(
    "--noise",
    type=click.FloatRange(min=0, min_open=True),
    default=0.1,
    show_default=True,
    help="Per-frame noise variance relative to the signal power.",
)
@click.option("--shake", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Shake sigma_s (pixels).")
@click.option("-n", "--frames", "ns", default="1,2,5,10,20,30,40,50", show_default=True)
@click.option(
    "--spectrum", "spec", type=click.Choice(["power", "white"]), default="power", show_default=True
)
@click.option(
    "--mc",
    "mc",
    type=click.IntRange(min=0),
    default=0,
    help="Also check against a Monte Carlo simulation with this many samples (e.g. 100000).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Plot (PNG).")
def toy(noise, shake, ns, spec, mc, output, quiet, debug):
    """Closed-form toy model: P-D curves, minimum distortion and AUR per burst length."""
    from sempix.burst.pd import plot_curves
    from sempix.burst.toy import aur_vs_n, compare, monte_carlo, spectrum, toy_curve

    sp = spectrum(spec, 16 if spec == "power" else 1)
    nl = _ints(ns, "frames")
    aurs, curves = aur_vs_n(nl, noise, shake, sp)
    click.echo(
        f"{'n':>4} {'D_min':>9} {'D(a_P)':>9} {'P_min':>9} {'AUR':>7}"
        + ("  MC rel. diff D / P" if mc else "")
    )
    for n, a in zip(nl, aurs):
        c = toy_curve(n, noise, shake, sp)
        line = f"{n:>4} {c.d_min:9.5f} {c.d_max:9.5f} {float(c.P(c.a_perc)):9.5f} {a:7.4f}"
        if mc:
            cmp = compare(c, monte_carlo(n, noise, shake, sp, samples=mc))
            line += f"  {cmp['rel_D']:.2%} / {cmp['rel_P']:.2%}"
        click.echo(line)
    click.echo(f"best n by AUR: {nl[int(aurs.argmin())]}")
    if output:
        plot_curves({f"n={n}": c for n, c in zip(nl, curves)}, output, xlabel="distortion (MSE)",
                    ylabel="perception (KL)", title=f"toy model: noise {noise}, shake {shake}")


burst.add_command(toy)


@command("advise")
@click.argument("frames", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Picture (PNG)."
)
@click.option("--n-max", type=click.IntRange(min=2), default=50, show_default=True)
@click.option("--residual", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Residual misalignment (px rms) assumed after global alignment.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None)
def advise(frames, output, n_max, residual, json_out, quiet, debug):
    """Estimate noise and shake of a burst and recommend a burst length (toy model)."""
    from sempix.burst.advise import analyse_burst, plot_advice, recommend
    from sempix.image import atomic_write_bytes
    from sempix.progress import cli_progress

    fr = _load_frames(frames)
    with cli_progress("advise", quiet) as prog:
        an = analyse_burst(fr, progress=prog)
    ad = recommend(an, n_max=n_max, residual=residual)
    click.echo(f"frames: {an.n_frames}  noise: {an.noise_sigma * 255:.2f}/255  "
               f"shake: {an.shake:.2f} px rms (step/rms ratio {an.step_ratio:.2f})")
    click.echo(
        f"recommended burst length: {ad.best_n} merging the frames as they are (AUR; minimum "
        f"distortion at n = {ad.best_n_dmin}); {ad.best_n_aligned} after alignment "
        f"(sempix burst merge --align phase; residual {ad.residual:.2f} px assumed)"
    )
    for note in ad.notes:
        click.echo(f"note: {note}")
    if output:
        plot_advice(ad, output)
    if json_out:
        payload = {"noise_sigma": an.noise_sigma, "shake": an.shake, "step_ratio": an.step_ratio,
                   "shifts": an.shifts.tolist(), "best_n": ad.best_n, "best_n_dmin": ad.best_n_dmin,
                   "best_n_aligned": ad.best_n_aligned, "residual": ad.residual,
                   "aur": ad.aur.tolist(), "d_min": ad.d_min.tolist(), "notes": ad.notes}
        atomic_write_bytes(json_out, json.dumps(payload, indent=1).encode(), force=True)


burst.add_command(advise)


@command("merge")
@click.argument("frames", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--align", type=click.Choice(["none", "phase", "flow"]), default="phase", show_default=True
)
@click.option(
    "--merge", "merge_", type=click.Choice(["mean", "robust"]), default="robust", show_default=True
)
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Output scale (1 = denoise; >1 = multi-frame super-resolution).")
@click.option(
    "--upsample", type=click.Choice(["kernel", "bicubic"]), default="kernel", show_default=True
)
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Use a learned restorer checkpoint instead of the classical merge.")
@click.option("--sharpen", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Unsharp-mask amount after the classical merge (the perception knob).")
@click.option("--force", is_flag=True, help="Allow overwriting input files.")
@DEVICE
@THREADS
def merge(
    frames,
    output,
    align,
    merge_,
    scale,
    upsample,
    checkpoint,
    sharpen,
    force,
    device,
    threads,
    quiet,
    debug,
):
    """Merge a burst (first frame = reference) into one image."""
    from sempix.burst.classical import restore_classical
    from sempix.burst.classical import sharpen as _sharpen
    from sempix.image import write_image
    from sempix.progress import cli_progress

    _threads(threads)
    fr = _load_frames(frames)
    if checkpoint:
        from sempix.burst.learned import load_network, restore_learned

        net = load_network(checkpoint, device)
        if net.config.fusion == "concat" and fr.shape[0] != net.config.frames:
            raise InputError(f"this network takes {net.config.frames} frames, got {fr.shape[0]}")
        out = restore_learned(net, fr)
    else:
        with cli_progress("merge", quiet) as prog:
            out = restore_classical(
                fr, scale, align=align, merge=merge_, upsample=upsample, progress=prog
            )
        if sharpen:
            out = _sharpen(out, sharpen)
    write_image(output, out, inputs=list(frames), force=force)
    if not quiet:
        click.echo(f"wrote {output} ({out.shape[1]}x{out.shape[0]})")


burst.add_command(merge)
