"""Browser tests of the one-page web app: every tool panel, undo/redo, brush, class selection,
saved-mask combination, a cancelled job, the 410 re-open, and no console errors.

One real uvicorn server (lowlevel features: quick) and one Debian chromium (Playwright) are
shared by the module. Screenshots of each panel go to ``$SEMPIX_SHOTS`` (default: a temporary
folder) for a person to look at; they are never committed.
"""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _browser import ARGS, CHROMIUM, MARKS
from PIL import Image

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")

from sempix.web.app import create_app
from sempix.web.testing import serve_in_thread

SHOTS = Path(os.environ.get("SEMPIX_SHOTS") or tempfile.mkdtemp(prefix="sempix-shots-"))


def _scene(h: int = 96, w: int = 128, seed: int = 7) -> np.ndarray:
    """Blue left half, yellow right half, a red square: uint8 RGB."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[:, : w // 2] = (0.15, 0.25, 0.6)
    img[:, w // 2 :] = (0.9, 0.78, 0.25)
    img[h // 4 : h // 2, w // 8 : w // 4] = (0.8, 0.15, 0.1)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def server():
    app = create_app(backend="lowlevel", workers=1)
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(_scene()).save(p)
    return p


class Page:
    """A page with console-error and page-error collection."""

    def __init__(self, browser, url):
        self.page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        self.url = url

    def open(self, path: Path, tool: str = "mask"):
        pg = self.page
        pg.goto(self.url + "/")
        pg.set_input_files("#file", str(path))
        pg.wait_for_function(
            "() => window.sempixEditor.ready && window.sempixEditor.orig", timeout=60_000
        )
        if tool != "mask":
            pg.click(f".tab[data-tool={tool}]")
        return pg

    def frame(self):
        self.page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )

    def click_image(self, x: int, y: int):
        pg = self.page
        box = pg.locator("#canvas").bounding_box()
        W, H = pg.evaluate("() => [window.sempixEditor.W, window.sempixEditor.H]")
        n = pg.evaluate("() => window.sempixEditor.points.length")
        pg.mouse.click(
            box["x"] + (x + 0.5) * box["width"] / W, box["y"] + (y + 0.5) * box["height"] / H
        )
        pg.wait_for_function(
            f"() => window.sempixEditor.points.length === {n + 1} && "
            "window.sempixEditor.pending === 0",
            timeout=30_000,
        )
        self.frame()

    def mask(self) -> np.ndarray:
        self.frame()
        m = self.page.evaluate("() => Array.from(window.sempixEditor.mask)")
        PW, PH = self.page.evaluate("() => [window.sempixEditor.PW, window.sempixEditor.PH]")
        return np.array(m, np.uint8).reshape(PH, PW)

    def shot(self, name: str):
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def close(self):
        self.page.close()
        assert not self.errors, self.errors


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def test_masks_brush_combine_undo_redo_download(server, browser, photo, tmp_path):
    url, _ = server
    P = Page(browser, url)
    pg = P.open(photo)
    pg.select_option("#space", "lab")
    pg.eval_on_selector(
        "#lam",
        "el => { el.value = 0; el.dispatchEvent(new Event('input')); "
        "el.dispatchEvent(new Event('change')); }",
    )
    pg.eval_on_selector(
        "#feather",
        "el => { el.value = 0; el.dispatchEvent(new Event('input')); "
        "el.dispatchEvent(new Event('change')); }",
    )
    P.click_image(100, 80)  # yellow half
    m1 = P.mask()
    assert (m1[:, 70:] == 255).mean() > 0.95 and m1[:, :60].max() == 0

    # save it, then select the blue half and combine: union with the saved yellow mask
    pg.click("#save-mask")
    assert pg.locator("#saved li").count() == 1
    pg.click("#clear")
    P.click_image(10, 80)  # blue half (not the red square)
    m2 = P.mask()
    assert (m2[:, :60] == 255).mean() > 0.85 and m2[:, 70:].max() == 0
    pg.click("#saved li button[data-op=union]")
    m3 = P.mask()
    assert (m3 == 255).mean() > 0.85

    # brush subtract: paint a vertical stroke through the middle of the right half
    pg.check("input[name=mode][value=subtract]")
    box = pg.locator("#canvas").bounding_box()
    x = box["x"] + box["width"] * 0.8
    pg.mouse.move(x, box["y"] + box["height"] * 0.2)
    pg.mouse.down()
    for t in np.linspace(0.2, 0.8, 12):
        pg.mouse.move(x, box["y"] + box["height"] * t)
    pg.mouse.up()
    m4 = P.mask()
    assert m4[20:76, 100:104].max() == 0 and m4[5:90, 70:80].min() == 255
    # brush add on the red square (inside the blue half, not selected by the blue point)
    pg.check("input[name=mode][value=add]")
    sx, sy = box["x"] + box["width"] * 0.19, box["y"] + box["height"] * 0.37
    pg.mouse.move(sx, sy)
    pg.mouse.down()
    pg.mouse.move(sx + 3, sy + 2)
    pg.mouse.up()
    m5 = P.mask()
    assert m5[35, 24] == 255
    P.shot("panel-masks")

    # undo/redo with the keyboard: undo the add stroke, then the subtract stroke; redo both
    pg.locator("#canvas").focus()
    pg.keyboard.press("Control+z")
    assert np.array_equal(P.mask(), m4)
    pg.keyboard.press("Control+z")
    assert np.array_equal(P.mask(), m3)
    pg.keyboard.press("Control+Shift+z")
    assert np.array_equal(P.mask(), m4)
    pg.keyboard.press("Control+Shift+z")
    assert np.array_equal(P.mask(), m5)
    # undo the union combination and the points: back to the blue half
    for _ in range(3):
        pg.keyboard.press("Control+z")
    m_blue = P.mask()
    assert np.array_equal(m_blue, m2)

    # redo everything and download the mask: the server evaluates the same recipe at full size
    for _ in range(3):
        pg.keyboard.press("Control+Shift+z")
    assert np.array_equal(P.mask(), m5)
    with pg.expect_download() as dl:
        pg.click("#dl-mask")
    path = tmp_path / "mask.png"
    dl.value.save_as(path)
    full = np.asarray(Image.open(path))
    assert full.shape == m5.shape  # preview = full size here (small image)
    diff = np.abs(full.astype(int) - m5.astype(int))
    assert (diff > 8).mean() < 0.02, (
        diff > 8
    ).mean()  # brush anti-aliasing differs at the edges only
    P.close()


def test_resize_panel_runs_job_with_progress_and_download(server, browser, photo, tmp_path):
    url, _ = server
    P = Page(browser, url)
    pg = P.open(photo, "resize")
    assert pg.is_visible("#resize-panel") and not pg.is_visible("#mask-controls")
    # the boxes stay inside the side panel (issue 21: they used to overflow it)
    panel = pg.locator("aside#panel").bounding_box()
    for sel in ("#rw", "#rh", "#rmethod", "#rlam"):
        b = pg.locator(sel).bounding_box()
        assert b["x"] >= panel["x"] and b["x"] + b["width"] <= panel["x"] + panel["width"] - 8, sel
    pg.fill("#rw", "100")
    pg.dispatch_event("#rw", "change")
    seen = []
    pg.expose_function("seenProgress", lambda v: seen.append(v))
    pg.evaluate("""() => { const o = new MutationObserver(() => window.seenProgress(
        document.querySelector('#resize-job .ptext').textContent));
        o.observe(document.querySelector('#resize-job'),
                  {subtree: true, childList: true, characterData: true}); }""")
    pg.click("#do-resize")
    pg.wait_for_function("() => !document.getElementById('resize-dl').hidden", timeout=120_000)
    assert seen and any("%" in s for s in seen)  # progress was pushed to the page
    pg.wait_for_function(
        "() => document.getElementById('resize-result').naturalWidth === 100", timeout=30_000
    )
    assert "100×96" in pg.inner_text("#resize-caption")
    with pg.expect_download() as dl:
        pg.click("#resize-dl")
    p = tmp_path / "r.png"
    dl.value.save_as(p)
    assert Image.open(p).size == (100, 96)
    assert dl.value.suggested_filename == "scene-100x96.png"
    P.shot("panel-resize")
    # the width change is in the history
    pg.keyboard.press("Control+z")
    assert pg.input_value("#rw") == "128"
    P.close()


def test_cancelled_job(server, browser, tmp_path):
    url, _ = server
    big = tmp_path / "big.png"
    Image.fromarray(_scene(360, 480, seed=1)).save(big)
    P = Page(browser, url)
    pg = P.open(big, "resize")
    pg.fill("#rw", "240")
    pg.click("#do-resize")
    pg.wait_for_function(
        "() => /\\d+% /.test(document.querySelector('#resize-job .ptext').textContent) && "
        "!document.getElementById('resize-job').hidden",
        timeout=60_000,
    )
    # the page and the server stay responsive while the job runs (a generous bound: a blocked
    # server would not answer until the job ends; the suite also runs on loaded machines)
    ms = pg.evaluate("""async () => { const t0 = performance.now();
        const r = await fetch('/api/config'); await r.json(); return performance.now() - t0; }""")
    assert ms < 15_000, ms
    pg.click("#resize-job .cancel")
    pg.wait_for_function(
        "() => /cancelled/.test(document.getElementById('resize-status').textContent)",
        timeout=60_000,
    )
    job = pg.evaluate("() => window.sempixResize.job")
    import json

    st = json.loads(_get(f"{url}/api/jobs/{job}"))
    assert st["state"] == "cancelled"
    assert pg.is_hidden("#resize-dl")
    P.close()


def test_softseg_panel_layers_toggle_solo_download(server, browser, photo, tmp_path):
    url, _ = server
    P = Page(browser, url)
    small = tmp_path / "small.png"
    Image.fromarray(_scene(48, 64)).save(small)
    pg = P.open(small, "softseg")
    pg.fill("#ss-layers", "3")
    pg.click("#ss-run")
    pg.wait_for_function(
        "() => !document.getElementById('ss-layer-section').hidden", timeout=180_000
    )
    n = pg.locator("#ss-list li").count()
    assert n == 3
    px = (
        "() => { const c = document.getElementById('ss-canvas'); "
        "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"
    )

    def canvas():
        return np.array(pg.evaluate(px), np.int32).reshape(48, 64, 4)

    full = canvas()
    assert full[..., 3].min() > 235  # all layers visible: opaque
    assert np.abs(full[..., :3] - _scene(48, 64)).mean() < 12  # and they recompose the image
    pg.click("#ss-list li:nth-child(1) .solo")
    solo = canvas()
    pg.click("#ss-list li:nth-child(1) .solo")
    pg.uncheck("#ss-list li:nth-child(2) input")
    hidden = canvas()
    a0 = full[..., 3].sum()
    assert solo[..., 3].sum() < a0 and hidden[..., 3].sum() < a0  # solo / hiding show less
    P.shot("panel-softseg")
    pg.keyboard.press("Control+z")  # the layer is visible again
    assert pg.is_checked("#ss-list li:nth-child(2) input") and np.array_equal(canvas(), full)
    fmts = pg.eval_on_selector_all("#ss-downloads a", "els => els.map(e => e.dataset.format)")
    assert "ora" in fmts and "zip" in fmts
    with pg.expect_download() as dl:
        pg.click("#ss-downloads a[data-format=ora]")
    p = tmp_path / "l.ora"
    dl.value.save_as(p)
    import zipfile

    with zipfile.ZipFile(p) as z:
        assert z.read("mimetype") == b"image/openraster" and "stack.xml" in z.namelist()
    if "psd" in fmts:  # the PSD writer of sempix.softseg.export is present
        with pg.expect_download() as dl:
            pg.click("#ss-downloads a[data-format=psd]")
        p = tmp_path / "l.psd"
        dl.value.save_as(p)
        assert p.read_bytes()[:4] == b"8BPS"
    P.close()


def test_palette_panel_harmonize(server, browser, photo, tmp_path, model_dir):
    from sempix.web.routes.palette import names_available

    if not names_available():
        pytest.skip("w2c colour-name model not available")
    url, _ = server
    P = Page(browser, url)
    pg = P.open(photo, "palette")
    pg.click("#pal-run")
    pg.wait_for_function(
        "() => document.querySelectorAll('#pal-swatches .swatch').length >= 2", timeout=60_000
    )
    assert "template" in pg.inner_text("#pal-harmony")
    ring = pg.evaluate(
        "() => Array.from(document.getElementById('pal-wheel').getContext('2d')"
        ".getImageData(110, 7, 1, 1).data)"
    )
    assert ring[3] > 0  # the hue wheel is drawn
    pg.click("#har-run")
    pg.wait_for_function(
        "() => document.getElementById('har-after').naturalWidth > 0", timeout=120_000
    )
    assert "F" in pg.inner_text("#har-status")
    first = pg.get_attribute("#har-after", "src")
    pg.eval_on_selector(
        "#har-strength",
        "el => { el.value = 0.3; el.dispatchEvent(new Event('input')); "
        "el.dispatchEvent(new Event('change')); }",
    )
    pg.wait_for_function(
        f"() => document.getElementById('har-after').getAttribute('src') !== '{first}' && "
        "document.getElementById('har-after').complete",
        timeout=120_000,
    )
    assert "strength 0.3" in pg.inner_text("#har-after-cap")
    P.shot("panel-palette")
    pg.click("#har-full")
    pg.wait_for_function("() => !document.getElementById('har-dl').hidden", timeout=120_000)
    with pg.expect_download() as dl:
        pg.click("#har-dl")
    p = tmp_path / "h.png"
    dl.value.save_as(p)
    assert Image.open(p).size == (128, 96)
    pg.keyboard.press("Control+z")  # strength back to 1
    assert pg.input_value("#har-strength") == "1"
    P.close()


def test_recolor_panel_full_resolution_job(server, browser, tmp_path, model_dir):
    url, _app = server
    paths = []
    for i, tint in enumerate([(1.0, 1.0, 1.0), (1.0, 0.85, 0.7), (0.8, 0.9, 1.0)]):
        img = _scene(120, 160, seed=i).astype(np.float32) * np.array(tint, np.float32)
        p = tmp_path / f"photo{i}.png"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p)
        paths.append(str(p))
    P = Page(browser, url)
    pg = P.page
    pg.goto(url + "/recolor")
    assert pg.is_visible("#rc-load")
    pg.set_input_files("#rc-files", paths)
    pg.wait_for_function(
        "() => document.querySelectorAll('img.output').length === 3 && "
        "Array.from(document.querySelectorAll('img.output'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=180_000,
    )
    assert pg.locator(".group-color").count() >= 1
    P.shot("panel-recolor")
    pg.click("#rc-render")
    pg.wait_for_function(
        "() => document.querySelectorAll('#rc-downloads a').length === 4", timeout=180_000
    )
    names = pg.eval_on_selector_all("#rc-downloads a", "els => els.map(e => e.download)")
    assert "recolored.zip" in names
    with pg.expect_download() as dl:
        pg.click("#rc-downloads a >> nth=0")
    p = tmp_path / "o.png"
    dl.value.save_as(p)
    assert Image.open(p).size == (160, 120)
    P.close()


def test_evicted_session_is_reopened_by_the_page(server, browser, photo):
    url, app = server
    P = Page(browser, url)
    pg = P.open(photo)
    sid = pg.evaluate("() => window.sempixEditor.sid")
    app.state.sempix.sessions.remove(sid)  # as if evicted to free memory
    P.errors.clear()
    box = pg.locator("#canvas").bounding_box()
    pg.mouse.click(box["x"] + 20, box["y"] + 20)
    pg.wait_for_function(
        f"() => window.sempixEditor.sid && window.sempixEditor.sid !== '{sid}' && "
        "window.sempixEditor.ready && "
        "/re-opened/.test(document.getElementById('status').textContent)",
        timeout=60_000,
    )
    # the failed request logs a 410 in the console: that is the signal the page acted on
    P.errors = [e for e in P.errors if "410" not in e]
    P.close()


def test_class_selection_with_ade20k(browser, ade20k_available, data_dir, monkeypatch):
    """Real ADE20K labels: pick the largest class in the class picker; the mask follows it."""
    photos = sorted((data_dir / "bsds500" / "images" / "val").glob("*.jpg"))
    if not photos:
        pytest.skip("no BSDS500 val images")
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(ade20k_available.parent))
    with serve_in_thread(create_app(backend="ade20k", workers=1, strict=True)) as url:
        P = Page(browser, url)
        pg = P.open(photos[0])
        pg.wait_for_function(
            "() => document.querySelectorAll('.class-pick').length > 1", timeout=30_000
        )
        first = pg.locator(".class-pick").first
        name = first.get_attribute("data-name")
        first.check()
        pg.wait_for_function(
            "() => window.sempixEditor.classes.length === 1 && window.sempixEditor.pending === 0",
            timeout=30_000,
        )
        m = P.mask()
        frac = float((m > 127).mean())
        legend = pg.evaluate("() => window.sempixEditor.legend[0].fraction")
        assert abs(frac - legend) < 0.15, (name, frac, legend)
        soft = float(((m > 10) & (m < 245)).mean())
        assert 0 < soft < 0.2  # soft edges, not a blocky label map
        assert name in pg.inner_text("#points-info")
        P.shot("panel-masks-classes")
        pg.keyboard.press("Control+z")
        assert P.mask().max() == 0
        P.close()
