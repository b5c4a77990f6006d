"""Semantic soft segmentation (Aksoy et al., SIGGRAPH 2018): automatic soft layers.

Public API::

    from sempix.softseg import soft_segment, SoftSegConfig, save_result
    res = soft_segment(image)            # image (H, W, 3) float32 in [0, 1]
    res.alphas                           # (H, W, K) float32, sum to one
    res.colors                           # (K, H, W, 3) layer colours; res.recompose() ~ image
    save_result(res, "out/")             # RGBA PNGs, visualisation, alphas, layers.ora, layers.psd
    save_psd(res, "layers.psd", masks={"sky": sky})   # one layered PSD (psd-tools)
"""

from sempix.softseg.affinity import SoftSegParams, combined_laplacian, matting_laplacian
from sempix.softseg.eigen import smallest_eigenvectors
from sempix.softseg.export import (
    FORMATS,
    ora_bytes,
    psd_bytes,
    save_psd,
    save_result,
    visualize_layers,
)
from sempix.softseg.pipeline import (
                                     SoftSegConfig,
                                     SoftSegResult,
                                     grouping_features,
                                     layer_colors,
                                     soft_segment,
                                     sparsity_exponent,
)
from sempix.softseg.sparsify import (
                                     constrained_sparsification,
                                     drop_and_group,
                                     relaxed_sparsification,
)

__all__ = [
    "FORMATS",
    "SoftSegConfig",
    "SoftSegParams",
    "SoftSegResult",
    "grouping_features",
    "combined_laplacian",
    "constrained_sparsification",
    "drop_and_group",
    "layer_colors",
    "matting_laplacian",
    "ora_bytes",
    "psd_bytes",
    "relaxed_sparsification",
    "save_psd",
    "save_result",
    "smallest_eigenvectors",
    "soft_segment",
    "sparsity_exponent",
    "visualize_layers",
]
