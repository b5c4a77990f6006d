"""Semantic pixel features: one interface, several backends.

>>> fm = compute_features(image)                 # ade20k, 64-d random projection
>>> fm.features.shape, fm.labels.shape, fm.class_names[fm.labels[0, 0]]
>>> soft = compute_features(image, dim=3, reduce="pca").features   # (H, W, 3) in [0, 1]

Backends (``backend=``):

* ``"ade20k"`` (default) - DeepLabV3+ MobileNetV2 trained on ADE20K, run with LiteRT; features
  = the 256-channel penultimate decoder map (see :mod:`sempix.features.ade20k`), 151 classes
  (index 0 ``others`` is kept as a class so labels index ``class_names`` directly).
  ``runtime="torch"`` runs the same network converted to float32 PyTorch (CPU or CUDA, see
  :mod:`sempix.features.runtime`).
* ``"segformer"`` - a SegFormer checkpoint directory through ``transformers`` (optional extra;
  see :mod:`sempix.features.segformer`).
* ``"segformer-b0"`` .. ``"segformer-b5"`` - the ADE20K SegFormer checkpoints of the model
  store (downloaded from the Hugging Face Hub at a pinned revision, ``sempix models fetch``).
* ``"lowlevel"`` - weight-free colour/texture/position features, ``semantic=False``
  (see :mod:`sempix.features.lowlevel`).

If the requested model is unavailable and ``strict=False``, one warning line is logged (once
per process and model) and the ``lowlevel`` backend is used; ``FeatureMap.backend`` then says
``"lowlevel"``, ``semantic`` is False and ``meta["fallback"]`` gives the reason.

Default output dimension (``dim=None``): ``DEFAULT_DIM`` = 64 for ade20k and segformer (seeded
random projection of the 256-channel map), all 11 channels for lowlevel; ``reduce="pca"`` with
``dim=None`` gives 3. ``dim=0`` keeps every channel (256 for ade20k: 1 GB per megapixel!).
Reduction always happens at the network's resolution, before upsampling (exact for random
projection, see :mod:`sempix.features.post`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sempix._runtime import lazy_exports
from sempix.features.constants import BACKENDS, DEFAULT_DIM, FEATURE_VERSION, REDUCE
from sempix.features.protect import PROTECT_CLASSES, protect_mask

if TYPE_CHECKING:  # pragma: no cover
    from sempix.features.compute import FeatureMap, class_mask, compute_features
    from sempix.ops.pca import pca_rgb

__all__ = [
    "BACKENDS",
    "DEFAULT_DIM",
    "FEATURE_VERSION",
    "PROTECT_CLASSES",
    "REDUCE",
    "FeatureMap",
    "class_mask",
    "compute_features",
    "pca_rgb",
    "protect_mask",
]

_LAZY = {
    "FeatureMap": "sempix.features.compute",
    "class_mask": "sempix.features.compute",
    "compute_features": "sempix.features.compute",
    "pca_rgb": "sempix.ops.pca",
}

__getattr__ = lazy_exports(__name__, _LAZY)
