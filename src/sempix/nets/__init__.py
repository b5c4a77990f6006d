"""Networks only, no I/O (plain PyTorch modules; weights come from checkpoints / the model store).

Modules are imported lazily (``from sempix.nets import BurstRRDB`` imports torch only then):

* :mod:`sempix.nets.deeplab` -- DeepLabV3+ MobileNetV2 (``DeepLabV3Plus``, ``DeepLabConfig``)
* :mod:`sempix.nets.tflite` -- TFLite flatbuffer -> ``(config, state_dict)`` converter
* :mod:`sempix.nets.rrdb` -- ``BurstRRDB``, ``RRDBConfig``, ``Discriminator``,
  ``interpolate_state``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "DeepLabV3Plus": "sempix.nets.deeplab",
    "DeepLabConfig": "sempix.nets.deeplab",
    "DeepLabOutput": "sempix.nets.deeplab",
    "BlockSpec": "sempix.nets.deeplab",
    "convert_deeplab_tflite": "sempix.nets.tflite",
    "BurstRRDB": "sempix.nets.rrdb",
    "RRDBConfig": "sempix.nets.rrdb",
    "Discriminator": "sempix.nets.rrdb",
    "interpolate_state": "sempix.nets.rrdb",
}

__all__ = ["BlockSpec", "BurstRRDB", "DeepLabConfig", "DeepLabOutput", "DeepLabV3Plus",
           "Discriminator", "RRDBConfig", "convert_deeplab_tflite", "interpolate_state"]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sempix.nets' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
