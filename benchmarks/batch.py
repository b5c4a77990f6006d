"""Batch processing on Dask: throughput, scheduler/manifest cost at scale, fault injection.

Three parts (all on this machine; loopback LocalCluster, one single-threaded worker process each):

1. throughput on N BSDS images for features (ade20k), carve (80% width, ade20k) and harmonize:
   a plain sequential loop of the CLI (one ``sempix TOOL`` process per image, the anchor) vs
   ``sempix.batch.run`` on 1 and 2 workers. Each (tool, mode) gets a fresh feature cache, so
   every mode computes the features. Cluster start-up is timed separately; "overhead/task" is
   ``(wall * workers - sum of the tasks' own times) / N`` (scheduling, transfer, manifest and idle
   workers at the end: an upper bound of the per-task cost of the machinery).
2. many tiny synthetic images (``features --backend lowlevel`` on 12x16 PNGs, ~1 ms of work each)
   for several N, each in a fresh process: wall, per-image cost, planning (dry run) and an
   all-skipped re-run, and the peak RSS of the client process (which also hosts the scheduler).
   The feature cache is off here (``SEMPIX_FEATURE_CACHE_MB=0``) so that only the batch machinery
   (inputs, manifest, scheduler, commit protocol) is measured.
3. fault injection: harmonize on synthetic 96x128 images with 2 workers; one worker process is
   SIGKILLed after a quarter of the images; checks every output against its manifest checksum.

The anchor printed first: a fixed pure-Python loop alone vs in two concurrent processes, i.e. how
much parallel capacity the machine actually offers during the run (on a shared machine, often ~1x).

    SEMPIX_MODEL_DIR=../shared/models SEMPIX_DATA_DIR=../shared/data \\
        .venv/bin/python benchmarks/batch.py [--n 200] [--synthetic 1000,2000,5000] [--fault 40]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOOLS = {
    "features": ({"backend": "ade20k"}, lambda img, out: ["features", img, "-o", out + ".npz"]),
    "carve": (
        {"width": "80%"},
        lambda img, out: ["carve", img, "-o", out + ".jpg", "--width", "80%"],
    ),
    "harmonize": ({}, lambda img, out: ["harmonize", img, "-o", out + ".jpg"]),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


_BUSY = (
    "import time\nt=time.perf_counter()\nx=0\n"
    "for i in range(10_000_000): x+=i\nprint(time.perf_counter()-t)"
)


def parallel_capacity() -> tuple[float, float, float]:
    """Anchor: a fixed pure-Python loop alone, then in 2 concurrent processes.

    Returns (seconds alone, mean seconds of the two concurrent ones, throughput ratio 2 procs / 1):
    about 2 on an idle 2-core machine, about 1 when the machine gives no second core.
    """
    one = float(
        subprocess.run(
            [sys.executable, "-c", _BUSY], capture_output=True, text=True, check=True
        ).stdout
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", _BUSY], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    two = [float(p.communicate()[0]) for p in procs]
    mean2 = sum(two) / 2
    return one, mean2, 2 * one / max(two)


def sempix_exe() -> list[str]:
    exe = Path(sys.executable).with_name("sempix")
    return (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-c", "from sempix.cli import main; main()"]
    )


def bsds_images(n: int) -> list[str]:
    data = os.environ.get("SEMPIX_DATA_DIR")
    if not data:
        sys.exit("set SEMPIX_DATA_DIR (the BSDS500 images)")
    files = sorted((Path(data) / "bsds500" / "images").glob("*/*.jpg"))
    if len(files) < n:
        sys.exit(f"only {len(files)} BSDS images")
    return [str(f) for f in files[:n]]


def _cluster(k: int):
    from distributed import Client, LocalCluster

    t = time.perf_counter()
    cluster = LocalCluster(
        n_workers=k, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster)
    return cluster, client, time.perf_counter() - t


def throughput(n: int, tools: list[str], modes: list[str], tmp: Path) -> list[dict]:
    from sempix.batch import run

    files = bsds_images(n)
    rows = []
    for tool in tools:
        opts, argv = TOOLS[tool]
        for mode in modes:
            cache = tmp / f"cache-{tool}-{mode}"
            out = tmp / f"out-{tool}-{mode}"
            os.environ["SEMPIX_CACHE_DIR"] = str(cache)  # fresh cache: the features are computed
            row = {"tool": tool, "mode": mode, "n": n, "load_before": load()}
            if mode == "cli":
                out.mkdir(parents=True)
                t = time.perf_counter()
                for i, f in enumerate(files):
                    subprocess.run(
                        [*sempix_exe(), *argv(f, str(out / f"{i:04d}")), "-q"],
                        check=True,
                        env=os.environ.copy(),
                        stdout=subprocess.DEVNULL,
                    )
                row.update(
                    wall=time.perf_counter() - t, workers=1, startup=0.0, task_s=float("nan")
                )
            else:
                k = int(mode)
                cluster, client, startup = _cluster(k)
                try:
                    t = time.perf_counter()
                    s = run(tool, files, out, opts, client=client)
                    wall = time.perf_counter() - t
                finally:
                    client.close()
                    cluster.close()
                assert s.failed == 0 and s.processed == n, (s.failed, s.failures[:3])
                row.update(
                    wall=wall,
                    workers=k,
                    startup=startup,
                    task_s=s.task_seconds,
                    overhead_ms=1000 * (wall * k - s.task_seconds) / n,
                )
            row["per_image"] = row["wall"] / n
            row["load_after"] = load()
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _tiny_library(root: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(d / f"i{i:06d}.png")


def synthetic_one(n: int, tmp: Path) -> dict:
    """One synthetic run in this (fresh) process: prints a JSON row."""
    from sempix.batch import run

    root = tmp / f"syn-{n}"
    _tiny_library(root, n)
    out = tmp / f"syn-out-{n}"
    os.environ["SEMPIX_CACHE_DIR"] = str(tmp / f"syn-cache-{n}")
    os.environ["SEMPIX_FEATURE_CACHE_MB"] = (
        "0"  # measure the machinery, not the feature cache's writes
    )
    opts = {"backend": "lowlevel"}
    t = time.perf_counter()
    plan = run("features", [root], out, opts, dry_run=True)
    t_plan = time.perf_counter() - t
    cluster, client, startup = _cluster(2)
    try:
        t = time.perf_counter()
        s = run("features", [root], out, opts, client=client)
        wall = time.perf_counter() - t
        t = time.perf_counter()
        s2 = run("features", [root], out, opts, client=client)
        wall2 = time.perf_counter() - t
    finally:
        client.close()
        cluster.close()
    assert s.processed == n and s2.skipped == n and plan.plan == {"run": n}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": n,
        "plan_s": t_plan,
        "wall": wall,
        "per_image_ms": 1000 * wall / n,
        "task_ms": 1000 * s.task_seconds / n,
        "rerun_s": wall2,
        "rerun_ms_per_image": 1000 * wall2 / n,
        "client_peak_rss_mb": rss,
        "startup": startup,
        "load": load(),
    }


def fault(n: int, tmp: Path) -> list[dict]:
    import sqlite3

    from PIL import Image

    from sempix.batch import file_hash, run

    root = tmp / "fault-in"
    rng = np.random.default_rng(1)
    for i in range(n):
        yy, xx = np.mgrid[0:96, 0:128] / 128
        img = np.stack([xx, yy, 0.5 + 0.3 * np.sin(9 * xx * (1 + i % 5))], -1) * rng.uniform(
            0.5, 1, 3
        )
        (root / f"g{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.uint8(255 * np.clip(img, 0, 1))).save(
            root / f"g{i % 4}" / f"f{i:03d}.png"
        )
    rows = []
    for kill in (False, True):
        out = tmp / f"fault-out-{kill}"
        cluster, client, _ = _cluster(2)
        pids = client.run(os.getpid)
        killed = []

        def progress(ev, kill=kill, pids=pids, killed=killed):
            if kill and ev.get("phase") != "start" and not killed and ev["done"] >= n // 4:
                pid = min(pids.values())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        try:
            t = time.perf_counter()
            s = run("harmonize", [root], out, {"k": 3}, client=client, progress=progress)
            wall = time.perf_counter() - t
        finally:
            client.close()
            cluster.close()
        db = sqlite3.connect(out / "sempix-batch.sqlite")
        recs = db.execute("SELECT status, outputs, attempts FROM items").fetchall()
        outs = [o for _, js, _ in recs for o in json.loads(js)]
        ok = sum(
            1
            for o in outs
            if (out / o["path"]).is_file() and file_hash(out / o["path"]) == o["blake2b"]
        )
        files = [p for p in out.rglob("*.png")]
        rows.append(
            {
                "kill": kill,
                "killed_pid": killed[0] if killed else None,
                "n": n,
                "wall": wall,
                "processed": s.processed,
                "failed": s.failed,
                "manifest_rows": len(recs),
                "outputs_recorded": len(outs),
                "unique_outputs": len({o["path"] for o in outs}),
                "checksums_ok": ok,
                "files_on_disk": len(files),
                "max_attempts": max(a for _, _, a in recs),
                "leftover_temp": sum(
                    1
                    for p in out.rglob("*")
                    if p.is_file() and ".part" in p.name or "staging" in p.parts
                ),
                "load": load(),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--n", type=int, default=200, help="BSDS images for the throughput part (0 = skip)"
    )
    ap.add_argument("--tools", default="features,carve,harmonize")
    ap.add_argument(
        "--modes", default="cli,1,2", help="cli (sequential CLI loop), 1, 2 (batch workers)"
    )
    ap.add_argument(
        "--synthetic", default="1000,2000,5000", help="sizes of the tiny-image runs ('' = skip)"
    )
    ap.add_argument(
        "--fault", type=int, default=40, help="images of the fault-injection run (0 = skip)"
    )
    ap.add_argument("--synthetic-one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.synthetic_one is not None:
        print("ROW " + json.dumps(synthetic_one(a.synthetic_one, Path(a.tmp))), flush=True)
        return
    print(f"cores: {os.cpu_count()}  load average: {load()}  python {sys.version.split()[0]}")
    one, two, ratio = parallel_capacity()
    print(
        f"anchor: a pure-Python loop takes {one:.2f} s alone and {two:.2f} s each as 2 "
        f"concurrent processes: this machine gives {ratio:.2f}x the throughput to 2 processes "
        "(2.0 = two free cores)",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="sempix-batch-bench-"))
    try:
        if a.n:
            rows = throughput(a.n, a.tools.split(","), a.modes.split(","), tmp)
            print(f"\n## throughput, {a.n} BSDS images (481x321), cores {os.cpu_count()}")
            print(
                "| tool | mode | workers | wall s | s/image | speed-up vs CLI loop "
                "| cluster start s | overhead ms/task | load before -> after |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for r in rows:
                anchor = next(
                    (x["wall"] for x in rows if x["tool"] == r["tool"] and x["mode"] == "cli"), None
                )
                sp = f"{anchor / r['wall']:.2f}x" if anchor else "-"
                ov = f"{r['overhead_ms']:.0f}" if "overhead_ms" in r else "-"
                print(
                    f"| {r['tool']} | {'CLI loop' if r['mode'] == 'cli' else 'batch'} | "
                    f"{r['workers']} | "
                    f"{r['wall']:.1f} | {r['per_image']:.2f} | {sp} | {r['startup']:.1f} | {ov} | "
                    f"{r['load_before']} -> {r['load_after']} |"
                )
        if a.synthetic:
            srows = []
            for n in [int(x) for x in a.synthetic.split(",") if x]:
                p = subprocess.run(
                    [sys.executable, __file__, "--synthetic-one", str(n), "--tmp", str(tmp)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                srows.append(
                    json.loads(
                        next(ln for ln in p.stdout.splitlines() if ln.startswith("ROW "))[4:]
                    )
                )
                print(json.dumps(srows[-1]), flush=True)
            print(
                "\n## tiny synthetic images (features lowlevel, 12x16 PNG), 2 workers, "
                f"cores {os.cpu_count()}"
            )
            print(
                "| images | plan (dry run) s | run s | ms/image | task ms/image | "
                "re-run (all skipped) s | re-run ms/image | client peak RSS MB | load |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for r in srows:
                print(
                    f"| {r['n']} | {r['plan_s']:.2f} | {r['wall']:.1f} | {r['per_image_ms']:.1f} | "
                    f"{r['task_ms']:.1f} | {r['rerun_s']:.2f} | {r['rerun_ms_per_image']:.2f} | "
                    f"{r['client_peak_rss_mb']:.0f} | {r['load']} |"
                )
        if a.fault:
            frows = fault(a.fault, tmp)
            print(
                f"\n## fault injection: harmonize, {a.fault} images 96x128, 2 workers, "
                f"one SIGKILLed after a quarter (cores {os.cpu_count()})"
            )
            print(
                "| worker killed | wall s | processed | failed | manifest rows | outputs recorded "
                "| unique | checksums ok | files on disk | max attempts | temp leftovers | load |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for r in frows:
                print(
                    f"| {'yes' if r['kill'] else 'no'} | {r['wall']:.1f} | {r['processed']} | "
                    f"{r['failed']} | "
                    f"{r['manifest_rows']} | {r['outputs_recorded']} | {r['unique_outputs']} | "
                    f"{r['checksums_ok']} | {r['files_on_disk']} | {r['max_attempts']} | "
                    f"{r['leftover_temp']} | {r['load']} |"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
