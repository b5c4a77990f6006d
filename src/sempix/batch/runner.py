"""Run a tool over many images: plan against the manifest, execute on Dask, record, summarise.

See :func:`run`. Executors: a ``distributed`` client (a ``LocalCluster`` with one single-threaded
worker process per core by default, or an existing cluster by address) or dask's synchronous
scheduler in this process (``scheduler="sync"``: tests, debugging, tiny jobs).

The client never holds images: tasks carry a file path and the options, workers read the image,
write the outputs and send back a small record. At most ``window`` tasks are in flight (default
4 per worker thread), so the client's and the scheduler's memory do not grow with the number of
inputs; the plan lives in a temporary SQLite table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sempix.batch.inputs import iter_inputs
from sempix.batch.manifest import FILENAME, Manifest, options_hash
from sempix.batch.tools import get_tool
from sempix.batch.worker import STATE_DIR, outputs_intact, run_task
from sempix.errors import InputError

log = logging.getLogger("sempix.batch")

#: failures kept in the summary (all of them are in the manifest)
MAX_FAILURES = 1000
#: planned rows kept in a dry run's summary
MAX_PLANNED = 100_000
#: how long to try to reach an existing scheduler (``scheduler="tcp://..."``)
CONNECT_TIMEOUT = "20s"
#: planning actions
RUN, RETRY, VERIFY, SKIP, FAILED_BEFORE = "run", "retry", "verify", "skip", "failed-before"


@dataclass
class BatchSummary:
    """What a batch run did (returned by :func:`run`).

    Attributes
    ----------
    total : inputs found.
    processed : inputs processed successfully in this run.
    skipped : inputs already done with the same content and options (outputs present).
    failed : inputs that failed (in this run, or earlier and not retried: ``failed_before``).
    failures : ``(input, one-line error)``, at most :data:`MAX_FAILURES` (all are in the manifest).
    seconds : wall time of the execution phase; ``task_seconds`` the sum of the tasks' own times.
    plan : planned action counts (``run``, ``retry``, ``verify``, ``skip``, ``failed-before``).
    planned : ``(input, action)`` per input for a dry run.
    group : the group step's summary (recolor: the group palette), or None.
    """

    tool: str
    out: Path
    total: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    failed_before: int = 0
    seconds: float = 0.0
    task_seconds: float = 0.0
    workers: int = 0
    scheduler: str = ""
    dashboard: str | None = None
    dry_run: bool = False
    plan: dict[str, int] = field(default_factory=dict)
    planned: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    group: dict | None = None
    manifest: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 when every input succeeded (or was already done), 2 when some inputs were bad."""
        return 0 if self.failed == 0 else 2

    @property
    def rate(self) -> float:
        n = self.processed + self.failed - self.failed_before
        return n / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[tuple[str, str]]:
        """The summary table as (label, value) rows."""
        r = [
            ("tool", self.tool),
            ("inputs", str(self.total)),
            ("processed", str(self.processed)),
            ("skipped (done before)", str(self.skipped)),
            ("failed", str(self.failed)),
        ]
        if self.failed_before:
            r.append(("  of which earlier failures (--retry-failed)", str(self.failed_before)))
        r += [
            ("workers", f"{self.workers} ({self.scheduler})"),
            ("time", f"{self.seconds:.1f} s"),
            ("rate", f"{self.rate:.2f} images/s"),
            ("outputs", str(self.out)),
            ("manifest", str(self.manifest)),
        ]
        return r


ProgressCb = Callable[[dict], None]


# ============================================================================ executors
class _SyncExecutor:
    """dask's synchronous scheduler, one task at a time in this process."""

    name = "synchronous"
    nworkers = 1
    dashboard = None

    def map(self, fn, tasks: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
        try:
            import dask
        except ImportError:  # without dask: the same calls, one after the other
            dask = None
        for t in tasks:
            if dask is None:
                yield t, fn(t)
            else:
                yield t, dask.delayed(fn, pure=False)(t).compute(scheduler="synchronous")

    def close(self) -> None:
        pass


class _DaskExecutor:
    """A ``distributed`` client; at most ``window`` tasks in flight."""

    def __init__(self, client, owned: list, retries: int, window: int | None):
        self.client = client
        self.owned = owned
        self.retries = retries
        info = client.scheduler_info()
        workers = info.get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
        self.nworkers = len(workers)
        self.window = window or max(8, 4 * threads)
        self.name = f"dask {info.get('address', '')}".strip()
        self.dashboard = None
        if _has_bokeh() or len(owned) < 2:  # a local cluster without bokeh has no dashboard
            with contextlib.suppress(Exception):
                self.dashboard = client.dashboard_link

    def map(self, fn, tasks: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
        from distributed import as_completed

        it = iter(tasks)
        ac = as_completed()
        pending: dict[str, dict] = {}

        def submit_next() -> bool:
            t = next(it, None)
            if t is None:
                return False
            key = f"sempix-batch-{t['tool']}-{t['kind']}-{uuid.uuid4().hex[:12]}"
            fut = self.client.submit(fn, t, key=key, pure=False, retries=self.retries)
            pending[fut.key] = t
            ac.add(fut)
            return True

        for _ in range(self.window):
            if not submit_next():
                break
        for fut in ac:
            t = pending.pop(fut.key)
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the image kills workers
                name = type(exc).__name__
                r = {
                    "tool": t["tool"],
                    "rel": t["rel"],
                    "path": t["path"],
                    "options_hash": t["options_hash"],
                    "size": t.get("size"),
                    "mtime_ns": t.get("mtime_ns"),
                    "status": "failed",
                    "error": f"{name}: the task failed on the cluster "
                    f"({str(exc).splitlines()[0][:200]})",
                }
            fut.release()
            yield t, r
            submit_next()

    def close(self) -> None:
        for obj in reversed(self.owned):
            with contextlib.suppress(Exception):
                obj.close()


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def make_executor(
    client=None,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | None = None,
    retries: int = 2,
    window: int | None = None,
    quiet_logs: bool = True,
):
    """The executor of a run (see :func:`run`)."""
    if client is not None:
        return _DaskExecutor(client, [], retries, window)
    if scheduler in ("sync", "synchronous"):
        return _SyncExecutor()
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "sempix batch needs dask.distributed: pip install 'sempix[dask]' "
            "(or pass scheduler='sync' to run in this process)"
        ) from None
    if quiet_logs:
        for name in (
            "distributed",
            "distributed.nanny",
            "distributed.worker",
            "distributed.scheduler",
        ):
            logging.getLogger(name).setLevel(logging.ERROR)
        dask.config.set({"logging": {"distributed": "error"}})
    if scheduler:
        try:
            c = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({str(exc).splitlines()[0]})"
            ) from None
        return _DaskExecutor(c, [c], retries, window)
    n = int(workers or os.cpu_count() or 1)
    if n < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")
    dash = ":0" if _has_bokeh() else None
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=dash,
        memory_limit=memory_limit or "auto",
    )
    c = Client(cluster)
    return _DaskExecutor(c, [cluster, c], retries, window)


# ============================================================================ planning
def _public(opts: dict) -> dict:
    return {k: v for k, v in opts.items() if not k.startswith("_")}


def _plan(
    m: Manifest,
    tool,
    opts: dict,
    ohash: str,
    inputs,
    out: Path,
    retry_failed: bool,
    summary: BatchSummary,
) -> None:
    m.new_plan()
    batch: list[tuple] = []

    def flush() -> None:
        for row, first in m.plan_add(batch):
            if row[1] == first:
                summary.total -= 1  # the same file named twice (e.g. a folder and a file in it)
                continue
            # two inputs with the same output name (a.jpg, a.png): the first wins, the second fails
            summary.failed += 1
            _remember(summary, row[0], f"its outputs would overwrite those of {first} (same name)")
        batch.clear()

    for item in iter_inputs(inputs, exclude=out):
        summary.total += 1
        err = None
        item_opts = None
        try:
            st = item.path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size = mtime = None
        if tool.item_options is not None:
            try:
                item_opts = tool.item_options(opts, item.rel, item.path)
            except InputError as exc:
                err = str(exc)
        ih = ohash if not item_opts else options_hash(tool.name, ohash, item_opts)
        prev = m.get(tool.name, item.rel)
        action = RUN
        prev_hash = None
        if err is None and prev is not None and prev["options_hash"] == ih:
            same_stat = prev["size"] == size and prev["mtime_ns"] == mtime and size is not None
            prev_hash = prev["content_hash"]
            if prev["status"] == "done":
                if same_stat and outputs_intact(out, prev["outputs"]):
                    action = SKIP
                else:
                    action = VERIFY
            elif prev["status"] == "failed":
                action = RETRY if (retry_failed or not same_stat) else FAILED_BEFORE
        batch.append(
            (
                item.rel,
                str(item.path),
                size,
                mtime,
                action,
                ih,
                json.dumps(item_opts) if item_opts else None,
                err,
                prev_hash,
            )
        )
        if len(batch) >= 1000:
            flush()
    flush()
    summary.plan = m.plan_counts()


def _remember(summary: BatchSummary, rel: str, error: str) -> None:
    if len(summary.failures) < MAX_FAILURES:
        summary.failures.append((rel, error))


# ============================================================================ run
@contextlib.contextmanager
def _lock(out: Path):
    import fcntl

    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"{out}: another sempix batch run is writing to this folder") from None
        yield


def run(
    tool: str,
    inputs,
    out,
    options: dict | None = None,
    client=None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    dry_run: bool = False,
    progress: ProgressCb | None = None,
    retries: int = 2,
    window: int | None = None,
    memory_limit: str | None = None,
) -> BatchSummary:
    """Run a sempix tool over files, folders and globs; outputs mirror the input tree in ``out``.

    Parameters
    ----------
    tool : a registered batch tool (``features``, ``carve``, ``mask``, ``softseg``, ``palette``,
        ``harmonize``, ``retarget``, ``recolor``; see :mod:`sempix.batch.tools`).
    inputs : str or iterable of file paths, folders (recursive) and glob patterns.
    out : output folder (created); holds the outputs, ``sempix-batch.sqlite`` (the manifest) and
        ``.sempix-batch/`` (staging and commit folders).
    options : the tool's options (``sempix batch TOOL --help``), e.g. ``{"width": "80%"}``.
    client : a ``distributed.Client`` to use (not closed); default: see ``scheduler``.
    scheduler : None = a new ``LocalCluster`` (``workers`` processes, one thread each, loopback);
        ``"tcp://host:8786"`` = an existing cluster; ``"sync"`` = dask's synchronous scheduler
        in this process.
    workers : worker processes of the local cluster (default: one per core).
    retry_failed : re-run inputs that failed before (otherwise they are reported, not re-run).
    dry_run : only plan: ``summary.planned`` lists (input, action); nothing runs or is written
        except the manifest file.
    progress : callback receiving a dict (``total``, ``done``, ``skipped``, ``failed``,
        ``remaining``, ``rate``, ``phase``) after every finished task.
    retries : Dask task retries (a worker that dies mid-task costs one retry).
    window : tasks in flight at most (default 4 per worker thread).
    memory_limit : per-worker memory limit of the local cluster (e.g. ``"4GB"``; default: the
        machine's memory divided among the workers).

    Returns
    -------
    BatchSummary (``exit_code`` 0 all ok, 2 some inputs bad).

    Raises
    ------
    InputError
        Unknown tool or option, bad option value, inputs that name nothing, an unusable output
        folder, another run writing to ``out``.
    """
    t_tool = get_tool(tool)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise InputError("give at least one input (file, folder or glob)")
    out = Path(out).absolute()  # workers (maybe on other machines) get absolute paths
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    for spec in inputs:
        p = Path(spec)
        if p.is_dir() and p.resolve() == out.resolve():
            raise InputError(
                f"{out}: the output folder is an input folder (outputs would overwrite inputs)"
            )
    opts = t_tool.resolve_options(options)
    public = _public(opts)
    ohash = options_hash(t_tool.name, t_tool.version, public)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    summary = BatchSummary(tool=t_tool.name, out=out, dry_run=dry_run, manifest=out / FILENAME)
    with _lock(out):
        m = Manifest(out / FILENAME)
        try:
            _plan(m, t_tool, opts, ohash, inputs, out, retry_failed, summary)
            if dry_run:
                for r in m.plan_rows():
                    if len(summary.planned) >= MAX_PLANNED:
                        break
                    summary.planned.append((r.rel, r.action if not r.error else f"fail: {r.error}"))
                return summary
            ex = make_executor(client, scheduler, workers, memory_limit, retries, window)
            try:
                summary.workers = ex.nworkers
                summary.scheduler = ex.name
                summary.dashboard = ex.dashboard
                if progress is not None:
                    progress(
                        {
                            "phase": "start",
                            "workers": ex.nworkers,
                            "scheduler": ex.name,
                            "dashboard": ex.dashboard,
                        }
                    )
                run_id = m.start_run(t_tool.name, public, ohash, ex.nworkers, ex.name)
                if t_tool.group is None:
                    _execute(m, ex, t_tool, public, out, summary, progress)
                else:
                    _execute_group(
                        m, ex, t_tool, public, ohash, out, retry_failed, summary, progress
                    )
                m.finish_run(run_id, summary.processed, summary.skipped, summary.failed)
            finally:
                ex.close()
                shutil.rmtree(
                    out / STATE_DIR / "staging", ignore_errors=True
                )  # orphans of killed tasks
        finally:
            m.close()
    return summary


class _Recorder:
    """Counts results, writes them to the manifest in transactions, reports progress."""

    def __init__(
        self,
        m: Manifest,
        summary: BatchSummary,
        progress: ProgressCb | None,
        todo: int,
        phase: str = "processing",
    ):
        self.m, self.s, self.cb = m, summary, progress
        self.buf: list[dict] = []
        self.last = time.monotonic()
        self.t0 = time.monotonic()
        self.todo = todo
        self.finished = 0
        self.phase = phase

    def add(self, r: dict, record: bool = True) -> None:
        st = r["status"]
        self.finished += 1
        self.s.task_seconds += float(r.get("seconds") or 0.0)
        if st in ("done", "skipped"):
            if st == "done":
                self.s.processed += 1
            else:
                self.s.skipped += 1
        elif st == "failed":
            self.s.failed += 1
            _remember(self.s, r["rel"], r.get("error") or "failed")
        if record and st in ("done", "failed", "skipped"):
            # "skipped" by a worker = touched but identical: still done, with the new stat
            self.buf.append(r if st != "skipped" else {**r, "status": "done", "verified": True})
        now = time.monotonic()
        if len(self.buf) >= 64 or now - self.last > 1.0:
            self.flush()
        if self.cb is not None:
            el = max(now - self.t0, 1e-9)
            self.cb(
                {
                    "phase": self.phase,
                    "total": self.s.total,
                    "done": self.s.processed,
                    "skipped": self.s.skipped,
                    "failed": self.s.failed,
                    "remaining": max(0, self.todo - self.finished),
                    "rate": self.finished / el,
                }
            )

    def flush(self) -> None:
        if self.buf:
            self.m.record(self.buf)  # manifest first, then the commit folders go
            for r in self.buf:
                if r.get("commit"):
                    shutil.rmtree(r["commit"], ignore_errors=True)
            self.buf.clear()
        self.last = time.monotonic()


def _task(
    t_tool, public: dict, out: Path, row, kind: str, prev: dict | None = None, **extra
) -> dict:
    return {
        "tool": t_tool.name,
        "module": t_tool.module,
        "kind": kind,
        "idx": row.idx,
        "path": row.path,
        "rel": row.rel,
        "out": str(out),
        "options": public,
        "options_hash": row.options_hash,
        "item_options": row.item_options,
        "error": row.error,
        "size": row.size,
        "mtime_ns": row.mtime_ns,
        "prev": prev,
        **extra,
    }


def _execute(
    m: Manifest,
    ex,
    t_tool,
    public: dict,
    out: Path,
    summary: BatchSummary,
    progress: ProgressCb | None,
) -> None:
    summary.skipped += summary.plan.get(SKIP, 0)
    fb = summary.plan.get(FAILED_BEFORE, 0)
    summary.failed += fb
    summary.failed_before = fb
    if fb:
        for r in m.plan_rows((FAILED_BEFORE,)):
            prev = m.get(t_tool.name, r.rel)
            _remember(summary, r.rel, (prev or {}).get("error") or "failed before")
    todo = sum(summary.plan.get(a, 0) for a in (RUN, RETRY, VERIFY))
    rec = _Recorder(m, summary, progress, todo)

    def tasks() -> Iterator[dict]:
        for r in m.plan_rows((RUN, RETRY, VERIFY)):
            prev = m.get(t_tool.name, r.rel) if r.action == VERIFY else None
            yield _task(t_tool, public, out, r, "single", prev)

    t0 = time.perf_counter()
    for _t, r in ex.map(run_task, tasks()):
        rec.add(r)
    rec.flush()
    summary.seconds = time.perf_counter() - t0


def _execute_group(
    m: Manifest,
    ex,
    t_tool,
    public: dict,
    ohash: str,
    out: Path,
    retry_failed: bool,
    summary: BatchSummary,
    progress: ProgressCb | None,
) -> None:
    """Map (analyse every input) -> reduce once (client) -> map (apply where not done)."""
    t0 = time.perf_counter()
    rows = list(m.plan_rows())  # the group solve needs every image's analysis anyway
    rec = _Recorder(m, summary, progress, 2 * len(rows), phase="analysing")
    analysed: dict[int, dict] = {}
    for t, r in ex.map(run_task, (_task(t_tool, public, out, row, "analyse") for row in rows)):
        if r["status"] == "analysed":
            analysed[t["idx"]] = r
            rec.add(r, record=False)
        else:
            rec.add(r)
    rec.flush()
    ok_rows = [row for row in rows if row.idx in analysed]
    if not ok_rows:
        summary.seconds = time.perf_counter() - t0
        return
    # group identity: content of every successfully analysed image (sorted by input path)
    ident = hashlib.blake2b(digest_size=12)
    for row in ok_rows:
        ident.update(f"{row.rel}\0{analysed[row.idx]['content_hash']}\n".encode())
    gohash = options_hash(t_tool.name, ohash, {"group": ident.hexdigest()})
    payloads, group_summary = t_tool.group.reduce(
        [analysed[row.idx]["analysis"] for row in ok_rows], public
    )
    summary.group = group_summary
    if group_summary is not None:
        from sempix.image import atomic_write_bytes

        atomic_write_bytes(
            out / f"{t_tool.name}-group.json",
            json.dumps(group_summary, indent=2, default=str).encode(),
        )
    rec.phase = "applying"
    rec.todo = len(rows) + len(ok_rows)

    def tasks() -> Iterator[dict]:
        for row, payload in zip(ok_rows, payloads):
            a = analysed[row.idx]
            prev = m.get(t_tool.name, row.rel)
            if (
                prev is not None
                and prev["options_hash"] == gohash
                and prev["content_hash"] == a["content_hash"]
            ):
                if prev["status"] == "done" and outputs_intact(out, prev["outputs"]):
                    rec.add({**a, "status": "skipped", "seconds": 0.0}, record=False)
                    continue
                if prev["status"] == "failed" and not retry_failed:
                    summary.failed_before += 1
                    rec.add(
                        {**a, "status": "failed", "error": prev["error"], "seconds": 0.0},
                        record=False,
                    )
                    continue
            row.options_hash = gohash
            yield _task(
                t_tool, public, out, row, "apply", content_hash=a["content_hash"], payload=payload
            )

    for _t, r in ex.map(run_task, tasks()):
        rec.add(r)
    rec.flush()
    summary.seconds = time.perf_counter() - t0
