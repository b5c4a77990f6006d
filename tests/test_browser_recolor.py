"""Browser test of the recolor page: real uvicorn server + Debian chromium (Playwright).

Uploads three images, waits for the recoloured results, edits a group colour with the colour
picker and checks that the results change.
"""

from __future__ import annotations

import io
import urllib.request

import numpy as np
import pytest
from _browser import ARGS, CHROMIUM, MARKS
from PIL import Image

pytestmark = MARKS
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) not installed")

from sempix.web.app import create_app
from sempix.web.testing import serve_in_thread


def _collection(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i, tint in enumerate([(1.0, 1.0, 1.0), (1.0, 0.85, 0.7), (0.8, 0.9, 1.0)]):
        img = np.zeros((90, 140, 3), np.float32)
        img[:, :60] = (0.85, 0.55, 0.2)
        img[:, 60:110] = (0.2, 0.45, 0.8)
        img[:, 110:] = (0.35, 0.65, 0.3)
        img = np.clip(img * np.array(tint, np.float32) + rng.normal(0, 0.01, img.shape), 0, 1)
        p = tmp_path / f"photo{i}.png"
        Image.fromarray((img * 255).round().astype(np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _fetch(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as r:
        return np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB"), np.int16)


def test_recolor_page_upload_edit_group_colour(tmp_path, model_dir):
    paths = _collection(tmp_path)
    app = create_app(backend="lowlevel", workers=1)
    with serve_in_thread(app) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/recolor")
            page.set_input_files("#rc-files", paths)
            page.wait_for_function(
                "() => document.querySelectorAll('img.output').length === 3 && "
                "Array.from(document.querySelectorAll('img.output')).every(i => i.complete && "
                "i.naturalWidth > 0)",
                timeout=120_000,
            )
            assert page.locator(".group-color").count() >= 1
            assert page.locator(".palette div").count() >= 3
            srcs = page.eval_on_selector_all("img.output", "els => els.map(e => e.src)")
            before = [_fetch(s) for s in srcs]
            v0 = int(page.evaluate("() => document.body.dataset.version"))
            # edit the group colour that most source colours are mapped to: make it magenta
            used = page.evaluate("""() => {
                const counts = {};
                document.querySelectorAll('.palette div').forEach(d => {
                  const t = d.textContent; if (t !== '') counts[t] = (counts[t] || 0) + 1; });
                return Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0]; }""")
            sel = f".group-color[data-index='{used}']"
            page.eval_on_selector(
                sel,
                "(el) => { el.value = '#d01ad0'; "
                "el.dispatchEvent(new Event('change', {bubbles: true})); }",
            )
            page.wait_for_function(
                f"() => Number(document.body.dataset.version) > {v0}", timeout=60_000
            )
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('img.output'))"
                ".every(i => i.complete && i.naturalWidth > 0)",
                timeout=60_000,
            )
            srcs2 = page.eval_on_selector_all("img.output", "els => els.map(e => e.src)")
            assert srcs2 != srcs
            after = [_fetch(s) for s in srcs2]
            changed = [float(np.abs(a - b).max()) for a, b in zip(before, after)]
            assert sum(c > 20 for c in changed) >= 2, changed
            assert "error" not in (page.locator("#rc-status").get_attribute("class") or "")
            assert not errors, errors
        finally:
            browser.close()
