"""Image I/O: read any common format into float32 RGB in [0, 1]; write atomically.

(Initial version; hardened by the foundation work: EXIF orientation, 16-bit, CMYK, ICC, limits.)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from sempix.errors import InputError

DEFAULT_MAX_PIXELS = 100_000_000


@dataclass
class LoadedImage:
    """An image read from disk.

    Attributes
    ----------
    rgb : (H, W, 3) float32 in [0, 1], sRGB-encoded values (not linearised).
    alpha : (H, W) float32 in [0, 1] or None.
    icc : ICC profile bytes or None.
    path : source path.
    format : Pillow format name (``"JPEG"``, ``"PNG"``...).
    bit_depth : 8 or 16 (bits per channel of the source).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    icc: bytes | None = None
    path: Path | None = None
    format: str | None = None
    bit_depth: int = 8
    info: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> LoadedImage:
    """Read an image file. Raises :class:`InputError` (one line) for anything unusable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        with PILImage.open(p) as im:
            im = ImageOps.exif_transpose(im)
            icc = im.info.get("icc_profile")
            fmt = im.format
            alpha = None
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                arr = np.asarray(im, dtype=np.float32) / 255.0
                rgb, alpha = arr[..., :3], arr[..., 3]
            else:
                rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{p}: cannot read image ({exc})") from None
    return LoadedImage(np.ascontiguousarray(rgb), alpha, icc, p, fmt)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Shortcut: (H, W, 3) float32 RGB in [0, 1]."""
    return read_image(path).rgb


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 with rounding and clipping."""
    return np.clip(np.rint(np.asarray(arr, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str | os.PathLike, rgb: np.ndarray, *, alpha: np.ndarray | None = None,
                icc: bytes | None = None, inputs: tuple = (), force: bool = False,
                quality: int = 95) -> Path:
    """Write (H, W, 3) or (H, W) float [0, 1] atomically (temp file + rename).

    Refuses to overwrite any path in ``inputs`` unless ``force``.
    """
    p = Path(path)
    for src in inputs:
        if src is not None and Path(src).exists() and p.exists() and os.path.samefile(p, src) and not force:
            raise InputError(f"{p}: refusing to overwrite an input file (use --force)")
    arr = to_uint8(rgb)
    if alpha is not None:
        arr = np.dstack([arr, to_uint8(alpha)])
    im = PILImage.fromarray(arr)
    fmt = PILImage.registered_extensions().get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"{p}: unknown output format {p.suffix!r}")
    kw = {}
    if fmt == "JPEG":
        kw["quality"] = quality
        if im.mode == "RGBA":
            im = im.convert("RGB")
    if icc:
        kw["icc_profile"] = icc
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        im.save(tmp, format=fmt, **kw)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p
