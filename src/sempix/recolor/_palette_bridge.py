"""Bridge to :mod:`sempix.palette` (colour naming, palettes, IDW recolouring, harmonization).

The recolor tool uses the *public* API of ``sempix.palette`` (see DEVELOPING.md). While that package
is incomplete, small private fallbacks with the same behaviour are used so the recolor tool stays
usable and testable; each function prefers the palette package's implementation when it exists.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sempix.recolor._color import lab_to_rgb, rgb_to_lab

NAMES = ("black", "blue", "brown", "grey", "green", "orange", "pink", "purple", "red", "white", "yellow")


def _public(name: str):
    try:
        import sempix.palette as pal
    except Exception:  # noqa: BLE001 - palette package absent or broken: use fallbacks
        return None
    return getattr(pal, name, None)


# ----------------------------------------------------------------------------- colour naming
@functools.lru_cache(maxsize=1)
def _w2c_table() -> np.ndarray:
    from scipy.io import loadmat

    from sempix.models import get_model_path

    path = get_model_path("w2c")
    table = np.asarray(loadmat(str(path))["w2c"], dtype=np.float32)
    if table.shape != (32768, 11):
        raise ValueError(f"{path}: unexpected w2c table shape {table.shape}")
    return table


def name_probabilities(rgb: np.ndarray) -> np.ndarray:
    """Colour-name probabilities (van de Weijer 2009) of sRGB colours.

    Parameters
    ----------
    rgb : (..., 3) float32 in [0, 1].

    Returns
    -------
    (..., 11) float32, columns ordered as :data:`NAMES`.
    """
    fn = _public("name_probabilities")
    if fn is not None:
        return np.asarray(fn(np.asarray(rgb, np.float32)), dtype=np.float32)
    q = np.clip(np.floor(np.asarray(rgb, np.float32) * 255.0 / 8.0), 0, 31).astype(np.int64)
    idx = q[..., 0] + 32 * q[..., 1] + 1024 * q[..., 2]
    return _w2c_table()[idx]


def color_names(rgb: np.ndarray) -> np.ndarray:
    """Index into :data:`NAMES` of the most probable basic colour name, shape (...)."""
    return np.argmax(name_probabilities(rgb), axis=-1)


# ----------------------------------------------------------------------------- palettes
@dataclass
class SimplePalette:
    """Palette: ``rgb`` (k, 3) f32, ``lab`` (k, 3) f32, ``weights`` (k,) f32 summing to 1."""

    rgb: np.ndarray
    lab: np.ndarray
    weights: np.ndarray


def _fallback_palette(image: np.ndarray, k: int | None, mask: np.ndarray | None) -> SimplePalette:
    """Weighted k-means in Lab on a 16^3 RGB histogram; k chosen in 2..7 by explained variance 0.93."""

    px = image.reshape(-1, 3)
    if mask is not None:
        px = px[np.asarray(mask, bool).reshape(-1)]
    if px.shape[0] == 0:
        px = image.reshape(-1, 3)
    q = np.clip((px * 16).astype(np.int64), 0, 15)
    key = q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2]
    counts = np.bincount(key, minlength=4096).astype(np.float64)
    sums = np.stack([np.bincount(key, weights=px[:, c], minlength=4096) for c in range(3)], 1)
    nz = counts > 0
    cols = (sums[nz] / counts[nz, None]).astype(np.float32)
    w = counts[nz] / counts[nz].sum()
    lab = rgb_to_lab(cols).astype(np.float64)

    def wkmeans(kk: int) -> tuple[np.ndarray, np.ndarray, float]:
        rng = np.random.default_rng(0)
        # weighted k-means++ seeding
        centres = [lab[np.argmax(w)]]
        for _ in range(1, kk):
            d = np.min(((lab[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
            p = w * d
            if p.sum() <= 0:
                break
            centres.append(lab[rng.choice(len(lab), p=p / p.sum())])
        c = np.array(centres)
        for _ in range(30):
            a = np.argmin(((lab[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
            newc = c.copy()
            for j in range(len(c)):
                m = a == j
                if m.any():
                    newc[j] = np.average(lab[m], axis=0, weights=w[m])
            if np.allclose(newc, c):
                break
            c = newc
        a = np.argmin(((lab[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        sse = float(np.sum(w * ((lab - c[a]) ** 2).sum(-1)))
        return c, np.bincount(a, weights=w, minlength=len(c)), sse

    mean = np.average(lab, axis=0, weights=w)
    total = float(np.sum(w * ((lab - mean) ** 2).sum(-1))) + 1e-12
    if k is None:
        for kk in range(2, 8):
            c, cw, sse = wkmeans(kk)
            if 1 - sse / total >= 0.93:
                break
    else:
        c, cw, sse = wkmeans(int(k))
    keep = cw > 0
    c, cw = c[keep], cw[keep]
    order = np.argsort(-cw)
    c, cw = c[order].astype(np.float32), (cw[order] / cw.sum()).astype(np.float32)
    return SimplePalette(lab_to_rgb(c), c, cw)


def extract_palette(image: np.ndarray, *, k: int | None = None, mask: np.ndarray | None = None):
    """Palette of an image (``sempix.palette.extract_palette`` when available).

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1].
    k : number of colours or None (automatic, 2..7).
    mask : (H, W) bool/float or None; only pixels inside are used.

    Returns
    -------
    An object with ``rgb`` (k, 3), ``lab`` (k, 3) and ``weights`` (k,).
    """
    fn = _public("extract_palette")
    if fn is not None:
        kwargs = {"k": k}
        if mask is not None:
            kwargs["mask"] = np.asarray(mask) > 0.5
        pal = fn(image, **kwargs)
        lab = np.asarray(pal.lab, np.float32)
        w = np.asarray(pal.weights, np.float32)
        w = w / max(float(w.sum()), 1e-12)
        return SimplePalette(np.asarray(pal.rgb, np.float32), lab, w)
    return _fallback_palette(image, k, None if mask is None else np.asarray(mask) > 0.5)


# ----------------------------------------------------------------------------- recolouring
def _fallback_recolor(image: np.ndarray, src_lab: np.ndarray, tgt_lab: np.ndarray) -> np.ndarray:
    lab = rgb_to_lab(image)
    ab = lab[..., 1:].reshape(-1, 2).astype(np.float32)
    s = np.asarray(src_lab, np.float32)[:, 1:]
    d = np.asarray(tgt_lab, np.float32)[:, 1:] - s
    dist2 = ((ab[:, None, :] - s[None]) ** 2).sum(-1)
    w = 1.0 / (dist2 + 1e-4)
    w /= w.sum(1, keepdims=True)
    ab = ab + w @ d
    out = lab.copy()
    out[..., 1:] = ab.reshape(lab.shape[:-1] + (2,))
    return lab_to_rgb(out)


def recolor_palette(image: np.ndarray, src_lab: np.ndarray, tgt_lab: np.ndarray) -> np.ndarray:
    """IDW palette recolouring in ab with L unchanged; ``image`` (..., 3) -> same shape, float32."""
    fn = _public("recolor_palette")
    img = np.asarray(image, np.float32)
    if fn is not None:
        return np.asarray(fn(img, np.asarray(src_lab, np.float32), np.asarray(tgt_lab, np.float32)),
                          dtype=np.float32)
    return _fallback_recolor(img, src_lab, tgt_lab)


def harmonize_colors(rgb: np.ndarray) -> np.ndarray:
    """Nearest same-name saturated prototype of each colour (``sempix.palette.harmonize_colors``).

    Raises RuntimeError when the palette package does not provide it.
    """
    fn = _public("harmonize_colors")
    if fn is None:
        raise RuntimeError("sempix.palette.harmonize_colors is not available")
    return np.asarray(fn(np.asarray(rgb, np.float32)), dtype=np.float32)
