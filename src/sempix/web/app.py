"""The sempix web app (FastAPI): one page with a panel per tool, one shared session store.

``create_app(**settings)`` only assembles: settings, the :class:`~sempix.web.common.SessionStore`
(memory budget covering sessions, per-request work and finished job results), the
:class:`~sempix.web.common.JobManager` (background jobs with progress, server-sent events and
cancellation), the security headers, the static files and one ``APIRouter`` per tool from
:mod:`sempix.web.routes` (``core``, ``jobs``, ``mask``, ``resize``, ``softseg``, ``palette``,
``recolor``, ``adjust``; see each module for its endpoints). ``sempix serve`` runs it with uvicorn
on 127.0.0.1.

All errors are JSON ``{"error": "...", "code"?: "..."}`` with a 4xx/5xx status; an evicted or
deleted session is ``410`` with ``"code": "session_gone"`` (the page re-opens the image it holds).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fastapi import FastAPI
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
from sempix.web.security import CSP as _SECURITY_CSP
from sempix.web.security import install_security
from sempix.web.session import EditorSession, ImageSession

log = logging.getLogger("sempix.web")

#: Content-Security-Policy of every response (set by sempix.web.security): the pages use only their
#: own external JS/CSS files, no inline scripts or styles.
CSP = _SECURITY_CSP


#: Largest accepted non-upload (JSON) request body; checked before anything is parsed.
MAX_JSON_BYTES = 16_000_000  # mask recipes with many brush strokes reach ~12 MB
#: Images per upload request (the recolor page sends a collection at once).
MAX_FILES_PER_UPLOAD = 12


def _body_limit(cfg: Settings):
    """Body limit per request: uploads get the upload size (times the files a route takes, plus 1 MB
    of multipart overhead), everything else :data:`MAX_JSON_BYTES`."""

    def limit(scope: dict, content_type: str) -> int:
        if content_type.startswith("multipart/"):
            files = MAX_FILES_PER_UPLOAD if scope.get("path", "").startswith("/api/recolor") else 1
            return cfg.max_upload_bytes * files + 1_000_000
        return MAX_JSON_BYTES

    return limit


def create_app(**settings: Any):
    """Build the FastAPI app.

    Parameters
    ----------
    **settings : fields of :class:`sempix.web.common.Settings` (``max_upload_bytes``,
        ``max_pixels``, ``max_sessions`` (None: sized by memory), ``max_memory_bytes``, ``backend``,
        ``workers``, ``work_pixels``, ``feature_dim``, ``strict``, ``preview_pixels``,
        ``softseg_pixels``, ``recolor_work_pixels``, ``adjust_styles_dir``).

    Returns
    -------
    fastapi.FastAPI
    """
    unknown = set(settings) - set(Settings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
    cfg = Settings(**settings)
    jobs_box: list[JobManager] = []

    def on_evict(
        sid: str, obj: Any
    ) -> None:  # issue 12 item 7: work and results die with the session
        if jobs_box:
            jobs_box[0].drop_owner(sid)

    store = SessionStore(cfg.max_sessions, cfg.max_memory_bytes, on_evict=on_evict)
    jobs = JobManager(cfg.workers, store=store)
    jobs_box.append(jobs)
    state = ServerState(cfg, store, jobs)
    app = FastAPI(title="sempix", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sempix = state
    install_error_handlers(app)

    install_security(app, body_limit=_body_limit(cfg), allowed_hosts=cfg.allowed_hosts)

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for name in ROUTERS:
        mod = importlib.import_module(f"sempix.web.routes.{name}")
        app.include_router(mod.router)
    return app


__all__ = [
    "COL_SCALE",
    "CSP",
    "SEM_SCALE",
    "STATIC_DIR",
    "EditorSession",
    "ImageSession",
    "MaskParams",
    "ResizeParams",
    "carve_available",
    "create_app",
    "label_colors",
    "pack_distances",
]
