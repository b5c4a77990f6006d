"""The sempix web app (FastAPI): one page with a panel per tool, one shared session store.

``create_app(**settings)`` only assembles: settings, the :class:`~sempix.web.common.SessionStore`
(memory budget covering sessions, per-request work and finished job results), the
:class:`~sempix.web.common.JobManager` (background jobs with progress, server-sent events and
cancellation), the security headers, the static files and one ``APIRouter`` per tool from
:mod:`sempix.web.routes` (``core``, ``jobs``, ``mask``, ``resize``, ``softseg``, ``palette``,
``recolor``; see each module for its endpoints). ``sempix serve`` runs it with uvicorn on 127.0.0.1.

All errors are JSON ``{"error": "...", "code"?: "..."}`` with a 4xx/5xx status; an evicted or
deleted session is ``410`` with ``"code": "session_gone"`` (the page re-opens the image it holds).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from sempix.web.common import (
    JobManager,
    ServerState,
    SessionStore,
    Settings,
    install_error_handlers,
)
from sempix.web.routes import ROUTERS
from sempix.web.routes.core import STATIC_DIR
from sempix.web.routes.mask import COL_SCALE, SEM_SCALE, MaskParams, label_colors, pack_distances
from sempix.web.routes.resize import ResizeParams, carve_available
from sempix.web.session import EditorSession, ImageSession

log = logging.getLogger("sempix.web")

#: Content-Security-Policy of every response: the page uses only its own external JS/CSS files.
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def create_app(**settings: Any):
    """Build the FastAPI app.

    Parameters
    ----------
    **settings : fields of :class:`sempix.web.common.Settings` (``max_upload_bytes``,
        ``max_pixels``, ``max_sessions`` (None: sized by memory), ``max_memory_bytes``, ``backend``,
        ``workers``, ``work_pixels``, ``feature_dim``, ``strict``, ``preview_pixels``,
        ``softseg_pixels``, ``recolor_work_pixels``).

    Returns
    -------
    fastapi.FastAPI
    """
    unknown = set(settings) - set(Settings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    cfg = Settings(**settings)
    jobs_box: list[JobManager] = []

    def on_evict(sid: str, obj: Any) -> None:  # issue 12 item 7: work and results die with the session
        if jobs_box:
            jobs_box[0].drop_owner(sid)

    store = SessionStore(cfg.max_sessions, cfg.max_memory_bytes, on_evict=on_evict)
    jobs = JobManager(cfg.workers, store=store)
    jobs_box.append(jobs)
    state = ServerState(cfg, store, jobs)
    app = FastAPI(title="sempix", docs_url=None, redoc_url=None, openapi_url=None)
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
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for name in ROUTERS:
        mod = importlib.import_module(f"sempix.web.routes.{name}")
        app.include_router(mod.router)
    return app


__all__ = ["COL_SCALE", "CSP", "SEM_SCALE", "STATIC_DIR", "EditorSession", "ImageSession", "MaskParams",
           "ResizeParams", "carve_available", "create_app", "label_colors", "pack_distances"]
