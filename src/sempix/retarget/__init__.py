"""Image retargeting: Deep Network Resizing (Arar et al.) and the operators it is compared with.

Public API
----------
``retarget(image, width=None, height=None, *, method="dnr", ...) -> RetargetResult``
``semantic_score(original, result, *, kind="vgg"|"ade20k", ...) -> float``
``METHODS``: ``dnr`` (deep seam carving + grid warping of VGG features, then reconstruction by
optimisation and grid-sampler refinement), ``multiop`` (the same deep seams and warp applied
directly to
the pixels, no reconstruction), ``seam`` (RGB seam carving, :func:`sempix.carve.carve`),
``semantic-seam``
(seam carving with semantic features, lam = 0.2), ``scale`` (linear scaling), ``warp`` (the grid
warp
alone, importance from VGG).

Widths are changed first, then heights (a height change runs the width pipeline on the transposed
image). Enlargements use the warp only (no seam insertion in feature space).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sempix._runtime import lazy_exports
from sempix.ops.validate import parse_size
from sempix.retarget.constants import INITS, LAMBDA_NORMS, METHODS, PROTECT_CLASSES

if TYPE_CHECKING:  # pragma: no cover
    from sempix.retarget.pipeline import (
        RetargetResult,
        default_percentile,
        get_vgg,
        retarget,
        scale_image,
    )
    from sempix.retarget.score import semantic_score
    from sempix.retarget.vgg import PAPER_LAYERS

__all__ = [
    "INITS",
    "LAMBDA_NORMS",
    "METHODS",
    "PAPER_LAYERS",
    "PROTECT_CLASSES",
    "RetargetResult",
    "default_percentile",
    "get_vgg",
    "parse_size",
    "retarget",
    "scale_image",
    "semantic_score",
]

_LAZY = {
    "RetargetResult": "sempix.retarget.pipeline",
    "default_percentile": "sempix.retarget.pipeline",
    "get_vgg": "sempix.retarget.pipeline",
    "retarget": "sempix.retarget.pipeline",
    "scale_image": "sempix.retarget.pipeline",
    "semantic_score": "sempix.retarget.score",
    "PAPER_LAYERS": "sempix.retarget.vgg",
}

__getattr__ = lazy_exports(__name__, _LAZY)
