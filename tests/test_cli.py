"""CLI plumbing: --help, exit codes (0 ok, 1 internal, 2
usage/input), tracebacks only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sempix.cli import COMMANDS, cli
from sempix.cli.common import command
from sempix.errors import InputError, ModelUnavailableError

SEMPIX = Path(sys.executable).with_name("sempix")


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = [str(SEMPIX)] if SEMPIX.exists() else [sys.executable, "-m", "sempix.cli"]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, timeout=120, env=full_env, check=False
    )


@command("boom", features=True)
@click.argument("what")
def boom(what: str, features: str, quiet: bool, debug: bool) -> None:
    """A test command that fails in the requested way."""
    if what == "input":
        raise InputError("bad.png: cannot read image (broken)\nsecond line never shown")
    if what == "model":
        raise ModelUnavailableError("model 'x' not found: put it in $SEMPIX_MODEL_DIR")
    if what == "internal":
        raise RuntimeError("kaboom")
    if what == "memory":
        raise MemoryError()
    click.echo(f"ok {features}")


def test_help_lists_commands_and_is_light():
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    for name in ("features", "models", "carve"):
        assert name in r.output
    assert "Exit codes" in r.output
    # --help must not import the heavy stack
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom sempix.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0\n"
        "heavy = [m for m in ('torch', 'numba', 'skimage', 'numpy', 'ai_edge_litert') if m in "
        "sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_help_and_version_subprocess():
    r = _run("--help")
    assert r.returncode == 0 and "Usage:" in r.stdout and "models" in r.stdout
    r = _run("--version")
    assert r.returncode == 0 and "sempix" in r.stdout
    r = _run("models", "--help")
    assert r.returncode == 0 and "fetch" in r.stdout and "path" in r.stdout


def test_usage_errors_exit_2():
    runner = CliRunner()
    r = runner.invoke(cli, ["no-such-command"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["models", "path"])  # missing argument
    assert r.exit_code == 2 and "Missing argument" in r.output
    r = runner.invoke(boom, ["ok", "--features", "nonsense"])
    assert r.exit_code == 2 and "Invalid value" in r.output
    r = runner.invoke(boom, ["ok", "--no-such-flag"])
    assert r.exit_code == 2


def test_ok_and_features_option():
    r = CliRunner().invoke(boom, ["ok"])
    assert r.exit_code == 0 and r.output == "ok ade20k\n"
    r = CliRunner().invoke(boom, ["ok", "--features", "lowlevel"])
    assert r.exit_code == 0 and r.output == "ok lowlevel\n"


@pytest.mark.parametrize(
    "what, code, text",
    [
        ("input", 2, "error: bad.png: cannot read image (broken)\n"),
        ("model", 2, "error: model 'x' not found: put it in $SEMPIX_MODEL_DIR\n"),
        (
            "internal",
            1,
            "error: internal error: RuntimeError: kaboom (run with --debug for details)\n",
        ),
        ("memory", 1, "error: out of memory"),
    ],
)
def test_errors_one_line_no_traceback(what, code, text):
    r = CliRunner().invoke(boom, [what])
    assert r.exit_code == code
    assert r.output.startswith(text)
    assert r.output.count("\n") == 1
    assert "Traceback" not in r.output


@pytest.mark.parametrize("what, code", [("input", 2), ("internal", 1)])
def test_debug_shows_traceback(what, code):
    r = CliRunner().invoke(boom, [what, "--debug"])
    assert r.exit_code == code
    assert "Traceback (most recent call last)" in r.output
    assert r.output.rstrip().splitlines()[-1].startswith("error: ")


def test_real_command_errors_subprocess(tmp_path):
    env = {
        "SEMPIX_CACHE_DIR": str(tmp_path),
        "SEMPIX_OFFLINE": "1",
        "SEMPIX_MODEL_DIR": str(tmp_path),
    }
    r = _run("models", "path", "vgg19", env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: model 'vgg19' not found") and r.stderr.count("\n") == 1
    assert r.stdout == "" and "Traceback" not in r.stderr
    r = _run("models", "path", "no-such-model", env=env)
    assert r.returncode == 2 and "unknown model" in r.stderr
    r = _run("models", "path", "no-such-model", "--debug", env=env)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_registered_commands_import_or_are_pending():
    """Every registered command either imports as a click command or is not built yet."""
    import importlib

    for name, (module, attr, help_text) in COMMANDS.items():
        assert help_text and len(help_text) < 80
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            assert exc.name == module, f"{name}: {exc}"  # not built yet: fine
            continue
        assert isinstance(getattr(mod, attr), click.Command), name
