"""Pictures: palette swatches, hue wheels with harmony templates, name maps, harmonization previews.

Every function returns an (H, W, 3) float32 picture in [0, 1] (write it with
:func:`sempix.image.write_image`).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sempix.color import hsv_to_srgb, luma, srgb_to_hsv, to_hex
from sempix.image import MAX_PANEL_SIDE, fit_size
from sempix.palette.naming import NAME_DISPLAY_RGB, NAMES, name_index

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def _font(size: int = 13):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(img, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def _f32(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def _resize(img: np.ndarray, height: int) -> Image.Image:
    """The picture at ``height`` pixels, but never wider than ``MAX_PANEL_SIDE`` (thin strips of
    extreme aspect ratios stay thin instead of becoming huge)."""
    im = Image.fromarray(_u8(img))
    w, h = fit_size(im.width, im.height, max_width=MAX_PANEL_SIDE, max_height=height)
    return im.resize((w, h), Image.BILINEAR)


def _text_colour(rgb: np.ndarray) -> tuple[int, int, int]:
    lum = float(luma(rgb))
    return BLACK if lum > 0.5 else WHITE


def swatch_image(
    rgb: np.ndarray,
    weights: np.ndarray | None = None,
    labels: list[str] | None = None,
    *,
    width: int = 600,
    height: int = 120,
) -> Image.Image:
    """Palette swatch as a PIL image: blocks proportional to ``weights`` (min 60 px), labelled.

    Parameters
    ----------
    rgb : (k, 3) colours in [0, 1]
    weights : (k,) shares (None = equal)
    labels : extra label line per colour (e.g. the colour name)
    """
    rgb = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    k = len(rgb)
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.ones(k) / k
    minw = min(60, width // max(k, 1))
    widths = (minw + np.floor(w * (width - k * minw))).astype(int)
    widths[np.argmax(widths)] += width - widths.sum()
    im = Image.new("RGB", (width, height), WHITE)
    d = ImageDraw.Draw(im)
    font = _font(12)
    x = 0
    for i in range(k):
        c = tuple(int(v) for v in _u8(rgb[i]))
        d.rectangle([x, 0, x + widths[i] - 1, height - 1], fill=c)
        tc = _text_colour(rgb[i])
        lines = [to_hex(rgb[i])]
        if labels is not None:
            lines.append(labels[i])
        if weights is not None:
            lines.append(f"{100 * w[i]:.0f}%")
        for j, line in enumerate(lines):
            d.text((x + 4, 4 + 15 * j), line, fill=tc, font=font)
        x += widths[i]
    return im


def swatch_picture(
    palette, *, names: list[str] | None = None, width: int = 600, height: int = 120
) -> np.ndarray:
    """Swatch picture of a :class:`~sempix.palette.extract.Palette`. Returns (height, width, 3)
    float32."""
    return _f32(swatch_image(palette.rgb, palette.weights, names, width=width, height=height))


def hue_wheel(
    image: np.ndarray,
    sectors: list[tuple[float, float]] | None = None,
    *,
    size: int = 240,
    label: str | None = None,
) -> Image.Image:
    """Hue wheel: a hue ring, the image's saturation-weighted hue histogram as radial bars, and the
    template sectors (absolute centre, width in degrees) drawn as translucent wedges.

    Hue 0 (red) points right; hues increase counter-clockwise.
    """
    hsv = srgb_to_hsv(np.asarray(image, dtype=np.float32).reshape(-1, 3))
    hist = np.bincount(np.minimum(hsv[:, 0].astype(int), 359), weights=hsv[:, 1], minlength=360)
    kern = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    hist = np.convolve(np.concatenate([hist[-6:], hist, hist[:6]]), kern / kern.sum(), mode="valid")
    hist = hist / hist.max() if hist.max() > 0 else hist
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size]
    dx, dy = (xx - c) / c, (c - yy) / c
    r = np.hypot(dx, dy)
    theta = np.degrees(np.arctan2(dy, dx)) % 360.0
    out = np.ones((size, size, 3), dtype=np.float32)
    if sectors:
        inside = np.zeros((size, size), bool)
        for cen, w in sectors:
            dd = np.abs((theta - cen + 180.0) % 360.0 - 180.0)
            inside |= dd <= w / 2.0
        out[(r < 0.84) & inside] = (0.86, 0.86, 0.86)
    ring = hsv_to_srgb(np.stack([theta, np.ones_like(theta), np.ones_like(theta)], -1))
    sel = (r >= 0.86) & (r <= 1.0)
    out[sel] = ring[sel]
    bar = 0.12 + 0.7 * hist[np.minimum(theta.astype(int), 359)]
    sel = (r >= 0.12) & (r <= bar) & (hist[np.minimum(theta.astype(int), 359)] > 0.01)
    out[sel] = ring[sel] * 0.8
    im = Image.fromarray(_u8(out))
    d = ImageDraw.Draw(im)
    if sectors:
        for cen, w in sectors:
            for edge in (cen - w / 2.0, cen + w / 2.0):
                a = np.radians(edge)
                d.line(
                    [(c, c), (c + 0.84 * c * np.cos(a), c - 0.84 * c * np.sin(a))],
                    fill=(60, 60, 60),
                    width=1,
                )
    if label:
        d.text((4, 2), label, fill=BLACK, font=_font(12))
    return im


def _stack(ims: list[Image.Image], axis: int, pad: int) -> Image.Image:
    """Paste pictures below each other (axis 0) or side by side (axis 1) on white."""
    along = [i.height if axis == 0 else i.width for i in ims]
    across = max(i.width if axis == 0 else i.height for i in ims)
    total = sum(along) + pad * (len(ims) - 1)
    out = Image.new("RGB", (across, total) if axis == 0 else (total, across), WHITE)
    pos = 0
    for im, n in zip(ims, along):
        out.paste(im, (0, pos) if axis == 0 else (pos, 0))
        pos += n + pad
    return out


def _stack_v(ims: list[Image.Image], pad: int = 6) -> Image.Image:
    return _stack(ims, 0, pad)


def _stack_h(ims: list[Image.Image], pad: int = 10) -> Image.Image:
    return _stack(ims, 1, pad)


def _caption(text: str, width: int) -> Image.Image:
    im = Image.new("RGB", (width, 20), WHITE)
    ImageDraw.Draw(im).text((2, 3), text, fill=BLACK, font=_font(13))
    return im


def harmonize_preview(
    image: np.ndarray, result, score_in, score_out, *, height: int = 320
) -> np.ndarray:
    """Input and output side by side, each with its palette swatch and its hue wheel (with the best
    Cohen-Or template) and harmony metrics.

    Parameters
    ----------
    image : (H, W, 3) input
    result : :class:`~sempix.palette.harmonize.HarmonizeResult`
    score_in, score_out : :class:`~sempix.palette.hue_templates.HarmonyScore` of input and output

    Returns
    -------
    float32 picture (H', W', 3).
    """
    cols = []
    for title, img, rgb, names, score in (
        ("input", image, result.source.rgb, result.source_names, score_in),
        (
            f"harmonized ({result.method})",
            result.image,
            result.target_rgb,
            result.target_names,
            score_out,
        ),
    ):
        pic = _resize(img, height)
        w = max(pic.width, 480)
        sw = swatch_image(rgb, result.source.weights, names, width=w, height=70)
        wheel = hue_wheel(
            img, score.absolute_sectors(), size=200, label=f"template {score.template}"
        )
        metrics = _caption(
            f"F {score.f_score:.3f}  PIT {score.pit:.1f}%  MITS {score.mits:.3f}",
            w - wheel.width - 10,
        )
        info = _stack_h([wheel, metrics])
        cols.append(_stack_v([_caption(title, w), pic, sw, info]))
    return _f32(_stack_h(cols, pad=16))


def palette_preview(
    image: np.ndarray, palette, names: list[str] | None = None, *, height: int = 300
) -> np.ndarray:
    """Image with its palette swatch underneath. Returns float32 (H', W', 3)."""
    pic = _resize(image, height)
    w = max(pic.width, 480)
    return _f32(
        _stack_v([pic, swatch_image(palette.rgb, palette.weights, names, width=w, height=90)])
    )


def name_map_figure(image: np.ndarray, idx: np.ndarray, *, height: int = 360) -> np.ndarray:
    """Input beside its colour-name map (each pixel in its name's display colour) with a legend.

    Parameters
    ----------
    image : (H, W, 3) float32
    idx : (H, W) int name index per pixel (into :data:`NAMES`)
    """
    lut = np.array([NAME_DISPLAY_RGB[n] for n in NAMES], dtype=np.float32) / 255.0
    nm = lut[idx]
    a, b = _resize(image, height), _resize(nm, height)
    counts = np.bincount(idx.ravel(), minlength=len(NAMES)) / idx.size
    leg = Image.new("RGB", (150, height), WHITE)
    d = ImageDraw.Draw(leg)
    font = _font(13)
    y = 4
    for i in np.argsort(-counts):
        if counts[i] <= 0:
            continue
        d.rectangle([4, y, 22, y + 14], fill=NAME_DISPLAY_RGB[NAMES[i]], outline=(90, 90, 90))
        d.text((28, y), f"{NAMES[i]} {100 * counts[i]:.1f}%", fill=BLACK, font=font)
        y += 20
    return _f32(_stack_h([a, b, leg]))


def name_map_picture(
    image: np.ndarray, *, model_path: str | os.PathLike | None = None
) -> np.ndarray:
    """Colour-name map: every pixel painted with its name's display colour
    (:data:`NAME_DISPLAY_RGB`),
    shown beside the input with a legend of the names present and their pixel shares.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1]

    Returns
    -------
    (H', W', 3) float32 picture in [0, 1].
    """
    idx = name_index(image, model_path=model_path)
    return name_map_figure(image, idx)
