"""Model folders fetched from the Hugging Face Hub (SegFormer checkpoints) into sempix's cache.

A :class:`~sempix.models.registry.ModelSpec` with ``hf_repo`` names a *folder*
(``spec.filename``) holding ``spec.hf_files``. Lookup order as for single files: an explicit
folder, ``$SEMPIX_MODEL_DIR``, the user cache, then a download (unless ``SEMPIX_OFFLINE=1``).

Downloads use ``huggingface_hub.hf_hub_download`` (the Hub's file-resolution protocol; the
endpoint is ``$HF_ENDPOINT`` when set) at the pinned ``hf_revision``, into a temporary
``.<folder>.*.part`` directory next to the final one; the folder is renamed into place only
when every file arrived complete (the Hub client checks each file's size), so an interrupted
or failed transfer never leaves a folder under the final name. ``.sempix-source.json`` in the
folder records the repository, the requested revision and the commit actually served.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sempix.errors import ModelUnavailableError
from sempix.models.registry import ModelSpec

SOURCE_FILE = ".sempix-source.json"

__all__ = ["SOURCE_FILE", "fetch_folder", "find_folder", "folder_complete", "where_to_put"]


def _alternatives(entry: str) -> list[str]:
    return [a.strip() for a in entry.split("|") if a.strip()]


def folder_complete(p: Path, spec: ModelSpec) -> bool:
    """True when folder ``p`` holds one file of every ``hf_files`` entry."""
    if not p.is_dir():
        return False
    return all(any((p / a).is_file() for a in _alternatives(e)) for e in spec.hf_files)


def find_folder(spec: ModelSpec, dirs: list[Path]) -> Path | None:
    """First complete ``dirs[i] / spec.filename``, else None."""
    for d in dirs:
        p = d / spec.filename
        if folder_complete(p, spec):
            return p
    return None


def where_to_put(spec: ModelSpec, dirs: list[Path]) -> str:
    """One line: which files to fetch from where, and the folders searched."""
    rev = spec.hf_revision or "main"
    files = ", ".join(" or ".join(_alternatives(e)) for e in spec.hf_files)
    places = " or ".join(str(d / spec.filename) for d in dirs)
    return (
        f"run `sempix models fetch {spec.name}` on a machine with network, or download {files} "
        f"from https://huggingface.co/{spec.hf_repo}/tree/{rev} into {places}"
    )


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


@contextlib.contextmanager
def _quiet_hub():
    """Library code never prints: switch the Hub client's tqdm bars off for the call."""
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError:  # pragma: no cover - very old huggingface_hub
        yield
        return
    was = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was:
            enable_progress_bars()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def fetch_folder(
    spec: ModelSpec,
    dest_dir: Path,
    *,
    progress: Callable[[float, str], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``spec``'s files from the Hub into ``dest_dir / spec.filename`` (atomic).

    Raises
    ------
    ModelUnavailableError
        ``huggingface_hub`` missing, the server unreachable, a file missing or truncated.
    """
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError as exc:
        raise ModelUnavailableError(
            f"fetching {spec.name!r} needs huggingface_hub (pip install 'sempix[segformer]'): {exc}"
        ) from exc
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / spec.filename
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.filename}.", suffix=".part", dir=dest_dir))
    rev = spec.hf_revision or "main"
    commit = None
    try:
        n = len(spec.hf_files)
        for k, entry in enumerate(spec.hf_files):
            alts = _alternatives(entry)
            if progress:
                progress(k / n, f"{spec.name}: {alts[0]}")
            last: BaseException | None = None
            for name in alts:
                try:
                    with _quiet_hub():
                        got = hf_hub_download(
                            spec.hf_repo,
                            name,
                            revision=rev,
                            local_dir=tmp,
                            endpoint=_endpoint(),
                            etag_timeout=timeout,
                        )
                    last = None
                    break
                except EntryNotFoundError as exc:  # try the next alternative
                    last = exc
            if last is not None:
                raise last
            if commit is None:
                commit = _commit_of(tmp, Path(got))
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # the Hub client's bookkeeping
        (tmp / SOURCE_FILE).write_text(
            json.dumps(
                {"repo": spec.hf_repo, "revision": rev, "commit": commit, "endpoint": _endpoint()},
                indent=1,
            )
        )
        if not folder_complete(tmp, spec):
            raise OSError("the downloaded folder is incomplete")
        try:
            os.replace(tmp, final)
        except OSError:
            if folder_complete(final, spec):  # a concurrent fetch won
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            raise
        if progress:
            progress(1.0, f"{spec.name}: done")
        return final
    except ModelUnavailableError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelUnavailableError(
            f"could not download model {spec.name!r} from "
            f"{_endpoint() or 'https://huggingface.co'} "
            f"({_reason(exc)})"
        ) from exc


def _commit_of(folder: Path, got: Path) -> str | None:
    """The commit hash the Hub served (kept in the client's local_dir metadata)."""
    try:
        rel = got.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    meta = folder / ".cache" / "huggingface" / "download" / (str(rel) + ".metadata")
    try:
        return meta.read_text().splitlines()[0].strip() or None
    except (OSError, IndexError):
        return None
