"""``sempix slimseg predict IMAGE ckpt.pt --width 0.5 --preview p.png [-o labels.png]``."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError


@command("predict")
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True))
@click.option("--width", type=float, default=None, help="Width to run (default: the widest).")
@click.option(
    "--preview",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a preview PNG: the image, PCA of the features and the labels with a legend.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the class index of every pixel as an 8-bit grey PNG (16-bit above 255 classes).",
)
@click.option(
    "--size",
    type=click.IntRange(min=33),
    default=513,
    show_default=True,
    help="Letterbox side the network sees.",
)
@click.option("--force", is_flag=True, help="Allow overwriting the input file.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def predict(image, checkpoint, width, preview, output, size, force, device, quiet, debug):
    """Segment IMAGE with the slimmable CHECKPOINT at one width."""
    import numpy as np

    from sempix.image import check_outputs, load_rgb, write_image
    from sempix.slimseg.predict import predict as run_predict
    from sempix.train import resolve_device

    if preview is None and output is None:
        raise InputError("nothing to do: give --preview P.png and/or -o LABELS.png")
    if output is not None and Path(output).suffix.lower() != ".png":
        raise InputError(f"{output}: the labels output must be a .png file")
    resolve_device(device)
    src = Path(image)
    check_outputs([output, preview], inputs=(src,), force=force)
    img = load_rgb(src)
    pred = run_predict(img, checkpoint, width=width, size=size, device=device)
    if output is not None:
        n = len(pred.class_names)
        lab = pred.labels.astype(np.float32) / (255.0 if n <= 256 else 65535.0)
        write_image(output, lab, inputs=(src,), force=force, bits=8 if n <= 256 else 16)
    if preview is not None:
        from sempix.features.compute import FeatureMap
        from sempix.features.post import upsample
        from sempix.features.preview import render_preview

        fm = FeatureMap(
            features=upsample(pred.features, pred.ys, pred.xs),
            backend="slimseg",
            semantic=True,
            labels=pred.labels,
            class_names=pred.class_names,
            meta={"width": pred.width},
        )
        pic = render_preview(fm, img)
        write_image(preview, np.asarray(pic, dtype=np.float32) / 255.0, inputs=(src,), force=force)
    if not quiet:
        counts = (
            np.bincount(pred.labels.ravel(), minlength=len(pred.class_names)) / pred.labels.size
        )
        top = ", ".join(
            f"{pred.class_names[i]} {100 * counts[i]:.0f}%"
            for i in np.argsort(-counts)[:6]
            if counts[i] > 0.02
        )
        click.echo(
            f"x{pred.width:g}: {img.shape[1]}x{img.shape[0]}, "
            f"network {pred.seconds * 1000:.0f} ms; classes: {top}",
            err=True,
        )
