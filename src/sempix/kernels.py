"""Registry of sempix's numba kernels, their warm-up, and cold-cache detection.

Every ``@njit`` function of the package is listed in :data:`KERNELS` (a test walks the package and
fails when one is missing), with the concrete argument types the tools call it with and the
*groups* it belongs to. :func:`warm_up` compiles (or loads from numba's on-disk cache) every
signature of the groups a tool needs, so that the first real command does not sit silently on
"0 %" while numba compiles; :func:`cold_kernels` tells whether a command would still compile
(the CLI then prints "compiling kernels, once: ~N s").

Signatures are argument-type strings in numba's notation (``float32[:, :, ::1]`` is a C-contiguous
3-D float32 array, ``int64`` a Python int, ``float64`` a Python float, ``boolean`` a bool). They are
parsed into the same type tuples that a call from Python dispatches on, so a warmed signature is a
cache hit at the first real call. Kernels with no signature (``()``) are helpers compiled into their
callers (``inline="always"`` or only called from other kernels).

``cost_s`` is the measured compile CPU time of the kernel's signatures (callees included) on the
2-core development machine (``time.process_time`` around numba's compile events, loaded machine),
used only for the "~N s" estimate.

Importing this module imports neither numba nor the kernel modules.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sempix.progress import ProgressFn, report

# --------------------------------------------------------------------------- signature shorthands
_F1, _F2, _F3 = "float32[::1]", "float32[:, ::1]", "float32[:, :, ::1]"
_D1, _D2 = "float64[::1]", "float64[:, ::1]"
_I1, _I2, _I3 = "int32[::1]", "int32[:, ::1]", "int32[:, :, ::1]"
_L1, _L2, _L3 = "int64[::1]", "int64[:, ::1]", "int64[:, :, ::1]"
_B2 = "boolean[:, ::1]"
_U1, _U2 = "uint8[::1]", "uint8[:, ::1]"
_W2 = "uint32[:, ::1]"


def _sig(*types: str) -> str:
    return "(" + ", ".join(types) + ",)"


@dataclass(frozen=True)
class Kernel:
    """One numba kernel: where it lives, what it is compiled for, which tools need it."""

    module: str
    name: str
    groups: tuple[str, ...]
    signatures: tuple[str, ...] = ()
    cost_s: float = 0.0

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def dispatcher(self):
        """The numba dispatcher (imports the kernel's module)."""
        return getattr(importlib.import_module(self.module), self.name)


# --------------------------------------------------------------------------- the registry
_CARVE = "sempix.carve._kernels"
_POST = "sempix.features.post"
_RESAMPLE = "sempix.ops.resample"
_COLOR = "sempix.color.kernels"

_TRANSFER = "sempix.palette.transfer"
_TEMPLATE = "sempix.palette._template_kernels"
_EXTRACT = "sempix.palette._extract_kernels"
_LUT = "sempix.recolor.lut"

KERNELS: tuple[Kernel, ...] = (
    # seam carving (carve, retarget's seam methods)
    Kernel(_CARVE, "_dist", ("carve",)),  # helpers compiled into init_costs_identity / carve_chunk
    Kernel(_CARVE, "_grad_energy", ("carve",)),
    Kernel(_CARVE, "_cell_costs", ("carve",)),
    Kernel(_CARVE, "init_costs", ("carve",)),
    Kernel(_CARVE, "remove_seam", ("carve",)),
    Kernel(
        _CARVE,
        "init_costs_identity",
        ("carve",),
        (_sig(_F3, _F3, _F3, "float64", "float64", "int64"),),
        cost_s=4.1,
    ),
    Kernel(
        _CARVE,
        "carve_chunk",
        ("carve",),
        (
            _sig(
                _F3,
                _F3,
                _I2,
                _F3,
                "int64",
                "int64",
                "float64",
                "float64",
                "int64",
                "boolean",
                _I2,
                "int64",
                _L2,
                _D1,
                _D1,
                "int8[:, ::1]",
                _L1,
                "boolean",
                "int64",
            ),
        ),
        cost_s=1.8,
    ),
    Kernel(
        _CARVE,
        "find_seam",
        ("carve",),
        (_sig(_F3, "int64", _D1, _D1, "int8[:, ::1]", _L1, "boolean"),),
        cost_s=1.0,
    ),
    Kernel(_CARVE, "project", ("carve",), (_sig(_F2, _F2, _F1, _F2),), cost_s=0.3),
    Kernel(_CARVE, "gather2", ("carve",), (_sig(_F2, _I2, _F2), _sig(_B2, _I2, _B2)), cost_s=0.8),
    Kernel(_CARVE, "gather3", ("carve",), (_sig(_F3, _I2, _F3), _sig(_I3, _I2, _I3)), cost_s=0.5),
    Kernel(_CARVE, "insertion_maps", ("carve",), (_sig(_I2, "int64"),), cost_s=0.3),
    # feature post-processing (every semantic tool)
    Kernel(_RESAMPLE, "bilinear_corners", ("features",)),  # inlined into the grid-gather kernels
    Kernel(_RESAMPLE, "_interp_rows", ("features",), (_sig(_F2, _L1, _L1, _F1, _F2),), cost_s=0.4),
    Kernel(_RESAMPLE, "_interp_cols", ("features",), (_sig(_F3, _L1, _L1, _F1, _F3),), cost_s=1.0),
    Kernel(
        _POST,
        "_argmax_kernel",
        ("features",),
        (_sig(_F3, _L3, _L1, _L1, _F1, _L1, _L1, _F1, _I2),),
        cost_s=1.2,
    ),
    Kernel(
        "sempix.ops.filters",
        "_guided_apply",
        ("features",),  # guided filter (softseg, --guided)
        (_sig("float32[:, :, :, ::1]", _F3, _L1, _L1, _F1, _L1, _L1, _F1, _F3),),
        cost_s=1.7,
    ),
    # colour conversions (palette, recolor, mask, softseg)
    Kernel(_COLOR, "_to_lin", ("color",)),
    Kernel(_COLOR, "_from_lin", ("color",)),
    Kernel(_COLOR, "_f", ("color",)),
    Kernel(_COLOR, "_finv", ("color",)),
    Kernel(_COLOR, "_interp", ("color",)),
    Kernel(_COLOR, "srgb_to_lab1", ("color",)),
    Kernel(_COLOR, "lab_to_lin1", ("color",)),
    Kernel(_COLOR, "_out_of_gamut", ("color",)),
    Kernel(_COLOR, "chroma_fit1", ("color",)),
    Kernel(_COLOR, "lab_to_srgb_gamut1", ("color",)),
    Kernel(_COLOR, "lab_to_srgb_clip1_t", ("color",)),
    Kernel(_COLOR, "srgb_to_lab1_t", ("color",)),
    Kernel(_COLOR, "lab_to_srgb_gamut1_t", ("color",)),
    Kernel(_COLOR, "_rgb2lab_flat", ("color",), (_sig(_F2, _F2, _D1),), cost_s=1.1),
    Kernel(_COLOR, "_rgb2lab_flat_s", ("color",), (_sig(_F2, _F2, _D1),), cost_s=0.7),
    Kernel(_COLOR, "_lab2rgb_flat", ("color",), (_sig(_F2, _F2, _D1),), cost_s=2.3),
    Kernel(_COLOR, "_lab2rgb_flat_s", ("color",), (_sig(_F2, _F2, _D1),), cost_s=1.9),
    Kernel(_COLOR, "_lab2rgb_clip_flat", ("color",), (_sig(_F2, _F2, _D1),), cost_s=1.5),
    Kernel(_COLOR, "_lab2rgb_clip_flat_s", ("color",), (_sig(_F2, _F2, _D1),), cost_s=1.0),
    Kernel(_COLOR, "_hsv_flat", ("color",), (_sig(_F2, _F2),), cost_s=0.5),
    Kernel(_COLOR, "_hsv_flat_s", ("color",), (_sig(_F2, _F2),), cost_s=0.2),
    Kernel(_COLOR, "_unique_rows", ("color",), (_sig(_W2, "int64", _L1, _L1),), cost_s=0.3),
    # palette transfer (harmonize, recolor)
    Kernel(_TRANSFER, "_idw_pixel", ("transfer",)),
    # palette extraction's ab histogram
    Kernel(_EXTRACT, "_bin_sums", ("color",), (_sig(_L1, _L1, _D1, _F2, _D2),), cost_s=0.2),
    # harmony metrics (palette, harmonize)
    Kernel(
        _TEMPLATE,
        "_hue_histogram",
        ("color",),
        (_sig(_L1, _F1, _D1, "float64", "int64", _D1),),
        cost_s=0.2,
    ),
    Kernel(
        _TEMPLATE, "_template_distance", ("color",), (_sig(_F1, _D1, "float64", _F1, _F1, _F1),),
        cost_s=0.2,
    ),
    # harmonize's template fit (issue 19)
    Kernel(
        _TEMPLATE,
        "_compress_hues",
        ("transfer",),
        (_sig(_F1, _F1, _D1, _D1, "float64", _F1, _F1),),
        cost_s=0.5,
    ),
    Kernel(
        _TRANSFER,
        "_idw_rows_par",
        ("transfer",),
        (_sig(_F3, _D2, _D2, "float64", _D1, _F3, _D1, _D1),),
        cost_s=1.4,
    ),
    Kernel(
        _TRANSFER,
        "_idw_rows_ser",
        ("transfer",),
        (_sig(_F3, _D2, _D2, "float64", _D1, _F3, _D1, _D1),),
        cost_s=0.6,
    ),
    # recolor's LUT and colour-name guard
    Kernel(_LUT, "_name_of", ("recolor",)),
    Kernel(_LUT, "_cell", ("recolor",)),
    Kernel(_LUT, "_same_cell", ("recolor",)),
    Kernel(_LUT, "_name_at", ("recolor",)),
    Kernel(_LUT, "_last_same", ("recolor",)),
    Kernel(_LUT, "_guard_scale", ("recolor",)),
    Kernel(
        _LUT, "_apply_lut", ("recolor",), (_sig(_F3, "float32[:, :, :, ::1]", _F3),), cost_s=0.9
    ),
    Kernel(
        _LUT,
        "_guard_names",
        ("recolor",),
        (
            _sig(
                _F3, _F3, "Array(int8, 1, 'C', readonly=True)", "float32", "int64", "int64", "int64"
            ),
        ),
        cost_s=3.6,
    ),
    # retarget (deep seams on importance maps, receptive-field masks)
    Kernel(
        "sempix.retarget.seams",
        "_carve_mask_nb",
        ("retarget",),
        (_sig(_D2, "int64", "float64", "int64"),),
        cost_s=1.0,
    ),
    Kernel(
        "sempix.retarget.deep",
        "_rf_mask_nb",
        ("retarget",),
        (_sig(_B2, *["int64"] * 8),),
        cost_s=0.3,
    ),
    # range masks: minimax (connected) distance from a click
    Kernel(
        "sempix.distance.geodesic",
        "_minimax_kernel",
        ("mask",),
        (_sig(_F2, "int64", "int64"),),
        cost_s=0.5,
    ),
    # soft segmentation (plus pymatting's two modules, see EXTERNAL)
    Kernel(
        "sempix.softseg.affinity",
        "_centroid_pixels",
        ("softseg",),
        (_sig("int64[:, ::1]", "int64", _D1, _D1),),
        cost_s=0.3,
    ),
    # 16-bit PNG reading
    Kernel(
        "sempix._png_kernels",
        "unfilter",
        ("png",),
        ("(Array(uint8, 1, 'C', readonly=True), int64, int64, int64,)",),
        cost_s=0.5,
    ),
)


#: third-party numba kernels compiled at import of a module: group -> (loader module, its
#: function listing cold signatures, its function executing one submodule, {submodule: cost_s})
EXTERNAL: dict[str, tuple[str, str, str, dict[str, float]]] = {
    "softseg": (
        "sempix.softseg._pymatting",
        "cold_signatures",
        "module",
        {"laplacian.cf_laplacian": 1.4, "foreground.estimate_foreground_ml": 3.6},
    ),
}

#: kernel groups used by each CLI command (``features`` is dropped with ``--features none``)
COMMAND_GROUPS: dict[str, tuple[str, ...]] = {
    "carve": ("carve", "features"),
    "features": ("features",),
    "mask": ("features", "mask"),
    "softseg": ("features", "softseg"),
    "palette": ("color",),
    "harmonize": ("color", "transfer"),
    "recolor": ("features", "color", "transfer", "recolor"),
    "retarget": ("carve", "features", "retarget", "color"),
    "serve": ("features", "mask", "color", "transfer", "recolor"),
}
#: every group ("png": 16-bit PNG reading: warmed by ``sempix warmup``, not announced per command)
GROUPS = tuple(sorted({g for gs in COMMAND_GROUPS.values() for g in gs} | {"png"}))


def groups_for(tools: Iterable[str] | None) -> tuple[str, ...]:
    """Kernel groups of command names and/or group names (None or empty = all groups)."""
    tools = list(tools or [])
    if not tools:
        return GROUPS
    out: list[str] = []
    for t in tools:
        t = t.lower()
        if t in COMMAND_GROUPS:
            out.extend(COMMAND_GROUPS[t])
        elif t in GROUPS:
            out.append(t)
        else:
            from sempix.errors import InputError

            known = ", ".join(sorted(set(COMMAND_GROUPS) | set(GROUPS)))
            raise InputError(f"unknown tool {t!r}; choose from {known}")
    return tuple(dict.fromkeys(out))


def kernels_for(groups: Iterable[str]) -> list[Kernel]:
    """Registered kernels (with signatures) belonging to any of ``groups``."""
    gs = set(groups)
    return [k for k in KERNELS if k.signatures and gs.intersection(k.groups)]


def parse_signature(sig: str) -> tuple:
    """Signature string -> the tuple of numba types a call from Python dispatches on."""
    from numba.core import sigutils

    args, _ret = sigutils.normalize_signature(sig)
    return tuple(args)


def _code_hash(disp) -> tuple[str, str]:
    """The (bytecode, closure) hashes numba keys its on-disk cache with (closures: none here)."""
    h = hashlib.sha256
    return h(disp.py_func.__code__.co_code).hexdigest(), h(b"").hexdigest()


def is_cached(kernel: Kernel, sig: str) -> bool:
    """Whether ``kernel`` is compiled in this process or in numba's on-disk cache for ``sig``."""
    disp = kernel.dispatcher()
    args = parse_signature(sig)
    if args in disp.overloads:
        return True
    cache_file = getattr(getattr(disp, "_cache", None), "_cache_file", None)
    if cache_file is None:  # caching disabled: every process compiles
        return False
    try:
        index = cache_file._load_index()  # {} when missing or stale (source changed)
    except Exception:  # noqa: BLE001 - unreadable index: numba will recompile
        return False
    code = _code_hash(disp)
    return any(key[0] == args and key[2] == code for key in index)


def cold_kernels(groups: Iterable[str]) -> list[tuple[Kernel, str]]:
    """``(kernel, signature)`` pairs of ``groups`` that are not compiled yet (would compile).

    Third-party kernels (:data:`EXTERNAL`) appear as pseudo-kernels named after their module.
    """
    groups = tuple(groups)
    out = []
    for k in kernels_for(groups):
        for sig in k.signatures:
            if not is_cached(k, sig):
                out.append((k, sig))
    for g in groups:
        if g in EXTERNAL:
            mod, cold_fn, _, costs = EXTERNAL[g]
            try:
                cold = getattr(importlib.import_module(mod), cold_fn)()
            except ModuleNotFoundError:
                continue
            for entry in cold:
                sub = next((s for s in costs if entry.startswith(s + ".")), "")
                n = sum(1 for e in cold if e.startswith(sub + "."))
                out.append(
                    (
                        Kernel(mod, sub, (g,), (entry,), cost_s=costs.get(sub, 5.0) / max(1, n)),
                        entry,
                    )
                )
    return out


def estimate_seconds(cold: Sequence[tuple[Kernel, str]]) -> float:
    """Rough compile time of ``cold`` pairs (the measured ``cost_s`` spread over signatures)."""
    return sum(k.cost_s / max(1, len(k.signatures)) for k, _ in cold)


def warm_up(
    tools: Iterable[str] | None = None,
    *,
    groups: Iterable[str] | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """Compile (or load from numba's cache) every registered kernel signature the tools need.

    Parameters
    ----------
    tools : command names (``carve``, ``softseg``...) or kernel groups; None = all.
    groups : kernel groups exactly (instead of ``tools``; ``"carve"`` is then only the carve group).
    progress : callable(fraction, message), optional

    Returns
    -------
    dict with ``compiled`` and ``loaded`` (lists of ``"module.kernel(signature)"``), ``external``
    (third-party modules executed, :data:`EXTERNAL`),
    ``seconds`` (per kernel qualname) and ``total_s``.
    """
    import time

    ks = kernels_for(tuple(groups) if groups is not None else groups_for(tools))
    todo = [(k, s) for k in ks for s in k.signatures]
    weights = [max(0.05, k.cost_s / len(k.signatures)) for k, s in todo]
    total_w = sum(weights) or 1.0
    done_w = 0.0
    compiled, loaded, external, seconds = [], [], [], {}
    t_all = time.perf_counter()
    for (k, sig), w in zip(todo, weights):
        report(progress, done_w / total_w, k.name)
        disp = k.dispatcher()
        args = parse_signature(sig)
        before = sum(disp._cache_misses.values())
        t = time.perf_counter()
        disp.compile(args)
        dt = time.perf_counter() - t
        seconds[k.qualname] = seconds.get(k.qualname, 0.0) + dt
        name = f"{k.qualname}{sig}"
        (compiled if sum(disp._cache_misses.values()) > before else loaded).append(name)
        done_w += w
    for g in tuple(groups) if groups is not None else groups_for(tools):
        if g in EXTERNAL:
            mod, _, load_fn, costs = EXTERNAL[g]
            for sub in costs:
                report(progress, done_w / total_w, sub)
                t = time.perf_counter()
                try:
                    getattr(importlib.import_module(mod), load_fn)(sub)
                except ModuleNotFoundError:
                    continue
                seconds[f"{mod}:{sub}"] = time.perf_counter() - t
                external.append(f"{mod}:{sub}")
    report(progress, 1.0, "kernels ready")
    return {
        "compiled": compiled,
        "loaded": loaded,
        "external": external,
        "seconds": seconds,
        "total_s": time.perf_counter() - t_all,
    }


def all_dispatchers() -> dict[str, object]:
    """Every numba dispatcher defined in the package, by ``module.name`` (imports every module).

    Used by the registry test; modules that fail to import (optional dependencies) are skipped.
    """
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    import sempix

    found: dict[str, object] = {}
    for info in pkgutil.walk_packages(sempix.__path__, "sempix."):
        if ".web" in info.name or info.name.endswith("__main__"):
            continue
        try:
            mod = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001, S112 - optional dependency missing
            continue
        for obj in vars(mod).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__.startswith("sempix"):
                found[f"{obj.py_func.__module__}.{obj.py_func.__name__}"] = obj
    return found
