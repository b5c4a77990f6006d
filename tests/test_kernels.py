"""The numba kernel registry (sempix.kernels), `sempix warmup` and the cold-cache message."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from sempix import kernels


def test_every_kernel_is_registered():
    found = kernels.all_dispatchers()
    registered = {k.qualname for k in kernels.KERNELS}
    missing = sorted(set(found) - registered)
    assert not missing, (
        f"numba kernels not in sempix.kernels.KERNELS (add them, with signatures): {missing}"
    )
    stale = sorted(registered - set(found))
    assert not stale, f"registered kernels that do not exist: {stale}"
    assert len(found) >= 40


def test_registry_entries_are_well_formed():
    for k in kernels.KERNELS:
        assert k.groups and set(k.groups) <= set(kernels.GROUPS) | {"callee"}, k
        for sig in k.signatures:
            args = kernels.parse_signature(sig)
            assert len(args) == k.dispatcher().py_func.__code__.co_argcount, (k.qualname, sig)
    assert set(kernels.groups_for(["carve"])) == set(kernels.COMMAND_GROUPS["carve"])
    with pytest.raises(Exception, match="unknown tool"):
        kernels.groups_for(["nope"])


def test_warm_up_compiles_every_registered_signature():
    res = kernels.warm_up(None)
    n = sum(len(k.signatures) for k in kernels.KERNELS)
    assert len(res["compiled"]) + len(res["loaded"]) == n
    assert len(res["external"]) == 2  # pymatting's two modules (softseg)
    for k in kernels.KERNELS:
        disp = k.dispatcher()
        for sig in k.signatures:
            assert kernels.parse_signature(sig) in disp.overloads, (k.qualname, sig)
            assert kernels.is_cached(k, sig)
    assert kernels.cold_kernels(kernels.GROUPS) == []


class _Compiles:
    def __init__(self):
        from numba.core import event

        self.names = []
        outer = self

        class L(event.Listener):
            def on_start(self, ev):
                d = ev.data["dispatcher"]
                if d.py_func.__module__.startswith("sempix"):
                    outer.names.append(f"{d.py_func.__name__}{tuple(ev.data['args'])}")

            def on_end(self, ev):
                pass

        self.listener = L()

    def __enter__(self):
        from numba.core import event

        event.register("numba:compile", self.listener)
        return self

    def __exit__(self, *a):
        from numba.core import event

        event.unregister("numba:compile", self.listener)


def test_carve_after_warmup_compiles_nothing(tmp_path):
    """The registered signatures are the ones the carve command dispatches on."""
    from PIL import Image

    from sempix.cli import cli

    kernels.warm_up(["carve"])
    rng = np.random.default_rng(0)
    src, keep = tmp_path / "in.png", tmp_path / "keep.png"
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(src)
    m = np.zeros((48, 64), np.uint8)
    m[10:20, 20:30] = 255
    Image.fromarray(m).save(keep)
    cases = (
        ["-W", "80%", "--features", "none"],
        ["-W", "80%", "--features", "lowlevel", "--keep", str(keep)],
        ["-W", "120%", "-H", "80%", "--features", "none"],
    )
    with _Compiles() as c:
        for case in cases:
            r = CliRunner().invoke(
                cli, ["carve", str(src), "-o", str(tmp_path / "o.png"), "-q", "--force", *case]
            )
            assert r.exit_code == 0, r.output
    assert c.names == [], c.names


def test_cold_cache_message_and_warmup_command(monkeypatch, tmp_path):
    from sempix.cli import cli

    calls = []
    fake = kernels.Kernel(
        "sempix.carve._kernels", "gather2", ("carve",), ("(int64,)",), cost_s=12.0
    )
    monkeypatch.setattr(kernels, "cold_kernels", lambda groups: [(fake, "(int64,)")])
    monkeypatch.setattr(
        kernels, "warm_up", lambda groups=None, progress=None: calls.append(groups) or {}
    )
    r = CliRunner().invoke(
        cli,
        [
            "carve",
            str(tmp_path / "missing.png"),
            "-o",
            str(tmp_path / "o.png"),
            "-W",
            "50%",
            "--features",
            "none",
        ],
    )
    assert "compiling kernels, once: ~12 s" in r.output
    assert calls == [("carve",)]  # --features none: no feature kernels
    monkeypatch.undo()
    r = CliRunner().invoke(cli, ["warmup", "png"])
    assert r.exit_code == 0, r.output
    assert "kernels ready" in r.output
    r = CliRunner().invoke(cli, ["warmup", "--list", "png"])
    assert r.exit_code == 0 and "compiled" in r.output and "unfilter" in r.output
    r = CliRunner().invoke(cli, ["warmup", "nope"])
    assert r.exit_code == 2 and "unknown tool" in r.output
