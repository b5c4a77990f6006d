"""Energies and pixel distances: the shared core of sempix's tools.

Energies (seam carving): ``energy_rgb`` / ``energy_semantic`` / ``energy_combined`` (aliases
``e_rgb`` / ``e_semantic`` / ``e_combined``); with ``normalize=True`` every map is divided by its
mean, so ``lam`` is the semantic share of the total energy.

Distances (range masks): ``distance_luminance`` (``|dL*|/100``), ``distance_lab`` (``DeltaE76/100``),
``distance_semantic`` (L2 between per-pixel L2-normalised features, divided by 2, in [0, 1]) and
``distance_map`` = ``min over points of lam * semantic + (1 - lam) * colour``.

See :mod:`sempix.distance.energy` and :mod:`sempix.distance.distances` for the exact definitions.
"""

from sempix.distance.color import lab, luminance
from sempix.distance.distances import (
    distance_lab,
    distance_lab_to,
    distance_luminance,
    distance_map,
    distance_semantic,
    distance_semantic_to,
    parse_points,
    unit_features,
)
from sempix.distance.energy import (
    e_combined,
    e_rgb,
    e_semantic,
    energy_combined,
    energy_rgb,
    energy_semantic,
    gradient_l1,
    normalize_energy,
)

__all__ = [
    "distance_lab",
    "distance_lab_to",
    "distance_luminance",
    "distance_map",
    "distance_semantic",
    "distance_semantic_to",
    "e_combined",
    "e_rgb",
    "e_semantic",
    "energy_combined",
    "energy_rgb",
    "energy_semantic",
    "gradient_l1",
    "lab",
    "luminance",
    "normalize_energy",
    "parse_points",
    "unit_features",
]
