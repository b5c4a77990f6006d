"""``sempix adjust train|apply|maps``: learned semantics-aware photo adjustment (SA-AdjustNet)."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError

VARIANT_CHOICES = ("mse", "huber", "huber-mt", "huber-mt-s", "context-free", "yan")
DEVICE = click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu",
                      show_default=True, help="Where the network runs.")


@click.group("adjust", context_settings={"help_option_names": ["-h", "--help"]})
def adjust() -> None:
    """Learn a photographer's local retouching style from before/after pairs and apply it.

    \b
    sempix adjust train PAIRS_DIR --effect popout -o style.pt
    sempix adjust apply IMAGE --model style.pt -o out.jpg [--strength 0.7] [--map 1=mask.png]
    sempix adjust maps IMAGE --model style.pt -o maps/
    """


@command("train")
@click.argument("pairs_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--effect", default=None, help="Effect folder of the dataset layout (input/ + EFFECT/)."
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Style file to write (checkpointed while training).")
@click.option(
    "--variant",
    type=click.Choice(VARIANT_CHOICES),
    default="huber-mt",
    show_default=True,
    help="mse | huber | huber-mt (multi-task) | huber-mt-s (adjustment maps); "
    "context-free and yan are the baselines.",
)
@click.option("--k", "k", type=int, default=2, show_default=True, help="Presets of huber-mt-s.")
@click.option(
    "--steps", type=int, default=600, show_default=True, help="Optimiser steps (batch 4)."
)
@click.option("--batch", type=int, default=4, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True,
              help="Adam learning rate (the backbone uses half; the paper's 1e-4 is for 600+ "
                   "epochs, see docs/adjust.md).")
@click.option("--size", type=int, default=256, show_default=True, help="Network long side.")
@click.option(
    "--pixels", type=int, default=2048, show_default=True, help="Pixels per image and step."
)
@click.option("--val", "n_val", type=int, default=10, show_default=True, help="Validation pairs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mt-weight", type=float, default=0.001, show_default=True,
              help="Scene-parsing cross-entropy weight of the multi-task variants (the paper's "
                   "0.01 is ~10x the colour loss at this colour scale; see docs/adjust.md).")
@click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0 = all).")
@click.option("--resume", is_flag=True, help="Continue the style file at -o (up to --steps).")
@click.option("--backbone", type=click.Choice(["ade20k", "random"]), default="ade20k", hidden=True)
@click.option("--force", is_flag=True, help="Overwrite an existing style file.")
@DEVICE
def train_cmd(pairs_dir, effect, output, variant, k, steps, batch, lr, size, pixels, n_val, seed,
              mt_weight, threads, resume, backbone, force, device, quiet, debug):
    """Train a style from PAIRS_DIR (input/ + effect folders, or before/ + after/)."""
    from sempix.adjust import TrainSettings, train_style
    from sempix.progress import cli_progress

    out = Path(output)
    if out.exists() and not (resume or force):
        raise InputError(f"{out}: exists (use --resume to continue it or --force to replace it)")
    if mt_weight < 0:
        raise InputError("--mt-weight must be >= 0")
    if steps < 0 or batch < 1 or pixels < 1 or size < 16:
        raise InputError("--steps >= 0, --batch >= 1, --pixels >= 1 and --size >= 16 are required")
    ts = TrainSettings(steps=steps, batch=batch, lr=lr, size=size, pixels=pixels, n_val=n_val,
                       seed=seed, device=device, threads=threads, mt_weight=mt_weight)
    with cli_progress("adjust train", quiet=quiet) as prog:
        r = train_style(pairs_dir, out, effect=effect, variant=variant, k=k, settings=ts,
                        backbone=backbone, resume=resume, progress=prog)
    if not quiet:
        click.echo(f"{out}: {r['step']} steps in {r['seconds']:.0f} s, last loss {r['loss']:.4g}, "
                   f"validation L2 {r['val_l2']:.2f} (network resolution, {len(r['val'])} images)",
                   err=True)


def _parse_maps(specs, shape) -> dict:
    from sempix.image import read_mask

    maps = {}
    for s in specs:
        key, sep, path = s.partition("=")
        if not sep or not key.strip().isdigit():
            raise InputError(f"--map {s!r}: expected N=mask.png (N = preset number, from 1)")
        maps[int(key)] = read_mask(path, shape)
    return maps


@command("apply")
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Style file from `sempix adjust train`.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--strength", type=float, default=1.0, show_default=True,
              help="0 = unchanged, 1 = the learned adjustment.")
@click.option("--map", "maps", multiple=True,
              help="N=mask.png: preset N's adjustment map from a file (personalisation; "
                   "huber-mt-s styles). Repeatable.")
@click.option("--force", is_flag=True, help="Allow overwriting the input.")
@DEVICE
def apply_cmd(image, model_path, output, strength, maps, force, device, quiet, debug):
    """Apply a trained style to IMAGE at full resolution."""
    from sempix.adjust import adjust_image, load_style
    from sempix.image import read_image, write_image
    from sempix.progress import cli_progress

    loaded = read_image(image)
    model, _, ck = load_style(model_path, device)
    user = _parse_maps(maps, loaded.rgb.shape[:2])
    with cli_progress("adjust apply", quiet=quiet) as prog:
        out = adjust_image(model, ck, loaded.rgb, strength=strength, maps=user, device=device,
                           progress=prog)
    write_image(output, out, icc=loaded.icc, inputs=[image], force=force)


@command("maps")
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for map_1.png .. map_K.png and preview.png.")
@DEVICE
def maps_cmd(image, model_path, output, device, quiet, debug):
    """Write the discovered adjustment maps of a huber-mt-s style (PNG per preset + preview)."""
    import numpy as np

    from sempix.adjust import load_style, preset_maps
    from sempix.color import label_colors
    from sempix.image import read_image, write_image

    rgb = read_image(image).rgb
    model, _, ck = load_style(model_path, device)
    m = preset_maps(model, ck, rgb, device=device)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for j in range(m.shape[2]):
        write_image(out / f"map_{j + 1}.png", m[..., j], inputs=[image])
    colours = label_colors(m.shape[2] + 1)[1:].astype(np.float32) / 255.0
    tint = np.einsum("hwk,kc->hwc", m, colours)
    write_image(out / "preview.png", 0.5 * rgb + 0.5 * tint, inputs=[image])
    if not quiet:
        click.echo(f"{out}: {m.shape[2]} maps", err=True)


adjust.add_command(train_cmd)
adjust.add_command(apply_cmd)
adjust.add_command(maps_cmd)
