"""CLI and real-model tests of `sempix softseg`."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.cli import cli


@pytest.fixture
def small_png(tmp_path):
    h, w = 30, 40
    x = np.arange(w)
    a = np.clip((w / 2 + 4 - x) / 8, 0, 1)[None, :, None]
    img = a * np.array([0.9, 0.3, 0.2]) + (1 - a) * np.array([0.2, 0.4, 0.9])
    img = np.repeat(img, h, axis=0)
    img[:8] = [0.9, 0.9, 0.3]  # a third region on top
    p = tmp_path / "in.png"
    Image.fromarray((img * 255).astype(np.uint8)).save(p)
    return p


def test_cli_softseg_writes_all_outputs(tmp_path, small_png):
    out = tmp_path / "out"
    r = CliRunner().invoke(
        cli,
        [
            "softseg",
            str(small_png),
            "-o",
            str(out),
            "--layers",
            "3",
            "--preview",
            "--features",
            "none",
            "--quiet",
            "--eigvecs",
            "20",
            "--initial",
            "10",
        ],
    )
    assert r.exit_code == 0, r.output
    for name in [
        "layers_vis.png",
        "alphas.npy",
        "layers.ora",
        "recomposed.png",
        "preview_eigenvectors.png",
        "preview_initial_layers.png",
        "layer_0.png",
        "alpha_0.png",
    ]:
        assert (out / name).is_file(), name
    a = np.load(out / "alphas.npy")
    assert a.shape[:2] == (30, 40) and 1 <= a.shape[2] <= 3
    np.testing.assert_allclose(a.sum(axis=2), 1, atol=1e-5)
    rec = np.asarray(Image.open(out / "recomposed.png"), np.float64)
    src = np.asarray(Image.open(small_png), np.float64)
    assert np.abs(rec - src).mean() < 3


@pytest.mark.parametrize(
    "args,needle",
    [
        (["softseg", "missing.png", "-o", "x"], "no such file"),
        (["softseg", "{img}", "-o", "{out}", "--layers", "0"], "--layers"),
    ],
)
def test_cli_bad_input_one_line_exit_2(tmp_path, small_png, args, needle):
    args = [a.format(img=small_png, out=tmp_path / "o") for a in args]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert needle in r.output


def test_cli_not_an_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    r = CliRunner().invoke(
        cli, ["softseg", str(bad), "-o", str(tmp_path / "o"), "--features", "none"]
    )
    assert r.exit_code == 2 and r.output.startswith("error:")
    assert not (tmp_path / "o" / "layers.ora").exists()


def test_real_ade20k_softseg_on_alphamatting(ade20k_available, data_dir):
    from sempix.softseg import soft_segment

    p = data_dir / "alphamatting" / "input" / "GT04.png"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    im = Image.open(p).convert("RGB")
    im = im.resize((im.width // 8, im.height // 8), Image.BOX)  # ~50k px: a minute at // 5
    img = np.asarray(im, np.float32) / 255
    res = soft_segment(
        img,
        backend="ade20k",
        work_pixels=None,
        n_eigvecs=40,
        n_initial=20,
        constrained_iter=8,
        relaxed_iter=8,
    )
    assert res.meta["backend"] == "ade20k" and res.meta["semantic"]
    A = res.alphas
    assert 2 <= A.shape[2] <= 5
    np.testing.assert_allclose(A.sum(axis=2), 1, atol=1e-5)
    assert A.min() >= 0 and A.max() <= 1
    # layers are meaningful: each layer is dominant somewhere, and the doll figures are separated
    # from the grass/background (the GT foreground is mostly covered by layers that are mostly
    # inside it)
    gt = (
        np.asarray(
            Image.open(data_dir / "alphamatting" / "gt" / "GT04.png").convert("L").resize(im.size),
            np.float32,
        )
        / 255
    )
    inside = (A * gt[..., None]).sum(axis=(0, 1)) / A.sum(axis=(0, 1))
    fg = A[..., inside > 0.5].sum(axis=2)
    assert np.abs(fg - gt).mean() < 0.2
    assert np.abs(res.recompose() - img).mean() < 0.01
