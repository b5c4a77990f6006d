"""Retargeting constants (no torch import: the CLI builds its options from them)."""

METHODS = ("dnr", "multiop", "seam", "semantic-seam", "scale", "warp")
INITS = ("scale", "seam", "multiop")
LAMBDA_NORMS = ("none", "energy")
# ADE20K classes protected by ``protect="auto"``: shapes people notice when they are squeezed or
# cut.
PROTECT_CLASSES = (
    "person",
    "animal",
    "car",
    "bus",
    "truck",
    "van",
    "boat",
    "ship",
    "airplane",
    "bicycle",
    "minibike",
)
#: deep seam percentile of the paper (pool5-depth VGG) and with shallow (relu3_1) weights
PAPER_PERCENTILE = 20.0
SHALLOW_PERCENTILE = 50.0
