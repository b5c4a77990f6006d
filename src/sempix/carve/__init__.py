"""Semantic seam carving (content-aware resize with a combined RGB + semantic energy).

Public API::

    from sempix.carve import carve
    res = carve(image, width="80%", features=fm.features, lam=0.2)
    res.image, res.also, res.energy, res.seams_vis(image)
    opts = CarveOptions(lam=0.3, order="optimal")   # validated settings, built by the fronts
    res = carve(image, width="80%", features=fm, options=opts)

See :func:`sempix.carve.core.carve` and docs/carve.md.
"""

from sempix.carve.core import (
    ENERGIES,
    FEATURE_DIM,
    INSERT_STEP,
    MAX_ENLARGE,
    ORDERS,
    PROTECT_ENERGY,
    SEMANTIC_ENERGIES,
    CarveOptions,
    CarveResult,
    carve,
    parse_size,
    reduce_features,
)

__all__ = [
    "ENERGIES",
    "FEATURE_DIM",
    "INSERT_STEP",
    "MAX_ENLARGE",
    "ORDERS",
    "PROTECT_ENERGY",
    "SEMANTIC_ENERGIES",
    "CarveOptions",
    "CarveResult",
    "carve",
    "parse_size",
    "reduce_features",
]
