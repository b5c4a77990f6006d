"""Colour naming, palettes, palette recolouring and colour harmonization.

Public API (stable; ``sempix.recolor`` builds on the first four)::

    NAMES                                   # the 11 basic colour names, in model column order
    name_probabilities(rgb (..., 3)) -> (..., 11)
    extract_palette(image, *, k=None, mask=None) -> Palette   # .rgb (k,3) .lab (k,3) .weights (k,)
    recolor_palette(image, src_lab (k,3), tgt_lab (k,3)) -> image   # IDW in ab, L unchanged
    harmonize_colors(rgb (k,3)) -> (k,3)    # nearest saturated prototype of a plausible name (neutrals kept)

    color_names, image_name_shares, name_map_picture          # naming helpers
    harmonize_image(image, method="names"|"cohen-or") -> HarmonizeResult
    harmony_metrics(image, template=None) -> HarmonyScore     # Cohen-Or templates, F / PIT / MITS
    srgb_to_lab, lab_to_srgb, srgb_to_hsv                     # colour conversions

Heavy modules are imported lazily so ``import sempix.palette`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sempix.palette.naming import NAMES

if TYPE_CHECKING:  # pragma: no cover
    from sempix.palette.color import lab_to_srgb, srgb_to_hsv, srgb_to_lab
    from sempix.palette.extract import Palette, extract_palette
    from sempix.palette.harmonize import HarmonizeResult, harmonize_image
    from sempix.palette.harmony import TEMPLATES, HarmonyScore, cohen_or_harmonize, harmony_metrics
    from sempix.palette.naming import (
        color_names,
        image_name_shares,
        name_map_picture,
        name_probabilities,
    )
    from sempix.palette.prototypes import get_prototypes, harmonize_colors, match_prototypes
    from sempix.palette.transfer import recolor_palette
    from sempix.palette.viz import swatch_picture

_LAZY = {
    "name_probabilities": "sempix.palette.naming",
    "color_names": "sempix.palette.naming",
    "image_name_shares": "sempix.palette.naming",
    "name_map_picture": "sempix.palette.naming",
    "Palette": "sempix.palette.extract",
    "extract_palette": "sempix.palette.extract",
    "recolor_palette": "sempix.palette.transfer",
    "harmonize_colors": "sempix.palette.prototypes",
    "match_prototypes": "sempix.palette.prototypes",
    "get_prototypes": "sempix.palette.prototypes",
    "harmonize_image": "sempix.palette.harmonize",
    "HarmonizeResult": "sempix.palette.harmonize",
    "harmony_metrics": "sempix.palette.harmony",
    "HarmonyScore": "sempix.palette.harmony",
    "cohen_or_harmonize": "sempix.palette.harmony",
    "TEMPLATES": "sempix.palette.harmony",
    "srgb_to_lab": "sempix.palette.color",
    "lab_to_srgb": "sempix.palette.color",
    "srgb_to_hsv": "sempix.palette.color",
    "swatch_picture": "sempix.palette.viz",
}

__all__ = [
    "NAMES",
    "TEMPLATES",
    "HarmonizeResult",
    "HarmonyScore",
    "Palette",
    "cohen_or_harmonize",
    "color_names",
    "extract_palette",
    "get_prototypes",
    "harmonize_colors",
    "harmonize_image",
    "harmony_metrics",
    "image_name_shares",
    "lab_to_srgb",
    "match_prototypes",
    "name_map_picture",
    "name_probabilities",
    "recolor_palette",
    "srgb_to_hsv",
    "srgb_to_lab",
    "swatch_picture",
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sempix.palette' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
