"""``sempix recolor``: multi-image colour consistency (group-palette recolouring)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sempix.cli.common import command


def _names_option(value: str) -> float | None:
    from sempix.errors import InputError

    if value.strip().lower() in ("off", "none", "no"):
        return None
    try:
        v = float(value)
    except ValueError:
        raise InputError(f"--names must be a distance like 0.8 or 'off', not {value!r}") from None
    if not v > 0:
        raise InputError(f"--names must be positive (got {value!r}) or 'off'")
    return v


def _saliency_model_option(value: str) -> tuple[str, Path | None]:
    """``rbd``/``u2netp``/``auto`` or a u2netp ``.onnx`` file -> (backend, explicit model or
    None)."""
    from sempix.errors import InputError
    from sempix.recolor.saliency import SALIENCY_BACKENDS

    v = value.strip()
    if v.lower() in SALIENCY_BACKENDS:
        return v.lower(), None
    p = Path(v).expanduser()
    if p.suffix.lower() == ".onnx" or p.is_file() or p.is_dir():
        return "u2netp", p
    raise InputError(
        f"--saliency-model must be {', '.join(SALIENCY_BACKENDS)} or a u2netp .onnx file, "
        f"not {value!r}"
    )


@command("recolor", features=True)
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (recoloured images keep their names; PNG for PNG inputs, else JPEG).",
)
@click.option("--palette", "palette", default=None,
              help="External group palette: hex colours '#aabbcc,#112233,...'.")
@click.option("--palette-from", "palette_from", default=None, type=click.Path(),
              help="External group palette extracted from this image (e.g. a brochure page).")
@click.option("--group-size", "group_size", type=int, default=None,
              help="Group colours per (sub-)palette [default: mean number of source colours].")
@click.option(
    "--wb",
    default="auto",
    show_default=True,
    help="White balance: auto (mean Delta-E > 20 rule), off, on, "
    "or image indices 0,2 (only those).",
)
@click.option(
    "--saliency",
    type=click.Choice(["both", "background", "off"]),
    default="both",
    show_default=True,
    help="Saliency-guided sub-palettes: match both, background (non-salient) only, or off.",
)
@click.option(
    "--saliency-model",
    "saliency_model",
    default="rbd",
    show_default=True,
    help="Saliency backend: rbd (built-in), u2netp (learned; model store, `sempix models fetch "
    "u2netp`), auto (u2netp if present, else rbd), or a u2netp .onnx file/folder.",
)
@click.option(
    "--semantic", is_flag=True, help="Group colours by ADE20K classes (sky, vegetation, ...)."
)
@click.option("--names", "names", default="0.8", show_default=True,
              help="Colour-naming association distance d_name, or 'off'.")
@click.option(
    "--harmonize", is_flag=True, help="Replace group colours by harmonization prototypes."
)
@click.option(
    "--preview",
    is_flag=True,
    help="Also write preview.png (inputs, palettes, associations, outputs).",
)
@click.option(
    "--json", "json_out", is_flag=True, help="Also write recolor.json (palettes and associations)."
)
@click.option("--force", is_flag=True, help="Allow overwriting input files.")
def recolor(
    images,
    out_dir,
    palette,
    palette_from,
    group_size,
    wb,
    saliency,
    saliency_model,
    semantic,
    names,
    harmonize,
    preview,
    json_out,
    force,
    features,
    quiet,
    debug,
):
    """Make the colours of IMAGE... consistent (Nguyen et al. 2017 group palette + Xue et al.
    2023 modules).

    Writes one recoloured image per input to OUT_DIR (same file name), plus preview.png with
    --preview.
    """
    from sempix.color import to_hex
    from sempix.errors import InputError
    from sempix.image import read_image
    from sempix.palette import extract_palette
    from sempix.progress import cli_progress
    from sempix.recolor.core import parse_palette, render, solve_collection

    if palette and palette_from:
        raise InputError("use either --palette or --palette-from, not both")
    if group_size is not None and group_size < 1:
        raise InputError(f"--group-size must be at least 1 (got {group_size})")
    d_name = _names_option(names)
    sal_backend, sal_model = _saliency_model_option(saliency_model)
    if saliency != "off" and not semantic:
        from sempix.recolor.saliency import resolve_backend

        # resolve (and fetch) the model before any work: a missing model is one line, exit 2
        sal_backend, sal_model = resolve_backend(sal_backend, sal_model, progress=not quiet)
    paths = [Path(p) for p in images]
    names_seen = {}
    for p in paths:
        if p.name in names_seen:
            raise InputError(f"two inputs share the file name {p.name!r}; outputs would collide")
        names_seen[p.name] = p
    loaded = [read_image(p) for p in paths]
    ext_pal = None
    if palette:
        ext_pal = parse_palette(palette)
    elif palette_from:
        ext_pal = extract_palette(read_image(palette_from).rgb).rgb
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    targets = []
    for p in paths:
        suffix = ".png" if p.suffix.lower() in (".png", ".tif", ".tiff", ".bmp") else ".jpg"
        targets.append(out / (p.stem + suffix))
    with cli_progress("recolor", quiet) as prog:
        sol = solve_collection(
            [im.rgb for im in loaded],
            group_size=group_size,
            wb=wb,
            saliency=saliency,
            semantic=semantic,
            names=d_name,
            harmonize=harmonize,
            palette=ext_pal,
            features=features,
            progress=prog,
            saliency_backend=sal_backend,
            saliency_model=sal_model,
        )
        results = render(sol, [im.rgb for im in loaded], progress=prog)
    from sempix.image import atomic_folder

    with atomic_folder(out, inputs=tuple(paths), force=force) as tmp:  # all files appear as one set
        _write_set(tmp, loaded, results, targets, paths, preview, json_out, sol, force)
    if not quiet:
        click.echo(
            f"recoloured {len(paths)} images -> {out} (group palette: "
            f"{' '.join(to_hex(c) for c in sol.group_rgb)}; "
            f"white balance on {sum(sol.stats['wb_applied'])}; "
            f"{sol.stats['broken_by_names']} associations broken by colour naming)",
            err=True,
        )


def _write_set(tmp, loaded, results, targets, paths, preview, json_out, sol, force):
    """Write the recoloured images, preview and JSON into the staging folder ``tmp``."""
    from sempix.color import to_hex
    from sempix.image import atomic_write_bytes, write_image

    for im, res, t in zip(loaded, results, targets):
        write_image(tmp / t.name, res, alpha=im.alpha, icc=im.icc, inputs=tuple(paths), force=force)
    if preview:
        from sempix.recolor.preview import preview_sheet

        write_image(tmp / "preview.png", preview_sheet([im.rgb for im in loaded], results, sol),
                    inputs=tuple(paths), force=force)
    if json_out:
        doc = {
            "group_palette": [
                {"hex": to_hex(c), "lab": [round(float(v), 2) for v in lab], "group": g}
                for c, lab, g in zip(sol.group_rgb, sol.group_lab, sol.group_names)
            ],
            "images": [
                {
                    "input": str(p),
                    "output": str(t),
                    "white_balance": an.wb_applied,
                    "wb_delta_e": round(an.wb_delta_e, 2),
                    "wb_dominance": round(an.wb_dominance, 2),
                    "wb_strength": round(an.wb_strength, 2),
                    "colours": [
                        {
                            "hex": to_hex(c),
                            "weight": round(float(w), 4),
                            "group": g,
                            "mapped_to": int(a),
                            "broken_by_names": bool(b),
                        }
                        for c, w, g, a, b in zip(an.src_rgb, an.weights, an.groups, asg, brk)
                    ],
                }
                for p, t, an, asg, brk in zip(
                    paths, targets, sol.analyses, sol.assignments, sol.broken
                )
            ],
            # saliency_model: the backend actually used (auto resolved), None when saliency is
            # not used
            "options": {
                **{k: v for k, v in sol.options.items()},
                "saliency_model": sol.options.get("saliency_backend"),
            },
            "stats": sol.stats,
        }
        atomic_write_bytes(tmp / "recolor.json", json.dumps(doc, indent=2, default=str).encode(),
                           inputs=tuple(paths), force=force)

