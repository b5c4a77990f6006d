"""Tests of the saliency backends (sempix.recolor.saliency): built-in rbd and learned u2netp."""

from __future__ import annotations

import hashlib
import http.server
import logging
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import loopback_server

from sempix.errors import InputError, ModelUnavailableError
from sempix.models import REGISTRY, ModelSpec, cache_dir
from sempix.recolor import saliency as sal
from sempix.recolor.saliency import compute_saliency, salient_mask, thing_mask


def _blob_image(rng, h=120, w=160, cy=60, cx=80, r=25, colour=(0.9, 0.2, 0.1)):
    img = np.full((h, w, 3), 0.35, np.float32) + rng.normal(0, 0.02, (h, w, 3)).astype(np.float32)
    img[..., 1] += np.linspace(0, 0.1, w, dtype=np.float32)[None]  # a gentle background gradient
    yy, xx = np.mgrid[:h, :w]
    blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    img[blob] = colour
    return np.clip(img, 0, 1), blob


def test_salient_blob_is_found(rng):
    img, blob = _blob_image(rng)
    s = compute_saliency(img)
    assert s.saliency.shape == blob.shape and s.saliency.dtype == np.float32
    assert 0 <= s.saliency.min() and s.saliency.max() <= 1
    assert s.saliency[blob].mean() > 0.8
    assert s.saliency[~blob].mean() < 0.15
    m = salient_mask(s.saliency)
    inter = np.logical_and(m, blob).sum()
    assert inter / blob.sum() > 0.6 and inter / max(m.sum(), 1) > 0.9


def test_off_centre_blob_and_large_image(rng):
    img, blob = _blob_image(rng, h=400, w=600, cy=120, cx=430, r=70, colour=(0.1, 0.3, 0.9))
    s = compute_saliency(img).saliency
    assert s.shape == (400, 600)
    assert s[blob].mean() > 0.7
    assert s[~blob].mean() < 0.2


def test_semantic_prior_raises_thing_pixels(rng):
    # two equally contrasted blobs; the labels call only one of them a "thing" (person)
    img, blob_a = _blob_image(rng, cx=45, r=20)
    yy, xx = np.mgrid[:120, :160]
    blob_b = (yy - 60) ** 2 + (xx - 115) ** 2 < 400
    img[blob_b] = (0.9, 0.2, 0.1)
    names = ["others", "wall", "person"]
    labels = np.ones((120, 160), np.int32)
    labels[blob_b] = 2
    assert thing_mask(labels, names)[blob_b].all() and not thing_mask(labels, names)[blob_a].any()
    plain = compute_saliency(img).saliency
    sem = compute_saliency(img, labels=(labels, names))
    assert sem.backend == "rbd+ade20k"
    gain_b = sem.saliency[blob_b].mean() - plain[blob_b].mean()
    gain_a = sem.saliency[blob_a].mean() - plain[blob_a].mean()
    assert sem.saliency[blob_b].mean() > sem.saliency[blob_a].mean()
    assert gain_b > gain_a


def test_bad_input():
    with pytest.raises(InputError):
        compute_saliency(np.zeros((10, 10), np.float32))
    with pytest.raises(InputError):
        compute_saliency(np.zeros((10, 10, 3), np.float32), backend="u2net")


def test_real_sod_better_than_centre_prior(data_dir):
    from PIL import Image

    masks = sorted((data_dir / "sod" / "masks").glob("*.png"))[:8]
    if not masks:
        pytest.skip("no SOD masks")
    ours, centre = [], []
    for mp in masks:
        ip = next((p for p in (data_dir / "bsds500" / "images").glob(f"*/{mp.stem}.jpg")), None)
        if ip is None:
            continue
        img = np.asarray(Image.open(ip).convert("RGB"), np.float32) / 255
        gt = np.asarray(Image.open(mp).convert("L"), np.float32) / 255
        h, w = gt.shape
        yy, xx = np.mgrid[0:h, 0:w]
        c = np.exp(-(((yy - h / 2) / (0.3 * h)) ** 2 + ((xx - w / 2) / (0.3 * w)) ** 2) / 2)
        ours.append(np.abs(compute_saliency(img).saliency - gt).mean())
        centre.append(np.abs(c - gt).mean())
    assert len(ours) >= 4
    assert np.mean(ours) < np.mean(centre)


# ------------------------------------------------------------------------------ learned backend
# (u2netp)
# A tiny ONNX network with the I/O signature of rembg's u2netp.onnx (input "input.1" 1x3x320x320,
# seven 1x1x320x320 outputs of which the first is the saliency) stands in for the real file, which
# cannot be downloaded on the test machine. Its output is a known function of the input, so the
# pre-processing (RGB order, divide by max, ImageNet mean/std, NCHW), the choice of the first output
# and the min-max/resize post-processing are all checked against hand-computed maps.

REAL_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2netp.onnx"


def _tiny_u2netp(weights=(1.0, 0.0, 0.0), bias=0.0, size=320) -> bytes:
    """Bytes of an ONNX model: d0 = relu(w . x + b) (1x1 conv over the 3 input channels), d1..d6 =
    -d0."""
    onnx = pytest.importorskip("onnx", reason="building the test network needs the onnx package")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.asarray(weights, np.float32).reshape(1, 3, 1, 1), "w")
    b = numpy_helper.from_array(np.asarray([bias], np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["input.1", "w", "b"], ["c"]),
        helper.make_node("Relu", ["c"], ["d0"]),
    ]
    outs = [helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, size, size])]
    for i in range(1, 7):
        nodes.append(helper.make_node("Neg", ["d0"], [f"d{i}"]))
        outs.append(helper.make_tensor_value_info(f"d{i}", TensorProto.FLOAT, [1, 1, size, size]))
    graph = helper.make_graph(
        nodes,
        "tiny_u2netp",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        outs,
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip(
        "onnxruntime", reason="onnxruntime not installed (pip install onnxruntime)"
    )


@pytest.fixture(scope="module")
def tiny_bytes(ort) -> bytes:
    return _tiny_u2netp()


@pytest.fixture
def tiny_model(tmp_path, tiny_bytes):
    p = tmp_path / "tiny_u2netp.onnx"
    p.write_bytes(tiny_bytes)
    return p


@pytest.fixture
def u2_spec(monkeypatch, tiny_bytes):
    """Replace the registry's u2netp entry by one whose
    size/sha256 are those of the tiny network."""
    real = REGISTRY["u2netp"]
    spec = ModelSpec(
        name="u2netp",
        filename=real.filename,
        sha256=hashlib.sha256(tiny_bytes).hexdigest(),
        size=len(tiny_bytes),
        licence="test only",
        urls=real.urls,
        description="tiny test network",
    )
    monkeypatch.setitem(REGISTRY, "u2netp", spec)
    return spec


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    from sempix._runtime import reset_warnings

    reset_warnings()
    monkeypatch.delenv("SEMPIX_MODEL_URL_BASE", raising=False)


def _ramp_image(h=90, w=140, top=0.5):
    """Red = horizontal ramp 0..top, green/blue constant: t = red / max = x / (w - 1)."""
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = np.linspace(0, top, w, dtype=np.float32)[None]
    img[..., 1] = 0.1
    img[..., 2] = 0.2
    return img


def _expected_relu_red(h=90, w=140):
    """Saliency of the tiny network for :func:`_ramp_image`, by hand: relu((t - 0.485) / 0.229),
    min-max."""
    t = np.linspace(0, 1, w)[None].repeat(h, 0)
    return np.clip((t - 0.485) / (1 - 0.485), 0, 1)


def test_registry_entry_matches_published_file():
    spec = REGISTRY["u2netp"]
    assert spec.filename == "u2netp.onnx" and spec.size == 4574861
    assert spec.sha256 == "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
    assert spec.urls[0] == REAL_URL and all(u.startswith("https://") for u in spec.urls)
    assert "Apache-2.0" in spec.licence


def test_preprocessing_matches_u2net_recipe():
    img = _ramp_image()
    x = sal.u2netp_input(img)
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32
    # channel 0 = red ramp divided by its max, ImageNet-normalised; along x, constant along y
    red = x[0, 0] * 0.229 + 0.485
    assert np.allclose(red, red[:1], atol=1e-5)
    assert red.max() == pytest.approx(1.0, abs=1e-5) and red[0, 0] == pytest.approx(0.0, abs=0.01)
    assert np.all(np.diff(red[0]) >= -1e-3)
    # green/blue: constants divided by the same max (the red ramp's top, 0.5 -> 128/255)
    top = np.rint(0.5 * 255)
    assert (x[0, 1] * 0.224 + 0.456).mean() == pytest.approx(np.rint(0.1 * 255) / top, abs=1e-3)
    assert (x[0, 2] * 0.225 + 0.406).mean() == pytest.approx(np.rint(0.2 * 255) / top, abs=1e-3)


def test_u2netp_backend_uses_the_network(tiny_model):
    img = _ramp_image()
    s = sal.compute_saliency(img, backend="u2netp", model=tiny_model)
    assert s.backend == "u2netp" and s.meta["model"] == str(tiny_model)
    assert s.saliency.shape == (90, 140) and s.saliency.dtype == np.float32
    assert s.saliency.min() >= 0 and s.saliency.max() <= 1
    err = np.abs(s.saliency - _expected_relu_red())
    assert err.mean() < 0.01 and err.max() < 0.05
    # a different network gives a different, equally predictable map: inverted ramp, no relu cut
    inv = tiny_model.with_name("inv.onnx")
    inv.write_bytes(_tiny_u2netp(weights=(-1.0, 0.0, 0.0), bias=10.0))
    s2 = sal.compute_saliency(img, backend="u2netp", model=inv).saliency
    expected = 1 - np.linspace(0, 1, 140)[None].repeat(90, 0)
    assert np.abs(s2 - expected).mean() < 0.01
    # the built-in backend does not produce that map (the test can tell the backends apart)
    rbd = sal.compute_saliency(img, backend="rbd").saliency
    assert np.abs(rbd - _expected_relu_red()).mean() > 0.1


def test_u2netp_labels_ignored_and_constant_output(tiny_model):
    img = np.full((40, 50, 3), 0.3, np.float32)  # relu(...) of a constant: flat output -> zeros
    s = sal.compute_saliency(
        img, backend="u2netp", model=tiny_model, labels=(np.zeros((40, 50), np.int32), ["others"])
    )
    assert s.backend == "u2netp" and np.all(s.saliency == 0)


def test_u2netp_through_model_store_and_context_default(u2_spec, tiny_bytes, tmp_path, monkeypatch):
    d = tmp_path / "models"
    d.mkdir()
    (d / "u2netp.onnx").write_bytes(tiny_bytes)
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(d))
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    img = _ramp_image()
    s = sal.compute_saliency(img, backend="u2netp")
    assert s.meta["model"] == str(d / "u2netp.onnx")
    assert np.abs(s.saliency - _expected_relu_red()).mean() < 0.01
    # callers that pass no backend (the recolor core) follow use_backend()
    assert sal.compute_saliency(img).backend == "rbd"
    with sal.use_backend("u2netp"):
        assert sal.default_backend() == ("u2netp", None)
        assert sal.compute_saliency(img).backend == "u2netp"
    assert sal.compute_saliency(img).backend == "rbd"
    with pytest.raises(InputError, match="unknown saliency backend"), sal.use_backend("u2net"):
        pass


def test_u2netp_missing_offline_is_one_line(ort, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as ei:
        sal.compute_saliency(_ramp_image(), backend="u2netp")
    msg = str(ei.value)
    assert "\n" not in msg and "u2netp.onnx" in msg and REAL_URL in msg and str(tmp_path) in msg
    # a wrong-size file under the right name is not used
    (tmp_path / "u2netp.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelUnavailableError, match="ignored"):
        sal.compute_saliency(_ramp_image(), backend="u2netp")


def test_bad_model_files(ort, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelUnavailableError, match="not a usable u2netp ONNX model") as ei:
        sal.compute_saliency(_ramp_image(), backend="u2netp", model=junk)
    assert "\n" not in str(ei.value)
    wrong = tmp_path / "wrong.onnx"
    wrong.write_bytes(_tiny_u2netp(size=224))
    with pytest.raises(ModelUnavailableError, match="expected one 1x3x320x320 input"):
        sal.compute_saliency(_ramp_image(), backend="u2netp", model=wrong)


def test_missing_onnxruntime(tiny_model, monkeypatch, caplog):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    with pytest.raises(ModelUnavailableError, match="pip install onnxruntime"):
        sal.compute_saliency(_ramp_image(), backend="u2netp", model=tiny_model)
    with caplog.at_level(logging.WARNING):
        s = sal.compute_saliency(_ramp_image(), backend="auto", model=tiny_model)
    assert s.backend == "rbd" and "onnxruntime" in caplog.text


def test_auto_backend(u2_spec, tiny_bytes, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path))
    monkeypatch.delenv("SEMPIX_OFFLINE", raising=False)  # auto must not try to download either
    monkeypatch.setattr(
        "sempix.models.store._download", lambda *a, **k: pytest.fail("auto must not download")
    )
    img = _ramp_image()
    with caplog.at_level(logging.WARNING):
        a = sal.compute_saliency(img, backend="auto")
        b = sal.compute_saliency(img, backend="auto")
    assert a.backend == b.backend == "rbd"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "u2netp" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    (tmp_path / "u2netp.onnx").write_bytes(tiny_bytes)
    c = sal.compute_saliency(img, backend="auto")
    assert c.backend == "u2netp" and np.abs(c.saliency - _expected_relu_red()).mean() < 0.01


# ------------------------------------------------------------------------------ download (loopback)
class _ModelHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body: ClassVar[bytes] = b""
    hits: ClassVar[list[str]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _ModelHandler.hits.append(self.path)
        body = _ModelHandler.body
        if self.path.startswith("/corrupt/"):
            body = body[:-1] + bytes([body[-1] ^ 0xFF])  # same size, wrong checksum
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def model_server():
    with loopback_server(_ModelHandler) as url:
        yield url


def test_u2netp_download_from_loopback(
    u2_spec, tiny_bytes, model_server, tmp_path, monkeypatch, tmp_cache
):
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("SEMPIX_OFFLINE", raising=False)
    _ModelHandler.body = tiny_bytes
    _ModelHandler.hits.clear()
    # a corrupt transfer is rejected and leaves nothing under the final name
    monkeypatch.setitem(
        REGISTRY,
        "u2netp",
        ModelSpec(**{**u2_spec.__dict__, "urls": (f"{model_server}/corrupt/u2netp.onnx",)}),
    )
    with pytest.raises(ModelUnavailableError, match="checksum mismatch") as ei:
        sal.compute_saliency(_ramp_image(), backend="u2netp")
    assert "\n" not in str(ei.value)
    assert not cache_dir().exists() or not any(cache_dir().iterdir())
    # the good file: downloaded into the cache, verified, then used
    monkeypatch.setitem(
        REGISTRY,
        "u2netp",
        ModelSpec(**{**u2_spec.__dict__, "urls": (f"{model_server}/good/u2netp.onnx",)}),
    )
    s = sal.compute_saliency(_ramp_image(), backend="u2netp")
    got = cache_dir() / "u2netp.onnx"
    assert got.read_bytes() == tiny_bytes and str(got).startswith(str(tmp_cache))
    assert sorted(p.name for p in cache_dir().iterdir()) == ["u2netp.onnx"]
    assert s.meta["model"] == str(got) and np.abs(s.saliency - _expected_relu_red()).mean() < 0.01
    assert _ModelHandler.hits == ["/corrupt/u2netp.onnx", "/good/u2netp.onnx"]
    sal.compute_saliency(_ramp_image(), backend="u2netp")  # cached: no new request
    assert len(_ModelHandler.hits) == 2


# ------------------------------------------------------------------------------ CLI
def _cli_images(tmp_path):
    from sempix.image import write_image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        img = np.empty((60, 80, 3), np.float32)
        img[:] = (0.3, 0.5, 0.75) if i == 0 else (0.35, 0.45, 0.85)
        img[20:40, 30:50] = (0.85, 0.2, 0.15)
        img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
        paths.append(str(write_image(tmp_path / f"im{i}.png", img)))
    return paths


def test_cli_saliency_model(tmp_path, tiny_model, monkeypatch):
    import json

    from sempix.cli import cli

    paths = _cli_images(tmp_path)
    base = [*paths, "--features", "none", "--names", "off", "-q"]
    calls = []
    real = sal._u2netp
    monkeypatch.setattr(sal, "_u2netp", lambda img, path: calls.append(path) or real(img, path))
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli, ["recolor", *base, "-o", str(out), "--json", "--saliency-model", str(tiny_model)]
    )
    assert r.exit_code == 0, r.output
    assert len(calls) == 2 and all(
        str(p) == str(tiny_model) for p in calls
    )  # one network run per image
    doc = json.loads((out / "recolor.json").read_text())
    assert doc["options"]["saliency_model"] == "u2netp"
    assert sorted(p.name for p in out.iterdir()) == ["im0.png", "im1.png", "recolor.json"]
    # missing model, offline: exit 2, one line, nothing written
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    bad = tmp_path / "bad"
    r = CliRunner().invoke(cli, ["recolor", *base, "-o", str(bad), "--saliency-model", "u2netp"])
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and r.output.startswith("error:") and "u2netp.onnx" in r.output
    assert "Traceback" not in r.output and not bad.exists()
    r = CliRunner().invoke(cli, ["recolor", *base, "-o", str(bad), "--saliency-model", "u3net"])
    assert r.exit_code == 2 and "--saliency-model" in r.output and not bad.exists()
    r = CliRunner().invoke(
        cli, ["recolor", *base, "-o", str(bad), "--saliency-model", str(tmp_path / "nope.onnx")]
    )
    assert r.exit_code == 2 and "does not exist" in r.output and not bad.exists()
    # a folder holding u2netp.onnx is accepted too
    folder = tmp_path / "mdl"
    folder.mkdir()
    (folder / "u2netp.onnx").write_bytes(tiny_model.read_bytes())
    calls.clear()
    r = CliRunner().invoke(
        cli, ["recolor", *base, "-o", str(tmp_path / "fold"), "--saliency-model", str(folder)]
    )
    assert r.exit_code == 0, r.output
    assert [str(p) for p in calls] == [str(folder / "u2netp.onnx")] * 2
    # --saliency off never needs the model
    calls.clear()
    r = CliRunner().invoke(
        cli,
        [
            "recolor",
            *base,
            "-o",
            str(tmp_path / "off"),
            "--saliency",
            "off",
            "--saliency-model",
            "u2netp",
        ],
    )
    assert r.exit_code == 0, r.output
    assert calls == []
    # auto without the model: one WARNING line, then the built-in backend
    r = CliRunner().invoke(
        cli,
        [
            "recolor",
            *paths,
            "--features",
            "none",
            "--names",
            "off",
            "-o",
            str(tmp_path / "auto"),
            "--saliency-model",
            "auto",
        ],
    )
    assert r.exit_code == 0, r.output
    assert sum("WARNING" in line for line in r.output.splitlines()) == 1 and calls == []
