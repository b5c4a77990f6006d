"""Typed errors -> HTTP status in one place; uploads decoded from memory (no temporary file)."""

from __future__ import annotations

import ast
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient
from PIL import Image

from sempix import errors
from sempix.web.app import create_app
from sempix.web.common import STATUS, JobManager, status_for

WEB = Path(__file__).resolve().parents[1] / "src" / "sempix" / "web"


def _png(h=24, w=32, flat=False) -> bytes:
    rng = np.random.default_rng(1)
    arr = np.zeros((h, w, 3), np.uint8) if flat else rng.integers(0, 255, (h, w, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client():
    app = create_app(
        backend="lowlevel", max_pixels=1_000_000, max_upload_bytes=2_000_000, workers=1
    )
    with TestClient(app) as c:
        yield c


def _upload(client, data: bytes):
    return client.post("/api/images", files={"file": ("t.png", data, "application/octet-stream")})


def test_status_table_covers_every_error_class_most_derived_first():
    classes = [
        c for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.SempixError)
    ]
    assert set(classes) <= set(STATUS), set(classes) - set(STATUS)
    assert status_for(errors.SessionExpiredError("x")) == 410  # before its base NotFoundError
    assert status_for(errors.NotFoundError("x")) == 404
    assert status_for(errors.NotReadyError("x")) == 409
    assert status_for(errors.TooLargeError("x")) == 413
    assert status_for(errors.InvalidRequestError("x")) == 422
    assert status_for(errors.ImageDecodeError("x")) == 400
    assert status_for(errors.BusyError("x")) == 503
    assert status_for(errors.OverBudgetError("x")) == 507
    assert status_for(errors.ModelUnavailableError("x")) == 503
    assert status_for(MemoryError()) == 507
    assert status_for(RuntimeError("too large, not found")) == 500  # words never decide

    class ToolError(errors.TooLargeError):  # a tool's own subclass inherits the status
        pass

    assert status_for(ToolError("anything")) == 413


def test_every_error_keeps_cli_exit_code_and_code_override():
    assert errors.TooLargeError("x").exit_code == 2  # an InputError: exit 2 in the CLI
    assert errors.BusyError("x").exit_code == 1
    e = errors.NotFoundError("x", code="session_unknown")
    assert e.code == "session_unknown" and errors.NotFoundError("y").code == "not_found"
    assert isinstance(errors.ImageDecodeError("x"), ValueError)  # old `except ValueError` works


def test_web_raises_typed_errors_only():
    """No ad-hoc status codes in web/: no ``ApiError(...)`` call and no HTTPException."""
    offenders = []
    for path in WEB.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
                if name in ("ApiError", "HTTPException"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders


def test_upload_is_decoded_in_memory(client, monkeypatch, tmp_path):
    """No temporary file: tempfile's creators fail and the temp folder stays empty."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def refuse(*a, **k):
        raise AssertionError("an upload must not be written to a temporary file")

    # (TemporaryFile stays: numba's cache probe and Starlette's spooled upload buffer use it)
    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    r = _upload(client, _png())
    assert r.status_code == 201, r.text
    assert r.json()["width"] == 32 and r.json()["height"] == 24
    r = _upload(client, b"not an image at all" * 20)
    assert r.status_code == 400 and r.json()["code"] == "unsupported_format"
    assert "upload" in r.json()["error"]
    assert list(tmp_path.iterdir()) == []


def test_status_comes_from_the_class_not_the_words(client, monkeypatch):
    import sempix.image

    def raise_(exc):
        def f(*a, **k):
            raise exc

        return f

    monkeypatch.setattr(sempix.image, "read_image", raise_(errors.TooLargeError("no such words")))
    r = _upload(client, _png())
    assert r.status_code == 413 and r.json() == {"error": "no such words", "code": "too_large"}
    # a plain InputError that mentions pixels and "too" stays a 400 (it used to become a 413)
    msg = "upload: too many pixels in a row"
    monkeypatch.setattr(sempix.image, "read_image", raise_(errors.InputError(msg)))
    r = _upload(client, _png())
    assert r.status_code == 400 and r.json() == {"error": msg}


def test_pixel_limit_message_is_the_servers(client):
    big = _png(1100, 1000, flat=True)  # 1.1 MP > 1 MP
    r = _upload(client, big)
    assert r.status_code == 413
    assert "1000x1100" in r.json()["error"] and "at most 1.0 MP" in r.json()["error"]


def test_session_and_job_errors_map_to_status_and_code(client):
    r = client.get("/api/sessions/never")
    assert r.status_code == 404 and r.json()["code"] == "session_unknown"
    sid = _upload(client, _png()).json()["session"]
    assert client.delete(f"/api/sessions/{sid}").status_code in (200, 204)
    r = client.get(f"/api/sessions/{sid}")
    assert r.status_code == 410 and r.json()["code"] == "session_gone"
    r = client.get("/api/jobs/never")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "exc,status",
    [
        (errors.NotFoundError("gone"), 404),
        (errors.ModelUnavailableError("no model"), 503),
        (MemoryError(), 507),
        (KeyError("bug"), 500),
    ],
)
def test_job_failures_keep_their_class(exc, status):
    jm = JobManager(workers=1)
    try:
        def fail(progress):
            raise exc

        j = jm.submit(fail)
        jm.wait(j, 10)
        st = jm.status(j)
        assert st["state"] == "error" and st["status"] == status
        with pytest.raises(errors.SempixError) as e:
            jm.result(j)
        assert status_for(e.value) == status
        if isinstance(exc, errors.SempixError):
            assert e.value is exc or type(e.value) is type(exc)
    finally:
        jm.shutdown()
