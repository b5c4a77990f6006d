"""Compact storage of feature maps: the on-disk feature cache and ``sempix features -o f.npz``.

A feature map of a network backend is an upsampling of a small map at the network's resolution
(at most 129 x 129 for ade20k), so it is stored as that small map and upsampled on load with the
same :func:`sempix.ops.resample.upsample` call that produced it. npz members (format 2):

``features_lowres`` (h, w, D) float16, ``grid_ys`` (H,) / ``grid_xs`` (W,) float64
    the network-resolution features and the sampling grid (``features`` = upsample of these);
``features`` (H, W, D) float16
    instead, when the map is not an upsampling (``lowlevel`` backend, ``guided=True``);
``labels`` (H, W) uint8 (int16 / int32 with more classes), deflate-compressed (piecewise constant);
``probs_lowres`` (h, w, C) uint8, class probabilities quantised to 1/255, deflate-compressed;
``class_names``, ``backend``, ``semantic``, ``meta`` (JSON), ``format``.

With ``full=True`` (``sempix features --full``) the file holds the full-resolution float32
``features``, int32 ``labels`` and float32 ``probs_lowres`` instead (format 1, the old layout; about
1 KB per pixel at 256 channels). :func:`load_features` reads both.

float16 keeps 11 significant bits: feature values and pixel distances change by about 1e-3
relative (tests check the budget on distances).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

FORMAT = 2
#: members written deflate-compressed in the compact format (they compress 10-50x)
_COMPRESSED = ("labels", "probs_lowres")


def pack(
    features: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    probs_lowres: np.ndarray | None = None,
    lowres: tuple | None = None,
    full: bool = False,
) -> dict[str, np.ndarray]:
    """Arrays to store for a feature map.

    Parameters
    ----------
    features : (H, W, D) float32, the full-resolution map.
    labels : (H, W) int class map, optional.
    probs_lowres : (h, w, C) float32 probabilities, optional.
    lowres : ``(features_lowres (h, w, D), ys (H,), xs (W,))`` with ``features`` equal to
        ``upsample(features_lowres, ys, xs)``, or None.
    full : store full-resolution float32 (format 1) instead of the compact format.

    Returns
    -------
    dict of arrays (npz members).
    """
    out: dict[str, np.ndarray] = {}
    if full:
        out["format"] = np.array(1)
        out["features"] = np.asarray(features, dtype=np.float32)
        if labels is not None:
            out["labels"] = np.asarray(labels, dtype=np.int32)
        if probs_lowres is not None:
            out["probs_lowres"] = np.asarray(probs_lowres, dtype=np.float32)
        return out
    out["format"] = np.array(FORMAT)
    if lowres is not None:
        lr, ys, xs = lowres
        out["features_lowres"] = np.asarray(lr, dtype=np.float16)
        out["grid_ys"] = np.asarray(ys, dtype=np.float64)
        out["grid_xs"] = np.asarray(xs, dtype=np.float64)
    else:
        out["features"] = np.asarray(features, dtype=np.float16)
    if labels is not None:
        lab = np.asarray(labels)
        n = int(lab.max()) + 1 if lab.size else 0
        out["labels"] = lab.astype(np.uint8 if n <= 256 else (np.int16 if n <= 32768 else np.int32))
    if probs_lowres is not None:
        p = np.clip(np.asarray(probs_lowres, dtype=np.float32), 0.0, 1.0)
        out["probs_lowres"] = np.rint(p * 255.0).astype(np.uint8)
    return out


def unpack(arrays) -> dict:
    """Stored arrays (a dict or an open ``NpzFile``) -> dict of the map's arrays.

    ``features`` (H, W, D) float32 (upsampled from the network resolution when stored so),
    ``labels`` (H, W) int32 or None, ``probs_lowres`` (h, w, C) float32 or None, ``lowres`` the
    ``(features_lowres, ys, xs)`` triple or None.
    """
    names = set(arrays.keys()) if hasattr(arrays, "keys") else set(arrays.files)
    lowres = None
    if "features_lowres" in names:
        from sempix.ops.resample import upsample

        lowres = (
            arrays["features_lowres"].astype(np.float32),
            arrays["grid_ys"],
            arrays["grid_xs"],
        )
        feats = upsample(*lowres)
    else:
        feats = np.ascontiguousarray(arrays["features"], dtype=np.float32)
    labels = arrays["labels"].astype(np.int32) if "labels" in names else None
    probs = None
    if "probs_lowres" in names:
        p = arrays["probs_lowres"]
        probs = (
            p.astype(np.float32) / np.float32(255.0)
            if p.dtype == np.uint8
            else p.astype(np.float32)
        )
    return {"features": feats, "labels": labels, "probs_lowres": probs, "lowres": lowres}


def write_npz(f, arrays: dict[str, np.ndarray], *, compress: Iterable[str] = _COMPRESSED) -> None:
    """Write an npz (``numpy.load`` reads it) to a file object, deflating only ``compress``."""
    compress = set(compress)
    with zipfile.ZipFile(f, "w", allowZip64=True) as zf:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED
            if info.compress_type == zipfile.ZIP_DEFLATED:
                for attr in ("compress_level", "_compresslevel"):  # fast level (3.13 / 3.11 name)
                    if hasattr(info, attr):
                        setattr(info, attr, 1)
                        break
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(a), allow_pickle=False)


def save_features(
    path: str | os.PathLike, fm, *, full: bool = False, inputs: Iterable = (), force: bool = False
) -> Path:
    """Write a :class:`~sempix.features.FeatureMap` to ``path`` (.npz) atomically.

    Compact (default): network-resolution float16 features, uint8 labels and probabilities
    (a few MB per image); ``full=True``: full-resolution float32 (format 1).
    """
    from sempix.image import atomic_output

    meta = {k: v for k, v in fm.meta.items() if k not in ("grid_ys", "grid_xs")}
    arrays = pack(
        fm.features,
        labels=fm.labels,
        probs_lowres=fm.probs_lowres,
        lowres=getattr(fm, "lowres", None),
        full=full,
    )
    arrays["backend"] = np.array(fm.backend)
    arrays["semantic"] = np.array(fm.semantic)
    arrays["meta"] = np.array(json.dumps(meta, default=str))
    if fm.class_names is not None:
        arrays["class_names"] = np.array(fm.class_names)
    p = Path(path)
    with atomic_output(p, inputs=inputs, force=force) as tmp, open(tmp, "wb") as f:
        write_npz(f, arrays, compress=() if full else _COMPRESSED)
    return p


def load_features(path: str | os.PathLike):
    """Read a feature file written by :func:`save_features` (either format) -> FeatureMap."""
    from sempix.errors import InputError
    from sempix.features import FeatureMap

    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            got = unpack(z)
            backend = str(z["backend"]) if "backend" in z.files else "unknown"
            semantic = bool(z["semantic"]) if "semantic" in z.files else False
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            names = [str(n) for n in z["class_names"]] if "class_names" in z.files else None
            if "grid_ys" in z.files:
                meta["grid_ys"] = z["grid_ys"].tolist()
                meta["grid_xs"] = z["grid_xs"].tolist()
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"{p}: not a sempix feature file ({str(exc).splitlines()[0]})") from None
    return FeatureMap(
        features=got["features"],
        backend=backend,
        semantic=semantic,
        labels=got["labels"],
        class_names=names,
        probs_lowres=got["probs_lowres"],
        meta=meta,
        lowres=got["lowres"],
    )
