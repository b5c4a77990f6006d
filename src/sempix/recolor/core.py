"""Multi-image colour consistency: the whole pipeline (analyse -> solve -> render).

1. **White balance** (:mod:`sempix.recolor.whitebalance`): per image ``auto`` (mean Delta-E rule,
   d_wb = 20), ``on`` or ``off``.
2. **Analysis** on a copy whose longest side is :data:`ANALYSIS_SIDE` px: source palette
   (``sempix.palette.extract_palette``), saliency map (built-in ``rbd`` or learned ``u2netp``,
   :mod:`sempix.recolor.saliency`; ``saliency_backend``/``saliency_model``) and ADE20K labels when
   asked (for rbd's semantic prior and for semantic grouping; u2netp needs none). Each analysis
   pixel belongs to its nearest palette colour (Lab).
3. **Grouping** of the source colours: one group (``"all"``); or saliency-guided sub-palettes
   (``"salient"``/``"background"``): a colour is salient when the share of the salient region
   (saliency > 0.9) that it covers is larger than the share of the non-salient region it covers
   (Xue et al. 2023, Eq. 3.2); or semantics-guided: the coarse ADE20K class (sky, vegetation,
   water, ground, building, mountain, person, vehicle, animal, other) covering most of its pixels.
4. **Group palettes**: :func:`sempix.recolor.solver.solve_group_palette` per group, or an external
   palette; optional harmonization of the group colours (``sempix.palette.harmonize_colors``).
5. **Colour-naming association** (d_name = 0.8): a source colour is not associated with a group
   colour when the name-probability vectors of the source colour and of the colour it would become
   (source L, group a/b) differ by more than d_name (Euclidean). As safeguards the target is pulled
   back along the ab line until its most probable name equals the source colour's, and every colour
   of the rendered transform (the 33^3 look-up table) whose most probable name would change is
   pulled back along its sRGB displacement until it keeps its name (:func:`name_guard`).
6. **Rendering**: every source colour moves to (its L, its group colour's a/b) by IDW palette
   recolouring (``sempix.palette.recolor_palette``); white balance and recolouring are sampled
   together on a 33^3 RGB look-up table and applied to the full-resolution image (trilinear).
   With colour naming on (and solver colours), trilinear interpolation between guarded grid colours
   can still cross a name boundary, so every *pixel* is then checked against the same pixel of the
   white-balanced input (white balance is meant to change colours; the guarantee is about the
   recolouring) and moved back along its displacement until it keeps its basic name
   (:func:`sempix.recolor.lut.guard_names`, numba).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sempix.color import delta_e, lab_to_srgb, srgb_to_lab
from sempix.errors import InputError
from sempix.ops.resample import resize
from sempix.palette import (
    extract_palette,
    harmonize_colors,
    name_index,
    name_probabilities,
    name_table,
    recolor_palette,
)
from sempix.progress import ProgressFn, report
from sempix.recolor.lut import GUARD_SOFT, apply_lut, build_lut, guard_names
from sempix.recolor.saliency import (
    SALIENCY_THRESHOLD,
    compute_saliency,
    default_backend,
    resolve_backend,
    semantic_labels,
)
from sempix.recolor.solver import DEFAULT_RHO, DEFAULT_TAU, default_group_size, solve_group_palette
from sempix.recolor.whitebalance import D_WB, apply_gains, white_balance

ANALYSIS_SIDE = 320
D_NAME = 0.8
SALIENCY_MODES = ("both", "background", "off")

SEMANTIC_GROUPS: dict[str, tuple[str, ...]] = {
    "sky": ("sky",),
    "vegetation": ("tree", "grass", "plant", "field", "palm", "flower"),
    "water": ("water", "sea", "river", "lake", "pool", "swimming", "waterfall"),
    "ground": (
        "floor",
        "road",
        "sidewalk",
        "earth",
        "sand",
        "path",
        "dirt",
        "land",
        "runway",
        "rug",
    ),
    "building": (
        "wall",
        "building",
        "house",
        "skyscraper",
        "ceiling",
        "windowpane",
        "door",
        "column",
        "tower",
        "fence",
        "bridge",
        "hovel",
        "railing",
        "stairs",
        "stairway",
    ),
    "mountain": ("mountain", "hill", "rock"),
    "person": ("person",),
    "vehicle": ("car", "bus", "truck", "van", "boat", "ship", "airplane", "bicycle", "minibike"),
    "animal": ("animal",),
}


def coarse_class(name: str) -> str:
    """Coarse semantic group of an ADE20K class name (``"other"`` if none)."""
    key = name.split(",")[0].split()[0].lower() if name else ""
    for group, members in SEMANTIC_GROUPS.items():
        if key in members:
            return group
    return "other"


@dataclass
class ImageAnalysis:
    """Per-image analysis (analysis resolution).

    Attributes
    ----------
    wb_applied : whether white balance is used for this image.
    wb_delta_e : mean Delta-E of the white-balance correction.
    wb_gains : (3,) linear-RGB gains of the correction.
    src_lab, src_rgb : (n, 3) source palette (after white balance).
    weights : (n,) pixel shares.
    groups : list of n group names (``"all"``, ``"salient"``, ``"background"`` or a semantic group).
    saliency : (h, w) float32 saliency at analysis size, or None.
    salient_share : (n, 2) float32 share of the salient / non-salient region covered by each colour.
    pixel_colour : (h, w) int index of the nearest palette colour for each analysis pixel.
    small : (h, w, 3) analysis image after white balance.
    wb_dominance : single-colour dominance of the image (white-balance safeguard).
    wb_strength : exponent applied to the white-balance gains (1 = full correction).
    """

    wb_applied: bool
    wb_delta_e: float
    wb_gains: np.ndarray
    src_lab: np.ndarray
    src_rgb: np.ndarray
    weights: np.ndarray
    groups: list[str]
    saliency: np.ndarray | None
    salient_share: np.ndarray | None
    pixel_colour: np.ndarray
    small: np.ndarray
    wb_dominance: float = 0.0
    wb_strength: float = 1.0


@dataclass
class CollectionSolution:
    """Solved collection.

    Attributes
    ----------
    analyses : one :class:`ImageAnalysis` per image.
    group_lab : (G, 3) float32 group colours (all sub-groups concatenated).
    group_names : list of G sub-group names (which sub-palette each group colour serves).
    assignments : list of (n_i,) int arrays, index into ``group_lab`` or -1 (not mapped).
    broken : list of (n_i,) bool, associations broken by colour naming.
    options : the settings used.
    stats : counters (associations, broken by naming, clamped targets, solver iterations).
    """

    analyses: list[ImageAnalysis]
    group_lab: np.ndarray
    group_names: list[str]
    assignments: list[np.ndarray]
    broken: list[np.ndarray]
    options: dict
    stats: dict = field(default_factory=dict)

    @property
    def group_rgb(self) -> np.ndarray:
        return lab_to_srgb(self.group_lab, gamut="clip")

    def targets(
        self, group_lab: np.ndarray | None = None, keep_names: bool | None = None
    ) -> list[np.ndarray]:
        """Target Lab colour of every source colour: (L_src, a_g, b_g), or the source if unmapped.

        ``keep_names`` (default: naming on and no user-edited ``group_lab``) pulls targets back
        until
        they keep the source colour's basic name; colours edited by the user are taken as they are.
        """
        g = self.group_lab if group_lab is None else np.asarray(group_lab, np.float32)
        names_on = self.options.get("names") is not None if keep_names is None else keep_names
        if keep_names is None and group_lab is not None:
            names_on = False
        out = []
        clamped = 0
        for an, a in zip(self.analyses, self.assignments):
            t = an.src_lab.copy()
            m = a >= 0
            t[m, 1:] = g[a[m], 1:]
            if names_on and m.any():
                t, c = _keep_names(an.src_lab, t, m)
                clamped += c
                # final check on the whole palette at once (colours exactly on a bin edge of the
                # naming table can round either way): any remaining change falls back to no change
                n_s = name_index(lab_to_srgb(an.src_lab, gamut="clip"))
                n_t = name_index(lab_to_srgb(t, gamut="clip"))
                t[n_s != n_t] = an.src_lab[n_s != n_t]
            out.append(t.astype(np.float32))
        self.stats["clamped_by_names"] = clamped
        return out


def _name_vectors_for_targets(src_lab: np.ndarray, group_lab: np.ndarray) -> np.ndarray:
    t = np.repeat(src_lab[:, None, :], len(group_lab), axis=1).astype(np.float32)
    t[..., 1:] = group_lab[None, :, 1:]
    return name_probabilities(lab_to_srgb(t, gamut="clip"))


def naming_forbid(d_name: float = D_NAME):
    """Return ``forbid(src_lab (n,3), group_lab (K,3)) -> (n,
    K) bool`` for the colour-naming rule."""

    def forbid(src_lab: np.ndarray, group_lab: np.ndarray) -> np.ndarray:
        ps = name_probabilities(lab_to_srgb(np.asarray(src_lab, np.float32), gamut="clip"))
        pt = _name_vectors_for_targets(
            np.asarray(src_lab, np.float32), np.asarray(group_lab, np.float32)
        )
        return np.linalg.norm(pt - ps[:, None, :], axis=-1) > d_name

    return forbid


def _keep_names(src: np.ndarray, tgt: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Pull targets back along the ab line until their most probable name equals the source's."""
    tgt = tgt.copy()
    src_names = name_index(lab_to_srgb(src, gamut="clip"))
    clamped = 0
    for j in np.flatnonzero(mask):
        full = tgt[j].copy()

        def cand(t: float, j: int = int(j), full: np.ndarray = full) -> np.ndarray:
            if t >= 1.0:
                return full.copy()
            c = src[j].copy()
            c[1:] = src[j, 1:] + np.float32(t) * (full[1:] - src[j, 1:])
            return c

        def same(t: float, j: int = int(j)) -> bool:
            return int(name_index(lab_to_srgb(cand(t), gamut="clip"))) == int(src_names[j])

        if same(1.0):
            continue
        lo, hi = 0.0, 1.0
        for _ in range(12):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if same(mid) else (lo, mid)
        tgt[j] = cand(lo)
        clamped += 1
    return tgt, clamped


def name_guard(before: np.ndarray, after: np.ndarray, steps: int = 8) -> np.ndarray:
    """Keep basic colour names: move each changed colour back towards ``before`` until its name is
    kept.

    Parameters
    ----------
    before, after : (..., 3) float32 sRGB colours (e.g. the LUT grid before and after recolouring).
    steps : bisection steps along the straight line in sRGB.

    Returns
    -------
    (..., 3) float32: ``after`` where the most probable name equals that of ``before``, otherwise
    the farthest point ``before + t (after - before)`` (t in [0, 1], bisection) that keeps the name.
    """
    b = np.asarray(before, np.float32).reshape(-1, 3)
    a = np.asarray(after, np.float32).reshape(-1, 3)
    n0 = name_index(b)
    bad = np.flatnonzero(name_index(a) != n0)
    out = a.copy()
    if len(bad):
        lo = np.zeros(len(bad), np.float32)
        hi = np.ones(len(bad), np.float32)
        d = a[bad] - b[bad]
        for _ in range(steps):
            mid = (lo + hi) / 2
            ok = name_index(b[bad] + mid[:, None] * d) == n0[bad]
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        out[bad] = b[bad] + lo[:, None] * d
    return out.reshape(np.shape(after))


def downsize(image: np.ndarray, max_side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Area-averaged copy with the longest side at most ``max_side`` (float32)."""
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return np.asarray(image, np.float32)
    return resize(image, (max(1, round(h * s)), max(1, round(w * s))), filter="box")


def _check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(images) == 0:
        raise InputError("give at least one image")
    out = []
    for i, im in enumerate(images):
        a = np.asarray(im, np.float32)
        if a.ndim != 3 or a.shape[2] != 3:
            raise InputError(f"image {i}: expected (H, W, 3) RGB, got shape {a.shape}")
        out.append(a)
    return out


def parse_wb(wb: str | Sequence, n: int) -> list[str]:
    """Per-image white-balance modes from ``"auto"``, ``"off"``, ``"on"``, ``"0,2"`` (those images
    on,
    the others off) or a sequence of ``"auto"|"on"|"off"|bool``."""
    if isinstance(wb, str):
        s = wb.strip().lower()
        if s in ("auto", "off", "on"):
            return [s] * n
        try:
            idx = {int(x) for x in s.split(",") if x.strip()}
        except ValueError:
            raise InputError(
                f"wb must be auto, off, on or image indices like 0,2 (got {wb!r})"
            ) from None
        bad = [i for i in idx if not 0 <= i < n]
        if bad:
            raise InputError(f"wb index {bad[0]} out of range: there are {n} images (0..{n - 1})")
        return ["on" if i in idx else "off" for i in range(n)]
    modes = []
    for m in wb:
        m = {True: "on", False: "off", None: "auto"}.get(m, m) if not isinstance(m, str) else m
        if m not in ("auto", "on", "off"):
            raise InputError(f"white-balance mode must be auto, on or off, not {m!r}")
        modes.append(m)
    if len(modes) != n:
        raise InputError(f"got {len(modes)} white-balance modes for {n} images")
    return modes


def _saliency_cache_key(backend: str, model: str | os.PathLike | None, with_labels: bool) -> tuple:
    """Cache key of a saliency map: backend, model file identity (path, mtime, size) and the prior
    used."""
    if model is None:
        ident = None
    else:
        p = Path(model)
        try:
            st = p.stat()
            ident = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        except OSError:
            ident = (str(p), None, None)
    return ("saliency", backend, ident, with_labels)


def _resolve_saliency(
    backend: str | None, model: str | os.PathLike | None
) -> tuple[str, Path | None]:
    """Concrete ``(backend, u2netp file or None)``; None = the
    :func:`~sempix.recolor.saliency.use_backend` default."""
    if backend is None:
        backend, ctx_model = default_backend()
        model = ctx_model if model is None else model
    return resolve_backend(backend, model)


def analyse_image(
    image: np.ndarray,
    *,
    wb: str = "auto",
    saliency: bool = True,
    semantic: bool = False,
    features: str = "ade20k",
    cache: dict | None = None,
    wb_method: str = "shades-of-grey",
    d_wb: float = D_WB,
    saliency_backend: str | None = None,
    saliency_model: str | os.PathLike | None = None,
) -> ImageAnalysis:
    """Analyse one image (white balance, palette, saliency, semantic groups); see the module doc.

    Parameters
    ----------
    image : (H, W, 3) float32 sRGB in [0, 1].
    wb : ``"auto"``, ``"on"`` or ``"off"``.
    saliency : compute the saliency map and the salient / background grouping.
    semantic : group colours by coarse ADE20K class (needs labels).
    features : feature backend of the labels (``"none"``/``"lowlevel"``: no labels).
    cache : dict kept between calls for the same image (analysis copy, labels, saliency maps).
        Saliency maps are keyed by backend, model file (path, mtime, size) and whether the
        semantic prior was used, so switching backend or model never reuses a stale map; a map
        of another model file of the same backend is dropped when a new one is stored.
    wb_method, d_wb : white-balance method and Delta-E threshold.
    saliency_backend : ``"rbd"``, ``"u2netp"``, ``"auto"`` or None (the
        :func:`~sempix.recolor.saliency.use_backend` default, ``"rbd"`` unless set).
    saliency_model : explicit u2netp ONNX file or folder (None = model store).

    Returns
    -------
    ImageAnalysis
    """
    cache = {} if cache is None else cache
    small0 = cache.get("small0")
    if small0 is None:
        small0 = cache["small0"] = downsize(image)
    wbr = white_balance(small0, mode=wb, method=wb_method, d_wb=d_wb)
    small = wbr.image
    sal_backend, sal_path = (
        _resolve_saliency(saliency_backend, saliency_model) if saliency else (None, None)
    )
    # the learned backend does not use the semantic "thing" prior: no labels just for saliency
    need_labels = semantic or (saliency and sal_backend == "rbd")
    labels = None
    if need_labels and features not in ("none", "lowlevel"):
        if "labels" not in cache:
            cache["labels"] = semantic_labels(small0, features)
        labels = cache["labels"]
    if semantic and labels is None:
        raise InputError(
            "semantic recolouring needs a semantic feature backend (ade20k/segformer) that is "
            "available"
        )
    sal = None
    if saliency:
        use_labels = labels if sal_backend == "rbd" else None
        key = _saliency_cache_key(sal_backend, sal_path, use_labels is not None)
        if key not in cache:
            for k in [
                k for k in cache if isinstance(k, tuple) and k[:2] == key[:2] and k[2] != key[2]
            ]:
                del cache[k]  # an older file of the same backend
            cache[key] = compute_saliency(
                small0, labels=use_labels, backend=sal_backend, model=sal_path
            ).saliency
        sal = cache[key]
    pal = extract_palette(small)
    src_lab = np.asarray(pal.lab, np.float32)
    lab_px = srgb_to_lab(small).reshape(-1, 3)
    d = ((lab_px[:, None, :] - src_lab[None]) ** 2).sum(-1)
    pix = np.argmin(d, axis=1).reshape(small.shape[:2])
    n = len(src_lab)
    groups = ["all"] * n
    share = None
    if sal is not None:
        smask = sal > SALIENCY_THRESHOLD
        ns, nb = max(int(smask.sum()), 1), max(int((~smask).sum()), 1)
        cin = np.bincount(pix[smask], minlength=n) / ns
        cout = np.bincount(pix[~smask], minlength=n) / nb
        share = np.stack([cin, cout], 1).astype(np.float32)
        groups = ["salient" if smask.any() and cin[j] > cout[j] else "background" for j in range(n)]
    if semantic and labels is not None:
        lab_map, names = labels
        coarse = np.array([coarse_class(nm) for nm in names])
        cls = coarse[np.clip(lab_map, 0, len(names) - 1)]
        groups = []
        for j in range(n):
            vals, cnt = np.unique(cls[pix == j], return_counts=True)
            groups.append(str(vals[np.argmax(cnt)]) if len(vals) else "other")
    return ImageAnalysis(
        wbr.applied,
        wbr.delta_e,
        wbr.gains,
        src_lab,
        lab_to_srgb(src_lab, gamut="clip"),
        np.asarray(pal.weights, np.float32),
        groups,
        sal,
        share,
        pix,
        small,
        wbr.dominance,
        wbr.strength,
    )


def parse_palette(text: str) -> np.ndarray:
    """``"#aabbcc,#112233"`` -> (k, 3) float32 sRGB; :class:`InputError` if malformed."""
    from sempix.color import parse_color

    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise InputError("the palette needs at least one colour like '#aabbcc'")
    cols = []
    for p in parts:
        try:
            cols.append(parse_color(p))
        except ValueError:
            raise InputError(
                f"palette: not a hex colour: {p!r} (use hex colours like '#aabbcc,#112233')"
            ) from None
    return np.stack(cols).astype(np.float32)


def solve_collection(
    images: Sequence[np.ndarray],
    *,
    group_size: int | None = None,
    wb: str | Sequence = "auto",
    saliency: str = "both",
    semantic: bool = False,
    names: float | None = D_NAME,
    harmonize: bool = False,
    palette: np.ndarray | None = None,
    features: str = "ade20k",
    rho: float = DEFAULT_RHO,
    tau: float = DEFAULT_TAU,
    seed: int = 0,
    caches: list[dict] | None = None,
    progress: ProgressFn | None = None,
    saliency_backend: str | None = None,
    saliency_model: str | os.PathLike | None = None,
) -> CollectionSolution:
    """Analyse a collection and solve its group palette(s).

    Parameters
    ----------
    images : sequence of (H_i, W_i, 3) float32 sRGB images in [0, 1].
    group_size : group colours per (sub-)group; default = mean number of source colours.
    wb : white balance, see :func:`parse_wb`.
    saliency : ``"both"`` (salient and non-salient sub-palettes, both matched), ``"background"``
        (only non-salient colours are matched) or ``"off"``.
    semantic : group colours by coarse ADE20K class instead of saliency (needs labels).
    names : d_name of the colour-naming association, or None to disable.
    harmonize : replace group colours by their harmonization prototypes.
    palette : (k, 3) float32 sRGB external palette (replaces the solved group palette), or None.
    features : feature backend for the semantic prior / grouping (``"none"`` to skip).
    rho, tau : solver terms (see :mod:`sempix.recolor.solver`).
    caches : optional per-image dicts reused between calls (web editor).
    saliency_backend : ``"rbd"`` (built-in), ``"u2netp"`` (learned; model store, may download) or
        ``"auto"`` (u2netp when present locally, else rbd with one warning line); None = the
        :func:`~sempix.recolor.saliency.use_backend` default (``"rbd"`` unless set). Resolved once
        for the whole collection and only when saliency is used (``saliency != "off"`` and not
        ``semantic``); the concrete backend is recorded in ``options["saliency_backend"]``.
    saliency_model : explicit u2netp ONNX file or folder (None = model store).

    Returns
    -------
    CollectionSolution

    Raises
    ------
    ModelUnavailableError
        ``u2netp`` asked for but onnxruntime or the model file is not available (one line).
    """
    imgs = _check_images(images)
    if saliency not in SALIENCY_MODES:
        raise InputError(f"saliency must be one of {', '.join(SALIENCY_MODES)}, not {saliency!r}")
    if names is not None and not names > 0:
        raise InputError("names must be a positive distance (e.g. 0.8) or off")
    modes = parse_wb(wb, len(imgs))
    caches = caches if caches is not None else [{} for _ in imgs]
    if len(caches) != len(imgs):
        raise InputError(f"got {len(caches)} caches for {len(imgs)} images")
    use_sal = saliency != "off" and not semantic
    # resolve once: every image gets the same backend (and at most one warning / download)
    sal_backend, sal_path = (
        _resolve_saliency(saliency_backend, saliency_model) if use_sal else (None, None)
    )
    analyses = []
    for i, img in enumerate(imgs):
        report(progress, 0.8 * i / len(imgs), f"analysing image {i + 1}/{len(imgs)}")
        analyses.append(
            analyse_image(
                img,
                wb=modes[i],
                saliency=use_sal,
                semantic=semantic,
                features=features,
                cache=caches[i],
                saliency_backend=sal_backend,
                saliency_model=sal_path,
            )
        )
    report(progress, 0.8, "solving group palette")
    sol = solve_analyses(
        analyses,
        group_size=group_size,
        saliency=saliency,
        semantic=semantic,
        names=names,
        harmonize=harmonize,
        palette=palette,
        features=features,
        rho=rho,
        tau=tau,
        seed=seed,
        wb_modes=modes,
        saliency_backend=sal_backend,
        saliency_model_file=sal_path,
    )
    report(progress, 0.85, "group palette solved")
    return sol


def solve_analyses(
    analyses: Sequence[ImageAnalysis],
    *,
    group_size: int | None = None,
    saliency: str = "both",
    semantic: bool = False,
    names: float | None = D_NAME,
    harmonize: bool = False,
    palette: np.ndarray | None = None,
    features: str = "ade20k",
    rho: float = DEFAULT_RHO,
    tau: float = DEFAULT_TAU,
    seed: int = 0,
    wb_modes: Sequence[str] | None = None,
    saliency_backend: str | None = None,
    saliency_model_file: str | os.PathLike | None = None,
) -> CollectionSolution:
    """Solve the group palette(s) of already analysed images (the reduce step of a collection).

    :func:`solve_collection` is :func:`analyse_image` on every image followed by this function; a
    batch run (``sempix.batch``) analyses the images in parallel on several processes or machines
    and calls this once. Only ``src_lab``, ``weights`` and ``groups`` of each analysis are read,
    so analyses stripped of their pixel arrays (``small``, ``saliency``, ``pixel_colour``) solve
    the same.

    Parameters
    ----------
    analyses : one :class:`ImageAnalysis` per image (from :func:`analyse_image`).
    group_size, saliency, semantic, names, harmonize, palette, features, rho, tau, seed :
        as in :func:`solve_collection` (``saliency`` and ``semantic`` must match the analyses).
    wb_modes : the per-image white-balance modes used (recorded in ``options["wb"]``).
    saliency_backend, saliency_model_file : the saliency backend and model used (recorded).

    Returns
    -------
    CollectionSolution
    """
    analyses = list(analyses)
    if not analyses:
        raise InputError("give at least one image")
    if saliency not in SALIENCY_MODES:
        raise InputError(f"saliency must be one of {', '.join(SALIENCY_MODES)}, not {saliency!r}")
    modes = list(wb_modes) if wb_modes is not None else [None] * len(analyses)
    sal_path = saliency_model_file
    sal_backend = saliency_backend
    group_order: list[str] = []
    for an in analyses:
        for g in an.groups:
            if g not in group_order:
                group_order.append(g)
    if saliency == "background" and not semantic:
        solve_groups = [g for g in group_order if g != "salient"]
    else:
        solve_groups = group_order
    forbid = naming_forbid(names) if names is not None else None
    fixed_lab = (
        None if palette is None else srgb_to_lab(np.asarray(palette, np.float32).reshape(-1, 3))
    )
    group_lab: list[np.ndarray] = []
    group_names: list[str] = []
    assignments = [np.full(len(an.src_lab), -1, np.int64) for an in analyses]
    broken = [np.zeros(len(an.src_lab), bool) for an in analyses]
    iters = []
    for g in solve_groups:
        idx = [
            np.array([j for j, gg in enumerate(an.groups) if gg == g], np.int64) for an in analyses
        ]
        pals = [an.src_lab[ix] for an, ix in zip(analyses, idx)]
        ws = [an.weights[ix] for an, ix in zip(analyses, idx)]
        if sum(len(p) for p in pals) == 0:
            continue
        k = group_size if group_size is not None else default_group_size(pals)
        sol = solve_group_palette(
            pals, ws, k, rho=rho, tau=tau, forbid=forbid, fixed=fixed_lab, seed=seed
        )
        gl = sol.lab.copy()
        if harmonize:
            gl = srgb_to_lab(harmonize_colors(lab_to_srgb(gl, gamut="clip")))
        offset = sum(len(x) for x in group_lab)
        group_lab.append(gl)
        group_names += [g] * len(gl)
        iters.append(sol.iterations)
        for i, ix in enumerate(idx):
            a = sol.assignments[i]
            if harmonize and forbid is not None and len(ix):
                # harmonized colours can move: re-check the naming rule on the final group colours
                fb = forbid(pals[i], gl)
                a = np.where((a >= 0) & fb[np.arange(len(a)), np.maximum(a, 0)], -1, a)
            assignments[i][ix] = np.where(a >= 0, a + offset, -1)
            broken[i][ix] = sol.forbidden_best[i]
    glab = (
        np.concatenate(group_lab).astype(np.float32) if group_lab else np.zeros((0, 3), np.float32)
    )
    n_col = int(sum(len(a) for a in assignments))
    stats = {
        "colours": n_col,
        "associated": int(sum((a >= 0).sum() for a in assignments)),
        "broken_by_names": int(sum(b.sum() for b in broken)),
        "solver_iterations": iters,
        "wb_applied": [an.wb_applied for an in analyses],
        "wb_delta_e": [round(an.wb_delta_e, 2) for an in analyses],
        "wb_dominance": [round(an.wb_dominance, 2) for an in analyses],
        "wb_strength": [round(an.wb_strength, 2) for an in analyses],
    }
    opts = {
        "group_size": group_size,
        "wb": modes,
        "saliency": saliency,
        "semantic": semantic,
        "names": names,
        "harmonize": harmonize,
        "external_palette": palette is not None,
        "features": features,
        "rho": rho,
        "tau": tau,
        "saliency_backend": sal_backend,
        "saliency_model_file": None if sal_path is None else str(sal_path),
    }
    return CollectionSolution(analyses, glab, group_names, assignments, broken, opts, stats)


def color_transforms(
    solution: CollectionSolution, *, group_lab: np.ndarray | None = None, include_wb: bool = True
) -> list:
    """Per-image colour transforms ``f(rgb (..., 3)) -> (..., 3)`` (white balance + recolouring).

    ``None`` in the list means the identity. With colour naming on (and solver colours), the
    recolouring is followed by :func:`name_guard` (grid colours); :func:`render_image` adds the
    per-pixel guard.
    """
    targets = solution.targets(group_lab)
    guard = pixel_guard_on(solution, group_lab)
    fns = []
    for an, tgt in zip(solution.analyses, targets):
        gains = an.wb_gains if (an.wb_applied and include_wb) else None
        moved = bool(np.any(np.abs(tgt - an.src_lab) > 1e-6))
        if gains is None and not moved:
            fns.append(None)
            continue

        def fn(rgb: np.ndarray, gains=gains, an=an, tgt=tgt, moved=moved) -> np.ndarray:
            x = apply_gains(rgb, gains) if gains is not None else np.asarray(rgb, np.float32)
            if not moved:
                return x
            y = recolor_palette(x, an.src_lab, tgt)
            return name_guard(x, y) if guard else y

        fns.append(fn)
    return fns


def pixel_guard_on(solution: CollectionSolution, group_lab: np.ndarray | None = None) -> bool:
    """Whether rendering guards basic colour names per pixel: naming on and solver (not user)
    colours."""
    return solution.options.get("names") is not None and group_lab is None


def render_image(
    image: np.ndarray,
    analysis: ImageAnalysis,
    fn,
    *,
    guard: bool,
    include_wb: bool = True,
    soft: float = GUARD_SOFT,
    stats: dict | None = None,
) -> np.ndarray:
    """Apply one image's colour transform at full resolution (LUT), then the per-pixel name guard.

    Parameters
    ----------
    image : (H, W, 3) float32 original image (before white balance).
    analysis : the image's :class:`ImageAnalysis` (white-balance decision and gains).
    fn : its transform from :func:`color_transforms` (None = identity).
    guard : keep every pixel's basic name (compared with the white-balanced input).
    include_wb : whether ``fn`` includes the white balance (as in :func:`color_transforms`).
    soft : ramp width of the guard (see :func:`sempix.recolor.lut.guard_names`).
    stats : optional dict; ``"guarded_pixels"`` is increased by the number of pixels moved back.

    Returns
    -------
    (H, W, 3) float32.
    """
    img = np.asarray(image, np.float32)
    if fn is None:
        return img.copy()
    out = apply_lut(img, build_lut(fn))
    if guard:
        wb_on = include_wb and analysis.wb_applied
        ref = apply_gains(img, analysis.wb_gains) if wb_on else img
        out, n = guard_names(ref, out, name_table(), soft=soft)
        if stats is not None:
            stats["guarded_pixels"] = stats.get("guarded_pixels", 0) + n
    return out


def render(
    solution: CollectionSolution,
    images: Sequence[np.ndarray],
    *,
    group_lab: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> list[np.ndarray]:
    """Recolour full-resolution images with a solution (optionally with edited group colours).

    With colour naming on and solver colours (``group_lab`` None), no pixel changes its basic colour
    name with respect to the white-balanced input (:func:`render_image`); user-edited group colours
    are rendered as they are.

    Parameters
    ----------
    solution : from :func:`solve_collection` (same images, same order).
    images : the original (H_i, W_i, 3) float32 images.
    group_lab : (G, 3) Lab group colours replacing ``solution.group_lab`` (e.g. edited by the user).

    Returns
    -------
    list of (H_i, W_i, 3) float32 images.
    """
    imgs = _check_images(images)
    if len(imgs) != len(solution.analyses):
        raise InputError("render() needs the same images as solve_collection()")
    if group_lab is not None and np.asarray(group_lab).shape != solution.group_lab.shape:
        raise InputError(f"group palette must have shape {solution.group_lab.shape}")
    guard = pixel_guard_on(solution, group_lab)
    solution.stats["guarded_pixels"] = 0
    out = []
    fns = color_transforms(solution, group_lab=group_lab)
    for i, (img, an, fn) in enumerate(zip(imgs, solution.analyses, fns)):
        out.append(render_image(img, an, fn, guard=guard, stats=solution.stats))
        report(progress, 0.85 + 0.15 * (i + 1) / len(imgs), f"recoloured image {i + 1}/{len(imgs)}")
    return out


@dataclass
class RecolorResult:
    """Outputs of :func:`recolor_collection`: ``images`` (list
    of (H, W, 3) f32) and the solution."""

    images: list[np.ndarray]
    solution: CollectionSolution


def recolor_collection(
    images: Sequence[np.ndarray], progress: ProgressFn | None = None, **options
) -> RecolorResult:
    """Make a collection's colours consistent: :func:`solve_collection` then :func:`render`.

    ``options`` are the keyword arguments of :func:`solve_collection`.
    """
    sol = solve_collection(images, progress=progress, **options)
    return RecolorResult(render(sol, images, progress=progress), sol)


def palette_distance(
    lab_a: np.ndarray, w_a: np.ndarray, lab_b: np.ndarray, w_b: np.ndarray
) -> float:
    """Symmetric weighted mean nearest-colour distance (Delta-E) between two palettes."""
    d = delta_e(np.asarray(lab_a)[:, None], np.asarray(lab_b)[None])
    wa = np.asarray(w_a) / np.sum(w_a)
    wb = np.asarray(w_b) / np.sum(w_b)
    return float(0.5 * (np.sum(wa * d.min(1)) + np.sum(wb * d.min(0))))
