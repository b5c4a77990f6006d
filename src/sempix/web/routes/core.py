"""Pages, configuration, image upload and the shared image sessions.

=======================================  ===========================================================
``GET  /``                               the app (one page, a panel per tool); ``/recolor`` = same
                                         page
``GET  /api/config``                     limits, backend, which tools are available
``POST /api/images``                     multipart ``file`` (+ optional ``backend``) -> 201
                                         ``{session, width, height, preview_width, preview_height,
                                         job}``
``GET  /api/sessions/{sid}``             session info (ready, backend, semantic, labels available)
``GET  /api/sessions/{sid}/image``       the decoded image as PNG (``?preview=1``: preview size)
``DELETE /api/sessions/{sid}``           close a session (its jobs are cancelled, results deleted)
=======================================  ===========================================================

Unknown ids are 404, evicted or deleted ones 410 with ``"code": "session_gone"`` (the page then
re-opens the image it still has), a recolor collection id on these routes 409.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from sempix.errors import InputError
from sempix.features.constants import BACKENDS
from sempix.web.common import decode_image, encode_image, get_state, read_upload
from sempix.web.session import ImageSession, prepare_session

router = APIRouter()
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def image_session(request: Request, sid: str) -> ImageSession:
    """The :class:`ImageSession` ``sid`` (404/410, or 409 for a recolor collection id)."""
    return get_state(request).sessions.get(sid, kind=ImageSession)


def tools_available() -> dict:
    import importlib.util

    def has(mod: str) -> bool:
        try:
            return importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            return False

    return {
        "mask": True,
        "resize": has("sempix.carve"),
        "retarget": has("sempix.retarget"),
        "softseg": has("sempix.softseg"),
        "palette": has("sempix.palette"),
        "recolor": has("sempix.recolor"),
        "adjust": has("sempix.adjust") and has("torch"),
    }


def _page() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-store"}
    )


@router.get("/", include_in_schema=False)
def index():
    return _page()


@router.get("/recolor", include_in_schema=False)
def recolor_page():
    return _page()


@router.get("/favicon.ico", include_in_schema=False)
def favicon():
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


@router.get("/api/config")
def config(request: Request):
    from sempix.web.routes.mask import COL_SCALE, SEM_SCALE

    st = get_state(request)
    cfg = st.settings
    tools = tools_available()
    return {
        "max_upload_bytes": cfg.max_upload_bytes,
        "max_pixels": cfg.max_pixels,
        "backend": cfg.backend,
        "resize": tools["resize"],
        "tools": tools,
        "preview_pixels": cfg.preview_pixels,
        "max_sessions": st.sessions.max_sessions,
        "max_memory_bytes": st.sessions.max_bytes,
        "spaces": ["luminance", "lab"],
        "sem_scale": SEM_SCALE,
        "col_scale": COL_SCALE,
    }


@router.post("/api/images", status_code=201)
async def upload(
    request: Request,
    file: UploadFile | None = File(None),  # noqa: B008
    backend: str | None = Form(None),
):
    state = get_state(request)
    cfg = state.settings
    if file is None:
        raise InputError("no file uploaded (send multipart/form-data with a 'file' field)")
    data = await read_upload(file, cfg.max_upload_bytes)
    be = (backend or cfg.backend).lower()
    if be not in BACKENDS:
        raise InputError(f"unknown backend {be!r} ({', '.join(BACKENDS)})")
    loaded = await run_in_threadpool(decode_image, data, cfg.max_pixels, "upload")
    name = Path(file.filename or "image").stem[:80] or "image"
    sess = await run_in_threadpool(ImageSession, loaded.rgb, name, be, cfg.preview_pixels)
    estimate = ImageSession.estimate(sess.shape, cfg.work_pixels, cfg.preview_pixels)
    sid = state.sessions.add(sess, estimate)
    sess.job = state.jobs.submit(
        prepare_session, sess, cfg, state.sessions, sid, kind="features", owner=sid
    )
    info = sess.info()
    return {
        "session": sid,
        "width": info["width"],
        "height": info["height"],
        "preview_width": info["preview_width"],
        "preview_height": info["preview_height"],
        "job": sess.job,
        "name": name,
    }


@router.get("/api/sessions/{sid}")
def session_info(request: Request, sid: str):
    return image_session(request, sid).info()


@router.delete("/api/sessions/{sid}")
def session_delete(request: Request, sid: str):
    state = get_state(request)
    state.sessions.get(sid, kind=ImageSession)
    state.sessions.remove(sid)
    return {"deleted": sid}


@router.get("/api/sessions/{sid}/image")
def session_image(request: Request, sid: str, preview: int = 0):
    sess = image_session(request, sid)
    if preview:
        return Response(
            encode_image(sess.preview, "png"),
            media_type="image/png",
            headers={"Cache-Control": "no-store"},
        )
    with sess.lock:
        if sess.png is None:
            sess.png = encode_image(sess.image, "png")
        body = sess.png
    get_state(request).sessions.resize(sid, sess.nbytes)
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})
