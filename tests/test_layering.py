"""Import layering of the package (issue 13), checked by walking every ``import`` in ``src/sempix``.

The rule (DEVELOPING.md, "Layering")::

    0 base    errors, progress, _config, _runtime
    1 core    image, io, color, ops, _png_kernels
    2 data    models, distance, features, nets, train, data
    3 tools   carve, mask, softseg, palette, recolor, retarget, burst, slimseg, adjust
    4 fronts  cli, web, batch, examples, kernels

* A module may import modules of its own level or below, never above.
* A tool imports another tool only through its package face (``from sempix.carve import carve``,
  never ``sempix.carve.core``) and only where the pair is listed in :data:`TOOL_USES`.
* ``batch`` (a front) imports tools through their package faces only.
* Function-level (lazy) imports count too: the rule is about dependencies, not import time.

Components listed here that do not exist (yet) are fine; a new top-level package or module that is
not listed fails the test until it is given a level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sempix"

LEVELS: dict[str, int] = {
    **dict.fromkeys(("__init__", "errors", "progress", "_config", "_runtime"), 0),
    **dict.fromkeys(("image", "io", "color", "ops", "_png_kernels"), 1),
    **dict.fromkeys(("models", "distance", "features", "nets", "train", "data"), 2),
    **dict.fromkeys(
        (
            "carve",
            "mask",
            "softseg",
            "palette",
            "recolor",
            "retarget",
            "burst",
            "slimseg",
            "adjust",
        ),
        3,
    ),
    **dict.fromkeys(("cli", "web", "batch", "examples", "kernels"), 4),
}
TOOLS = {name for name, level in LEVELS.items() if level == 3}
#: tool -> other tools whose public API (package face) it may use
TOOL_USES = {"retarget": {"carve"}, "recolor": {"palette"}, "burst": {"retarget"}}
#: fronts that must use tools through their package faces only
PUBLIC_ONLY_FRONTS = {"batch"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every sempix import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    mod = _module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "sempix"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "sempix":
                continue
            if name == "sempix":  # from sempix import carve -> the subpackage/module itself
                out += [(node.lineno, f"sempix.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, name))
    return out


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def violations() -> list[str]:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        mod = _module_name(path)
        comp = _component(mod)
        if comp not in LEVELS:
            problems.append(
                f"{mod}: top-level component {comp!r} has no layer; add it to LEVELS in "
                "tests/test_layering.py and DEVELOPING.md"
            )
            continue
        for line, target in _imports(path):
            tcomp = _component(target)
            where = f"{path.relative_to(SRC.parent)}:{line}"
            if tcomp == comp:
                continue
            if tcomp not in LEVELS:
                continue  # reported for its own files
            if tcomp == "__init__" and target != "sempix":
                continue
            if LEVELS[tcomp] > LEVELS[comp]:
                problems.append(
                    f"{where}: {comp} (level {LEVELS[comp]}) imports {target} "
                    f"(level {LEVELS[tcomp]})"
                )
            elif tcomp in TOOLS and comp in TOOLS:
                if tcomp not in TOOL_USES.get(comp, set()):
                    problems.append(
                        f"{where}: tool {comp} imports tool {tcomp} ({target}); tools are "
                        "independent (allowed pairs: TOOL_USES)"
                    )
                elif target != f"sempix.{tcomp}":
                    problems.append(
                        f"{where}: tool {comp} imports {target}, an internal module of "
                        f"{tcomp}; use its public API (sempix.{tcomp})"
                    )
            elif tcomp in TOOLS and comp in PUBLIC_ONLY_FRONTS and target != f"sempix.{tcomp}":
                problems.append(
                    f"{where}: {comp} imports {target}; use the public API (sempix.{tcomp})"
                )
    return problems


def test_import_layering():
    problems = violations()
    assert not problems, "import layering violated:\n" + "\n".join(problems)


def test_checker_sees_violations(tmp_path):
    """The walker resolves relative and lazy imports and flags upward and tool-to-tool imports."""
    pkg = tmp_path / "sempix"
    (pkg / "color").mkdir(parents=True)
    (pkg / "mask").mkdir()
    (pkg / "retarget").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "color" / "__init__.py").write_text("def f():\n    from sempix.mask import x\n")
    (pkg / "mask" / "__init__.py").write_text(
        "from .core import y\nfrom sempix.palette.naming import z\n"
    )
    (pkg / "retarget" / "x.py").write_text(
        "from sempix.carve.core import w\nfrom sempix.carve import v\n"
    )
    (pkg / "newthing.py").write_text("")
    globals()["SRC"], old = pkg, SRC
    try:
        found = "\n".join(violations())
    finally:
        globals()["SRC"] = old
    assert "color (level 1) imports sempix.mask" in found
    assert "tool mask imports tool palette" in found
    assert "internal module of carve" in found
    assert "sempix.carve;" not in found.replace("(sempix.carve)", "")
    assert "'newthing' has no layer" in found


@pytest.mark.parametrize("face", ["features", "retarget", "palette", "ops", "color"])
def test_package_faces_only_reexport(face):
    """Package ``__init__`` files hold no function bodies or classes: only imports, constants and
    the lazy ``__getattr__`` re-export hook."""
    tree = ast.parse((SRC / face / "__init__.py").read_text(encoding="utf-8"))
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert set(defs) <= {"__getattr__"}, f"sempix.{face}.__init__ defines {defs}"


@pytest.mark.parametrize("face", ["features", "retarget", "palette", "ops", "color", "mask"])
def test_exports_do_not_shadow_submodules(face):
    """``from sempix.ops import resize`` must give the function even after ``sempix.ops.resize``
    (a module of the same name) was imported: no exported name may equal a submodule name."""
    import importlib

    mod = importlib.import_module(f"sempix.{face}")
    subs = {p.stem for p in (SRC / face).glob("*.py")} | {p.name for p in (SRC / face).iterdir()
                                                           if (p / "__init__.py").is_file()}
    clash = sorted(set(getattr(mod, "__all__", ())) & subs)
    assert not clash, f"sempix.{face} exports {clash}, which are also submodule names"
