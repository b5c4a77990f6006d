"""Pictures for seam carving: energy maps and the paper's Figure-4 comparison (lam = 0, 1, 0.2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sempix.color import colormap
from sempix.image import fit_picture
from sempix.progress import ProgressFn, sub_progress


def colorize_energy(energy: np.ndarray, *, vmax: float | None = None) -> np.ndarray:
    """Energy map -> (H, W, 3) float32 picture in [0, 1].

    Values are divided by ``vmax`` (default: the 99th percentile), square-rooted (so that weak
    edges stay visible) and mapped through a magma-like colormap.
    """
    e = np.asarray(energy, dtype=np.float32)
    if vmax is None:
        vmax = float(np.percentile(e, 99)) if e.size else 1.0
    v = np.sqrt(np.clip(e / max(vmax, 1e-12), 0.0, 1.0))
    return colormap(v)


def _label(pic: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in a dark band above ``pic``."""
    from PIL import Image, ImageDraw, ImageFont

    _H, W = pic.shape[:2]
    size = max(11, min(28, W // 18))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    band = Image.new("RGB", (W, size + 10), (24, 24, 24))
    ImageDraw.Draw(band).text((6, 4), text, fill=(240, 240, 240), font=font)
    top = np.asarray(band, dtype=np.float32) / 255.0
    return np.concatenate([top, pic[..., :3]], axis=0)


def _grid(cells: list[list[np.ndarray]], gap: int = 6) -> np.ndarray:
    rows = []
    width = max(sum(c.shape[1] for c in row) + gap * (len(row) - 1) for row in cells)
    for row in cells:
        h = max(c.shape[0] for c in row)
        line = np.ones((h, width, 3), np.float32)
        x = 0
        for c in row:
            line[: c.shape[0], x : x + c.shape[1]] = c[..., :3]
            x += c.shape[1] + gap
        rows.append(line)
        rows.append(np.ones((gap, width, 3), np.float32))
    return np.concatenate(rows[:-1], axis=0)


def energy_figure(
    image: np.ndarray,
    features: np.ndarray | None,
    width=None,
    height=None,
    *,
    lams: Sequence[float] = (0.0, 1.0, 0.2),
    results: bool = True,
    semantic: bool = True,
    progress: ProgressFn | None = None,
    **carve_kw,
) -> np.ndarray:
    """The paper's Figure 4: combined energy for several ``lam`` side by side (+ carved results).

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1].
    features : (H, W, D) semantic features aligned with the image (needed for lam > 0).
    width, height : target size for the result row (as for :func:`sempix.carve.carve`).
    lams : the lambdas to compare (default 0 = RGB only, 1 = semantic only, 0.2 = sempix).
    results : add a second row with each carved result and a third with its seams.
    semantic : False when ``features`` are not semantic (the weight-free ``lowlevel`` fallback); the
        labels then say "low-level features" instead of "semantic".
    carve_kw : more :func:`sempix.carve.carve` options (energy, order, keep...).

    Returns
    -------
    (H', W', 3) float32 picture: one column per lambda.
    """
    from sempix.carve.core import carve

    cols = []
    n = len(lams)
    for k, lam in enumerate(lams):
        sub = sub_progress(progress, k / n, (k + 1) / n)
        res = carve(
            image,
            width if results else None,
            height if results else None,
            features=features if lam > 0 else None,
            lam=lam,
            progress=sub,
            **carve_kw,
        )
        if lam == 0:
            name = "RGB only"
        elif semantic:
            name = "semantic only" if lam == 1 else "combined"
        else:  # the weight-free fallback features: say so on the picture
            name = "low-level only" if lam == 1 else "RGB + low-level"
        # panels at most MAX_PANEL_SIDE (fit_picture): the figure stays bounded for any input size
        col = [
            _label(fit_picture(colorize_energy(res.energy)), f"energy, lambda = {lam:g} ({name})")
        ]
        if results:
            col.append(
                _label(
                    fit_picture(res.image[..., :3]),
                    f"carved {res.image.shape[1]}x{res.image.shape[0]}, lambda = {lam:g}",
                )
            )
            col.append(_label(fit_picture(res.seams_vis(image)), "seams"))
        cols.append(col)
    rows = [[cols[c][r] for c in range(n)] for r in range(len(cols[0]))]
    return np.clip(_grid(rows), 0.0, 1.0)
