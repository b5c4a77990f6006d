"""``sempix carve IMAGE -o OUT [--width W] [--height H] ...``: semantic seam carving."""

from __future__ import annotations

from pathlib import Path

import click

from sempix.cli.common import command, number_list, size_option
from sempix.errors import InputError

#: feature dimension requested from the backend (seeded random projection done at the network's
#: resolution, before upsampling, and cached). 16 is as good as 32/64/256 on the quality benchmark
#: and carve() then needs no PCA (docs/carve.md).
REQUEST_DIM = 16
_OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def _parse_also(values: tuple[str, ...]) -> list[tuple[Path, Path]]:
    pairs = []
    for v in values:
        if ":" not in v:
            raise InputError(f"--also {v!r}: write IN:OUT, e.g. --also mask.png:mask_carved.png")
        a, b = v.rsplit(":", 1)
        if not a or not b:
            raise InputError(f"--also {v!r}: write IN:OUT, e.g. --also mask.png:mask_carved.png")
        pairs.append((Path(a), Path(b)))
    return pairs


def _read_also(path: Path, shape):
    """-> (array, writer info). Images keep grey/colour, alpha and 16-bit depth; .npy any array."""
    import numpy as np

    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path}: cannot read array ({str(exc).splitlines()[0]})") from None
        if arr.ndim not in (2, 3) or arr.shape[:2] != tuple(shape):
            raise InputError(
                f"{path}: array shape {arr.shape} does not match the image ({shape[0]}, {shape[1]})"
            )
        return arr, {"kind": "npy"}
    from sempix.image import read_image

    li = read_image(path)
    if li.rgb.shape[:2] != tuple(shape):
        raise InputError(
            f"{path}: is {li.rgb.shape[1]}x{li.rgb.shape[0]} "
            f"but the image is {shape[1]}x{shape[0]} "
            "(--also images must have the same size)"
        )
    rgb = li.rgb
    grey = bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    )
    arr = rgb[..., :1] if grey else rgb
    if li.alpha is not None:
        arr = np.dstack([arr, li.alpha])
    return np.ascontiguousarray(arr), {"kind": "image", "grey": grey, "alpha": li.alpha is not None,
                                       "icc": li.icc, "bits": 16 if li.bit_depth == 16 else 8}


def _write_also(path: Path, arr, info, inputs, force):
    """Write by the OUT suffix: .npy keeps the array (any dtype); images take [0, 1] values."""
    import numpy as np

    from sempix.image import atomic_save_npy, write_image

    if path.suffix.lower() == ".npy":
        atomic_save_npy(path, arr, inputs=inputs, force=force)
        return
    if info["kind"] == "npy":  # an array written as a picture
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
            raise InputError(f"{path}: a {a.shape[2]}-channel array can only be written as .npy")
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        write_image(path, np.clip(a, 0, 1), inputs=inputs, force=force)
        return
    alpha = arr[..., -1] if info["alpha"] else None
    body = arr[..., :-1] if info["alpha"] else arr
    body = body[..., 0] if info["grey"] else body
    bits = info["bits"] if path.suffix.lower() in (".png", ".tif", ".tiff") else 8
    write_image(
        path,
        np.clip(body, 0, 1),
        alpha=alpha,
        icc=info["icc"],
        inputs=inputs,
        force=force,
        bits=bits,
    )


def _parse_lams(text: str, lam: float) -> list[float]:
    vals = number_list(text, "figure-lambdas")
    if not vals or any(not 0 <= v <= 1 for v in vals):
        raise InputError(f"--figure-lambdas {text!r}: give numbers in [0, 1] separated by commas")
    return vals


@command("carve", features=True)
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output image."
)
@click.option(
    "--width", "-W", default=None, metavar="W", help="Target width: pixels (640) or percent (80%)."
)
@click.option("--height", "-H", default=None, metavar="H", help="Target height: pixels or percent.")
@click.option(
    "--lambda",
    "--lam",
    "lam",
    type=float,
    default=0.2,
    show_default=True,
    help="Semantic share of the energy in [0, 1] (0 = RGB only; ignored with --features none).",
)
@click.option(
    "--energy",
    type=click.Choice(["forward", "backward"]),
    default="forward",
    show_default=True,
    help="Forward energy (Rubinstein et al. 2008) or gradient energy.",
)
@click.option(
    "--semantic-energy",
    type=click.Choice(["input", "gradient", "forward"]),
    default="input",
    show_default=True,
    help="Semantic term: gradient energy of the input carried with the pixels (input), the same "
    "recomputed after each seam (gradient), or feature-space forward costs (forward).",
)
@click.option(
    "--order",
    type=click.Choice(["width-first", "height-first", "optimal"]),
    default="width-first",
    show_default=True,
    help="Order of the two directions (optimal: transport map on a small copy).",
)
@click.option(
    "--keep", type=click.Path(dir_okay=False), default=None, help="Mask of pixels to protect."
)
@click.option(
    "--drop",
    type=click.Path(dir_okay=False),
    default=None,
    help="Mask of pixels to remove (object removal; the size is then restored unless -W/-H).",
)
@click.option("--keep-class", "keep_class", multiple=True, metavar="NAME",
              help="Protect pixels of a semantic class (e.g. person; repeat or use commas).")
@click.option(
    "--protect",
    default="auto",
    show_default=True,
    metavar="auto|none|CLASSES",
    help="Semantic protection (as in `retarget`): auto = people, animals and vehicles when the "
    "features have labels (ade20k/segformer); none; or class names (person,dog). Seams cross "
    "protected pixels only where every seam must (unlike --keep-class, never an error).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary (sizes, seams, timings, files) on stdout.",
)
@click.option(
    "--also",
    "also",
    multiple=True,
    metavar="IN:OUT",
    help="Carve another image/array of the same size with the same seams (mask, depth, .npy).",
)
@click.option("--seams", "seams_out", type=click.Path(dir_okay=False), default=None,
              help="Write the input with the removed/inserted seams drawn on it.")
@click.option("--energy-map", "energy_out", type=click.Path(dir_okay=False), default=None,
              help="Write the combined energy of the input (colour-mapped).")
@click.option(
    "--energy-figure",
    "figure_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the paper's Figure 4: energies and results for several lambdas side by side.",
)
@click.option("--figure-lambdas", default=None, metavar="L1,L2,...",
              help="Lambdas of --energy-figure (default: 0,1,<--lambda>).")
@click.option("--feature-dim", type=click.IntRange(min=1), default=16, show_default=True,
              help="Principal components of the features used for carving.")
@click.option(
    "--best-effort",
    is_flag=True,
    help="Cut the keep mask where no seam can avoid it instead of failing.",
)
@click.option("--force", is_flag=True, help="Allow overwriting input files.")
def carve(
    image,
    output,
    width,
    height,
    lam,
    energy,
    semantic_energy,
    order,
    keep,
    drop,
    keep_class,
    protect,
    as_json,
    also,
    seams_out,
    energy_out,
    figure_out,
    figure_lambdas,
    feature_dim,
    best_effort,
    force,
    features,
    quiet,
    debug,
):
    """Content-aware resize of IMAGE by semantic seam carving.

    Removes (or inserts) the connected paths of pixels whose removal costs least in colour AND in
    semantic feature space, so objects keep their shape. Example:

        sempix carve photo.jpg -o small.jpg --width 80% --seams seams.png
    """
    import time

    import numpy as np

    t_start = time.perf_counter()
    t_feat = 0.0
    from sempix.carve import CarveOptions
    from sempix.carve import carve as carve_api
    from sempix.image import check_not_input, read_image, read_mask, write_image
    from sempix.progress import cli_progress

    if not 0.0 <= lam <= 1.0:
        raise InputError(f"--lambda must be in [0, 1], got {lam}")
    also_pairs = _parse_also(also)
    inputs = [image, keep, drop, *[a for a, _ in also_pairs]]
    outs = [output, seams_out, energy_out, figure_out, *[b for _, b in also_pairs]]
    for o in outs:
        if o is not None:
            check_not_input(o, inputs, force)
    for o in outs:
        if (
            o is not None
            and Path(o).suffix.lower() not in _OUT_SUFFIXES
            and o not in [b for _, b in also_pairs]
        ):
            raise InputError(f"{o}: unknown output format {Path(o).suffix or '(no suffix)'!r} "
                             f"(use one of {', '.join(sorted(_OUT_SUFFIXES))})")
        if o is not None and Path(o).suffix.lower() not in (*_OUT_SUFFIXES, ".npy"):
            raise InputError(f"{o}: unknown output format {Path(o).suffix or '(no suffix)'!r} "
                             f"(use one of {', '.join(sorted(_OUT_SUFFIXES))} or .npy)")
    named = [str(Path(o).resolve()) for o in outs if o is not None]
    if len(set(named)) != len(named):
        raise InputError("two outputs have the same file name")
    lams = None
    if figure_out:  # every option of every output is checked before any work or write
        lams = _parse_lams(figure_lambdas, lam) if figure_lambdas else [0.0, 1.0, lam]
        if features.lower() == "none" and any(v > 0 for v in lams):
            raise InputError(
                "--energy-figure compares semantic energies: use --features ade20k (not none)"
            )
    from sempix.image import check_outputs

    check_outputs(outs, inputs=inputs, force=force)

    li = read_image(image)
    rgb = li.rgb
    H, W = rgb.shape[:2]
    tw, th = size_option(width, W, "width"), size_option(height, H, "height")
    if tw is None and th is None and drop is None:
        raise InputError("give --width and/or --height (pixels or percent), or --drop MASK")
    keep_m = read_mask(keep, (H, W)) > 0.5 if keep else None
    drop_m = read_mask(drop, (H, W)) > 0.5 if drop else None
    also_arrs = [_read_also(a, (H, W)) for a, _ in also_pairs]

    backend = (features or "ade20k").lower()
    feats = None
    fm = None
    auto = protect.strip().lower() == "auto"
    if backend == "none":
        if keep_class:
            raise InputError("--keep-class needs semantic labels: use --features ade20k (not none)")
        if not auto and protect.strip().lower() not in ("none", "off", ""):
            raise InputError(
                "--protect CLASSES needs semantic labels: use --features ade20k (not none)"
            )
        lam_eff = 0.0
    else:
        from sempix.features import class_mask, compute_features

        tf = time.perf_counter()
        with cli_progress("features", quiet=quiet) as prog:
            fm = compute_features(rgb, backend, dim=REQUEST_DIM, reduce="random", progress=prog)
        t_feat = time.perf_counter() - tf
        feats = fm.features
        lam_eff = lam
        if keep_class:
            names = [n for k in keep_class for n in k.split(",") if n.strip()]
            cm = class_mask(fm, names)
            keep_m = cm if keep_m is None else (keep_m | cm)
            if not cm.any():
                click.echo(f"warning: no pixel labelled {', '.join(names)} in {image}", err=True)

    also_in = [a for a, _ in also_arrs]
    if li.alpha is not None:
        also_in.append(li.alpha)
    if (
        fm is not None
        and not auto
        and fm.labels is None
        and protect.strip().lower() not in ("none", "off", "")
    ):
        raise InputError(
            f"--protect {protect}: the {fm.backend!r} features have no class labels "
            "(the ade20k model is unavailable?); use --protect none or install the model"
        )
    with cli_progress("carving", quiet=quiet) as prog:
        opts = CarveOptions(
            lam=lam_eff,
            energy=energy,
            semantic_energy=semantic_energy,
            order=order,
            feature_dim=feature_dim,
            keep_strict=not best_effort,
            protect=protect,
        )
        res = carve_api(
            rgb,
            tw,
            th,
            features=fm if fm is not None else feats,
            keep=keep_m,
            drop=drop_m,
            also=also_in,
            progress=prog,
            options=opts,
        )
    out_alpha = res.also[-1] if li.alpha is not None else None
    write_image(output, res.image, alpha=out_alpha, icc=li.icc, inputs=inputs, force=force)
    for (_, dst), (_, info), arr in zip(also_pairs, also_arrs, res.also):
        _write_also(dst, arr, info, inputs, force)
    if seams_out:
        write_image(seams_out, res.seams_vis(rgb), inputs=inputs, force=force)
    if energy_out:
        from sempix.carve.figures import colorize_energy

        write_image(energy_out, colorize_energy(res.energy), inputs=inputs, force=force)
    pinfo = res.info.get("protect") or {}
    if not quiet:
        i = res.info
        msg = f"{W}x{H} -> {res.image.shape[1]}x{res.image.shape[0]}: {i['removed']} seams removed"
        if i["inserted"]:
            msg += f", {i['inserted']} inserted"
        if i["dropped"]:
            msg += f", {i['dropped']} removed with the drop mask"
        if i["keep_pixels_cut"]:
            msg += f", {i['keep_pixels_cut']} protected pixels cut (no seam could avoid them)"
        if pinfo.get("share", 0) > 0:
            what = ", ".join(pinfo.get("present") or pinfo.get("classes") or ["mask"])
            msg += (f", protected {what} ({100 * pinfo['share']:.1f}% of pixels, "
                    f"{pinfo.get('pixels_cut', 0)} cut)")
        click.echo(f"{msg} ({i['t_total']:.2f} s) -> {output}", err=True)
    if figure_out:
        if feats is None and any(v > 0 for v in lams):
            raise InputError(
                "--energy-figure compares semantic energies: use --features ade20k (not none)"
            )
        from sempix.carve.figures import energy_figure

        with cli_progress("figure", quiet=quiet) as prog:
            pic = energy_figure(
                rgb,
                feats,
                tw,
                th,
                lams=lams,
                semantic=feats is not None and bool(fm.semantic),
                drop=drop_m,
                energy=energy,
                order=order,
                keep=keep_m,
                feature_dim=feature_dim,
                semantic_energy=semantic_energy,
                keep_strict=not best_effort,
                progress=prog,
            )
        write_image(figure_out, pic, inputs=inputs, force=force)
    if as_json:
        from sempix.cli.common import emit_json

        i = res.info
        outputs = {
            "image": output,
            "seams": seams_out,
            "energy_map": energy_out,
            "energy_figure": figure_out,
        }
        outputs.update({f"also_{k}": str(dst) for k, (_, dst) in enumerate(also_pairs)})
        emit_json(
            "carve",
            input=image,
            input_size=[W, H],
            output_size=list(i["output_size"]),
            outputs={k: v for k, v in outputs.items() if v is not None},
            timings={
                "features": t_feat,
                "carve": i["t_total"],
                "total": time.perf_counter() - t_start,
            },
            seams={"removed": i["removed"], "inserted": i["inserted"], "dropped": i["dropped"]},
            keep_pixels_cut=i["keep_pixels_cut"],
            lam=lam_eff,
            features=None if fm is None else {"backend": fm.backend, "semantic": bool(fm.semantic)},
            protect=pinfo,
        )
    del np
