"""Preview picture of a retargeting run: importance maps with their seams, and reconstruction
snapshots."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from sempix.color import colormap
from sempix.image import MAX_PANEL_SIDE, fit_size, to_uint8


def importance_picture(imp: np.ndarray, removed: np.ndarray | None = None) -> np.ndarray:
    """Colour-mapped importance (normalised by its 99th percentile), removed positions in bright
    green."""
    hi = float(np.percentile(imp, 99)) or 1.0
    rgb = colormap(imp / hi)
    if removed is not None:
        rgb[removed] = (0.1, 1.0, 0.2)
    return rgb.astype(np.float32)


def _tile(img: np.ndarray, height: int, label: str) -> Image.Image:
    pil = Image.fromarray(to_uint8(img))
    w, h = fit_size(pil.width, pil.height, max_width=MAX_PANEL_SIDE, max_height=height)
    pil = pil.resize((w, h), Image.NEAREST if pil.height < h / 1.5 else Image.BILINEAR)
    canvas = Image.new("RGB", (max(w, 60), height + 16), (255, 255, 255))
    canvas.paste(pil, (0, 16))
    ImageDraw.Draw(canvas).text((2, 2), label, fill=(0, 0, 0))
    return canvas


def _row(tiles: list[Image.Image], gap: int = 6) -> Image.Image:
    w = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    h = max(t.height for t in tiles)
    row = Image.new("RGB", (w, h), (255, 255, 255))
    x = 0
    for t in tiles:
        row.paste(t, (x, 0))
        x += t.width + gap
    return row


def preview(original: np.ndarray, result, *, height: int = 200) -> np.ndarray:
    """Build the preview picture.

    Row 1: the input and, per level of the first deep plan (deepest first), its importance map (Eq.
    1)
    with the removed seams in green. Row 2: the aggregated importance of the carved image with the
    warp
    cells (white lines), then the scaled importance (Eq. 2) per level; the semantic protection map
    (the
    input, darkened outside the protected classes) comes first when there is one. Row 3: the
    reconstruction snapshots (initial image, intermediate iterations, final) or the final result.

    Parameters
    ----------
    original : (H, W, 3) input.
    result : :class:`sempix.retarget.RetargetResult`.

    Returns
    -------
    (h, w, 3) float32 picture.
    """
    rows = []
    if result.plans:
        p = result.plans[0]
        tr = p.meta.get("transposed", False)

        def orient(a: np.ndarray) -> np.ndarray:
            return a.transpose(1, 0, 2) if tr else a

        tiles = [_tile(original, height, "input")]
        agg = importance_picture(p.meta["aggregated"])
        for e in p.src_edges[1:-1]:  # the warp's column cells on the carved grid
            agg[:, min(agg.shape[1] - 1, round(e * agg.shape[1]))] = (1.0, 1.0, 1.0)
        tiles2 = [_tile(orient(agg), height, f"aggregated, {len(p.src_edges) - 1} warp cells")]
        prot = p.meta.get("protect")
        if prot is not None and prot.shape == p.levels["image"].shape:
            base = orient(np.asarray(original, dtype=np.float32))
            m = orient(prot[..., None])
            tiles2.insert(0, _tile(base * (0.25 + 0.75 * m), height, "protected (semantic)"))
        for name in p.order:
            lv = p.levels[name]
            tiles.append(
                _tile(
                    orient(importance_picture(lv.importance, lv.removed)),
                    height,
                    f"{name}: -{lv.n_removed} seams",
                )
            )
            tiles2.append(
                _tile(orient(importance_picture(lv.scaled)), height, f"{name} scaled (Eq. 2)")
            )
        rows.append(_row(tiles))
        rows.append(_row(tiles2))
    snaps = result.snapshots or [(None, result.image)]
    tiles = []
    for k, (it, img) in enumerate(snaps):
        if it is None:
            label = result.method
        elif k == 0:
            label = "initial"
        else:
            label = f"iteration {it}" if k < len(snaps) - 1 else f"final ({it} it.)"
        tiles.append(_tile(img, height, label))
    rows.append(_row(tiles))
    w = max(r.width for r in rows)
    h = sum(r.height for r in rows) + 8 * (len(rows) - 1)
    out = Image.new("RGB", (w, h), (255, 255, 255))
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + 8
    return np.asarray(out, dtype=np.float32) / 255.0
