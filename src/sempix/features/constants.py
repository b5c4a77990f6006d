"""Feature-backend constants (no heavy imports: the CLI reads them to build its options)."""

SEGFORMER_VARIANTS = tuple(f"segformer-b{i}" for i in range(6))  # model-store ADE20K checkpoints
BACKENDS = ("ade20k", "segformer", *SEGFORMER_VARIANTS, "slimseg", "lowlevel")
REDUCE = ("random", "pca")
DEFAULT_DIM = {"ade20k": 64, "segformer": 64, "slimseg": 64, "lowlevel": 0}
DEFAULT_DIM.update(dict.fromkeys(SEGFORMER_VARIANTS, 64))
FEATURE_VERSION = 1
