"""Semantic range masks and masked adjustments.

Public API::

    from sempix.mask import range_mask, MaskSource, mask_features, apply_adjustments

    fm = mask_features(img, backend="ade20k")            # features at working resolution
    res = range_mask(img, [(120, 40)], features=fm, lam=0.5, tau=0.25, feather=0.03, refine=True)
    out = apply_adjustments(img, res.mask, "exposure=+0.7,saturation=-0.3")
    sky = class_select(img, fm, "sky")                   # soft mask from the label map
    both = combine_masks(res.mask, sky, "subtract")      # union / intersection / subtract

See :mod:`sempix.mask.core` for the criterion and the scale of ``lam`` / ``tau``, and
:mod:`sempix.mask.adjust` for the adjustment maths (linear light).
"""

from __future__ import annotations

import numpy as np

from sempix.mask.adjust import (
    Adjustments,
    adjust_linear,
    apply_adjustments,
    linear_to_srgb,
    parse_adjustments,
    srgb_to_linear,
)
from sempix.mask.core import (
    DEFAULT_LAM,
    DEFAULT_SPACE,
    DEFAULT_TAU,
    DEFAULT_WORK_PIXELS,
    SPACES,
    MaskResult,
    MaskSource,
    check_lam_tau,
    combine,
    range_mask,
    refine_mask,
    threshold,
)
from sempix.mask.select import (
    OPS,
    class_select,
    combine_masks,
    mask_intersection,
    mask_subtract,
    mask_union,
)
from sempix.ops import guided_filter, resize, work_shape
from sempix.progress import ProgressFn

__all__ = [
    "DEFAULT_LAM",
    "DEFAULT_SPACE",
    "DEFAULT_TAU",
    "DEFAULT_WORK_PIXELS",
    "OPS",
    "SPACES",
    "Adjustments",
    "MaskResult",
    "MaskSource",
    "adjust_linear",
    "apply_adjustments",
    "check_lam_tau",
    "class_select",
    "combine",
    "combine_masks",
    "guided_filter",
    "linear_to_srgb",
    "mask_features",
    "mask_intersection",
    "mask_subtract",
    "mask_union",
    "parse_adjustments",
    "range_mask",
    "refine_mask",
    "srgb_to_linear",
    "threshold",
    "work_shape",
]


def mask_features(
    image: np.ndarray,
    backend: str = "ade20k",
    *,
    work_pixels: int | None = DEFAULT_WORK_PIXELS,
    dim: int | None = None,
    strict: bool = False,
    cache: bool = True,
    progress: ProgressFn | None = None,
    width: float | None = None,
):
    """Semantic features for range masks, computed at a working resolution.

    The image is downscaled (antialiased) to at most ``work_pixels`` pixels before
    :func:`sempix.features.compute_features` runs: the semantic network's output is ~129x129 anyway,
    so this loses nothing semantic and keeps memory at ``work_pixels * D * 4`` bytes.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    backend : ``"ade20k"`` | ``"segformer"`` | ``"lowlevel"``.
    work_pixels : pixel budget of the working resolution (None: full resolution).
    dim : optional random-projection dimension (``None`` keeps the backend's D).
    strict, cache, progress : passed to ``compute_features``.
    width : ``slimseg`` only: the slimmable network's width (passed to ``compute_features``).

    Returns
    -------
    FeatureMap with ``features`` (h, w, D), ``labels`` (h, w) or None, aligned with the downscaled
    image (same aspect ratio as ``image``).
    """
    from sempix.features import compute_features

    img = np.asarray(image, dtype=np.float32)
    h, w = work_shape(img.shape[:2], work_pixels)
    small = img if (h, w) == img.shape[:2] else np.clip(resize(img, (h, w)), 0.0, 1.0)
    kw = {"cache": cache, "strict": strict, "progress": progress}
    if dim is not None:
        kw["dim"] = int(dim)
    if width is not None:
        kw["width"] = float(width)
    return compute_features(np.ascontiguousarray(small, dtype=np.float32), backend, **kw)
