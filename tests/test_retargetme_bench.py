"""Helpers of benchmarks/retargetme.py (issue 19 item 4): variant rows, development subsets, the
calibration row's JPEG round trip, and the size of that round trip's effect on the Semantic
Score."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _bench():
    p = Path(__file__).resolve().parents[1] / "benchmarks" / "retargetme.py"
    if not p.is_file():
        pytest.skip("benchmarks/retargetme.py not found")
    spec = importlib.util.spec_from_file_location("sempix_bench_retargetme", p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_parse_variant():
    b = _bench()
    name, kw = b.parse_variant("new:init=multiop,iterations=20,lr=0.05,protect=none,lambdas=1/0/0")
    assert name == "new"
    assert kw == {
        "init": "multiop",
        "iterations": 20,
        "lr": 0.05,
        "protect": None,
        "lambdas": [1.0, 0.0, 0.0],
        "method": "dnr",
    }
    assert b.parse_variant("m:method=multiop")[1] == {"method": "multiop"}


def test_select_every_splits_development_and_validation():
    b = _bench()
    ids = [f"{i:03d}" for i in range(63)]
    dev = b.select_every(ids, "5:2")
    val = b.select_every(ids, "5:-2")
    assert dev[:3] == ["002", "007", "012"] and len(dev) == 13
    assert sorted(dev + val) == ids and not set(dev) & set(val)


def test_best_ignores_calibration_rows():
    b = _bench()
    assert b._best({"SC": 0.8, "SC+q85": 0.9, "sempix-dnr": 0.7}) == "SC"


def test_jpeg_roundtrip_is_lossy_and_shaped(rng):
    b = _bench()
    img = rng.random((40, 56, 3)).astype(np.float32)
    out = b.jpeg_roundtrip(img, 85)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.01 < float(np.abs(out - img).mean()) < 0.3


def test_q85_round_trip_lowers_ss_vgg(model_dir, data_dir):
    """A second q85 round trip of an image that already is a q85 JPEG (RetargetMe's src.jpg) lowers
    SS-VGG (relu3_1): the effect the calibration rows measure. Regression value recorded with the
    issue-19 benchmark code (96 px wide copy of set 001)."""
    if not (Path(model_dir) / "vgg19_normalised_to_relu3_1.pth").is_file():
        pytest.skip("VGG-19 weights not in SEMPIX_MODEL_DIR")
    src = Path(data_dir) / "retargetme" / "001" / "src.jpg"
    if not src.is_file():
        pytest.skip("RetargetMe set 001 not in SEMPIX_DATA_DIR")
    b = _bench()
    from sempix.image import load_rgb
    from sempix.ops.resample import resize
    from sempix.retarget.score import semantic_score

    img = load_rgb(src)
    h, w = img.shape[:2]
    small = np.clip(resize(img, (round(h * 96 / w), 96)), 0, 1).astype(np.float32)
    ss = semantic_score(small, b.jpeg_roundtrip(small, 85), kind="vgg")
    assert ss < 1.0
    assert ss == pytest.approx(RECORDED_SS_Q85, abs=0.003)


RECORDED_SS_Q85 = 0.957083696960514
