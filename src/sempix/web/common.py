"""Reusable server pieces of the sempix web app (mask editor and recolor page).

Everything here is public and meant to be shared by the routers of ``sempix.web``
(``sempix.web.app`` for the mask editor, ``sempix.web.recolor_api`` for the recolor page).

Errors
    Raise the typed errors of :mod:`sempix.errors` (``InputError``, ``TooLargeError``,
    ``NotFoundError``, ``SessionExpiredError``, ``ConflictError``, ``NotReadyError``,
    ``InvalidRequestError``, ``BusyError``, ``OverBudgetError``, ``ModelUnavailableError``...);
    ``STATUS`` maps each class to its HTTP status in one place (``status_for(exc)``, most derived
    class first) and ``create_app`` installs the handlers that answer ``{"error": message[,
    "code": exc.code]}``. ``MemoryError`` becomes a 507 and any other exception a 500 (JSON, no
    traceback sent to the client). ``ApiError(status, message)`` is kept for old callers only.

Uploads
    ``await read_upload(upload, max_bytes)`` -> bytes: reads a FastAPI ``UploadFile`` in chunks and
    stops with 413 as soon as it is larger than ``max_bytes``; 400 for zero bytes.
    ``decode_image(data, max_pixels, name="upload")`` -> ``sempix.image.LoadedImage``: checks the
    declared size from the header *before* decoding (413 for too many pixels, e.g. a 50k x 50k PNG),
    then decodes through ``sempix.image.read_image`` (400 for not-an-image / truncated data).
    Decodes from the bytes in memory: never takes a client-supplied path, never writes a file.

State
    ``get_state(request)`` -> ``ServerState`` with ``.settings`` (``Settings``), ``.sessions``
    (``SessionStore``), ``.jobs`` (``JobManager``). One per app, created by ``create_app``.

Sessions (bounded memory)
    ``SessionStore(max_sessions, max_bytes)``: thread-safe LRU. ``store.add(obj, nbytes)`` -> id
    (random, unguessable); ``store.get(id)`` -> obj (``NotFoundError`` when unknown,
    ``SessionExpiredError`` when evicted; marks it recently used); ``store.resize(id, nbytes)``
    after an object grew (e.g. features were cached); ``store.remove(id)``. The least recently used
    entries are evicted when either limit would be exceeded. Store any object; give it a ``lock``
    attribute (``threading.Lock``) if its methods are not thread safe.

Jobs (long CPU work with progress for the page to poll)
    ``jobs.submit(fn, *args, kind="features", owner=None)`` -> job id. ``fn(*args, progress)`` runs
    in a bounded thread pool; ``progress(fraction, message)`` updates the job. ``jobs.status(id)``
    -> JSON-able dict ``{"id", "kind", "state": "queued|running|done|error", "progress", "message",
    "error"}``; ``jobs.result(id)`` -> the return value (409 while not done, the job's error as
    exception when it failed). Old finished jobs are forgotten (bounded).

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
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sempix.errors import (
    BusyError,
    ConflictError,
    ImageDecodeError,
    InputError,
    InvalidRequestError,
    MissingDependencyError,
    ModelUnavailableError,
    NotFoundError,
    NotReadyError,
    OverBudgetError,
    SempixError,
    SessionExpiredError,
    TooLargeError,
    UnsupportedFormatError,
)

log = logging.getLogger("sempix.web")

# --------------------------------------------------------------------------------------- errors


#: HTTP status of each error class: the one place that decides it (most derived class wins)
STATUS: dict[type[BaseException], int] = {
    SessionExpiredError: 410,
    NotFoundError: 404,
    NotReadyError: 409,
    ConflictError: 409,
    TooLargeError: 413,
    InvalidRequestError: 422,
    UnsupportedFormatError: 400,
    ImageDecodeError: 400,
    InputError: 400,
    ModelUnavailableError: 503,
    BusyError: 503,
    MissingDependencyError: 501,
    OverBudgetError: 507,
    MemoryError: 507,
    SempixError: 500,
}


class ApiError(SempixError):
    """Deprecated: an error with an explicit HTTP ``status``; raise a typed error instead."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message, code=code)
        self.status = int(status)
        self.message = str(message)


def status_for(exc: BaseException) -> int:
    """The HTTP status of an exception: ``STATUS`` of its most derived listed class, else 500."""
    if isinstance(exc, ApiError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_message(exc: BaseException, default: str = "error") -> str:
    """First line of an error's message (what the client is shown)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else default


def install_error_handlers(app: Any) -> None:
    """Make every error a JSON ``{"error": ...}`` answer with the status ``STATUS`` gives it."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def _json(status: int, message: str, code: str | None = None) -> JSONResponse:
        body = {"error": message}
        if code:
            body["code"] = code
        return JSONResponse(body, status_code=status)

    @app.exception_handler(SempixError)
    async def _sempix_error(request, exc: SempixError):
        status = status_for(exc)
        if status >= 500 and type(exc) is SempixError:
            log.error("internal error: %s", "".join(traceback.format_exception(exc)))
        return _json(status, error_message(exc, type(exc).__name__), exc.code)

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
        return _json(status_for(exc), "out of memory: try a smaller image")

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):
        log.error("internal error: %s", "".join(traceback.format_exception(exc)))
        return _json(500, f"internal error: {type(exc).__name__}")


# -------------------------------------------------------------------------------------- uploads


async def read_upload(upload: Any, max_bytes: int) -> bytes:
    """Read a FastAPI ``UploadFile`` completely; more than ``max_bytes`` is a ``TooLargeError``
    (413), nothing an ``ImageDecodeError`` (400)."""
    if upload is None:
        raise InputError("no file uploaded (send multipart/form-data with a 'file' field)")
    chunks = []
    total = 0
    while True:
        chunk = await upload.read(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise TooLargeError(f"upload too large: more than {max_bytes / 1e6:.0f} MB")
        chunks.append(chunk)
    if total == 0:
        raise ImageDecodeError("empty upload (0 bytes): choose an image file")
    return b"".join(chunks)


def decode_image(data: bytes, max_pixels: int, name: str = "upload") -> Any:
    """Validate and decode uploaded bytes into a :class:`sempix.image.LoadedImage`, in memory.

    Parameters
    ----------
    data : raw file bytes from the client.
    max_pixels : refuse (413) images whose header declares more pixels than this (checked by
        ``read_image`` before any pixel is decoded, e.g. a 50k x 50k PNG of a few bytes).
    name : a label used in messages only (never a path).

    Returns
    -------
    LoadedImage with ``.rgb`` (H, W, 3) float32 in [0, 1] (EXIF orientation applied),
    ``.path`` None.

    Raises
    ------
    TooLargeError (413), UnsupportedFormatError / ImageDecodeError (400).
    """
    from sempix.image import read_image

    if not data:
        raise ImageDecodeError("empty upload (0 bytes): choose an image file")
    try:
        loaded = read_image(data, max_pixels=max_pixels, name=name)
    except TooLargeError as exc:
        if exc.size is None:
            raise
        w, h = exc.size
        raise TooLargeError(
            f"image too large: {w}x{h} = {w * h / 1e6:.1f} MP "
            f"(this server accepts at most {max_pixels / 1e6:.1f} MP)", size=exc.size
        ) from None
    rgb = np.asarray(loaded.rgb)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageDecodeError(f"{name}: decoded image is empty")
    return loaded


# ------------------------------------------------------------------------------------- sessions


def _default_memory_bytes() -> int:
    """Default memory budget: a quarter of the machine's RAM, between 1 GB and 16 GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8_000_000_000
    return int(min(16e9, max(1e9, total / 4)))


#: smallest memory a session is assumed to take when sizing ``max_sessions`` from the budget
SESSION_FLOOR_BYTES = 4_000_000


def default_max_sessions(max_bytes: int) -> int:
    """Session count limit derived from the memory budget (issue 12 item 11): memory decides
    first."""
    return int(max(16, min(4096, max_bytes // SESSION_FLOOR_BYTES)))


class SessionStore:
    """Thread-safe LRU store with a count limit and a byte budget that also covers per-request work.

    Every entry has a base size (``add``/``resize``) plus named extras (``charge``: e.g. finished
    job results that belong to the session). ``reserve(nbytes)`` is a context manager that holds
    memory for the duration of one request's work (evicting least recently used sessions first,
    then waiting for other requests, then 503). Evicted and deleted sessions are remembered (a
    bounded set) so that they are answered with 410 ``{"error", "code": "session_gone"}`` instead of
    a plain 404, and ``on_evict(sid, obj)`` is called for each (outside the lock) so their jobs can
    be cancelled and their results dropped.
    """

    def __init__(self, max_sessions: int | None = None, max_bytes: int = 2_000_000_000,
                 on_evict: Callable[[str, Any], None] | None = None, wait_s: float = 30.0):
        self.max_bytes = int(max_bytes)
        self.max_sessions = (
            int(max_sessions) if max_sessions else default_max_sessions(self.max_bytes)
        )
        self.on_evict = on_evict
        self.wait_s = float(wait_s)
        self._items: OrderedDict[str, list] = OrderedDict()  # sid -> [obj, base, {key: extra}]
        self._gone: OrderedDict[str, str] = OrderedDict()  # sid -> why ("evicted" | "deleted")
        self._reserved: dict[int, tuple[int, str | None]] = {}
        self._next_token = 0
        self._cond = threading.Condition()
        self.evictions = 0
        self.peak_bytes = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @staticmethod
    def _size(item: list) -> int:
        return int(item[1] + sum(item[2].values()))

    def _total(self) -> int:
        return sum(self._size(i) for i in self._items.values()) + sum(
            n for n, _ in self._reserved.values()
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the sessions (with their extras) plus the active reservations."""
        with self._cond:
            return self._total()

    @property
    def reserved_bytes(self) -> int:
        with self._cond:
            return sum(n for n, _ in self._reserved.values())

    def _forget(self, sid: str, why: str) -> tuple[str, Any]:
        obj = self._items.pop(sid)[0]
        self._gone[sid] = why
        while len(self._gone) > 10_000:
            self._gone.popitem(last=False)
        return sid, obj

    def _evict(self, keep: set[str]) -> list[tuple[str, Any]]:
        """Evict LRU entries (never those in ``keep`` or with an active reservation)."""
        busy = {s for _, s in self._reserved.values() if s is not None} | keep
        out = []
        while len(self._items) > self.max_sessions or self._total() > self.max_bytes:
            victim = next((s for s in self._items if s not in busy), None)
            if victim is None:
                break
            out.append(self._forget(victim, "evicted"))
            self.evictions += 1
        return out

    def _notify(self, gone: list[tuple[str, Any]]) -> None:
        if self.on_evict is None:
            return
        for sid, obj in gone:
            try:
                self.on_evict(sid, obj)
            except Exception:
                log.exception("on_evict(%s) failed", sid)

    def add(self, obj: Any, nbytes: int) -> str:
        """Store ``obj`` (about ``nbytes`` of memory); return its new random id."""
        if nbytes > self.max_bytes:
            raise TooLargeError(
                f"image too large for this server's memory budget ({nbytes / 1e6:.0f} MB > "
                f"{self.max_bytes / 1e6:.0f} MB; see sempix serve --max-memory-mb)"
            )
        sid = secrets.token_urlsafe(12)
        with self._cond:
            self._items[sid] = [obj, int(nbytes), {}]
            gone = self._evict(keep={sid})
        self._notify(gone)
        return sid

    def _missing(self, sid: str) -> NotFoundError:
        why = self._gone.get(sid)
        if why == "evicted":
            return SessionExpiredError(
                "this image was closed to free server memory (too many open images): open it again"
            )
        if why == "deleted":
            return SessionExpiredError("this session was closed: open the image again")
        return NotFoundError(
            "unknown or expired session: open the image again", code="session_unknown"
        )

    def get(self, sid: str, kind: type | tuple[type, ...] | None = None) -> Any:
        """The object stored under ``sid`` (404 unknown, 410 evicted/deleted, 409 wrong kind)."""
        with self._cond:
            item = self._items.get(sid)
            if item is None:
                raise self._missing(sid)
            obj = item[0]
            if kind is not None and not isinstance(obj, kind):
                want = getattr(kind, "KIND", None) or "another kind of session"
                have = getattr(obj, "KIND", type(obj).__name__)
                raise ConflictError(
                    f"session {sid} is a {have}, not a {want}: use the matching page/API",
                    code="wrong_session_kind",
                )
            self._items.move_to_end(sid)
            return obj

    def exists(self, sid: str) -> bool:
        with self._cond:
            return sid in self._items

    def resize(self, sid: str, nbytes: int) -> None:
        """Update the base memory estimate of ``sid`` (evicting others if needed)."""
        with self._cond:
            item = self._items.get(sid)
            if item is None:
                return
            item[1] = int(nbytes)
            gone = self._evict(keep={sid})
        self._notify(gone)

    def charge(self, sid: str | None, key: str, nbytes: int) -> bool:
        """Account ``nbytes`` under ``key`` to session ``sid`` (0 removes it).

        False if ``sid`` is gone."""
        if sid is None:
            return False
        with self._cond:
            item = self._items.get(sid)
            if item is None:
                return False
            if nbytes > 0:
                item[2][key] = int(nbytes)
            else:
                item[2].pop(key, None)
            gone = self._evict(keep={sid})
        self._notify(gone)
        return True

    def remove(self, sid: str) -> None:
        with self._cond:
            gone = [self._forget(sid, "deleted")] if sid in self._items else []
        self._notify(gone)

    def clear(self) -> None:
        with self._cond:
            gone = [self._forget(s, "deleted") for s in list(self._items)]
        self._notify(gone)

    @contextmanager
    def reserve(self, nbytes: int, sid: str | None = None, what: str = "this request"):
        """Hold ``nbytes`` of the budget while a request works (context manager).

        Least recently used sessions (not ``sid``, not those with work in flight) are evicted to
        make room; when that is not enough, wait up to ``wait_s`` seconds for other requests to
        finish, then answer 503. More than the whole budget is a 507.
        """
        nbytes = int(max(0, nbytes))
        if nbytes > self.max_bytes:
            raise OverBudgetError(
                f"{what} needs about {nbytes / 1e6:.0f} MB, more than this server's memory budget "
                f"({self.max_bytes / 1e6:.0f} MB; sempix serve --max-memory-mb)"
            )
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            token = self._next_token
            self._next_token += 1
            gone: list = []
            while True:
                self._reserved[token] = (nbytes, sid)
                gone += self._evict(keep={sid} if sid else set())
                if self._total() <= self.max_bytes or len(self._reserved) == 1:
                    self.peak_bytes = max(self.peak_bytes, self._total())
                    break
                del self._reserved[token]
                left = deadline - time.monotonic()
                if left <= 0:
                    self._cond.release()
                    try:
                        self._notify(gone)
                    finally:
                        self._cond.acquire()
                    raise BusyError(
                        "server busy: not enough memory for this request right now; "
                        "try again in a moment"
                    )
                self._cond.wait(min(left, 0.5))
        self._notify(gone)
        try:
            yield
        finally:
            with self._cond:
                self._reserved.pop(token, None)
                self._cond.notify_all()


# ----------------------------------------------------------------------------------------- jobs


class JobCancelled(Exception):
    """Raised inside a job's ``progress`` callback once the job was cancelled."""


def result_nbytes(obj: Any) -> int:
    """Approximate memory of a job result (arrays, bytes, lists/tuples/dicts of them)."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    if isinstance(obj, (list, tuple)):
        return sum(result_nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(result_nbytes(o) for o in obj.values())
    n = getattr(obj, "nbytes", None)
    return int(n) if isinstance(n, (int, np.integer)) else 0


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
    #: the exception the job failed with (re-raised by ``JobManager.result``)
    exc: BaseException | None = None
    result: Any = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    version: int = 0

    TERMINAL = ("done", "error", "cancelled")

    @property
    def finished_state(self) -> bool:
        return self.state in self.TERMINAL

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state,
                "progress": round(float(self.progress), 4), "message": self.message,
                "error": self.error, "status": self.error_status if self.state == "error" else None}


class JobManager:
    """Run long CPU work in a bounded thread pool: progress, cancellation, results per session.

    ``submit(fn, *args, kind=, owner=)`` runs ``fn(*args, progress)``; ``progress(fraction, msg)``
    raises :class:`JobCancelled` after ``cancel(job)``, so library code stops at its next progress
    report. A finished job's result is charged to its owner session in ``store`` (the memory
    budget) and dropped when the session is evicted or deleted (``drop_owner``).
    """

    def __init__(self, workers: int = 2, keep: int = 200, store: SessionStore | None = None):
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, int(workers)), thread_name_prefix="sempix-job"
        )
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.keep = int(keep)
        self.store = store

    def _prune(self) -> None:
        while len(self._jobs) > self.keep:
            for jid, j in self._jobs.items():
                if j.finished_state:
                    self._jobs.pop(jid)
                    if self.store is not None:
                        self.store.charge(j.owner, f"job:{jid}", 0)
                    break
            else:
                break

    def submit(
        self, fn: Callable[..., Any], *args: Any, kind: str = "job", owner: str | None = None
    ) -> str:
        """Run ``fn(*args, progress)`` in the pool; return the job id."""
        job = Job(id=secrets.token_urlsafe(9), kind=kind, owner=owner)
        with self._lock:
            self._jobs[job.id] = job
            self._prune()

        def progress(fraction: float, message: str = "") -> None:
            if job.cancel_event.is_set():
                raise JobCancelled()
            job.progress = min(1.0, max(0.0, float(fraction)))
            if message:
                job.message = str(message)
            job.version += 1

        def run() -> None:
            if job.cancel_event.is_set():
                job.state = "cancelled"
                job.finished = time.time()
                job.done_event.set()
                return
            job.state = "running"
            job.version += 1
            try:
                result = fn(*args, progress)
                if job.cancel_event.is_set():
                    raise JobCancelled()
                if (
                    self.store is not None
                    and job.owner is not None
                    and not self.store.charge(job.owner, f"job:{job.id}", result_nbytes(result))
                ):
                    raise SessionExpiredError("the session of this job was closed")
                job.result = result
                job.progress = 1.0
                job.state = "done"
            except JobCancelled:
                job.state, job.message = "cancelled", "cancelled"
            except SempixError as exc:
                self._failed(job, exc)
            except MemoryError:
                self._failed(job, OverBudgetError("out of memory: try a smaller image"))
            except Exception as exc:  # noqa: BLE001
                if job.cancel_event.is_set():
                    job.state, job.message = "cancelled", "cancelled"
                else:
                    log.error("job %s failed: %s", job.id, "".join(traceback.format_exception(exc)))
                    self._failed(job, SempixError(f"internal error: {type(exc).__name__}: {exc}"))
            finally:
                job.finished = time.time()
                job.version += 1
                job.done_event.set()

        self._pool.submit(run)
        return job.id

    @staticmethod
    def _failed(job: Job, exc: BaseException) -> None:
        job.exc = exc.with_traceback(None)
        job.error = error_message(exc, "job failed")
        job.error_status = status_for(exc)
        job.state = "error"

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError("unknown job")
        return job

    def status(self, job_id: str) -> dict:
        return self.get(job_id).as_dict()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        job = self.get(job_id)
        job.done_event.wait(timeout)
        return job

    def cancel(self, job_id: str) -> dict:
        """Ask a job to stop (queued: never runs; running: stops at its next progress report)."""
        job = self.get(job_id)
        if not job.finished_state:
            job.cancel_event.set()
            job.message = "cancelling"
            job.version += 1
        return job.as_dict()

    def drop_owner(self, owner: str) -> int:
        """Cancel the unfinished jobs of ``owner`` and forget the results of its finished ones."""
        n = 0
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.owner == owner]
        for j in jobs:
            if not j.finished_state:
                j.cancel_event.set()
                n += 1
            j.result = None
            j.owner_gone = True
        return n

    def jobs_of(self, owner: str) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.owner == owner]

    def result(self, job_id: str) -> Any:
        job = self.get(job_id)
        if getattr(job, "owner_gone", False):
            raise SessionExpiredError(
                "the session of this job was closed: its results were deleted"
            )
        if job.state == "error":
            raise job.exc if job.exc is not None else SempixError(job.error or "job failed")
        if job.state == "cancelled":
            raise ConflictError("the job was cancelled", code="cancelled")
        if job.state != "done":
            raise NotReadyError(f"job is still {job.state} ({job.progress * 100:.0f}%)")
        return job.result

    def running(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if not j.finished_state)

    def shutdown(self) -> None:
        for j in list(self._jobs.values()):
            j.cancel_event.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------- settings


@dataclass
class Settings:
    """Server settings (all can be passed to ``create_app(**settings)``)."""

    max_upload_bytes: int = 64_000_000
    max_pixels: int = 24_000_000
    max_sessions: int | None = None  # None: sized by the memory budget (default_max_sessions)
    max_memory_bytes: int = field(default_factory=_default_memory_bytes)
    backend: str = "ade20k"
    workers: int = 2
    work_pixels: int = 120_000
    feature_dim: int | None = None
    strict: bool = False
    preview_pixels: int = 1_000_000  # interactive maps/previews are computed at most this large
    softseg_pixels: int = 150_000  # soft layers are computed at most this large
    # recolor solves and previews at this size; renders at full size
    recolor_work_pixels: int = 600_000
    adjust_styles_dir: str | None = None  # style files offered by name (Style panel)
    # extra Host names accepted besides loopback names and the bound address
    allowed_hosts: tuple = ()


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
        raise InputError(f"unknown image format {fmt!r} (use png or jpeg)")
    return buf.getvalue()


def image_response(rgb: np.ndarray, fmt: str = "png", filename: str | None = None,
                   quality: int = 92) -> Any:
    """A ``fastapi.Response`` with the encoded image (download name when ``filename``)."""
    from fastapi import Response

    fmt = "jpeg" if fmt in ("jpg", "jpeg") else fmt
    body = encode_image(rgb, fmt, quality=quality)
    headers = {"Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = attachment(filename)
    return Response(body, media_type=f"image/{fmt}", headers=headers)


def attachment(filename: str) -> str:
    """RFC 6266 ``Content-Disposition`` value (``sempix.web.security.content_disposition``)."""
    from sempix.web.security import content_disposition

    return content_disposition(filename)


def bytes_response(body: bytes, media_type: str, filename: str | None = None) -> Any:
    """A download ``Response`` for already encoded bytes (zip, ORA, PSD...)."""
    from fastapi import Response

    headers = {"Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = attachment(filename)
    return Response(body, media_type=media_type, headers=headers)
