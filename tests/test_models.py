"""Tests of the model store, with a real HTTP server on 127.0.0.1 (no real model downloads)."""

from __future__ import annotations

import hashlib
import http.server
import socket
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from conftest import loopback_server

from sempix.cli import cli
from sempix.errors import InputError, ModelUnavailableError
from sempix.models import (
    REGISTRY,
    ModelSpec,
    cache_dir,
    download,
    find_local,
    get_model_path,
    is_available,
    model_urls,
    verify_file,
)

PAYLOAD = bytes(range(256)) * 40 + b"sempix test model\n"  # 10258 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: ClassVar[list[str]] = []

    def log_message(self, *args):  # silence
        pass

    def do_GET(self):
        _Handler.hits.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/good/") or self.path.startswith("/mirror/"):
            body = PAYLOAD
        elif self.path.startswith("/bad/"):
            body = bytes(reversed(PAYLOAD))  # same size, wrong content
        elif self.path.startswith("/short/"):
            body = PAYLOAD[:-100]  # honest Content-Length, but not the registered size
        elif self.path.startswith("/trunc/"):
            # announce the full length, send half, close the connection
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        else:
            self.send_error(404, f"no {name}")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    with loopback_server(_Handler) as url:
        yield url


@pytest.fixture
def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def spec(server, monkeypatch):
    sp = ModelSpec(
        name="test-tiny",
        filename="tiny_model.bin",
        sha256=SHA,
        size=len(PAYLOAD),
        licence="test only",
        urls=(f"{server}/good/tiny_model.bin",),
        description="tiny fake model served from 127.0.0.1",
        aliases=("tiny_alias.bin",),
    )
    monkeypatch.setitem(REGISTRY, sp.name, sp)
    monkeypatch.delenv("SEMPIX_MODEL_DIR", raising=False)
    monkeypatch.delenv("SEMPIX_OFFLINE", raising=False)
    monkeypatch.delenv("SEMPIX_MODEL_URL_BASE", raising=False)
    _Handler.hits.clear()
    return sp


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# ------------------------------------------------------------------------------ downloads


def test_download_good_file(spec, tmp_cache):
    assert not is_available("test-tiny")
    p = get_model_path("test-tiny", progress=False)
    assert p == cache_dir() / "tiny_model.bin" and p.read_bytes() == PAYLOAD
    assert str(p).startswith(str(tmp_cache))
    assert _leftovers(cache_dir()) == ["tiny_model.bin"]  # no .part file left
    assert is_available("test-tiny")
    # second call: found in the cache, no new request
    n = len(_Handler.hits)
    assert get_model_path("test-tiny", progress=False) == p
    assert len(_Handler.hits) == n == 1


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("bad", "checksum mismatch"),
        ("trunc", "bytes|IncompleteRead|incomplete"),
        ("short", "expected"),
    ],
)
def test_bad_downloads_never_left_under_final_name(spec, server, kind, reason):
    url = f"{server}/{kind}/tiny_model.bin"
    with pytest.raises(ModelUnavailableError, match=reason) as ei:
        get_model_path("test-tiny", urls=[url], progress=False)
    msg = str(ei.value)
    assert "\n" not in msg and "put it in" in msg and url in msg
    assert _leftovers(cache_dir()) == []
    assert not is_available("test-tiny")


def test_server_down(spec, closed_port_url):
    with pytest.raises(ModelUnavailableError, match="could not download") as ei:
        get_model_path("test-tiny", urls=[closed_port_url + "/tiny_model.bin"], progress=False)
    assert "refused" in str(ei.value).lower() and "\n" not in str(ei.value)
    assert _leftovers(cache_dir()) == []


def test_urls_tried_in_order(spec, server, closed_port_url):
    urls = [closed_port_url + "/x", f"{server}/bad/tiny_model.bin", f"{server}/good/tiny_model.bin"]
    p = download("test-tiny", urls=urls, progress=False)
    assert p.read_bytes() == PAYLOAD
    assert _Handler.hits == ["/bad/tiny_model.bin", "/good/tiny_model.bin"]
    assert _leftovers(cache_dir()) == ["tiny_model.bin"]


def test_http_error(spec, server):
    with pytest.raises(ModelUnavailableError, match="HTTP 404"):
        download("test-tiny", urls=[f"{server}/missing/tiny_model.bin"], progress=False)


def test_offline_env(spec, monkeypatch):
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="SEMPIX_OFFLINE=1") as ei:
        get_model_path("test-tiny", progress=False)
    msg = str(ei.value)
    assert "tiny_model.bin" in msg and str(cache_dir()) in msg and "\n" not in msg
    assert _Handler.hits == []  # never contacted
    with pytest.raises(ModelUnavailableError, match="SEMPIX_OFFLINE"):
        download("test-tiny", progress=False)


def test_url_base_env(spec, server, monkeypatch):
    monkeypatch.setenv("SEMPIX_MODEL_URL_BASE", f"{server}/mirror/")
    assert model_urls("test-tiny") == [f"{server}/mirror/tiny_model.bin"]
    assert get_model_path("test-tiny", progress=False).read_bytes() == PAYLOAD
    assert _Handler.hits == ["/mirror/tiny_model.bin"]


def test_progress_callable_and_rich_bar(spec, server, capsys):
    seen = []
    download("test-tiny", progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in seen)
    (cache_dir() / "tiny_model.bin").unlink()
    download("test-tiny", progress=True)  # rich bar on stderr; must not break
    assert capsys.readouterr().out == ""


def test_sha256_prefix_like_torchvision(server, monkeypatch):
    sp = ModelSpec(
        "test-prefix",
        "prefix-" + SHA[:8] + ".pth",
        SHA[:8],
        None,
        "test",
        (f"{server}/good/x",),
        "prefix-checked file",
    )
    monkeypatch.setitem(REGISTRY, sp.name, sp)
    assert get_model_path(sp, progress=False).read_bytes() == PAYLOAD
    bad = ModelSpec("test-prefix2", "p2.pth", "00000000", None, "test", (f"{server}/good/x",), "")
    with pytest.raises(ModelUnavailableError, match="checksum"):
        get_model_path(bad, progress=False)


# ------------------------------------------------------------------------------ resolution order


def test_resolution_order(spec, tmp_path, monkeypatch):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    cache_dir().mkdir(parents=True)
    (cache_dir() / "tiny_model.bin").write_bytes(PAYLOAD)
    assert get_model_path("test-tiny", download=False) == cache_dir() / "tiny_model.bin"
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(model_dir))
    (model_dir / "tiny_alias.bin").write_bytes(PAYLOAD)  # alias names count
    assert get_model_path("test-tiny", download=False) == model_dir / "tiny_alias.bin"
    explicit = tmp_path / "elsewhere.bin"
    explicit.write_bytes(b"anything")
    assert get_model_path("test-tiny", explicit) == explicit
    assert get_model_path("test-tiny", model_dir) == model_dir / "tiny_alias.bin"  # a folder
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        get_model_path("test-tiny", tmp_path / "nope.bin")
    assert _Handler.hits == []


def test_wrong_size_skipped_and_verify(spec, tmp_path, monkeypatch):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(model_dir))
    (model_dir / "tiny_model.bin").write_bytes(PAYLOAD[:-1])  # wrong size: skipped
    assert find_local("test-tiny") is None
    with pytest.raises(ModelUnavailableError, match="ignored .* expected"):
        get_model_path("test-tiny", download=False)
    # same size, wrong content: the sha256 (checked once per process) rejects it too (issue 12)
    (model_dir / "tiny_model.bin").write_bytes(bytes(reversed(PAYLOAD)))
    assert find_local("test-tiny") is None
    assert find_local("test-tiny", verify=True) is None
    ok, msg = verify_file(model_dir / "tiny_model.bin", "test-tiny")
    assert not ok and "sha256" in msg
    # the user's corrupt file is skipped (never deleted) and a good copy is downloaded to the cache
    assert get_model_path("test-tiny", progress=False) == cache_dir() / "tiny_model.bin"
    assert (model_dir / "tiny_model.bin").read_bytes() == bytes(reversed(PAYLOAD))


def test_not_found_message(spec):
    with pytest.raises(ModelUnavailableError) as ei:
        get_model_path("test-tiny", download=False)
    msg = str(ei.value)
    assert "sempix models fetch test-tiny" in msg and "SEMPIX_MODEL_DIR" in msg and "\n" not in msg


def test_unknown_model_is_input_error():
    with pytest.raises(InputError, match="known models"):
        get_model_path("no-such-model")


# ------------------------------------------------------------------------------ CLI


def test_cli_models_list_fetch_path(spec, server, monkeypatch):
    runner = CliRunner()
    r = runner.invoke(cli, ["models", "list"])
    assert r.exit_code == 0, r.output
    assert (
        "test-tiny" in r.output
        and "tiny_model.bin" in r.output
        and "no (sempix models fetch" in r.output
    )
    r = runner.invoke(cli, ["models", "path", "test-tiny"])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["models", "fetch", "test-tiny", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "downloaded" in r.output
    r = runner.invoke(cli, ["models", "path", "test-tiny", "--verify"])
    assert r.exit_code == 0 and r.output.strip().endswith("tiny_model.bin")
    r = runner.invoke(cli, ["models", "fetch", "test-tiny"])
    assert r.exit_code == 0 and "already available" in r.output
    r = runner.invoke(cli, ["models", "list", "--json"])
    assert r.exit_code == 0 and '"local": "' in r.output
    # corrupt the cached copy (same size): path --verify fails with exit 2
    (cache_dir() / "tiny_model.bin").write_bytes(bytes(reversed(PAYLOAD)))
    r = runner.invoke(cli, ["models", "path", "test-tiny", "--verify"])
    assert r.exit_code == 2 and "sha256" in r.output
    r = runner.invoke(cli, ["models", "fetch", "nope"])
    assert r.exit_code == 2 and "unknown model" in r.output


def test_cli_fetch_offline(spec, monkeypatch):
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    r = CliRunner().invoke(cli, ["models", "fetch", "test-tiny"])
    assert r.exit_code == 2
    assert (
        r.output.count("\n") == 1 and r.output.startswith("error:") and "SEMPIX_OFFLINE" in r.output
    )


# ------------------------------------------------------------------------------ real files


# vgg19, u2netp and the BRISQUE / LPIPS files are user downloads: not in the shared model folder
_USER_DOWNLOADS = ("vgg19", "u2netp", "brisque-svm", "brisque-range", "alexnet", "lpips-alex")


@pytest.mark.realmodel
# (nor are the SegFormer Hub folders: tests/test_models_hub.py)
@pytest.mark.parametrize(
    "name", [n for n in REGISTRY if n not in _USER_DOWNLOADS and not REGISTRY[n].hf_repo]
)
def test_shared_model_files_verify(model_dir, monkeypatch, name):
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    p = get_model_path(name)
    assert p.parent == model_dir
    ok, msg = verify_file(p, name)
    assert ok, msg


def test_stale_part_files_cleaned(spec):
    import os
    import time

    cache_dir().mkdir(parents=True)
    old = cache_dir() / ".tiny_model.bin.abc123.part"
    old.write_bytes(b"left by a killed download")
    past = time.time() - 2 * 86400
    os.utime(old, (past, past))
    fresh = cache_dir() / ".tiny_model.bin.def456.part"  # maybe another process right now
    fresh.write_bytes(b"in progress")
    download("test-tiny", progress=False)
    assert not old.exists() and fresh.exists()


# ----------------------------------------------------------------- corrupt files (issue 12)


def _flip(p: Path, offset: int = 1000, n: int = 4096) -> None:
    data = bytearray(p.read_bytes())
    for i in range(offset, min(len(data), offset + n)):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))


def test_corrupt_cached_model_is_refetched_with_one_warning(spec, caplog):
    good = get_model_path("test-tiny", progress=False)
    _flip(good)
    assert not verify_file(good, "test-tiny")[0]
    _Handler.hits.clear()
    with caplog.at_level("WARNING", logger="sempix.models"):
        p = get_model_path("test-tiny", progress=False)
        get_model_path("test-tiny", progress=False)
    assert p == good and p.read_bytes() == PAYLOAD
    assert len(_Handler.hits) == 1  # downloaded again once
    warnings = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 1 and "downloaded a verified copy" in warnings[0].getMessage()


def test_corrupt_model_offline_is_unavailable(spec, monkeypatch):
    good = get_model_path("test-tiny", progress=False)
    _flip(good)
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="corrupt.*sempix models fetch test-tiny"):
        get_model_path("test-tiny")
    assert not is_available("test-tiny")


def test_verdict_cached_per_file_state(spec, monkeypatch):
    from sempix.models import store

    calls = []
    real = store.sha256_file
    monkeypatch.setattr(store, "sha256_file", lambda p: calls.append(p) or real(p))
    p = get_model_path("test-tiny", progress=False)  # downloaded: verified while streaming
    for _ in range(3):
        assert find_local("test-tiny") == p
    assert calls == []
    _flip(p)  # rewritten in place: new mtime -> checked again
    assert find_local("test-tiny") is None
    assert len(calls) == 1
    assert find_local("test-tiny") is None
    assert len(calls) == 1


def test_cli_fetch_does_not_call_a_corrupt_file_available(spec):
    runner = CliRunner()
    assert runner.invoke(cli, ["models", "fetch", "test-tiny", "-q"]).exit_code == 0
    _flip(cache_dir() / "tiny_model.bin")
    r = runner.invoke(cli, ["models", "fetch", "test-tiny", "-q"])
    assert r.exit_code == 0, r.output
    assert "already available" not in r.output and "downloaded" in r.output
    assert (cache_dir() / "tiny_model.bin").read_bytes() == PAYLOAD


def test_corrupt_tflite_header_gets_a_fix_hint(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from sempix.features.ade20k import _Runner

    bad = tmp_path / "deeplabv3_mnv2_ade20k.tflite"
    bad.write_bytes(b"\x00" * 4096)
    with pytest.raises(
        ModelUnavailableError, match="corrupt.*sempix models fetch deeplabv3-mnv2-ade20k"
    ):
        _Runner(bad)


@pytest.mark.timeout(300)
def test_features_strict_refuses_a_corrupt_ade20k_copy(ade20k_available, tmp_path, monkeypatch):
    """4 KB flipped inside the model gave exit 0 with wrong classes, even with --strict."""
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    for f in ade20k_available.parent.iterdir():
        if f.is_file() and f.stat().st_size < 50_000_000:
            shutil.copy(f, models / f.name)
    _flip(models / ade20k_available.name, offset=200_000)
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(models))
    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    import numpy as np
    from PIL import Image

    img = tmp_path / "i.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(
        img
    )
    r = CliRunner().invoke(
        cli, ["features", str(img), "-o", str(tmp_path / "f.npz"), "--strict", "-q"]
    )
    assert r.exit_code == 2, r.output
    assert "corrupt" in r.output and not (tmp_path / "f.npz").exists()
