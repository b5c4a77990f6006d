"""Pictures and files of soft layers: colour-coded visualisation, RGBA layers, raw alphas,
OpenRaster (.ora) and Photoshop (.psd) layered files, stage previews."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from PIL import Image

from sempix.errors import InputError
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


PSD_DEPTHS = (8, 16)


def _mask_items(masks) -> list[tuple[str, np.ndarray]]:
    if masks is None:
        return []
    items = list(masks.items()) if isinstance(masks, dict) else list(masks)
    out = []
    for i, item in enumerate(items):
        name, m = item if isinstance(item, tuple) else (f"mask {i}", item)
        out.append((str(name), np.clip(np.asarray(m, dtype=np.float32), 0, 1)))
    return out


def psd_bytes(layers_rgba: list[np.ndarray], names: list[str], merged: np.ndarray, *,
              masks=None, depth: int = 8) -> bytes:
    """A layered Photoshop file (PSD, version 1) written with ``psd-tools``.

    Layer order: the first of ``layers_rgba`` is the bottom of the stack; every layer uses normal
    blending at full opacity, so give "over"-stack alphas (:func:`stack_alphas`) for a stack that
    shows the image. Masks become hidden, opaque grey layers (white = selected) in a group
    ``masks`` above the soft layers (turn one on to see it, or copy it into a layer mask). The
    file's composite image is computed by psd-tools from the visible layers, so readers that only
    read the composite (Pillow, file viewers) show the image.

    Parameters
    ----------
    layers_rgba : list of (H, W, 4) float in [0, 1] (un-premultiplied colour + alpha).
    names : layer names (same length).
    merged : (H, W, 3) float; only its size is used (the composite is recomputed from the layers).
    masks : dict name -> (H, W) float in [0, 1], or a list of (name, mask) pairs, or None.
    depth : 8 or 16 bits per channel (8 opens everywhere; 16 keeps the alphas finer).

    Returns
    -------
    bytes of the .psd file.

    Raises
    ------
    InputError
        Mismatched shapes, an unsupported depth, a size beyond PSD's 30000 px limit.
    """
    from psd_tools import PSDImage

    if depth not in PSD_DEPTHS:
        raise InputError(f"PSD depth must be 8 or 16 bits, got {depth}")
    if len(layers_rgba) != len(names):
        raise InputError(f"{len(layers_rgba)} layers but {len(names)} names")
    h, w = merged.shape[:2]
    if max(h, w) > 30000:
        raise InputError(
            f"a {w}x{h} image is larger than PSD allows (30000 px a side); use --format ora"
        )
    mask_items = _mask_items(masks)
    for name, m in mask_items:
        if m.shape != (h, w):
            raise InputError(f"mask {name!r} is {m.shape[1]}x{m.shape[0]}, the image is {w}x{h}")
    psd = PSDImage.new("RGB", (w, h), depth=depth)

    def _arr(a: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(a, dtype=np.float32), 0, 1)
        if depth == 8:
            return to_uint8(a)
        return np.round(a * 65535.0).astype(np.uint16)

    for rgba, name in zip(layers_rgba, names):
        if rgba.shape != (h, w, 4):
            raise InputError(f"layer {name!r} has shape {rgba.shape}, expected {(h, w, 4)}")
        psd.create_pixel_layer_from_array(_arr(rgba), name=str(name))
    if mask_items:
        mlayers = []
        for name, m in mask_items:
            layer = psd.create_pixel_layer_from_array(_arr(np.repeat(m[..., None], 3, axis=2)),
                                                      name=f"mask: {name}")
            layer.visible = False
            mlayers.append(layer)
        psd.create_group(mlayers, name="masks")
    buf = io.BytesIO()
    psd.save(buf)
    return buf.getvalue()


def save_psd(result, path: str | Path, *, masks=None, depth: int = 8, inputs=(),
             force: bool = False) -> Path:
    """Write a :class:`~sempix.softseg.SoftSegResult` as one layered PSD file.

    One layer per soft segment: its colours (``result.colors[k]``) with the "over"-stack alpha of
    :func:`stack_alphas` (layer 0 opaque at the bottom), so the stack Photoshop / GIMP / Krita
    shows recomposes the input (up to 8-bit rounding). Optional masks are stored as hidden grey
    layers in a ``masks`` group (see :func:`psd_bytes`). Written atomically.

    Parameters
    ----------
    result : SoftSegResult with colours (``result.colors`` not None).
    path : output ``.psd`` path.
    masks : dict name -> (H, W) float mask in [0, 1] (e.g. from ``sempix mask``), optional.
    depth : 8 or 16 bits per channel.
    inputs, force : see :func:`sempix.image.write_image` (never overwrite an input by accident).

    Returns
    -------
    Path of the written file.
    """
    if result.colors is None:
        raise InputError("the soft segmentation has no layer colours; cannot write a PSD")
    K = result.n_layers
    beta = stack_alphas(result.alphas)
    stack = [np.dstack([result.colors[k], beta[..., k]]) for k in range(K)]
    names = [f"layer {k}" for k in range(K)]
    data = psd_bytes(stack, names, result.recompose(), masks=masks, depth=depth)
    return atomic_write_bytes(Path(path), data, inputs=inputs, force=force)


FORMATS = ("png", "ora", "psd")


def save_result(
    result,
    out_dir: str | Path,
    *,
    stem: str = "layer",
    preview: bool = False,
    inputs=(),
    force: bool = False,
    formats=FORMATS,
    masks=None,
    psd_depth: int = 8,
) -> dict[str, Path]:
    """Write a :class:`~sempix.softseg.SoftSegResult` into ``out_dir``.

    The PNG layers carry the soft-segment alphas themselves; the layers inside ``layers.ora``
    carry :func:`stack_alphas` (layer 0 opaque at the bottom) so that the normal layer stack an
    editor shows reproduces the image.

    Files: ``layer_K.png`` (RGBA: colours + alpha), ``layers_vis.png`` (colour-coded layers),
    ``alphas.npy`` ((H, W, K) float32), ``alpha_K.png`` (16-bit grey), ``recomposed.png``
    (format ``png``); ``layers.ora`` (OpenRaster, format ``ora``); ``layers.psd`` (Photoshop,
    format ``psd``, see :func:`save_psd`; ``masks`` and ``psd_depth`` go there); with
    ``preview``: ``preview_eigenvectors.png``,
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
    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        what = ", ".join(map(repr, bad)) or "(none)"
        raise InputError(f"unknown layer file format {what}; choose from {', '.join(FORMATS)}")
    merged = result.recompose() if result.colors is not None else visualize_layers(result.alphas)
    if "png" in formats:
        for k in range(K):
            written[f"layer_{k}"] = write_image(
                out / f"{stem}_{k}.png", rgba[k][..., :3], alpha=rgba[k][..., 3], **kw
            )
            written[f"alpha_{k}"] = write_image(
                out / f"alpha_{k}.png", result.alphas[..., k], bits=16, **kw
            )
        written["vis"] = write_image(out / "layers_vis.png", visualize_layers(result.alphas), **kw)
        written["alphas"] = atomic_save_npy(
            out / "alphas.npy", result.alphas.astype(np.float32), **kw
        )
        written["recomposed"] = write_image(out / "recomposed.png", merged, **kw)
    names = [f"layer {k}" for k in range(K)]
    if "ora" in formats:
        written["ora"] = atomic_write_bytes(
            out / "layers.ora", ora_bytes(stack, names, merged), **kw
        )
    if "psd" in formats:
        data = psd_bytes(stack, names, merged, masks=masks, depth=psd_depth)
        written["psd"] = atomic_write_bytes(out / "layers.psd", data, **kw)
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
