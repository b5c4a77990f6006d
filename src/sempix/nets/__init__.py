"""Networks only, no I/O (plain PyTorch modules; weights come from checkpoints / the model store).

Modules are imported lazily (``from sempix.nets import BurstRRDB`` imports torch only then):

* :mod:`sempix.nets.rrdb` -- ``BurstRRDB``, ``RRDBConfig``, ``Discriminator``,
``interpolate_state``.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "BurstRRDB": "sempix.nets.rrdb",
    "RRDBConfig": "sempix.nets.rrdb",
    "Discriminator": "sempix.nets.rrdb",
    "interpolate_state": "sempix.nets.rrdb",
}

__all__ = ["BurstRRDB", "Discriminator", "RRDBConfig", "interpolate_state"]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sempix.nets' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
