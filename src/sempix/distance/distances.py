"""Distances of every pixel to chosen pixels (range masks, soft selections).

All distances are in fixed, image-independent units so that ``lam`` and a threshold ``tau`` mean
the same thing on every image and with every feature backend:

* **luminance**: ``|L(p) - L(x)|`` with ``L = L*/100`` (CIE lightness), in [0, 1].
* **lab**: CIE76 colour difference ``DeltaE_ab / 100``; a pure lightness change gives the same
  value as the luminance distance. Usually in [0, 1]; saturated opposite colours reach about 2.6
  (black to blue-ish extremes of sRGB), never more.
* **semantic**: ``||s(p) - s(x)||_2 / 2`` where ``s = S / ||S||_2`` is the per-pixel L2-normalised
  feature vector, i.e. ``sqrt((1 - cos) / 2)``, in [0, 1] whatever the backend's dimension and
  scale (0 = same direction, 0.707 = orthogonal, 1 = opposite). A zero vector stays zero (its
  distance to a unit vector is 1/2). For non-negative (ReLU) features the range is [0, 0.707].
* **combined** (``distance_map``): ``lam * semantic + (1 - lam) * colour`` per chosen point, then
  the
  minimum over the points.

Points are ``(x, y)`` = (column, row) pixel coordinates. Large feature maps are processed in
blocks of rows in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sempix.color import lightness as luminance
from sempix.color import srgb_to_lab
from sempix.distance.energy import _features_array
from sempix.errors import InputError
from sempix.ops.validate import as_rgb

_CHUNK_BYTES = 32 * 1024 * 1024
_SPACES = ("luminance", "lab")


def parse_points(points, shape: tuple[int, int]) -> np.ndarray:
    """Validate pixel coordinates.

    Parameters
    ----------
    points : (x, y) pair or sequence of pairs / (N, 2) array, (column, row) order.
    shape : (H, W) of the image.

    Returns
    -------
    (N, 2) int64 array of (x, y), rounded to the nearest pixel.

    Raises
    ------
    InputError
        No points, wrong shape, non-finite values or a point outside the image.
    """
    H, W = int(shape[0]), int(shape[1])
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"points must be (x, y) pairs, got {points!r}") from None
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"points must be (x, y) pairs, got an array of shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError("at least one point (x, y) is needed")
    if not np.all(np.isfinite(arr)):
        raise InputError("points must be finite numbers")
    pts = np.rint(arr).astype(np.int64)
    for x, y in pts:
        if not (0 <= x < W and 0 <= y < H):
            raise InputError(
                f"point ({x}, {y}) is outside the {W}x{H} image (x in [0, {W - 1}], y in [0, "
                f"{H - 1}])"
            )
    return pts


def _check_aligned(a_shape, b_shape) -> None:
    if tuple(a_shape[:2]) != tuple(b_shape[:2]):
        raise InputError(
            f"feature map is {b_shape[1]}x{b_shape[0]} but the image is {a_shape[1]}x{a_shape[0]} "
            "(features must be aligned with the image)"
        )


# ---------------------------------------------------------------------------------------------
# colour terms


def _lum_to_refs(L: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """min_k |L - refs[k]| via sorted references. L (H,W) f32, refs (N,) -> (H, W) f32."""
    r = np.sort(np.asarray(refs, np.float32).ravel())
    idx = np.searchsorted(r, L)
    lo = r[np.clip(idx - 1, 0, r.size - 1)]
    hi = r[np.clip(idx, 0, r.size - 1)]
    return np.minimum(np.abs(L - lo), np.abs(L - hi)).astype(np.float32, copy=False)


def distance_luminance(img: np.ndarray, points) -> np.ndarray:
    """Lightness distance ``min_k |L(p) - L(x_k)|`` with ``L = L*/100``.

    Parameters
    ----------
    img : (H, W, 3) float sRGB in [0, 1], or an (H, W) luminance map from :func:`luminance`.
    points : (x, y) pair(s).

    Returns
    -------
    (H, W) float32 in [0, 1].
    """
    L = luminance(img)
    pts = parse_points(points, L.shape)
    return _lum_to_refs(L, L[pts[:, 1], pts[:, 0]])


def distance_lab_to(lab_img: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """``min_k DeltaE76(p, refs[k]) / 100`` for an image already in Lab.

    Parameters
    ----------
    lab_img : (H, W, 3) float32 CIE Lab (from :func:`sempix.color.srgb_to_lab`).
    refs : (N, 3) Lab reference colours.

    Returns
    -------
    (H, W) float32.
    """
    lab_img = np.asarray(lab_img, np.float32)
    refs = np.asarray(refs, np.float32).reshape(-1, 3)
    out = None
    for ref in refs:
        d = np.sqrt(np.sum((lab_img - ref) ** 2, axis=-1, dtype=np.float32)) * np.float32(0.01)
        out = d if out is None else np.minimum(out, d, out=out)
    return out.astype(np.float32, copy=False)


def distance_lab(img: np.ndarray, points) -> np.ndarray:
    """Colour distance ``min_k DeltaE76(p, x_k) / 100`` (CIE Lab, D65).

    Parameters
    ----------
    img : (H, W, 3) float sRGB in [0, 1].
    points : (x, y) pair(s).

    Returns
    -------
    (H, W) float32, >= 0 (see the module docstring for the range).
    """
    L = srgb_to_lab(as_rgb(img, "img"))
    pts = parse_points(points, L.shape)
    return distance_lab_to(L, L[pts[:, 1], pts[:, 0]])


# ---------------------------------------------------------------------------------------------
# semantic term


def _inv_norms(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, D) float32 -> (norms, 1/norms with 0 for zero vectors), both (M,) float32."""
    norm = np.sqrt(np.einsum("ij,ij->i", flat, flat, dtype=np.float32))
    inv = np.where(norm > 0, np.float32(1.0) / np.where(norm > 0, norm, 1), 0).astype(np.float32)
    return norm, inv


def unit_features(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise feature vectors along the last axis (zero vectors stay zero), float32."""
    v = np.asarray(vectors, np.float32)
    flat = v.reshape(-1, v.shape[-1])
    _, inv = _inv_norms(flat)
    return (flat * inv[:, None]).reshape(v.shape)


_REFINE_D2 = 1e-4  # below this squared distance (d < 0.005) recompute directly (no cancellation)


def _semantic_block(blk: np.ndarray, refs_unit: np.ndarray, ref_sq: np.ndarray) -> np.ndarray:
    """(h, W, D) block, (N, D) unit refs -> (h, W, N) semantic distances in [0, 1].

    Uses ``|u - r|^2 = |u|^2 + |r|^2 - 2 u.r`` (one matrix product); pairs whose result is tiny
    (where float32 cancellation would leave errors of ~3e-4) are recomputed as a direct difference,
    so the distance of a pixel to itself is exactly 0.
    """
    h, W, D = blk.shape
    flat = np.asarray(blk, np.float32).reshape(-1, D)
    norm, inv = _inv_norms(flat)
    dots = (flat @ refs_unit.T) * inv[:, None]  # (h*W, N), cosine (0 for zero vectors)
    p_sq = (norm > 0).astype(np.float32)[:, None]  # |unit(p)|^2 in {0, 1}
    d2 = np.maximum(p_sq + ref_sq[None, :] - 2.0 * dots, 0.0)
    close_i, close_k = np.nonzero(d2 < _REFINE_D2)
    step = max(1, (4 << 20) // (4 * D))
    for s0 in range(0, close_i.size, step):
        ii, kk = close_i[s0 : s0 + step], close_k[s0 : s0 + step]
        diff = flat[ii] * inv[ii, None] - refs_unit[kk]
        d2[ii, kk] = np.einsum("ij,ij->i", diff, diff, dtype=np.float32)
    return (np.sqrt(d2) * np.float32(0.5)).reshape(h, W, -1).astype(np.float32, copy=False)


def _iter_semantic(S: np.ndarray, refs: np.ndarray, chunk_bytes: int | None = None):
    """Yield (r0, r1, (r1-r0, W, N) distances) over row blocks of S (H, W, D)."""
    if chunk_bytes is None:
        chunk_bytes = _CHUNK_BYTES
    H, W, D = S.shape
    refs_unit = unit_features(np.asarray(refs, np.float32).reshape(-1, D))
    ref_sq = np.sum(refs_unit * refs_unit, axis=1, dtype=np.float32)
    rows = max(1, int(chunk_bytes) // max(1, W * D * 4))
    for r0 in range(0, H, rows):
        r1 = min(H, r0 + rows)
        yield r0, r1, _semantic_block(S[r0:r1], refs_unit, ref_sq)


def distance_semantic_to(S, refs: np.ndarray) -> np.ndarray:
    """``min_k ||unit(S(p)) - unit(refs[k])||_2 / 2`` for reference feature vectors.

    Parameters
    ----------
    S : (H, W, D) features or a FeatureMap.
    refs : (N, D) or (D,) reference feature vectors (e.g. stored from an earlier click).

    Returns
    -------
    (H, W) float32 in [0, 1].
    """
    S = _features_array(S)
    H, W, D = S.shape
    refs = np.asarray(refs, np.float32)
    if refs.shape[-1] != D:
        raise InputError(f"reference vectors have {refs.shape[-1]} dimensions, features have {D}")
    out = np.empty((H, W), np.float32)
    for r0, r1, d in _iter_semantic(S, refs):
        out[r0:r1] = d.min(axis=-1)
    return out


def distance_semantic(S, points) -> np.ndarray:
    """Semantic distance ``min_k ||s(p) - s(x_k)||_2 / 2`` of per-pixel L2-normalised features.

    Parameters
    ----------
    S : (H, W, D) float features (or a FeatureMap).
    points : (x, y) pair(s).

    Returns
    -------
    (H, W) float32 in [0, 1].
    """
    S = _features_array(S)
    pts = parse_points(points, S.shape[:2])
    return distance_semantic_to(S, S[pts[:, 1], pts[:, 0]])


# ---------------------------------------------------------------------------------------------
# combined


def distance_map(
    img: np.ndarray,
    S=None,
    points: Sequence | np.ndarray = (),
    *,
    lam: float = 0.5,
    space: str = "luminance",
) -> np.ndarray:
    """Combined distance ``min_k [lam * d_sem(p, x_k) + (1 - lam) * d_col(p, x_k)]``.

    Parameters
    ----------
    img : (H, W, 3) float sRGB in [0, 1].
    S : (H, W, D) features aligned with ``img`` (or a FeatureMap), or None for colour only
        (then ``lam`` is treated as 0).
    points : (x, y) pair(s), column then row.
    lam : float in [0, 1], weight of the semantic term. Both terms are in fixed units
        (see the module docstring), so a threshold on the result means the same on every image.
    space : ``"luminance"`` (``|dL*|/100``) or ``"lab"`` (``DeltaE76/100``) for the colour term.

    Returns
    -------
    (H, W) float32, 0 at the chosen points.
    """
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise InputError(f"lam must be in [0, 1], got {lam}")
    if space not in _SPACES:
        raise InputError(f"space must be one of {', '.join(_SPACES)}, got {space!r}")
    img = np.asarray(img)
    if img.ndim != 3:
        raise InputError(f"img must be an (H, W, 3) RGB array, got shape {img.shape}")
    H, W = img.shape[:2]
    pts = parse_points(points, (H, W))
    col_img = luminance(img) if space == "luminance" else srgb_to_lab(as_rgb(img, "img"))
    col_refs = col_img[pts[:, 1], pts[:, 0]]  # (N,) or (N, 3)

    def colour_block(r0: int, r1: int) -> np.ndarray:  # (h, W, N)
        blk = col_img[r0:r1]
        if space == "luminance":
            return np.abs(blk[..., None] - col_refs[None, None, :])
        diff = blk[:, :, None, :] - col_refs[None, None, :, :]
        return np.sqrt(np.sum(diff * diff, axis=-1, dtype=np.float32)) * np.float32(0.01)

    out = np.empty((H, W), np.float32)
    if S is None or lam == 0.0:
        rows = max(1, _CHUNK_BYTES // max(1, W * len(pts) * 16))
        for r0 in range(0, H, rows):
            r1 = min(H, r0 + rows)
            out[r0:r1] = colour_block(r0, r1).min(axis=-1)
        return out
    feats = _features_array(S)
    _check_aligned((H, W), feats.shape)
    refs = feats[pts[:, 1], pts[:, 0]]
    lam32, rest = np.float32(lam), np.float32(1.0 - lam)
    for r0, r1, dsem in _iter_semantic(feats, refs):
        comb = lam32 * dsem
        if rest > 0:
            comb += rest * colour_block(r0, r1)
        out[r0:r1] = comb.min(axis=-1)
    return out
