"""``sempix features IMAGE -o OUT.npz [--backend ...] [--preview OUT.png]``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sempix.cli.common import FEATURE_BACKENDS, command, runtime_options
from sempix.errors import InputError


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@command("features")
@click.argument("image", type=click.Path(dir_okay=False), required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write features to this .npz (compact; read it with sempix.features.files.load_features).",
)
@click.option("--backend", "--features", "backend", default="ade20k", show_default=True,
              type=click.Choice(list(FEATURE_BACKENDS), case_sensitive=False),
              help="Feature backend (lowlevel = weight-free, NOT semantic).")
@click.option("--dim", type=click.IntRange(min=0), default=None,
              help="Output dimension (default: 64 for ade20k/segformer, 11 for lowlevel; 0 = all).")
@click.option("--reduce", type=click.Choice(["random", "pca"]), default="random", show_default=True,
              help="Dimension reduction: seeded random projection or per-image PCA ([0,1]).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random-projection seed.")
@click.option(
    "--guided", is_flag=True, help="Align feature edges with image edges (guided filter)."
)
@click.option(
    "--preview",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a preview PNG: PCA of the features beside the labelled classes with a legend.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Write full-resolution float32 features (large: ~1 KB per pixel at 256 dims) instead "
    "of the compact file (network-resolution float16, upsampled on load).",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the on-disk feature cache.")
@click.option(
    "--strict", is_flag=True, help="Fail if the model is unavailable instead of falling back."
)
@click.option("--force", is_flag=True, help="Allow overwriting the input file.")
@click.option(
    "--list-classes", is_flag=True, help="Print the backend's class names (index, name) and exit."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary (size, backend, classes, timings, files).",
)
@click.option(
    "--width",
    "width",
    type=float,
    default=None,
    help="slimseg: width of the slimmable network (e.g. 0.25, 0.5, 1.0; default: the widest).",
)
@click.option(
    "--checkpoint",
    type=click.Path(),
    default=None,
    help="slimseg: the slimmable checkpoint (default: slimseg_ade20k.pt in $SEMPIX_MODEL_DIR "
    "or the model cache; make one with `sempix slimseg distill`).",
)
@runtime_options
def features(
    image,
    output,
    backend,
    dim,
    reduce,
    seed,
    guided,
    preview,
    full,
    no_cache,
    strict,
    force,
    list_classes,
    as_json,
    width,
    checkpoint,
    quiet,
    debug,
):
    """Compute per-pixel semantic features of IMAGE (and optionally a preview picture)."""
    from sempix.features import compute_features
    from sempix.image import load_rgb
    from sempix.progress import cli_progress

    if (width is not None or checkpoint is not None) and backend.lower() != "slimseg":
        raise InputError("--width and --checkpoint apply to --features slimseg only")
    if list_classes:
        _list_classes(backend.lower(), checkpoint)
        return
    if image is None:
        raise InputError("missing IMAGE argument (see `sempix features --help`)")
    if output is None and preview is None:
        raise InputError("nothing to do: give -o OUT.npz and/or --preview OUT.png")
    src = Path(image)
    for out in (output, preview):
        if out is not None and _same(Path(out), src) and not force:
            raise InputError(f"{out}: refusing to overwrite the input image (use --force)")
    if output is not None and not str(output).lower().endswith(".npz"):
        raise InputError(f"{output}: the features output must be a .npz file")
    if preview is not None and Path(preview).suffix.lower() not in (
        ".png",
        ".jpg",
        ".jpeg",
        ".webp",
    ):
        raise InputError(f"{preview}: the preview must be a .png, .jpg or .webp file")
    from sempix.image import check_outputs

    check_outputs([output, preview], inputs=(src,), force=force)  # all outputs, before any work
    img = load_rgb(src)
    with cli_progress("features", quiet=quiet) as prog:
        fm = compute_features(img, backend=backend.lower(), dim=dim, reduce=reduce, guided=guided,
                              cache=not no_cache, seed=seed, strict=strict, progress=prog,
                              **({"width": width, "checkpoint": checkpoint}
                                 if backend.lower() == "slimseg" else {}))
    if output is not None:
        from sempix.features.files import save_features

        save_features(output, fm, full=full, inputs=(src,), force=force)
    if preview is not None:
        from sempix.features.preview import render_preview
        from sempix.image import write_image

        pic = render_preview(fm, img)
        import numpy as np

        write_image(preview, np.asarray(pic, dtype=np.float32) / 255.0, inputs=(src,), force=force)
    if as_json:
        from sempix.cli.common import emit_json

        outputs = {"features": output, "preview": preview}
        emit_json(
            "features",
            input=image,
            input_size=[img.shape[1], img.shape[0]],
            outputs={k: v for k, v in outputs.items() if v is not None},
            timings={"total": fm.meta.get("time_s"), **(fm.meta.get("timings") or {})},
            backend=fm.backend,
            semantic=bool(fm.semantic),
            dim=int(fm.dim),
            cache=fm.meta.get("cache"),
            fallback=fm.meta.get("fallback"),
            classes=[{"name": n, "share": f} for _, n, f in fm.present_classes(0.01)],
        )
    if not quiet:
        cls = ", ".join(f"{n} {100 * f:.0f}%" for _, n, f in fm.present_classes(0.02)[:8])
        # sizes are WxH everywhere in sempix's messages (width first, like the image viewers)
        click.echo(
            f"{fm.backend} features {fm.shape[1]}x{fm.shape[0]}, {fm.dim}-d"
            f"{' (not semantic)' if not fm.semantic else ''}, cache {fm.meta.get('cache')}, "
            f"{fm.meta.get('time_s', 0):.2f} s" + (f"; classes: {cls}" if cls else ""),
            err=True,
        )


def _list_classes(backend: str, checkpoint=None) -> None:
    if backend == "lowlevel":
        raise InputError("the lowlevel backend has no classes (it is not semantic)")
    if backend == "slimseg":
        from sempix.features.slimseg import checkpoint_path, class_names

        names = class_names(checkpoint_path(checkpoint))
    elif backend == "ade20k":
        from sempix.features.ade20k import class_names

        names = class_names()
    elif backend == "segformer":
        from sempix.features.segformer import get_model, model_dir

        names = get_model(model_dir()).names
    else:
        from sempix.features.segformer import get_model, variant_dir

        names = get_model(variant_dir(backend)).names
    for i, n in enumerate(names):
        click.echo(f"{i}\t{n}")
