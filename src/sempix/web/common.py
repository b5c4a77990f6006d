"""Reusable server pieces of the sempix web app (mask editor and recolor page).

Everything here is public and meant to be shared by the routers of ``sempix.web``
(``sempix.web.app`` for the mask editor, ``sempix.web.recolor_api`` for the recolor page).

Errors
    ``ApiError(status, message)`` -- raise it from any endpoint; ``create_app`` installs a handler
    that answers ``{"error": message}`` with that HTTP status. ``InputError`` raised by the library
    becomes a 400 the same way, ``MemoryError`` a 507 and any other exception a 500 (JSON, no
    traceback sent to the client).

Uploads
    ``await read_upload(upload, max_bytes)`` -> bytes: reads a FastAPI ``UploadFile`` in chunks and
    stops with 413 as soon as it is larger than ``max_bytes``; 400 for zero bytes.
    ``decode_image(data, max_pixels, name="upload")`` -> ``sempix.image.LoadedImage``: checks the
    declared size from the header *before* decoding (413 for too many pixels, e.g. a 50k x 50k PNG),
    then decodes through ``sempix.image.read_image`` (400 for not-an-image / truncated data).
    Never takes a client-supplied path: the bytes go to a private temporary file that is deleted.

State
    ``get_state(request)`` -> ``ServerState`` with ``.settings`` (``Settings``), ``.sessions``
    (``SessionStore``), ``.jobs`` (``JobManager``). One per app, created by ``create_app``.

Sessions (bounded memory)
    ``SessionStore(max_sessions, max_bytes)``: thread-safe LRU. ``store.add(obj, nbytes)`` -> id
    (random, unguessable); ``store.get(id)`` -> obj (404 ``ApiError`` when unknown or evicted; marks
    it recently used); ``store.resize(id, nbytes)`` after an object grew (e.g. features were
    cached); ``store.remove(id)``. The least recently used entries are evicted when either limit
    would be exceeded. Store any object; give it a ``lock`` attribute (``threading.Lock``) if its
    methods are not thread safe.

Jobs (long CPU work with progress for the page to poll)
    ``jobs.submit(fn, *args, kind="features", owner=None)`` -> job id. ``fn(*args, progress)`` runs in a
    bounded thread pool; ``progress(fraction, message)`` updates the job. ``jobs.status(id)`` ->
    JSON-able dict ``{"id", "kind", "state": "queued|running|done|error", "progress", "message",
    "error"}``; ``jobs.result(id)`` -> the return value (409 while not done, the job's error as
    ``ApiError`` when it failed). Old finished jobs are forgotten (bounded).

Encoding
    ``encode_image(rgb, fmt="png"|"jpeg", alpha=None, quality=92)`` -> bytes (rgb (H, W, 3) or a
    mask (H, W) float32 in [0, 1]).
    ``image_response(rgb, fmt, filename=None)`` -> ``fastapi.Response`` with the right media type
    (and a download file name when ``filename`` is given).
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sempix.errors import InputError, ModelUnavailableError, SempixError

log = logging.getLogger("sempix.web")

# --------------------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answered to the client as ``{"error": message}`` with HTTP status ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = str(message)


def install_error_handlers(app: Any) -> None:
    """Make every error a JSON ``{"error": ...}`` answer with a proper status code."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def _json(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return _json(exc.status, exc.message)

    @app.exception_handler(InputError)
    async def _input_error(request, exc: InputError):
        return _json(400, str(exc).splitlines()[0] if str(exc) else "bad input")

    @app.exception_handler(ModelUnavailableError)
    async def _model_error(request, exc: ModelUnavailableError):
        return _json(503, str(exc).splitlines()[0] if str(exc) else "model unavailable")

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        errs = exc.errors()
        if errs:
            e = errs[0]
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            msg = f"invalid request: {where}: {e.get('msg', 'invalid')}"
        else:
            msg = "invalid request"
        return _json(422, msg)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        return _json(exc.status_code, str(exc.detail))

    @app.exception_handler(MemoryError)
    async def _memory(request, exc: MemoryError):
        return _json(507, "out of memory: try a smaller image")

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):
        log.error("internal error: %s", "".join(traceback.format_exception(exc)))
        return _json(500, f"internal error: {type(exc).__name__}")


# -------------------------------------------------------------------------------------- uploads


async def read_upload(upload: Any, max_bytes: int) -> bytes:
    """Read a FastAPI ``UploadFile`` completely, refusing more than ``max_bytes`` (413) or 0 (400)."""
    if upload is None:
        raise ApiError(400, "no file uploaded (send multipart/form-data with a 'file' field)")
    chunks = []
    total = 0
    while True:
        chunk = await upload.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise ApiError(413, f"upload too large: more than {max_bytes / 1e6:.0f} MB")
        chunks.append(chunk)
    if total == 0:
        raise ApiError(400, "empty upload (0 bytes): choose an image file")
    return b"".join(chunks)


def _declared_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the header, without decoding pixels. ApiError 400 when unreadable."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as im:
            return int(im.size[0]), int(im.size[1])
    except PILImage.DecompressionBombError as exc:
        raise ApiError(413, f"image too large: {str(exc).split('.')[0].lower()} "
                            f"(this server accepts at most {max_pixels / 1e6:.1f} MP)") from None
    except Exception:  # noqa: BLE001
        raise ApiError(400, "not an image Pillow can read (JPEG, PNG, TIFF, WebP, BMP...)") from None


def decode_image(data: bytes, max_pixels: int, name: str = "upload") -> Any:
    """Validate and decode uploaded bytes into a :class:`sempix.image.LoadedImage`.

    Parameters
    ----------
    data : raw file bytes from the client.
    max_pixels : refuse (413) images whose header declares more pixels than this.
    name : a label used in messages only (never a path).

    Returns
    -------
    LoadedImage with ``.rgb`` (H, W, 3) float32 in [0, 1] (EXIF orientation applied).
    """
    from sempix.image import read_image

    if not data:
        raise ApiError(400, "empty upload (0 bytes): choose an image file")
    w, h = _declared_size(data, max_pixels)
    if w <= 0 or h <= 0:
        raise ApiError(400, "image has zero width or height")
    if w * h > max_pixels:
        raise ApiError(413, f"image too large: {w}x{h} = {w * h / 1e6:.1f} MP "
                            f"(this server accepts at most {max_pixels / 1e6:.1f} MP)")
    fd, tmp = tempfile.mkstemp(prefix="sempix-upload-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            loaded = read_image(tmp, max_pixels=max_pixels)
        except (InputError, SempixError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else "cannot read image"
            msg = msg.replace(tmp, name)
            raise ApiError(413 if "pixel" in msg.lower() and "too" in msg.lower() else 400,
                           msg) from None
        except Exception as exc:  # noqa: BLE001
            raise ApiError(400, f"{name}: cannot decode image ({type(exc).__name__})") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    rgb = np.asarray(loaded.rgb)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ApiError(400, f"{name}: decoded image is empty")
    loaded.path = None  # the temp file is gone; never expose it
    return loaded


# ------------------------------------------------------------------------------------- sessions


class SessionStore:
    """Thread-safe LRU store with a count limit and an (approximate) byte budget."""

    def __init__(self, max_sessions: int = 8, max_bytes: int = 2_000_000_000):
        self.max_sessions = int(max_sessions)
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(n for _, n in self._items.values())

    def _evict(self, keep: str | None) -> None:
        while self._items and (
            len(self._items) > self.max_sessions
            or sum(n for _, n in self._items.values()) > self.max_bytes
        ):
            oldest = next(iter(self._items))
            if oldest == keep:
                if len(self._items) == 1:
                    break
                self._items.move_to_end(oldest)
                oldest = next(iter(self._items))
            self._items.pop(oldest)
            self.evictions += 1

    def add(self, obj: Any, nbytes: int) -> str:
        """Store ``obj`` (about ``nbytes`` of memory); return its new random id."""
        if nbytes > self.max_bytes:
            raise ApiError(413, "image too large for this server's memory budget")
        sid = secrets.token_urlsafe(12)
        with self._lock:
            self._items[sid] = (obj, int(nbytes))
            self._evict(keep=sid)
        return sid

    def get(self, sid: str) -> Any:
        """The object stored under ``sid`` (404 when unknown or evicted)."""
        with self._lock:
            item = self._items.get(sid)
            if item is None:
                raise ApiError(404, "unknown or expired session: open the image again")
            self._items.move_to_end(sid)
            return item[0]

    def resize(self, sid: str, nbytes: int) -> None:
        """Update the memory estimate of ``sid`` (evicting others if needed)."""
        with self._lock:
            item = self._items.get(sid)
            if item is None:
                return
            self._items[sid] = (item[0], int(nbytes))
            self._evict(keep=sid)

    def remove(self, sid: str) -> None:
        with self._lock:
            self._items.pop(sid, None)


# ----------------------------------------------------------------------------------------- jobs


@dataclass
class Job:
    id: str
    kind: str
    owner: str | None = None
    state: str = "queued"
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    error_status: int = 500
    result: Any = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state,
                "progress": round(float(self.progress), 4), "message": self.message,
                "error": self.error}


class JobManager:
    """Run long CPU work in a bounded thread pool and keep its progress for polling."""

    def __init__(self, workers: int = 2, keep: int = 200):
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="sempix-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = int(keep)

    def submit(self, fn: Callable[..., Any], *args: Any, kind: str = "job", owner: str | None = None) -> str:
        """Run ``fn(*args, progress)`` in the pool; return the job id."""
        job = Job(id=secrets.token_urlsafe(9), kind=kind, owner=owner)
        with self._lock:
            self._jobs[job.id] = job
            # forget the oldest finished jobs
            while len(self._jobs) > self.keep:
                for jid, j in self._jobs.items():
                    if j.state in ("done", "error"):
                        self._jobs.pop(jid)
                        break
                else:
                    break

        def progress(fraction: float, message: str = "") -> None:
            job.progress = min(1.0, max(0.0, float(fraction)))
            if message:
                job.message = str(message)

        def run() -> None:
            job.state = "running"
            try:
                job.result = fn(*args, progress)
                job.progress = 1.0
                job.state = "done"
            except ApiError as exc:
                job.error, job.error_status, job.state = exc.message, exc.status, "error"
            except (InputError, ModelUnavailableError) as exc:
                job.error, job.error_status, job.state = str(exc).splitlines()[0], 400, "error"
            except MemoryError:
                job.error, job.error_status, job.state = "out of memory: try a smaller image", 507, "error"
            except Exception as exc:  # noqa: BLE001
                log.error("job %s failed: %s", job.id, "".join(traceback.format_exception(exc)))
                job.error, job.error_status, job.state = f"internal error: {type(exc).__name__}: {exc}", 500, "error"
            finally:
                job.finished = time.time()
                job.done_event.set()

        self._pool.submit(run)
        return job.id

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "unknown job")
        return job

    def status(self, job_id: str) -> dict:
        return self.get(job_id).as_dict()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        job = self.get(job_id)
        job.done_event.wait(timeout)
        return job

    def result(self, job_id: str) -> Any:
        job = self.get(job_id)
        if job.state == "error":
            raise ApiError(job.error_status, job.error or "job failed")
        if job.state != "done":
            raise ApiError(409, f"job is still {job.state} ({job.progress * 100:.0f}%)")
        return job.result

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Server settings (all can be passed to ``create_app(**settings)``)."""

    max_upload_bytes: int = 64_000_000
    max_pixels: int = 24_000_000
    max_sessions: int = 8
    max_memory_bytes: int = 2_000_000_000
    backend: str = "ade20k"
    workers: int = 2
    work_pixels: int = 120_000
    feature_dim: int | None = None
    strict: bool = False
    allowed_hosts: tuple = ()  # extra Host names accepted besides loopback names and the bound address


@dataclass
class ServerState:
    settings: Settings
    sessions: SessionStore
    jobs: JobManager
    extra: dict = field(default_factory=dict)


def get_state(request: Any) -> ServerState:
    """The app's :class:`ServerState` (``request.app.state.sempix``)."""
    return request.app.state.sempix


# ------------------------------------------------------------------------------------- encoding


def encode_image(rgb: np.ndarray, fmt: str = "png", alpha: np.ndarray | None = None,
                 quality: int = 92) -> bytes:
    """Encode (H, W, 3) RGB or (H, W) grey float32 in [0, 1] as PNG or JPEG bytes."""
    from PIL import Image as PILImage

    from sempix.image import to_uint8

    arr = to_uint8(rgb)
    if alpha is not None and fmt == "png":
        arr = np.dstack([arr, to_uint8(alpha)])
    im = PILImage.fromarray(arr)
    buf = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        if im.mode == "RGBA":
            im = im.convert("RGB")
        im.save(buf, format="JPEG", quality=int(quality))
    elif fmt == "png":
        im.save(buf, format="PNG", compress_level=1)
    else:
        raise ApiError(400, f"unknown image format {fmt!r} (use png or jpeg)")
    return buf.getvalue()


def image_response(rgb: np.ndarray, fmt: str = "png", filename: str | None = None,
                   quality: int = 92) -> Any:
    """A ``fastapi.Response`` with the encoded image (download name when ``filename``)."""
    from fastapi import Response

    fmt = "jpeg" if fmt in ("jpg", "jpeg") else fmt
    body = encode_image(rgb, fmt, quality=quality)
    headers = {"Cache-Control": "no-store"}
    if filename:
        from sempix.web.security import content_disposition

        headers["Content-Disposition"] = content_disposition(filename)
    return Response(body, media_type=f"image/{fmt}", headers=headers)
