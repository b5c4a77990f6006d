"""Preview / figure pictures stay bounded for extreme sizes (issue 12 item 3).

A 5000x1 image used to give a 1,800,000-pixel-wide ``--preview`` (21 GB, killed), and harmonize had
written its ``-o`` output before the preview failed.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.image import MAX_PANEL_SIDE, fit_picture, fit_size

LIMIT = 6 * MAX_PANEL_SIDE  # a figure has a few panels side by side at most


@pytest.mark.parametrize("w,h", [(5000, 1), (1, 5000), (1, 1), (300, 200), (100_000, 3)])
def test_fit_size_in_box(w, h):
    fw, fh = fit_size(w, h, max_width=1600, max_height=300)
    assert 1 <= fw <= 1600 and 1 <= fh <= 300
    if w / h > 1600 / 300:
        assert fw == 1600
    else:
        assert fh == 300


def test_fit_picture_only_shrinks():
    a = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    assert fit_picture(a, 100) is a
    b = fit_picture(np.zeros((10, 5000), np.float32), 1000)
    assert b.shape == (2, 1000) and b.dtype == np.float32


@pytest.mark.parametrize("shape", [(1, 5000, 3), (5000, 1, 3), (2, 3000, 3)])
def test_palette_pictures_bounded(shape):
    from sempix.palette.viz import _resize, name_map_figure

    img = np.random.default_rng(1).random(shape, dtype=np.float32)
    assert max(_resize(img, 300).size) <= MAX_PANEL_SIDE
    idx = np.random.default_rng(2).integers(0, 11, shape[:2])
    fig = name_map_figure(img, idx)
    assert fig.shape[0] <= LIMIT and fig.shape[1] <= LIMIT


@pytest.mark.timeout(120)
@pytest.mark.parametrize("shape", [(3, 2400, 3), (2400, 3, 3)])
def test_energy_figure_panels_bounded(shape):
    from sempix.carve.figures import energy_figure

    img = np.random.default_rng(3).random(shape, dtype=np.float32)
    H, W = shape[:2]
    fig = energy_figure(
        img, None, max(1, W - 1) if W > 3 else None, max(1, H - 1) if H > 3 else None, lams=[0.0]
    )
    assert fig.shape[0] <= 3 * (MAX_PANEL_SIDE + 40) and fig.shape[1] <= MAX_PANEL_SIDE + 10


def test_retarget_tiles_bounded():
    from sempix.retarget.preview import _tile

    t = _tile(np.zeros((1, 5000, 3), np.float32), 200, "x")
    assert t.width <= MAX_PANEL_SIDE and t.height <= 216


def test_eigvec_preview_bounded():
    from sempix.softseg.export import eigvec_preview

    pic = eigvec_preview(np.random.default_rng(4).random((1200, 1600, 6), dtype=np.float32))
    assert max(pic.shape[:2]) <= 4 * 512 + 8


@pytest.mark.timeout(180)
@pytest.mark.parametrize("shape", [(1, 5000), (5000, 1)])
@pytest.mark.parametrize("cmd", ["names", "palette", "harmonize"])
def test_cli_previews_of_extreme_aspect_ratios(cmd, shape, tmp_path, model_dir, monkeypatch):
    if not any(model_dir.glob("w2c*")):
        pytest.skip("w2c colour-name table not in SEMPIX_MODEL_DIR")
    from sempix.cli import cli

    src = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (*shape, 3), dtype=np.uint8)).save(
        src
    )
    args = [cmd, str(src), "--preview", str(tmp_path / "p.png"), "-q"]
    if cmd == "harmonize":
        args += ["-o", str(tmp_path / "h.png")]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    w, h = Image.open(tmp_path / "p.png").size
    assert w <= LIMIT and h <= LIMIT, (w, h)
