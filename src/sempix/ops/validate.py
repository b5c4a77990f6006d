"""Input validation shared by every tool: one place for shape/dtype checks and their messages.

Errors are :class:`sempix.errors.InputError` with one line that says what was expected and what
was given (``"... got (H, W) vs image (H', W')"``); front ends (CLI, web) add their own context
such as option names.
"""

from __future__ import annotations

import numpy as np

from sempix.errors import InputError


def _hw(shape) -> str:
    return f"({int(shape[0])}, {int(shape[1])})"


def as_rgb(
    image, name: str = "image", *, grey_ok: bool = False, finite: bool = False
) -> np.ndarray:
    """An ``(H, W, 3)`` float32 array from an RGB(A) array (alpha dropped).

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) array; uint8 / uint16 are scaled to [0, 1], floats kept.
    name : what to call it in error messages.
    grey_ok : accept (H, W) (repeated to three channels).
    finite : reject NaN / infinite values.

    Returns
    -------
    (H, W, 3) float32, C-contiguous (no copy when already so).
    """
    a = np.asarray(image)
    if grey_ok and a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{name} must be an (H, W, 3) RGB array, got shape {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    a = np.ascontiguousarray(a, dtype=np.float32)
    if finite and not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def as_mask(mask, shape=None, name: str = "mask") -> np.ndarray:
    """An ``(H, W)`` float32 mask; with ``shape`` its size must match ``shape[:2]``.

    Raises InputError ``"mask size (h, w) vs image (H, W)"`` when the sizes differ.
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise InputError(f"{name} must be an (H, W) array, got shape {m.shape}")
    if shape is not None and m.shape != tuple(shape[:2]):
        raise InputError(f"{name} size does not match: got {_hw(m.shape)} vs image {_hw(shape)}")
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    return np.asarray(m, dtype=np.float32)


def as_features(features, shape=None, name: str = "features") -> np.ndarray:
    """An ``(H, W, D)`` float32 feature array from an array or a FeatureMap (``.features``).

    (H, W) arrays become (H, W, 1). With ``shape`` the size must match ``shape[:2]``.
    """
    arr = np.asarray(getattr(features, "features", features))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InputError(f"{name} must be an (H, W, D) feature array, got shape {arr.shape}")
    if shape is not None and arr.shape[:2] != tuple(shape[:2]):
        raise InputError(
            f"{name} size does not match: got {_hw(arr.shape)} vs image {_hw(shape)} "
            "(features must be aligned with the image)"
        )
    return np.asarray(arr, dtype=np.float32)


def same_size(a_shape, b_shape, what: str = "arrays") -> None:
    """Raise InputError when two (H, W, ...) shapes differ in (H, W)."""
    if tuple(a_shape[:2]) != tuple(b_shape[:2]):
        raise InputError(f"{what} sizes differ: got {_hw(a_shape)} vs {_hw(b_shape)}")


def parse_size(value, current: int, what: str = "width") -> int | None:
    """A target size from ``"80%"``, ``"640"``, ``640`` (or a whole float) -> pixels; None stays
    None.

    Parameters
    ----------
    value : str | int | float | None
    current : the current size along that axis (percentages are of it).
    what : the axis name used in error messages (``"width"`` / ``"height"``).

    Raises
    ------
    InputError
        Unparsable strings, non-whole floats and sizes below one pixel.
    """
    if value is None:
        return None
    if isinstance(value, str):
        v = value.strip()
        try:
            px = round(current * float(v[:-1]) / 100.0) if v.endswith("%") else int(v)
        except ValueError:
            raise InputError(
                f"{what} must be pixels (e.g. 640) or a percentage (e.g. 80%), got {value!r}"
            ) from None
    elif isinstance(value, float):
        if not value.is_integer():
            raise InputError(f"{what} must be a whole number of pixels, got {value}")
        px = int(value)
    else:
        px = int(value)
    if px < 1:
        raise InputError(f"target {what} must be at least 1 pixel, got {px} (from {value!r})")
    return int(px)
