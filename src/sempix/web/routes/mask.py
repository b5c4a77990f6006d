"""Masks panel: per-click distance maps, class selection, brush strokes, combinations, renders.

=======================================  ===========================================================
``GET  /api/sessions/{sid}/distance``    ``?x=&y=&space=luminance|lab`` (image pixel coordinates):
                                         the two distance maps of one click **at preview
                                         resolution** (binary, see :func:`pack_distances`); 409
                                         until features ready
``GET  /api/sessions/{sid}/labels``      JSON legend of the semantic labels (+ ``labels.png``)
``GET  /api/sessions/{sid}/classmask``   ``?ids=2,12`` -> soft mask of those classes at preview size
                                         (8-bit PNG): class probabilities sharpened around 0.5,
                                         edges snapped to the image by a guided filter
``POST /api/sessions/{sid}/render``      a mask recipe + ``adjustments`` + ``format`` -> the edited
                                         image at full resolution
``POST /api/sessions/{sid}/mask``        a mask recipe -> the mask at full resolution (8-bit PNG)
=======================================  ===========================================================

Mask recipe (JSON; the page builds the same mask at preview size)::

    {"points": [[x, y], ...], "lam", "tau", "space", "feather", "refine",    # range mask
     "connected": true,                                                   # minimax (issue 19)
     "classes": [class ids],                                                  # class selection
     "combine": [{"op": "union|intersect|subtract", "mask": <recipe>}],      # saved masks
     "strokes": [{"mode": "add|subtract", "radius": r, "points": [[x, y], ...]}]}   # brush

Evaluation: ``base = max(range mask, class mask)``; then each ``combine`` in order (union = max,
intersect = min, subtract = min(m, 1 - other)); then each stroke composited over the result (add
paints 1, subtract paints 0; coverage of a round brush of radius ``r`` image pixels).

Per-request memory (issue 12 item 2): interactive maps are computed on the preview (at most
``preview_pixels``); full-resolution renders accumulate the per-point minimum (memory independent
of the number of points, at most :data:`MAX_POINTS`) and run inside a memory reservation of
:func:`render_bytes` bytes, so concurrent renders of huge images queue instead of exhausting RAM.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from sempix.color import label_colors
from sempix.errors import InputError, InvalidRequestError, NotFoundError, NotReadyError
from sempix.web.common import encode_image, get_state, image_response
from sempix.web.routes.core import image_session
from sempix.web.session import ImageSession, downscale, resize_float

router = APIRouter()

SEM_SCALE = 1.0  # semantic distances are in [0, 1]
COL_SCALE = {"luminance": 1.0, "lab": 3.0}  # DeltaE76/100 of sRGB colours stays below ~2.6
MAX_POINTS = 64
MAX_STROKES = 200
MAX_STROKE_POINTS = 4000
MAX_DEPTH = 4


def pack_distances(sem: np.ndarray | None, col: np.ndarray, space: str) -> tuple[bytes, dict]:
    """Quantise the two (H, W) distance maps to little-endian uint16 (semantic first)."""
    H, W = col.shape
    cs = COL_SCALE[space]

    def q(a: np.ndarray, scale: float) -> np.ndarray:
        return np.rint(np.clip(a, 0.0, scale) * (65535.0 / scale)).astype("<u2")

    s = np.zeros((H, W), "<u2") if sem is None else q(sem, SEM_SCALE)
    body = s.tobytes() + q(col, cs).tobytes()
    headers = {
        "X-Width": str(W),
        "X-Height": str(H),
        "X-Semantic": "0" if sem is None else "1",
        "X-Sem-Scale": repr(SEM_SCALE),
        "X-Col-Scale": repr(cs),
        "Cache-Control": "no-store",
    }
    return body, headers


# --------------------------------------------------------------------------------- request models


class Stroke(BaseModel):
    mode: str = Field("add", pattern="^(add|subtract)$")
    radius: float = Field(..., gt=0.0, le=5000.0)
    points: list[tuple[float, float]] = Field(..., min_length=1, max_length=MAX_STROKE_POINTS)


class Recipe(BaseModel):
    """A mask recipe (see the module docstring)."""

    points: list[tuple[float, float]] = Field(default_factory=list, max_length=MAX_POINTS)
    lam: float = Field(0.8, ge=0.0, le=1.0)  # sempix.mask.DEFAULT_LAM / DEFAULT_TAU / SPACE
    tau: float = Field(0.3, ge=0.0, le=10.0)
    space: str = Field("lab", pattern="^(luminance|lab)$")
    connected: bool = True  # keep only what is connected to a click (sempix.mask.range_mask)
    feather: float = Field(0.0, ge=0.0, le=10.0)
    refine: bool = False
    classes: list[int] = Field(default_factory=list, max_length=256)
    combine: list[Combine] = Field(default_factory=list, max_length=16)
    strokes: list[Stroke] = Field(default_factory=list, max_length=MAX_STROKES)


class Combine(BaseModel):
    op: str = Field(..., pattern="^(union|intersect|subtract)$")
    mask: Recipe


Recipe.model_rebuild()


class MaskParams(Recipe):
    """Body of /render and /mask: a recipe plus the adjustments and the output format."""

    adjustments: dict[str, float] = Field(default_factory=dict)
    format: str = Field("png", pattern="^(png|jpeg|jpg)$")


def _depth(r: Recipe) -> int:
    return 1 + max((_depth(c.mask) for c in r.combine), default=0)


def _size(r: Recipe) -> tuple[int, int]:
    """(points, stroke points) of a recipe and all the recipes it combines."""
    p, s = len(r.points), sum(len(st.points) for st in r.strokes)
    for c in r.combine:
        cp, cs = _size(c.mask)
        p, s = p + cp, s + cs
    return p, s


def check_recipe(r: Recipe, shape: tuple[int, int]) -> None:
    """Validate a recipe against an image of ``shape`` (InputError 400, InvalidRequestError 422)."""
    H, W = shape
    if _depth(r) > MAX_DEPTH:
        raise InvalidRequestError(f"mask combinations nest too deep (at most {MAX_DEPTH} levels)")
    pts, spts = _size(r)
    if pts > MAX_POINTS:
        raise InvalidRequestError(
            f"too many points: {pts} (at most {MAX_POINTS} per request, all masks together)"
        )
    if spts > MAX_STROKE_POINTS:
        raise InvalidRequestError(f"too many brush points: {spts} (at most {MAX_STROKE_POINTS})")
    if not (r.points or r.classes or r.combine or r.strokes):
        raise InvalidRequestError(
            "empty mask: give points, classes, brush strokes or a combination"
        )
    for x, y in r.points:
        if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < W and 0 <= y < H):
            raise InputError(f"point ({x}, {y}) is outside the {W}x{H} image")
    for c in r.combine:
        check_recipe(c.mask, shape)


# ------------------------------------------------------------------------------------ evaluation


def render_bytes(shape: tuple[int, int], refine: bool = False, adjust: bool = True) -> int:
    """Memory reserved for one full-resolution render/mask request (bytes)."""
    H, W = shape
    per_px = 16 + 12 + 24  # lab + luminance maps, running minimum / distance temporaries, mask
    if refine:
        per_px += 160  # guided filter with a colour guide (box filters of 3x3 covariances)
    if adjust:
        per_px += 40  # linear light, adjusted copy, output, 8-bit encode
    return int(H * W * per_px + 50_000_000)


def class_mask(
    sess: ImageSession, ids: list[int], shape: tuple[int, int], guide: np.ndarray
) -> np.ndarray:
    """Soft (H, W) mask of the classes ``ids`` at ``shape`` (edges snapped to ``guide``)."""
    from sempix.mask import refine_mask

    fm = sess.fm
    if fm is None or fm.labels is None:
        raise NotFoundError("no semantic labels for this image (the feature backend has none)")
    n = len(fm.class_names or []) or int(fm.labels.max()) + 1
    ids = sorted({int(i) for i in ids if 0 <= int(i) < n})
    if not ids:
        return np.zeros(shape, np.float32)
    if fm.probs_lowres is not None:
        p = fm.probs_lowres[..., ids].sum(-1).astype(np.float32)
        # probabilities of the (letterboxed) network output -> the label map's extent
        p = resize_float(p, fm.labels.shape)
        hard = np.isin(fm.labels, ids).astype(np.float32)
        p = 0.5 * p + 0.5 * hard  # agree with the label map where the network is unsure
    else:
        p = np.isin(fm.labels, ids).astype(np.float32)
    p = np.clip((p - 0.5) * 2.0 + 0.5, 0.0, 1.0)  # sharpen around 0.5
    m = resize_float(p, shape) if p.shape != tuple(shape) else p
    return refine_mask(np.clip(m, 0, 1).astype(np.float32), guide)


def stroke_coverage(
    strokes: list[Stroke], shape: tuple[int, int], scale: float
) -> list[tuple[str, np.ndarray]]:
    """[(mode, (H, W) float32 coverage)] of brush strokes given in image pixels, drawn at
    ``scale``."""
    from PIL import Image, ImageDraw

    H, W = shape
    out = []
    for st in strokes:
        im = Image.new("L", (W, H), 0)
        d = ImageDraw.Draw(im)
        r = max(0.5, st.radius * scale)
        pts = [((x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5) for x, y in st.points]
        if len(pts) > 1:
            d.line(pts, fill=255, width=max(1, round(2 * r)), joint="curve")
        for x, y in pts:
            d.ellipse([x - r, y - r, x + r, y + r], fill=255)
        out.append((st.mode, np.asarray(im, np.float32) / 255.0))
    return out


def evaluate(sess: ImageSession, r: Recipe, image: np.ndarray, source: Any) -> np.ndarray:
    """The recipe's (H, W) float32 mask for ``image`` (full image or preview) and its MaskSource."""
    from sempix.mask import combine, refine_mask, threshold

    H, W = image.shape[:2]
    fH, fW = sess.shape
    scale = W / float(fW)
    m = np.zeros((H, W), np.float32)
    if r.points:
        acc = None
        for x, y in r.points:  # running minimum: memory does not grow with the number of points
            px = min(W - 1, int((int(x) + 0.5) * scale))
            py = min(H - 1, int((int(y) + 0.5) * H / float(fH)))
            s, c = source.distances((px, py), r.space)
            d = combine([s], [c], r.lam, points=[(px, py)] if r.connected else None)
            acc = d if acc is None else np.minimum(acc, d, out=acc)
            del s, c
        m = threshold(acc, r.tau, r.feather).astype(np.float32)
        del acc
        if r.refine:
            m = refine_mask(m, image)
    if r.classes:
        m = np.maximum(m, class_mask(sess, r.classes, (H, W), image))
    for c in r.combine:
        other = evaluate(sess, c.mask, image, source)
        if c.op == "union":
            np.maximum(m, other, out=m)
        elif c.op == "intersect":
            np.minimum(m, other, out=m)
        else:
            np.minimum(m, 1.0 - other, out=m)
    for mode, a in stroke_coverage(r.strokes, (H, W), scale):
        v = 1.0 if mode == "add" else 0.0
        m = m * (1.0 - a) + v * a
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def _any_refine(r: Recipe) -> bool:
    return r.refine or bool(r.classes) or any(_any_refine(c.mask) for c in r.combine)


# ------------------------------------------------------------------------------------- endpoints


@router.get("/api/sessions/{sid}/distance")
def distance(request: Request, sid: str, x: float, y: float, space: str = "luminance"):
    sess = image_session(request, sid)
    if space not in COL_SCALE:
        raise InputError("space must be luminance or lab")
    if not sess.ready.is_set():
        raise NotReadyError(
            "features are still being computed; poll the job and click again", code="not_ready"
        )
    H, W = sess.shape
    if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < W and 0 <= y < H):
        raise InputError(f"point ({x}, {y}) is outside the {W}x{H} image")
    ph, pw = sess.preview_shape
    px, py = min(pw - 1, int((int(x) + 0.5) * pw / W)), min(ph - 1, int((int(y) + 0.5) * ph / H))
    with sess.lock:
        sem, col = sess.source.distances((px, py), space)
    body, headers = pack_distances(sem, col, space)
    return Response(body, media_type="application/octet-stream", headers=headers)


@router.get("/api/sessions/{sid}/labels")
def labels(request: Request, sid: str):
    sess = image_session(request, sid)
    if not sess.ready.is_set():
        raise NotReadyError("features are still being computed", code="not_ready")
    fm = sess.fm
    if fm is None or fm.labels is None:
        raise NotFoundError("no semantic labels: the feature backend has none (lowlevel)")
    lab = np.asarray(fm.labels)
    names = fm.class_names or []
    counts = np.bincount(lab.ravel(), minlength=len(names))
    cols = label_colors(max(len(names), int(lab.max()) + 1))
    total = float(lab.size)
    classes = [
        {
            "id": int(i),
            "name": names[i] if i < len(names) else str(i),
            "color": "#{:02x}{:02x}{:02x}".format(*(int(c) for c in cols[i])),
            "fraction": round(counts[i] / total, 4),
        }
        for i in np.argsort(-counts, kind="stable")
        if counts[i] > 0
    ]
    return {
        "width": int(lab.shape[1]),
        "height": int(lab.shape[0]),
        "classes": classes,
        "backend": fm.backend,
    }


@router.get("/api/sessions/{sid}/labels.png")
def labels_png(request: Request, sid: str):
    sess = image_session(request, sid)
    fm = sess.fm
    if not sess.ready.is_set() or fm is None or fm.labels is None:
        raise NotFoundError("no semantic labels for this session")
    lab = np.asarray(fm.labels)
    cols = label_colors(max(len(fm.class_names or []), int(lab.max()) + 1))
    return image_response(cols[lab].astype(np.float32) / 255.0, "png")


@router.get("/api/sessions/{sid}/classmask")
def classmask(request: Request, sid: str, ids: str):
    sess = image_session(request, sid)
    sess.require_ready()
    try:
        idx = [int(v) for v in ids.split(",") if v.strip()][:256]
    except ValueError:
        raise InputError("ids must be comma-separated class numbers, e.g. 2,12") from None
    m = class_mask(sess, idx, sess.preview_shape, sess.preview)
    return Response(
        encode_image(m, "png"), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


def _full(request: Request, sid: str, p: MaskParams, adjust: bool):
    from sempix.mask import Adjustments, MaskSource, apply_adjustments

    state = get_state(request)
    sess = image_session(request, sid)
    sess.require_ready()
    check_recipe(p, sess.shape)
    adj = Adjustments.from_mapping(p.adjustments) if adjust else None
    with state.sessions.reserve(
        render_bytes(sess.shape, _any_refine(p), adjust), sid, "this render"
    ):
        src = MaskSource(
            sess.image, sess.fm.features
        )  # per request: full-res colour maps are not kept
        m = evaluate(sess, p, sess.image, src)
        del src
        if not adjust:
            return sess, m
        return sess, apply_adjustments(sess.image, m, adj)


@router.post("/api/sessions/{sid}/mask")
def mask_png(request: Request, sid: str, p: MaskParams):
    sess, m = _full(request, sid, p, adjust=False)
    return image_response(m, "png", filename=f"{sess.name}-mask.png")


@router.post("/api/sessions/{sid}/render")
def render(request: Request, sid: str, p: MaskParams):
    fmt = "jpeg" if p.format in ("jpg", "jpeg") else "png"
    sess, out = _full(request, sid, p, adjust=True)
    ext = "jpg" if fmt == "jpeg" else "png"
    return image_response(out, fmt, filename=f"{sess.name}-edited.{ext}", quality=95)


__all__ = [
    "COL_SCALE",
    "MAX_POINTS",
    "SEM_SCALE",
    "MaskParams",
    "Recipe",
    "check_recipe",
    "class_mask",
    "downscale",
    "evaluate",
    "label_colors",
    "pack_distances",
    "render_bytes",
    "router",
]
