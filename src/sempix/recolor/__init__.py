"""Multi-image colour consistency (group-palette recolouring with white balance, saliency, semantics
and colour naming). See :mod:`sempix.recolor.core` for the pipeline and docs/recolor.md for usage.

Public API::

    recolor_collection(images, **options) -> RecolorResult      # .images, .solution
    solve_collection(images, *, group_size=None, wb="auto", saliency="both", semantic=False,
                     names=0.8, harmonize=False, palette=None, features="ade20k", ...,
                     saliency_backend=None, saliency_model=None) -> CollectionSolution
    render(solution, images, group_lab=None) -> list of images
    analyse_image(image, *, wb="auto", saliency=True, ...) -> ImageAnalysis   # map step
    solve_analyses(analyses, *, group_size=None, ...) -> CollectionSolution   # reduce step
    solve_group_palette(palettes, weights, k=None, ...) -> GroupSolution
    white_balance(image, mode="auto") -> WhiteBalance
    compute_saliency(image, *, labels=None, backend=None, model=None) -> SaliencyMap

Saliency backends: ``"rbd"`` (built-in, default), ``"u2netp"`` (learned U^2-Net-p, model store entry
``u2netp``, onnxruntime), ``"auto"`` (u2netp when present locally, else rbd).
``saliency_backend=None``
uses the default set with :func:`sempix.recolor.saliency.use_backend`.
"""

from __future__ import annotations

from sempix.recolor.core import (
    D_NAME,
    CollectionSolution,
    ImageAnalysis,
    RecolorResult,
    analyse_image,
    parse_palette,
    recolor_collection,
    render,
    solve_analyses,
    solve_collection,
)
from sempix.recolor.saliency import SaliencyMap, compute_saliency
from sempix.recolor.solver import GroupSolution, default_group_size, solve_group_palette
from sempix.recolor.whitebalance import D_WB, WhiteBalance, white_balance

__all__ = [
    "D_NAME",
    "D_WB",
    "CollectionSolution",
    "GroupSolution",
    "ImageAnalysis",
    "RecolorResult",
    "SaliencyMap",
    "WhiteBalance",
    "analyse_image",
    "compute_saliency",
    "default_group_size",
    "parse_palette",
    "recolor_collection",
    "render",
    "solve_analyses",
    "solve_collection",
    "solve_group_palette",
    "white_balance",
]
