"""Colour naming, palettes, palette recolouring and colour harmonization.

Public API (stable; ``sempix.recolor`` builds on the first four)::

    NAMES                                   # the 11 basic colour names, in model column order
    name_probabilities(rgb (..., 3)) -> (..., 11)
    extract_palette(image, *, k=None, mask=None) -> Palette   # .rgb (k,3) .lab (k,3) .weights (k,)
    recolor_palette(image, src_lab (k,3), tgt_lab (k,3)) -> image   # IDW in ab, L unchanged
    harmonize_colors(rgb (k,3)) -> (k,3)    # nearest saturated prototype of a plausible name
    (neutrals kept)

    color_names, image_name_shares, name_map_picture          # naming helpers
    name_index(rgb) -> (...) int, name_table() -> (32768,) int8  # argmax name per pixel / LUT
    harmonize_image(image, method="names"|"cohen-or") -> HarmonizeResult
    harmony_metrics(image, template=None) -> HarmonyScore     # Cohen-Or templates, F / PIT / MITS
    srgb_to_lab, lab_to_srgb, srgb_to_hsv                     # colour conversions

Heavy modules are imported lazily so ``import sempix.palette`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sempix._runtime import lazy_exports
from sempix.palette.naming import NAMES

if TYPE_CHECKING:  # pragma: no cover
    from sempix.color import lab_to_srgb, srgb_to_hsv, srgb_to_lab
    from sempix.palette.extract import Palette, extract_palette
    from sempix.palette.harmonize import HarmonizeResult, harmonize_image
    from sempix.palette.hue_templates import (
        TEMPLATES,
        HarmonyScore,
        cohen_or_harmonize,
        harmony_metrics,
    )
    from sempix.palette.naming import (
        color_names,
        image_name_shares,
        name_index,
        name_probabilities,
        name_table,
    )
    from sempix.palette.prototypes import get_prototypes, harmonize_colors, match_prototypes
    from sempix.palette.transfer import recolor_palette
    from sempix.palette.viz import name_map_picture, swatch_picture

_LAZY = {
    "name_probabilities": "sempix.palette.naming",
    "name_index": "sempix.palette.naming",
    "name_table": "sempix.palette.naming",
    "color_names": "sempix.palette.naming",
    "image_name_shares": "sempix.palette.naming",
    "name_map_picture": "sempix.palette.viz",
    "Palette": "sempix.palette.extract",
    "extract_palette": "sempix.palette.extract",
    "recolor_palette": "sempix.palette.transfer",
    "harmonize_colors": "sempix.palette.prototypes",
    "match_prototypes": "sempix.palette.prototypes",
    "get_prototypes": "sempix.palette.prototypes",
    "harmonize_image": "sempix.palette.harmonize",
    "HarmonizeResult": "sempix.palette.harmonize",
    "harmony_metrics": "sempix.palette.hue_templates",
    "HarmonyScore": "sempix.palette.hue_templates",
    "cohen_or_harmonize": "sempix.palette.hue_templates",
    "TEMPLATES": "sempix.palette.hue_templates",
    "srgb_to_lab": "sempix.color",
    "lab_to_srgb": "sempix.color",
    "srgb_to_hsv": "sempix.color",
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
    "name_index",
    "name_probabilities",
    "name_table",
    "recolor_palette",
    "srgb_to_hsv",
    "srgb_to_lab",
    "swatch_picture",
]

__getattr__ = lazy_exports(__name__, _LAZY)
