"""Tests of sempix.image: formats, modes, 16-bit, EXIF, ICC, limits, fuzzing, atomic writes."""

from __future__ import annotations

import io
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps

from sempix import image as simg
from sempix.errors import InputError
from sempix.image import (
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_bytes,
    load_rgb,
    read_image,
    read_mask,
    to_uint8,
    write_image,
)

from reference.image import png_unfilter_reference

FORMATS = ["png", "jpg", "tif", "webp", "bmp"]
LOSSY = {"jpg", "webp"}
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def smooth_image(h: int = 24, w: int = 32) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.dstack([x / max(w - 1, 1), y / max(h - 1, 1), 0.5 + 0.4 * np.sin(x / 5)]).astype(
        np.float32
    )


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_with_declared_size(w: int, h: int) -> bytes:
    """A PNG whose header declares w x h RGB but carries only a tiny IDAT (a 'bomb' header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("ext", FORMATS)
def test_roundtrip_formats(tmp_path, ext):
    img = smooth_image()
    out = write_image(tmp_path / f"a.{ext}", img)
    r = read_image(out)
    assert r.rgb.shape == img.shape and r.rgb.dtype == np.float32
    assert r.alpha is None and r.bit_depth == 8
    err = np.abs(r.rgb - img)
    if ext in LOSSY:
        assert err.mean() < 0.02 and err.max() < 0.1
    else:
        assert err.max() <= 0.5 / 255 + 1e-6
    np.testing.assert_array_equal(load_rgb(out), r.rgb)


@pytest.mark.parametrize("ext", ["png", "tif", "webp"])
def test_alpha_kept(tmp_path, ext):
    img = smooth_image()
    alpha = np.linspace(0, 1, img.shape[1], dtype=np.float32)[None, :].repeat(img.shape[0], 0)
    r = read_image(write_image(tmp_path / f"a.{ext}", img, alpha=alpha))
    assert r.alpha is not None
    tol = 0.02 if ext == "webp" else 0.5 / 255 + 1e-6
    assert np.abs(r.alpha - alpha).max() <= tol


def test_jpeg_drops_alpha_and_grey_output(tmp_path):
    img = smooth_image()
    r = read_image(write_image(tmp_path / "a.jpg", img, alpha=np.ones(img.shape[:2])))
    assert r.alpha is None
    g = read_image(write_image(tmp_path / "g.png", img[..., 0]))
    assert g.info["mode"] == "L"
    np.testing.assert_array_equal(g.rgb[..., 0], g.rgb[..., 2])
    assert np.abs(g.rgb[..., 0] - img[..., 0]).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("kind", ["grey", "rgb", "rgba", "greyalpha"])
def test_16bit_roundtrip_full_precision(tmp_path, ext, kind, rng):
    img = rng.random((9, 13, 3)).astype(np.float32)
    alpha = (
        rng.random((9, 13)).astype(np.float32) if "a" in kind[-1:] or kind == "greyalpha" else None
    )
    data = img[..., 0] if kind.startswith("grey") else img
    path = write_image(tmp_path / f"x.{ext}", data, alpha=alpha, bits=16)
    r = read_image(path)
    assert r.bit_depth == 16
    ref = np.repeat(data[..., None], 3, 2) if data.ndim == 2 else data
    # better than 8-bit precision: 16-bit quantisation error is <= 0.5/65535
    assert np.abs(r.rgb - ref).max() <= 0.5 / 65535 + 1e-6
    if alpha is not None:
        assert np.abs(r.alpha - alpha).max() <= 0.5 / 65535 + 1e-6
    else:
        assert r.alpha is None


def test_pillow_written_16bit_grey_png(tmp_path):
    a = (np.arange(60).reshape(6, 10) * 1000).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g.png")
    r = read_image(tmp_path / "g.png")
    assert r.bit_depth == 16
    np.testing.assert_allclose(r.rgb[..., 1], a / 65535.0, atol=1e-6)


@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
def test_png16_filters_against_reference(tmp_path, rng, filter_type):
    a = rng.integers(0, 65536, size=(7, 6, 3), dtype=np.uint16)
    data = simg._encode_png16(a, filter_type=filter_type)
    (tmp_path / "f.png").write_bytes(data)
    arr, _ = simg._read_png16(tmp_path / "f.png")
    np.testing.assert_array_equal(arr, a)
    # numba kernel == slow reference on the raw filtered stream
    raw = np.frombuffer(zlib.decompress(data[data.index(b"IDAT") + 4 : -16]), np.uint8)
    np.testing.assert_array_equal(
        simg._png_unfilter(raw, 7, 36, 6), png_unfilter_reference(raw, 7, 36, 6)
    )


# ------------------------------------------------------------------------------ modes


def test_modes_grey_palette_1bit_la(tmp_path):
    g = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20, "L")
    g.save(tmp_path / "l.png")
    r = read_image(tmp_path / "l.png")
    assert r.rgb.shape == (3, 4, 3)
    np.testing.assert_allclose(r.rgb[..., 0], np.asarray(g) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(r.rgb[..., 0], r.rgb[..., 1])

    p = g.convert("RGB").quantize(8)
    p.save(tmp_path / "p.png")
    np.testing.assert_allclose(
        read_image(tmp_path / "p.png").rgb, np.asarray(p.convert("RGB")) / 255.0, atol=1e-6
    )
    p.info["transparency"] = 0
    p.save(tmp_path / "pt.png", transparency=0)
    rt = read_image(tmp_path / "pt.png")
    assert rt.alpha is not None and rt.alpha.min() == 0.0 and rt.alpha.max() == 1.0

    Image.fromarray(np.eye(4, dtype=bool)).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").rgb[..., 0], np.eye(4))

    la = Image.merge("LA", [g, Image.fromarray(np.full((3, 4), 128, np.uint8))])
    la.save(tmp_path / "la.png")
    r = read_image(tmp_path / "la.png")
    assert r.alpha is not None and abs(float(r.alpha.mean()) - 128 / 255) < 1e-6


def test_cmyk_conversion(tmp_path):
    cmyk = np.zeros((2, 3, 4), np.uint8)
    cmyk[0, 0] = (255, 0, 0, 0)  # cyan
    cmyk[0, 1] = (0, 0, 0, 255)  # black
    cmyk[0, 2] = (0, 0, 0, 0)  # white
    im = Image.fromarray(cmyk, "CMYK")
    im.save(tmp_path / "c.tif")
    r = read_image(tmp_path / "c.tif")
    assert r.icc is None and r.info["mode"] == "CMYK"
    np.testing.assert_allclose(r.rgb[0, 0], [0, 1, 1], atol=1e-6)
    np.testing.assert_allclose(r.rgb[0, 1], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(r.rgb[0, 2], [1, 1, 1], atol=1e-6)
    # CMYK JPEG (Adobe inverted storage is handled by Pillow)
    im.save(tmp_path / "c.jpg", quality=100)
    rj = read_image(tmp_path / "c.jpg")
    assert rj.rgb.shape == (2, 3, 3) and rj.rgb[0, 2].min() > 0.8
    # an unusable embedded profile falls back to the plain conversion instead of failing
    im.save(tmp_path / "cbad.tif", icc_profile=b"not an icc profile")
    rb = read_image(tmp_path / "cbad.tif")
    assert rb.info["cmyk_icc"] is False
    np.testing.assert_allclose(rb.rgb, r.rgb, atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    a = (np.arange(5 * 3 * 3).reshape(5, 3, 3) * 5).astype(np.uint8)
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif.tobytes())
    r = read_image(tmp_path / "o.png")
    with Image.open(tmp_path / "o.png") as src:
        expected = np.asarray(ImageOps.exif_transpose(src).convert("RGB")) / 255.0
    assert r.info["orientation"] == orientation
    np.testing.assert_allclose(r.rgb, expected, atol=1e-6)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "webp"])
def test_icc_profile_kept(tmp_path, ext):
    icc = srgb_icc()
    r = read_image(write_image(tmp_path / f"i.{ext}", smooth_image(), icc=icc))
    assert r.icc == icc


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_icc_profile_kept_16bit(tmp_path, ext):
    icc = srgb_icc()
    r = read_image(write_image(tmp_path / f"i.{ext}", smooth_image(), icc=icc, bits=16))
    assert r.icc == icc and r.bit_depth == 16


# ------------------------------------------------------------------------------ bad input


def test_missing_empty_dir_and_garbage(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(InputError, match="directory"):
        read_image(tmp_path)
    (tmp_path / "t.txt").write_text("hello, not an image\n")
    with pytest.raises(InputError, match="not an image file"):
        read_image(tmp_path / "t.txt")


def test_truncated_files_one_line(tmp_path):
    for ext in ["png", "jpg"]:
        data = (write_image(tmp_path / f"full.{ext}", smooth_image(64, 64))).read_bytes()
        (tmp_path / f"cut.{ext}").write_bytes(data[: len(data) // 2])
        with pytest.raises(InputError) as ei:
            read_image(tmp_path / f"cut.{ext}")
        assert "\n" not in str(ei.value) and "cut." in str(ei.value)
    data = write_image(tmp_path / "full16.png", smooth_image(), bits=16).read_bytes()
    (tmp_path / "cut16.png").write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError, match="truncated"):
        read_image(tmp_path / "cut16.png")


def test_decompression_bomb_header_checked_before_decoding(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_declared_size(100_000, 100_000))  # 10 G pixels declared, 100 bytes
    with pytest.raises(InputError, match="above the limit"):
        read_image(bomb)
    # the limit is configurable by argument and environment
    small = write_image(tmp_path / "s.png", smooth_image(10, 10))
    with pytest.raises(InputError, match="limit of 50"):
        read_image(small, max_pixels=50)
    monkeypatch.setenv("SEMPIX_MAX_PIXELS", "99")
    with pytest.raises(InputError, match="limit of 99"):
        read_image(small)
    assert read_image(small, max_pixels=100).rgb.shape == (10, 10, 3)
    monkeypatch.setenv("SEMPIX_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="SEMPIX_MAX_PIXELS"):
        read_image(small)
    # limit lifted (0): the header passes, the missing data is then reported as a damaged file
    # (never a MemoryError or a traceback)
    monkeypatch.setenv("SEMPIX_MAX_PIXELS", "0")
    (tmp_path / "bomb2.png").write_bytes(png_with_declared_size(3000, 3000))
    with pytest.raises(InputError, match="damaged|cannot read"):
        read_image(tmp_path / "bomb2.png")
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's global restored


def test_our_limit_rules_not_pillows(tmp_path, monkeypatch):
    small = write_image(tmp_path / "s.png", smooth_image(10, 10))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow would raise DecompressionBombError
    assert read_image(small).rgb.shape == (10, 10, 3)
    with pytest.raises(InputError, match="above the limit"):
        read_image(small, max_pixels=99)
    assert Image.MAX_IMAGE_PIXELS == 10


@FUZZ
@given(data=st.binary(min_size=1, max_size=2048))
def test_fuzz_random_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fz") / "r.img"
    p.write_bytes(data)
    try:
        r = read_image(p)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:  # astronomically unlikely, but a valid image must be well-formed
        assert r.rgb.ndim == 3 and r.rgb.dtype == np.float32


@pytest.fixture(scope="module")
def encoded_samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("samples")
    img = smooth_image(20, 17)
    out = {}
    for ext in FORMATS:
        out[ext] = write_image(d / f"s.{ext}", img).read_bytes()
    out["png16"] = write_image(d / "s16.png", img, bits=16).read_bytes()
    out["tif16"] = write_image(d / "s16.tif", img, bits=16).read_bytes()
    return out


@FUZZ
@given(kind=st.sampled_from([*FORMATS, "png16", "tif16"]), frac=st.floats(0.0, 0.999))
def test_fuzz_truncated_real_files(tmp_path_factory, encoded_samples, kind, frac):
    data = encoded_samples[kind]
    p = tmp_path_factory.mktemp("tr") / f"t.{kind.removesuffix('16')}"
    p.write_bytes(data[: int(len(data) * frac)])
    try:
        r = read_image(p)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:  # some formats keep a decodable prefix; it must still be a well-formed image
        assert r.rgb.shape[2] == 3 and np.isfinite(r.rgb).all()


@FUZZ
@given(
    kind=st.sampled_from([*FORMATS, "png16", "tif16"]),
    pos=st.integers(0, 10_000),
    value=st.integers(0, 255),
)
def test_fuzz_corrupted_byte(tmp_path_factory, encoded_samples, kind, pos, value):
    data = bytearray(encoded_samples[kind])
    data[pos % len(data)] = value
    p = tmp_path_factory.mktemp("cb") / f"c.{kind.removesuffix('16')}"
    p.write_bytes(bytes(data))
    try:
        r = read_image(p)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert r.rgb.ndim == 3 and r.rgb.shape[2] == 3


@FUZZ
@given(
    ext=st.sampled_from(FORMATS + ["png16", "tif16"]),
    h=st.integers(1, 5),
    w=st.integers(1, 40),
    transpose=st.booleans(),
)
def test_fuzz_tiny_and_strip_images(tmp_path_factory, ext, h, w, transpose):
    if transpose:
        h, w = w, h
    img = np.random.default_rng(h * 100 + w).random((h, w, 3)).astype(np.float32)
    bits = 16 if ext.endswith("16") else 8
    p = tmp_path_factory.mktemp("st") / f"s.{ext.removesuffix('16')}"
    r = read_image(write_image(p, img, bits=bits))
    assert r.rgb.shape == (h, w, 3)
    if ext in ("png", "tif", "bmp", "png16", "tif16"):
        assert np.abs(r.rgb - img).max() <= 0.5 / (255 if bits == 8 else 65535) + 1e-6


# ------------------------------------------------------------------------------ masks


def test_read_mask_grey_alpha_npy_and_shape(tmp_path):
    m = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    write_image(tmp_path / "m.png", m)
    np.testing.assert_allclose(read_mask(tmp_path / "m.png"), m, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(
        read_mask(tmp_path / "m.png", shape=(4, 5, 3)), m, atol=0.5 / 255 + 1e-6
    )
    with pytest.raises(InputError, match="mask is 5x4 but the image is 4x5"):
        read_mask(tmp_path / "m.png", shape=(5, 4))
    # alpha channel (not fully opaque) wins over the colour
    write_image(tmp_path / "a.png", np.zeros((4, 5, 3)), alpha=m)
    np.testing.assert_allclose(read_mask(tmp_path / "a.png"), m, atol=0.5 / 255 + 1e-6)
    # colour mask: Rec.601 luma
    write_image(tmp_path / "c.png", np.dstack([m, m, m]))
    np.testing.assert_allclose(read_mask(tmp_path / "c.png"), m, atol=1e-2)
    # 16-bit keeps precision
    write_image(tmp_path / "m16.png", m, bits=16)
    np.testing.assert_allclose(read_mask(tmp_path / "m16.png"), m, atol=1e-5)
    # npy: bool, uint8, float
    np.save(tmp_path / "b.npy", m > 0.5)
    np.testing.assert_array_equal(read_mask(tmp_path / "b.npy"), (m > 0.5).astype(np.float32))
    np.save(tmp_path / "u.npy", (m * 255).astype(np.uint8))
    assert read_mask(tmp_path / "u.npy").max() == 1.0
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 4)))
    with pytest.raises(InputError, match="2-D"):
        read_mask(tmp_path / "bad.npy")
    assert read_mask(tmp_path / "m.png").dtype == np.float32


# ------------------------------------------------------------------------------ writing


def test_refuse_overwrite_input_unless_force(tmp_path):
    src = write_image(tmp_path / "in.png", smooth_image())
    before = src.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_image(src, np.zeros((3, 3, 3)), inputs=(src,))
    with pytest.raises(InputError, match="refusing"):  # same file through another spelling
        write_image(tmp_path / "." / "in.png", np.zeros((3, 3, 3)), inputs=(str(src),))
    with pytest.raises(InputError, match="refusing"):
        atomic_write_bytes(src, b"x", inputs=[src])
    assert src.read_bytes() == before
    write_image(src, np.zeros((3, 3, 3)), inputs=(src,), force=True)
    assert read_image(src).rgb.shape == (3, 3, 3)


def test_check_output_before_work(tmp_path):
    """Regression (QA): outputs are checked up front, creating and leaving nothing."""
    from sempix.image import check_output

    src = write_image(tmp_path / "in.png", smooth_image())
    with pytest.raises(InputError, match="refusing"):
        check_output(src, inputs=(src,))
    check_output(src, inputs=(src,), force=True)
    with pytest.raises(InputError, match="is a directory"):
        check_output(tmp_path, image=True)
    with pytest.raises(InputError, match="unknown output format"):
        check_output(tmp_path / "x.xyz", image=True)
    check_output(tmp_path / "x.npy")  # any suffix when image=False
    with pytest.raises(InputError, match="not a directory"):  # a file used as a folder
        check_output(src / "out.png", image=True)
    assert check_output(tmp_path / "new" / "deeper" / "o.png", image=True).name == "o.png"
    assert not (tmp_path / "new").exists()  # nothing created by the check
    assert sorted(q.name for q in tmp_path.iterdir()) == ["in.png"]  # no probe file left


def test_check_output_unwritable_folder(tmp_path, monkeypatch):
    """An unwritable folder (simulated: tests may run as root) is one clear InputError."""
    from sempix.image import check_output

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(simg.tempfile, "mkstemp", denied)
    with pytest.raises(InputError, match="cannot write here .Permission denied"):
        check_output(tmp_path / "o.png", image=True)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content")

    def broken_save(self, fp, format=None, **kw):
        Path(fp).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, smooth_image())
    assert target.read_bytes() == b"old content"
    new = tmp_path / "new.png"
    with pytest.raises(OSError):
        write_image(new, smooth_image())
    assert not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp files left


def test_atomic_helpers(tmp_path):
    atomic_write_bytes(tmp_path / "d" / "x.bin", b"abc")
    assert (tmp_path / "d" / "x.bin").read_bytes() == b"abc"
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = atomic_save_npy(tmp_path / "a.data", arr)  # exact name, no .npy appended
    assert p.name == "a.data"
    np.testing.assert_array_equal(np.load(p), arr)
    q = atomic_save_npz(tmp_path / "b.features", features=arr, labels=arr.astype(np.int32))
    with np.load(q) as z:
        np.testing.assert_array_equal(z["features"], arr)
        assert z["labels"].dtype == np.int32
    mode = stat.S_IMODE(os.stat(p).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.data", "b.features", "d"]


def test_write_errors(tmp_path):
    with pytest.raises(InputError, match="unknown output format"):
        write_image(tmp_path / "x.xyz", smooth_image())
    with pytest.raises(InputError, match="16-bit"):
        write_image(tmp_path / "x.jpg", smooth_image(), bits=16)
    with pytest.raises(InputError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 5)))
    with pytest.raises(InputError, match="directory"):
        write_image(tmp_path, smooth_image()) if False else atomic_write_bytes(tmp_path, b"")
    # RGBA array, NaN and out-of-range values are handled
    rgba = np.dstack([smooth_image(), np.full(smooth_image().shape[:2], 0.5, np.float32)])
    rgba[0, 0, 0] = np.nan
    rgba[0, 1, 0] = 7.0
    r = read_image(write_image(tmp_path / "rgba.png", rgba))
    assert r.alpha is not None and r.rgb[0, 0, 0] == 0.0 and r.rgb[0, 1, 0] == 1.0
    np.testing.assert_array_equal(to_uint8(np.array([-1, 0.5, 2, np.nan])), [0, 128, 255, 0])


def test_read_image_of_bytes_written_by_other_tools(tmp_path):
    """WebP/BMP/TIFF written directly by Pillow with odd modes."""
    rgbx = Image.fromarray(to_uint8(smooth_image())).convert("RGBX")
    rgbx.save(tmp_path / "x.tif")
    assert read_image(tmp_path / "x.tif").rgb.shape == (24, 32, 3)
    ycc = Image.fromarray(to_uint8(smooth_image())).convert("YCbCr")
    buf = io.BytesIO()
    ycc.save(buf, format="JPEG")
    (tmp_path / "y.jpg").write_bytes(buf.getvalue())
    assert np.abs(read_image(tmp_path / "y.jpg").rgb - smooth_image()).max() < 0.08


@FUZZ
@given(w=st.integers(0, 2**31 - 1), h=st.integers(0, 2**31 - 1))
def test_fuzz_declared_sizes(tmp_path_factory, w, h):
    """Any declared PNG size: rejected from the header when too big, never decoded blindly."""
    p = tmp_path_factory.mktemp("ds") / "d.png"
    p.write_bytes(png_with_declared_size(w, h))
    try:
        r = read_image(p, max_pixels=10**7)
    except InputError as exc:
        if w * h > 10**7:
            assert "above the limit" in str(exc)
        assert "\n" not in str(exc)
    else:  # tiny sizes: the 64 zero bytes of image data really are a complete black image
        assert w * h <= 10**7 and h * (1 + 3 * w) <= 64
        assert r.rgb.shape == (h, w, 3) and not r.rgb.any()


def test_png_image_data_one_row_short_is_truncated(tmp_path):
    # 1x17 RGB needs 17 * 4 = 68 bytes of image data; the file carries 64. Pillow pads the missing
    # row with zeros without an error, so this is checked before decoding (hypothesis found it).
    p = tmp_path / "short.png"
    p.write_bytes(png_with_declared_size(1, 17))
    with pytest.raises(InputError, match="truncated image data"):
        read_image(p)
    p.write_bytes(png_with_declared_size(1, 16))  # exactly 64 bytes: complete
    assert read_image(p).rgb.shape == (16, 1, 3)


def test_real_photos(data_dir):
    """Real files from the shared data sets read as upright float32 RGB."""
    files = sorted((data_dir / "kodak24").glob("*.png"))[:2]
    files += sorted((data_dir / "ade20k").glob("*.jpg"))[:1]
    if not files:
        pytest.skip("no sample photos in SEMPIX_DATA_DIR")
    for f in files:
        r = read_image(f)
        assert r.rgb.ndim == 3 and r.rgb.shape[2] == 3 and r.rgb.dtype == np.float32
        assert 0.0 <= r.rgb.min() and r.rgb.max() <= 1.0 and r.rgb.std() > 0.05


def test_exif_orientation_jpeg_rotates_shape(tmp_path):
    img = smooth_image(20, 40)  # landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held upright: stored rotated, must be turned 90 degrees clockwise
    Image.fromarray(to_uint8(img)).save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=98)
    r = read_image(tmp_path / "o.jpg")
    assert r.rgb.shape == (40, 20, 3) and r.info["orientation"] == 6
    with Image.open(tmp_path / "o.jpg") as src:
        expected = np.asarray(ImageOps.exif_transpose(src)) / 255.0
    np.testing.assert_allclose(r.rgb, expected, atol=1e-6)
