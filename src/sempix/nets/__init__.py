"""Networks (plain PyTorch modules, no file I/O); imported lazily so ``import sempix.nets`` is cheap.

* :mod:`sempix.nets.deeplab` - DeepLabV3+ MobileNetV2 (``DeepLabV3Plus``, ``DeepLabConfig``)
* :mod:`sempix.nets.tflite` - TFLite flatbuffer -> ``(config, state_dict)`` converter
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DeepLabV3Plus": "sempix.nets.deeplab",
    "DeepLabConfig": "sempix.nets.deeplab",
    "DeepLabOutput": "sempix.nets.deeplab",
    "BlockSpec": "sempix.nets.deeplab",
    "convert_deeplab_tflite": "sempix.nets.tflite",
}

__all__ = ["BlockSpec", "DeepLabConfig", "DeepLabOutput", "DeepLabV3Plus", "convert_deeplab_tflite"]


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'sempix.nets' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
