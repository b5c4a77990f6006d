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
    for _ in range(600):
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
    r = client.post(f"/api/recolor/{sid}/solve", json={"saliency": "off", "names": None, "harmonize": False,
                                                      "wb": ["off", "on", "auto"], "group_size": 2})
    assert r.status_code == 202
    assert _wait(client, r.json()["job"])["state"] == "done"
    st = client.get(f"/api/recolor/{sid}").json()
    assert st["options"]["wb"] == ["off", "on", "auto"] and st["images"][1]["wb_applied"] is True
    assert len(st["group"]) == 2
    # bad requests: clear JSON errors
    assert client.post(f"/api/recolor/{sid}/group", json={"colors": ["#ff00ff"] * 7}).status_code == 400
    assert client.post(f"/api/recolor/{sid}/group", json={"colors": ["nope"] * 2}).status_code == 400
    assert client.post(f"/api/recolor/{sid}/solve", json={"saliency": "maybe"}).status_code == 400
    assert client.get(f"/api/recolor/{sid}/output/9").status_code == 404
    assert client.get("/api/recolor/unknown-session").status_code == 404
    r = client.post("/api/recolor/sessions", files=[("files", ("x.png", b"not an image", "image/png"))])
    assert r.status_code == 400 and "error" in r.json()
    assert client.post("/api/recolor/sessions").status_code == 400
    assert client.delete(f"/api/recolor/{sid}").status_code == 200
    assert client.get("/recolor").status_code == 200
