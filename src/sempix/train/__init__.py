"""The one training loop shared by every learned component (see :mod:`sempix.train.loop`).

Lazy re-exports (torch is imported only when one of these names is used):
``TrainConfig``, ``TrainContext``, ``TrainResult``, ``train``, ``save_checkpoint``,
``load_checkpoint``, ``resolve_device``, ``seed_everything``, ``set_requires_grad``, ``lr_factor``.
"""

from __future__ import annotations

import importlib

_NAMES = (
    "TrainConfig",
    "TrainContext",
    "TrainResult",
    "train",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_device",
    "seed_everything",
    "set_requires_grad",
    "lr_factor",
    "CHECKPOINT_FORMAT",
)

__all__ = list(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module("sempix.train.loop"), name)
    raise AttributeError(f"module 'sempix.train' has no attribute {name!r}")
