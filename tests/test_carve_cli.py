"""``sempix carve`` command line and real-model carving."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.cli import cli


@pytest.fixture
def photo(tmp_path, rng):
    """A smooth synthetic 'photo': a disc on a gradient with some noise (48x64)."""
    yy, xx = np.mgrid[0:48, 0:64]
    img = np.stack([xx / 64, yy / 48, 0.5 + 0 * xx], axis=2)
    disc = (xx - 30) ** 2 + (yy - 24) ** 2 < 12**2
    img[disc] = (0.9, 0.2, 0.1)
    img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    p = tmp_path / "in.png"
    Image.fromarray((img * 255).astype(np.uint8)).save(p)
    m = tmp_path / "disc.png"
    Image.fromarray((disc * 255).astype(np.uint8)).save(m)
    return p, m, disc


def run(*args):
    return CliRunner().invoke(cli, ["carve", *map(str, args)], catch_exceptions=False)


def test_cli_width_percent_and_pictures(tmp_path, photo):
    p, m, disc = photo
    out = tmp_path / "out.png"
    r = run(
        p,
        "-o",
        out,
        "--width",
        "75%",
        "--features",
        "none",
        "--seams",
        tmp_path / "s.png",
        "--energy-map",
        tmp_path / "e.png",
        "--also",
        f"{m}:{tmp_path / 'm.png'}",
        "--keep",
        m,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (48, 48)
    assert Image.open(tmp_path / "s.png").size == (64, 48)
    assert Image.open(tmp_path / "e.png").size == (64, 48)
    carved_mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert carved_mask.ndim == 2 and carved_mask.shape == (48, 48)
    assert (carved_mask > 127).sum() == disc.sum()  # kept: the disc is protected and carried along


def test_cli_enlarge_height_and_alpha(tmp_path, photo, rng):
    p, _, _ = photo
    rgba = np.dstack([np.asarray(Image.open(p)), (rng.random((48, 64)) * 255).astype(np.uint8)])
    q = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(q)
    out = tmp_path / "o.png"
    r = run(
        q, "-o", out, "-W", 70, "-H", "120%", "--features", "none", "-q", "--energy", "backward"
    )
    assert r.exit_code == 0, r.output
    im = Image.open(out)
    assert im.size == (70, 58) and im.mode == "RGBA"


def test_cli_drop_restores_size(tmp_path, photo):
    p, m, _ = photo
    out = tmp_path / "o.png"
    r = run(
        p,
        "-o",
        out,
        "--drop",
        m,
        "--features",
        "none",
        "-q",
        "--also",
        f"{m}:{tmp_path / 'mm.npy'}",
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (64, 48)
    assert np.load(tmp_path / "mm.npy").max() < 0.5


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--width", "0"], "at least 1 pixel"),
        (["--width", "500%"], "more than"),
        (["--width", "abc"], "pixels"),
        ([], "give --width"),
        (["--width", "50", "--lambda", "2"], "lambda"),
        (["--width", "50", "--keep", "missing.png"], "no such file"),
        (["--width", "50", "--also", "nocolon"], "IN:OUT"),
        (["--width", "50", "--keep-class", "person"], "semantic labels"),
    ],
)
def test_cli_bad_input_exit_2(tmp_path, photo, extra, needle):
    p, _, _ = photo
    out = tmp_path / "o.png"
    r = CliRunner().invoke(cli, ["carve", str(p), "-o", str(out), "--features", "none", *extra])
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_cli_refuses_to_overwrite_input(photo):
    p, _, _ = photo
    before = p.read_bytes()
    r = CliRunner().invoke(cli, ["carve", str(p), "-o", str(p), "-W", "50", "--features", "none"])
    assert r.exit_code == 2 and "overwrite" in r.output
    assert p.read_bytes() == before


def test_cli_keep_blocking_every_seam(tmp_path, photo):
    p, _, _ = photo
    band = np.zeros((48, 64), np.uint8)
    band[:, 10:60] = 255
    k = tmp_path / "band.png"
    Image.fromarray(band).save(k)
    out = tmp_path / "o.png"
    r = CliRunner().invoke(
        cli, ["carve", str(p), "-o", str(out), "-W", "20", "--keep", str(k), "--features", "none"]
    )
    assert r.exit_code == 2 and "keep mask" in r.output
    r = run(p, "-o", out, "-W", 20, "--keep", k, "--features", "none", "--best-effort", "-q")
    assert r.exit_code == 0 and Image.open(out).size == (20, 48)


def test_cli_lowlevel_features_and_figure(tmp_path, photo):
    p, _, _ = photo
    out = tmp_path / "o.png"
    fig = tmp_path / "fig.png"
    r = run(p, "-o", out, "-W", 50, "--features", "lowlevel", "--energy-figure", fig, "-q")
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (50, 48)
    w, h = Image.open(fig).size
    assert w > 3 * 64 and h > 3 * 48  # 3 columns (lam = 0, 1, 0.2) x 3 rows


# ----------------------------------------------------------------------------------------------
# real model / real data
# ----------------------------------------------------------------------------------------------


def test_real_semantic_carving_protects_class(ade20k_available, data_dir, tmp_path):
    """ade20k features on a BSDS photo; --keep-class keeps every pixel of the labelled class."""
    from sempix.carve import carve
    from sempix.features import class_mask, compute_features
    from sempix.image import read_image

    src = data_dir / "bsds500" / "images" / "train" / "100075.jpg"  # bears on a river bank
    if not src.is_file():
        pytest.skip(f"{src} not found")
    rgb = read_image(src).rgb[::2, ::2].copy()
    fm = compute_features(rgb, "ade20k", dim=32)
    assert fm.semantic and fm.labels is not None
    present = [n for _, n, frac in fm.present_classes(0.05)]
    assert present
    keep = class_mask(fm, present[0])
    res = carve(
        rgb,
        "80%",
        features=fm.features,
        lam=0.2,
        keep=keep,
        keep_strict=False,
        also=[keep.astype(np.float32)],
    )
    assert res.image.shape == (rgb.shape[0], round(rgb.shape[1] * 0.8), 3)
    assert res.info["feature_dim"] == 16
    if res.info["keep_pixels_cut"] == 0:
        assert res.also[0].sum() == keep.sum()
    out = tmp_path / "o.png"
    r = run(
        src,
        "-o",
        out,
        "-W",
        "90%",
        "--features",
        "ade20k",
        "--keep-class",
        present[0],
        "--best-effort",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (round(481 * 0.9), 321)


def test_example_runs(tmp_path):
    from sempix.carve.example import run_example

    paths = run_example(tmp_path, "coffee", width="90%", backend="lowlevel", figure=False)
    assert Image.open(paths["output"]).size == (540, 400)
    assert paths["seams"].is_file() and paths["energy"].is_file()


def test_cli_also_16bit_depth(tmp_path, photo):
    p, _, _ = photo
    depth = (np.linspace(0, 65535, 48 * 64).reshape(48, 64)).astype(np.uint16)
    d = tmp_path / "depth.png"
    Image.fromarray(depth).save(d)
    out, dout = tmp_path / "o.png", tmp_path / "d_out.png"
    r = run(p, "-o", out, "-W", 40, "--features", "none", "-q", "--also", f"{d}:{dout}")
    assert r.exit_code == 0, r.output
    from sempix.image import read_image

    li = read_image(dout)
    assert li.rgb.shape[:2] == (48, 40) and li.bit_depth == 16
    # every carved depth row is the input row with 24 values removed (order kept)
    src = depth.astype(np.float64) / 65535
    got = li.rgb[..., 0].astype(np.float64)
    for i in range(48):
        assert np.all(np.diff(got[i]) > 0) and got[i].min() >= src[i].min() - 1e-6
