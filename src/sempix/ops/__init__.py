"""Shared array operations: validation, resampling, filters, dimensionality reduction.

Public API::

    as_rgb(image) / as_mask(mask, shape) / as_features(f, shape)   # validation (InputError)
    parse_size("80%" | "640" | 640, current, "width") -> pixels
    resize(arr, (H, W), filter="bilinear"|"box"|"nearest"|"lanczos") -> float32
    work_shape((H, W), work_pixels); sample_coords / upsample      # grid resampling (numba)
    box_filter(a, r) / guided_filter(guide, src, radius, eps)      # clipped-window borders
    random_projection / project_random / pca_basis / pca_reduce / pca_rgb

Validation is imported eagerly (numpy only); the numba-backed modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sempix._runtime import lazy_exports
from sempix.ops.validate import as_features, as_mask, as_rgb, parse_size, same_size

if TYPE_CHECKING:  # pragma: no cover
    from sempix.ops.filters import box_filter, guided_filter
    from sempix.ops.pca import pca_basis, pca_reduce, pca_rgb, project_random, random_projection
    from sempix.ops.resample import FILTERS, resize, sample_coords, upsample, work_shape

__all__ = [
    "FILTERS", "as_features", "as_mask", "as_rgb", "box_filter", "guided_filter", "parse_size",
    "pca_basis", "pca_reduce", "pca_rgb", "project_random", "random_projection", "resize",
    "same_size", "sample_coords", "upsample", "work_shape",
]

_LAZY = {
    **dict.fromkeys(("box_filter", "guided_filter"), "sempix.ops.filters"),
    **dict.fromkeys(
        ("pca_basis", "pca_reduce", "pca_rgb", "project_random", "random_projection"),
        "sempix.ops.pca",
    ),
    **dict.fromkeys(("FILTERS", "resize", "sample_coords", "upsample", "work_shape"),
                    "sempix.ops.resample"),
}

__getattr__ = lazy_exports(__name__, _LAZY)
