"""Networks only, no I/O (plain PyTorch modules; weights come from checkpoints / the model store).

Modules are imported lazily (``from sempix.nets import BurstRRDB`` imports torch only then):

* :mod:`sempix.nets.deeplab` -- ``DeepLabV3Plus``, ``DeepLabConfig``, ``DeepLabOutput``,
  ``BlockSpec`` (the ADE20K DeepLabV3+ MobileNetV2).
* :mod:`sempix.nets.tflite` -- ``convert_deeplab_tflite`` (TFLite flatbuffer -> config, state dict).
* :mod:`sempix.nets.rrdb` -- ``BurstRRDB``, ``RRDBConfig``, ``Discriminator``,
  ``interpolate_state``.
"""

from __future__ import annotations

from sempix._runtime import lazy_exports

_LAZY = {
    "BlockSpec": "sempix.nets.deeplab",
    "DeepLabConfig": "sempix.nets.deeplab",
    "DeepLabOutput": "sempix.nets.deeplab",
    "DeepLabV3Plus": "sempix.nets.deeplab",
    "convert_deeplab_tflite": "sempix.nets.tflite",
    "BurstRRDB": "sempix.nets.rrdb",
    "RRDBConfig": "sempix.nets.rrdb",
    "Discriminator": "sempix.nets.rrdb",
    "interpolate_state": "sempix.nets.rrdb",
}

__all__ = [
    "BlockSpec",
    "BurstRRDB",
    "DeepLabConfig",
    "DeepLabOutput",
    "DeepLabV3Plus",
    "Discriminator",
    "RRDBConfig",
    "convert_deeplab_tflite",
    "interpolate_state",
]

__getattr__ = lazy_exports(__name__, _LAZY)
