"""Gradient-magnitude energy maps (seam carving's ``e_rgb``, ``e_semantic``, ``e_combined``).

Finite-difference scheme (identical to :func:`numpy.gradient` with unit spacing, ``edge_order=1``):

* interior pixels: central differences ``dI/dx(y, x) = (I(y, x+1) - I(y, x-1)) / 2``
  (same along y);
* first/last column (row): one-sided differences ``I(y, 1) - I(y, 0)`` and
  ``I(y, W-1) - I(y, W-2)``;
* an axis of length 1 contributes 0.

The energy of a pixel is the L1 norm over channels of both derivatives:
``e(p) = sum_c |dI_c/dx(p)| + |dI_c/dy(p)|``. Feature maps with many channels are processed in
blocks of rows (float32), so a 2 MP x 256 map needs only a few tens of MB on top of the map itself.

Normalisation (``normalize=True``) divides a map by its mean over the image, so every normalised
energy has mean 1 (a constant map stays all zeros). In ``e_combined`` this makes ``lam`` the share
of
the total energy that comes from the semantic term, whatever the image, the feature backend or its
dimension.
"""

from __future__ import annotations

import numpy as np

from sempix.errors import InputError

_CHUNK_BYTES = 8 * 1024 * 1024
_EPS = 1e-12


def _features_array(S, name: str = "S") -> np.ndarray:
    """Accept an (H, W, D) array or anything with a ``.features`` array (a FeatureMap)."""
    arr = getattr(S, "features", S)
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InputError(f"{name} must be an (H, W, D) feature array, got shape {arr.shape}")
    return arr


def gradient_l1(arr: np.ndarray, *, chunk_bytes: int | None = None) -> np.ndarray:
    """Sum over channels of ``|d/dx| + |d/dy|`` with :func:`numpy.gradient`'s differences.

    Parameters
    ----------
    arr : (H, W) or (H, W, C) array
        Any real dtype; processed in float32 blocks of rows (``chunk_bytes`` per block).

    Returns
    -------
    (H, W) float32, non-negative.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"expected an (H, W) or (H, W, C) array, got shape {a.shape}")
    H, W, C = a.shape
    if chunk_bytes is None:
        chunk_bytes = _CHUNK_BYTES
    out = np.zeros((H, W), np.float32)
    if H == 0 or W == 0 or C == 0:
        return out
    rows = max(1, int(chunk_bytes) // max(1, W * C * 4))
    half = np.float32(0.5)
    for r0 in range(0, H, rows):
        r1 = min(H, r0 + rows)
        lo, hi = max(0, r0 - 1), min(H, r1 + 1)
        blk = np.asarray(a[lo:hi], dtype=np.float32)
        core = blk[r0 - lo : r1 - lo]
        e = out[r0:r1]
        if W > 1:
            if W > 2:
                e[:, 1:-1] += _abs_diff_sum(core[:, 2:], core[:, :-2]) * half
            e[:, 0] += np.abs(core[:, 1] - core[:, 0]).sum(axis=-1)
            e[:, -1] += np.abs(core[:, -1] - core[:, -2]).sum(axis=-1)
        if H > 1:
            a0, a1 = max(r0, 1), min(r1, H - 1)  # rows with central differences
            if a1 > a0:
                e[a0 - r0 : a1 - r0] += (
                    _abs_diff_sum(blk[a0 + 1 - lo : a1 + 1 - lo], blk[a0 - 1 - lo : a1 - 1 - lo])
                    * half
                )
            if r0 == 0:
                e[0] += np.abs(blk[1 - lo] - blk[0 - lo]).sum(axis=-1)
            if r1 == H:
                e[H - 1 - r0] += np.abs(blk[H - 1 - lo] - blk[H - 2 - lo]).sum(axis=-1)
    return out


def _abs_diff_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum over the last axis of |a - b| with a single temporary."""
    d = np.subtract(a, b, dtype=np.float32)
    np.abs(d, out=d)
    return d.sum(axis=-1)


def normalize_energy(e: np.ndarray) -> np.ndarray:
    """Divide an energy map by its mean (so the result has mean 1); all-zero maps stay zero.

    Parameters
    ----------
    e : (H, W) non-negative array.

    Returns
    -------
    (H, W) float32.
    """
    e = np.asarray(e, dtype=np.float32)
    m = float(e.mean(dtype=np.float64)) if e.size else 0.0
    if not np.isfinite(m) or m <= _EPS:
        return np.zeros_like(e)
    return e * np.float32(1.0 / m)


def energy_rgb(img: np.ndarray, *, normalize: bool = False) -> np.ndarray:
    """Colour energy ``e_rgb(I) = |dI/dx| + |dI/dy|`` (L1 over the R, G, B channels).

    Parameters
    ----------
    img : (H, W, 3) float array, sRGB values in [0, 1] (an (H, W) grey image also works).
    normalize : divide by the mean over the image (see module docstring).

    Returns
    -------
    (H, W) float32. Unnormalised values are in [0, 6] (3 channels x 2 directions).
    """
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    e = gradient_l1(a)
    return normalize_energy(e) if normalize else e


def energy_semantic(S, *, normalize: bool = False) -> np.ndarray:
    """Semantic energy ``e_semantic(S) = |dS/dx| + |dS/dy|`` (L1 over the D feature channels).

    Parameters
    ----------
    S : (H, W, D) float array or a :class:`sempix.features.FeatureMap`.
    normalize : divide by the mean over the image (see module docstring).

    Returns
    -------
    (H, W) float32.
    """
    e = gradient_l1(_features_array(S))
    return normalize_energy(e) if normalize else e


def energy_combined(
    img: np.ndarray, S=None, lam: float = 0.2, *, normalize: bool = True
) -> np.ndarray:
    """``e_combined = lam * e_semantic(S) + (1 - lam) * e_rgb(img)``.

    Parameters
    ----------
    img : (H, W, 3) float array in [0, 1].
    S : (H, W, D) features (or a FeatureMap), or None for colour only (then the result is
        ``e_rgb`` alone, normalised when ``normalize``; ``lam`` is ignored).
    lam : float in [0, 1]
        Weight of the semantic term. With ``normalize=True`` (default) both terms are divided by
        their mean first, so ``lam`` is the share of the total energy that is semantic and means the
        same for every image and backend.
    normalize : bool
        False combines the raw maps (then ``lam`` depends on the feature scale).

    Returns
    -------
    (H, W) float32.
    """
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise InputError(f"lam must be in [0, 1], got {lam}")
    e_rgb = energy_rgb(img, normalize=normalize)
    if S is None:
        return e_rgb
    feats = _features_array(S)
    if feats.shape[:2] != e_rgb.shape:
        raise InputError(
            f"feature map is {feats.shape[1]}x{feats.shape[0]} but the image is "
            f"{e_rgb.shape[1]}x{e_rgb.shape[0]} (features must be aligned with the image)"
        )
    e_sem = energy_semantic(feats, normalize=normalize)
    return (np.float32(lam) * e_sem + np.float32(1.0 - lam) * e_rgb).astype(np.float32, copy=False)
