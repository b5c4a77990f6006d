"""HTTP API of the recolor page (FastAPI TestClient; the browser test covers the page itself)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from sempix.web.app import create_app


def _png(seed: int, tint=(1.0, 1.0, 1.0)) -> bytes:
    rng = np.random.default_rng(seed)
    img = np.zeros((50, 80, 3), np.float32)
    img[:, :40] = (0.8, 0.5, 0.2)
    img[:, 40:] = (0.2, 0.45, 0.8)
    img = np.clip(img * np.array(tint) + rng.normal(0, 0.01, img.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _wait(client, job):
    for _ in range(2400):  # 240 s: the shared CI machine can be very loaded
        st = client.get(f"/api/jobs/{job}").json()
        if st["state"] in ("done", "error"):
            return st
        time.sleep(0.1)
    raise AssertionError("job did not finish")


def test_recolor_api_flow(model_dir):
    client = TestClient(create_app(backend="lowlevel", workers=1))
    files = [("files", (f"im{i}.png", _png(i, t), "image/png"))
             for i, t in enumerate([(1, 1, 1), (1, 0.8, 0.7), (0.8, 0.9, 1)])]
    r = client.post("/api/recolor/sessions", files=files)
    assert r.status_code == 201, r.text
    sid, job = r.json()["session"], r.json()["job"]
    assert _wait(client, job)["state"] == "done"
    st = client.get(f"/api/recolor/{sid}").json()
    assert len(st["images"]) == 3 and st["group"]
    out0 = client.get(st["images"][0]["output"])
    assert out0.status_code == 200 and out0.headers["content-type"] == "image/png"
    # edit all group colours
    colors = ["#ff00ff"] * len(st["group"])
    r = client.post(f"/api/recolor/{sid}/group", json={"colors": colors})
    assert r.status_code == 200 and r.json()["version"] == st["version"] + 1
    out1 = client.get(r.json()["images"][0]["output"])
    assert out1.content != out0.content
    # re-solve with other modules
    r = client.post(
        f"/api/recolor/{sid}/solve",
        json={
            "saliency": "off",
            "names": None,
            "harmonize": False,
            "wb": ["off", "on", "auto"],
            "group_size": 2,
        },
    )
    assert r.status_code == 202
    assert _wait(client, r.json()["job"])["state"] == "done"
    st = client.get(f"/api/recolor/{sid}").json()
    assert st["options"]["wb"] == ["off", "on", "auto"] and st["images"][1]["wb_applied"] is True
    assert len(st["group"]) == 2
    # bad requests: clear JSON errors
    assert (
        client.post(f"/api/recolor/{sid}/group", json={"colors": ["#ff00ff"] * 7}).status_code
        == 400
    )
    assert (
        client.post(f"/api/recolor/{sid}/group", json={"colors": ["nope"] * 2}).status_code == 400
    )
    assert client.post(f"/api/recolor/{sid}/solve", json={"saliency": "maybe"}).status_code == 400
    assert client.get(f"/api/recolor/{sid}/output/9").status_code == 404
    assert client.get("/api/recolor/unknown-session").status_code == 404
    r = client.post(
        "/api/recolor/sessions", files=[("files", ("x.png", b"not an image", "image/png"))]
    )
    assert r.status_code == 400 and "error" in r.json()
    assert client.post("/api/recolor/sessions").status_code == 400
    assert client.delete(f"/api/recolor/{sid}").status_code == 200
    assert client.get("/recolor").status_code == 200


# ------------------------------------------------------------------------------------- saliency
# model
def _red_disc_png(bg) -> bytes:
    img = np.empty((60, 80, 3), np.float32)
    img[:] = bg
    yy, xx = np.mgrid[:60, :80]
    img[(yy - 30) ** 2 + (xx - 40) ** 2 < 12**2] = (1.0, 0.2, 0.15)
    buf = io.BytesIO()
    Image.fromarray((img * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def saliency_calls(monkeypatch):
    """Backend/model of every compute_saliency call of the recolor core (the real function runs)."""
    from sempix.recolor import core

    calls = []
    real = core.compute_saliency

    def spy(image, **kw):
        calls.append((kw.get("backend"), None if kw.get("model") is None else str(kw["model"])))
        return real(image, **kw)

    monkeypatch.setattr(core, "compute_saliency", spy)
    return calls


def test_recolor_api_saliency_model(model_dir, tmp_cache, monkeypatch, saliency_calls):
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install onnxruntime)")
    import hashlib

    from test_saliency import _tiny_u2netp

    from sempix.models import REGISTRY, ModelSpec, cache_dir

    monkeypatch.setenv("SEMPIX_OFFLINE", "1")
    monkeypatch.setattr(
        "sempix.models.store._download",
        lambda *a, **k: pytest.fail("the web API must never download a model"),
    )
    client = TestClient(create_app(backend="lowlevel", workers=1))
    files = [
        ("files", (f"d{i}.png", _red_disc_png(bg), "image/png"))
        for i, bg in enumerate([(0.3, 0.5, 0.75), (0.35, 0.45, 0.85)])
    ]
    r = client.post("/api/recolor/sessions", files=files)
    sid = r.json()["session"]
    assert _wait(client, r.json()["job"])["state"] == "done"
    st = client.get(f"/api/recolor/{sid}").json()
    assert st["options"]["saliency_model"] == "rbd" and st["options"]["saliency_backend"] == "rbd"
    assert "saliency_model_file" not in st["options"]  # no server paths in answers
    assert all({"wb_dominance", "wb_strength"} <= set(im) for im in st["images"])
    assert saliency_calls == [("rbd", None)] * 2
    solve = lambda **kw: client.post(f"/api/recolor/{sid}/solve", json=kw)
    # u2netp without its file on the server: an immediate one-line 400, no job, nothing changes
    r = solve(saliency_model="u2netp")
    assert r.status_code == 400, r.text
    msg = r.json()["error"]
    assert "\n" not in msg and "u2netp.onnx" in msg and "sempix models fetch u2netp" in msg
    assert solve(saliency_model="u3net").status_code == 400
    assert "saliency_model" in solve(saliency_model="u3net").json()["error"]
    # auto without the file: the built-in backend (cached map reused: no new computation)
    r = solve(saliency_model="auto")
    assert r.status_code == 202 and _wait(client, r.json()["job"])["state"] == "done"
    st = client.get(f"/api/recolor/{sid}").json()
    assert st["options"]["saliency_model"] == "auto" and st["options"]["saliency_backend"] == "rbd"
    assert len(saliency_calls) == 2
    # the file appears in the model store (tiny stand-in network registered under u2netp's name)
    tiny = _tiny_u2netp()
    real = REGISTRY["u2netp"]
    monkeypatch.setitem(
        REGISTRY,
        "u2netp",
        ModelSpec(
            name="u2netp",
            filename=real.filename,
            sha256=hashlib.sha256(tiny).hexdigest(),
            size=len(tiny),
            licence="test only",
            urls=real.urls,
            description="tiny test network",
        ),
    )
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "u2netp.onnx").write_bytes(tiny)
    path = str(cache_dir() / "u2netp.onnx")
    r = solve(saliency_model="u2netp")
    assert r.status_code == 202 and _wait(client, r.json()["job"])["state"] == "done"
    st = client.get(f"/api/recolor/{sid}").json()
    assert (
        st["options"]["saliency_model"] == "u2netp"
        and st["options"]["saliency_backend"] == "u2netp"
    )
    assert saliency_calls[2:] == [("u2netp", path)] * 2  # computed, not the cached rbd maps
    for im in st["images"]:  # the tiny network marks the red disc salient
        red = [c for c in im["colors"] if c["hex"].lower().startswith("#ff")]
        assert red and all(c["group"] == "salient" for c in red)
    # switching back and forth reuses each backend's own maps; auto now finds the file
    for name, backend in (("rbd", "rbd"), ("u2netp", "u2netp"), ("auto", "u2netp")):
        r = solve(saliency_model=name)
        assert _wait(client, r.json()["job"])["state"] == "done"
        assert client.get(f"/api/recolor/{sid}").json()["options"]["saliency_backend"] == backend
    assert len(saliency_calls) == 4
    # semantic grouping / saliency off never need the model
    monkeypatch.setitem(REGISTRY, "u2netp", real)  # the stand-in no longer matches: "missing" again
    r = solve(saliency_model="u2netp", saliency="off")
    assert r.status_code == 202 and _wait(client, r.json()["job"])["state"] == "done"
    assert client.get(f"/api/recolor/{sid}").json()["options"]["saliency_backend"] is None
    assert solve(saliency_model="u2netp").status_code == 400
