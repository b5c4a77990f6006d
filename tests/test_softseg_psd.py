"""Layered PSD export of soft layers (psd-tools writer), read back by independent readers."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.errors import InputError
from sempix.softseg import SoftSegResult, psd_bytes, save_psd, save_result
from sempix.softseg.export import stack_alphas


@pytest.fixture
def layers_result():
    """A seeded 3-layer result: smooth alphas summing to one, flat-ish layer colours."""
    rng = np.random.default_rng(3)
    h, w, k = 24, 36, 3
    yy, xx = np.mgrid[0:h, 0:w]
    logits = np.stack([xx / w * 6, yy / h * 6, 3 - (xx / w + yy / h) * 3], axis=2)
    a = np.exp(logits - logits.max(axis=2, keepdims=True))
    alphas = (a / a.sum(axis=2, keepdims=True)).astype(np.float32)
    base = np.array([[0.9, 0.2, 0.1], [0.1, 0.6, 0.2], [0.2, 0.3, 0.95]], np.float32)
    colors = np.clip(base[:, None, None, :] + rng.normal(0, 0.03, (k, h, w, 3)), 0, 1).astype(
        np.float32
    )
    return SoftSegResult(alphas=alphas, colors=colors, features=np.zeros((h, w, 3), np.float32))


def _sky(h, w):
    m = np.zeros((h, w), np.float32)
    m[: h // 3] = 1.0
    m[h // 3, :] = 0.5
    return m


def test_psd_composite_read_by_pillow(tmp_path, layers_result):
    res = layers_result
    h, w = res.alphas.shape[:2]
    p = save_psd(res, tmp_path / "layers.psd", masks={"sky": _sky(h, w)})
    im = Image.open(
        p
    )  # Pillow's own PSD reader (its layer reader assumes R,G,B,A channel order, so
    assert im.size == (w, h)  # only the names and the composite are read with it)
    names = [entry[0] for entry in im.layers]
    assert names[:3] == ["layer 0", "layer 1", "layer 2"] and "mask: sky" in names
    comp = np.asarray(im.convert("RGB"), np.float64) / 255
    # the composite (= what a viewer shows) recomposes the input up to 8-bit rounding
    assert np.abs(comp - res.recompose()).max() < 4 / 255


def _imagemagick():
    """Path of a working ImageMagick, or None (a ``convert`` on PATH may be a stand-in)."""
    for name in ("magick", "convert-im6.q16", "convert"):
        path = shutil.which(name)
        if path is None:
            continue
        try:
            out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and "ImageMagick" in out.stdout:
            return path
    return None


MAGICK = _imagemagick()


@pytest.mark.skipif(MAGICK is None, reason="ImageMagick is not installed")
def test_psd_layers_read_back_by_imagemagick(tmp_path, layers_result):
    res = layers_result
    p = save_psd(res, tmp_path / "layers.psd")
    beta = stack_alphas(res.alphas)
    for k in range(3):  # [0] is the composite, [k + 1] layer k
        out = tmp_path / f"l{k}.png"
        subprocess.run(
            [MAGICK, f"{p}[{k + 1}]", f"PNG32:{out}"], check=True, capture_output=True, timeout=60
        )
        layer = np.asarray(Image.open(out).convert("RGBA"), np.float64) / 255
        assert layer.shape == beta.shape[:2] + (4,)
        np.testing.assert_allclose(layer[..., 3], beta[..., k], atol=1 / 255 + 1e-6)
        on = beta[..., k] > 0.05  # colour is only defined (and kept) where the layer is visible
        np.testing.assert_allclose(layer[..., :3][on], res.colors[k][on], atol=1 / 255 + 1e-6)


def test_psd_read_back_by_psd_tools_structure(tmp_path, layers_result):
    from psd_tools import PSDImage

    res = layers_result
    h, w = res.alphas.shape[:2]
    beta = stack_alphas(res.alphas)
    stack = [np.dstack([res.colors[k], beta[..., k]]) for k in range(3)]
    data = psd_bytes(stack, ["a", "b", "c"], res.recompose(), masks=[("sky", _sky(h, w))], depth=16)
    psd = PSDImage.open(io.BytesIO(data))
    assert psd.depth == 16 and psd.size == (w, h)
    kinds = [(layer.name, layer.kind) for layer in psd]
    assert kinds == [("a", "pixel"), ("b", "pixel"), ("c", "pixel"), ("masks", "group")]
    mask_layer = next(iter(psd[3]))
    assert mask_layer.name == "mask: sky" and not mask_layer.visible
    m = mask_layer.numpy()[..., 0]
    np.testing.assert_allclose(m, _sky(h, w), atol=1e-4)
    comp = np.asarray(psd.composite().convert("RGB"), np.float64) / 255
    assert np.abs(comp - res.recompose()).max() < 4 / 255


def test_psd_rejects_bad_input(tmp_path, layers_result):
    with pytest.raises(InputError, match="depth"):
        psd_bytes([np.zeros((4, 4, 4))], ["a"], np.zeros((4, 4, 3)), depth=12)
    with pytest.raises(InputError, match="mask"):
        save_psd(layers_result, tmp_path / "x.psd", masks={"m": np.zeros((3, 3))})
    assert not (tmp_path / "x.psd").exists()
    with pytest.raises(InputError, match="format"):
        save_result(layers_result, tmp_path / "o", formats=("gif",))


def test_save_result_formats_select_files(tmp_path, layers_result):
    files = save_result(layers_result, tmp_path / "o", formats=("psd",))
    assert set(files) == {"psd"} and sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "layers.psd"
    ]
    files = save_result(layers_result, tmp_path / "o2")
    assert {"psd", "ora", "vis", "alphas"} <= set(files)


GIMP = shutil.which("gimp-console") or shutil.which("gimp")


@pytest.mark.skipif(GIMP is None, reason="GIMP is not installed (apt-get install gimp)")
def test_gimp_opens_psd_and_flattens_to_the_input(tmp_path, layers_result):
    res = layers_result
    h, w = res.alphas.shape[:2]
    psd = save_psd(res, tmp_path / "layers.psd", masks={"sky": _sky(h, w)})
    flat = tmp_path / "flat.png"
    script = f"""
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "{psd}" "{psd}")))
       (layers (gimp-image-get-layers img)))
  (gimp-message (string-append "sempix-layers " (number->string (car layers))))
  (let loop ((i 0))
    (if (< i (car layers))
      (let ((l (vector-ref (cadr layers) i)))
        (gimp-message (string-append "sempix-layer " (car (gimp-item-get-name l))))
        (loop (+ i 1)))))
  (let ((d (car (gimp-image-flatten img))))
    (file-png-save RUN-NONINTERACTIVE img d "{flat}" "{flat}" 0 9 0 0 0 0 0)))"""
    r = subprocess.run(
        [GIMP, "-i", "-d", "-f", "-b", script, "-b", "(gimp-quit 0)"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    log = r.stdout + r.stderr
    assert "sempix-layers 4" in log, log[-2000:]  # three soft layers + the masks group
    for name in ("layer 0", "layer 1", "layer 2", "masks"):
        assert f"sempix-layer {name}" in log
    got = np.asarray(Image.open(flat).convert("RGB"), np.float64) / 255
    assert got.shape == (h, w, 3)
    # GIMP's flattened stack (the hidden mask layer left out) shows the input
    assert np.abs(got - res.recompose()).max() < 4 / 255


def test_cli_softseg_psd_with_mask_and_json(tmp_path):
    h, w = 24, 32
    x = np.arange(w)
    a = np.clip((w / 2 + 4 - x) / 8, 0, 1)[None, :, None]
    img = np.repeat(a * np.array([0.9, 0.3, 0.2]) + (1 - a) * np.array([0.2, 0.4, 0.9]), h, axis=0)
    src = tmp_path / "in.png"
    Image.fromarray((img * 255).astype(np.uint8)).save(src)
    mpath = tmp_path / "left.png"
    Image.fromarray(((x < w // 2)[None, :].repeat(h, 0) * 255).astype(np.uint8)).save(mpath)
    from sempix.cli import cli

    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli,
        [
            "softseg",
            str(src),
            "-o",
            str(out),
            "--layers",
            "2",
            "--features",
            "none",
            "--quiet",
            "--eigvecs",
            "12",
            "--initial",
            "6",
            "--psd",
            "--mask",
            str(mpath),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output + r.stderr
    doc = json.loads(r.stdout)
    assert doc["command"] == "softseg" and doc["input_size"] == [w, h]
    assert list(doc["outputs"]) == ["psd"] and doc["masks"] == ["left"]
    assert sorted(p.name for p in out.iterdir()) == ["layers.psd"]
    im = Image.open(out / "layers.psd")
    assert "mask: left" in [entry[0] for entry in im.layers]
