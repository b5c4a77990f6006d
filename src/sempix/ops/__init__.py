"""Shared array operations: validation, resampling, filters, dimensionality reduction.

Public API::

    as_rgb(image) / as_mask(mask, shape) / as_features(f, shape)   # validation (InputError)
    resize(arr, (H, W), filter="bilinear"|"box"|"nearest"|"lanczos") -> float32
    work_shape((H, W), work_pixels); sample_coords / upsample      # grid resampling (numba)
    box_filter(a, r) / guided_filter(guide, src, radius, eps)      # clipped-window borders
    random_projection / project_random / pca_basis / pca_reduce / pca_rgb
"""

from sempix.ops.filters import box_filter, guided_filter
from sempix.ops.pca import pca_basis, pca_reduce, pca_rgb, project_random, random_projection
from sempix.ops.resize import FILTERS, resize, sample_coords, upsample, work_shape
from sempix.ops.validate import as_features, as_mask, as_rgb, parse_size, same_size

__all__ = [
    "FILTERS",
    "as_features",
    "as_mask",
    "as_rgb",
    "box_filter",
    "guided_filter",
    "pca_basis",
    "parse_size",
    "pca_reduce",
    "pca_rgb",
    "project_random",
    "random_projection",
    "resize",
    "same_size",
    "sample_coords",
    "upsample",
    "work_shape",
]
