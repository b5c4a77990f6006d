"""``sempix burst ...`` end to end on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from sempix.cli import cli
from sempix.image import write_image


def _texture(seed=0, size=64):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((size, size, 3)), (2, 2, 0))
    return ((x - x.min()) / (x.max() - x.min()) * 0.6 + 0.2).astype(np.float32)


def run(*args):
    return CliRunner().invoke(cli, ["burst", *args], catch_exceptions=False)


def test_synth_merge_advise(tmp_path):
    src = write_image(tmp_path / "img.png", _texture(size=96))
    r = run(
        "synth",
        str(src),
        "-o",
        str(tmp_path / "b"),
        "-n",
        "4",
        "--scale",
        "2",
        "--shake",
        "1",
        "--read",
        "5",
        "--seed",
        "1",
        "-q",
    )
    assert r.exit_code == 0, r.output
    frames = sorted((tmp_path / "b").glob("frame_*.png"))
    assert len(frames) == 4 and (tmp_path / "b" / "hr.png").is_file()
    meta = json.loads((tmp_path / "b" / "burst.json").read_text())
    assert meta["params"]["n"] == 4 and len(meta["shifts_hr"]) == 4
    out = tmp_path / "merged.png"
    r = run("merge", *map(str, frames), "-o", str(out), "--scale", "2", "-q")
    assert r.exit_code == 0, r.output
    from sempix.image import load_rgb

    assert load_rgb(out).shape == (96, 96, 3)
    r = run(
        "advise",
        *map(str, frames),
        "-o",
        str(tmp_path / "advice.png"),
        "--json",
        str(tmp_path / "advice.json"),
        "--n-max",
        "10",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert "recommended burst length" in r.output
    adv = json.loads((tmp_path / "advice.json").read_text())
    assert 1 <= adv["best_n"] <= 10 and len(adv["shifts"]) == 4
    assert 1 <= adv["best_n_aligned"] <= 10 and adv["residual"] == 0.1
    assert (tmp_path / "advice.png").stat().st_size > 1000


def test_toy_command(tmp_path):
    r = run(
        "toy", "--noise", "0.3", "--shake", "1", "-n", "1,5,10", "-o", str(tmp_path / "toy.png")
    )
    assert r.exit_code == 0, r.output
    assert "best n by AUR" in r.output and (tmp_path / "toy.png").is_file()


def test_bad_input_exits_2(tmp_path):
    from sempix.cli import main

    a = write_image(tmp_path / "a.png", _texture(size=32))
    b = write_image(tmp_path / "b.png", _texture(size=48))
    with pytest.raises(SystemExit) as e:
        main(["burst", "merge", str(a), str(b), "-o", str(tmp_path / "o.png")])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["burst", "toy", "-n", "0,2"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["burst", "merge", str(a), "-o", str(a)])  # would overwrite its input
    assert e.value.code == 2


def test_curve_classical(tmp_path):
    from sempix.models import is_available

    if not is_available("niqe-pris-params"):
        pytest.skip("niqe_pris_params.npz not in the model store (SEMPIX_MODEL_DIR)")
    d = tmp_path / "val"
    for k in range(2):
        write_image(d / f"{k}.png", _texture(seed=k, size=128))
    r = run(
        "curve",
        "--data",
        str(d),
        "-n",
        "1,2",
        "--alphas",
        "0,1",
        "--shake",
        "1",
        "--json",
        str(tmp_path / "c.json"),
        "-o",
        str(tmp_path / "c.png"),
        "-q",
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "c.json").read_text())
    assert set(res["aur"]) == {"1", "2"} and all(0 <= v <= 1 for v in res["aur"].values())


def test_curve_from_points(tmp_path):
    csv = tmp_path / "pts.csv"
    csv.write_text("label,D,P\nA,0.1,1.0\nA,0.5,0.5\nA,0.3,0.9\nA,1.0,0.0\nB,0.2,1.0\nB,1.0,0.5\n")
    r = run(
        "curve",
        "--points",
        str(csv),
        "--json",
        str(tmp_path / "o.json"),
        "-o",
        str(tmp_path / "o.png"),
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "o.json").read_text())
    assert res["aur"]["A"] < res["aur"]["B"]
    bad = tmp_path / "bad.csv"
    bad.write_text("A,x,1\n")
    from sempix.cli import main

    with pytest.raises(SystemExit) as e:
        main(["burst", "curve", "--points", str(bad)])
    assert e.value.code == 2


def test_train_then_merge_with_checkpoint(tmp_path):
    from sempix.models import is_available

    if not is_available("vgg19-normalised-relu3_1"):
        pytest.skip("vgg19-normalised-relu3_1 not in the model store (perceptual loss)")
    d = tmp_path / "train"
    for k in range(2):
        write_image(d / f"{k}.png", _texture(seed=k, size=32))
    out = tmp_path / "run"
    r = run(
        "train",
        "--data",
        str(d),
        "-o",
        str(out),
        "--scale",
        "2",
        "--n-choices",
        "1,2",
        "--blocks",
        "1",
        "--features",
        "8",
        "--growth",
        "4",
        "--steps-l1",
        "2",
        "--steps-gan",
        "1",
        "--batch",
        "2",
        "--crop",
        "16",
        "--threads",
        "1",
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert (out / "distortion.pt").is_file() and (out / "perception.pt").is_file()
    # resume: nothing left to do, same files
    r = run(
        "train",
        "--data",
        str(d),
        "-o",
        str(out),
        "--scale",
        "2",
        "--n-choices",
        "1,2",
        "--blocks",
        "1",
        "--features",
        "8",
        "--growth",
        "4",
        "--steps-l1",
        "2",
        "--steps-gan",
        "1",
        "--batch",
        "2",
        "--crop",
        "16",
        "--resume",
        "-q",
    )
    assert r.exit_code == 0, r.output
    frames = [write_image(tmp_path / f"f{i}.png", _texture(seed=5, size=16)) for i in range(2)]
    r = run(
        "merge",
        *map(str, frames),
        "-o",
        str(tmp_path / "sr.png"),
        "--checkpoint",
        str(out / "perception.pt"),
        "-q",
    )
    assert r.exit_code == 0, r.output
    from sempix.image import load_rgb

    assert load_rgb(tmp_path / "sr.png").shape == (32, 32, 3)
