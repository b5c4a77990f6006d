"""Preview picture of a :class:`~sempix.features.FeatureMap`.

Left: the features projected to RGB by per-image PCA. Right (semantic backends): the label map,
one colour per class, with a legend (swatch + name + pixel share) of the classes present.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sempix.color import label_colors as class_colors
from sempix.ops.pca import pca_rgb


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_preview(
    fm, image: np.ndarray | None = None, *, max_side: int = 512, min_fraction: float = 0.002
) -> Image.Image:
    """Render the preview picture.

    Parameters
    ----------
    fm : FeatureMap
    image : (H, W, 3) float32, optional - shown as the first panel when given.
    max_side : int
        Longest side of each panel in pixels.
    min_fraction : float
        Classes covering less than this share of the pixels are left out of the legend.

    Returns
    -------
    PIL RGB image.
    """
    H, W = fm.shape
    s = min(1.0, max_side / max(H, W))
    pw, ph = max(1, round(W * s)), max(1, round(H * s))
    feats = np.asarray(fm.features)
    step = max(1, int(1 / s)) if s < 1 else 1
    small = feats[::step, ::step] if step > 1 else feats
    rgb = pca_rgb(small, 3) if small.shape[2] >= 1 else np.zeros(small.shape[:2] + (3,), np.float32)
    if rgb.shape[2] < 3:
        rgb = np.concatenate(
            [rgb, np.zeros(rgb.shape[:2] + (3 - rgb.shape[2],), np.float32)], axis=2
        )
    panels = []
    titles = []
    if image is not None:
        panels.append(
            Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).resize((pw, ph))
        )
        titles.append("image")
    panels.append(
        Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).resize((pw, ph), Image.BILINEAR)
    )
    titles.append(
        f"{fm.backend} features (PCA to RGB, D={fm.dim})"
        if fm.semantic
        else f"{fm.backend} features (PCA, NOT semantic)"
    )
    legend: list[tuple[np.ndarray, str]] = []
    if fm.labels is not None and fm.class_names:
        colors = class_colors(len(fm.class_names))
        lab = np.asarray(fm.labels)
        lab_small = lab[::step, ::step] if step > 1 else lab
        panels.append(Image.fromarray(colors[lab_small]).resize((pw, ph), Image.NEAREST))
        titles.append("labels")
        for idx, name, frac in fm.present_classes(min_fraction):
            legend.append((colors[idx], f"{name}  {100 * frac:.1f}%"))
    font_px = max(12, min(18, pw // 28))
    font = _font(font_px)
    title_h = font_px + 10
    row_h = font_px + 8
    gap = 8
    cols = max(1, (len(panels) * (pw + gap)) // 220)
    rows = (len(legend) + cols - 1) // cols
    total_w = len(panels) * pw + (len(panels) + 1) * gap
    total_h = title_h + ph + gap * 2 + (rows * row_h + gap if legend else 0)
    if fm.meta.get("fallback"):
        total_h += row_h
    canvas = Image.new("RGB", (total_w, total_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (p, t) in enumerate(zip(panels, titles)):
        x = gap + i * (pw + gap)
        draw.text((x, 4), t, fill=(0, 0, 0), font=font)
        canvas.paste(p, (x, title_h))
    y0 = title_h + ph + gap
    col_w = (total_w - gap) // cols
    for j, (color, text) in enumerate(legend):
        r, c = divmod(j, cols)
        x = gap + c * col_w
        y = y0 + r * row_h
        draw.rectangle(
            [x, y + 2, x + font_px, y + 2 + font_px],
            fill=tuple(int(v) for v in color),
            outline=(0, 0, 0),
        )
        draw.text((x + font_px + 6, y), text, fill=(0, 0, 0), font=font)
    if fm.meta.get("fallback"):
        draw.text(
            (gap, total_h - row_h), f"warning: {fm.meta['fallback']}", fill=(180, 0, 0), font=font
        )
    return canvas
