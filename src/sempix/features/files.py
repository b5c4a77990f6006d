"""Compact storage of feature maps: the on-disk feature cache and ``sempix features -o f.npz``.

A feature map of a network backend is an upsampling of a small map at the network's resolution
(at most 129 x 129 for ade20k), so it is stored as that small map and upsampled on load with the
same :func:`sempix.ops.resample.upsample` call that produced it. npz members (format 2):

``features_lowres`` (h, w, D) float16, ``grid_ys`` (H,) / ``grid_xs`` (W,) float64
    the network-resolution features and the sampling grid (``features`` = upsample of these);
``lowlevel_smooth`` (h', w', 6) float16, ``lowlevel_stride``
    instead, for the ``lowlevel`` backend: its smooth channels on a coarse grid, the rest is
    recomputed from the image (:func:`sempix.features.lowlevel.rebuild`);
``project`` (11, D) float32
    optional: the random projection applied to rebuilt ``lowlevel`` channels;
``guided`` [radius, eps, clip]
    optional: ``features`` = the colour guided filter of the rebuilt map with the image
    (``guided=True``; recomputed when the features are first used, which takes seconds);
``source_rgb`` (H, W, 3) uint8 (exact 8-bit images) or uint16, deflate-compressed
    files only, with ``lowlevel_*`` or ``guided``: the image the features are rebuilt from
    (a cache hit has the image already);
``features`` (H, W, D) float16
    instead of all of these when the map cannot be rebuilt (``lowlevel`` with ``reduce="pca"``);
``labels`` (H, W) uint8 (int16 / int32 with more classes), deflate-compressed (piecewise constant);
``probs_lowres`` (h, w, C) uint8, class probabilities quantised to 1/255, deflate-compressed;
``class_names``, ``backend``, ``semantic``, ``meta`` (JSON), ``format``.

With ``full=True`` (``sempix features --full``) the file holds the full-resolution float32
``features``, int32 ``labels`` and float32 ``probs_lowres`` instead (format 1, the old layout; about
1 KB per pixel at 256 channels). :func:`load_features` reads both.

float16 keeps 11 significant bits: feature values and pixel distances change by about 1e-3
relative (tests check the budget on distances).

Loading is lazy: :func:`unpack` returns a ``build`` callable and :class:`FeatureMap` calls it
when ``features`` is first used (the upsampled float32 map of a 1 MP image at 64 dims is 270 MB:
writing it costs ~0.1 s, more than the rest of a cache hit).
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
_COMPRESSED = ("labels", "probs_lowres", "source_rgb")


def pack(
    features: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    probs_lowres: np.ndarray | None = None,
    lowres: tuple | None = None,
    full: bool = False,
    compact: dict | None = None,
    source: np.ndarray | None = None,
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
    compact : the map's rebuild recipe (``FeatureMap.compact``: ``lowlevel_*`` / ``project`` /
        ``guided`` / ``features_lowres`` + grid members), used instead of ``lowres``.
    source : (H, W, 3) float32 image, stored (``source_rgb``) when ``compact`` needs it; None in
        cache entries (the key is the image).

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
    if compact is not None:
        out.update({k: np.asarray(v) for k, v in compact.items()})
        if source is not None and needs_image(compact):
            out["source_rgb"] = _quantise_rgb(source)
    elif lowres is not None:
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


_RECIPE = ("features_lowres", "grid_ys", "grid_xs", "lowlevel_smooth", "lowlevel_stride",
           "project", "guided")


def needs_image(compact: dict) -> bool:
    """Whether rebuilding from ``compact`` needs the image (``lowlevel`` or guided features)."""
    return "lowlevel_smooth" in compact or "guided" in compact


def _quantise_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 when the float image is exactly 8-bit (``u / 255``), else uint16."""
    a = np.asarray(img, dtype=np.float32)
    q = np.rint(a * 255.0)
    if np.array_equal(q.astype(np.float32) / np.float32(255.0), a):
        return q.astype(np.uint8)
    return np.rint(np.clip(a, 0.0, 1.0) * 65535.0).astype(np.uint16)


def _dequantise_rgb(q: np.ndarray) -> np.ndarray:
    den = np.float32(255.0 if q.dtype == np.uint8 else 65535.0)
    return q.astype(np.float32) / den


def rebuild(compact, image: np.ndarray | None) -> np.ndarray:
    """Full-resolution (H, W, D) float32 features from a rebuild recipe (see the module doc).

    ``image`` (H, W, 3) float32: the image the features were computed from (needed for
    ``lowlevel_*`` and ``guided`` recipes).
    """
    from sempix.ops.resample import upsample

    if "lowlevel_smooth" in compact:
        from sempix.features.lowlevel import rebuild as lowlevel_rebuild

        feats = lowlevel_rebuild(image, compact)
        if "project" in compact:
            p = np.asarray(compact["project"], np.float32)
            feats = (feats.reshape(-1, feats.shape[-1]) @ p).reshape(feats.shape[:2] + (-1,))
    else:
        feats = upsample(
            np.asarray(compact["features_lowres"], np.float32),
            compact["grid_ys"],
            compact["grid_xs"],
        )
    if "guided" in compact:
        from sempix.ops.filters import guided_filter

        radius, eps, clip = (float(v) for v in np.asarray(compact["guided"]))
        feats = guided_filter(image, feats, radius=int(radius), eps=eps)
        if clip:
            feats = np.clip(feats, 0.0, 1.0)
    return np.ascontiguousarray(feats, dtype=np.float32)


def unpack(arrays, image: np.ndarray | None = None) -> dict:
    """Stored arrays (a dict or an open ``NpzFile``) -> dict of the map's arrays.

    ``features`` (H, W, D) float32 when stored at full resolution, else None and ``build`` a
    callable returning them (upsampling the network-resolution map, or rebuilding from the image:
    ``image`` or the stored ``source_rgb``), with ``shape`` (H, W) and ``dim``;
    ``labels`` (H, W) int32 or None, ``probs_lowres`` (h, w, C) float32 or None, ``lowres`` the
    ``(features_lowres, ys, xs)`` triple or None, ``compact`` the rebuild recipe or None.
    Raises ``KeyError`` when a recipe needs the image and there is none.
    """
    names = set(arrays.keys()) if hasattr(arrays, "keys") else set(arrays.files)
    lowres = compact = build = None
    feats = shape = dim = None
    if "features" in names:
        feats = np.ascontiguousarray(arrays["features"], dtype=np.float32)
    else:
        compact = {k: np.asarray(arrays[k]) for k in _RECIPE if k in names}
        if "features_lowres" in compact:
            lowres = (
                compact["features_lowres"].astype(np.float32),
                compact["grid_ys"],
                compact["grid_xs"],
            )
            shape = (len(lowres[1]), len(lowres[2]))
            dim = lowres[0].shape[2]
        if needs_image(compact):
            if image is None:
                if "source_rgb" not in names:
                    raise KeyError("source_rgb (the image the features are rebuilt from)")
                image = _dequantise_rgb(arrays["source_rgb"])
            shape = image.shape[:2]
            if "project" in compact:
                dim = compact["project"].shape[1]
            elif "lowlevel_smooth" in compact:
                from sempix.features.lowlevel import DIM

                dim = DIM
            src = image
            recipe = compact

            def build():
                return rebuild(recipe, src)
        else:
            lr = lowres

            def build():
                from sempix.ops.resample import upsample

                return upsample(*lr)

            compact = None  # a plain upsampling: ``lowres`` says it all
    labels = arrays["labels"].astype(np.int32) if "labels" in names else None
    probs = None
    if "probs_lowres" in names:
        p = arrays["probs_lowres"]
        probs = (
            p.astype(np.float32) / np.float32(255.0)
            if p.dtype == np.uint8
            else p.astype(np.float32)
        )
    return {"features": feats, "labels": labels, "probs_lowres": probs, "lowres": lowres,
            "compact": compact, "build": build, "shape": shape, "dim": dim,
            "source": image if compact is not None else None}


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
        fm.features if full or fm.compact is None and fm.lowres is None else None,
        labels=fm.labels,
        probs_lowres=fm.probs_lowres,
        lowres=getattr(fm, "lowres", None),
        full=full,
        compact=getattr(fm, "compact", None),
        source=getattr(fm, "source", None),
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
        compact=got["compact"],
        build=got["build"],
        shape=got["shape"],
        dim=got["dim"],
        source=got["source"],
    )
