"""CLI tests of `sempix mask` (real files, lowlevel features or none)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.cli import cli
from sempix.mask import srgb_to_linear


@pytest.fixture
def img_path(tmp_path):
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[:, :20] = (30, 60, 140)
    arr[:, 20:] = (230, 200, 80)
    p = tmp_path / "in.png"
    Image.fromarray(arr).save(p)
    return p


def run(*args):
    return CliRunner().invoke(cli, ["mask", *map(str, args)], catch_exceptions=False)


def test_mask_outputs(img_path, tmp_path):
    m, d, o, ov = (tmp_path / n for n in ("m.png", "d.npy", "o.png", "ov.png"))
    r = run(
        img_path,
        "--at",
        "5,5",
        "--features",
        "none",
        "--lambda",
        "0.5",
        "--tau",
        "0.1",
        "-o",
        m,
        "--save-distance",
        d,
        "--apply",
        "exposure=+1",
        "--output",
        o,
        "--overlay",
        ov,
        "-q",
    )
    assert r.exit_code == 0, r.output
    mask = np.asarray(Image.open(m))
    assert mask.shape == (30, 40) and mask[:, :20].min() == 255 and mask[:, 20:].max() == 0
    dist = np.load(d)
    assert dist.dtype == np.float32 and dist.shape == (30, 40) and dist[5, 5] == 0
    out = np.asarray(Image.open(o)).astype(np.float32) / 255
    inp = np.asarray(Image.open(img_path)).astype(np.float32) / 255
    assert np.array_equal(out[:, 20:], inp[:, 20:])
    np.testing.assert_allclose(
        srgb_to_linear(out[:, :20]), 2 * srgb_to_linear(inp[:, :20]), rtol=0.02
    )
    assert Image.open(ov).size == (40, 30)


def test_mask_two_points_and_lowlevel_feather_refine(img_path, tmp_path):
    m = tmp_path / "m.png"
    r = run(
        img_path,
        "--at",
        "5,5",
        "--at",
        "35,25",
        "--features",
        "lowlevel",
        "--lambda",
        "0",
        "--tau",
        "0.1",
        "--feather",
        "0.05",
        "--refine",
        "-o",
        m,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert np.asarray(Image.open(m)).min() > 200  # both regions selected


@pytest.mark.parametrize(
    "args,word",
    [
        (["--at", "5"], "X,Y"),
        (["--at", "500,5", "-o", "{m}"], "outside"),
        (["--at", "5,5", "--tau", "-1", "-o", "{m}"], "tau"),
        (["--at", "5,5", "--lambda", "2", "-o", "{m}"], "lambda"),
        (["--at", "5,5"], "nothing to do"),
        (["--at", "5,5", "--apply", "exposure=1"], "--output"),
        (["--at", "5,5", "--apply", "glow=1", "--output", "{m}"], "glow"),
        (["--at", "5,5", "-o", "{src}"], "overwrite"),
    ],
)
def test_mask_bad_input_exit_2(img_path, tmp_path, args, word):
    args = [a.format(m=tmp_path / "m.png", src=img_path) for a in args]
    r = run(img_path, "--features", "none", *args)
    assert r.exit_code == 2
    assert "error:" in r.output and word in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "m.png").exists()


def test_mask_missing_file(tmp_path):
    r = run(tmp_path / "nope.png", "--at", "1,1", "-o", tmp_path / "m.png", "--features", "none")
    assert r.exit_code == 2 and "error:" in r.output


def test_mask_ade20k_real_image(ade20k_available, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMPIX_MODEL_DIR", str(ade20k_available.parent))
    src = data_dir / "bsds500" / "images" / "val"
    img = min(src.glob("*.jpg"))
    m = tmp_path / "m.png"
    r = run(
        img,
        "--at",
        "240,20",
        "--features",
        "ade20k",
        "-o",
        m,
        "--save-distance",
        tmp_path / "d.npy",
        "-q",
    )
    assert r.exit_code == 0, r.output
    mask = np.asarray(Image.open(m))
    assert 0 < (mask > 127).mean() < 1


def test_bad_second_output_leaves_no_first_output(img_path, tmp_path):
    """Regression (QA): a bad --overlay/--save-distance path
    used to be found after -o was written."""
    m = tmp_path / "m.png"
    r = run(
        img_path, "--at", "5,5", "--features", "none", "-o", m, "--overlay", img_path / "ov.png"
    )
    assert r.exit_code == 2 and "error:" in r.output and "not a directory" in r.output
    assert not m.exists()
    r = run(img_path, "--at", "5,5", "--features", "none", "-o", m, "--overlay", img_path)
    assert r.exit_code == 2 and "refusing" in r.output and not m.exists()
    r = run(
        img_path,
        "--at",
        "5,5",
        "--features",
        "none",
        "-o",
        m,
        "--save-distance",
        img_path / "d.npy",
    )
    assert r.exit_code == 2 and not m.exists()


def test_empty_apply_is_refused(img_path, tmp_path):
    """Regression (QA): --apply "" used to write an unchanged copy of the image."""
    out = tmp_path / "o.png"
    r = run(img_path, "--at", "5,5", "--features", "none", "--apply", " , ", "--output", out)
    assert r.exit_code == 2 and "--apply is empty" in r.output and not out.exists()
