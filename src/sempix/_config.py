"""Process configuration read from the environment: one place for every ``SEMPIX_*`` variable.

Nothing here is cached: each call reads the environment, so tests (and long-running servers) see
changes made with ``os.environ`` / ``monkeypatch.setenv``.

Variables
---------
``SEMPIX_CACHE_DIR``   cache root (``~`` expanded); default: the platform user cache dir ``sempix``
``SEMPIX_MODEL_DIR``   folders searched for model files (``os.pathsep``-separated)
``SEMPIX_DATA_DIR``    evaluation datasets (benchmarks and tests only)
``SEMPIX_MAX_PIXELS``  largest image accepted by :func:`sempix.image.read_image` (<= 0: no limit)
"""

from __future__ import annotations

import os
from pathlib import Path

from sempix.errors import InputError

ENV_CACHE_DIR = "SEMPIX_CACHE_DIR"
ENV_MODEL_DIR = "SEMPIX_MODEL_DIR"
ENV_DATA_DIR = "SEMPIX_DATA_DIR"
MAX_PIXELS_ENV = "SEMPIX_MAX_PIXELS"
#: default pixel limit of read_image (100 megapixels)
DEFAULT_MAX_PIXELS = 100_000_000


def cache_root() -> Path:
    """The cache root: ``$SEMPIX_CACHE_DIR`` (``~`` expanded), else the platform user cache dir."""
    base = os.environ.get(ENV_CACHE_DIR, "").strip()
    if base:
        return Path(base).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sempix"))


def cache_dir(name: str) -> Path:
    """A sub-folder of :func:`cache_root` (``models``,
    ``features``, ``palette``...); not created."""
    return cache_root() / name


def env_paths(name: str) -> list[Path]:
    """The ``os.pathsep``-separated folders of environment variable ``name`` (``~`` expanded)."""
    return [Path(p).expanduser() for p in os.environ.get(name, "").split(os.pathsep) if p.strip()]


def max_pixels(value: int | None = None) -> int | None:
    """The pixel limit in force: ``value``, else ``$SEMPIX_MAX_PIXELS``, else 100 MP.

    Returns None for "no limit" (a value <= 0). Raises InputError for a non-numeric variable.
    """
    if value is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if env:
            try:
                value = int(float(env.replace("_", "")))
            except ValueError:
                raise InputError(
                    f"{MAX_PIXELS_ENV}={env!r} is not a number (use e.g. "
                    f"{MAX_PIXELS_ENV}=200000000)"
                ) from None
        else:
            value = DEFAULT_MAX_PIXELS
    value = int(value)
    return None if value <= 0 else value
