"""SegFormer checkpoints through the model store, against a loopback server that speaks the
Hugging Face Hub's file-resolution protocol (HEAD/GET ``/{repo}/resolve/{revision}/{file}``
with ``X-Repo-Commit``, ``ETag``, ``Content-Length``), serving a tiny random SegFormer."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import loopback_server

from sempix.errors import ModelUnavailableError
from sempix.models import REGISTRY, find_local, get_model_path

pytest.importorskip("transformers")
pytest.importorskip("huggingface_hub")

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def tiny_segformer(tmp_path_factory) -> dict[str, bytes]:
    """config.json, preprocessor_config.json, model.safetensors of a random 150-class SegFormer."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    names = {i: f"class{i}" for i in range(150)}
    cfg = SegformerConfig(
        depths=[1, 1, 1, 1],
        hidden_sizes=[8, 16, 24, 32],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        num_labels=150,
        id2label=names,
        label2id={v: k for k, v in names.items()},
    )
    d = tmp_path_factory.mktemp("tiny-segformer")
    SegformerForSemanticSegmentation(cfg).eval().save_pretrained(d)
    (d / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 64, "width": 64}}))
    files = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    assert "model.safetensors" in files and "config.json" in files
    return files


class HubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    files: ClassVar[dict[str, bytes]] = {}
    mode: ClassVar[str] = "good"
    hits: ClassVar[list[str]] = []

    def log_message(self, *args):
        pass

    def _lookup(self) -> tuple[bytes | None, str]:
        parts = self.path.split("?")[0].strip("/").split("/")
        # owner / repo / resolve / revision / filename
        if len(parts) != 5 or parts[2] != "resolve":
            return None, ""
        return self.files.get(parts[4]), parts[4]

    def _headers(self, body: bytes) -> None:
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest() + '"')
        self.send_header("Content-Length", str(len(body)))

    def _missing(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "EntryNotFound")
        self.send_header("X-Error-Message", "Entry not found")
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        HubHandler.hits.append("HEAD " + self.path)
        body, _ = self._lookup()
        if body is None:
            return self._missing()
        self.send_response(200)
        self._headers(body)
        self.end_headers()

    def do_GET(self):
        HubHandler.hits.append("GET " + self.path)
        body, name = self._lookup()
        if body is None:
            return self._missing()
        self.send_response(200)
        self._headers(body)
        if self.mode == "trunc" and name == "model.safetensors":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hub(tiny_segformer, monkeypatch, tmp_path):
    HubHandler.files = dict(tiny_segformer)
    HubHandler.mode = "good"
    HubHandler.hits = []
    monkeypatch.delenv("SEMPIX_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path / "empty-model-dir"))
    with loopback_server(HubHandler) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield url


def test_registry_has_segformer_b0_to_b5():
    for v in range(6):
        spec = REGISTRY[f"segformer-b{v}"]
        assert spec.hf_repo.startswith(f"nvidia/segformer-b{v}-finetuned-ade-")
        assert spec.hf_repo.endswith("640-640" if v == 5 else "512-512")
        assert "config.json" in spec.hf_files
    assert len(REGISTRY["segformer-b0"].hf_revision) == 40  # pinned commit


def test_good_transfer(hub, tmp_cache):
    p = get_model_path("segformer-b0", progress=False)
    assert p.name == "segformer-b0-finetuned-ade-512-512" and tmp_cache in p.parents
    assert (p / "model.safetensors").read_bytes() == HubHandler.files["model.safetensors"]
    src = json.loads((p / ".sempix-source.json").read_text())
    assert src["commit"] == COMMIT and src["revision"] == REGISTRY["segformer-b0"].hf_revision
    # the pinned revision is what was requested
    assert any(REGISTRY["segformer-b0"].hf_revision in h for h in HubHandler.hits)
    assert not list(p.parent.glob(".*.part"))
    assert find_local("segformer-b0") == p
    n = len(HubHandler.hits)
    assert get_model_path("segformer-b0") == p and len(HubHandler.hits) == n  # no new request


def test_weights_fall_back_to_pytorch_model_bin(hub):
    import io

    import torch
    from safetensors.torch import load as load_safetensors

    files = dict(HubHandler.files)
    buf = io.BytesIO()
    torch.save(load_safetensors(files.pop("model.safetensors")), buf)
    files["pytorch_model.bin"] = buf.getvalue()
    HubHandler.files = files  # the server answers 404 EntryNotFound for model.safetensors
    p = get_model_path("segformer-b3", progress=False)
    assert (p / "pytorch_model.bin").is_file() and not (p / "model.safetensors").exists()


def test_truncated_transfer_leaves_nothing(hub, tmp_cache):
    HubHandler.mode = "trunc"
    with pytest.raises(ModelUnavailableError, match="could not download model 'segformer-b2'"):
        get_model_path("segformer-b2", progress=False)
    models = tmp_cache / "models"
    assert not (models / "segformer-b2-finetuned-ade-512-512").exists()
    assert not list(models.glob(".*.part"))


def test_server_down(monkeypatch, tmp_cache, tmp_path):
    import types

    from huggingface_hub.utils import _http

    # the Hub client retries refused connections 5 times with 1..8 s back-off (23 s): real
    # connections, no sleeping
    sleeps: list[float] = []
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=sleeps.append))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.delenv("SEMPIX_OFFLINE", raising=False)
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelUnavailableError, match="could not download model 'segformer-b1'"):
        get_model_path("segformer-b1", progress=False)
    assert sleeps  # it did retry
    assert not (tmp_cache / "models" / "segformer-b1-finetuned-ade-512-512").exists()


def test_offline_never_downloads(hub, monkeypatch, tmp_cache):
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as ei:
        get_model_path("segformer-b2")
    msg = str(ei.value)
    assert "SEMPIX_OFFLINE=1" in msg and "sempix models fetch segformer-b2" in msg
    assert "huggingface.co/nvidia/segformer-b2-finetuned-ade-512-512" in msg
    assert str(tmp_cache / "models" / "segformer-b2-finetuned-ade-512-512") in msg
    assert HubHandler.hits == []


def test_cli_fetch_and_backend(hub, tmp_cache):
    from sempix.cli import cli

    r = CliRunner().invoke(cli, ["models", "fetch", "segformer-b2", "-q"])
    assert r.exit_code == 0, r.output
    assert "segformer-b2-finetuned-ade-512-512" in r.output
    r = CliRunner().invoke(cli, ["models", "path", "segformer-b2"])
    assert r.exit_code == 0 and r.output.strip().endswith("segformer-b2-finetuned-ade-512-512")
    # the backend runs the fetched checkpoint (plumbing only: the weights are random)
    from sempix.features import compute_features

    rng = np.random.default_rng(0)
    fm = compute_features(
        rng.random((40, 56, 3), dtype=np.float32), backend="segformer-b2", strict=True, cache=False
    )
    assert fm.backend == "segformer-b2" and fm.semantic and fm.features.shape == (40, 56, 16)
    assert fm.labels.shape == (40, 56) and len(fm.class_names) == 150


def test_cli_offline_error_is_one_line(hub, monkeypatch):
    from sempix.cli import cli

    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    r = CliRunner().invoke(cli, ["models", "fetch", "segformer-b4"])
    assert r.exit_code == 2
    assert "sempix models fetch segformer-b4" in r.output and "Traceback" not in r.output
