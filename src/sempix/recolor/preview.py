"""Preview sheet: inputs | source palettes -> group palette (association lines) <- | outputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from sempix.color import lab_to_srgb
from sempix.recolor.core import CollectionSolution

ROW_H = 140
THUMB_W = 210
SW = 28
GAP = 12


def _thumb(img: np.ndarray, h: int, w: int) -> Image.Image:
    im = Image.fromarray(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8))
    im.thumbnail((w, h), Image.LANCZOS)
    return im


def _col(rgb: np.ndarray) -> tuple[int, int, int]:
    v = np.clip(np.rint(np.asarray(rgb) * 255), 0, 255).astype(int)
    return int(v[0]), int(v[1]), int(v[2])


def preview_sheet(
    inputs: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    solution: CollectionSolution,
    *,
    group_lab: np.ndarray | None = None,
) -> np.ndarray:
    """Build the preview sheet.

    Rows: one per image: input thumbnail, its source palette (a column of swatches, height ~ pixel
    share), then the group palette in the middle column (one swatch per group colour, labelled with
    its sub-group), and the output thumbnail. Lines join every source colour to its group colour;
    a red cross marks a colour whose association the colour-naming rule broke; no line = not mapped.

    Returns
    -------
    (H, W, 3) float32 picture.
    """
    n = len(inputs)
    glab = solution.group_lab if group_lab is None else np.asarray(group_lab, np.float32)
    grgb = lab_to_srgb(glab, gamut="clip") if len(glab) else np.zeros((0, 3), np.float32)
    G = len(glab)
    height = max(n * (ROW_H + GAP) + GAP + 20, G * (SW + 22) + 60)
    x_in, x_src = GAP, GAP + THUMB_W + GAP
    x_grp = x_src + SW + 170
    x_out = x_grp + SW + 170
    width = x_out + THUMB_W + GAP
    sheet = Image.new("RGB", (width, height), (245, 245, 245))
    d = ImageDraw.Draw(sheet)
    d.text((x_in, 4), "input", fill=(0, 0, 0))
    d.text((x_src, 4), "source palette", fill=(0, 0, 0))
    d.text((x_grp - 20, 4), "group palette", fill=(0, 0, 0))
    d.text((x_out, 4), "output", fill=(0, 0, 0))
    # group swatches, spread over the height
    gy = []
    top = 30
    step = (height - top - 20) / max(G, 1)
    for k in range(G):
        y = int(top + k * step + (step - SW) / 2)
        gy.append(y + SW // 2)
        d.rectangle([x_grp, y, x_grp + SW, y + SW], fill=_col(grgb[k]), outline=(0, 0, 0))
        d.text((x_grp + SW + 4, y + 8), solution.group_names[k][:10], fill=(60, 60, 60))
    for i in range(n):
        y0 = 20 + GAP + i * (ROW_H + GAP)
        t = _thumb(inputs[i], ROW_H, THUMB_W)
        sheet.paste(t, (x_in, y0))
        o = _thumb(outputs[i], ROW_H, THUMB_W)
        sheet.paste(o, (x_out, y0))
        an = solution.analyses[i]
        if an.wb_applied:
            d.text((x_in + 2, y0 + ROW_H - 12), "WB", fill=(255, 255, 0))
        w = np.asarray(an.weights, np.float64)
        hs = np.maximum(8, np.floor(w / w.sum() * ROW_H)).astype(int)
        y = y0
        for j in range(len(an.src_lab)):
            h = int(hs[j])
            d.rectangle(
                [x_src, y, x_src + SW, y + h - 1], fill=_col(an.src_rgb[j]), outline=(90, 90, 90)
            )
            if an.groups[j] != "all":
                d.text(
                    (x_src + SW + 3, y + max(0, h // 2 - 6)),
                    an.groups[j][:1].upper(),
                    fill=(80, 80, 80),
                )
            a = int(solution.assignments[i][j])
            cy = y + h // 2
            if a >= 0:
                d.line(
                    [(x_src + SW + 12, cy), (x_grp - 2, gy[a])],
                    fill=_col(an.src_rgb[j] * 0.6),
                    width=2,
                )
            elif solution.broken[i][j]:
                cx = x_src + SW + 16
                d.line([(cx - 4, cy - 4), (cx + 4, cy + 4)], fill=(220, 0, 0), width=2)
                d.line([(cx - 4, cy + 4), (cx + 4, cy - 4)], fill=(220, 0, 0), width=2)
            y += h + 1
    return np.asarray(sheet, np.float32) / 255.0
