"""Masks from the semantic label map ("select sky / person") and mask combination.

``class_select`` turns the class probabilities that the semantic backend computes anyway into a
soft mask: the summed probability of the chosen classes (the network's softmax, bilinearly
upsampled from its ~129x129 grid) is mapped through a linear ramp around 0.5 (``edge``), so pixels
the network is unsure about get intermediate values, and the result is optionally snapped to image
edges by the guided filter (:func:`sempix.mask.refine_mask`).

``combine_masks`` / ``mask_union`` / ``mask_intersection`` / ``mask_subtract`` combine soft masks
with the standard fuzzy-set operators (max, min, ``min(a, 1 - b)``), so hard masks combine exactly
like sets and soft edges stay soft.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sempix.errors import InputError

OPS = ("union", "intersection", "subtract")


def _as_masks(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = [np.clip(np.asarray(m, dtype=np.float32), 0.0, 1.0) for m in masks]
    if not out:
        raise InputError("no masks to combine")
    for m in out:
        if m.ndim != 2 or m.shape != out[0].shape:
            shapes = [x.shape for x in out]
            raise InputError(f"masks must all be (H, W) of the same size, got {shapes}")
    return out


def mask_union(*masks: np.ndarray) -> np.ndarray:
    """Pixel-wise maximum of (H, W) masks in [0, 1] -> (H, W) float32."""
    ms = _as_masks(masks)
    return np.maximum.reduce(ms).astype(np.float32)


def mask_intersection(*masks: np.ndarray) -> np.ndarray:
    """Pixel-wise minimum of (H, W) masks in [0, 1] -> (H, W) float32."""
    ms = _as_masks(masks)
    return np.minimum.reduce(ms).astype(np.float32)


def mask_subtract(a: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """``a`` minus every mask of ``others``: ``min(a, 1 - b)`` per mask, (H, W) float32."""
    ms = _as_masks((a, *others))
    out = ms[0]
    for b in ms[1:]:
        out = np.minimum(out, 1.0 - b)
    return out.astype(np.float32)


def combine_masks(a: np.ndarray, b: np.ndarray, op: str = "union") -> np.ndarray:
    """Combine two (H, W) masks; ``op``: ``"union"``, ``"intersection"``, ``"subtract"`` (a - b)."""
    if op not in OPS:
        raise InputError(f"unknown mask operation {op!r}; choose {', '.join(OPS)}")
    fn = {"union": mask_union, "intersection": mask_intersection, "subtract": mask_subtract}[op]
    return fn(a, b)


def class_select(image: np.ndarray, fm, names, *, soft: bool = True, edge: float = 0.2,
                 refine: bool = True, refine_radius: int | None = None) -> np.ndarray:
    """Soft mask of the pixels of semantic classes (``"sky"``, ``"person,animal"``...).

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1] (the guide of the refinement; sets the output size).
    fm : FeatureMap of a semantic backend (labels and class probabilities), at the image's size or
        a working resolution with the same aspect ratio (e.g. :func:`sempix.mask.mask_features`).
    names : class names, a comma-separated string or a list (case-insensitive; unknown names raise
        an InputError listing close matches).
    soft : True: ramp of the summed class probability from ``0.5 - edge`` (0) to ``0.5 + edge`` (1);
        False: the hard label map (pixels whose arg-max class is one of ``names``).
    edge : half-width of the probability ramp (0 < edge <= 0.5).
    refine : snap the mask to image edges with the guided filter (radius ``refine_radius``).

    Returns
    -------
    (H, W) float32 mask in [0, 1].
    """
    from sempix.features import class_mask
    from sempix.mask.core import refine_mask
    from sempix.ops import resize

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] < 3:
        raise InputError(f"image must be (H, W, 3), got shape {img.shape}")
    if not 0.0 < float(edge) <= 0.5:
        raise InputError(f"edge must be in (0, 0.5], got {edge}")
    H, W = img.shape[:2]
    hard = class_mask(fm, names)  # validates names; raises without labels
    if isinstance(names, str):
        names = names.split(",")
    lookup = {n.lower(): i for i, n in enumerate(fm.class_names)}
    idx = sorted({lookup[str(n).strip().lower()] for n in names if str(n).strip()})
    probs = fm.probs(idx) if soft else None
    if probs is not None:
        p = probs.sum(axis=2)
        m = np.clip((p - (0.5 - edge)) / (2.0 * edge), 0.0, 1.0).astype(np.float32)
    else:
        m = hard.astype(np.float32)
    if m.shape != (H, W):
        m = np.clip(resize(m, (H, W)), 0.0, 1.0).astype(np.float32)
    if refine:
        m = refine_mask(m, img[..., :3], refine_radius)
    return m.astype(np.float32)
