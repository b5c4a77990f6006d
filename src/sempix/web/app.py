"""The sempix web editor (FastAPI): semantic range masks with live adjustments.

``create_app(**settings)`` builds the app; ``sempix serve`` runs it with uvicorn on 127.0.0.1.

HTTP API (all errors are JSON ``{"error": "..."}`` with a 4xx/5xx status):

=======================================  ================================================================
``GET  /``                               the mask editor page (``static/index.html``)
``GET  /recolor``                        the recolor page (``static/recolor.html``) when present
``GET  /api/config``                     limits, backend, whether the resize panel is available
``POST /api/images``                     multipart ``file`` (+ optional ``backend``) -> 201
                                         ``{session, width, height, job}``; features start computing
``GET  /api/jobs/{job}``                 ``{state, progress, message, error}`` (poll it)
``GET  /api/jobs/{job}/result``          a finished resize job's PNG
``GET  /api/sessions/{sid}``             session info (ready, backend, semantic, labels available)
``GET  /api/sessions/{sid}/image``       the decoded image as PNG (EXIF orientation applied)
``GET  /api/sessions/{sid}/distance``    ``?x=&y=&space=luminance|lab``: the per-click distance maps,
                                         binary (see :func:`pack_distances`); 409 until features ready
``GET  /api/sessions/{sid}/labels``      JSON legend of the semantic labels (+ ``labels.png``)
``POST /api/sessions/{sid}/render``      JSON ``{points, lam, tau, space, feather, refine,
                                         adjustments, format}`` -> full-resolution edited image
``POST /api/sessions/{sid}/mask``        same body -> the mask as an 8-bit PNG
``POST /api/sessions/{sid}/resize``      ``{width, height, lam}`` -> ``{job}`` (semantic carving)
``DELETE /api/sessions/{sid}``           forget a session
=======================================  ================================================================

Binary distance maps: little-endian ``uint16`` arrays, first the semantic map (H*W values, row
major) then the colour map; ``value * scale / 65535`` gives the distance in the units of
:mod:`sempix.mask.core`. Headers ``X-Width``, ``X-Height``, ``X-Semantic`` (0/1: 0 means the
semantic map is all zeros because no features are available), ``X-Sem-Scale``, ``X-Col-Scale``.
The browser blends ``min_k lam*sem_k + (1-lam)*col_k`` and thresholds it itself, so slider moves
never touch the server.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from sempix.color import label_colors
from sempix.web.common import (
    ApiError,
    JobManager,
    ServerState,
    SessionStore,
    Settings,
    decode_image,
    image_response,
    install_error_handlers,
    read_upload,
)

log = logging.getLogger("sempix.web")

STATIC_DIR = Path(__file__).with_name("static")
SEM_SCALE = 1.0  # semantic distances are in [0, 1]
COL_SCALE = {"luminance": 1.0, "lab": 3.0}  # DeltaE76/100 of sRGB colours stays below ~2.6


# ---------------------------------------------------------------------------------- sessions


class EditorSession:
    """One opened image: pixels, cached colour maps, features (once the job is done)."""

    def __init__(self, image: np.ndarray, name: str, backend: str):
        from sempix.mask import MaskSource

        self.image = image
        self.name = name
        self.backend = backend
        self.source = MaskSource(image)
        self.fm = None
        self.job: str | None = None
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.error: str | None = None
        self.png: bytes | None = None
        self.created = time.time()

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    @property
    def nbytes(self) -> int:
        n = self.source.nbytes
        if self.fm is not None and getattr(self.fm, "labels", None) is not None:
            n += self.fm.labels.nbytes
        if self.png:
            n += len(self.png)
        return n

    def info(self) -> dict:
        H, W = self.shape
        fm = self.fm
        return {
            "width": W, "height": H, "name": self.name, "ready": self.ready.is_set(),
            "error": self.error, "job": self.job,
            "backend": getattr(fm, "backend", None) if fm is not None else None,
            "requested_backend": self.backend,
            "semantic": bool(getattr(fm, "semantic", False)) if fm is not None else False,
            "has_labels": fm is not None and getattr(fm, "labels", None) is not None,
            "fallback": (fm.meta.get("fallback") if fm is not None else None),
        }


def _prepare_session(sess: EditorSession, settings: Settings, store: SessionStore, sid: str, progress) -> dict:
    """Job body: colour maps + features at working resolution."""
    from sempix.mask import mask_features
    from sempix.progress import sub_progress

    try:
        progress(0.02, "colour maps")
        sess.source.colour_image("luminance")
        sess.source.colour_image("lab")
        progress(0.1, f"{sess.backend} features")
        fm = mask_features(sess.image, sess.backend, work_pixels=settings.work_pixels,
                           dim=settings.feature_dim, strict=settings.strict,
                           progress=sub_progress(progress, 0.1, 0.98))
        with sess.lock:
            sess.fm = fm
            sess.source.features = np.ascontiguousarray(fm.features, dtype=np.float32)
        store.resize(sid, sess.nbytes)
        progress(1.0, "ready")
        return sess.info()
    except Exception as exc:
        sess.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise
    finally:
        sess.ready.set()


def pack_distances(sem: np.ndarray | None, col: np.ndarray, space: str) -> tuple[bytes, dict]:
    """Quantise the two (H, W) distance maps to little-endian uint16 (semantic first)."""
    H, W = col.shape
    cs = COL_SCALE[space]

    def q(a: np.ndarray, scale: float) -> np.ndarray:
        return np.rint(np.clip(a, 0.0, scale) * (65535.0 / scale)).astype("<u2")

    s = np.zeros((H, W), "<u2") if sem is None else q(sem, SEM_SCALE)
    body = s.tobytes() + q(col, cs).tobytes()
    headers = {"X-Width": str(W), "X-Height": str(H), "X-Semantic": "0" if sem is None else "1",
               "X-Sem-Scale": repr(SEM_SCALE), "X-Col-Scale": repr(cs), "Cache-Control": "no-store"}
    return body, headers


# --------------------------------------------------------------------------------- request models


class MaskParams(BaseModel):
    """Body of /render and /mask."""

    points: list[tuple[float, float]] = Field(..., min_length=1, max_length=64)
    lam: float = Field(0.8, ge=0.0, le=1.0)  # sempix.mask.DEFAULT_LAM / DEFAULT_TAU
    tau: float = Field(0.3, ge=0.0, le=10.0)
    space: str = Field("lab", pattern="^(luminance|lab)$")
    feather: float = Field(0.0, ge=0.0, le=10.0)
    refine: bool = False
    connected: bool = True  # keep only what is connected to a click (sempix.mask.range_mask)
    adjustments: dict[str, float] = Field(default_factory=dict)
    format: str = Field("png", pattern="^(png|jpeg|jpg)$")


class ResizeParams(BaseModel):
    """Body of /resize."""

    width: int = Field(..., ge=8, le=20000)
    height: int = Field(..., ge=8, le=20000)
    lam: float = Field(0.2, ge=0.0, le=1.0)


def _mask_from_params(sess: EditorSession, p: Any) -> np.ndarray:
    from sempix.mask import range_mask

    if not sess.ready.is_set():
        raise ApiError(409, "features are still being computed; try again when the job is done")
    with sess.lock:
        res = range_mask(sess.image, [tuple(pt) for pt in p.points], lam=p.lam, tau=p.tau,
                         space=p.space, feather=p.feather, refine=p.refine, source=sess.source,
                         connected=p.connected)
    return res.mask


# ---------------------------------------------------------------------------------------- app


def create_app(**settings: Any):
    """Build the FastAPI app of the mask editor (+ the recolor router when importable).

    Parameters
    ----------
    **settings : fields of :class:`sempix.web.common.Settings` (``max_upload_bytes``,
        ``max_pixels``, ``max_sessions``, ``max_memory_bytes``, ``backend``, ``workers``,
        ``work_pixels``, ``feature_dim``, ``strict``).

    Returns
    -------
    fastapi.FastAPI
    """
    unknown = set(settings) - set(Settings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    cfg = Settings(**settings)
    state = ServerState(cfg, SessionStore(cfg.max_sessions, cfg.max_memory_bytes), JobManager(cfg.workers))
    app = FastAPI(title="sempix editor", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sempix = state
    install_error_handlers(app)

    @app.middleware("http")
    async def _security_headers(request, call_next):
        # refuse oversize bodies before they are read/spooled (multipart overhead allowance 1 MB)
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > cfg.max_upload_bytes + 1_000_000
            except ValueError:
                return JSONResponse({"error": "bad Content-Length header"}, status_code=400)
            if too_big:
                return JSONResponse({"error": f"upload too large: more than "
                                              f"{cfg.max_upload_bytes / 1e6:.0f} MB"}, status_code=413)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/recolor", include_in_schema=False)
    def recolor_page():
        p = STATIC_DIR / "recolor.html"
        if not p.is_file():
            raise ApiError(404, "the recolor page is not installed")
        return FileResponse(p, media_type="text/html")

    @app.get("/api/config")
    def config():
        return {"max_upload_bytes": cfg.max_upload_bytes, "max_pixels": cfg.max_pixels,
                "backend": cfg.backend, "resize": True,
                "spaces": ["luminance", "lab"], "sem_scale": SEM_SCALE, "col_scale": COL_SCALE}

    @app.post("/api/images", status_code=201)
    async def upload(request: Request, file: UploadFile | None = File(None),
                     backend: str | None = Form(None)):
        if file is None:
            raise ApiError(400, "no file uploaded (send multipart/form-data with a 'file' field)")
        data = await read_upload(file, cfg.max_upload_bytes)
        be = (backend or cfg.backend).lower()
        if be not in ("ade20k", "segformer", "lowlevel"):
            raise ApiError(400, f"unknown backend {be!r} (ade20k, segformer, lowlevel)")
        loaded = await run_in_threadpool(decode_image, data, cfg.max_pixels, "upload")
        name = Path(file.filename or "image").stem[:80] or "image"
        sess = EditorSession(loaded.rgb, name, be)
        # reserve a realistic budget up front (image + colour maps + features)
        H, W = sess.shape
        estimate = H * W * 3 * 4 * 2 + H * W * 4 + min(H * W, cfg.work_pixels) * 64 * 4
        sid = state.sessions.add(sess, estimate)
        sess.job = state.jobs.submit(_prepare_session, sess, cfg, state.sessions, sid, kind="features", owner=sid)
        return {"session": sid, "width": W, "height": H, "job": sess.job, "name": name}

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str):
        return state.jobs.status(job_id)

    @app.get("/api/jobs/{job_id}/result")
    def job_result(job_id: str):
        job = state.jobs.get(job_id)
        if job.kind != "resize":
            raise ApiError(400, "this job has no downloadable result")
        out = state.jobs.result(job_id)
        return image_response(out, "png", filename="resized.png")

    @app.get("/api/sessions/{sid}")
    def session_info(sid: str):
        return state.sessions.get(sid).info()

    @app.delete("/api/sessions/{sid}")
    def session_delete(sid: str):
        state.sessions.get(sid)
        state.sessions.remove(sid)
        return {"deleted": sid}

    @app.get("/api/sessions/{sid}/image")
    def session_image(sid: str):
        sess: EditorSession = state.sessions.get(sid)
        with sess.lock:
            if sess.png is None:
                from sempix.web.common import encode_image

                sess.png = encode_image(sess.image, "png")
            body = sess.png
        return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/sessions/{sid}/distance")
    def distance(sid: str, x: float, y: float, space: str = "luminance"):
        sess: EditorSession = state.sessions.get(sid)
        if space not in COL_SCALE:
            raise ApiError(400, "space must be luminance or lab")
        if not sess.ready.is_set():
            raise ApiError(409, "features are still being computed; poll the job and click again")
        H, W = sess.shape
        if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < W and 0 <= y < H):
            raise ApiError(400, f"point ({x}, {y}) is outside the {W}x{H} image")
        with sess.lock:
            sem, col = sess.source.distances((int(x), int(y)), space)
        body, headers = pack_distances(sem, col, space)
        return Response(body, media_type="application/octet-stream", headers=headers)

    @app.get("/api/sessions/{sid}/labels")
    def labels(sid: str):
        sess: EditorSession = state.sessions.get(sid)
        if not sess.ready.is_set():
            raise ApiError(409, "features are still being computed")
        fm = sess.fm
        if fm is None or fm.labels is None:
            raise ApiError(404, "no semantic labels: the feature backend has none (lowlevel)")
        lab = np.asarray(fm.labels)
        names = fm.class_names or []
        counts = np.bincount(lab.ravel(), minlength=len(names))
        cols = label_colors(max(len(names), int(lab.max()) + 1))
        total = float(lab.size)
        classes = [{"id": int(i), "name": names[i] if i < len(names) else str(i),
                    "color": "#{:02x}{:02x}{:02x}".format(*(int(c) for c in cols[i])),
                    "fraction": round(counts[i] / total, 4)}
                   for i in np.argsort(-counts) if counts[i] > 0]
        return {"width": int(lab.shape[1]), "height": int(lab.shape[0]), "classes": classes,
                "backend": fm.backend}

    @app.get("/api/sessions/{sid}/labels.png")
    def labels_png(sid: str):
        sess: EditorSession = state.sessions.get(sid)
        fm = sess.fm
        if not sess.ready.is_set() or fm is None or fm.labels is None:
            raise ApiError(404, "no semantic labels for this session")
        lab = np.asarray(fm.labels)
        cols = label_colors(max(len(fm.class_names or []), int(lab.max()) + 1))
        return image_response(cols[lab].astype(np.float32) / 255.0, "png")

    @app.post("/api/sessions/{sid}/mask")
    def mask_png(sid: str, p: MaskParams):
        sess: EditorSession = state.sessions.get(sid)
        m = _mask_from_params(sess, p)
        return image_response(m, "png", filename=f"{sess.name}-mask.png")

    @app.post("/api/sessions/{sid}/render")
    def render(sid: str, p: MaskParams):
        from sempix.mask import Adjustments, apply_adjustments

        sess: EditorSession = state.sessions.get(sid)
        adj = Adjustments.from_mapping(p.adjustments)
        m = _mask_from_params(sess, p)
        out = apply_adjustments(sess.image, m, adj)
        fmt = "jpeg" if p.format in ("jpg", "jpeg") else "png"
        ext = "jpg" if fmt == "jpeg" else "png"
        return image_response(out, fmt, filename=f"{sess.name}-edited.{ext}", quality=95)

    @app.post("/api/sessions/{sid}/resize")
    def resize(sid: str, p: ResizeParams):
        sess: EditorSession = state.sessions.get(sid)
        if not sess.ready.is_set():
            raise ApiError(409, "features are still being computed")
        H, W = sess.shape
        if p.width > 2 * W or p.height > 2 * H:
            raise ApiError(400, f"target {p.width}x{p.height} is more than twice the {W}x{H} image")

        def run(progress):
            from sempix.carve import FEATURE_DIM, carve, reduce_features
            from sempix.ops import resize

            feats = sess.source.features  # working resolution: reduce there, then upsample
            if feats is not None:
                feats = reduce_features(feats, FEATURE_DIM)
                if feats.shape[:2] != (H, W):
                    feats = resize(feats, (H, W))
            res = carve(sess.image, width=p.width, height=p.height, features=feats, lam=p.lam,
                        progress=progress)
            return np.clip(res.image, 0.0, 1.0)

        job = state.jobs.submit(run, kind="resize", owner=sid)
        return JSONResponse({"job": job}, status_code=202)

    try:  # the recolor page's API, built separately
        from sempix.web.recolor_api import router as recolor_router

        app.include_router(recolor_router)
    except ImportError as exc:
        log.debug("recolor API not available: %s", exc)

    return app
