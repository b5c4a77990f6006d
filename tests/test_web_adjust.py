"""HTTP tests of the Style panel (sempix.web.routes.adjust): loading and validating a style file,
the preview, the adjustment maps, click re-assignment of regions, the full-resolution job."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
torch = pytest.importorskip("torch")
from _adjust_style import tiny_style  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from sempix.web.app import create_app  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    return tiny_style(tmp_path_factory.mktemp("style"))


def _scene(h=48, w=64) -> np.ndarray:
    """Blue left half, yellow right half."""
    rng = np.random.default_rng(3)
    img = np.zeros((h, w, 3), np.float32)
    img[:, : w // 2] = (0.15, 0.27, 0.62)
    img[:, w // 2 :] = (0.86, 0.75, 0.24)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _decode(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float32) / 255.0


def _wait(client, job: str, timeout=120.0) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = client.get(f"/api/jobs/{job}").json()
        if st["state"] in ("done", "error", "cancelled"):
            return st
        time.sleep(0.05)
    raise AssertionError("job did not finish")


@pytest.fixture
def client(style):
    app = create_app(backend="lowlevel", workers=1, max_upload_bytes=20_000_000,
                     adjust_styles_dir=str(style.parent))
    with TestClient(app) as c:
        yield c


def _session(client) -> str:
    r = client.post("/api/images", files={"file": ("s.png", _png(_scene()), "image/png")})
    assert r.status_code == 201, r.text
    assert _wait(client, r.json()["job"])["state"] == "done"
    return r.json()["session"]


def _upload_style(client, sid, data: bytes, name="style.pt"):
    return client.post(f"/api/sessions/{sid}/adjust/upload",
                       files={"file": (name, data, "application/octet-stream")})


def test_load_validate_preview_maps_edit_render(client, style):
    sid = _session(client)
    assert client.get(f"/api/sessions/{sid}/adjust/style").status_code == 404  # none loaded
    assert client.post(f"/api/sessions/{sid}/adjust/preview", json={}).status_code == 404
    # validation: not a checkpoint, a checkpoint of another kind
    r = _upload_style(client, sid, b"not a torch file")
    assert r.status_code == 400 and "style file" in r.json()["error"]
    ck = torch.load(style, weights_only=True)
    ck["config"]["model"]["kind"] = "sempix-other/1"
    buf = io.BytesIO()
    torch.save(ck, buf)
    r = _upload_style(client, sid, buf.getvalue())
    assert r.status_code == 400 and "sempix-adjust/1" in r.json()["error"]
    # a real style: uploaded, or by name from the server's styles folder
    r = _upload_style(client, sid, style.read_bytes(), "mine.pt")
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["name"] == "mine.pt" and info["k"] == 2 and info["adjustment_maps"]
    assert len(info["colors"]) == 2
    listed = client.get("/api/adjust/styles").json()
    assert style.name in listed["styles"]
    r = client.post(f"/api/sessions/{sid}/adjust/style", json={"name": style.name})
    assert r.status_code == 200 and r.json()["name"] == style.name
    for bad in ("../etc/passwd.pt", "x/y.pt", "missing.pt"):
        r = client.post(f"/api/sessions/{sid}/adjust/style", json={"name": bad})
        assert r.status_code in (400, 404), (bad, r.status_code)
    # preview: the style changes the photo; the working copy keeps the aspect ratio
    r = client.post(f"/api/sessions/{sid}/adjust/preview", json={})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    base = _decode(r.content)
    assert base.shape == (48, 64, 3)
    assert np.abs(base - _scene() / 255.0).mean() > 0.02
    # maps: a coloured overlay + preset shares that sum to 1
    r = client.post(f"/api/sessions/{sid}/adjust/maps", json={})
    assert r.status_code == 200
    shares = json.loads(r.headers["X-Shares"])
    assert len(shares) == 2 and sum(shares) == pytest.approx(1.0, abs=1e-3)
    # a click on the blue half assigns that region to preset 1: only the left half changes
    edit = {"x": 10, "y": 20, "preset": 1}
    r = client.post(f"/api/sessions/{sid}/adjust/maps", json={"edits": [edit]})
    shares1 = json.loads(r.headers["X-Shares"])
    assert shares1[0] > shares[0] + 0.3  # the blue half (50 %) is now preset 1
    r2 = client.post(f"/api/sessions/{sid}/adjust/maps", json={"edits": [{**edit, "preset": 2}]})
    assert json.loads(r2.headers["X-Shares"])[1] > shares1[1] + 0.3
    e1 = _decode(client.post(f"/api/sessions/{sid}/adjust/preview",
                             json={"edits": [edit]}).content)
    e2 = _decode(client.post(f"/api/sessions/{sid}/adjust/preview",
                             json={"edits": [{**edit, "preset": 2}]}).content)
    left, right = np.s_[:, 4:26], np.s_[:, 40:]
    assert np.abs(e1[left] - e2[left]).mean() > 0.01  # the clicked region follows the preset
    assert np.abs(e1[right] - e2[right]).max() < 0.02  # the rest does not move
    # bad edits
    for bad in ({"x": 1000, "y": 1, "preset": 1}, {"x": 1, "y": 1, "preset": 3}):
        r = client.post(f"/api/sessions/{sid}/adjust/preview", json={"edits": [bad]})
        assert r.status_code == 400, r.text
    # full resolution render as a job, strength 0 = the photo
    r = client.post(f"/api/sessions/{sid}/adjust/render",
                    json={"edits": [edit], "strength": 1.0, "format": "png"})
    assert r.status_code == 202
    job = r.json()["job"]
    assert _wait(client, job)["state"] == "done"
    res = client.get(f"/api/jobs/{job}/result")
    assert res.status_code == 200 and "attachment" in res.headers["content-disposition"]
    full = _decode(res.content)
    assert full.shape == (48, 64, 3) and np.abs(full - e1).mean() < 0.02
    job0 = client.post(f"/api/sessions/{sid}/adjust/render",
                       json={"strength": 0.0, "format": "png"}).json()["job"]
    assert _wait(client, job0)["state"] == "done"
    zero = _decode(client.get(f"/api/jobs/{job0}/result").content)
    assert np.abs(zero - _scene() / 255.0).mean() < 0.01


def test_style_without_maps_refuses_edits(client, tmp_path):
    sid = _session(client)
    plain = tiny_style(tmp_path, variant="huber")
    r = _upload_style(client, sid, plain.read_bytes(), "plain.pt")
    assert r.status_code == 200 and r.json()["adjustment_maps"] is False
    assert client.post(f"/api/sessions/{sid}/adjust/preview", json={}).status_code == 200
    assert client.post(f"/api/sessions/{sid}/adjust/maps", json={}).status_code == 409
    r = client.post(f"/api/sessions/{sid}/adjust/preview",
                    json={"edits": [{"x": 1, "y": 1, "preset": 1}]})
    assert r.status_code == 400
