"""``sempix softseg IMAGE -o DIR [--layers 5] [--preview] [--format png,ora,psd] [--json]``."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError


@command("softseg", features=True)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), required=True,
              help="Output folder (created if missing).")
@click.option(
    "--layers",
    type=int,
    default=5,
    show_default=True,
    help="Number of soft layers (grouping target).",
)
@click.option(
    "--preview", is_flag=True, help="Also save intermediate stages (eigenvectors, initial layers)."
)
@click.option(
    "--work-pixels",
    type=int,
    default=25_000,
    show_default=True,
    help="Pixels of the working resolution of the eigen-decomposition and constrained "
    "sparsification (0 = full resolution, slow); the relaxed sparsification is always "
    "at full resolution.",
)
@click.option(
    "--eigvecs", type=int, default=100, show_default=True, help="Eigenvectors of the Laplacian."
)
@click.option(
    "--initial", type=int, default=40, show_default=True, help="Initial layers before grouping."
)
@click.option(
    "--max-pixels", type=int, default=None, help="Refuse larger images (default: sempix's limit)."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "formats", default="png,ora,psd", show_default=True, metavar="LIST",
              help="Layer files to write, comma-separated: png (RGBA/alpha PNGs, alphas.npy, "
                   "visualisation), ora (layers.ora), psd (layers.psd, Photoshop/GIMP).")
@click.option("--psd", "psd_only", is_flag=True, help="Shorthand for --format psd.")
@click.option(
    "--mask",
    "masks",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Add a mask (grey image, e.g. from `sempix mask`) to the PSD as a hidden layer; "
    "repeatable.",
)
@click.option("--psd-depth", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="Bits per channel of layers.psd.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary (sizes, timings, files) on stdout.",
)
@click.option("--force", is_flag=True, help="Allow overwriting the input file.")
def softseg(
    image,
    output,
    layers,
    preview,
    work_pixels,
    eigvecs,
    initial,
    max_pixels,
    seed,
    formats,
    psd_only,
    masks,
    psd_depth,
    as_json,
    force,
    features,
    quiet,
    debug,
):
    """Semantic soft segmentation of IMAGE into soft layers (Aksoy et al. 2018).

    Writes layer_K.png (RGBA), alpha_K.png (16-bit), alphas.npy, layers_vis.png (colour-coded
    layers), recomposed.png, layers.ora (OpenRaster: Krita/MyPaint) and layers.psd (Photoshop,
    GIMP; --mask files become hidden mask layers) into DIR.
    With --features none the semantic affinity is left out (matting Laplacian + nonlocal colour;
    colour replaces the features for k-means and grouping).
    """
    import time

    import numpy as np

    from sempix.cli.common import emit_json
    from sempix.image import read_image, read_mask
    from sempix.progress import cli_progress
    from sempix.softseg import FORMATS, SoftSegConfig, save_result, soft_segment

    t0 = time.perf_counter()
    fmts = (
        ("psd",) if psd_only else tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    )
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise InputError(
            f"--format {formats!r}: choose from {', '.join(FORMATS)} (comma-separated)"
        )
    if masks and "psd" not in fmts:
        raise InputError("--mask adds masks to layers.psd: include psd in --format")

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
    mask_arrs = {}
    for mp in masks:
        name = Path(mp).stem
        while name in mask_arrs:
            name += "'"
        mask_arrs[name] = read_mask(mp, img.shape[:2])
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

    with atomic_folder(out, inputs=(image, *masks), force=force) as tmp:  # all files as one set
        written = save_result(res, tmp, preview=preview, inputs=(image, *masks), force=force,
                              formats=fmts, masks=mask_arrs or None, psd_depth=int(psd_depth))
    written = {k: out / v.name for k, v in written.items()}
    if as_json:
        h, w = img.shape[:2]
        emit_json(
            "softseg",
            input=image,
            input_size=[w, h],
            outputs={k: str(v) for k, v in written.items()},
            timings={
                **{k: float(v) for k, v in res.timings.items()},
                "total": time.perf_counter() - t0,
            },
            layers=int(res.n_layers),
            backend=res.meta.get("backend"),
            semantic=bool(res.meta.get("semantic")),
            formats=list(fmts),
            masks=list(mask_arrs),
        )
    if not quiet:
        t = ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items())
        click.echo(f"{res.n_layers} layers ({res.meta.get('backend')}) -> {out}/ [{t}]", err=True)
        shown = ", ".join(p.name for k, p in written.items() if k in ("vis", "ora", "psd"))
        click.echo(f"wrote {len(written)} files ({shown})", err=True)
