"""Browser test of the Style panel: load a (tiny, random) style file by upload, preview with the
strength slider, show the adjustment maps, click a region to re-assign it to a preset, render
and download at full resolution, undo; no console errors. Chromium via tests/_browser.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _adjust_style import tiny_style
from _browser import ARGS, CHROMIUM, MARKS
from PIL import Image

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")
torch = pytest.importorskip("torch")

from sempix.web.app import create_app  # noqa: E402
from sempix.web.testing import serve_in_thread  # noqa: E402

SHOTS = Path(os.environ.get("SEMPIX_SHOTS") or tempfile.mkdtemp(prefix="sempix-shots-"))


def _scene(h: int = 60, w: int = 80) -> np.ndarray:
    """Blue left half, yellow right half (uint8)."""
    rng = np.random.default_rng(7)
    img = np.zeros((h, w, 3), np.float32)
    img[:, : w // 2] = (0.15, 0.27, 0.62)
    img[:, w // 2 :] = (0.86, 0.75, 0.24)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


PIXELS = (
    "() => { const c = document.getElementById('adj-canvas'); "
    "return [c.width, c.height, Array.from(c.getContext('2d')"
    ".getImageData(0, 0, c.width, c.height).data)]; }"
)
IDLE = "() => window.sempixAdjust.pending === 0"


def test_style_panel_apply_maps_click_render(browser_page, tmp_path):
    pg, errors = browser_page
    photo = tmp_path / "scene.png"
    Image.fromarray(_scene()).save(photo)
    style = tiny_style(tmp_path)
    pg.set_input_files("#file", str(photo))
    pg.wait_for_function("() => window.sempixEditor.ready", timeout=60_000)
    pg.click(".tab[data-tool=adjust]")
    pg.set_input_files("#adj-file", str(style))
    pg.wait_for_function(
        "() => window.sempixAdjust.style && window.sempixAdjust.adj && "
        "window.sempixAdjust.pending === 0", timeout=60_000)

    def canvas() -> np.ndarray:
        w, h, data = pg.evaluate(PIXELS)
        return np.array(data, np.float32).reshape(h, w, 4)[..., :3] / 255.0

    def set_strength(v: float):
        pg.evaluate(f"() => {{ const s = document.getElementById('adj-strength'); "
                    f"s.value = '{v}'; s.dispatchEvent(new Event('input')); "
                    "s.dispatchEvent(new Event('change')); }")

    ref = _scene() / 255.0
    full = canvas()
    assert full.shape == ref.shape
    assert np.abs(full - ref).mean() > 0.02  # the style changes the photo
    set_strength(0)
    assert np.abs(canvas() - ref).mean() < 0.01  # strength 0 = the photo
    set_strength(1)
    assert np.abs(canvas() - full).max() < 2 / 255
    pg.check("#adj-show-maps")
    assert np.abs(canvas() - full).mean() > 0.02  # the coloured maps overlay
    pg.screenshot(path=str(SHOTS / "panel-adjust.png"))  # for a person to look at
    pg.uncheck("#adj-show-maps")
    # re-assign the blue half to preset 1, then the same click to preset 2: left half changes
    box = pg.locator("#adj-canvas").bounding_box()

    def click(x: int, y: int, n: int):
        pg.mouse.click(box["x"] + (x + 0.5) * box["width"] / 80,
                       box["y"] + (y + 0.5) * box["height"] / 60)
        pg.wait_for_function(f"() => window.sempixAdjust.edits.length === {n} && "
                             "window.sempixAdjust.pending === 0", timeout=60_000)

    pg.check("#adj-presets input[value='1']")
    click(12, 30, 1)
    one = canvas()
    pg.check("#adj-presets input[value='2']")
    click(12, 30, 2)
    two = canvas()
    left, right = np.s_[5:55, 4:32], np.s_[5:55, 48:]
    assert np.abs(one[left] - two[left]).mean() > 0.01
    assert np.abs(one[right] - two[right]).mean() < 0.01
    assert "2 regions" in pg.text_content("#adj-edits")
    # full resolution render with progress, then the download
    pg.select_option("#adj-format", "png")
    pg.click("#adj-render")
    pg.wait_for_selector("#adj-dl:not([hidden])", timeout=60_000)
    with pg.expect_download() as dl:
        pg.click("#adj-dl")
    out = tmp_path / "styled.png"
    dl.value.save_as(out)
    got = np.asarray(Image.open(out).convert("RGB"), np.float32) / 255.0
    assert got.shape == ref.shape and np.abs(got - two).mean() < 0.03
    pg.keyboard.press("Control+z")  # undo the last region
    pg.wait_for_function("() => window.sempixAdjust.edits.length === 1", timeout=10_000)
    pg.wait_for_function(IDLE, timeout=60_000)
    assert np.abs(canvas() - one).mean() < 0.01
    assert not errors, errors


@pytest.fixture()
def browser_page():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny style's network: threads only add overhead
    app = create_app(backend="lowlevel", workers=1)
    with serve_in_thread(app) as url, sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = b.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.on("console",
                lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.goto(url + "/")
        yield page, errors
        b.close()
    torch.set_num_threads(n)
