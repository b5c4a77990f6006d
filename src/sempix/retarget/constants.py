"""Retargeting constants (no torch import: the CLI builds its options from them)."""

# ADE20K classes protected by ``protect="auto"`` (people, animals, vehicles): one list shared with
# ``carve`` (sempix.features.protect; numpy only)
from sempix.features.protect import PROTECT_CLASSES as PROTECT_CLASSES

METHODS = ("dnr", "multiop", "seam", "semantic-seam", "scale", "warp")
INITS = ("scale", "seam", "multiop")
LAMBDA_NORMS = ("none", "energy")
#: deep seam percentile of the paper (pool5-depth VGG) and with shallow (relu3_1) weights
PAPER_PERCENTILE = 20.0
SHALLOW_PERCENTILE = 50.0
