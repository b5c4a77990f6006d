"""Networks: plain PyTorch modules without file I/O, re-exported lazily (a cheap import).

* :mod:`sempix.nets.deeplab` - DeepLabV3+ MobileNetV2 (``DeepLabV3Plus``, ``DeepLabConfig``)
* :mod:`sempix.nets.tflite` - TFLite flatbuffer -> ``(config, state_dict)`` converter
"""

from __future__ import annotations

from sempix._runtime import lazy_exports

_EXPORTS = {
    "DeepLabV3Plus": "sempix.nets.deeplab",
    "DeepLabConfig": "sempix.nets.deeplab",
    "DeepLabOutput": "sempix.nets.deeplab",
    "BlockSpec": "sempix.nets.deeplab",
    "convert_deeplab_tflite": "sempix.nets.tflite",
}

__all__ = ["BlockSpec", "DeepLabConfig", "DeepLabOutput", "DeepLabV3Plus", "convert_deeplab_tflite"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
