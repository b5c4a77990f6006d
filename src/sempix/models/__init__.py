"""Model store: registry, lookup, download with checksum, cache.

Resolution order for :func:`get_model_path`: explicit path -> ``$SEMPIX_MODEL_DIR`` -> user cache
directory (``$SEMPIX_CACHE_DIR/models`` or the platform cache dir) -> download into the cache
(checksum verified; partial downloads never left under the final name) unless offline
(``SEMPIX_OFFLINE=1``) -> :class:`sempix.errors.ModelUnavailableError` saying where to put the file.
"""

from sempix.models.registry import REGISTRY, ModelSpec, get_spec
from sempix.models.store import (
    cache_dir,
    download,
    find_local,
    get_model_path,
    is_available,
    is_offline,
    model_dirs,
    model_status,
    model_urls,
    sha256_file,
    verify_file,
)

__all__ = [
    "REGISTRY",
    "ModelSpec",
    "cache_dir",
    "download",
    "find_local",
    "get_model_path",
    "get_spec",
    "is_available",
    "is_offline",
    "model_dirs",
    "model_status",
    "model_urls",
    "sha256_file",
    "verify_file",
]
