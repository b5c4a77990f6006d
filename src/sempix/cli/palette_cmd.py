"""CLI: ``sempix palette``, ``sempix names``, ``sempix harmonize``, ``sempix harmony``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sempix.cli.common import command
from sempix.errors import InputError

K_TYPE = click.IntRange(1, 16)


def _check_out(path: str | None, what: str, inputs: tuple = (), force: bool = False) -> None:
    """Check an output before any work (format, not an input, folder writable)."""
    if path is None:
        return
    from PIL import Image as PILImage

    from sempix.image import check_output

    if PILImage.registered_extensions().get(Path(path).suffix.lower()) is None:
        raise InputError(f"{path}: unknown {what} format {Path(path).suffix!r} (use .png or .jpg)")
    check_output(path, inputs=inputs, force=force, image=True)


def _check_distinct(*paths: str | None) -> None:
    given = [p for p in paths if p]
    if len({str(Path(p).resolve()) for p in given}) != len(given):
        raise InputError("the output files must be different paths")


def _read(path: str):
    from sempix.image import read_image

    return read_image(path)


def _write(path: str, pic, *, inputs: tuple, force: bool, alpha=None, icc=None) -> None:
    from sempix.image import write_image

    write_image(path, pic, alpha=alpha, icc=icc, inputs=inputs, force=force)


# ----------------------------------------------------------------------------- palette
@command("palette")
@click.argument("image", type=click.Path())
@click.option(
    "-o", "--output", type=click.Path(), help="Write the palette swatch picture here (.png)."
)
@click.option(
    "-k", "k", type=K_TYPE, default=None, help="Number of colours (default: automatic 2..7)."
)
@click.option("--mask", type=click.Path(), help="Only pixels of this mask (white = used).")
@click.option("--preview", type=click.Path(), help="Write the image with its swatch underneath.")
@click.option("--json", "as_json", is_flag=True, help="Print the palette as JSON.")
@click.option("--force", is_flag=True, help="Allow overwriting an input file.")
def palette(image, output, k, mask, preview, as_json, force, quiet, debug):
    """Extract the colour palette of IMAGE (k-means on the ab histogram in CIE Lab).

    Prints hex colour, share of pixels and basic colour name of each palette colour. Transparent
    pixels (alpha) do not count.
    """
    from sempix.image import read_mask
    from sempix.palette import extract_palette
    from sempix.palette.viz import palette_preview, swatch_picture

    _check_distinct(output, preview)
    _check_out(output, "swatch", (image, mask), force)
    _check_out(preview, "preview", (image, mask), force)
    loaded = _read(image)
    m = read_mask(mask, shape=loaded.rgb.shape[:2]) if mask else None
    if loaded.alpha is not None and (loaded.alpha > 0).any():  # transparent pixels do not count
        m = loaded.alpha if m is None else m * loaded.alpha
    pal = extract_palette(loaded.rgb, k=k, mask=m)
    names = pal.names()
    inputs = (image, mask)
    pics = [(output, swatch_picture(pal, names=names) if output else None),
            (preview, palette_preview(loaded.rgb, pal, names) if preview else None)]
    for path, pic in pics:  # both rendered before either is written
        if path:
            _write(path, pic, inputs=inputs, force=force)
    if as_json:
        d = pal.to_dict()
        d["image"] = str(image)
        h, w = loaded.rgb.shape[
            :2
        ]  # the common keys of every command's --json (cli.common.emit_json)
        outs = {k: str(v) for k, v in (("swatch", output), ("preview", preview)) if v}
        d = {"command": "palette", "input": str(image), "input_size": [w, h], "outputs": outs, **d}
        click.echo(json.dumps(d, indent=2))
        return
    for h, w, n in zip(pal.hex, pal.weights, names):
        click.echo(f"{h}  {100 * float(w):5.1f}%  {n}")
    if output and not quiet:
        click.echo(f"swatch: {output}", err=True)


# ----------------------------------------------------------------------------- names
def _as_colour(arg: str):
    from sempix.color import parse_color

    if Path(arg).exists():
        return None
    try:
        return parse_color(arg)
    except ValueError as exc:
        if arg.startswith("#") or "," in arg or Path(arg).suffix == "":
            raise InputError(str(exc)) from None
        raise InputError(
            f"{arg}: no such file (and not a colour like #ff8800 or 255,136,0)"
        ) from None


@command("names")
@click.argument("items", nargs=-1, required=True)
@click.option(
    "--preview", type=click.Path(), help="Write the colour-name map picture of the (single) image."
)
@click.option(
    "--top",
    type=click.IntRange(1, 11),
    default=3,
    show_default=True,
    help="Names listed per colour.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--force", is_flag=True, help="Allow overwriting an input file.")
def names(items, preview, top, as_json, force, quiet, debug):
    """Basic colour names (van de Weijer 2009 model) of colours or images.

    ITEMS are colours (#ff0000, #f00, 255,0,0) or image files. For a colour: the most probable names
    with their probabilities; for an image: the share of pixels of each name (and, with --preview,
    a colour-name map picture).
    """
    import numpy as np

    from sempix.color import to_hex
    from sempix.palette.naming import NAMES, image_name_shares, name_probabilities
    from sempix.palette.viz import name_map_picture

    parsed = [(it, _as_colour(it)) for it in items]
    images = [it for it, c in parsed if c is None]
    if preview and len(images) != 1:
        raise InputError("--preview needs exactly one image among the arguments")
    _check_out(preview, "preview", tuple(images), force)
    results = []
    for it, c in parsed:
        if c is not None:
            p = name_probabilities(c)
            order = np.argsort(-p)[:top]
            results.append(
                {
                    "color": to_hex(c),
                    "name": NAMES[int(order[0])],
                    "probabilities": {NAMES[int(j)]: round(float(p[j]), 4) for j in order},
                }
            )
        else:
            loaded = _read(it)
            shares = image_name_shares(loaded.rgb)
            ordered = dict(sorted(shares.items(), key=lambda kv: -kv[1]))
            results.append(
                {"image": it, "shares": {k: round(v, 4) for k, v in ordered.items() if v > 0}}
            )
            if preview:
                _write(preview, name_map_picture(loaded.rgb), inputs=(it,), force=force)
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    for r in results:
        if "color" in r:
            probs = "  ".join(f"{n} {100 * v:.1f}%" for n, v in r["probabilities"].items())
            click.echo(f"{r['color']}  {r['name']:<7} ({probs})")
        else:
            sh = "  ".join(
                f"{n} {100 * v:.1f}%" for n, v in list(r["shares"].items())[: max(top, 3)]
            )
            click.echo(f"{r['image']}: {sh}")


# ----------------------------------------------------------------------------- harmonize
@command("harmonize")
@click.argument("image", type=click.Path())
@click.option("-o", "--output", type=click.Path(), required=True, help="Output image.")
@click.option(
    "--method",
    type=click.Choice(["names", "cohen-or"]),
    default="names",
    show_default=True,
    help="names: palette -> saturated same-name prototypes (L kept); "
    "cohen-or: hue shift into the best template.",
)
@click.option("-k", "k", type=K_TYPE, default=None, help="Palette size (default: automatic 2..7).")
@click.option(
    "--preview", type=click.Path(), help="Write input/output with palettes and hue wheels here."
)
@click.option(
    "--allow-name-change", is_flag=True, help="Plain nearest-prototype rule (names may change)."
)
@click.option(
    "--neutral-safe/--no-neutral-safe",
    default=True,
    show_default=True,
    help="Keep greys and whites neutral and never desaturate (names method); "
    "--no-neutral-safe = the method as published.",
)
@click.option(
    "--strength",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Fraction of each palette colour's shift applied (names method).",
)
@click.option(
    "--guard",
    type=click.Choice(["reduce", "warn", "off"]),
    default="reduce",
    show_default=True,
    help="If the result is less harmonious than the input (higher F): apply a weaker step "
    "(half, a quarter) or keep the input (reduce), keep it with a warning (warn), or do not check.",
)
@click.option(
    "--fit-template/--no-fit-template",
    default=True,
    show_default=True,
    help="After the palette step, turn out-of-template hues into the best hue template (names "
    "and L* kept per pixel; names method).",
)
@click.option("--json", "as_json", is_flag=True, help="Print palettes and harmony metrics as JSON.")
@click.option("--force", is_flag=True, help="Allow overwriting an input file.")
def harmonize(
    image,
    output,
    method,
    k,
    preview,
    allow_name_change,
    neutral_safe,
    strength,
    guard,
    fit_template,
    as_json,
    force,
    quiet,
    debug,
):
    """Harmonize the colours of IMAGE via colour naming (or the Cohen-Or baseline)."""
    from sempix.color import to_hex
    from sempix.palette.harmonize import harmonize_image
    from sempix.palette.hue_templates import harmony_metrics
    from sempix.progress import cli_progress

    _check_distinct(output, preview)
    _check_out(output, "output", (image,), force)
    _check_out(preview, "preview", (image,), force)
    loaded = _read(image)
    with cli_progress("harmonize", quiet) as prog:
        res = harmonize_image(
            loaded.rgb,
            method=method,
            k=k,
            keep_names=not allow_name_change,
            neutral_safe=neutral_safe,
            strength=strength,
            guard=guard,
            fit_template=fit_template,
            progress=prog,
        )
    g = res.info.get("guard") or {}
    if g.get("action") in ("reduced", "kept-input", "warned", "saturation-only"):
        what = {
            "reduced": f"applied at strength {g['strength']:.2f} instead",
            "saturation-only": "the palette colours keep their hues instead (only their "
            "saturation rises), then the hues are fitted to the template",
            "kept-input": "the input is written unchanged (--guard warn to keep the result)"
            if not (res.info.get("template_fit") or {}).get("moved")
            else "the palette step is skipped and only hues are fitted to the template "
            "(--guard warn to keep the full result)",
            "warned": "written anyway (--guard warn)",
        }[g["action"]]
        click.echo(
            f"warning: harmonizing {image} raises its F score "
            f"{g['f_input']:.4f} -> {g['f_full']:.4f} "
            f"(less harmonious); {what}",
            err=True,
        )
    scores = res.info.get("harmony") or {}
    s_in = scores.get("input") or harmony_metrics(loaded.rgb)
    s_out = scores.get("result") or harmony_metrics(res.image)
    pic = None
    if preview:  # rendered before any write: a failing preview leaves no output behind
        from sempix.palette.viz import harmonize_preview

        pic = harmonize_preview(loaded.rgb, res, s_in, s_out)
    _write(output, res.image, alpha=loaded.alpha, icc=loaded.icc, inputs=(image,), force=force)
    if pic is not None:
        _write(preview, pic, inputs=(image, output), force=force)
    h, w = loaded.rgb.shape[:2]
    outs = {k: str(v) for k, v in (("image", output), ("preview", preview)) if v}
    summary = {
        "command": "harmonize",  # "input" / "result" hold the harmony metrics here (older schema)
        "input_size": [w, h],
        "output_size": [w, h],
        "outputs": outs,
        "image": str(image),
        "output": str(output),
        "method": method,
        "palette": [
            {
                "from": to_hex(a),
                "to": to_hex(b),
                "name_from": na,
                "name_to": nb,
                "weight": round(float(w), 4),
            }
            for a, b, na, nb, w in zip(
                res.source.rgb,
                res.target_rgb,
                res.source_names,
                res.target_names,
                res.source.weights,
            )
        ],
        "names_kept": res.names_kept,
        "guard": g or None,
        "template_fit": res.info.get("template_fit") or None,
        "input": _metrics_dict(s_in),
        "result": _metrics_dict(s_out),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for p in summary["palette"]:
        click.echo(
            f"{p['from']} {p['name_from']:<7} -> {p['to']} {p['name_to']:<7} "
            f"({100 * p['weight']:.0f}%)"
        )
    for label, s in (("input ", s_in), ("result", s_out)):
        click.echo(
            f"{label}: template {s.template}  F {s.f_score:.4f}  "
            f"PIT {s.pit:.2f}%  MITS {s.mits:.3f}"
        )


def _metrics_dict(s) -> dict:
    return {
        "template": s.template,
        "alpha": round(s.alpha, 2),
        "f_score": round(s.f_score, 6),
        "f_sum": round(s.f_sum, 3),
        "pit": round(s.pit, 4),
        "mits": round(s.mits, 5),
    }


# ----------------------------------------------------------------------------- harmony
@command("harmony")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--template",
    type=click.Choice(["i", "I", "V", "L", "Y", "T", "X"]),
    default=None,
    help="Evaluate this hue template only (default: best of all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def harmony(images, template, as_json, quiet, debug):
    """Colour-harmony metrics of images (Cohen-Or 2006 hue templates).

    F: saturation-weighted hue distance of out-of-template pixels to the nearest template border,
    per pixel, in degrees (lower = more harmonious); PIT: % of pixels inside the template;
    MITS: mean HSV saturation (0..1) of the pixels inside (higher = more vivid).
    """
    from sempix.palette.hue_templates import harmony_metrics

    rows = []
    for p in images:
        s = harmony_metrics(_read(p).rgb, template)
        d = _metrics_dict(s)
        d["image"] = str(p)
        d["per_template"] = {
            k: {"alpha": round(a, 2), "f_score": round(f, 6)}
            for k, (a, f) in s.per_template.items()
        }
        rows.append(d)
    if as_json:
        click.echo(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return
    width = max(len(r["image"]) for r in rows)
    click.echo(f"{'image':<{width}}  template  alpha    F/pixel    PIT%     MITS")
    for r in rows:
        click.echo(
            f"{r['image']:<{width}}  {r['template']:<8}  {r['alpha']:6.1f}  {r['f_score']:9.4f}  "
            f"{r['pit']:6.2f}  {r['mits']:7.4f}"
        )
    if len(rows) > 1:
        import numpy as np

        click.echo(
            f"{'mean':<{width}}  {'':<8}  {'':>6}  {np.mean([r['f_score'] for r in rows]):9.4f}  "
            f"{np.mean([r['pit'] for r in rows]):6.2f}  {np.mean([r['mits'] for r in rows]):7.4f}"
        )
