"""Image I/O: read any common format into float32 RGB in [0, 1]; write atomically.

Reading (:func:`read_image`)
    JPEG, PNG, TIFF, WebP, BMP (and anything else Pillow opens; first frame of multi-frame files).

    * EXIF orientation is applied (the returned array is upright).
    * Greyscale, 1-bit and palette images become RGB (three equal channels for grey).
    * RGBA / LA / PA / palette-with-transparency keep their alpha in ``LoadedImage.alpha``.
    * 16-bit sources keep full precision (``bit_depth=16``): 16-bit greyscale (Pillow ``I;16``),
      16-bit RGB(A)/grey-alpha PNG (decoded here, Pillow would truncate to 8 bits) and 16-bit RGB(A)
      TIFF (through ``tifffile``).
    * CMYK is converted to RGB with the embedded ICC profile (``PIL.ImageCms``) when there is one,
      else with Pillow's plain conversion; the result is sRGB, so ``icc`` is then None.
      Other embedded ICC profiles are *not* applied: values stay in the file's colour space and
      the profile is passed on (``LoadedImage.icc``) so that outputs can carry it.
    * Decompression-bomb guard: the *declared* size in the header is checked before any pixel is
      decoded; more than ``max_pixels`` (argument, else ``$SEMPIX_MAX_PIXELS``, else 100 MP;
      0 or negative = no limit) raises :class:`InputError`.
    * Missing, empty, truncated, corrupt or non-image files raise :class:`InputError` with one line
      (typed: :class:`~sempix.errors.ImageDecodeError`, :class:`~sempix.errors.TooLargeError`,
      :class:`~sempix.errors.UnsupportedFormatError`).
    * The source is a path, the file's bytes, or a binary file object (read completely): the web
      server decodes uploads from memory, never through a temporary file. Messages name the path,
      else ``name=`` (default: the file object's ``name``, else ``"image data"``).

Writing (:func:`write_image`, :func:`atomic_write_bytes`, :func:`atomic_save_npy`,
:func:`atomic_save_npz`, :func:`atomic_output`)
    Everything is written to a temporary file in the destination folder and renamed over the
    final name (``os.replace``), so a crash or error never leaves a partial file under the
    final name. A path listed in ``inputs`` is never overwritten unless ``force=True``.
    ``bits=16`` writes 16-bit PNG or TIFF; the ICC profile is embedded when given.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from sempix import _config
from sempix._config import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV  # noqa: F401 (re-exported)
from sempix.color.convert import luma
from sempix.errors import (
    ImageDecodeError,
    InputError,
    TooLargeError,
    UnsupportedFormatError,
)

#: output suffix -> Pillow format
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}

_PNG_SIG = b"\x89PNG\r\n\x1a\n"


@dataclass
class LoadedImage:
    """An image read from disk.

    Attributes
    ----------
    rgb : (H, W, 3) float32 in [0, 1], values as stored (sRGB-encoded unless ``icc`` says
        otherwise).
    alpha : (H, W) float32 in [0, 1] or None.
    icc : ICC profile bytes to carry to outputs, or None (sRGB).
    path : source path (None when read from bytes or a file object).
    format : Pillow format name (``"JPEG"``, ``"PNG"``...).
    bit_depth : bits per channel of the source (8, 16; 32 for float TIFF).
    info : extra facts: ``mode`` (Pillow mode of the source), ``orientation`` (EXIF value that
        was applied), ``frames`` (number of frames; only the first is read).
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
        """(H, W)."""
        return self.rgb.shape[:2]


# ---------------------------------------------------------------------------------------------
# limits and small helpers


#: what :func:`read_image` and :func:`read_mask` read from: a path, the file's bytes, or a binary
#: file object (read completely)
ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class _Source:
    """One image source: a file path, or bytes held in memory. ``label`` names it in messages."""

    __slots__ = ("path", "data", "label")

    def __init__(self, path: Path | None, data: bytes | None, label: str):
        self.path, self.data, self.label = path, data, label

    def __str__(self) -> str:
        return self.label

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        return open(self.path, "rb")  # noqa: SIM115 - the caller owns (closes) it

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return self.data[:n]
        with open(self.path, "rb") as f:
            return f.read(n)

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()

    def tifffile_arg(self):
        """What ``tifffile`` opens: the path, or a file object over the bytes."""
        return self.path if self.data is None else io.BytesIO(self.data)


def _source(src: ImageSource, name: str | None = None) -> _Source:
    """Resolve a path / bytes / binary file object into a :class:`_Source` (no decoding)."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _Source(None, bytes(src), name or "image data")
    if hasattr(src, "read"):
        try:
            data = src.read()
        except (OSError, ValueError) as exc:
            label = name or str(getattr(src, "name", "") or "image data")
            raise InputError(f"{label}: cannot read ({_one_line(exc)})") from None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError(
                f"{name or 'image data'}: expected a binary file object (open it with 'rb'), "
                f"got one that returns {type(data).__name__}"
            )
        fname = getattr(src, "name", None)
        label = name or (str(fname) if isinstance(fname, (str, os.PathLike)) else "image data")
        return _Source(None, bytes(data), label)
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        return _Source(p, None, name or str(p))
    raise TypeError(
        f"cannot read an image from {type(src).__name__}: give a path, bytes or a binary file"
    )


def resolve_max_pixels(max_pixels: int | None = None) -> int | None:
    """The pixel limit in force (see :func:`sempix._config.max_pixels`); None = no limit."""
    return _config.max_pixels(max_pixels)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_size(p: _Source, size: tuple[int, int], limit: int | None) -> None:
    w, h = int(size[0]), int(size[1])
    if w <= 0 or h <= 0:
        raise ImageDecodeError(f"{p}: image has no pixels ({w}x{h})")
    if limit is not None and w * h > limit:
        raise TooLargeError(
            f"{p}: image is {w}x{h} = {w * h:,} pixels, above the limit of {limit:,} "
            f"(raise it with {_config.MAX_PIXELS_ENV}=N if you trust this file)",
            size=(w, h),
        )


def _open_pil(p: _Source) -> PILImage.Image:
    """Open ``p`` (a path or bytes; header only) with Pillow's registered format plugins,
    without Pillow's process-wide decompression-bomb check: sempix applies its own, per-call
    pixel limit (:func:`_check_size`) right after, so no global state
    (``PIL.Image.MAX_IMAGE_PIXELS``, warning filters) is touched and concurrent readers (web
    worker threads) stay independent.

    This is what ``PIL.Image.open`` does (``preinit``/``init``, then each plugin's ``accept`` and
    factory over the registered ``ID`` list), minus the size check.
    """
    PILImage.preinit()
    fp = p.open()  # the image object owns the file (closed by ``with im``)
    filename = str(p.path) if p.path is not None else ""
    try:
        prefix = fp.read(16)
        for attempt in (0, 1):
            if attempt:
                PILImage.init()
            for fmt in PILImage.ID:
                factory, accept = PILImage.OPEN[fmt]
                result = accept(prefix) if accept else True
                if not result or isinstance(result, str):
                    continue
                fp.seek(0)
                try:
                    im = factory(fp, filename)
                except (SyntaxError, IndexError, TypeError, struct.error):
                    continue
                im._exclusive_fp = True  # close the file with the image
                return im
        raise UnidentifiedImageError(f"cannot identify image file {p.label!r}")
    except BaseException:
        fp.close()
        raise


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W[, C])
    array, like ``ImageOps.exif_transpose``."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = np.swapaxes(arr[::-1, ::-1], 0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def _exif_orientation(im: PILImage.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - broken EXIF is not worth failing for
        return 1
    return value if 1 <= value <= 8 else 1


# ---------------------------------------------------------------------------------------------
# 16-bit PNG (Pillow reads 16-bit colour PNGs as 8 bits; we decode them ourselves)


def _png_header(p: _Source) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of a PNG, or None if not a PNG."""
    head = p.head(33)
    if len(head) < 33 or head[:8] != _PNG_SIG or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return w, h, depth, ctype, interlace


_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _png_unfilter(raw: np.ndarray, H: int, stride: int, bpp: int) -> np.ndarray:
    """PNG unfilter (all five filter types), numba-compiled (:mod:`sempix._png_kernels`)."""
    from sempix._png_kernels import unfilter

    out, ok = unfilter(np.ascontiguousarray(raw, dtype=np.uint8), int(H), int(stride), int(bpp))
    if not ok:
        raise ImageDecodeError("corrupt PNG data (bad filter type)")
    return out


def _png_chunks(p: _Source) -> tuple[tuple[int, int, int] | None, list[bytes], dict]:
    """Walk a PNG's chunks -> ((width, height, colour type) or None, IDAT bodies, {"trns", "icc"}).

    Raises
    ------
    InputError
        A chunk runs past the end of the file (one line).
    """
    data = p.read_bytes()
    pos, idat, info = 8, [], {}
    ihdr = None
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ImageDecodeError(f"{p}: truncated PNG file")
        pos += 12 + length
        if kind == b"IHDR":
            w, h, _depth, ctype = struct.unpack(">IIBB", body[:10])
            ihdr = (w, h, ctype)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"tRNS":
            info["trns"] = body
        elif kind == b"iCCP":
            name_end = body.find(b"\0")
            with contextlib.suppress(zlib.error):
                info["icc"] = zlib.decompress(body[name_end + 2 :])
        elif kind == b"IEND":
            break
    return ihdr, idat, info


def _check_png_data(p: _Source, hdr: tuple[int, int, int, int, int]) -> None:
    """Raise :class:`InputError` when a non-interlaced PNG's image data is shorter than its header
    says.

    Pillow pads a short final row with zeros without an error; this counts the decompressed bytes
    (streamed, 1 MiB at a time, so memory stays small) against ``height * (1 + row bytes)``.
    """
    w, h, depth, ctype, interlace = hdr
    if interlace:
        return
    channels = 1 if ctype == 3 else _PNG_CHANNELS.get(ctype)
    if channels is None:
        return
    expected = h * (1 + (w * channels * depth + 7) // 8)
    _, idat, _ = _png_chunks(p)
    d = zlib.decompressobj()
    buf, total = b"".join(idat), 0
    try:
        while buf and total < expected:
            total += len(d.decompress(buf, 1 << 20))
            buf = d.unconsumed_tail
    except zlib.error as exc:
        raise ImageDecodeError(f"{p}: corrupt PNG data ({exc})") from None
    if total < expected:
        raise ImageDecodeError(
            f"{p}: damaged PNG file: truncated image data ({total} of {expected} bytes)"
        )


def _read_png16(p: _Source) -> tuple[np.ndarray, dict]:
    """Decode a non-interlaced 16-bit PNG -> ((H, W, C) uint16, chunks info)."""
    ihdr, idat, info = _png_chunks(p)
    if ihdr is None or not idat:
        raise ImageDecodeError(f"{p}: truncated PNG file (no image data)")
    w, h, ctype = ihdr
    C = _PNG_CHANNELS.get(ctype)
    if C is None:
        raise UnsupportedFormatError(f"{p}: unsupported PNG colour type {ctype} at 16 bits")
    stride = w * C * 2
    expected = h * (stride + 1)
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), expected)
    except zlib.error as exc:
        raise ImageDecodeError(f"{p}: corrupt PNG data ({exc})") from None
    if len(raw) < expected:
        raise ImageDecodeError(f"{p}: truncated PNG file (image data ends early)")
    rows = _png_unfilter(np.frombuffer(raw, np.uint8), h, stride, C * 2)
    arr = rows.view(">u2").reshape(h, w, C).astype(np.uint16)
    trns = info.get("trns")
    if trns is not None and ctype in (0, 2):  # one fully transparent colour -> alpha
        key = np.frombuffer(trns[: 2 * C], ">u2").astype(np.uint16)
        if key.size == C:
            alpha = np.where(np.all(arr == key, axis=-1), 0, 65535).astype(np.uint16)
            arr = np.dstack([arr, alpha])
    return arr, info


def _encode_png16(arr: np.ndarray, icc: bytes | None = None, filter_type: int = 2) -> bytes:
    """Encode (H, W, C) uint16 (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG."""
    arr = np.asarray(arr, np.uint16)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    H, W, C = arr.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[C]
    bpp = 2 * C
    x = arr.astype(">u2").view(np.uint8).reshape(H, W * bpp).astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    if filter_type == 0:
        f = x
    elif filter_type == 1:
        f = x - a
    elif filter_type == 2:
        f = x - b
    elif filter_type == 3:
        f = x - (a + b) // 2
    elif filter_type == 4:
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        f = x - pred
    else:
        raise ValueError(f"bad filter type {filter_type}")
    rows = np.empty((H, W * bpp + 1), np.uint8)
    rows[:, 0] = filter_type
    rows[:, 1:] = (f & 255).astype(np.uint8)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    out = [_PNG_SIG, chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, ctype, 0, 0, 0))]
    if icc:
        out.append(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    out.append(chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# reading


def _split_u16(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, C) uint16 with C in 1..4 (grey, grey+alpha, RGB, RGBA) -> float RGB, alpha."""
    f = arr.astype(np.float32) * np.float32(1.0 / 65535.0)
    C = f.shape[2]
    if C == 1:
        return np.repeat(f, 3, axis=2), None
    if C == 2:
        return np.repeat(f[..., :1], 3, axis=2), f[..., 1]
    if C == 3:
        return f, None
    return f[..., :3], f[..., 3]


def _tiff16(p: _Source, im: PILImage.Image) -> np.ndarray | None:
    """Full-precision 16-bit multi-sample TIFF via tifffile, else None (Pillow handles it)."""
    try:
        bits = im.tag_v2.get(258)
    except AttributeError:
        return None
    if bits is None:
        return None
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    if len(bits) < 2 or max(bits) != 16:
        return None
    import tifffile

    arr = tifffile.imread(p.tifffile_arg(), key=0)
    if arr.dtype != np.uint16:
        return None
    if arr.ndim == 3 and arr.shape[0] in (2, 3, 4) and arr.shape[2] not in (2, 3, 4):  # planar
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim != 3 or arr.shape[2] not in (2, 3, 4):
        return None
    return arr


def _decode(p: _Source, im: PILImage.Image) -> LoadedImage:
    fmt = im.format
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    frames = int(getattr(im, "n_frames", 1) or 1)
    orientation = _exif_orientation(im)
    info = {"mode": mode, "orientation": orientation, "frames": frames}
    alpha = None
    bit_depth = 8

    u16 = None
    if fmt == "PNG":
        hdr = _png_header(p)
        if hdr is not None and hdr[2] == 16 and hdr[4] == 0:
            u16, chunks = _read_png16(p)
            icc = chunks.get("icc", icc)
        elif hdr is not None:
            _check_png_data(p, hdr)
    elif fmt == "TIFF":
        u16 = _tiff16(p, im)
    if u16 is not None:
        rgb, alpha = _split_u16(u16)
        bit_depth = 16
    else:
        im.load()  # decode now: truncated/corrupt data raises here
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            a = np.asarray(im).astype(np.float32)
            rgb = np.repeat((np.clip(a, 0, 65535) / np.float32(65535.0))[..., None], 3, axis=2)
            bit_depth = 16
        elif mode == "F":
            a = np.clip(np.nan_to_num(np.asarray(im, np.float32)), 0.0, 1.0)
            rgb = np.repeat(a[..., None], 3, axis=2)
            bit_depth = 32
        elif mode == "CMYK":
            rgb_im = None
            if icc:
                from PIL import ImageCms

                with contextlib.suppress(Exception):
                    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                    dst = ImageCms.createProfile("sRGB")
                    rgb_im = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            info["cmyk_icc"] = rgb_im is not None
            if rgb_im is None:
                rgb_im = im.convert("RGB")
            icc = None  # now sRGB
            rgb = np.asarray(rgb_im, np.float32) / np.float32(255.0)
        elif (
            mode in ("RGBA", "LA", "PA", "La", "RGBa")
            or (mode == "P" and "transparency" in im.info)
            or (mode in ("L", "RGB") and "transparency" in im.info)
        ):
            a = np.asarray(im.convert("RGBA"), np.float32) / np.float32(255.0)
            rgb, alpha = a[..., :3], a[..., 3]
        else:
            rgb = np.asarray(im.convert("RGB"), np.float32) / np.float32(255.0)
    rgb = _orient(rgb, orientation)
    if alpha is not None:
        alpha = _orient(alpha, orientation)
    return LoadedImage(
        np.ascontiguousarray(rgb, np.float32),
        None if alpha is None else np.ascontiguousarray(alpha, np.float32),
        icc,
        p.path,
        fmt,
        bit_depth,
        info,
    )


def _is_tiff(p: _Source) -> bool:
    return p.head(4) in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def _read_tiff_fallback(p: _Source, limit: int | None) -> LoadedImage:
    """TIFF layouts Pillow cannot open, through tifffile (first page)."""
    import tifffile

    try:
        with tifffile.TiffFile(p.tifffile_arg()) as tf:
            page = tf.pages[0]
            h, w = int(page.imagelength), int(page.imagewidth)
            _check_size(p, (w, h), limit)
            arr = page.asarray()
            tag = page.tags.get(274)
            orientation = int(tag.value) if tag is not None else 1
            icc_tag = page.tags.get(34675)
            icc = bytes(icc_tag.value) if icc_tag is not None else None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ImageDecodeError(f"{p}: cannot read TIFF image ({_one_line(exc)})") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise UnsupportedFormatError(f"{p}: unsupported TIFF layout {arr.shape}")
    if arr.dtype == np.uint16:
        u16, depth = arr, 16
    elif arr.dtype == np.uint8:
        u16, depth = arr.astype(np.uint16) * 257, 8
    elif arr.dtype.kind == "f":
        u16, depth = to_uint16(arr), 32
    else:
        raise UnsupportedFormatError(f"{p}: unsupported TIFF sample type {arr.dtype}")
    rgb, alpha = _split_u16(u16)
    rgb = _orient(rgb, orientation if 1 <= orientation <= 8 else 1)
    if alpha is not None:
        alpha = _orient(alpha, orientation if 1 <= orientation <= 8 else 1)
    info = {"mode": f"tifffile:{arr.dtype}x{arr.shape[2]}", "orientation": orientation, "frames": 1}
    return LoadedImage(rgb, alpha, icc, p.path, "TIFF", depth, info)


def _check_readable(p: _Source) -> None:
    if p.data is not None:
        if not p.data:
            raise ImageDecodeError(f"{p}: no data (0 bytes)")
        return
    path = p.path
    if not path.exists():
        raise InputError(f"{p}: no such file")
    if path.is_dir():
        raise InputError(f"{p}: is a directory, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    if size == 0:
        raise ImageDecodeError(f"{p}: file is empty")


def read_image(
    path: ImageSource, *, max_pixels: int | None = None, name: str | None = None
) -> LoadedImage:
    """Read an image into float32 RGB in [0, 1] (see the module docstring for the rules).

    Parameters
    ----------
    path : a file path, the file's bytes (``bytes``/``bytearray``/``memoryview``) or a binary
        file object (read completely; e.g. ``io.BytesIO``, an upload, ``open(f, "rb")``).
    max_pixels : int or None
        Largest accepted width x height (declared in the header, checked before decoding).
        None -> ``$SEMPIX_MAX_PIXELS`` or 100 MP; <= 0 -> no limit.
    name : how messages name the source (default: the path; for bytes / file objects the
        object's ``name`` attribute, else ``"image data"``).

    Returns
    -------
    LoadedImage
        ``.rgb`` (H, W, 3) float32, ``.alpha`` (H, W) float32 or None, ``.icc``, ``.bit_depth``;
        ``.path`` is None for bytes and file objects.

    Raises
    ------
    InputError
        Missing, empty, truncated, corrupt, unsupported or too large files (one line):
        ``ImageDecodeError`` (empty, truncated, corrupt), ``UnsupportedFormatError`` (not an
        image), ``TooLargeError`` (above ``max_pixels``), plain ``InputError`` (bad path).
    """
    p = _source(path, name)
    _check_readable(p)
    limit = resolve_max_pixels(max_pixels)
    try:
        im = _open_pil(p)
    except UnidentifiedImageError:
        if _is_tiff(p):  # e.g. 16-bit grey+alpha TIFF, which Pillow cannot open
            return _read_tiff_fallback(p, limit)
        raise UnsupportedFormatError(
            f"{p}: not an image file that can be read (JPEG, PNG, TIFF, WebP, BMP, ...)"
        ) from None
    except OSError as exc:
        if p.data is None:  # the path (permissions, ...)
            raise InputError(f"{p}: cannot read image ({_one_line(exc)})") from None
        raise ImageDecodeError(f"{p}: cannot read image ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001
        raise ImageDecodeError(f"{p}: cannot read image ({_one_line(exc)})") from None
    try:
        with im, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's damaged-file warnings: errors are raised
            _check_size(p, im.size, limit)
            return _decode(p, im)
    except InputError:
        raise
    except PILImage.DecompressionBombError:
        raise TooLargeError(
            f"{p}: image is larger than the pixel limit (raise it with {_config.MAX_PIXELS_ENV}=N "
            "if you trust this file)"
        ) from None
    except UnidentifiedImageError:
        raise UnsupportedFormatError(
            f"{p}: not an image file that can be read (JPEG, PNG, TIFF, WebP, BMP, ...)"
        ) from None
    except MemoryError:
        raise TooLargeError(f"{p}: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise anything on bad data
        msg = _one_line(exc)
        if "truncat" in msg.lower() or isinstance(exc, (EOFError, struct.error)):
            raise ImageDecodeError(f"{p}: truncated or damaged image file ({msg})") from None
        raise ImageDecodeError(f"{p}: cannot read image ({msg})") from None


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Shortcut: (H, W, 3) float32 RGB in [0, 1] (alpha dropped)."""
    return read_image(path).rgb


def read_mask(
    path: ImageSource,
    shape: tuple[int, ...] | None = None,
    *,
    max_pixels: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Read a mask as (H, W) float32 in [0, 1].

    The mask is the alpha channel when the file has one that is not fully opaque, else the
    grey value (Rec. 709 luma of RGB files; full precision for 16-bit files). ``.npy`` files
    holding an (H, W) bool/float array (or uint8 0..255 / uint16 0..65535) are accepted too
    (by suffix for paths, by the ``.npy`` magic bytes for bytes and file objects).

    Parameters
    ----------
    path : mask file path, its bytes, or a binary file object (as :func:`read_image`).
    shape : expected (H, W) (extra trailing entries, e.g. an image's (H, W, 3), are ignored).
    name : how messages name a bytes / file-object source.

    Raises
    ------
    InputError
        Unreadable file, or a size that differs from ``shape``.
    """
    p = _source(path, name)
    if p.data is not None:
        is_npy = p.data[:6] == b"\x93NUMPY"
    else:
        is_npy = p.path.suffix.lower() == ".npy"
    if is_npy:
        _check_readable(p)
        try:
            with p.open() as f:
                arr = np.load(f, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise ImageDecodeError(f"{p}: cannot read mask ({_one_line(exc)})") from None
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2:
            raise InputError(f"{p}: a mask must be a 2-D (H, W) array, got shape {arr.shape}")
        if arr.dtype == np.uint8:
            m = arr.astype(np.float32) / 255.0
        elif arr.dtype == np.uint16:
            m = arr.astype(np.float32) / 65535.0
        else:
            m = np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
    else:
        img = read_image(
            p.path if p.data is None else p.data, max_pixels=max_pixels, name=p.label
        )
        if img.alpha is not None and float(img.alpha.min()) < 1.0:
            m = img.alpha
        else:
            m = luma(img.rgb)  # Rec.709 weights on the encoded values
    m = np.ascontiguousarray(np.clip(m, 0.0, 1.0), dtype=np.float32)
    if shape is not None:
        H, W = int(shape[0]), int(shape[1])
        if m.shape != (H, W):
            raise InputError(
                f"{p}: mask is {m.shape[1]}x{m.shape[0]} but the image is {W}x{H} (they must match)"
            )
    return m


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 with rounding and clipping (NaN -> 0)."""
    a = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def to_uint16(arr: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint16 with rounding and clipping (NaN -> 0)."""
    a = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0)
    return np.clip(np.rint(a.astype(np.float64) * 65535.0), 0, 65535).astype(np.uint16)


# ---------------------------------------------------------------------------------------------
# atomic writing


#: Longest side of one panel of a preview / figure picture (issue 12: a 5000x1 input made a
#: 1,800,000-pixel-wide preview).
MAX_PANEL_SIDE = 1600


def fit_size(width: int, height: int, *, max_width: int, max_height: int) -> tuple[int, int]:
    """Size of a ``width`` x ``height`` picture scaled (up or down) to fit in the box, aspect kept.

    Both sides stay >= 1, so extreme aspect ratios (5000x1) give a thin strip instead of a huge
    picture. Returns (width', height').
    """
    width, height = max(1, int(width)), max(1, int(height))
    s = min(max_width / width, max_height / height)
    return max(1, min(max_width, round(width * s))), max(1, min(max_height, round(height * s)))


def fit_picture(arr: np.ndarray, max_side: int = MAX_PANEL_SIDE) -> np.ndarray:
    """Downscale an (H, W[, C]) float picture so that its longest side is at most ``max_side``.

    Smaller pictures are returned unchanged; larger ones go through
    :func:`sempix.ops.resample.resize` (float32, antialiased bilinear).
    """
    a = np.asarray(arr)
    H, W = a.shape[:2]
    if max(H, W) <= max_side:
        return a
    from sempix.ops.resample import resize

    w, h = fit_size(W, H, max_width=max_side, max_height=max_side)
    return resize(a, (h, w))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def check_not_input(path: str | os.PathLike, inputs: Iterable = (), force: bool = False) -> None:
    """Raise :class:`InputError` if ``path`` is one of ``inputs`` (same file) and not ``force``."""
    if force:
        return
    p = Path(path)
    for src in inputs or ():
        if src is None:
            continue
        s = Path(src)
        same = False
        if p.exists() and s.exists():
            try:
                same = os.path.samefile(p, s)
            except OSError:
                same = False
        else:
            same = p.resolve() == s.resolve()
        if same:
            raise InputError(
                f"{p}: refusing to overwrite an input file (choose another output, or pass "
                "force=True)"
            )


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable = (),
    force: bool = False,
    image: bool = False,
) -> Path:
    """Check, before any heavy work, that ``path`` can be written; raise :class:`InputError` if not.

    Checks that ``path`` is not one of ``inputs`` (unless ``force``), is not a directory, has a
    known image suffix (when ``image``), and that its folder (or the nearest existing ancestor,
    since writing creates missing folders) accepts new files. Nothing is created or left behind.
    Call it for every output of a command first, so that a bad second output does not leave the
    first one written.

    Returns
    -------
    Path of ``path``.
    """
    p = Path(path)
    check_not_input(p, inputs, force)
    if p.is_dir():
        raise InputError(f"{p}: is a directory (give an output file name)")
    if image:
        _output_format(p)
    parent = p.parent if str(p.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{p}: cannot write here ({parent} is not a directory)")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise InputError(f"{p}: cannot write here ({exc.strerror or _one_line(exc)})") from None
    os.close(fd)
    Path(tmp_name).unlink(missing_ok=True)
    return p


def check_outputs(
    paths: Iterable,
    *,
    inputs: Iterable = (),
    force: bool = False,
    images: Iterable = (),
) -> list[Path]:
    """:func:`check_output` for every output of a command, as a set, before any work.

    ``paths`` may hold None (an output not asked for). ``images``: those of ``paths`` that must
    have an image suffix. Also refuses one file given for two outputs. Returns the checked paths.
    """
    inputs = tuple(inputs or ())
    image_set = {str(Path(x)) for x in images if x is not None}
    seen: dict[str, Path] = {}
    out: list[Path] = []
    for x in paths:
        if x is None:
            continue
        p = check_output(x, inputs=inputs, force=force, image=str(Path(x)) in image_set)
        key = os.path.normcase(os.path.abspath(p))
        if key in seen:
            raise InputError(f"{p}: given for two outputs (choose different file names)")
        seen[key] = p
        out.append(p)
    return out


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, *, inputs: Iterable = (), force: bool = False
) -> Iterator[Path]:
    """Context manager yielding a temporary path; on success it is renamed to ``path``.

    The temporary file lives in the destination folder (same file system, so ``os.replace`` is
    atomic). On any exception it is deleted and ``path`` is left untouched.

    Example
    -------
    >>> with atomic_output("out.json") as tmp:          # doctest: +SKIP
    ...     tmp.write_text(json.dumps(result))
    """
    p = Path(path)
    check_not_input(p, inputs, force)
    if p.is_dir():
        raise InputError(f"{p}: is a directory (give an output file name)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        _clean_folder_once(p.parent, p.name)
        fd, tmp_name = tempfile.mkstemp(prefix=_part_prefix(p.name), suffix=".part", dir=p.parent)
    except OSError as exc:
        raise InputError(f"{p}: cannot write here ({exc.strerror or _one_line(exc)})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: Temporary outputs of an older sempix (no process id in the name) count as stale after this age.
STALE_PART_AGE_S = 60.0


def _part_prefix(name: str) -> str:
    """Prefix of sempix's temporary output names: ``.NAME.PID.`` (+ random + ``.part``)."""
    return f".{name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep
    return True


def clean_stale_parts(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temporary outputs (``.NAME.PID.xxxxxxxx.part`` files or folders) of dead sempix runs.

    A run killed with SIGKILL (or a power cut) cannot delete its temporary file; the next run that
    writes into the same folder removes it. Only sempix's own naming is touched: a ``.part`` whose
    process id no longer runs, and a ``.part`` without a process id (older sempix) older than an
    hour, or than :data:`STALE_PART_AGE_S` for ``name`` (the output about to be written). Errors
    are ignored.

    Returns
    -------
    list of the removed paths.
    """
    import re
    import shutil

    removed: list[Path] = []
    pat = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[A-Za-z0-9_]{8}\.part$")
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for f in entries:
        m = pat.match(f.name)
        if m is None:
            continue
        pid = m.group("pid")
        try:
            if pid is not None:
                stale = not _pid_alive(int(pid))
            else:
                age = now - f.lstat().st_mtime
                stale = age > 3600.0 or (m.group("name") == name and age > STALE_PART_AGE_S)
            if not stale:
                continue
            if f.is_dir() and not f.is_symlink():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
            removed.append(f)
        except OSError:
            continue
    return removed


_CLEANED: set[str] = set()
_CLEANED_LOCK = threading.Lock()


def _clean_folder_once(folder: Path, name: str) -> None:
    """:func:`clean_stale_parts` for an output folder, once per process (cheap for tools that write
    thousands of files into one folder)."""
    key = os.path.abspath(folder)
    with _CLEANED_LOCK:
        if key in _CLEANED:
            return
        _CLEANED.add(key)
    clean_stale_parts(folder, name)


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, *, inputs: Iterable = (), force: bool = False
) -> Iterator[Path]:
    """Context manager for a multi-file output folder written as a set.

    Yields a temporary sibling folder (``.NAME.PID.xxxxxxxx.part``); write every file into it. On
    success, a new (or empty) ``path`` is replaced by it in one rename, so the set appears at once
    or not at all; into an existing non-empty folder the files are moved one by one (each move
    atomic; a file of the set that is an input is refused unless ``force``). On any exception,
    and for a killed run on the next call, the temporary folder is deleted and ``path`` is left
    as it was.
    """
    import shutil

    p = Path(os.path.abspath(path))  # "." -> the folder's real name, its parent is the parent
    if p.exists() and not p.is_dir():
        raise InputError(f"{p}: exists and is not a folder")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        _clean_folder_once(p.parent, p.name)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=_part_prefix(p.name), suffix=".part", dir=p.parent))
        except PermissionError:
            if not p.is_dir():
                raise
            _clean_folder_once(p, p.name)  # the parent is read-only: stage inside the folder
            tmp = Path(tempfile.mkdtemp(prefix=_part_prefix(p.name), suffix=".part", dir=p))
    except OSError as exc:
        raise InputError(f"{p}: cannot write here ({exc.strerror or _one_line(exc)})") from None
    try:
        yield tmp
        files = sorted(tmp.iterdir())
        for f in files:
            check_not_input(p / f.name, inputs, force)
        if tmp.parent != p and p.is_dir() and not any(p.iterdir()):
            p.rmdir()
        if not p.exists():
            os.chmod(tmp, 0o777 & ~_UMASK)
            os.replace(tmp, p)
        else:
            for f in files:
                os.replace(f, p / f.name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes, inputs: Iterable = (), force: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    p = Path(path)
    with atomic_output(p, inputs=inputs, force=force) as tmp:
        tmp.write_bytes(bytes(data))
    return p


def atomic_save_npy(
    path: str | os.PathLike, arr: np.ndarray, inputs: Iterable = (), force: bool = False
) -> Path:
    """``numpy.save`` atomically, to exactly ``path`` (no ``.npy`` appended)."""
    p = Path(path)
    with atomic_output(p, inputs=inputs, force=force) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(arr), allow_pickle=False)
    return p


def atomic_save_npz(
    path: str | os.PathLike,
    *,
    compressed: bool = True,
    inputs: Iterable = (),
    force: bool = False,
    **arrays: np.ndarray,
) -> Path:
    """``numpy.savez[_compressed]`` atomically, to exactly ``path`` (no ``.npz`` appended)."""
    p = Path(path)
    saver = np.savez_compressed if compressed else np.savez
    with atomic_output(p, inputs=inputs, force=force) as tmp, open(tmp, "wb") as f:
        saver(f, **arrays)
    return p


def _output_format(p: Path) -> str:
    fmt = OUTPUT_FORMATS.get(p.suffix.lower())
    PILImage.preinit()  # JPEG, PNG, BMP, GIF, PPM; all ~40 plugins (init) only when needed
    if fmt is None or fmt not in PILImage.SAVE:
        PILImage.init()
        fmt = OUTPUT_FORMATS.get(p.suffix.lower())
    if fmt is None:
        fmt = PILImage.registered_extensions().get(p.suffix.lower())
    if fmt is None or fmt not in PILImage.SAVE:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise InputError(
            f"{p}: unknown output format {p.suffix or '(no suffix)'!r} (use one of {known})"
        )
    return fmt


def write_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    icc: bytes | None = None,
    inputs: Iterable = (),
    force: bool = False,
    quality: int = 95,
    bits: int = 8,
) -> Path:
    """Write an image atomically (temp file + rename).

    Parameters
    ----------
    path : output file; the format follows the suffix (.png .jpg .jpeg .tif .tiff .webp .bmp).
    rgb : (H, W, 3) or (H, W) float in [0, 1] (values are clipped; NaN -> 0). An (H, W, 4)
        array is taken as RGBA when ``alpha`` is None.
    alpha : (H, W) float in [0, 1] or None. Dropped for JPEG and BMP.
    icc : ICC profile to embed (e.g. ``LoadedImage.icc``), or None.
    inputs : paths that must not be overwritten unless ``force``.
    quality : JPEG / WebP quality.
    bits : 8, or 16 for 16-bit PNG / TIFF.

    Returns
    -------
    Path of the written file.
    """
    p = Path(path)
    fmt = _output_format(p)
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4 and alpha is None:
        arr, alpha = arr[..., :3], arr[..., 3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise InputError(f"{p}: cannot write an array of shape {arr.shape} as an image")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{p}: cannot write an empty image {arr.shape}")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != arr.shape[:2]:
            raise InputError(
                f"{p}: alpha shape {alpha.shape} does not match the image {arr.shape[:2]}"
            )
    if fmt in ("JPEG", "BMP"):  # no (reliably read-back) alpha channel
        alpha = None
    if bits not in (8, 16):
        raise InputError(f"bits must be 8 or 16, got {bits}")
    if bits == 16 and fmt not in ("PNG", "TIFF"):
        raise InputError(f"{p}: 16-bit output needs a .png or .tif file")
    check_not_input(p, inputs, force)

    if bits == 16:
        planes = [to_uint16(arr)[..., None] if arr.ndim == 2 else to_uint16(arr)]
        if alpha is not None:
            planes.append(to_uint16(alpha)[..., None])
        data16 = np.concatenate(planes, axis=2)
        with atomic_output(p, inputs=inputs, force=force) as tmp:
            if fmt == "PNG":
                tmp.write_bytes(_encode_png16(data16, icc))
            else:
                import tifffile

                C = data16.shape[2]
                kw = {"photometric": "rgb" if C >= 3 else "minisblack", "compression": "zlib"}
                if C in (2, 4):
                    kw["extrasamples"] = ("unassalpha",)
                if icc:
                    kw["iccprofile"] = icc
                tifffile.imwrite(tmp, data16 if C > 1 else data16[..., 0], **kw)
        return p

    u8 = to_uint8(arr)
    if alpha is not None:
        u8 = np.dstack([u8 if u8.ndim == 3 else u8[..., None], to_uint8(alpha)])
        im = PILImage.fromarray(u8, "RGBA" if u8.shape[2] == 4 else "LA")
    else:
        im = PILImage.fromarray(u8, "RGB" if u8.ndim == 3 else "L")
    if fmt not in ("PNG", "TIFF") and im.mode == "LA":
        im = im.convert("RGBA")
    kw: dict = {}
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = int(quality)
    if fmt == "TIFF":
        kw["compression"] = "tiff_adobe_deflate"
    if icc and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        kw["icc_profile"] = icc
    with atomic_output(p, inputs=inputs, force=force) as tmp:
        im.save(tmp, format=fmt, **kw)
    return p
