"""Model file lookup and download. (Minimal local lookup; download path to be completed.)"""

from __future__ import annotations

import os
from pathlib import Path

from sempix.errors import ModelUnavailableError
from sempix.models.registry import ModelSpec, get_spec


def cache_dir() -> Path:
    """User cache directory for models (``$SEMPIX_CACHE_DIR/models`` or platform default)."""
    base = os.environ.get("SEMPIX_CACHE_DIR")
    if base:
        return Path(base) / "models"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sempix")) / "models"


def _candidates(spec: ModelSpec) -> list[Path]:
    names = (spec.filename, *spec.aliases)
    dirs: list[Path] = []
    env = os.environ.get("SEMPIX_MODEL_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir())
    return [d / n for d in dirs for n in names]


def find_local(name: str) -> Path | None:
    """Return a local path for model ``name`` without downloading, or None."""
    spec = get_spec(name)
    for p in _candidates(spec):
        if p.is_file():
            return p
    return None


def is_available(name: str) -> bool:
    """True if the model can be used without a download."""
    return find_local(name) is not None


def get_model_path(name: str, explicit: str | os.PathLike | None = None, *, download: bool = True,
                   progress: bool = True) -> Path:
    """Resolve model ``name`` to a local file path (see module docstring for the order)."""
    spec = get_spec(name)
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise ModelUnavailableError(f"model file {p} does not exist")
        return p
    local = find_local(name)
    if local is not None:
        return local
    raise ModelUnavailableError(
        f"model {name!r} ({spec.filename}) not found: put it in $SEMPIX_MODEL_DIR or {cache_dir()}, "
        f"or run `sempix models fetch {name}`"
    )
