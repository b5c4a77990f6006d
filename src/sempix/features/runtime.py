"""Which runtime runs the ``ade20k`` network, and on which device.

* ``"litert"`` - the int8 TFLite file through LiteRT (CPU only);
* ``"torch"`` - the same network converted to a float32 PyTorch module
  (:mod:`sempix.features.ade20k_torch`), on ``"cpu"`` or ``"cuda"``;
* ``"auto"`` (default) - ``torch`` on CUDA when a CUDA device is present, otherwise LiteRT,
  which is the faster of the two on a CPU (measured: ``benchmarks/features.py``; about 4x at
  513x513 on the project's 2-core machine, see docs/features.md).

Callers pass ``runtime=`` / ``device=`` to :func:`sempix.features.compute_features`; when they
pass None the process default applies: :func:`use_runtime` (what the CLI's ``--runtime`` and
``--device`` options set around a command), else ``$SEMPIX_RUNTIME`` / ``$SEMPIX_DEVICE``,
else ``auto`` / the best available device. ``device`` also places the SegFormer backends.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from sempix.errors import InputError

RUNTIMES = ("auto", "litert", "torch")
DEVICES = ("cpu", "cuda")
ENV_RUNTIME = "SEMPIX_RUNTIME"
ENV_DEVICE = "SEMPIX_DEVICE"

_lock = threading.Lock()
_default: dict[str, str | None] = {"runtime": None, "device": None}

__all__ = [
    "DEVICES",
    "RUNTIMES",
    "cuda_available",
    "resolve_device",
    "resolve_runtime",
    "use_runtime",
]


#: device nodes / driver files of the GPU drivers torch.cuda uses on Linux (NVIDIA, ROCm)
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd")


def _no_gpu_driver() -> bool:
    """True when it is certain without importing torch that CUDA is unavailable: Linux with no
    NVIDIA / ROCm driver (importing torch just to ask costs 1-2 s per process, which a cache hit
    of ``sempix carve`` paid before)."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return False
    return not any(os.path.exists(p) for p in _GPU_NODES)


def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device."""
    if _no_gpu_driver():
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None or value == "":
        return None
    v = str(value).strip().lower()
    if v not in allowed:
        raise InputError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")
    return v


@contextlib.contextmanager
def use_runtime(runtime: str | None = None, device: str | None = None) -> Iterator[None]:
    """Set the process-wide default runtime/device for the duration of a ``with`` block.

    A process-wide (not thread-local) setting, so that worker threads of a command (the web
    server's jobs) see it too. None leaves that default unchanged.
    """
    r = _check(runtime, RUNTIMES, "runtime")
    d = _check(device, DEVICES, "device")
    with _lock:
        saved = dict(_default)
        if r is not None:
            _default["runtime"] = r
        if d is not None:
            _default["device"] = d
    try:
        yield
    finally:
        with _lock:
            _default.update(saved)


def resolve_device(device: str | None = None) -> str:
    """``device`` checked, or the default (``cuda`` when available, else ``cpu``).

    Raises
    ------
    InputError
        ``cuda`` requested but no CUDA device is present.
    """
    d = (
        _check(device, DEVICES, "device")
        or _default["device"]
        or _check(os.environ.get(ENV_DEVICE), DEVICES, f"device (${ENV_DEVICE})")
    )
    if d is None:
        return "cuda" if cuda_available() else "cpu"
    if d == "cuda" and not cuda_available():
        raise InputError(
            "--device cuda: no CUDA device is available to torch here; use --device cpu"
        )
    return d


def resolve_runtime(runtime: str | None = None, device: str | None = None) -> tuple[str, str]:
    """Resolve ``(runtime, device)`` for the ``ade20k`` backend.

    Returns
    -------
    ("litert", "cpu") or ("torch", "cpu" | "cuda")

    Raises
    ------
    InputError
        Unknown names, CUDA requested without a CUDA device, or ``litert`` with ``cuda``.
    """
    r = (
        _check(runtime, RUNTIMES, "runtime")
        or _default["runtime"]
        or _check(os.environ.get(ENV_RUNTIME), RUNTIMES, f"runtime (${ENV_RUNTIME})")
        or "auto"
    )
    d_req = (
        _check(device, DEVICES, "device")
        or _default["device"]
        or _check(os.environ.get(ENV_DEVICE), DEVICES, f"device (${ENV_DEVICE})")
    )
    if r == "litert":
        if d_req == "cuda":
            raise InputError(
                "the litert runtime runs on the CPU only; use --runtime torch for --device cuda"
            )
        return "litert", "cpu"
    if r == "torch":
        return "torch", resolve_device(d_req)
    # auto: torch on CUDA when present (or asked for), else LiteRT (faster on CPUs, measured)
    if d_req == "cuda" or (d_req is None and cuda_available()):
        return "torch", resolve_device("cuda")
    return "litert", "cpu"
