"""The batch manifest: one SQLite file in the output folder, written only by the client.

Table ``items`` holds one row per (tool, input) of the output folder: the input's path relative
to its root (``rel``, the key that also names its outputs), the absolute path, its size and
modification time (a cheap "unchanged?" test), its content hash (blake2b of the file's bytes),
the hash of the tool's options, the status (``done`` / ``failed``), the outputs (path relative to
the output folder, size, blake2b checksum), the one-line error, the processing time, attempts and
the worker that did it. Every change is a transaction (a killed client leaves the previous
state). Table ``runs`` records each run (tool, options, counts, times).

The plan of a run is a temporary table (on disk, not in memory), so planning a million inputs
does not grow the client's memory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1
FILENAME = "sempix-batch.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items (
    tool TEXT NOT NULL,
    rel TEXT NOT NULL,
    input TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER,
    content_hash TEXT,
    options_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    outputs TEXT,
    error TEXT,
    seconds REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    updated REAL,
    PRIMARY KEY (tool, rel)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tool TEXT, options TEXT, options_hash TEXT, started REAL, finished REAL,
    processed INTEGER, skipped INTEGER, failed INTEGER, workers INTEGER, scheduler TEXT
);
"""


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """blake2b (20 bytes, hex) of a file's bytes, read in chunks."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def options_hash(tool: str, version: str, options: dict) -> str:
    """Hash of a tool, its version and its (JSON-able) options."""
    text = json.dumps(
        {"tool": tool, "version": version, "options": options}, sort_keys=True, default=str
    )
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass
class PlanRow:
    idx: int
    rel: str
    path: str
    size: int | None
    mtime_ns: int | None
    action: str
    options_hash: str
    item_options: dict | None
    error: str | None
    prev_hash: str | None


class Manifest:
    """The SQLite manifest of one output folder (see the module doc)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: explicit transactions (BEGIN ... COMMIT) below
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=60)
        self.db.execute("PRAGMA temp_store=FILE")
        self.db.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS), one statement at a time
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------------ transactions
    class _Tx:
        def __init__(self, db):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb):
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            return False

    def transaction(self):
        return Manifest._Tx(self.db)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ items
    def get(self, tool: str, rel: str) -> dict | None:
        cur = self.db.execute("SELECT * FROM items WHERE tool=? AND rel=?", (tool, rel))
        row = cur.fetchone()
        if row is None:
            return None
        d = dict(zip([c[0] for c in cur.description], row))
        d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else []
        return d

    def rows(self, tool: str | None = None) -> list[dict]:
        """Every item row (for tests and reports; loads all rows)."""
        q = "SELECT * FROM items" + (" WHERE tool=?" if tool else "") + " ORDER BY tool, rel"
        cur = self.db.execute(q, (tool,) if tool else ())
        names = [c[0] for c in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(names, r))
            d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else []
            out.append(d)
        return out

    def record(self, results: Iterable[dict]) -> None:
        """Write task results (one transaction for the lot).

        ``attempts`` counts the times an input was processed (a result with ``verified`` set, i.e.
        found unchanged by its content hash, does not count)."""
        now = time.time()
        with self.transaction() as db:
            for r in results:
                db.execute(
                    "INSERT INTO items (tool, rel, input, size, mtime_ns, content_hash,"
                    " options_hash, status, outputs, error, seconds, attempts, worker, updated)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(tool, rel) DO UPDATE SET input=excluded.input,"
                    " size=excluded.size, mtime_ns=excluded.mtime_ns,"
                    " content_hash=excluded.content_hash, options_hash=excluded.options_hash,"
                    " status=excluded.status, outputs=excluded.outputs, error=excluded.error,"
                    " seconds=excluded.seconds, attempts=items.attempts + excluded.attempts,"
                    " worker=excluded.worker, updated=excluded.updated",
                    (
                        r["tool"],
                        r["rel"],
                        r["path"],
                        r.get("size"),
                        r.get("mtime_ns"),
                        r.get("content_hash"),
                        r["options_hash"],
                        r["status"],
                        json.dumps(r.get("outputs") or []),
                        r.get("error"),
                        r.get("seconds"),
                        0 if r.get("verified") else 1,
                        r.get("worker"),
                        now,
                    ),
                )

    # ------------------------------------------------------------------ runs
    def start_run(self, tool: str, options: dict, ohash: str, workers: int, scheduler: str) -> int:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (tool, options, options_hash, started, workers, scheduler)"
                " VALUES (?,?,?,?,?,?)",
                (
                    tool,
                    json.dumps(options, sort_keys=True, default=str),
                    ohash,
                    time.time(),
                    workers,
                    scheduler,
                ),
            )
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, processed: int, skipped: int, failed: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished=?, processed=?, skipped=?, failed=? WHERE id=?",
                (time.time(), processed, skipped, failed, run_id),
            )

    # ------------------------------------------------------------------ plan (temporary table)
    def new_plan(self) -> None:
        self.db.execute("DROP TABLE IF EXISTS temp.plan")
        # okey: the output name stem (rel without suffix): a.jpg and a.png write the same outputs
        self.db.execute(
            "CREATE TEMP TABLE plan (idx INTEGER PRIMARY KEY, rel TEXT, path TEXT,"
            " size INTEGER, mtime_ns INTEGER, action TEXT, options_hash TEXT, item_options TEXT,"
            " error TEXT, prev_hash TEXT, okey TEXT UNIQUE)"
        )

    def plan_add(self, rows: list[tuple]) -> list[tuple]:
        """Insert plan rows ``(rel, path, size, mtime_ns, action, options_hash, item_options, error,
        prev_hash)``; returns ``(row, path already planned)`` for the rows whose output name
        (``rel`` without its suffix) was already planned (kept out of the plan)."""
        dup = []
        with self.transaction() as db:
            for r in rows:
                okey = r[0].rsplit(".", 1)[0] if "." in r[0].rsplit("/", 1)[-1] else r[0]
                try:
                    db.execute(
                        "INSERT INTO temp.plan (rel, path, size, mtime_ns, action, options_hash,"
                        " item_options, error, prev_hash, okey) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (*r, okey),
                    )
                except sqlite3.IntegrityError:
                    first = db.execute(
                        "SELECT path FROM temp.plan WHERE okey=?", (okey,)
                    ).fetchone()
                    dup.append((r, first[0] if first else None))
        return dup

    def plan_counts(self) -> dict[str, int]:
        return dict(
            self.db.execute("SELECT action, COUNT(*) FROM temp.plan GROUP BY action").fetchall()
        )

    def plan_rows(
        self, actions: tuple[str, ...] | None = None, chunk: int = 512
    ) -> Iterator[PlanRow]:
        """Planned rows in order, read in chunks (never all in memory)."""
        last = -1
        where = ""
        if actions:
            where = f" AND action IN ({','.join('?' * len(actions))})"
        while True:
            rows = self.db.execute(
                f"SELECT * FROM temp.plan WHERE idx > ?{where} ORDER BY idx LIMIT {chunk}",
                (last, *(actions or ())),
            ).fetchall()
            if not rows:
                return
            for r in rows:
                last = r[0]
                yield PlanRow(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    json.loads(r[7]) if r[7] else None,
                    r[8],
                    r[9],
                )  # r[10] = okey
