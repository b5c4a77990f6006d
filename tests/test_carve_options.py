"""CarveOptions: the validated, frozen settings object the fronts build; keywords keep working."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sempix.carve import CarveOptions, carve
from sempix.errors import InputError


def _image(rng, h=20, w=24):
    img = rng.random((h, w, 3), dtype=np.float32) * 0.2
    img[:, w // 3 : w // 2] += 0.7  # a bright stripe the seams avoid
    return np.clip(img, 0, 1).astype(np.float32)


def test_options_equal_keywords(rng):
    img = _image(rng)
    feats = rng.random((20, 24, 4), dtype=np.float32)
    kw = dict(lam=0.4, energy="backward", order="height-first", feature_dim=None)
    a = carve(img, 18, 16, features=feats, **kw)
    b = carve(img, 18, 16, features=feats, options=CarveOptions(**kw))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.seam_map, b.seam_map)
    assert b.info["lam"] == 0.4 and b.info["order"] == "height-first"


def test_keywords_override_options(rng):
    img = _image(rng)
    opts = CarveOptions(lam=0.4, order="height-first")
    r = carve(img, 20, 18, options=opts, energy="backward")
    assert r.info["energy"] == "backward" and r.info["order"] == "height-first"
    assert r.info["lam"] == 0.4
    resolved = CarveOptions.resolve(opts, lam=0.2, energy="backward")  # lam=0.2 is the default
    assert resolved.lam == 0.4 and resolved.energy == "backward"
    assert resolved.order == "height-first"
    assert CarveOptions.resolve(None) == CarveOptions()


def test_options_are_frozen_and_validated():
    o = CarveOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.lam = 0.5  # type: ignore[misc]
    assert CarveOptions(lam=1).lam == 1.0 and isinstance(CarveOptions(lam=1).lam, float)
    for bad, word in [
        (dict(lam=1.5), "lambda must be in"),
        (dict(lam=float("nan")), "lambda must be in"),
        (dict(energy="sobel"), "energy must be one of"),
        (dict(semantic_energy="x"), "semantic_energy must be one of"),
        (dict(order="random"), "order must be one of"),
    ]:
        with pytest.raises(InputError, match=word):
            CarveOptions(**bad)
    with pytest.raises(InputError, match="order must be one of"):  # through carve's keywords too
        carve(np.zeros((4, 4, 3), np.float32), 3, order="random")
