"""Process-wide runtime helpers: bounded locked caches, warn-once logging, the numba guard.

Everything that keeps state between calls in sempix goes through this module, so the state is
bounded (LRU caches with a size limit), thread-safe (one lock per cache) and easy to reset in tests
(:func:`clear_caches`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")

_CACHES: list[BoundedCache] = []


class BoundedCache(Generic[V]):
    """A thread-safe LRU cache holding at most ``maxsize`` values.

    ``get_or_create(key, factory)`` runs ``factory()`` at most once per key while the key is
    cached (under the cache's lock, so two threads never build the same network twice).
    """

    def __init__(self, maxsize: int = 4, name: str = "") -> None:
        self.maxsize = max(1, int(maxsize))
        self.name = name
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.RLock()
        _CACHES.append(self)

    def get(self, key: Hashable, default: Any = None) -> V | Any:
        with self._lock:
            if key not in self._data:
                return default
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_create(self, key: Hashable, factory: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            value = factory()
            self.put(key, value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


def clear_caches() -> None:
    """Empty every :class:`BoundedCache` of the process (tests; freeing memory)."""
    for c in list(_CACHES):
        c.clear()


_warned: set[Hashable] = set()
_warn_lock = threading.Lock()


def warn_once(message: str, *args: Any, key: Hashable = None, logger: str = "sempix") -> bool:
    """Log ``message % args`` as a warning the first time ``key`` (default: the message) is seen
    in this process.

    Returns True when the warning was emitted. Library code warns through logging (the CLI shows
    the records as one line each); it never prints.
    """
    key = (logger, message) if key is None else (logger, key)
    with _warn_lock:
        if key in _warned:
            return False
        _warned.add(key)
    logging.getLogger(logger).warning(message, *args)
    return True


def reset_warnings() -> None:
    """Forget which warnings were emitted (tests)."""
    with _warn_lock:
        _warned.clear()


_par_lock = threading.Lock()
_par_safe: bool | None = None


def run_parallel(kernel: Callable[..., Any], *args: Any) -> Any:
    """Call a ``parallel=True`` numba kernel safely from any thread.

    numba's ``workqueue`` threading layer (the fallback when neither TBB nor OpenMP is available)
    is not thread-safe: two threads entering parallel kernels at once abort the process. The first
    call runs under a lock and reads the threading layer; with a safe layer (``tbb``, ``omp``) later
    calls run without the lock, with ``workqueue`` every call is serialised. The web server runs
    tools from several worker threads, so every parallel kernel of sempix is called through here.
    """
    global _par_safe
    if _par_safe:
        return kernel(*args)
    with _par_lock:
        out = kernel(*args)
        if _par_safe is None:
            import numba

            try:
                _par_safe = numba.threading_layer() != "workqueue"
            except ValueError:  # pragma: no cover - no parallel kernel ran yet
                _par_safe = None
        return out


_torch_threads_done = False


def init_torch_threads() -> None:
    """Use all cores for torch's intra-op pool, once per process (not on every call).

    Leaves the setting alone when the application already changed it from torch's default.
    """
    global _torch_threads_done
    if _torch_threads_done:
        return
    _torch_threads_done = True
    import os

    import torch

    n = os.cpu_count() or 1
    if torch.get_num_threads() < n:
        torch.set_num_threads(n)


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``table[name]`` on first access.

    Package faces use it to re-export heavy modules (torch, numba) without importing them::

        __getattr__ = lazy_exports(__name__, {"retarget": "sempix.retarget.pipeline"})
    """
    import importlib
    import sys

    def __getattr__(name: str) -> Any:
        mod = table.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(mod), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
