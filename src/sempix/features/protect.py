"""Semantic protection shared by the resizing tools (``carve``, ``retarget``).

``protect`` specifications, resolved against a :class:`~sempix.features.FeatureMap`:

* ``"auto"``: the ADE20K classes of :data:`PROTECT_CLASSES` (people, animals, vehicles) present in
  the label map; nothing when the features carry no labels (``lowlevel``, a bare array);
* ``"none"`` / ``"off"`` / ``""`` / ``None``: no protection;
* ``"person,dog"`` or a list of names: those classes (an :class:`~sempix.errors.InputError` when the
  features have no labels or a name is unknown);
* an ``(H, W)`` array: that map (values > 0.5 protected).
"""

from __future__ import annotations

import numpy as np

from sempix.errors import InputError

#: ADE20K classes protected by ``protect="auto"``: shapes people notice when squeezed or cut.
PROTECT_CLASSES = (
    "person", "animal", "car", "bus", "truck", "van", "boat", "ship", "airplane", "bicycle",
    "minibike",
)

_OFF = ("none", "off", "")


def protect_off(protect) -> bool:
    """True when ``protect`` asks for no protection (None, "none", "off", "")."""
    return protect is None or (isinstance(protect, str) and protect.strip().lower() in _OFF)


def protect_names(protect, class_names=None) -> list[str]:
    """Class names a string/list ``protect`` stands for.

    ``"auto"`` -> the :data:`PROTECT_CLASSES` that ``class_names`` knows (all without it).
    """
    if protect_off(protect):
        return []
    if isinstance(protect, str):
        if protect.strip().lower() == "auto":
            known = None if class_names is None else {c.lower() for c in class_names}
            return [n for n in PROTECT_CLASSES if known is None or n in known]
        return [n.strip() for n in protect.split(",") if n.strip()]
    return [str(n).strip() for n in protect if str(n).strip()]


def protect_mask(fm, protect="auto", shape=None) -> tuple[np.ndarray | None, dict]:
    """Resolve a ``protect`` specification to a boolean mask.

    Parameters
    ----------
    fm : FeatureMap (or any object with ``labels`` / ``class_names``), a bare (H, W, D) array,
        or None.
    protect : see the module docstring.
    shape : (H, W) expected for an array ``protect`` (default: the labels' shape).

    Returns
    -------
    mask : (H, W) bool or None (nothing to protect).
    info : ``{"classes": requested names, "present": names found in the labels, "share": fraction
        of pixels protected, "unavailable": True when "auto" found no labels}``.

    Raises
    ------
    InputError
        Class names without labels, unknown class names, an array of the wrong shape.
    """
    if protect_off(protect):
        return None, {"classes": [], "share": 0.0}
    labels = getattr(fm, "labels", None)
    names_all = getattr(fm, "class_names", None)
    if not isinstance(protect, (str, list, tuple)):
        m = np.asarray(protect)
        want = tuple(shape) if shape is not None else (None if labels is None else labels.shape)
        if m.ndim != 2 or (want is not None and m.shape != want):
            raise InputError(f"protect map has shape {m.shape}, expected {want}")
        m = m > 0.5 if m.dtype != bool else m
        return (m if m.any() else None), {"classes": None, "share": float(m.mean())}
    auto = isinstance(protect, str) and protect.strip().lower() == "auto"
    if labels is None or not names_all:
        if auto:
            return None, {"classes": [], "share": 0.0, "unavailable": True}
        raise InputError(
            "protecting classes needs semantic labels: use the ade20k (or segformer) features"
        )
    from sempix.features.compute import class_mask

    names = protect_names(protect, names_all)
    m = class_mask(fm, names) if names else np.zeros(labels.shape, bool)
    present = sorted({names_all[i] for i in np.unique(np.asarray(labels)[m])}) if m.any() else []
    info = {"classes": names, "present": present, "share": float(m.mean())}
    return (m if m.any() else None), info
