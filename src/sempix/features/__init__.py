"""Semantic pixel features: one interface, several backends.

(Initial contract; the backends are completed by the foundation work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FeatureMap:
    """Per-pixel features aligned with an image.

    Attributes
    ----------
    features : (H, W, D) float32, aligned with the image (same H, W).
    backend : backend name actually used (``"ade20k"``, ``"segformer"``, ``"lowlevel"``).
    semantic : True only for real semantic backends (never True for ``lowlevel``).
    labels : (H, W) int32 class index map or None.
    class_names : list of class names indexed like ``labels`` or None.
    probs_lowres : (h, w, C) float32 class probabilities at the network's resolution, aligned
        with the image extent (crop of the letterbox), or None. Upsample with ``probs()``.
    meta : settings and timings.
    """

    features: np.ndarray
    backend: str
    semantic: bool
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    probs_lowres: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.features.shape[:2]

    @property
    def dim(self) -> int:
        return self.features.shape[2]
