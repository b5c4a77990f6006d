"""read_image / read_mask from a path, bytes or a binary file object: same results, same limits,
same typed one-line errors (the web server decodes uploads from memory)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from sempix.errors import (
    ImageDecodeError,
    InputError,
    TooLargeError,
    UnsupportedFormatError,
)
from sempix.image import read_image, read_mask, write_image

KINDS = ["path", "str", "bytes", "bytearray", "memoryview", "bytesio", "open"]


def _as(kind: str, p: Path, stack):
    data = p.read_bytes()
    if kind == "path":
        return p
    if kind == "str":
        return str(p)
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "bytesio":
        return io.BytesIO(data)
    f = open(p, "rb")  # noqa: SIM115 - closed by the test's ExitStack
    stack.callback(f.close)
    return f


def _image(h=12, w=16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([x / (w - 1), y / (h - 1), 0.5 + 0.4 * np.sin(x / 3)]).astype(np.float32)


def _bomb_png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    img = _image()
    alpha = np.linspace(0, 1, 16 * 12, dtype=np.float32).reshape(12, 16)
    return {
        "png8": write_image(d / "a.png", img),
        "png16": write_image(d / "b.png", img, alpha=alpha, bits=16),
        "tif16": write_image(d / "c.tif", img, bits=16),
        "jpg": write_image(d / "d.jpg", img),
        "mask": write_image(d / "m.png", alpha),
        "npy": _npy(d / "m.npy", alpha),
        "text": _text(d / "t.txt"),
        "bomb": _bytes(d / "bomb.png", _bomb_png(100_000, 100_000)),
        "cut": _bytes(d / "cut.png", (d / "b.png").read_bytes()[:-40]),
    }


def _npy(p, arr):
    np.save(p, arr)
    return p


def _text(p):
    p.write_text("hello, not an image\n")
    return p


def _bytes(p, data):
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["png8", "png16", "tif16", "jpg"])
def test_every_source_kind_decodes_the_same(files, kind, fmt):
    import contextlib

    ref = read_image(files[fmt])
    with contextlib.ExitStack() as stack:
        got = read_image(_as(kind, files[fmt], stack))
    np.testing.assert_array_equal(got.rgb, ref.rgb)
    assert (got.alpha is None) == (ref.alpha is None)
    if ref.alpha is not None:
        np.testing.assert_array_equal(got.alpha, ref.alpha)
    assert got.bit_depth == ref.bit_depth and got.format == ref.format and got.icc == ref.icc
    assert got.path == (ref.path if kind in ("path", "str") else None)


def test_png16_from_bytes_keeps_full_precision(files):
    got = read_image(files["png16"].read_bytes())
    assert got.bit_depth == 16
    levels = np.unique(np.rint(got.alpha * 65535))
    assert np.any(levels % 257 != 0)  # not 8-bit values scaled up: the 16-bit steps survive


@pytest.mark.parametrize("kind", ["bytes", "bytesio"])
def test_errors_from_memory_are_typed_and_name_the_source(files, kind):
    import contextlib

    cases = [
        ("text", UnsupportedFormatError, "not an image"),
        ("bomb", TooLargeError, "above the limit"),
        ("cut", ImageDecodeError, "truncated"),
    ]
    for key, cls, word in cases:
        with contextlib.ExitStack() as stack, pytest.raises(cls, match=word) as e:
            read_image(_as(kind, files[key], stack), name="upload.png")
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("upload.png: ")
        assert isinstance(e.value, InputError) and e.value.exit_code == 2
    with pytest.raises(TooLargeError) as e:
        read_image(files["bomb"].read_bytes())
    assert e.value.size == (100_000, 100_000) and str(e.value).startswith("image data: ")
    with pytest.raises(ImageDecodeError, match="0 bytes"):
        read_image(b"")
    with pytest.raises(TooLargeError, match="limit of 100"):
        read_image(files["png8"].read_bytes(), max_pixels=100)


def test_file_object_name_used_in_messages(files):
    with open(files["text"], "rb") as f, pytest.raises(UnsupportedFormatError) as e:
        read_image(f)
    assert str(e.value).startswith(str(files["text"]))
    with open(files["text"]) as f, pytest.raises(InputError, match="binary file object"):
        read_image(f)  # text mode
    with pytest.raises(TypeError, match="path, bytes or a binary file"):
        read_image(12345)


def test_path_errors_keep_their_classes(tmp_path):
    with pytest.raises(InputError, match="no such file") as e:
        read_image(tmp_path / "nope.png")
    assert type(e.value) is InputError
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        read_image(tmp_path / "e.png")


@pytest.mark.parametrize("kind", ["bytes", "bytesio", "open"])
def test_read_mask_from_memory(files, kind):
    import contextlib

    for key in ("mask", "npy", "png16"):
        ref = read_mask(files[key])
        with contextlib.ExitStack() as stack:
            got = read_mask(_as(kind, files[key], stack), shape=(12, 16, 3))
        np.testing.assert_array_equal(got, ref)
    with pytest.raises(InputError, match="upload: mask is 16x12 but the image is 5x5"):
        read_mask(files["mask"].read_bytes(), shape=(5, 5), name="upload")
