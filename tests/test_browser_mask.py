"""End-to-end browser tests of the mask editor: real uvicorn server + Debian chromium (Playwright).

The page is driven like a user would: upload an image, click it, move sliders, switch views,
download the edited image and the mask. Lowlevel features keep it quick (the maths on the page
are the same for every backend).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from _browser import ARGS, CHROMIUM, MARKS
from PIL import Image

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")

from sempix.mask import apply_adjustments, mask_features, range_mask, srgb_to_linear
from sempix.web.app import create_app
from sempix.web.testing import serve_in_thread


def _image(h: int, w: int) -> np.ndarray:
    """Left: dark blue 'sky' gradient; right: bright yellow ground; some noise (uint8 RGB)."""
    rng = np.random.default_rng(7)
    img = np.zeros((h, w, 3), np.float32)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    img[:, : w // 2] = np.stack([0.12 + 0.05 * ramp, 0.22 + 0.05 * ramp, 0.55 + 0.05 * ramp], -1)
    img[:, w // 2 :] = (0.9, 0.78, 0.25)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def server():
    app = create_app(backend="lowlevel", workers=1)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _open(page, server, path: Path):
    page.goto(server + "/")
    page.set_input_files("#file", str(path))
    page.wait_for_function(
        "() => window.sempixEditor && window.sempixEditor.ready && window.sempixEditor.orig",
        timeout=60_000,
    )


def _click_image(page, x: int, y: int):
    """Click image pixel (x, y) through the CSS-scaled canvas."""
    box = page.locator("#canvas").bounding_box()
    W, H = page.evaluate("() => [window.sempixEditor.W, window.sempixEditor.H]")
    page.mouse.click(
        box["x"] + (x + 0.5) * box["width"] / W, box["y"] + (y + 0.5) * box["height"] / H
    )
    page.wait_for_function(
        "() => window.sempixEditor.points.length > 0 && "
        "window.sempixEditor.points.every(p => p.col) && window.sempixEditor.pending === 0",
        timeout=30_000,
    )
    _frame(page)


def _frame(page):
    """Wait until the page has drawn its next frames."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _pixel(page, x: int, y: int):
    return page.evaluate(
        f"() => Array.from(document.getElementById('canvas').getContext('2d')"
        f".getImageData({x}, {y}, 1, 1).data)"
    )


def _set_slider(page, sel: str, value: float):
    page.eval_on_selector(
        sel, "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", value
    )
    _frame(page)


def test_editor_end_to_end(server, browser, tmp_path):
    arr = _image(240, 320)
    src = tmp_path / "scene.png"
    Image.fromarray(arr).save(src)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed = []  # regression (QA): the page used to request a missing /favicon.ico (console 404)
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    _open(page, server, src)
    assert "ready" in page.inner_text("#status")
    assert failed == []
    before_in, before_out = _pixel(page, 40, 120), _pixel(page, 280, 120)
    assert before_in[:3] == list(arr[120, 40]) and before_out[:3] == list(arr[120, 280])

    page.select_option("#space", "lab")
    _set_slider(page, "#lam", 0.0)  # colour only: the lowlevel features include position
    _set_slider(page, "#feather", 0.0)
    _set_slider(page, "#tau", 0.1)
    _click_image(page, 40, 60)
    inside, outside = _pixel(page, 40, 120), _pixel(page, 280, 120)
    assert inside[:3] != before_in[:3]  # overlay tints the selected blue half
    assert inside[0] > before_in[0] + 40
    # the yellow half is outside the mask: only dimmed (x0.75)
    assert abs(outside[0] - round(before_out[0] * 0.75)) <= 1

    # tau slider to 0: the overlay disappears (only the dim remains)
    _set_slider(page, "#tau", 0.0)
    assert abs(_pixel(page, 40, 120)[0] - round(before_in[0] * 0.75)) <= 1
    # keyboard on the slider (a real input event) brings it back
    _set_slider(page, "#tau", 0.095)
    page.focus("#tau")
    page.keyboard.press("ArrowRight")
    _frame(page)
    assert abs(page.evaluate("() => window.sempixEditor.tau") - 0.1) < 1e-9
    assert _pixel(page, 40, 120)[0] > before_in[0] + 40

    # adjustments preview: +1 EV doubles linear light inside, nothing changes outside
    _set_slider(page, "#exposure", 1.0)
    assert page.evaluate("() => window.sempixEditor.view") == "adjusted"
    adj_in, adj_out = _pixel(page, 40, 120), _pixel(page, 280, 120)
    assert adj_out[:3] == list(arr[120, 280])
    lin_ratio = srgb_to_linear(np.array(adj_in[:3]) / 255) / srgb_to_linear(arr[120, 40] / 255)
    np.testing.assert_allclose(lin_ratio, 2.0, rtol=0.05)

    # download: the server's full-resolution render equals the page's preview
    with page.expect_download() as dl:
        page.click("#dl-image")
    out_path = tmp_path / "edited.png"
    dl.value.save_as(out_path)
    server_img = np.asarray(Image.open(out_path).convert("RGB")).astype(int)
    preview = np.array(
        page.evaluate(
            "() => Array.from(document.getElementById('canvas').getContext('2d')"
            ".getImageData(0, 0, 320, 240).data)"
        )
    ).reshape(240, 320, 4)[..., :3]
    diff = np.abs(server_img - preview)
    diff[50:71, 30:51] = 0  # the point marker is drawn on the preview only
    assert diff.max() <= 2, diff.max()
    # and matches the library
    ((px, py),) = page.evaluate("() => window.sempixEditor.points.map(p => [p.x, p.y])")
    assert abs(px - 40) <= 1 and abs(py - 60) <= 1  # the click landed where we aimed
    rgb = arr.astype(np.float32) / 255
    m = range_mask(
        rgb, [(px, py)], features=mask_features(rgb, "lowlevel"), lam=0.0, tau=0.1, space="lab"
    ).mask
    ref = np.rint(apply_adjustments(rgb, m, {"exposure": 1.0}) * 255)
    bad = np.argwhere(np.abs(server_img - ref).max(-1) > 1)
    assert bad.size == 0, (bad[:5], m[tuple(bad[0])], server_img[tuple(bad[0])], ref[tuple(bad[0])])

    with page.expect_download() as dl:
        page.click("#dl-mask")
    mpath = tmp_path / "mask.png"
    dl.value.save_as(mpath)
    mask = np.asarray(Image.open(mpath))
    assert mask.shape == (240, 320) and np.array_equal(mask, np.rint(m * 255).astype(np.uint8))
    assert (mask[:, :160] == 255).mean() > 0.95 and mask[:, 160:].max() == 0

    # every adjustment at once through a soft (feathered) mask: the page's preview equals the
    # library's float maths (JS tables + 8-bit mask quantisation: within 3/255)
    adj = {
        "exposure": -0.5,
        "contrast": 0.3,
        "saturation": -0.4,
        "temperature": 0.5,
        "tint": -0.3,
        "hue": 40,
    }
    _set_slider(page, "#feather", 0.05)
    for k, v in adj.items():
        _set_slider(page, f"#{k}", v)
    preview = np.array(
        page.evaluate(
            "() => Array.from(document.getElementById('canvas').getContext('2d')"
            ".getImageData(0, 0, 320, 240).data)"
        )
    ).reshape(240, 320, 4)[..., :3]
    m_soft = range_mask(
        rgb,
        [(px, py)],
        features=mask_features(rgb, "lowlevel"),
        lam=0.0,
        tau=0.1,
        space="lab",
        feather=0.05,
    ).mask
    assert 0 < ((m_soft > 0) & (m_soft < 1)).mean() < 0.5  # the feather made a soft edge
    ref = np.rint(apply_adjustments(rgb, m_soft, adj) * 255)
    diff = np.abs(preview - ref)
    diff[50:71, 30:51] = 0  # point marker
    assert diff.max() <= 3, diff.max()

    # mask view and a second point (the yellow half): everything selected
    page.check("input[name=view][value=mask]")
    _click_image(page, 280, 200)
    page.wait_for_function(
        "() => window.sempixEditor.points.length === 2 && window.sempixEditor.pending === 0"
    )
    _frame(page)
    assert _pixel(page, 300, 20)[:3] == [255, 255, 255]
    page.screenshot(path=str(tmp_path / "editor.png"))
    assert not errors, errors
    page.close()


def test_bad_upload_shows_error(server, browser, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"definitely not a PNG")
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(bad))
    page.wait_for_function(
        "() => document.getElementById('status').classList.contains('error')", timeout=20_000
    )
    assert "not an image" in page.inner_text("#status")
    page.close()


def test_slider_updates_per_second_on_2mp(server, browser, tmp_path):
    """The overlay follows lam/tau client-side on a 2 MP image (no server round trip per move).

    The product target is >= 30 updates/s; the rate is measured and printed here (timing targets
    are reported, not unit-tested: a loaded machine must not make the suite flaky). What is asserted
    is the cause of speed: 160 slider moves send no request to the server.
    """
    arr = _image(1155, 1732)  # 2.0 MP
    src = tmp_path / "big.png"
    Image.fromarray(arr).save(src, compress_level=1)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    _open(page, server, src)
    t0 = time.time()
    _click_image(page, 300, 500)
    click_s = time.time() - t0
    _click_image(page, 1500, 900)
    page.wait_for_function(
        "() => window.sempixEditor.points.length === 2 && window.sempixEditor.pending === 0"
    )
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    # For each slider, 4 batches of 20 moves; a lam move re-blends the per-point maps, a tau move
    # only re-thresholds; both redraw the overlay. The machine is shared, so the best batch
    # measures what the page can do; the median is reported too.
    rates = page.evaluate("""() => {
        const S = window.sempixEditor, out = {};
        for (const id of ['lam', 'tau']) {
            const el = document.getElementById(id), rates = [];
            for (let b = 0; b < 4; b++) {
                const n = 20, t0 = performance.now();
                for (let i = 0; i < n; i++) {
                    el.value = id === 'lam' ? 0.2 + 0.03 * i : 0.1 + 0.005 * i;
                    el.dispatchEvent(new Event('input'));
                    S.scheduled = false;
                    window.__renderNow();
                }
                rates.push(n / ((performance.now() - t0) / 1000));
            }
            out[id] = rates;
        }
        return out;
    }""")
    preview = page.evaluate("() => [window.sempixEditor.PW, window.sempixEditor.PH]")
    summary = {k: (max(v), float(np.median(v))) for k, v in rates.items()}
    print(
        "\n2 MP slider updates/s (best batch, median): "
        + ", ".join(f"{k} {b:.1f}, {m:.1f}" for k, (b, m) in summary.items())
        + f" (2 points, preview {preview}); first click round trip {click_s * 1000:.0f} ms; "
        f"cpu_count={os.cpu_count()}"
    )
    assert requests == [], f"slider moves went to the server: {requests[:3]}"
    assert all(best > 0 for best, _ in summary.values())
    page.close()


def test_drop_image_and_semantic_labels_view(browser, model_dir, data_dir, monkeypatch, tmp_path):
    """Real ADE20K features: open a photo by drag-and-drop, show the label view and its legend."""
    import base64

    if not (model_dir / "deeplabv3_mnv2_ade20k.tflite").is_file():
        pytest.skip("ADE20K model not in SEMPIX_MODEL_DIR")
    photos = sorted((data_dir / "bsds500" / "images" / "val").glob("*.jpg"))
    if not photos:
        pytest.skip("no BSDS500 val images")
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(model_dir))
    data = base64.b64encode(photos[0].read_bytes()).decode()
    with serve_in_thread(create_app(backend="ade20k", workers=1, strict=True)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url + "/")
        dt = page.evaluate_handle(
            """(b64) => {
            const bin = atob(b64), bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'photo.jpg', { type: 'image/jpeg' }));
            return dt;
        }""",
            data,
        )
        page.dispatch_event("#stage", "drop", {"dataTransfer": dt})
        page.wait_for_function(
            "() => window.sempixEditor.ready && window.sempixEditor.orig", timeout=60_000
        )
        assert "ade20k features" in page.inner_text("#status")
        page.wait_for_function(
            "() => document.querySelectorAll('#legend li').length > 0", timeout=20_000
        )
        before = _pixel(page, 100, 100)
        page.check("#view-labels")
        _frame(page)
        assert page.is_visible("#legend")
        names = page.eval_on_selector_all("#legend li span", "els => els.map(e => e.textContent)")
        assert len(names) >= 2 and all(n for n in names)
        assert _pixel(page, 100, 100) != before  # the colour-coded labels are drawn over the photo
        page.close()
