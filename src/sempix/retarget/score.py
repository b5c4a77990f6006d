"""Semantic Score (Arar et al.): ``SS = ||F(O)||_2 / ||F(I)||_2``.

``F`` is a feature map of the whole image, ``O`` the retargeted output and ``I`` the input. The
paper
uses VGG-19 ``block5_conv1``; sempix reports two versions and always says which:

* ``kind="vgg"``: the deepest VGG layer the weights hold (``relu3_1`` with the normalised network
  available here, ``relu5_1`` with torchvision's full ``vgg19``), Frobenius norm of the activations;
* ``kind="ade20k"``: the semantic pixel features of the ADE20K backend
  (``sempix.features.compute_features(img, "ade20k").features``, (H, W, D) at image resolution).

The score is the fraction of feature "energy" kept: removing unimportant (low-activation) content
keeps
it high, losing or squeezing objects lowers it.
"""

from __future__ import annotations

import numpy as np
import torch


def vgg_layer_name(net) -> str:
    """The layer the ``vgg`` score uses: relu5_1 if the network has it, else its deepest layer."""
    return "relu5_1" if "relu5_1" in net.layers else net.depth


def vgg_norm(image: np.ndarray, net=None, layer: str | None = None) -> float:
    """``||F_layer(image)||_2`` with VGG-19 (default: :func:`vgg_layer_name`)."""
    from sempix.retarget import get_vgg
    from sempix.retarget.vgg import to_tensor

    net = net or get_vgg()
    layer = layer or vgg_layer_name(net)
    dev = next(net.parameters()).device
    with torch.no_grad():
        f = net(to_tensor(image, dev), [layer])[layer]
    return float(torch.linalg.vector_norm(f.double()))


def ade20k_norm(image: np.ndarray, *, strict: bool = True) -> float:
    """``||S(image)||_2`` with the ADE20K semantic pixel features (H, W, D)."""
    from sempix.features import compute_features

    fm = compute_features(image, "ade20k", strict=strict)
    return float(np.linalg.norm(np.asarray(fm.features, dtype=np.float64)))


def semantic_score(
    original: np.ndarray,
    result: np.ndarray,
    *,
    kind: str = "vgg",
    net=None,
    layer: str | None = None,
    original_norm: float | None = None,
) -> float:
    """Semantic Score ``||F(result)|| / ||F(original)||``.

    Parameters
    ----------
    original : (H, W, 3) input image.
    result : (H', W', 3) retargeted image.
    kind : ``"vgg"`` (deepest available VGG layer, or ``layer``) or ``"ade20k"``.
    original_norm : precomputed ``||F(original)||`` (to score many results of one source).
    """
    if kind == "vgg":
        den = original_norm if original_norm is not None else vgg_norm(original, net, layer)
        return vgg_norm(result, net, layer) / den
    if kind == "ade20k":
        den = original_norm if original_norm is not None else ade20k_norm(original)
        return ade20k_norm(result) / den
    from sempix.errors import InputError

    raise InputError(f"unknown semantic score kind {kind!r}; use vgg or ade20k")
