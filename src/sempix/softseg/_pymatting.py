"""pymatting's functions without ``import pymatting``.

``import pymatting`` runs the package's ``__init__``, which imports every submodule; their ~30 numba
kernels carry explicit signatures, so numba compiles all of them at import time (about 80 s on the
2-core machine with an empty cache, ~330 s of compile under load) and loads all of them from the
cache on every later run - while soft segmentation uses two: the matting Laplacian and the
multi-level foreground estimation. This module executes only those two module files (they import
nothing from pymatting), under pymatting's own module names (``pymatting.laplacian.cf_laplacian``,
registered in ``sys.modules`` without the package); numba's cache is the same as pymatting's own
(it is keyed by source file).

The module name matters: numba pickles it into every cache entry and imports it when a later
process loads the entry. Under a private name (``sempix.softseg._pymatting.laplacian_cf_laplacian``,
used before) a cache entry written by sempix made a later plain ``import pymatting`` fail with
``ModuleNotFoundError``; with the real name entries written by either side load in both. The old
private names stay registered as aliases so that entries written before still load here.

:func:`cold_signatures` tells, without compiling, which of their kernels are not in numba's cache.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

#: submodule of pymatting -> the function sempix uses
FUNCTIONS = {
    "laplacian.cf_laplacian": "cf_laplacian",
    "foreground.estimate_foreground_ml": "estimate_foreground_ml",
}
_lock = threading.Lock()


def _path(submodule: str) -> Path:
    spec = importlib.util.find_spec("pymatting")  # locates the package without running __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "pymatting is not installed (pip install pymatting)", name="pymatting"
        )
    return Path(next(iter(spec.submodule_search_locations)), *submodule.split(".")).with_suffix(
        ".py"
    )


def module(submodule: str) -> ModuleType:
    """Execute ``pymatting/<submodule>.py`` alone (once per process) and return it."""
    name = f"pymatting.{submodule}"
    old = _old_name(submodule)
    with _lock:
        mod = sys.modules.get(name)  # also the real module when pymatting was imported already
        if mod is None:
            spec = importlib.util.spec_from_file_location(name, _path(submodule))
            mod = importlib.util.module_from_spec(spec)
            # before executing: numba's compiler (and its cache loader) looks the module up
            sys.modules[name] = sys.modules[old] = mod
            try:
                spec.loader.exec_module(mod)  # compiles (or loads from cache) its typed kernels
            except BaseException:
                del sys.modules[name], sys.modules[old]
                raise
        sys.modules.setdefault(old, mod)
    return mod


def _old_name(submodule: str) -> str:
    return f"sempix.softseg._pymatting.{submodule.replace('.', '_')}"


def function(submodule: str):
    """The function of :data:`FUNCTIONS` for ``submodule``."""
    return getattr(module(submodule), FUNCTIONS[submodule])


def cf_laplacian(*args, **kwargs):
    """``pymatting.cf_laplacian`` (see there)."""
    return function("laplacian.cf_laplacian")(*args, **kwargs)


def estimate_foreground_ml(*args, **kwargs):
    """``pymatting.estimate_foreground_ml`` (see there)."""
    return function("foreground.estimate_foreground_ml")(*args, **kwargs)


def cold_signatures() -> list[str]:
    """``"submodule.kernel(signature)"`` of the two modules' kernels missing from numba's cache.

    The modules are not executed: their source is run with a stand-in ``numba.njit`` that builds
    lazy dispatchers (same source file, so the same cache index) and records each explicit
    signature; a signature is cached when the index holds it for the current bytecode.
    """
    import hashlib

    import numba

    cold = []
    for sub in FUNCTIONS:
        name = f"pymatting.{sub}"
        if name in sys.modules:
            continue  # executed in this process: compiled
        path = _path(sub)
        found: list[tuple[object, str]] = []
        real = numba.njit

        def probe(*args, _real=real, _found=found, **kw):
            sig = args[0] if args and isinstance(args[0], str) else None

            def deco(fn):
                d = _real(**kw)(fn)
                if sig is not None:
                    _found.append((d, sig))
                return d

            return deco(args[0]) if args and callable(args[0]) else deco

        code = compile(path.read_text(), str(path), "exec")
        with _lock:
            numba.njit = probe
            try:
                exec(code, {"__name__": name + "_probe", "__file__": str(path)})  # noqa: S102
            finally:
                numba.njit = real
        for d, sig in found:
            cache_file = getattr(getattr(d, "_cache", None), "_cache_file", None)
            index = cache_file._load_index() if cache_file is not None else {}
            h = hashlib.sha256
            code_hash = (h(d.py_func.__code__.co_code).hexdigest(), h(b"").hexdigest())
            if not any(k[0] == sig and k[2] == code_hash for k in index):
                cold.append(f"{sub}.{d.py_func.__name__}({sig})")
    return cold
