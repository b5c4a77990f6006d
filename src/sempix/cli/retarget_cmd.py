"""``sempix retarget IMAGE -o OUT --width 75% --method dnr``: deep-feature retargeting and other
resizers."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command, number_list, size_option
from sempix.errors import InputError
from sempix.retarget.constants import INITS, METHODS


def _floats(text: str | None, what: str) -> list[float] | None:
    return None if text is None else number_list(text, what, example="1,0,0")


@command("retarget", features=True)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output image."
)
@click.option(
    "--width", "-W", default=None, metavar="W", help="Target width: pixels (480) or percent (75%)."
)
@click.option("--height", "-H", default=None, metavar="H", help="Target height: pixels or percent.")
@click.option(
    "--method",
    "-m",
    type=click.Choice(METHODS),
    default="dnr",
    show_default=True,
    help="dnr = Deep Network Resizing "
    "(deep seams + warp in VGG feature space, then reconstruction); "
    "multiop = the same deep seams + warp on the pixels; seam / semantic-seam = seam carving "
    "(RGB / with --features); scale = linear; warp = importance grid warp only.",
)
@click.option("--init", type=click.Choice(INITS), default="scale", show_default=True,
              help="Starting image of the dnr reconstruction.")
@click.option("--iterations", "-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="Adam iterations of the dnr reconstruction.")
@click.option("--refine-iterations", type=click.IntRange(min=0), default=10, show_default=True,
              help="Iterations of the grid-sampler refinement (0 = none).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True,
              help="Adam learning rate of the reconstruction (pixels in [0, 1]).")
@click.option(
    "--layers",
    default=None,
    metavar="L1,L2,...",
    help="VGG layers (default: the paper's relu1_2,relu2_2,relu3_4,relu4_4,pool5, limited to the "
    "weights' deepest layer).",
)
@click.option("--lambdas", default=None, metavar="W1,W2,...",
              help="Reconstruction weight per layer of the resolved layer set (default 1,0,0,...).")
@click.option(
    "--lambda-norm",
    type=click.Choice(["none", "energy"]),
    default="none",
    show_default=True,
    help="energy = divide each layer's lambda by the norm of its retargeted features (relative "
    "errors on the scale of the first weighted layer); none = the lambdas as given (paper).",
)
@click.option(
    "--hf-weight",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Weight of a high-frequency penalty in the dnr reconstruction: keeps the result's detail "
    "close to the starting image's (0 = none, the paper's loss).",
)
@click.option(
    "--residual-scale",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="1 = optimise the pixels; k > 1 = optimise a residual at 1/k resolution added to the "
    "starting image (only low frequencies change).",
)
@click.option(
    "--chroma-scale",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="k > 1 = optimise a YCbCr residual with chroma at 1/k of the luma's resolution (2: no "
    "colour detail finer than JPEG 4:2:0 keeps); 1 = none.",
)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Importance scale inside the receptive fields of deeper seams.")
@click.option(
    "--percentile",
    type=click.FloatRange(0, 100),
    default=None,
    help="Deepest-layer seams continue while their importance is within this percentile "
    "[default: 20 (paper) when the deepest layer is pool5-deep, 50 with relu3_1-only weights].",
)
@click.option("--grid", type=click.IntRange(min=1), default=16, show_default=True,
              help="Number of column cells of the grid warp.")
@click.option("--weights", default=None, metavar="NAME|PATH",
              help="VGG weights: vgg19 (torchvision), vgg19-normalised-relu3_1, or a .pth file "
                   "(default: vgg19 if available, else the normalised network).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--lambda",
    "--lam",
    "lam",
    type=click.FloatRange(0, 1),
    default=0.2,
    show_default=True,
    help="Semantic share of the energy for --method semantic-seam.",
)
@click.option(
    "--protect",
    default="auto",
    show_default=True,
    metavar="auto|none|CLASSES",
    help="Semantic protection of dnr/multiop/warp: auto = ADE20K people, animals and vehicles; "
    "or class names (person,car); none = the paper's VGG importance only.",
)
@click.option(
    "--protect-weight",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Weight of the protection term (added importance, in units of the layer's maximum).",
)
@click.option("--preview", default=None, is_flag=False, flag_value="", metavar="[PATH]",
              help="Also write a preview: importance maps with seams and reconstruction snapshots "
                   "(default path: OUT with .preview.png).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary (sizes, timings, losses, files) on stdout.",
)
@click.option("--force", is_flag=True, help="Allow overwriting input files.")
def retarget(
    image,
    output,
    width,
    height,
    method,
    init,
    iterations,
    refine_iterations,
    lr,
    layers,
    lambdas,
    lambda_norm,
    hf_weight,
    residual_scale,
    chroma_scale,
    alpha,
    percentile,
    grid,
    weights,
    device,
    lam,
    protect,
    protect_weight,
    preview,
    as_json,
    force,
    features,
    quiet,
    debug,
):
    """Resize IMAGE to a new aspect ratio, keeping the important content.

    The default method is Deep Network Resizing (Arar et al.): the image's VGG-19 features are
    carved (deepest layer first) and warped, and the output is reconstructed from them by
    optimisation.

        sempix retarget photo.jpg -o narrow.png --width 75% --preview
    """
    from sempix.image import check_not_input, read_image, write_image
    from sempix.progress import cli_progress
    from sempix.retarget import PAPER_LAYERS
    from sempix.retarget import retarget as retarget_api

    inputs = [image]
    preview_path = None
    if preview is not None:
        preview_path = Path(preview) if preview else Path(output).with_suffix(".preview.png")
    for o in (output, preview_path):
        if o is not None:
            check_not_input(o, inputs, force)
    if preview_path is not None and Path(preview_path).resolve() == Path(output).resolve():
        raise InputError("--preview and -o name the same file")
    from sempix.image import check_outputs

    check_outputs([output, preview_path], inputs=inputs, force=force, images=[output, preview_path])
    li = read_image(image)
    rgb = li.rgb
    H, W = rgb.shape[:2]
    tw, th = size_option(width, W, "width"), size_option(height, H, "height")
    if tw is None and th is None:
        raise InputError("give --width and/or --height (pixels or percent, e.g. --width 75%)")
    layer_list = (
        [t for t in layers.replace(" ", "").split(",") if t] if layers else list(PAPER_LAYERS)
    )
    lam_list = _floats(lambdas, "lambdas")
    backend = (features or "ade20k").lower()
    if method == "semantic-seam" and backend == "none":
        raise InputError(
            "--method semantic-seam needs --features ade20k|segformer|lowlevel (use --method seam)"
        )
    n_snap = max(1, iterations // 4) if preview_path is not None else 0
    with cli_progress(f"retarget ({method})", quiet=quiet) as prog:
        res = retarget_api(
            rgb,
            tw,
            th,
            method=method,
            init=init,
            iterations=iterations,
            refine_iterations=refine_iterations,
            lr=lr,
            layers=layer_list,
            lambdas=lam_list,
            lambda_norm=lambda_norm,
            hf_weight=hf_weight,
            residual_scale=residual_scale,
            chroma_scale=chroma_scale,
            alpha=alpha,
            percentile=percentile,
            grid=grid,
            weights=weights,
            device=device,
            features=backend,
            lam=lam,
            snapshot_every=n_snap,
            extra=li.alpha,
            protect=protect,
            protect_weight=protect_weight,
            progress=prog,
        )
    pic = None
    if preview_path is not None:  # rendered before any write: a failing preview leaves no output
        from sempix.retarget.preview import preview as make_preview

        pic = make_preview(rgb, res)
    write_image(output, res.image, alpha=res.extra, icc=li.icc, inputs=inputs, force=force)
    if pic is not None:
        write_image(preview_path, pic, inputs=inputs, force=force)
    if as_json:
        from sempix.cli.common import emit_json

        m = res.meta
        outputs = {"image": output, "preview": preview_path}
        emit_json(
            "retarget",
            input=image,
            input_size=[W, H],
            output_size=[res.image.shape[1], res.image.shape[0]],
            outputs={k: str(v) for k, v in outputs.items() if v is not None},
            timings={"total": m.get("seconds")},
            method=method,
            device=device,
            losses={
                "first": res.losses[0] if res.losses else None,
                "last": res.losses[-1] if res.losses else None,
                "refined": min(res.refine_losses) if res.refine_losses else None,
            },
            layers=m.get("layers"),
            weights=m.get("weights"),
            protect=m.get("protect"),
        )
    if not quiet:
        m = res.meta
        extra = ""
        if res.losses:
            extra = f", loss {res.losses[0]:.4g} -> {res.losses[-1]:.4g}"
            if res.refine_losses:
                extra += f" -> {min(res.refine_losses):.4g} (refined)"
        if m.get("layers"):
            extra += f", layers {','.join(m['layers'])} ({m['weights']})"
        click.echo(
            f"{W}x{H} -> {res.image.shape[1]}x{res.image.shape[0]} with {method}{extra} "
            f"({m['seconds']:.1f} s) -> {output}"
            + (f", preview {preview_path}" if preview_path else ""),
            err=True,
        )
