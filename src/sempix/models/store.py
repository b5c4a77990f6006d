"""Model file lookup, verification and download.

Resolution order of :func:`get_model_path`:

1. an explicit path (a file, or a folder holding the file);
2. ``$SEMPIX_MODEL_DIR`` (one folder, or several separated by ``os.pathsep``);
3. the user cache: ``$SEMPIX_CACHE_DIR/models``, else the platform cache dir
   (``platformdirs.user_cache_dir("sempix")/models``, e.g. ``~/.cache/sempix/models``);
4. a download into the cache, unless ``download=False`` or offline (``SEMPIX_OFFLINE=1``):
   the registry's URLs are tried in order (``$SEMPIX_MODEL_URL_BASE/<file name>`` replaces them
   when set, ``urls=`` replaces them per call); each transfer streams into a temporary
   ``.part`` file in the cache folder, its size and sha256 are checked, and only then is it
   renamed to the final name, so a partial or corrupt download is never left under that name;
5. otherwise :class:`~sempix.errors.ModelUnavailableError` with one line saying where to put
   the file.

Files found locally are accepted when their size matches the registry and their sha256 does:
the digest is computed once per process and file (:func:`verified`, the verdict cached by path,
size and modification time), so a corrupted cached model is never used silently. A corrupt file in
the cache is replaced by a fresh download (one warning); one in ``$SEMPIX_MODEL_DIR`` is skipped
(never deleted) with one warning, and the next folder or a download is used instead.

Models that are folders on the Hugging Face Hub (``ModelSpec.hf_repo``, the SegFormer
checkpoints) follow the same order; their download is :func:`sempix.models.hub.fetch_folder`
(the Hub client checks each file's size; there is no published sha256 per folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sempix import _config
from sempix.errors import InputError, ModelUnavailableError
from sempix.models.registry import ModelSpec, get_spec

ENV_MODEL_DIR = _config.ENV_MODEL_DIR
ENV_CACHE_DIR = _config.ENV_CACHE_DIR
ENV_OFFLINE = "SEMPIX_OFFLINE"
ENV_URL_BASE = "SEMPIX_MODEL_URL_BASE"
_CHUNK = 1 << 20
_USER_AGENT = "sempix-model-store/1 (+https://pypi.org/project/sempix)"

ProgressArg = bool | Callable[[float, str], None] | None


def _spec(name: str | ModelSpec) -> ModelSpec:
    if isinstance(name, ModelSpec):
        return name
    try:
        return get_spec(name)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def cache_dir() -> Path:
    """User cache directory for models (``$SEMPIX_CACHE_DIR/models`` or platform default)."""
    return _config.cache_dir("models")


def model_dirs() -> list[Path]:
    """Folders searched, in order: ``$SEMPIX_MODEL_DIR`` entries, then :func:`cache_dir`."""
    dirs: list[Path] = []
    env = os.environ.get(ENV_MODEL_DIR, "")
    for part in env.split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    dirs.append(cache_dir())
    return dirs


def is_offline() -> bool:
    """True when ``$SEMPIX_OFFLINE`` is set to 1/true/yes/on."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _digest_ok(digest: str, expected: str) -> bool:
    """Full digest or a published prefix (torchvision file names carry 8 hex digits)."""
    return bool(expected) and digest.lower().startswith(expected.lower())


def _size_ok(path: Path, spec: ModelSpec) -> bool:
    return spec.size is None or path.stat().st_size == spec.size


def verify_file(path: str | os.PathLike, name: str | ModelSpec) -> tuple[bool, str]:
    """Check a file's size and sha256 against the registry.

    Returns
    -------
    (ok, message) ; ``message`` explains a mismatch in one line.
    """
    spec = _spec(name)
    p = Path(path)
    if spec.hf_repo:
        from sempix.models.hub import folder_complete

        if folder_complete(p, spec):
            return True, f"{p}: all files present (Hub folder; the Hub client checked sizes)"
        return False, f"{p}: incomplete folder (expected {', '.join(spec.hf_files)})"
    size = p.stat().st_size
    if spec.size is not None and size != spec.size:
        return False, f"{p}: size {size} bytes, expected {spec.size}"
    digest = sha256_file(p)
    if not _digest_ok(digest, spec.sha256):
        return False, f"{p}: sha256 {digest[:16]}..., expected {spec.sha256[:16]}..."
    return True, f"{p}: size and sha256 ok"


_VERDICTS: dict[tuple, tuple[bool, str]] = {}
_VERDICTS_LOCK = threading.Lock()
_WARNED: set[str] = set()
log = logging.getLogger("sempix.models")


def verified(
    path: str | os.PathLike, name: str | ModelSpec, *, fresh: bool = False
) -> tuple[bool, str]:
    """:func:`verify_file` once per process for each (path, size, mtime) -- the cached verdict.

    ``fresh=True`` recomputes (``--verify``). A file rewritten in place (new size or mtime) is
    checked again.
    """
    spec = _spec(name)
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, spec.name)
    with _VERDICTS_LOCK:
        hit = None if fresh else _VERDICTS.get(key)
    if hit is not None:
        return hit
    verdict = verify_file(p, spec)
    with _VERDICTS_LOCK:
        _VERDICTS[key] = verdict
    return verdict


def _warn_once(key: str, message: str) -> None:
    with _VERDICTS_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning(message)


@dataclass
class _Scan:
    found: Path | None
    rejected: list[str]


def _scan(spec: ModelSpec, verify: bool = False) -> _Scan:
    if spec.hf_repo:
        from sempix.models.hub import find_folder

        return _Scan(find_folder(spec, model_dirs()), [])
    rejected: list[str] = []
    names = (spec.filename, *spec.aliases)
    for d in model_dirs():
        for n in names:
            p = d / n
            if not p.is_file():
                continue
            if not _size_ok(p, spec):
                rejected.append(f"{p} has {p.stat().st_size} bytes, expected {spec.size}")
                continue
            if spec.sha256:
                ok, msg = verified(p, spec, fresh=verify)
                if not ok:
                    rejected.append(
                        f"{p}, corrupt ({msg.split(': ', 1)[-1]}; delete it, then "
                        f"`sempix models fetch {spec.name}`)"
                    )
                    continue
            return _Scan(p, rejected)
    return _Scan(None, rejected)


def find_local(name: str | ModelSpec, *, verify: bool = False) -> Path | None:
    """Return a local path for model ``name`` without downloading, or None.

    Files whose size differs from the registry are skipped; ``verify=True`` also checks sha256.
    """
    return _scan(_spec(name), verify).found


def is_available(name: str | ModelSpec) -> bool:
    """True if the model can be used without a download."""
    return find_local(name) is not None


def model_urls(name: str | ModelSpec, urls: Sequence[str] | None = None) -> list[str]:
    """Download URLs in the order tried (``urls`` > ``$SEMPIX_MODEL_URL_BASE`` > registry)."""
    spec = _spec(name)
    if urls is not None:
        return list(urls)
    base = os.environ.get(ENV_URL_BASE, "").strip()
    if base:
        return [base.rstrip("/") + "/" + spec.filename]
    return list(spec.urls)


def _where_to_put(spec: ModelSpec) -> str:
    if spec.hf_repo:
        from sempix.models.hub import where_to_put

        return where_to_put(spec, model_dirs())
    env = os.environ.get(ENV_MODEL_DIR)
    place = f"${ENV_MODEL_DIR} ({env})" if env else f"${ENV_MODEL_DIR}"
    origin = spec.urls[0] if spec.urls else "its publisher"
    return f"download {spec.filename} from {origin} and put it in {place} or {cache_dir()}"


# ---------------------------------------------------------------------------------------------
# download


@contextlib.contextmanager
def _progress_bar(progress: ProgressArg, label: str) -> Iterator[Callable[[int, int | None], None]]:
    """Yield update(done_bytes, total_bytes|None).
    ``progress``: True (rich bar), callable, falsy."""
    if callable(progress):

        def upd(done: int, total: int | None) -> None:
            frac = done / total if total else 0.0
            progress(min(1.0, frac), f"{label}: {done / 1e6:.1f} MB")

        yield upd
        return
    if not progress:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(file=sys.stderr)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def upd(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield upd


def _fetch_one(
    url: str, spec: ModelSpec, dest_dir: Path, progress: ProgressArg, timeout: float
) -> Path:
    """Download ``url`` into a temp file in ``dest_dir``, verify, return the temp path."""
    import urllib.request  # here: ssl + http cost ~0.1 s of every process start otherwise

    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=dest_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        done = 0
        with open(tmp, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else spec.size
            with _progress_bar(progress, spec.name) as upd:
                upd(0, total)
                while True:
                    block = resp.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    h.update(block)
                    done += len(block)
                    upd(done, total)
            out.flush()
            os.fsync(out.fileno())
        if length and length.isdigit() and done != int(length):
            raise OSError(f"transfer ended after {done} of {length} bytes")
        if spec.size is not None and done != spec.size:
            raise OSError(f"got {done} bytes, expected {spec.size}")
        digest = h.hexdigest()
        if not _digest_ok(digest, spec.sha256):
            raise OSError(
                f"checksum mismatch (sha256 {digest[:16]}..., expected {spec.sha256[:16]}...)"
            )
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reason(exc: BaseException) -> str:
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        r = exc.reason
        return getattr(r, "strerror", None) or str(r)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _remove_stale_parts(dest: Path, filename: str, max_age_s: float = 86400.0) -> None:
    """Delete ``.FILENAME.*.part`` leftovers of killed downloads (older than a day)."""
    import time

    now = time.time()
    for part in dest.glob(f".{filename}.*.part"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > max_age_s:
                if part.is_dir():  # an interrupted Hub folder download
                    import shutil

                    shutil.rmtree(part)
                else:
                    part.unlink()


def download(
    name: str | ModelSpec,
    dest_dir: str | os.PathLike | None = None,
    *,
    urls: Sequence[str] | None = None,
    progress: ProgressArg = True,
    timeout: float = 60.0,
) -> Path:
    """Download model ``name`` into ``dest_dir`` (default: :func:`cache_dir`), verified.

    Parameters
    ----------
    name : registry name or a :class:`ModelSpec`.
    dest_dir : target folder.
    urls : URLs to try in order instead of the registry's (see :func:`model_urls`).
    progress : True for a rich progress bar on stderr, a ``progress(fraction, message)``
        callable, or False for silence.
    timeout : socket timeout in seconds.

    Returns
    -------
    Path of the verified file ``dest_dir / spec.filename``.

    Raises
    ------
    ModelUnavailableError
        Offline, or every URL failed (unreachable, HTTP error, truncated, wrong size/checksum).
    """
    spec = _spec(name)
    if is_offline():
        raise ModelUnavailableError(
            f"model {spec.name!r} is not available and downloads are off ({ENV_OFFLINE}=1): "
            + _where_to_put(spec)
        )
    dest = Path(dest_dir) if dest_dir is not None else cache_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot create the model folder {dest} ({exc.strerror})"
        ) from None
    if spec.hf_repo:
        from sempix.models.hub import fetch_folder

        _remove_stale_parts(dest, spec.filename)
        with _progress_bar(progress, spec.name) as upd:
            return fetch_folder(spec, dest, progress=lambda f, m: upd(int(1000 * f), 1000),
                                timeout=timeout)
    final = dest / spec.filename
    _remove_stale_parts(dest, spec.filename)
    failures: list[str] = []
    for url in model_urls(spec, urls):
        try:
            tmp = _fetch_one(url, spec, dest, progress, timeout)
        except Exception as exc:  # noqa: BLE001 - URLError, OSError, http.client.IncompleteRead...
            failures.append(f"{url}: {_reason(exc)}")
            continue
        os.replace(tmp, final)  # verified while streaming: record the verdict for this process
        st = final.stat()
        with _VERDICTS_LOCK:
            _VERDICTS[(str(final.resolve()), st.st_size, st.st_mtime_ns, spec.name)] = (
                True,
                f"{final}: size and sha256 ok",
            )
        return final
    detail = "; ".join(failures) if failures else "no download URL"
    raise ModelUnavailableError(
        f"could not download model {spec.name!r} ({detail}); " + _where_to_put(spec)
    )


def get_model_path(
    name: str | ModelSpec,
    explicit: str | os.PathLike | None = None,
    *,
    download: bool = True,
    progress: ProgressArg = True,
    urls: Sequence[str] | None = None,
) -> Path:
    """Resolve model ``name`` to a local file (see the module docstring for the order).

    Parameters
    ----------
    name : registry name (``sempix models list``) or a :class:`ModelSpec`.
    explicit : a file, or a folder holding the model's file; used as is when given.
    download : allow downloading into the cache when no local copy exists.
    progress : download progress (True = rich bar on stderr, callable, False = silent).
    urls : override the download URLs (tests, mirrors).

    Returns
    -------
    Path of an existing file.

    Raises
    ------
    ModelUnavailableError
        Not found locally and not downloadable (one line saying where to put the file).
    """
    spec = _spec(name)
    if explicit is not None and spec.hf_repo:
        from sempix.models.hub import folder_complete

        p = Path(explicit).expanduser()
        for cand in (p, p / spec.filename):
            if folder_complete(cand, spec):
                return cand
        raise ModelUnavailableError(f"{p} is not a complete {spec.name!r} folder "
                                    f"(expected {', '.join(spec.hf_files)})")
    if explicit is not None:
        p = Path(explicit).expanduser()
        if p.is_dir():
            for n in (spec.filename, *spec.aliases):
                if (p / n).is_file():
                    return p / n
            raise ModelUnavailableError(
                f"{p} does not contain {spec.filename} (model {spec.name!r})"
            )
        if not p.is_file():
            raise ModelUnavailableError(f"model file {p} does not exist (model {spec.name!r})")
        return p
    scan = _scan(spec)
    if scan.found is not None:
        if scan.rejected:  # e.g. a corrupt copy in $SEMPIX_MODEL_DIR, a good one in the cache
            _warn_once(
                scan.rejected[0],
                f"model {spec.name!r}: skipped {scan.rejected[0]}; using {scan.found}",
            )
        return scan.found
    note = f" (ignored {scan.rejected[0]})" if scan.rejected else ""
    if not download:
        raise ModelUnavailableError(
            f"model {spec.name!r} not found locally{note}: "
            + _where_to_put(spec)
            + ("" if spec.hf_repo else f", or run `sempix models fetch {spec.name}`")
        )
    if is_offline():
        raise ModelUnavailableError(
            f"model {spec.name!r} not found locally and {ENV_OFFLINE}=1{note}: "
            + _where_to_put(spec)
        )
    path = _download(spec, urls=urls, progress=progress)
    if scan.rejected:
        _warn_once(
            scan.rejected[0],
            f"model {spec.name!r}: {scan.rejected[0].split(' (')[0]}; "
            f"downloaded a verified copy to {path}",
        )
    return path


_download = download  # the keyword ``download`` of get_model_path shadows the function


def model_status(name: str | ModelSpec) -> dict:
    """Facts for ``sempix models list``: name, file, size, licence, local path (or None)."""
    spec = _spec(name)
    found = find_local(spec)
    return {
        "name": spec.name,
        "file": spec.filename,
        "size": spec.size,
        "licence": spec.licence,
        "description": spec.description,
        "local": str(found) if found else None,
        "urls": list(model_urls(spec)),
    }
