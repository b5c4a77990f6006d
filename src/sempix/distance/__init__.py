"""Energies and pixel distances: the shared core of sempix's tools.

Energies (seam carving): ``energy_rgb`` / ``energy_semantic`` / ``energy_combined``; with
``normalize=True`` every map is divided by its
mean, so ``lam`` is the semantic share of the total energy.

Distances (range masks): ``distance_luminance`` (``|dL*|/100``), ``distance_lab``
(``DeltaE76/100``),
``distance_semantic`` (L2 between per-pixel L2-normalised features, divided by 2, in [0, 1]) and
``distance_map`` = ``min over points of lam * semantic + (1 - lam) * colour``;
``minimax_distance`` = minimax path distance from a click (connected masks).

See :mod:`sempix.distance.energy` and :mod:`sempix.distance.distances` for the exact definitions.
"""

from sempix._runtime import lazy_exports
from sempix.color import lightness as luminance
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
    "energy_combined",
    "energy_rgb",
    "energy_semantic",
    "gradient_l1",
    "luminance",
    "minimax_distance",
    "normalize_energy",
    "parse_points",
    "unit_features",
]

# numba kernel: imported on first use
__getattr__ = lazy_exports(__name__, {"minimax_distance": "sempix.distance.geodesic"})
