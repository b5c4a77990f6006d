"""``sempix slimseg train|eval|distill|predict``: slimmable semantic segmentation (SlimSeg).

Subcommands defined here: ``train``, ``eval``. Others live in their own modules and are listed in
``LAZY_SUBCOMMANDS`` (module, attribute): they are imported only when invoked, and left out of
the help while their module does not exist yet. To add one, write ``sempix/cli/slimseg_X_cmd.py``
with a ``@command("X")`` function and add its line to ``LAZY_SUBCOMMANDS``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError

TEACHER_CHOICES = ("prev", "largest", "mean", "larger")
DEVICE = click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where the network runs.",
)

# name -> (module, attribute, one-line help)
LAZY_SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "distill": (
        "sempix.cli.slimseg_distill_cmd",
        "distill",
        "Distil the ADE20K network into a slimmable one on unlabelled photos.",
    ),
    "predict": (
        "sempix.cli.slimseg_predict_cmd",
        "predict",
        "Segment an image at one width (+ preview).",
    ),
    "export": (
        "sempix.cli.slimseg_export_cmd",
        "export",
        "Store every width as a plain network (for --features slimseg).",
    ),
}


class SlimSegGroup(click.Group):
    """A click group with commands added directly plus lazily imported ones."""

    def _lazy(self, name: str) -> click.Command | None:
        entry = LAZY_SUBCOMMANDS.get(name)
        if entry is None:
            return None
        try:
            module = importlib.import_module(entry[0])
        except ModuleNotFoundError as exc:
            if exc.name == entry[0]:
                return None
            raise
        return getattr(module, entry[1])

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [
            n
            for n, (m, _, _) in LAZY_SUBCOMMANDS.items()
            if importlib.util.find_spec(m) is not None
        ]
        return sorted(set(self.commands) | set(lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self._lazy(cmd_name)


@click.group("slimseg", cls=SlimSegGroup, context_settings={"help_option_names": ["-h", "--help"]})
def slimseg() -> None:
    """Slimmable semantic segmentation: one network whose width (cost) is chosen at run time.

    \b
    sempix slimseg train DATA -o ckpt.pt [--widths 0.25,0.5,0.75,1.0] [--teacher prev]
    sempix slimseg eval DATA ckpt.pt
    """


def _pair(text: str, what: str) -> tuple[int, int]:
    """``"240x180"`` (W x H) or ``"180"`` -> (H, W)."""
    try:
        if "x" in text.lower():
            w, h = (int(v) for v in text.lower().split("x"))
        else:
            w = h = int(text)
    except ValueError:
        raise InputError(f"{what}: expected WxH or N, got {text!r}") from None
    if w < 8 or h < 8:
        raise InputError(f"{what}: at least 8 pixels")
    return h, w


@command("train")
@click.argument("data", type=click.Path(file_okay=False, exists=True))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Checkpoint to write (all widths; written atomically while training).",
)
@click.option(
    "--widths", default="0.25,0.5,0.75,1.0", show_default=True, help="Switchable width multipliers."
)
@click.option(
    "--no-kd", is_flag=True, help="Supervise every width with the labels (no in-place KD)."
)
@click.option("--no-boundary", is_flag=True, help="No boundary head, L_b or boundary-guided loss.")
@click.option(
    "--teacher",
    type=click.Choice(TEACHER_CHOICES),
    default="prev",
    show_default=True,
    help="Teacher of a narrow width: next wider (prev), widest, mean of wider, all wider.",
)
@click.option(
    "--independent",
    type=float,
    default=None,
    help="Train one plain network of this width only (baseline).",
)
@click.option("--steps", type=int, default=3000, show_default=True, help="Optimiser steps.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option(
    "--lr",
    type=float,
    default=0.01,
    show_default=True,
    help="SGD learning rate (momentum 0.9, weight decay 5e-4, poly 0.9).",
)
@click.option(
    "--size",
    default="480x360",
    show_default=True,
    help="Working size WxH the images are resized to.",
)
@click.option("--crop", default="360", show_default=True, help="Training crop WxH or N.")
@click.option("--scale", default="0.5,2.0", show_default=True, help="Random scale range.")
@click.option("--no-ohem", is_flag=True, help="Plain cross-entropy instead of hard example mining.")
@click.option("--limit", type=int, default=None, help="Use only the first N training images.")
@click.option(
    "--classes",
    type=int,
    default=None,
    help="Number of classes (default: 11 for CamVid folders, else max label + 1).",
)
@click.option(
    "--void",
    type=int,
    default=None,
    help="Label value to ignore (default: 11 for CamVid folders; values >= classes too).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0 = all).")
@click.option("--checkpoint-every", type=int, default=100, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the checkpoint at -o (up to --steps).")
@click.option("--force", is_flag=True, help="Replace an existing checkpoint.")
@DEVICE
def train_cmd(
    data,
    output,
    widths,
    no_kd,
    no_boundary,
    teacher,
    independent,
    steps,
    batch,
    lr,
    size,
    crop,
    scale,
    no_ohem,
    limit,
    classes,
    void,
    seed,
    threads,
    checkpoint_every,
    resume,
    force,
    device,
    quiet,
    debug,
):
    """Train a slimmable network on DATA (train/ + trainannot/, e.g. CamVid)."""
    from sempix.progress import cli_progress
    from sempix.slimseg import TrainOptions, parse_widths, train_slimseg

    out = Path(output)
    if out.exists() and not (resume or force):
        raise InputError(f"{out}: exists (use --resume to continue it or --force to replace it)")
    if resume and not out.exists():
        raise InputError(f"{out}: no checkpoint to resume")
    try:
        ws = parse_widths(widths)
        lo, hi = (float(v) for v in scale.split(","))
    except ValueError as exc:
        raise InputError(f"--widths/--scale: {exc}") from None
    opts = TrainOptions(
        widths=ws,
        teacher=teacher,
        kd=not no_kd,
        boundary=not no_boundary,
        independent=independent,
        steps=steps,
        batch=batch,
        lr=lr,
        size=_pair(size, "--size"),
        crop=_pair(crop, "--crop"),
        scale=(lo, hi),
        ohem=not no_ohem,
        limit=limit,
        num_classes=classes,
        void=void,
        seed=seed,
        device=device,
        threads=threads,
        checkpoint_every=checkpoint_every,
    )
    with cli_progress("slimseg train", quiet=quiet) as prog:
        r = train_slimseg(data, out, opts, resume=resume, progress=prog)
    if not quiet:
        click.echo(
            f"{out}: {r['step']} steps in {r['seconds']:.0f} s, last loss {r['loss']:.4g}", err=True
        )


@command("eval")
@click.argument("data", type=click.Path(file_okay=False, exists=True))
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True))
@click.option("--split", default="val", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N images.")
@click.option("--no-speed", is_flag=True, help="Skip the speed measurement.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@DEVICE
def eval_cmd(data, checkpoint, split, limit, no_speed, as_json, device, quiet, debug):
    """mIoU, boundary-band accuracy, FLOPs and speed per width of CHECKPOINT on DATA."""
    from sempix.progress import cli_progress
    from sempix.slimseg import evaluate_slimseg

    with cli_progress("slimseg eval", quiet=quiet) as prog:
        r = evaluate_slimseg(
            data,
            checkpoint,
            split=split,
            device=device,
            speed=not no_speed,
            limit=limit,
            progress=prog,
        )
    if as_json:
        click.echo(json.dumps(r))
        return
    h, w = r["size"]
    click.echo(f"{split}: {r['images']} images at {w}x{h}")
    click.echo("width  mIoU   pixel acc  band acc  GMACs   params    ms/img")
    for row in r["widths"]:
        ms = f"{1000 * row['seconds']:.0f}" if "seconds" in row else "-"
        click.echo(
            f"x{row['width']:<5g} {100 * row['miou']:5.1f}  {100 * row['pixel_acc']:6.1f}"
            f"     {100 * row['band_acc']:6.1f}   {row['macs'] / 1e9:6.3f}  "
            f"{row['params'] / 1e6:6.2f}M  {ms:>7}"
        )


slimseg.add_command(train_cmd)
slimseg.add_command(eval_cmd)
