"""``sempix softseg IMAGE -o DIR [--layers 5] [--preview] [--features BACKEND]``."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError


@command("softseg", features=True)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), required=True,
              help="Output folder (created if missing).")
@click.option("--layers", type=int, default=5, show_default=True, help="Number of soft layers (grouping target).")
@click.option("--preview", is_flag=True, help="Also save intermediate stages (eigenvectors, initial layers).")
@click.option("--work-pixels", type=int, default=25_000, show_default=True,
              help="Pixels of the working resolution of the eigen-decomposition and constrained "
                   "sparsification (0 = full resolution, slow); the relaxed sparsification is always "
                   "at full resolution.")
@click.option("--eigvecs", type=int, default=100, show_default=True, help="Eigenvectors of the Laplacian.")
@click.option("--initial", type=int, default=40, show_default=True, help="Initial layers before grouping.")
@click.option("--max-pixels", type=int, default=None, help="Refuse larger images (default: sempix's limit).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Allow overwriting the input file.")
def softseg(image, output, layers, preview, work_pixels, eigvecs, initial, max_pixels, seed, force,
            features, quiet, debug):
    """Semantic soft segmentation of IMAGE into soft layers (Aksoy et al. 2018).

    Writes layer_K.png (RGBA), alpha_K.png (16-bit), alphas.npy, layers_vis.png (colour-coded
    layers), recomposed.png and layers.ora (OpenRaster, opens in GIMP/Krita/MyPaint) into DIR.
    With --features none the semantic affinity is left out (matting Laplacian + nonlocal colour;
    colour replaces the features for k-means and grouping).
    """
    import numpy as np

    from sempix.image import read_image
    from sempix.progress import cli_progress
    from sempix.softseg import SoftSegConfig, save_result, soft_segment

    if not 1 <= layers <= 64:
        raise InputError(f"--layers must be between 1 and 64 (got {layers})")
    if eigvecs < 2 or initial < 2:
        raise InputError("--eigvecs and --initial must be at least 2")
    if work_pixels < 0:
        raise InputError("--work-pixels must be >= 0")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    img = read_image(image, max_pixels=max_pixels).rgb
    backend = features.lower()
    cfg = SoftSegConfig(n_layers=layers, n_eigvecs=eigvecs, n_initial=initial,
                        work_pixels=work_pixels or None, keep_intermediate=preview, seed=seed)
    feats = None
    if backend == "none":
        feats = np.asarray(img, dtype=np.float32)
        cfg.affinity.sigma_s = 0.0
    with cli_progress("softseg", quiet=quiet) as prog:
        res = soft_segment(img, features=feats, backend=backend, config=cfg, progress=prog)
    from sempix.image import atomic_folder

    with atomic_folder(out, inputs=(image,), force=force) as tmp:  # all files appear as one set
        written = save_result(res, tmp, preview=preview, inputs=(image,), force=force)
    written = {k: out / v.name for k, v in written.items()}
    if not quiet:
        t = ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items())
        click.echo(f"{res.n_layers} layers ({res.meta.get('backend')}) -> {out}/ [{t}]", err=True)
        click.echo(f"wrote {len(written)} files, e.g. {written['vis'].name}, {written['ora'].name}", err=True)
