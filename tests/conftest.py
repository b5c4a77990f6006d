"""Shared fixtures. Tests needing real models/data skip with
a reason when the env vars are unset."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest


def _env_dir(var: str) -> Path | None:
    value = os.environ.get(var)
    if not value:
        return None
    p = Path(value)
    return p if p.is_dir() else None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature/model cache so tests never share state through disk."""
    cache = tmp_path_factory.mktemp("sempix-cache")
    monkeypatch.setenv("SEMPIX_CACHE_DIR", str(cache))
    yield cache


@pytest.fixture
def tmp_cache(_isolated_cache):
    return _isolated_cache


@pytest.fixture
def model_dir() -> Path:
    d = _env_dir("SEMPIX_MODEL_DIR")
    if d is None:
        pytest.skip("SEMPIX_MODEL_DIR is not set (real-model test)")
    return d


@pytest.fixture
def data_dir() -> Path:
    d = _env_dir("SEMPIX_DATA_DIR")
    if d is None:
        pytest.skip("SEMPIX_DATA_DIR is not set (real-data test)")
    return d


@pytest.fixture
def ade20k_available(model_dir) -> Path:
    p = model_dir / "deeplabv3_mnv2_ade20k.tflite"
    if not p.is_file():
        pytest.skip(f"{p} not found (real-model test)")
    return p


@pytest.fixture
def w2c_available(model_dir) -> Path:
    """The colour-naming model (palette names, harmonize, recolor's name guard)."""
    p = model_dir / "w2c_vandeweijer2009.mat"
    if not p.is_file():
        pytest.skip(f"{p} not found (real-model test)")
    return p


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@contextlib.contextmanager
def loopback_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (random port) in a thread; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
