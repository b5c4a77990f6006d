"""Saturated colour-name prototypes and palette matching (Xue et al. 2024, "Palette-based color
harmonization via color naming").

Prototypes
----------
The naming model is evaluated on the sRGB grid with step 8 (R, G, B in 0, 8, ..., 248: 32768
colours, one per model cell); every grid colour gets its most probable name. The colours of each
name are clustered with k-means in Lab: 10 clusters per name, 15 for green, blue and purple and
15 for red and pink (135 prototypes in all). Each cluster keeps its **most saturated** colour
(HSV saturation; among equally saturated colours, the one closest to the cluster centre in Lab).
The result depends only on the model file, so it is computed once and cached on disk
(``$SEMPIX_CACHE_DIR/palette/`` or the platform cache directory ``sempix/palette``), keyed by a
hash of the model table and :data:`PROTOTYPE_VERSION`.

Matching
--------
For a palette colour, the candidate names are those among its 3 most probable names whose
probability exceeds 15%; its target is the nearest candidate prototype in RGB (Euclidean).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sempix._config import cache_dir
from sempix._runtime import BoundedCache
from sempix.color import srgb_to_hsv, srgb_to_lab
from sempix.errors import InputError
from sempix.palette.kmeans import weighted_kmeans
from sempix.palette.naming import NAMES, name_probabilities, neutral_palette_colours, w2c_table

PROTOTYPE_VERSION = "1"
GRID_STEP = 8
BASE_CLUSTERS = 10
#: names that get half as many clusters more (rounded up): 15 with the default 10
EXTRA_CLUSTERS = ("green", "blue", "purple", "red", "pink")
NAME_THRESHOLD = 0.15
TOP_NAMES = 3


@dataclass(frozen=True)
class Prototypes:
    """Prototype colours.

    Attributes
    ----------
    rgb : (P, 3) float32 sRGB in [0, 1]
    name : (P,) int64 index into :data:`NAMES`
    """

    rgb: np.ndarray
    name: np.ndarray

    def of(self, name: str) -> np.ndarray:
        """(n, 3) prototypes of one colour name."""
        return self.rgb[self.name == NAMES.index(name)]


def cache_root() -> Path:
    """Directory for cached prototypes (``$SEMPIX_CACHE_DIR/palette`` or the platform cache dir)."""
    return cache_dir("palette")


def compute_prototypes(
    table: np.ndarray, *, seed: int = 0, per_name: int = BASE_CLUSTERS
) -> Prototypes:
    """Compute the prototypes from a (32768, 11) naming table (see module doc). Takes about a
    second.

    Parameters
    ----------
    table : (32768, 11) name probabilities
    seed : k-means seed
    per_name : clusters per name (the names in :data:`EXTRA_CLUSTERS` get half as many more,
        rounded up)

    Returns
    -------
    Prototypes
    """
    g = np.arange(0, 256, GRID_STEP, dtype=np.float32) / 255.0
    b, gg, r = np.meshgrid(g, g, g, indexing="ij")  # index order matches R + 32 G + 1024 B
    grid = np.stack([r.ravel(), gg.ravel(), b.ravel()], axis=1)
    names = np.argmax(table, axis=1)  # grid colour i sits exactly in model cell i
    lab = srgb_to_lab(grid).astype(np.float64)
    sat = srgb_to_hsv(grid)[:, 1].astype(np.float64)
    out_rgb, out_name = [], []
    for ni, nm in enumerate(NAMES):
        members = np.flatnonzero(names == ni)
        if len(members) == 0:
            continue
        k = per_name + ((per_name + 1) // 2 if nm in EXTRA_CLUSTERS else 0)
        centres, labels, _ = weighted_kmeans(lab[members], None, k, seed=seed, n_init=2)
        for c in range(len(centres)):
            idx = members[labels == c]
            if len(idx) == 0:
                continue
            s = sat[idx]
            top = idx[s >= s.max() - 1e-6]
            d = ((lab[top] - centres[c]) ** 2).sum(1)
            out_rgb.append(grid[top[int(np.argmin(d))]])
            out_name.append(ni)
    return Prototypes(np.array(out_rgb, dtype=np.float32), np.array(out_name, dtype=np.int64))


_MEMO: BoundedCache = BoundedCache(maxsize=4, name="palette.prototypes")
#: id(table) -> (table, its hash): the model table is a cached array, hashed once (1.5 ms)
_KEYS: BoundedCache = BoundedCache(maxsize=4, name="palette.prototype_keys")


def _table_key(table: np.ndarray, per_name: int) -> str:
    hit = _KEYS.get((id(table), per_name))
    if hit is not None and hit[0] is table:
        return hit[1]
    extra = b"" if per_name == BASE_CLUSTERS else f"-{per_name}".encode()
    key = hashlib.sha256(table.tobytes() + PROTOTYPE_VERSION.encode() + extra).hexdigest()[:16]
    _KEYS.put((id(table), per_name), (table, key))
    return key


def get_prototypes(
    model_path: str | os.PathLike | None = None,
    *,
    cache: bool = True,
    per_name: int = BASE_CLUSTERS,
) -> Prototypes:
    """Prototypes for the ``w2c`` model: from memory, else from the disk cache, else computed and
    cached.

    Parameters
    ----------
    model_path : explicit model file or None (model store)
    cache : read/write the on-disk cache
    per_name : clusters (prototypes) per name, see :func:`compute_prototypes`
    """
    table = w2c_table(model_path)
    per_name = int(per_name)
    if per_name < 1:
        raise InputError(f"prototypes per name must be at least 1, got {per_name}")
    key = _table_key(table, per_name)
    if key in _MEMO:
        return _MEMO.get(key)
    path = cache_root() / f"prototypes-{key}.npz"
    protos = None
    if cache and path.is_file():
        try:
            with np.load(path) as z:
                protos = Prototypes(z["rgb"].astype(np.float32), z["name"].astype(np.int64))
        except Exception:  # noqa: BLE001 - a broken cache file is recomputed
            protos = None
    if protos is None:
        protos = compute_prototypes(table, per_name=per_name)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".prototypes.", suffix=".npz", dir=path.parent)
            os.close(fd)
            try:
                np.savez(tmp, rgb=protos.rgb, name=protos.name)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    _MEMO.put(key, protos)
    return protos


def match_prototypes(
    rgb: np.ndarray,
    *,
    threshold: float = NAME_THRESHOLD,
    top: int = TOP_NAMES,
    model_path: str | os.PathLike | None = None,
    per_name: int = BASE_CLUSTERS,
) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Match palette colours to prototypes (see module doc).

    Parameters
    ----------
    rgb : (k, 3) sRGB in [0, 1]
    threshold : minimum name probability of a candidate name
    top : candidate names come from the ``top`` most probable names
    per_name : prototypes per name (:func:`get_prototypes`)

    Returns
    -------
    targets : (k, 3) float32 prototype colours
    target_names : name of each chosen prototype
    candidates : candidate names of each colour
    """
    rgb = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    protos = get_prototypes(model_path, per_name=per_name)
    probs = name_probabilities(rgb, model_path=model_path)
    targets = np.empty_like(rgb)
    tnames: list[str] = []
    cands: list[list[str]] = []
    for i, (c, p) in enumerate(zip(rgb, probs)):
        order = np.argsort(-p, kind="stable")[:top]
        names = [int(j) for j in order if p[j] > threshold] or [int(order[0])]
        sel = np.isin(protos.name, names)
        pr, pn = protos.rgb[sel], protos.name[sel]
        j = int(np.argmin(((pr - c) ** 2).sum(1)))
        targets[i] = pr[j]
        tnames.append(NAMES[int(pn[j])])
        cands.append([NAMES[n] for n in names])
    return targets, tnames, cands


def harmonize_colors(
    rgb: np.ndarray,
    *,
    model_path: str | os.PathLike | None = None,
    neutral_safe: bool = True,
) -> np.ndarray:
    """Replace each colour by its nearest saturated prototype of a name it plausibly has.

    Parameters
    ----------
    rgb : (k, 3) float32 sRGB in [0, 1]
    neutral_safe : keep neutral colours (most probable name black, grey or white, CIE chroma
        below 5, or no name above 20%; :func:`sempix.palette.naming.neutral_palette_colours`)
        and colours whose prototype would be less chromatic (CIE C*) than they are (e.g. pure
        red) unchanged. False = the plain rule of the paper.

    Returns
    -------
    (k, 3) float32 sRGB prototypes (see :func:`match_prototypes`), or the input colour where
    ``neutral_safe`` keeps it.
    """
    rgb = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    out = match_prototypes(rgb, model_path=model_path)[0]
    if neutral_safe and len(rgb):
        lab, lab_out = srgb_to_lab(rgb), srgb_to_lab(out)
        keep = neutral_palette_colours(lab, name_probabilities(rgb, model_path=model_path))
        keep |= np.hypot(lab_out[:, 1], lab_out[:, 2]) < np.hypot(lab[:, 1], lab[:, 2])
        out[keep] = rgb[keep]
    return out
