"""``sempix mask IMAGE (--at X,Y | --class NAME) [...] -o MASK.png``
``[--apply ... --output OUT.jpg]``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError


def _parse_at(values: tuple[str, ...]) -> list[tuple[float, float]]:
    pts = []
    for v in values:
        parts = v.replace(" ", "").split(",")
        if len(parts) != 2:
            raise InputError(f"--at {v!r}: write X,Y (column,row), e.g. --at 120,45")
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise InputError(f"--at {v!r}: X and Y must be numbers") from None
    return pts


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _overlay(img, mask, points):
    """The image with the mask tinted red and the clicked points marked (for --overlay)."""
    import numpy as np

    m = mask[..., None]
    tint = np.array([1.0, 0.16, 0.35], np.float32)
    pic = (img * (1 - 0.55 * m) + tint * 0.55 * m) * (0.75 + 0.25 * m)
    H, W = mask.shape
    r = max(3, round(min(H, W) / 120))
    yy, xx = np.mgrid[0:H, 0:W]
    for x, y in points:
        d = np.hypot(xx - x, yy - y)
        pic[(d <= r) & (d > r - max(1.5, r / 3))] = (1, 1, 1)
        pic[(d <= r + 1.5) & (d > r)] = (0, 0, 0)
    return np.clip(pic, 0, 1).astype(np.float32)


@command("mask", features=True)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "--at",
    "at",
    multiple=True,
    metavar="X,Y",
    help="Clicked pixel (column,row); repeat for several points (a pixel joins when close to any).",
)
@click.option(
    "--class",
    "classes",
    multiple=True,
    metavar="NAME",
    help="Select the pixels of a semantic class from the label map (sky, person, ...; repeat or "
    "use commas): soft edges from the class probabilities, snapped to image edges. "
    "With --at, the union of both.",
)
@click.option(
    "--hard-class",
    is_flag=True,
    help="--class from the hard label map (no soft edges, no snapping).",
)
@click.option("--add", "add_masks", multiple=True, type=click.Path(dir_okay=False), metavar="MASK",
              help="Union with a mask file (repeatable).")
@click.option(
    "--intersect",
    "intersect_masks",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="MASK",
    help="Intersection with a mask file (repeatable).",
)
@click.option(
    "--subtract",
    "subtract_masks",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="MASK",
    help="Remove a mask file's pixels (repeatable; applied last).",
)
@click.option("--lambda", "--lam", "lam", type=float, default=0.8, show_default=True,
              help="Semantic weight in [0, 1] (0 = colour/luminance only, 1 = semantic only).")
@click.option(
    "--tau",
    type=float,
    default=0.3,
    show_default=True,
    help="Threshold on the combined distance (units: L*/100 and semantic distance in [0,1]).",
)
@click.option("--space", type=click.Choice(["luminance", "lab"]), default="lab", show_default=True,
              help="Colour term: CIE76 DeltaE/100 (lab) or |dL*|/100 (luminance).")
@click.option("--connected/--no-connected", default=True, show_default=True,
              help="Keep only the pixels connected to a clicked point (minimax path distance).")
@click.option("--feather", type=float, default=0.0, show_default=True,
              help="Soft fall-off half-width around tau (same units), 0 = hard mask.")
@click.option(
    "--refine", is_flag=True, help="Align the mask edges with image edges (guided filter)."
)
@click.option("-o", "--mask-output", "mask_out", type=click.Path(dir_okay=False), default=None,
              help="Write the mask (8-bit grey PNG/TIFF...).")
@click.option("--save-distance", type=click.Path(dir_okay=False), default=None,
              help="Write the raw combined distance map (float32 .npy) to sweep thresholds later.")
@click.option("--apply", "apply_spec", default=None, metavar="SPEC",
              help='Adjustments inside the mask, e.g. "exposure=+0.7,contrast=0.2,saturation=-0.3,'
                   'temperature=0.2,tint=0,hue=15" (needs --output).')
@click.option("--output", "edited_out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the adjusted image (with --apply).")
@click.option("--overlay", type=click.Path(dir_okay=False), default=None,
              help="Write a picture of the mask over the image with the points marked.")
@click.option("--work-pixels", type=click.IntRange(min=1000), default=None,
              help="Pixel budget of the semantic working resolution (default 120000).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary (size, coverage, timings, files) on stdout.",
)
@click.option("--force", is_flag=True, help="Allow overwriting the input file.")
def mask(
    image,
    at,
    classes,
    hard_class,
    add_masks,
    intersect_masks,
    subtract_masks,
    lam,
    tau,
    space,
    connected,
    feather,
    refine,
    mask_out,
    save_distance,
    apply_spec,
    edited_out,
    overlay,
    work_pixels,
    as_json,
    force,
    features,
    quiet,
    debug,
):
    """Semantic range mask of IMAGE from clicked points or classes (and optional masked
    adjustments).

    A pixel p joins the mask when, for some clicked pixel x,
    lam * d_sem(p, x) + (1 - lam) * d_col(p, x) < tau (and, by default, p is connected to x through
    pixels that pass too),
    with d_col = |L*(p) - L*(x)| / 100 (or DeltaE76/100 with --space lab) and d_sem the distance of
    L2-normalised semantic features in [0, 1] (0.71 = unrelated classes). Example:

    \b
      sempix mask photo.jpg --at 300,80 --lambda 0.5 --tau 0.25 --feather 0.03 \\
          -o sky.png --apply "exposure=-0.5,saturation=0.2" --output photo-edited.jpg
      sempix mask photo.jpg --class sky -o sky.png
      sempix mask photo.jpg --class person --subtract face.png -o body.png
    """
    import time

    import numpy as np

    from sempix.image import atomic_save_npy, read_image, write_image
    from sempix.mask import (
        DEFAULT_WORK_PIXELS,
        MaskSource,
        check_lam_tau,
        mask_features,
        parse_adjustments,
        range_mask,
    )
    from sempix.progress import cli_progress, sub_progress

    t0 = time.perf_counter()
    # ---- validate everything before any heavy work
    pts = _parse_at(at)
    names = [n.strip() for c in classes for n in c.split(",") if n.strip()]
    if not pts and not names:
        raise InputError("give at least one point with --at X,Y or a class with --class NAME")
    if names and features in ("none", "lowlevel"):
        raise InputError(f"--class needs semantic labels: use --features ade20k (not {features})")
    if save_distance and not pts:
        raise InputError("--save-distance writes the distance to clicked points: give --at X,Y")
    check_lam_tau(lam, tau, feather)
    adj = parse_adjustments(apply_spec) if apply_spec is not None else None
    if adj is not None and not apply_spec.replace(",", "").strip():
        raise InputError(
            '--apply is empty: give adjustments, e.g. --apply "exposure=+0.7,saturation=0.2"'
        )
    if adj is not None and edited_out is None:
        raise InputError("--apply needs --output OUT.jpg (where to write the adjusted image)")
    if edited_out is not None and adj is None:
        raise InputError("--output writes the adjusted image: give the adjustments with --apply")
    if not any((mask_out, save_distance, edited_out, overlay)):
        raise InputError("nothing to do: give -o MASK.png, --save-distance D.npy, --overlay P.png "
                         "or --apply ... --output OUT.jpg")
    outs = [o for o in (mask_out, save_distance, edited_out, overlay) if o]
    extra_in = [*add_masks, *intersect_masks, *subtract_masks]
    if len({str(Path(o).resolve()) for o in outs}) != len(outs):
        raise InputError("the output files must be different paths")
    for o in outs:
        for i in (image, *extra_in):
            if _same(o, i) and not force:
                raise InputError(f"{o}: refusing to overwrite an input file (use --force)")
    if save_distance and not str(save_distance).lower().endswith(".npy"):
        raise InputError(f"{save_distance}: --save-distance writes a .npy file")
    # every output writable before any work: a bad second output must not leave the first written
    from sempix.image import check_output

    for o in outs:
        check_output(o, inputs=(image, *extra_in), force=force, image=o != save_distance)

    loaded = read_image(image)
    img = loaded.rgb
    H, W = img.shape[:2]
    from sempix.distance import parse_points
    from sempix.image import read_mask
    from sempix.mask import class_select, mask_intersection, mask_subtract, mask_union

    pts_px = parse_points(pts, (H, W)) if pts else np.zeros((0, 2), np.int64)
    extra = {
        k: [read_mask(p, (H, W)) for p in v]
        for k, v in (
            ("add", add_masks),
            ("intersect", intersect_masks),
            ("subtract", subtract_masks),
        )
    }

    timings = {}
    with cli_progress("mask", quiet=quiet) as prog:
        fm = None
        t = time.perf_counter()
        if features != "none":
            fm = mask_features(
                img,
                features.lower(),
                work_pixels=work_pixels or DEFAULT_WORK_PIXELS,
                progress=sub_progress(prog, 0.0, 0.8),
            )
        timings["features"] = time.perf_counter() - t
        if names and (fm is None or fm.labels is None):
            raise InputError(
                f"--class needs semantic labels but the {fm.backend if fm else 'none'!r} "
                "features have none (is the ade20k model installed?)"
            )
        t = time.perf_counter()
        res = None
        parts = []
        if len(pts_px):
            src = MaskSource(img, fm)
            prog(0.85, "distances")
            res = range_mask(
                img,
                pts_px,
                lam=lam,
                tau=tau,
                space=space,
                feather=feather,
                refine=refine,
                source=src,
                connected=connected,
            )
            parts.append(res.mask)
        if names:
            prog(0.9, "classes")
            parts.append(class_select(img, fm, names, soft=not hard_class, refine=not hard_class))
        m = mask_union(*parts)
        if extra["add"]:
            m = mask_union(m, *extra["add"])
        if extra["intersect"]:
            m = mask_intersection(m, *extra["intersect"])
        if extra["subtract"]:
            m = mask_subtract(m, *extra["subtract"])
        timings["mask"] = time.perf_counter() - t
        prog(0.95, "writing")
        inputs = (image, *extra_in)
        if mask_out:
            write_image(mask_out, m, inputs=inputs, force=force)
        if save_distance:
            atomic_save_npy(
                save_distance, res.distance.astype(np.float32), inputs=(image,), force=force
            )
        if overlay:
            write_image(overlay, _overlay(img, m, pts_px), inputs=inputs, force=force)
        if adj is not None:
            from sempix.mask import apply_adjustments

            out = apply_adjustments(img, m, adj)
            write_image(
                edited_out, out, alpha=loaded.alpha, icc=loaded.icc, inputs=inputs, force=force
            )
        prog(1.0, "done")
    kind = (
        "no features" if fm is None else f"{fm.backend}{'' if fm.semantic else ' (not semantic)'}"
    )
    if as_json:
        from sempix.cli.common import emit_json

        outputs = {
            "mask": mask_out,
            "distance": save_distance,
            "overlay": overlay,
            "edited": edited_out,
        }
        emit_json(
            "mask",
            input=image,
            input_size=[W, H],
            output_size=[W, H],
            outputs={k: v for k, v in outputs.items() if v},
            timings={**timings, "total": time.perf_counter() - t0},
            coverage=float(m.mean()),
            points=[[int(x), int(y)] for x, y in pts_px],
            classes=names,
            settings={
                "lam": lam,
                "tau": tau,
                "space": space,
                "connected": connected,
                "feather": feather,
                "refine": refine,
            },
            combine={
                "add": list(add_masks),
                "intersect": list(intersect_masks),
                "subtract": list(subtract_masks),
            },
            features=None if fm is None else {"backend": fm.backend, "semantic": bool(fm.semantic)},
        )
    if not quiet:
        what = []
        if len(pts_px):
            what.append(f"lam={lam:g}, tau={tau:g}, {space}")
        if names:
            what.append(f"class {', '.join(names)}")
        click.echo(
            f"mask {W}x{H}: {100 * float(m.mean()):.1f}% selected ({'; '.join(what)}, {kind})",
            err=True,
        )
