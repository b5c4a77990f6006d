"""Burst perception-distortion toolkit (see docs/burst.md).

Public API (re-exports; the torch-based parts are imported lazily)
-----------------------------------------------------------------
synthesis   ``BurstParams``, ``Burst``, ``synthesize``, ``sample_shifts``
data        ``list_images``, ``load_images``, ``BurstBatches``, ``synthesize_folder``
alignment   ``ALIGNMENTS``, ``align``, ``estimate_translation``, ``estimate_flow``, ``warp``
classical   ``restore_classical``, ``shift_and_add``, ``estimate_noise``, ``sharpen``
metrics     ``rmse``, ``psnr``, ``ssim``, ``niqe``, ``niqe_pooled``, ``brisque``, ``lpips``
P-D / AUR   ``aur``, ``envelope``, ``common_bounds``, ``Bounds``, ``plot_curves``, ``plot_aur_vs_n``
toy models  ``spectrum``, ``toy_curve``, ``monte_carlo``, ``compare``, ``aur_vs_n``,
            ``best_burst_length``
advice      ``analyse_burst``, ``recommend``, ``plot_advice``
learned     ``LearnedConfig``, ``train_distortion``, ``train_perception``, ``train_two_stage``,
            ``load_network``, ``interpolated_network``, ``restore_learned`` (lazy: torch)
evaluation  ``evaluate_curves``, ``make_bursts``
"""

from __future__ import annotations

import importlib

_LAZY = {
    **dict.fromkeys(["BurstParams", "Burst", "synthesize", "sample_shifts"], "sempix.burst.synth"),
    **dict.fromkeys(
        ["list_images", "load_images", "BurstBatches", "synthesize_folder"], "sempix.burst.data"
    ),
    **dict.fromkeys(
        ["ALIGNMENTS", "align", "estimate_translation", "estimate_flow", "warp"],
        "sempix.burst.align",
    ),
    **dict.fromkeys(
        ["restore_classical", "shift_and_add", "estimate_noise", "sharpen"],
        "sempix.burst.classical",
    ),
    **dict.fromkeys(
        ["rmse", "psnr", "ssim", "niqe", "niqe_pooled", "brisque", "lpips"], "sempix.burst.metrics"
    ),
    **dict.fromkeys(
        ["aur", "envelope", "common_bounds", "Bounds", "plot_curves", "plot_aur_vs_n"],
        "sempix.burst.pd",
    ),
    **dict.fromkeys(
        ["spectrum", "toy_curve", "monte_carlo", "compare", "aur_vs_n", "best_burst_length"],
        "sempix.burst.toy",
    ),
    **dict.fromkeys(["analyse_burst", "recommend", "plot_advice"], "sempix.burst.advise"),
    **dict.fromkeys(
        [
            "LearnedConfig",
            "train_distortion",
            "train_perception",
            "train_two_stage",
            "load_network",
            "interpolated_network",
            "restore_learned",
        ],
        "sempix.burst.learned",
    ),
    **dict.fromkeys(["evaluate_curves", "make_bursts"], "sempix.burst.evaluate"),
}

__all__ = [
    "ALIGNMENTS",
    "Bounds",
    "Burst",
    "BurstBatches",
    "BurstParams",
    "LearnedConfig",
    "align",
    "analyse_burst",
    "aur",
    "aur_vs_n",
    "best_burst_length",
    "brisque",
    "common_bounds",
    "compare",
    "envelope",
    "estimate_flow",
    "estimate_noise",
    "estimate_translation",
    "evaluate_curves",
    "interpolated_network",
    "list_images",
    "load_images",
    "load_network",
    "lpips",
    "make_bursts",
    "monte_carlo",
    "niqe",
    "niqe_pooled",
    "plot_advice",
    "plot_aur_vs_n",
    "plot_curves",
    "psnr",
    "recommend",
    "restore_classical",
    "restore_learned",
    "rmse",
    "sample_shifts",
    "sharpen",
    "shift_and_add",
    "spectrum",
    "ssim",
    "synthesize",
    "synthesize_folder",
    "toy_curve",
    "train_distortion",
    "train_perception",
    "train_two_stage",
    "warp",
]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sempix.burst' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
