"""``--json`` on every command that produces results: one schema style, sizes as [W, H]."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.cli import cli


@pytest.fixture
def photo(tmp_path, rng):
    img = np.clip(rng.normal(0.5, 0.2, (24, 36, 3)), 0, 1)
    img[:, :12] = (0.2, 0.3, 0.8)
    p = tmp_path / "in.png"
    Image.fromarray((img * 255).astype(np.uint8)).save(p)
    return p


def _json(args):
    r = CliRunner().invoke(cli, [*map(str, args), "--json", "-q"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout holds only the JSON document
    assert isinstance(doc["timings"], dict) and all(isinstance(k, str) for k in doc["timings"])
    assert doc["input_size"] == [36, 24]  # [width, height]
    return doc


def test_json_schema_of_every_command(photo, tmp_path):
    d = _json(["carve", photo, "-o", tmp_path / "c.png", "-W", "30", "--features", "lowlevel"])
    assert (
        d["command"] == "carve"
        and d["output_size"] == [30, 24]
        and d["outputs"]["image"].endswith("c.png")
    )
    d = _json(["mask", photo, "--at", "3,3", "-o", tmp_path / "m.png", "--features", "none"])
    assert d["command"] == "mask" and d["output_size"] == [36, 24] and 0.2 < d["coverage"] < 0.5
    assert d["settings"]["space"] == "lab"
    d = _json(
        [
            "retarget",
            photo,
            "-o",
            tmp_path / "r.png",
            "-W",
            "27",
            "--method",
            "scale",
            "--features",
            "none",
            "--protect",
            "none",
        ]
    )
    assert (
        d["command"] == "retarget"
        and d["output_size"] == [27, 24]
        and d["outputs"] == {"image": str(tmp_path / "r.png")}
    )
    d = _json(["features", photo, "--backend", "lowlevel", "-o", tmp_path / "f.npz", "--no-cache"])
    assert (
        d["command"] == "features"
        and d["backend"] == "lowlevel"
        and not d["semantic"]
        and d["dim"] > 0
    )
    assert set(d["outputs"]) == {"features"}


def test_features_message_is_width_by_height(photo):
    r = CliRunner().invoke(
        cli,
        [
            "features",
            str(photo),
            "--backend",
            "lowlevel",
            "-o",
            str(photo.with_suffix(".npz")),
            "--no-cache",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "features 36x24," in r.stderr
