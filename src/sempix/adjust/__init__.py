"""Learned semantics-aware photo adjustment (SA-AdjustNet, Nam & Kim) with personal maps.

Public API (lazy: torch loads on first use)::

    train_style(pairs_dir, "style.pt", effect="popout", variant="huber-mt",
                settings=TrainSettings())
    model, cfg, ck = load_style("style.pt")
    out = adjust_image(model, ck, image, strength=1.0, maps={1: mask})
    maps = preset_maps(model, ck, image)                 # (H, W, K), variant huber-mt-s

Modules: model.py (networks), losses.py, data.py (pairs, split, cache, sampling, augmentation),
train.py (loop + style file), apply.py (full-resolution mapping, maps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sempix._runtime import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from sempix.adjust.apply import adjust_image, preset_maps
    from sempix.adjust.model import VARIANTS, AdjustConfig
    from sempix.adjust.train import TrainSettings, load_style, train_style

__all__ = ["VARIANTS", "AdjustConfig", "TrainSettings", "adjust_image", "load_style",
           "preset_maps", "train_style"]

_LAZY = {
    "adjust_image": "sempix.adjust.apply",
    "preset_maps": "sempix.adjust.apply",
    "VARIANTS": "sempix.adjust.model",
    "AdjustConfig": "sempix.adjust.model",
    "TrainSettings": "sempix.adjust.train",
    "load_style": "sempix.adjust.train",
    "train_style": "sempix.adjust.train",
}
__getattr__ = lazy_exports(__name__, _LAZY)
