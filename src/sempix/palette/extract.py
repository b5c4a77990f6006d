"""Palette extraction: weighted k-means on the image's ab histogram (CIE Lab).

Method
------
1. The image is converted to Lab. Pixels (at most ``max_samples``: a seeded random sample) are
   binned by (a, b) into square bins of ``bin_size`` Lab units; each bin keeps its pixel count and
   the mean a, b and L of its pixels (so flat colours are recovered exactly, not at bin centres).
2. The non-empty bins are clustered with weighted k-means (weights = pixel counts, k-means++
   seeding, 4 seeded restarts) in the (a, b) plane.
3. Number of colours (when ``k`` is not given): the explained variance of a k-cluster solution is
   ``EV(k) = 1 - SSE(k) / SSE(1)``, with ``SSE(k)`` the count-weighted sum of squared ab distances
   of every histogram bin (at its mean ab) to its cluster centre and ``SSE(1)`` the same around
   the overall mean ab colour. The palette size is the **smallest k in 2..7 with EV(k) >= gamma**
   (gamma = 0.93); if
   no k reaches gamma, k = 7. An image with a single ab bin gets a one-colour palette.
4. Each palette colour is (mean L of its pixels, centre a, centre b); ``weights`` are pixel shares.
   Colours are sorted by decreasing weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sempix.color import lab_to_srgb, srgb_to_lab, to_hex, unique_colours
from sempix.errors import InputError
from sempix.palette.kmeans import weighted_kmeans

GAMMA = 0.93
K_RANGE = (2, 7)
#: pixels used at most by :func:`extract_palette` (a seeded random sample above)
MAX_SAMPLES = 262_144


@dataclass
class Palette:
    """An image palette.

    Attributes
    ----------
    rgb : (k, 3) float32 sRGB in [0, 1]
    lab : (k, 3) float32 CIE Lab (L = mean lightness of the cluster's pixels, a/b = cluster centre)
    weights : (k,) float32 pixel share of each colour (sums to 1)
    explained_variance : dict k -> EV(k) for the sizes that were tried (empty when k was given)
    """

    rgb: np.ndarray
    lab: np.ndarray
    weights: np.ndarray
    explained_variance: dict[int, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rgb)

    @property
    def hex(self) -> list[str]:
        """``#rrggbb`` of each colour."""
        return [to_hex(c) for c in self.rgb]

    def names(self) -> list[str]:
        """Most probable basic colour name of each colour (needs the ``w2c`` model)."""
        from sempix.palette.naming import color_names

        return list(color_names(self.rgb))

    def to_dict(self, with_names: bool = True) -> dict:
        """JSON-ready description."""
        names = self.names() if with_names else [None] * len(self)
        return {
            "k": len(self),
            "colors": [
                {
                    "hex": h,
                    "rgb": [round(float(v), 5) for v in c],
                    "lab": [round(float(v), 3) for v in lab],
                    "weight": round(float(w), 5),
                    "name": n,
                }
                for h, c, lab, w, n in zip(self.hex, self.rgb, self.lab, self.weights, names)
            ],
            "explained_variance": {str(k): round(v, 5) for k, v in self.explained_variance.items()},
        }


def ab_histogram(
    lab: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    bin_size: float = 2.0,
    inverse: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin Lab pixels by (a, b).

    Parameters
    ----------
    lab : (n, 3) Lab pixels (float32), or with ``inverse`` (m, 3) Lab of distinct colours
    weights : (n,) pixel weights or None
    bin_size : bin width in Lab units
    inverse : (n,) int64 row of ``lab`` of every pixel (see :func:`sempix.color.unique_colours`),
        or None when ``lab`` has a row per pixel

    Returns
    -------
    ab : (m, 2) mean (a, b) of each non-empty bin
    count : (m,) total weight of each bin
    L : (m,) mean L of each bin
    """
    from sempix.palette._extract_kernels import _bin_sums

    lab = np.ascontiguousarray(lab, dtype=np.float32)
    nb = int(np.ceil(256.0 / bin_size))
    ia = np.clip(((lab[:, 1] + 128.0) / bin_size).astype(np.int64), 0, nb - 1)
    ib = np.clip(((lab[:, 2] + 128.0) / bin_size).astype(np.int64), 0, nb - 1)
    idx = ia * nb + ib
    if inverse is None:
        inverse = np.arange(len(lab), dtype=np.int64)
    w = np.zeros(0) if weights is None else np.asarray(weights, dtype=np.float64)
    sums = np.zeros((nb * nb, 4))
    _bin_sums(np.ascontiguousarray(inverse, dtype=np.int64), idx, np.ascontiguousarray(w), lab,
              sums)
    nz = np.flatnonzero(sums[:, 0] > 0)
    c = sums[nz, 0]
    mean = sums[nz, 1:] / c[:, None]
    return np.ascontiguousarray(mean[:, 1:]), c, mean[:, 0]


def extract_palette(
    image: np.ndarray,
    *,
    k: int | None = None,
    mask: np.ndarray | None = None,
    gamma: float = GAMMA,
    bin_size: float = 2.0,
    max_samples: int = MAX_SAMPLES,
    seed: int = 0,
) -> Palette:
    """Extract a colour palette with k-means on the ab histogram.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1]
    k : number of colours (1..16), or None to choose 2..7 by the explained-variance rule (module
        doc)
    mask : optional (H, W) weights in [0, 1] (bool or float): only these pixels count
    gamma : explained-variance threshold of the automatic rule
    bin_size : ab bin width (Lab units)
    max_samples : pixels used at most (a seeded random sample of that many pixels, with
        replacement, when the image or mask has more)
    seed : k-means seed (results are deterministic for a seed)

    Returns
    -------
    Palette
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got shape {img.shape}")
    _check_k(k)
    flat = img.reshape(-1, 3)
    w = None
    if mask is not None:
        m = np.asarray(mask, dtype=np.float32)
        if m.shape != img.shape[:2]:
            raise InputError(f"mask shape {m.shape} does not match the image {img.shape[:2]}")
        w = m.reshape(-1)
        if not (w > 0).any():
            raise InputError("the mask selects no pixel")
    if w is not None:
        sel = np.flatnonzero(w > 0)
        flat, w = flat[sel], w[sel]
    if len(flat) > max_samples:
        pick = np.random.default_rng(seed).integers(0, len(flat), int(max_samples))
        flat = flat[pick]
        w = None if w is None else w[pick]
    # converted once per distinct colour (bit-identical to per pixel)
    u = unique_colours(flat, max_share=0.5)
    colours, inverse = (flat, None) if u is None else (np.take(flat, u[0], axis=0), u[1])
    return palette_from_colours(
        colours, inverse, w, k=k, gamma=gamma, bin_size=bin_size, seed=seed
    )


def _check_k(k: int | None) -> None:
    if k is not None and not 1 <= int(k) <= 16:
        raise InputError(
            f"palette size k={k} out of range: use 1..16 (or leave it unset for automatic)"
        )


def palette_from_colours(
    colours: np.ndarray,
    inverse: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    *,
    k: int | None = None,
    gamma: float = GAMMA,
    bin_size: float = 2.0,
    seed: int = 0,
) -> Palette:
    """:func:`extract_palette` of pixels given as distinct colours and the colour of every pixel
    (:func:`sempix.color.unique_colours`), without sampling: for callers that have them.

    Parameters
    ----------
    colours : (m, 3) sRGB colours (a row per pixel when ``inverse`` is None)
    inverse : (n,) int64 row of ``colours`` of every pixel, or None
    weights : (n,) pixel weights or None
    k, gamma, bin_size, seed : as in :func:`extract_palette`
    """
    _check_k(k)
    ab, cnt, Lb = ab_histogram(srgb_to_lab(colours), weights, bin_size=bin_size, inverse=inverse)
    total = cnt.sum()
    mean = (ab * cnt[:, None]).sum(0) / total
    # SSE is measured on the histogram: every bin sits at its mean ab colour, weighted by its count
    sse1 = float((cnt * ((ab - mean) ** 2).sum(1)).sum())

    ev: dict[int, float] = {}
    if k is not None:
        centres, labels, _ = weighted_kmeans(ab, cnt, int(k), seed=seed)
    elif len(ab) == 1 or sse1 <= 1e-9:
        centres, labels = ab[:1].copy(), np.zeros(len(ab), dtype=np.int64)
    else:
        chosen = None
        for kk in range(K_RANGE[0], K_RANGE[1] + 1):
            c, lab_k, sse = weighted_kmeans(ab, cnt, kk, seed=seed)
            ev[kk] = 1.0 - sse / sse1
            chosen = (c, lab_k)
            if ev[kk] >= gamma or len(c) < kk:  # reached the threshold, or fewer distinct colours
                break
        assert chosen is not None
        centres, labels = chosen
    kk = len(centres)
    wsum = np.bincount(labels, weights=cnt, minlength=kk)
    Lc = np.bincount(labels, weights=cnt * Lb, minlength=kk) / np.maximum(wsum, 1e-12)
    keep = wsum > 0
    pal_lab = np.column_stack([Lc, centres])[keep]
    wts = wsum[keep] / wsum.sum()
    order = np.argsort(-wts, kind="stable")
    pal_lab = pal_lab[order].astype(np.float32)
    return Palette(
        rgb=lab_to_srgb(pal_lab).astype(np.float32),
        lab=pal_lab,
        weights=wts[order].astype(np.float32),
        explained_variance=ev,
    )
