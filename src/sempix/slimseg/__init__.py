"""SlimSeg: slimmable semantic segmentation (one network, switchable width; Xue, ACM MM 2022).

Public API (lazy: torch loads on first use)::

    model = pretrained_slimseg(num_classes=11)          # x1.0 = the ADE20K DeepLabV3+ weights
    set_width(model, 0.5); out = model(images)          # SlimOutput(logits, features, boundary)
    count_flops(model, 0.5, (360, 480))                 # {"width", "macs", "params"}
    result = train_slimseg("camvid/", "ckpt.pt", TrainOptions(...))
    report = evaluate_slimseg("camvid/", "ckpt.pt")
    model, ckpt = load_slimseg("ckpt.pt")

Modules: layers.py (SlimConv2d, SwitchableBatchNorm2d, set_width), model.py (SlimDeepLab,
from_deeplab, calibrate_bn, count_flops, load_slimseg), losses.py (CE/OHEM, KD, boundary band,
boundary and boundary-guided losses), data.py (labelled folders, CamVid, augmentation),
train.py (Algorithm 1 on the shared loop), evaluate.py (mIoU, band accuracy, FLOPs, speed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sempix._runtime import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from sempix.slimseg.evaluate import evaluate_slimseg
    from sempix.slimseg.layers import SlimConv2d, SwitchableBatchNorm2d, get_width, set_width
    from sempix.slimseg.model import (
        DEFAULT_WIDTHS,
        SlimDeepLab,
        SlimOutput,
        SlimSegConfig,
        calibrate_bn,
        count_flops,
        from_deeplab,
        load_slimseg,
        parse_widths,
        pretrained_slimseg,
    )
    from sempix.slimseg.train import TEACHERS, TrainOptions, train_slimseg

__all__ = [
    "DEFAULT_WIDTHS",
    "TEACHERS",
    "SlimConv2d",
    "SlimDeepLab",
    "SlimOutput",
    "SlimSegConfig",
    "SwitchableBatchNorm2d",
    "TrainOptions",
    "calibrate_bn",
    "count_flops",
    "evaluate_slimseg",
    "from_deeplab",
    "get_width",
    "load_slimseg",
    "parse_widths",
    "pretrained_slimseg",
    "set_width",
    "train_slimseg",
]

_LAZY = {
    **{n: "sempix.slimseg.layers" for n in
       ("SlimConv2d", "SwitchableBatchNorm2d", "get_width", "set_width")},
    **{n: "sempix.slimseg.model" for n in
       ("DEFAULT_WIDTHS", "SlimDeepLab", "SlimOutput", "SlimSegConfig", "calibrate_bn",
        "count_flops", "from_deeplab", "load_slimseg", "parse_widths", "pretrained_slimseg")},
    **{n: "sempix.slimseg.train" for n in ("TEACHERS", "TrainOptions", "train_slimseg")},
    "evaluate_slimseg": "sempix.slimseg.evaluate",
}
__getattr__ = lazy_exports(__name__, _LAZY)
