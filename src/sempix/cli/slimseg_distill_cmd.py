"""``sempix slimseg distill PHOTOS -o ckpt.pt``: distil the ADE20K network into a slimmable one."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError


@command("distill")
@click.argument("photos", type=click.Path(file_okay=False, exists=True))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Checkpoint to write (all widths + their exported networks). An existing one is "
    "resumed up to --steps. Put it at ~/.cache/sempix/models/slimseg_ade20k.pt (or in "
    "$SEMPIX_MODEL_DIR) for `--features slimseg`.",
)
@click.option(
    "--widths", default="0.25,0.5,0.75,1.0", show_default=True, help="Switchable width multipliers."
)
@click.option("--steps", type=int, default=2000, show_default=True, help="Optimiser steps (total).")
@click.option("--batch", type=int, default=8, show_default=True, help="Crops per step.")
@click.option(
    "--crop",
    type=int,
    default=513,
    show_default=True,
    help="Crop side in pixels (4k+1) of the 513-pixel letterbox (513 = whole photo; smaller "
    "crops are cheaper but miss the global context the teacher used).",
)
@click.option("--flip", is_flag=True, help="Random left-right flips of the crops.")
@click.option(
    "--lr",
    type=float,
    default=0.003,
    show_default=True,
    help="SGD learning rate (momentum 0.9, weight decay 5e-4, poly 0.9).",
)
@click.option(
    "--topk",
    type=int,
    default=5,
    show_default=True,
    help="Teacher classes kept per grid sample (cached per photo).",
)
@click.option(
    "--teacher-cache",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the cached teacher targets (default: the user cache).",
)
@click.option("--checkpoint-every", type=int, default=25, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0 = all).")
@click.option("--fresh", is_flag=True, help="Start again instead of resuming an existing -o.")
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where the teacher and the student run.",
)
def distill(
    photos,
    output,
    widths,
    steps,
    batch,
    crop,
    flip,
    lr,
    topk,
    teacher_cache,
    checkpoint_every,
    seed,
    threads,
    fresh,
    device,
    quiet,
    debug,
):
    """Distil the ade20k network into a slimmable one on a folder of unlabelled PHOTOS.

    The teacher's top-k probabilities (network resolution) are cached per photo and become the
    targets of the widest width; each narrower width learns from the next wider one.

    \b
    sempix slimseg distill photos/ -o ~/.cache/sempix/models/slimseg_ade20k.pt --steps 2000
    sempix features photo.jpg --features slimseg --width 0.25 --preview p.png
    """
    from sempix.progress import cli_progress
    from sempix.slimseg import parse_widths
    from sempix.slimseg.distill import DistillOptions
    from sempix.slimseg.distill import distill as run_distill
    from sempix.train import resolve_device

    resolve_device(device)  # --device cuda without CUDA: one error line before any work
    out = Path(output)
    if out.exists() and fresh:
        out.unlink()
    try:
        ws = parse_widths(widths)
    except ValueError as exc:
        raise InputError(f"--widths: {exc}") from None
    if threads > 0:
        import torch

        torch.set_num_threads(int(threads))
    opts = DistillOptions(
        widths=ws,
        steps=steps,
        batch=batch,
        crop=crop,
        flip=flip,
        lr=lr,
        topk=topk,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
    )
    with cli_progress("slimseg distill", quiet=quiet) as prog:
        r = run_distill(photos, out, opts, cache_root=teacher_cache, progress=prog)
    if not quiet:
        losses = ", ".join(f"{k[4:]} {v:.3f}" for k, v in r.logs.items() if k.startswith("log_seg"))
        click.echo(
            f"{out}: {r.step} steps on {r.photos} photos in {r.seconds:.0f} s"
            + (f"; last losses {losses}" if losses else ""),
            err=True,
        )
