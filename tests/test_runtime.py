"""sempix._config and sempix._runtime: env configuration, bounded caches, warn_once, numba guard."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from sempix import _config, _runtime
from sempix.errors import InputError


def test_cache_root_expands_user(monkeypatch):
    monkeypatch.setenv("SEMPIX_CACHE_DIR", "~/somewhere")
    assert _config.cache_root() == Path.home() / "somewhere"
    assert _config.cache_dir("features") == Path.home() / "somewhere" / "features"
    from sempix.features.cache import cache_root as features_root
    from sempix.models.store import cache_dir as models_dir
    from sempix.palette.prototypes import cache_root as palette_root

    assert features_root().parent == models_dir().parent == palette_root().parent
    monkeypatch.delenv("SEMPIX_CACHE_DIR")
    assert "sempix" in str(_config.cache_root())


def test_max_pixels(monkeypatch):
    monkeypatch.delenv("SEMPIX_MAX_PIXELS", raising=False)
    assert _config.max_pixels() == _config.DEFAULT_MAX_PIXELS
    assert _config.max_pixels(0) is None
    monkeypatch.setenv("SEMPIX_MAX_PIXELS", "2_000")
    assert _config.max_pixels() == 2000
    monkeypatch.setenv("SEMPIX_MAX_PIXELS", "many")
    with pytest.raises(InputError, match="SEMPIX_MAX_PIXELS"):
        _config.max_pixels()


def test_bounded_cache_lru_and_once():
    c = _runtime.BoundedCache(maxsize=2)
    calls = []

    def make(k):
        def f():
            calls.append(k)
            return k * 10
        return f

    assert c.get_or_create(1, make(1)) == 10
    assert c.get_or_create(1, make(1)) == 10
    c.get_or_create(2, make(2))
    c.get_or_create(1, make(1))  # 1 most recent
    c.get_or_create(3, make(3))  # evicts 2
    assert 2 not in c and 1 in c and len(c) == 2
    assert calls == [1, 2, 3]
    # concurrent creators build the value once
    c2 = _runtime.BoundedCache(maxsize=1)
    n = []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        c2.get_or_create("k", lambda: n.append(1) or "v")

    ts = [threading.Thread(target=worker) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert n == [1]
    _runtime.clear_caches()
    assert len(c) == 0


def test_warn_once(caplog):
    _runtime.reset_warnings()
    with caplog.at_level(logging.WARNING):
        assert _runtime.warn_once("model %s missing", "x", logger="sempix.test")
        assert not _runtime.warn_once("model %s missing", "x", logger="sempix.test")
        assert _runtime.warn_once("other", key="k2", logger="sempix.test")
    assert [r.getMessage() for r in caplog.records] == ["model x missing", "other"]


def test_run_parallel_from_threads():
    from sempix.color import kernels as K
    from sempix.color import srgb_to_lab

    img = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    want = srgb_to_lab(img)
    out = []

    def work():
        flat = img.reshape(-1, 3).copy()
        res = np.empty_like(flat)
        _runtime.run_parallel(K._rgb2lab_flat, flat, res, K.TABLE_TO_LIN)
        out.append(res.reshape(img.shape))

    ts = [threading.Thread(target=work) for _ in range(3)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    for o in out:
        np.testing.assert_allclose(o, want, atol=1e-5)


def test_open_pil_leaves_pillow_global_alone(tmp_path, monkeypatch):
    from PIL import Image

    from sempix.image import read_image, write_image

    p = write_image(tmp_path / "a.png", np.zeros((8, 9, 3), np.float32))
    before = Image.MAX_IMAGE_PIXELS
    seen = []
    orig = Image.Image.__init__

    def spy(self, *a, **k):
        seen.append(Image.MAX_IMAGE_PIXELS)
        orig(self, *a, **k)

    monkeypatch.setattr(Image.Image, "__init__", spy)
    assert read_image(p).rgb.shape == (8, 9, 3)
    assert Image.MAX_IMAGE_PIXELS == before
    assert all(v == before for v in seen)  # never changed, even while opening
