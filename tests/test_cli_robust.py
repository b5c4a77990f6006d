"""CLI robustness (issue 12 item 10): exit codes, SIGTERM, stale temporary files, output sets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from sempix.cli import cli
from sempix.cli.common import command
from sempix.errors import InputError
from sempix.image import atomic_folder, check_outputs, clean_stale_parts, write_image


@pytest.fixture
def img(tmp_path) -> Path:
    p = tmp_path / "s.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(p)
    return p


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _one_error_line(res):
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert any(ln.startswith("error: ") for ln in lines), res.output
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "case",
    [
        ["names", "nan,0,0"],
        ["names", "0,inf,0"],
        ["softseg", "{img}", "-o", "{tmp}/sd", "--seed", "-1", "--features", "lowlevel"],
        [
            "retarget",
            "{img}",
            "-o",
            "{tmp}/r.png",
            "--width",
            "30",
            "--lr",
            "nan",
            "--features",
            "lowlevel",
        ],
        [
            "retarget",
            "{img}",
            "-o",
            "{tmp}/r.png",
            "--width",
            "30",
            "--weights",
            "{tmp}/nonexistent.pth",
        ],
        ["features", "{img}", "-o", "{tmp}/regular/x.npz", "--features", "lowlevel"],
        [
            "features",
            "{img}",
            "-o",
            "{tmp}/x.npz",
            "--preview",
            "{tmp}/regular/p.png",
            "--features",
            "lowlevel",
        ],
    ],
)
def test_bad_inputs_exit_2_with_one_line(case, img, tmp_path):
    (tmp_path / "regular").write_text("a file, not a folder")
    args = [a.format(img=img, tmp=tmp_path) for a in case]
    res = _invoke(*args, "-q")
    assert res.exit_code == 2, res.output
    _one_error_line(res)
    assert not (tmp_path / "r.png").exists() and not (tmp_path / "sd").exists()
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("extra", [["--figure-lambdas", "a,b"], ["--figure-lambdas", "0,2"], []])
def test_carve_bad_figure_options_leave_no_output(extra, img, tmp_path):
    out = tmp_path / "o.png"
    res = _invoke(
        "carve",
        img,
        "-o",
        out,
        "--width",
        "40",
        "--features",
        "none",
        "--energy-figure",
        tmp_path / "f.png",
        *extra,
        "-q",
    )
    assert res.exit_code == 2, res.output
    _one_error_line(res)
    assert not out.exists(), "the main output was written although a figure option was bad"


def test_carve_second_output_unwritable_checked_first(img, tmp_path):
    (tmp_path / "regular").write_text("x")
    res = _invoke(
        "carve",
        img,
        "-o",
        tmp_path / "o.png",
        "--width",
        "40",
        "--features",
        "none",
        "--seams",
        tmp_path / "regular" / "s.png",
        "-q",
    )
    assert res.exit_code == 2
    assert not (tmp_path / "o.png").exists()


def test_oserror_of_a_user_path_is_exit_2(tmp_path):
    @command("t-oserror")
    def t(quiet, debug):
        raise PermissionError(13, "Permission denied", str(tmp_path / "locked.png"))

    res = CliRunner().invoke(t, [])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {tmp_path / 'locked.png'}: Permission denied"


def test_check_outputs_as_a_set(tmp_path, img):
    with pytest.raises(InputError, match="two outputs"):
        check_outputs([tmp_path / "a.png", tmp_path / "." / "a.png"])
    with pytest.raises(InputError, match="input"):
        check_outputs([tmp_path / "b.png", img], inputs=(img,))
    with pytest.raises(InputError, match="unknown output format"):
        check_outputs([tmp_path / "c.xyz"], images=[tmp_path / "c.xyz"])
    assert check_outputs([None, tmp_path / "new" / "d.png"]) == [tmp_path / "new" / "d.png"]
    assert not (tmp_path / "new").exists()  # checking creates nothing


# ------------------------------------------------------------------------------ temporary files


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_parts_of_dead_runs_are_cleaned(tmp_path):
    dead = tmp_path / f".o.png.{_dead_pid()}.abcd1234.part"
    old = tmp_path / ".o.png.abcd1234.part"  # older sempix naming, no pid
    live = tmp_path / f".o.png.{os.getppid()}.abcd1234.part"  # a running process: kept
    other = tmp_path / ".notes.txt.part"  # not sempix's naming: kept
    dead_dir = tmp_path / f".layers.{_dead_pid()}.zz99zz99.part"
    for f in (dead, old, live, other):
        f.write_bytes(b"x")
    dead_dir.mkdir()
    (dead_dir / "layer_0.png").write_bytes(b"x")
    t = time.time() - 3600
    os.utime(old, (t, t))
    write_image(tmp_path / "o.png", np.zeros((4, 4, 3), np.float32))
    assert not dead.exists() and not old.exists() and not dead_dir.exists()
    assert live.exists() and other.exists()
    assert (tmp_path / "o.png").exists()
    assert clean_stale_parts(tmp_path) == []


def test_atomic_folder_is_a_set(tmp_path):
    out = tmp_path / "layers"
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "a.png").write_bytes(b"1")
        raise RuntimeError("killed half-way")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []
    with atomic_folder(out) as tmp:
        for k in range(3):
            (tmp / f"f{k}").write_bytes(b"x")
    assert sorted(p.name for p in out.iterdir()) == ["f0", "f1", "f2"]
    with atomic_folder(out) as tmp:  # into an existing folder: files replaced, others kept
        (tmp / "f0").write_bytes(b"new")
    assert (out / "f0").read_bytes() == b"new" and (out / "f2").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["layers"]


_SIGTERM_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import click
    from sempix.cli.common import command
    from sempix.image import atomic_output

    @command("t")
    @click.argument("out")
    def t(out, quiet, debug):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"partial")
            print("writing", flush=True)
            time.sleep(60)

    t()
""")


@pytest.mark.timeout(60)
def test_sigterm_unwinds_like_ctrl_c(tmp_path):
    out = tmp_path / "o.bin"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen(
        [sys.executable, "-c", _SIGTERM_SCRIPT, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert p.stdout.readline().strip() == "writing"
    assert any(f.name.endswith(".part") for f in tmp_path.iterdir())
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 143, err
    assert err.strip() == "error: terminated"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_softseg_writes_its_files_as_a_set(img, tmp_path, monkeypatch):
    """A failure while writing the layers leaves no partial folder (12 of 14 files before)."""
    from sempix.softseg import export

    real = export.atomic_write_bytes

    def fail_on_ora(path, *a, **k):
        if Path(path).suffix == ".ora":
            raise OSError(28, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(export, "atomic_write_bytes", fail_on_ora)
    out = tmp_path / "sd"
    res = _invoke(
        "softseg",
        img,
        "-o",
        out,
        "--features",
        "lowlevel",
        "--layers",
        "2",
        "--eigvecs",
        "4",
        "--initial",
        "3",
        "-q",
    )
    assert res.exit_code == 1, res.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]


@pytest.mark.timeout(120)
def test_recolor_writes_its_folder_as_a_set(tmp_path, monkeypatch, w2c_available):
    import sempix.recolor.preview as rp

    paths = []
    for i in range(2):
        p = tmp_path / f"in{i}.png"
        Image.fromarray(
            np.random.default_rng(i).integers(0, 255, (24, 32, 3), dtype=np.uint8)
        ).save(p)
        paths.append(str(p))
    out = tmp_path / "o"
    monkeypatch.setattr(rp, "preview_sheet", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    res = _invoke("recolor", *paths, "-o", out, "--features", "none", "--preview", "-q")
    assert res.exit_code == 1 and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in0.png", "in1.png"]
    monkeypatch.undo()
    res = _invoke("recolor", *paths, "-o", out, "--features", "none", "--preview", "-q")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["in0.png", "in1.png", "preview.png"]


def test_recolor_into_the_input_folder_refuses_to_overwrite_inputs(tmp_path, w2c_available):
    paths = []
    for i in range(2):
        p = tmp_path / f"in{i}.png"
        Image.fromarray(
            np.random.default_rng(i).integers(0, 255, (24, 32, 3), dtype=np.uint8)
        ).save(p)
        paths.append(str(p))
    before = {p: Path(p).read_bytes() for p in paths}
    res = _invoke("recolor", *paths, "-o", tmp_path, "--features", "none", "-q")
    assert res.exit_code == 2 and "overwrite an input" in res.output
    assert {p: Path(p).read_bytes() for p in paths} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in0.png", "in1.png"]
