"""Colour conversions, one implementation each (see :mod:`sempix.color.convert`).

Public API::

    srgb_to_linear, linear_to_srgb, linear_to_xyz, xyz_to_linear, xyz_to_lab, lab_to_xyz
    srgb_to_lab(rgb) -> Lab            lab_to_srgb(lab, gamut="chroma"|"clip") -> rgb
    srgb_to_hsv, hsv_to_srgb, lightness (L*/100), luma, LUMA (Rec.709), delta_e
    parse_color("#ff8800") -> (3,)     to_hex(rgb) -> "#rrggbb"
    unique_colours(rgb) -> (first, inverse)   # distinct colours, for per-colour work
    label_colors(n) -> (n, 3) uint8    # one colour map for class labels (web editor, previews)
    colormap(x) -> (..., 3)            # sequential ramp (energy / importance pictures)
"""

from sempix.color.convert import (
    GAMUTS,
    LUMA,
    WHITE_D65,
    delta_e,
    hsv_to_srgb,
    lab_to_srgb,
    lab_to_xyz,
    lightness,
    linear_to_srgb,
    linear_to_xyz,
    luma,
    parse_color,
    srgb_to_hsv,
    srgb_to_lab,
    srgb_to_linear,
    to_hex,
    unique_colours,
    xyz_to_lab,
    xyz_to_linear,
)
from sempix.color.labels import colormap, label_colors

__all__ = [
    "GAMUTS", "LUMA", "WHITE_D65", "colormap", "delta_e", "hsv_to_srgb", "lab_to_srgb",
    "lab_to_xyz", "label_colors", "lightness", "linear_to_srgb", "linear_to_xyz", "luma",
    "parse_color",
    "srgb_to_hsv", "srgb_to_lab", "srgb_to_linear", "to_hex", "unique_colours", "xyz_to_lab",
    "xyz_to_linear",
]
