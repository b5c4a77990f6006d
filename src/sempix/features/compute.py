"""The feature pipeline behind :func:`sempix.features.compute_features` (see the package doc)."""

from __future__ import annotations

import difflib
import logging
import threading
import time
from pathlib import Path

import numpy as np

from sempix._runtime import warn_once
from sempix.errors import InputError, ModelUnavailableError
from sempix.features.constants import (
    BACKENDS,
    DEFAULT_DIM,
    FEATURE_VERSION,
    REDUCE,
    SEGFORMER_VARIANTS,
)
from sempix.ops.pca import pca_rgb
from sempix.ops.resample import sample_coords, upsample
from sempix.ops.validate import as_rgb
from sempix.progress import ProgressFn, report

log = logging.getLogger("sempix.features")


__all__ = [
    "BACKENDS",
    "DEFAULT_DIM",
    "FeatureMap",
    "class_mask",
    "compute_features",
    "pca_rgb",
]


class FeatureMap:
    """Per-pixel features aligned with an image.

    Attributes
    ----------
    features : (H, W, D) float32, aligned with the image (same H, W). A map read from the cache
        or a feature file is *lazy*: it holds the compact arrays (the network-resolution map, or
        what the features are recomputed from) and builds ``features`` on first access (then
        keeps it); ``shape``, ``dim``, ``labels``, ``probs()`` never build it. ``materialised``
        says whether it has been built.
    backend : backend name actually used (``"ade20k"``, ``"segformer"``, ``"lowlevel"``).
    semantic : True only for real semantic backends (never True for ``lowlevel``).
    labels : (H, W) int32 class index map or None.
    class_names : list of class names indexed like ``labels`` or None.
    probs_lowres : (h, w, C) float32 class probabilities at the network's resolution, aligned
        with the image extent (crop of the letterbox), or None. Upsample with ``probs()``.
    meta : settings and timings.
    lowres : (features at the network's resolution (h, w, D), ys (H,), xs (W,)) with
        ``features`` = ``upsample(*lowres)``, or None; lets the cache and feature files store
        the small map.
    compact : dict of arrays that rebuild ``features`` without the network (see
        :mod:`sempix.features.files`), or None.
    source : (H, W, 3) float32 image the ``compact`` recipe rebuilds from (lowlevel or guided
        features), or None.

    Construct with ``features`` (an array), or with ``features=None`` and ``lowres`` (built by
    upsampling) or ``build`` (a callable returning the (H, W, D) float32 map) plus ``shape`` and
    ``dim``.
    """

    def __init__(
        self,
        features: np.ndarray | None = None,
        backend: str = "unknown",
        semantic: bool = False,
        labels: np.ndarray | None = None,
        class_names: list[str] | None = None,
        probs_lowres: np.ndarray | None = None,
        meta: dict | None = None,
        lowres: tuple | None = None,
        *,
        compact: dict | None = None,
        build=None,
        shape: tuple[int, int] | None = None,
        dim: int | None = None,
        source: np.ndarray | None = None,
    ) -> None:
        self.backend = backend
        self.semantic = semantic
        self.labels = labels
        self.class_names = class_names
        self.probs_lowres = probs_lowres
        self.meta = {} if meta is None else meta
        self.lowres = lowres
        self.compact = compact
        self.source = source
        self._lock = threading.Lock()
        self._features = None
        if features is not None:
            self._features = features
            self._shape = tuple(features.shape[:2])
            self._dim = int(features.shape[2]) if features.ndim == 3 else 1
            self._build = None
            return
        if build is None and lowres is None:
            raise ValueError("FeatureMap needs features, lowres or build")
        if lowres is not None:
            lr, ys, xs = lowres
            shape = (len(ys), len(xs)) if shape is None else shape
            dim = int(lr.shape[2]) if dim is None else dim
            if build is None:
                def build():
                    return upsample(lr, ys, xs)
        if shape is None or dim is None:
            raise ValueError("a lazy FeatureMap needs shape and dim")
        self._shape = (int(shape[0]), int(shape[1]))
        self._dim = int(dim)
        self._build = build

    @property
    def features(self) -> np.ndarray:
        """(H, W, D) float32 (built on first access for a lazy map)."""
        f = self._features
        if f is None:
            with self._lock:
                if self._features is None:
                    f = np.ascontiguousarray(self._build(), dtype=np.float32)
                    if f.shape != (*self._shape, self._dim):
                        raise AssertionError(f"built features {f.shape} != {self._shape}")
                    self._features = f
                    self._build = None
                f = self._features
        return f

    @features.setter
    def features(self, value: np.ndarray) -> None:
        self._features = value
        self._build = None
        self._shape = tuple(value.shape[:2])
        self._dim = int(value.shape[2]) if value.ndim == 3 else 1

    def __getstate__(self) -> dict:  # pickling builds the map (the recipe may be a closure)
        d = self.__dict__.copy()
        d["_features"] = self.features
        d["_build"] = None
        del d["_lock"]
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)
        self._lock = threading.Lock()

    @property
    def materialised(self) -> bool:
        """True once ``features`` exists as a full-resolution array."""
        return self._features is not None

    def full(self) -> np.ndarray:
        """The full-resolution (H, W, D) float32 features (same as ``features``)."""
        return self.features

    def __repr__(self) -> str:
        state = "" if self.materialised else ", lazy"
        return (
            f"FeatureMap(backend={self.backend!r}, semantic={self.semantic}, "
            f"shape={self.shape}, dim={self.dim}{state})"
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def dim(self) -> int:
        return self._dim

    def probs(self, classes: list[int] | None = None) -> np.ndarray | None:
        """Class probabilities upsampled to the image size.

        Parameters
        ----------
        classes : list of class indices, optional (default all; 151 x H x W floats can be large).

        Returns
        -------
        (H, W, C') float32 or None if the backend has no classes.
        """
        if self.probs_lowres is None:
            return None
        p = self.probs_lowres if classes is None else self.probs_lowres[..., list(classes)]
        ys = (
            np.asarray(self.meta.get("grid_ys"), dtype=np.float64)
            if "grid_ys" in self.meta
            else None
        )
        xs = (
            np.asarray(self.meta.get("grid_xs"), dtype=np.float64)
            if "grid_xs" in self.meta
            else None
        )
        if ys is None or xs is None:
            ys = sample_coords(self.shape[0], p.shape[0])
            xs = sample_coords(self.shape[1], p.shape[1])
        return upsample(p, ys, xs)

    def present_classes(self, min_fraction: float = 0.0) -> list[tuple[int, str, float]]:
        """``(index, name, pixel fraction)`` of the labels present, largest first."""
        if self.labels is None or self.class_names is None:
            return []
        counts = np.bincount(np.asarray(self.labels).ravel(), minlength=len(self.class_names))
        total = max(1, int(counts.sum()))
        out = [
            (int(i), self.class_names[i], counts[i] / total)
            for i in np.nonzero(counts)[0]
            if counts[i] / total > min_fraction
        ]
        return sorted(out, key=lambda t: -t[2])


# ----------------------------------------------------------------------------------------------


def _as_image(image) -> np.ndarray:
    if isinstance(image, (str, Path)):
        from sempix.image import load_rgb

        image = load_rgb(image)
    return np.clip(as_rgb(image, grey_ok=True, finite=True), 0.0, 1.0)


def _resolve_model(backend: str) -> Path:
    """Path (file or directory) of the backend's model; raises ModelUnavailableError."""
    if backend == "ade20k":
        from sempix.features.ade20k import model_path

        return model_path()
    if backend == "segformer":
        from sempix.features.segformer import model_dir

        return model_dir()
    if backend in SEGFORMER_VARIANTS:
        from sempix.features.segformer import variant_dir

        return variant_dir(backend)
    raise AssertionError(backend)


def compute_features(
    image,
    backend: str = "ade20k",
    *,
    dim: int | None = None,
    reduce: str = "random",
    guided: bool = False,
    cache: bool = True,
    seed: int = 0,
    strict: bool = False,
    progress: ProgressFn | None = None,
    runtime: str | None = None,
    device: str | None = None,
) -> FeatureMap:
    """Per-pixel features of an image, aligned with it.

    Parameters
    ----------
    image : (H, W, 3) float32 in [0, 1] (uint8 / grey / RGBA arrays and file paths accepted)
    backend : {"ade20k", "segformer", "segformer-b0" .. "segformer-b5", "lowlevel"}
    dim : int, optional
        Output dimension; None = ``DEFAULT_DIM[backend]`` (3 with ``reduce="pca"``), 0 = all.
        A ``dim`` at or above the backend's channel count keeps all channels.
    reduce : {"random", "pca"}
        ``"random"``: seeded Gaussian random projection (distances preserved on average);
        ``"pca"``: per-image PCA, each output channel normalised to [0, 1].
    guided : bool
        Align feature edges with image edges by a colour guided filter (slower).
    cache : bool
        Use the on-disk cache (:mod:`sempix.features.cache`).
    seed : int
        Seed of the random projection (same seed -> same projection).
    strict : bool
        Raise :class:`ModelUnavailableError` instead of falling back to ``lowlevel``.
    progress : callable(fraction, message), optional
    runtime : {"auto", "litert", "torch"}, optional
        How the ade20k network runs (None = the process default, see
        :mod:`sempix.features.runtime`); part of the cache key.
    device : {"cpu", "cuda"}, optional
        Device of the torch runtime and of the SegFormer backends (None = default).

    Returns
    -------
    FeatureMap
        ``features`` (H, W, dim) float32; ``labels`` (H, W) int32 and ``class_names`` and
        ``probs_lowres`` (h, w, C) for semantic backends.
    """
    t0 = time.perf_counter()
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        close = difflib.get_close_matches(str(backend), BACKENDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"unknown feature backend {backend!r}{hint}; choose one of {', '.join(BACKENDS)}"
        )
    backend = backend.lower()
    if reduce not in REDUCE:
        raise InputError(f"unknown reduce={reduce!r}; choose 'random' or 'pca'")
    if dim is not None and (not isinstance(dim, (int, np.integer)) or dim < 0):
        raise InputError(f"dim must be a non-negative integer (got {dim!r})")
    from sempix.features.runtime import resolve_device, resolve_runtime

    run_on = resolve_runtime(runtime, device) if backend == "ade20k" else (None, None)
    if backend.startswith("segformer"):
        run_on = ("torch", resolve_device(device))
    img = _as_image(image)
    requested = backend
    fallback = None
    model_id = "lowlevel-v2"  # = sempix.features.lowlevel.VERSION (v2: box channels on a grid)
    model_p: Path | None = None
    if backend != "lowlevel":
        try:
            model_p = _resolve_model(backend)
            from sempix.features.cache import file_identity

            model_id = file_identity(model_p)
        except ModelUnavailableError as exc:
            if strict:
                raise
            fallback = f"{backend} model unavailable: lowlevel features used (not semantic)"
            warn_once(
                f"{backend} features unavailable: {str(exc).splitlines()[0]}; using the "
                "weight-free 'lowlevel' features instead (results are NOT semantic)",
                key=backend,
                logger=log.name,
            )
            backend = "lowlevel"
    if dim is None:
        dim_eff = 3 if reduce == "pca" else DEFAULT_DIM[backend]
    else:
        dim_eff = int(dim)
    settings = {
        "dim": dim_eff,
        "reduce": reduce,
        "guided": bool(guided),
        "seed": int(seed),
        "version": FEATURE_VERSION,
    }
    if backend == "ade20k":
        settings["runtime"] = run_on[0] if run_on[0] == "litert" else f"torch-{run_on[1]}"
    key = None
    if cache:
        from sempix.features import cache as fcache

        try:
            key = fcache.make_key(fcache.image_hash(img), backend, model_id, settings)
            hit = fcache.load(key, image=img)
        except OSError:
            hit = None
        if hit is not None:
            meta = dict(hit["meta"])
            meta.update(cache="hit", requested_backend=requested, time_s=time.perf_counter() - t0)
            if fallback:
                meta["fallback"] = fallback
            report(progress, 1.0, "features (cached)")
            return FeatureMap(
                features=hit["features"],
                backend=backend,
                semantic=backend != "lowlevel",
                labels=hit["labels"],
                class_names=meta.get("class_names"),
                probs_lowres=hit["probs_lowres"],
                meta=meta,
                lowres=hit["lowres"],
                compact=hit["compact"],
                build=hit["build"],
                shape=hit["shape"],
                dim=hit["dim"],
                source=hit["source"],
            )
    report(progress, 0.05, f"{backend} features")
    fm = _compute(img, backend, model_p, dim_eff, reduce, guided, seed, progress, run_on)
    fm.meta.update(settings)
    fm.meta.update(
        requested_backend=requested,
        model_id=model_id,
        time_s=time.perf_counter() - t0,
        cache="off" if not cache else "miss",
    )
    if fallback:
        fm.meta["fallback"] = fallback
    if cache and key is not None:
        from sempix.features import cache as fcache

        meta = {k: v for k, v in fm.meta.items() if k not in ("fallback",)}
        meta["class_names"] = fm.class_names
        try:
            fcache.store(
                key,
                {"features": fm.features, "labels": fm.labels, "probs_lowres": fm.probs_lowres,
                 "lowres": fm.lowres, "compact": fm.compact},
                meta,
            )
        except OSError as exc:  # a full or read-only disk must not break the tool
            log.debug("feature cache write failed: %s", exc)
    report(progress, 1.0, "features done")
    return fm


def _compute(
    img: np.ndarray,
    backend: str,
    model_p: Path | None,
    dim: int,
    reduce: str,
    guided: bool,
    seed: int,
    progress: ProgressFn | None,
    run_on: tuple = (None, None),
) -> FeatureMap:
    from sempix.features import post

    H, W = img.shape[:2]
    timings: dict[str, float] = {}
    t = time.perf_counter()
    meta: dict = {}
    compact = None  # how to rebuild the features from the image (lowlevel, guided)
    if backend == "lowlevel":
        from sempix.features.lowlevel import compact as lowlevel_compact
        from sempix.features.lowlevel import lowlevel_features

        feats = lowlevel_features(img)
        compact = lowlevel_compact(feats)
        ys = xs = None
        logits = None
        names = None
    else:
        if backend == "ade20k":
            from sempix.features.ade20k import compute_lowres

            lr = compute_lowres(img, model_p, runtime=run_on[0], device=run_on[1])
        else:
            from sempix.features.segformer import compute_lowres

            lr = compute_lowres(img, model_p, device=run_on[1] or "cpu")
        feats, logits, ys, xs, names = lr.features, lr.logits, lr.ys, lr.xs, lr.class_names
        meta.update(lr.meta)
    timings["network"] = time.perf_counter() - t
    report(progress, 0.5, "reducing")
    native = feats.shape[-1]
    t = time.perf_counter()
    if dim and reduce == "random" and dim < native:
        feats = post.project_random(feats, dim, seed)
        if compact is not None:
            compact["project"] = post.random_projection(native, dim, seed)
    elif reduce == "pca":
        feats = post.pca_reduce(feats, min(dim or 3, native), seed=seed)[0]
        compact = None  # a per-image basis: stored as full-resolution float16
    timings["reduce"] = time.perf_counter() - t
    report(progress, 0.6, "upsampling")
    t = time.perf_counter()
    lowres = None
    if ys is not None:
        lowres = (np.ascontiguousarray(feats, dtype=np.float32), ys, xs)
        feats = post.upsample(feats, ys, xs)
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    timings["upsample"] = time.perf_counter() - t
    if guided:
        report(progress, 0.75, "guided filter")
        t = time.perf_counter()
        lo_hi = (feats.min(axis=(0, 1)), feats.max(axis=(0, 1))) if reduce == "pca" else None
        radius = max(2, round(max(H, W) / 128))
        feats = post.guided_filter(img, feats, radius=radius, eps=1e-3)
        if lo_hi is not None:  # keep PCA output in [0, 1]
            feats = np.clip(feats, 0.0, 1.0)
        base = compact
        if lowres is not None:
            base = {"features_lowres": lowres[0].astype(np.float16),
                    "grid_ys": np.asarray(ys, np.float64), "grid_xs": np.asarray(xs, np.float64)}
        compact = None
        if base is not None:  # stored as what it is computed from, filtered again on use
            compact = dict(base, guided=np.array([radius, 1e-3, float(lo_hi is not None)]))
        lowres = None  # no longer an upsampling of the network-resolution map
        timings["guided"] = time.perf_counter() - t
    labels = probs = None
    if logits is not None:
        report(progress, 0.9, "labels")
        t = time.perf_counter()
        labels = post.argmax_upsampled(logits, ys, xs)
        probs = post.softmax(logits)
        timings["labels"] = time.perf_counter() - t
        meta["grid_ys"] = np.asarray(ys).round(5).tolist()
        meta["grid_xs"] = np.asarray(xs).round(5).tolist()
    meta.update(native_dim=int(native), timings=timings, image_shape=[H, W])
    return FeatureMap(
        features=feats,
        backend=backend,
        semantic=backend != "lowlevel",
        labels=labels,
        class_names=list(names) if names is not None else None,
        probs_lowres=probs,
        meta=meta,
        lowres=lowres,
        compact=compact,
        source=img if compact is not None else None,
    )


def class_mask(fm: FeatureMap, names) -> np.ndarray:
    """Pixels labelled with any of the class ``names``.

    Parameters
    ----------
    fm : FeatureMap with labels (a semantic backend)
    names : str or iterable of str (case-insensitive; ``"tree"`` or ``"tree,grass"``)

    Returns
    -------
    (H, W) bool

    Raises
    ------
    InputError
        If the map has no labels or a name is unknown (the message lists close matches).
    """
    if fm.labels is None or not fm.class_names:
        raise InputError(
            f"the {fm.backend!r} features have no class labels; use a semantic backend (ade20k)"
        )
    if isinstance(names, str):
        names = [n for n in names.split(",")]
    lookup = {n.lower(): i for i, n in enumerate(fm.class_names)}
    idx = []
    for n in names:
        k = str(n).strip().lower()
        if k in lookup:
            idx.append(lookup[k])
            continue
        close = difflib.get_close_matches(k, list(lookup), n=3, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "; see `sempix features --list-classes` for the class names"
        )
        raise InputError(f"unknown class name {str(n).strip()!r}{hint}")
    return np.isin(np.asarray(fm.labels), np.asarray(idx, dtype=np.int32))
