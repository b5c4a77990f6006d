"""What runs on a worker for one image: hash, process into a staging folder, commit atomically.

Commit protocol (outputs are never partial and never written twice):

1. the tool writes every output of the image into a fresh staging folder
   ``OUT/.sempix-batch/staging/<random>/`` and a receipt (names, sizes, blake2b checksums);
2. the staging folder is renamed to ``OUT/.sempix-batch/commit/<key>/`` (``key`` = hash of
   tool, options, input path and input content). The rename is atomic; if the folder already
   exists, another attempt of the same task committed first and this attempt's files are dropped;
3. each output is moved (``os.replace``, atomic) from the commit folder to its place in ``OUT``;
   a retry after a crash during this step only finishes the moves (nothing is recomputed);
4. the client records the result in the manifest, then deletes the commit folder.

A worker killed at any point leaves at most an orphan staging folder (removed at the end of the
run) or a complete commit folder that the retry finishes.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path

from sempix.batch.manifest import file_hash, options_hash
from sempix.batch.tools import REGISTRY, Job, get_tool

STATE_DIR = ".sempix-batch"


def _tool(name: str, module: str):
    if name not in REGISTRY and module:
        importlib.import_module(module)  # a plug-in tool registers itself on import
    return get_tool(name)


def _one_line(exc: BaseException) -> str:
    msg = str(exc).splitlines()[0] if str(exc).strip() else ""
    from sempix.errors import SempixError

    if isinstance(exc, SempixError):
        return msg or type(exc).__name__
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def task_key(tool: str, ohash: str, rel: str, content_hash: str) -> str:
    return options_hash(tool, "key", {"o": ohash, "rel": rel, "h": content_hash})


def _checksums(folder: Path) -> list[dict]:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "receipt.json":
            out.append(
                {
                    "name": p.relative_to(folder).as_posix(),
                    "size": p.stat().st_size,
                    "blake2b": file_hash(p),
                }
            )
    return out


def _finish(commit: Path, out_root: Path, rel_dir: str, src: Path) -> list[dict]:
    """Move the committed outputs into place; returns the output records (paths relative to OUT)."""
    receipt = json.loads((commit / "receipt.json").read_text())
    dest_dir = out_root / rel_dir
    records = []
    for rec in receipt["outputs"]:
        s = commit / rec["name"]
        d = dest_dir / rec["name"]
        if s.exists():
            if d.exists() and src.exists() and os.path.samefile(d, src):
                raise RuntimeError(f"{d}: refusing to overwrite the input")
            d.parent.mkdir(parents=True, exist_ok=True)
            os.replace(s, d)
        records.append(
            {
                "path": (Path(rel_dir) / rec["name"]).as_posix(),
                "size": rec["size"],
                "blake2b": rec["blake2b"],
            }
        )
    return records


def outputs_intact(out_root: Path, outputs: list[dict]) -> bool:
    """Every recorded output exists with its recorded size (cheap check; no re-hash)."""
    if not outputs:
        return False
    for o in outputs:
        try:
            if (out_root / o["path"]).stat().st_size != o["size"]:
                return False
        except OSError:
            return False
    return True


def run_task(task: dict) -> dict:
    """Process one image (``kind`` ``"single"`` or ``"apply"``) or analyse it (``"analyse"``).

    Never raises for a bad image: the result has ``status="failed"`` and a one-line ``error``.
    Returns a small dict (status, content hash, output records, seconds, worker) plus
    ``analysis`` for ``"analyse"``.
    """
    t0 = time.perf_counter()
    path = Path(task["path"])
    out_root = Path(task["out"])
    res = {
        "tool": task["tool"],
        "rel": task["rel"],
        "path": task["path"],
        "options_hash": task["options_hash"],
        "size": task.get("size"),
        "mtime_ns": task.get("mtime_ns"),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    staging = None
    try:
        tool = _tool(task["tool"], task.get("module", ""))
        opts = dict(task["options"])
        if task.get("item_options"):
            opts.update(task["item_options"])
        if task.get("error"):  # a planning error of this input (e.g. no clicks given for it)
            raise _PlannedError(task["error"])
        if not path.is_file():
            raise _PlannedError(f"{path}: no such file")
        st = path.stat()
        res["size"], res["mtime_ns"] = st.st_size, st.st_mtime_ns
        chash = task.get("content_hash") or file_hash(path)
        res["content_hash"] = chash
        rel = Path(task["rel"])
        stem = rel.stem
        rel_dir = "" if rel.parent.as_posix() == "." else rel.parent.as_posix()
        if task["kind"] == "analyse":
            job = Job(path, stem, out_root)
            res["analysis"] = tool.group.analyse(job, opts)
            res["status"] = "analysed"
            return res
        prev = task.get("prev")
        if (
            prev
            and prev.get("status") == "done"
            and prev.get("content_hash") == chash
            and prev.get("options_hash") == task["options_hash"]
            and outputs_intact(out_root, prev.get("outputs") or [])
        ):
            res.update(status="skipped", outputs=prev["outputs"])  # touched but identical
            return res
        state = out_root / STATE_DIR
        commit = state / "commit" / task_key(task["tool"], task["options_hash"], task["rel"], chash)
        if not (commit / "receipt.json").exists():
            (state / "staging").mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="t", dir=state / "staging"))
            job = Job(path, stem, staging)
            if task["kind"] == "apply":
                tool.group.apply(job, task["payload"], opts)
            else:
                tool.process(job, opts)
            outs = _checksums(staging)
            if not outs:
                raise RuntimeError("the tool wrote no output")
            receipt = {
                "tool": task["tool"],
                "rel": task["rel"],
                "content_hash": chash,
                "outputs": outs,
            }
            (staging / "receipt.json").write_text(json.dumps(receipt))
            commit.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, commit)
                staging = None
            except OSError:
                if not (commit / "receipt.json").exists():
                    raise
        res["outputs"] = _finish(commit, out_root, rel_dir, path)
        res["commit"] = str(commit)
        res["status"] = "done"
    except _PlannedError as exc:
        res.update(status="failed", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a bad image must not stop the batch
        res.update(status="failed", error=_one_line(exc))
        if task.get("debug"):
            res["traceback"] = traceback.format_exc()
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        res["seconds"] = time.perf_counter() - t0
    return res


class _PlannedError(Exception):
    pass
