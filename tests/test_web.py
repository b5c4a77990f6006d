"""HTTP tests of the mask editor server (FastAPI TestClient,
real image bytes, lowlevel features)."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from sempix.mask import MaskSource, apply_adjustments, mask_features, range_mask
from sempix.web.app import create_app


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _test_image(h=48, w=64) -> np.ndarray:
    rng = np.random.default_rng(3)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (40, 70, 160)
    img[:, w // 2 :] = (220, 190, 60)
    img = np.clip(img.astype(int) + rng.integers(-6, 7, img.shape), 0, 255).astype(np.uint8)
    return img


def _declared_huge_png(w=50_000, h=50_000) -> bytes:
    def chunk(t: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + t
            + data
            + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def client():
    app = create_app(
        backend="lowlevel", max_pixels=4_000_000, max_upload_bytes=5_000_000, workers=1
    )
    with TestClient(app) as c:
        yield c


def _upload(client, data: bytes, name="t.png", **form):
    return client.post(
        "/api/images", files={"file": (name, data, "application/octet-stream")}, data=form
    )


def _wait_ready(client, job: str, timeout=240.0) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = client.get(f"/api/jobs/{job}").json()
        if st["state"] in ("done", "error"):
            return st
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def _open(client, arr=None):
    arr = _test_image() if arr is None else arr
    r = _upload(client, _png_bytes(arr))
    assert r.status_code == 201, r.text
    info = r.json()
    st = _wait_ready(client, info["job"])
    assert st["state"] == "done", st
    return info, arr


def test_index_and_config(client):
    r = client.get("/")
    assert r.status_code == 200 and "sempix" in r.text and "editor.js" in r.text
    assert client.get("/static/editor.js").status_code == 200
    cfg = client.get("/api/config").json()
    assert cfg["max_pixels"] == 4_000_000 and cfg["backend"] == "lowlevel"


def test_upload_click_distance_matches_library(client):
    info, arr = _open(client)
    sid = info["session"]
    assert (info["width"], info["height"]) == (64, 48)
    s = client.get(f"/api/sessions/{sid}").json()
    assert s["ready"] and s["backend"] == "lowlevel" and s["semantic"] is False
    img = client.get(f"/api/sessions/{sid}/image")
    assert img.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(img.content)).convert("RGB")), arr)

    r = client.get(f"/api/sessions/{sid}/distance", params={"x": 5, "y": 7, "space": "lab"})
    assert r.status_code == 200
    H, W = int(r.headers["X-Height"]), int(r.headers["X-Width"])
    q = np.frombuffer(r.content, "<u2")
    assert q.size == 2 * H * W
    sem = q[: H * W].reshape(H, W) * float(r.headers["X-Sem-Scale"]) / 65535
    col = q[H * W :].reshape(H, W) * float(r.headers["X-Col-Scale"]) / 65535
    # same maths as the library, through the public API
    rgb = arr.astype(np.float32) / 255
    src = MaskSource(rgb, mask_features(rgb, "lowlevel"))
    s_ref, c_ref = src.distances((5, 7), "lab")
    np.testing.assert_allclose(col, c_ref, atol=1e-4)
    # the reference's features come from the feature cache, stored in float16 (~1e-3 relative)
    np.testing.assert_allclose(sem, s_ref, atol=5e-4)


def test_render_and_mask_match_library(client):
    info, arr = _open(client)
    sid = info["session"]
    body = {
        "points": [[5, 7]],
        "lam": 0.3,
        "tau": 0.2,
        "space": "luminance",
        "feather": 0.02,
        "adjustments": {"exposure": 1.0, "saturation": -0.5},
        "format": "png",
    }
    r = client.post(f"/api/sessions/{sid}/render", json=body)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    rgb = arr.astype(np.float32) / 255
    m = range_mask(
        rgb,
        [(5, 7)],
        features=mask_features(rgb, "lowlevel"),
        lam=0.3,
        tau=0.2,
        feather=0.02,
        space="luminance",
    ).mask
    ref = apply_adjustments(rgb, m, {"exposure": 1.0, "saturation": -0.5})
    assert np.abs(out.astype(int) - np.rint(ref * 255).astype(int)).max() <= 1
    assert m[:, :32].mean() > 0.9 and m[:, 32:].max() == 0
    assert np.array_equal(out[:, 40:], arr[:, 40:])  # outside the mask: untouched
    assert out[:, :20].mean() > arr[:, :20].mean() + 10  # inside: brighter
    mk = client.post(f"/api/sessions/{sid}/mask", json=body)
    mimg = np.asarray(Image.open(io.BytesIO(mk.content)))
    assert mimg.shape == (48, 64)
    assert np.abs(mimg.astype(int) - np.rint(m * 255)).max() <= 1
    jp = client.post(f"/api/sessions/{sid}/render", json={**body, "format": "jpeg"})
    assert jp.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    "data,status,word",
    [
        (b"", 400, "empty"),
        (b"hello, this is not an image at all" * 10, 400, "not an image"),
        (None, 400, "truncated"),  # filled in below
        (_declared_huge_png(), 413, "too large"),
    ],
)
def test_bad_uploads_get_4xx_and_server_keeps_serving(client, data, status, word):
    if data is None:
        full = _png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        data = full[: len(full) // 2]
    r = _upload(client, data)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert isinstance(err, str) and err
    assert word in err.lower()
    # still serving
    _open(client)


def test_missing_file_and_oversize_upload():
    app = create_app(backend="lowlevel", max_upload_bytes=1000, max_pixels=1000)
    with TestClient(app) as c:
        r = c.post("/api/images", data={"x": "1"})
        assert r.status_code == 400 and "no file" in r.json()["error"]
        big = _png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        r = _upload(c, big)
        assert r.status_code == 413 and "too large" in r.json()["error"]
        small = _png_bytes(np.zeros((40, 40, 3), np.uint8))  # compresses well, 1600 px > 1000
        r = _upload(c, small)
        assert r.status_code == 413 and "MP" in r.json()["error"]


def test_request_errors(client):
    assert client.get("/api/sessions/nope").status_code == 404
    assert "error" in client.get("/api/sessions/nope/image").json()
    assert client.get("/api/jobs/nope").status_code == 404
    info, _ = _open(client)
    sid = info["session"]
    r = client.get(f"/api/sessions/{sid}/distance", params={"x": 500, "y": 3})
    assert r.status_code == 400 and "outside" in r.json()["error"]
    r = client.get(f"/api/sessions/{sid}/distance", params={"x": 1, "y": 3, "space": "hsv"})
    assert r.status_code == 400
    r = client.post(f"/api/sessions/{sid}/render", json={"points": [], "lam": 0.5})
    assert r.status_code == 422 and "error" in r.json()
    r = client.post(f"/api/sessions/{sid}/render", json={"points": [[1, 1]], "lam": 3})
    assert r.status_code == 422
    r = client.post(
        f"/api/sessions/{sid}/render", json={"points": [[1, 1]], "adjustments": {"blur": 1}}
    )
    assert r.status_code == 400 and "blur" in r.json()["error"]
    r = client.get(f"/api/sessions/{sid}/labels")
    assert r.status_code == 404  # lowlevel has no labels
    assert client.delete(f"/api/sessions/{sid}").status_code == 200
    r = client.get(f"/api/sessions/{sid}")  # closed: 410 with a code the page acts on
    assert r.status_code == 410 and r.json()["code"] == "session_gone"


def test_lru_eviction_bounds_sessions():
    app = create_app(backend="lowlevel", max_sessions=2, workers=1)
    with TestClient(app) as c:
        ids = [_open(c)[0]["session"] for _ in range(3)]
        r = c.get(f"/api/sessions/{ids[0]}")  # evicted: 410 + code, not a bare 404
        assert r.status_code == 410 and r.json()["code"] == "session_gone"
        assert "open it again" in r.json()["error"]
        assert c.get(f"/api/sessions/{ids[1]}").status_code == 200
        assert c.get(f"/api/sessions/{ids[2]}").status_code == 200
        assert len(app.state.sempix.sessions) == 2


def test_labels_with_ade20k(ade20k_available, monkeypatch):
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(ade20k_available.parent))
    app = create_app(backend="ade20k", workers=1, strict=True)
    with TestClient(app) as c:
        info, _ = _open(c)
        s = c.get(f"/api/sessions/{info['session']}").json()
        assert s["semantic"] is True and s["backend"] == "ade20k"
        leg = c.get(f"/api/sessions/{info['session']}/labels").json()
        assert leg["classes"] and abs(sum(x["fraction"] for x in leg["classes"]) - 1) < 0.01
        png = c.get(f"/api/sessions/{info['session']}/labels.png")
        assert png.headers["content-type"] == "image/png"
        r = c.get(f"/api/sessions/{info['session']}/distance", params={"x": 3, "y": 3})
        assert r.headers["X-Semantic"] == "1"


def test_resize_panel_uses_semantic_carving(client):
    assert client.get("/api/config").json()["resize"] is True
    info, _ = _open(client)
    sid = info["session"]
    r = client.post(f"/api/sessions/{sid}/resize", json={"width": 50, "height": 48})
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    st = _wait_ready(client, job)
    assert st["state"] == "done", st
    out = client.get(f"/api/jobs/{job}/result")
    assert out.status_code == 200
    assert Image.open(io.BytesIO(out.content)).size == (50, 48)
    r = client.post(f"/api/sessions/{sid}/resize", json={"width": 5000, "height": 48})
    assert r.status_code == 400


def test_oversize_content_length_refused_before_reading():
    app = create_app(backend="lowlevel", max_upload_bytes=10_000)
    with TestClient(app) as c:
        r = _upload(c, b"\x00" * 2_000_000)
        assert r.status_code == 413 and "too large" in r.json()["error"]
        assert c.get("/api/config").status_code == 200


def test_session_store_lru_by_count_and_bytes():
    from sempix.errors import NotFoundError, SessionExpiredError, TooLargeError
    from sempix.web.common import SessionStore, status_for

    st = SessionStore(max_sessions=3, max_bytes=100)
    a = st.add("a", 40)
    b = st.add("b", 40)
    st.get(a)  # a is now the most recently used
    c = st.add("c", 40)  # 120 bytes > 100: evicts the least recently used (b)
    assert st.get(a) == "a" and st.get(c) == "c"
    with pytest.raises(SessionExpiredError) as e:
        st.get(b)
    assert status_for(e.value) == 410 and e.value.code == "session_gone"
    with pytest.raises(NotFoundError) as e:
        st.get("never-existed")
    assert status_for(e.value) == 404 and not isinstance(e.value, SessionExpiredError)
    st.resize(a, 90)  # growing a evicts c
    with pytest.raises(SessionExpiredError):
        st.get(c)
    with pytest.raises(TooLargeError) as e:
        st.add("huge", 1000)
    assert status_for(e.value) == 413


def test_serve_command_prints_url_and_serves():
    import re
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    exe = Path(sys.executable).with_name("sempix")
    if not exe.exists():
        pytest.skip("sempix console script not installed in this environment")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", "0", "--features", "lowlevel", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        url = m.group(0)
        for _ in range(100):
            try:
                r = httpx.get(url + "api/config", timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["backend"] == "lowlevel"
        # a second server on the same port: clear error, exit code 2 (in-process: the serve
        # command fails before it serves; two more interpreter starts took ~25 s here)
        from click.testing import CliRunner

        from sempix.cli import cli

        r2 = CliRunner().invoke(cli, ["serve", "--port", m.group(1), "--features", "lowlevel"])
        assert r2.exit_code == 2 and "error: cannot listen" in r2.stderr and "--port" in r2.stderr
        # regression (QA): a bad --host is blamed on the host, not the port
        r3 = CliRunner().invoke(
            cli, ["serve", "--host", "999.1.1.1", "--port", "0", "--features", "lowlevel"]
        )
        assert r3.exit_code == 2 and "check --host" in r3.stderr and "Traceback" not in r3.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_recolor_page_route(client):
    """/recolor is the one-page app (the page opens its Recolor panel)."""
    r = client.get("/recolor")
    assert r.status_code == 200 and "<html" in r.text.lower() and 'id="rc-files"' in r.text
    assert client.get("/static/recolor.js").status_code == 200
