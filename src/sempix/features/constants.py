"""Feature-backend constants (no heavy imports: the CLI reads them to build its options)."""

BACKENDS = ("ade20k", "segformer", "lowlevel")
REDUCE = ("random", "pca")
DEFAULT_DIM = {"ade20k": 64, "segformer": 64, "lowlevel": 0}
FEATURE_VERSION = 1
