"""Pictures and files of soft layers: colour-coded visualisation, RGBA layers, raw alphas,
OpenRaster (.ora) layered file, stage previews."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from sempix.image import atomic_save_npy, atomic_write_bytes, fit_picture, to_uint8, write_image

# distinct colours for layer visualisation (the paper's figures use flat colours per layer)
PALETTE = np.array(
    [
        [0.90, 0.10, 0.10],
        [0.10, 0.45, 0.90],
        [0.15, 0.75, 0.20],
        [0.95, 0.75, 0.10],
        [0.60, 0.20, 0.80],
        [0.10, 0.80, 0.80],
        [0.95, 0.45, 0.10],
        [0.85, 0.30, 0.60],
        [0.50, 0.50, 0.50],
        [0.45, 0.30, 0.15],
        [0.60, 0.85, 0.30],
        [0.20, 0.20, 0.55],
    ],
    dtype=np.float32,
)


def layer_palette(k: int) -> np.ndarray:
    """(k, 3) distinct colours (cycled beyond 12, with golden-ratio hues)."""
    if k <= len(PALETTE):
        return PALETTE[:k]
    import colorsys

    extra = [colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.8, 0.9) for i in range(k - len(PALETTE))]
    return np.concatenate([PALETTE, np.array(extra, dtype=np.float32)])


def visualize_layers(alphas: np.ndarray, colors: np.ndarray | None = None) -> np.ndarray:
    """Colour-coded picture of soft layers: ``sum_k alpha_k * colour_k``.

    Parameters
    ----------
    alphas : (H, W, K) in [0, 1]; colors : (K, 3) or None (default palette).

    Returns
    -------
    (H, W, 3) float32 in [0, 1].
    """
    K = alphas.shape[2]
    pal = layer_palette(K) if colors is None else np.asarray(colors, np.float32)
    return np.clip(np.einsum("hwk,kc->hwc", alphas.astype(np.float32), pal), 0, 1)


def stack_alphas(alphas: np.ndarray) -> np.ndarray:
    """Convert soft-layer alphas to the alphas of a normal ("over") layer stack.

    With layer 0 at the bottom and ordinary alpha compositing, a stack whose layer ``k`` has
    alpha ``beta_k = alpha_k / sum_{j<=k} alpha_j`` (``beta_0 = 1``) contributes exactly
    ``alpha_k`` to every pixel, so the stack shows ``sum_k alpha_k F_k`` = the image.

    Parameters
    ----------
    alphas : (H, W, K) summing to one.

    Returns
    -------
    (H, W, K) float32 in [0, 1].
    """
    a = np.asarray(alphas, dtype=np.float64)
    cum = np.cumsum(a, axis=2)
    beta = np.where(cum > 1e-8, a / np.maximum(cum, 1e-12), 0.0)
    beta[..., 0] = 1.0
    return np.clip(beta, 0, 1).astype(np.float32)


def _grid(tiles: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    out = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        t = t if t.ndim == 3 else np.repeat(t[..., None], 3, axis=2)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = t
    return out


def eigvec_preview(eigvecs: np.ndarray, n: int = 16) -> np.ndarray:
    """Grid of the first ``n`` eigenvectors (each rescaled to [0, 1]), (H', W', 3)."""
    tiles = []
    for i in range(min(n, eigvecs.shape[2])):
        v = eigvecs[..., i]
        lo, hi = np.percentile(v, [1, 99])
        tiles.append(
            fit_picture(np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32), 512)
        )
    return _grid(tiles, cols=4)


def _png_bytes(arr_u8: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr_u8, mode=mode).save(
        buf, format="PNG", compress_level=6
    ) if mode else Image.fromarray(arr_u8).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def ora_bytes(layers_rgba: list[np.ndarray], names: list[str], merged: np.ndarray) -> bytes:
    """An OpenRaster file (zip) of RGBA layers.

    Layout (OpenRaster 0.0.x): ``mimetype`` first and stored uncompressed (``image/openraster``),
    ``stack.xml``, ``data/layerN.png``, ``mergedimage.png``, ``Thumbnails/thumbnail.png``
    (at most 256x256). The first layer in ``stack.xml`` is the top of the stack; layers use normal
    ("svg:src-over") compositing.

    Parameters
    ----------
    layers_rgba : list of (H, W, 4) float in [0, 1] (un-premultiplied).
    names : layer names; merged : (H, W, 3) float composite.
    """
    h, w = merged.shape[:2]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            zipfile.ZipInfo("mimetype"), "image/openraster", compress_type=zipfile.ZIP_STORED
        )
        entries = []
        for i, (rgba, name) in enumerate(zip(layers_rgba, names)):
            src = f"data/layer{i}.png"
            z.writestr(src, _png_bytes(to_uint8(rgba)), compress_type=zipfile.ZIP_STORED)
            entries.append(
                f'    <layer name={quoteattr(name)} src="{src}" x="0" y="0" opacity="1.0" '
                f'visibility="visible" composite-op="svg:src-over"/>'
            )
        # top of the stack first in stack.xml; we put layer 0 at the bottom
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<image version="0.0.5" w="{w}" h="{h}" xres="72" yres="72">\n'
            '  <stack name="root">\n' + "\n".join(reversed(entries)) + "\n  </stack>\n</image>\n"
        )
        z.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
        m8 = to_uint8(merged)
        z.writestr("mergedimage.png", _png_bytes(m8), compress_type=zipfile.ZIP_STORED)
        th = Image.fromarray(m8)
        th.thumbnail((256, 256))
        b = io.BytesIO()
        th.save(b, format="PNG")
        z.writestr("Thumbnails/thumbnail.png", b.getvalue(), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def save_result(
    result,
    out_dir: str | Path,
    *,
    stem: str = "layer",
    preview: bool = False,
    inputs=(),
    force: bool = False,
) -> dict[str, Path]:
    """Write a :class:`~sempix.softseg.SoftSegResult` into ``out_dir``.

    The PNG layers carry the soft-segment alphas themselves; the layers inside ``layers.ora``
    carry :func:`stack_alphas` (layer 0 opaque at the bottom) so that the normal layer stack an
    editor shows reproduces the image.

    Files: ``layer_K.png`` (RGBA: colours + alpha), ``layers_vis.png`` (colour-coded layers),
    ``alphas.npy`` ((H, W, K) float32), ``alpha_K.png`` (16-bit grey), ``layers.ora``
    (OpenRaster), ``recomposed.png``; with ``preview``: ``preview_eigenvectors.png``,
    ``preview_initial_layers.png`` (non-empty layers of the constrained sparsification),
    ``preview_grouped_layers.png`` (before the relaxed sparsification), ``preview_features.png``.

    Returns
    -------
    dict name -> path of every written file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    K = result.n_layers
    kw = {"inputs": inputs, "force": force}
    rgba = [result.layer_rgba(k) for k in range(K)]
    beta = stack_alphas(result.alphas)
    stack = [np.dstack([rgba[k][..., :3], beta[..., k]]) for k in range(K)]
    for k in range(K):
        written[f"layer_{k}"] = write_image(
            out / f"{stem}_{k}.png", rgba[k][..., :3], alpha=rgba[k][..., 3], **kw
        )
        written[f"alpha_{k}"] = write_image(
            out / f"alpha_{k}.png", result.alphas[..., k], bits=16, **kw
        )
    written["vis"] = write_image(out / "layers_vis.png", visualize_layers(result.alphas), **kw)
    written["alphas"] = atomic_save_npy(out / "alphas.npy", result.alphas.astype(np.float32), **kw)
    merged = result.recompose() if result.colors is not None else visualize_layers(result.alphas)
    written["recomposed"] = write_image(out / "recomposed.png", merged, **kw)
    names = [f"layer {k}" for k in range(K)]
    written["ora"] = atomic_write_bytes(out / "layers.ora", ora_bytes(stack, names, merged), **kw)
    if preview:
        if result.eigvecs is not None:
            written["preview_eigenvectors"] = write_image(
                out / "preview_eigenvectors.png", eigvec_preview(result.eigvecs), **kw
            )
        if result.initial is not None:
            written["preview_initial_layers"] = write_image(
                out / "preview_initial_layers.png", visualize_layers(result.initial), **kw
            )
        if result.grouped_initial is not None:
            written["preview_grouped_layers"] = write_image(
                out / "preview_grouped_layers.png", visualize_layers(result.grouped_initial), **kw
            )
        f = result.features
        if f is not None and f.shape[2] >= 3:
            lo, hi = f[..., :3].min(axis=(0, 1)), f[..., :3].max(axis=(0, 1))
            written["preview_features"] = write_image(
                out / "preview_features.png", (f[..., :3] - lo) / np.maximum(hi - lo, 1e-12), **kw
            )
    return written
