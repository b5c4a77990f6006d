"""Loopback load test of the web app: N concurrent clients open images, click and run jobs.

Starts the real server (``sempix serve`` in a subprocess, or in a thread with ``--thread``) on a
free 127.0.0.1 port, then runs ``--clients`` concurrent clients (asyncio + httpx). Each client
uploads an image, polls its feature job, then requests ``--clicks`` per-click distance maps at
random points, one full-resolution render, and (``--jobs``, default on) one background resize job
(semantic carving to 90 % width) followed through its server-sent events (odd clients) or by
polling (even clients); every fifth client cancels its job. Bounded: stops after all of that or
``--max-seconds``.

Reports errors (must be 0) and 5xx answers (must be 0), p50/p95/max latency of a click ->
distance-map request (request sent to last byte received), feature-job wait, job wall times, the
server's RSS before / peak / after (sampled every 50 ms), throughput, and ``os.cpu_count()``.

    flock /tmp/sempix-bench.lock .venv/bin/python benchmarks/web_load.py --clients 20 --clicks 10
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _images(n: int, size: tuple[int, int] | None, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` PNG/JPEG files: BSDS500 val photos when $SEMPIX_DATA_DIR has them, else synthetic."""
    from PIL import Image

    data = os.environ.get("SEMPIX_DATA_DIR")
    files = []
    if data and size is None:
        files = sorted((Path(data) / "bsds500" / "images" / "val").glob("*.jpg"))
    out = []
    rng = np.random.default_rng(seed)
    for i in range(n):
        if files:
            f = files[i % len(files)]
            out.append((f.name, f.read_bytes()))
            continue
        h, w = size or (480, 640)
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx / w), (yy / h), 0.5 + 0.5 * np.sin(xx / 37.0 + i)], -1)
        img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
        buf = io.BytesIO()
        Image.fromarray((img * 255).astype(np.uint8)).save(buf, format="PNG", compress_level=1)
        out.append((f"synthetic{i}.png", buf.getvalue()))
    return out


def _rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def _job(c, idx: int, sid: str, W: int, H: int, deadline: float, stats: dict) -> None:
    """One resize job: submit, cancel (every fifth client), follow by SSE or polling, fetch."""
    t0 = time.perf_counter()
    target = max(8, int(W * 0.9))
    r = await c.post(
        f"/api/sessions/{sid}/resize", json={"width": target, "height": H, "method": "carve"}
    )
    if r.status_code >= 500:
        stats["5xx"] += 1
    if r.status_code != 202:
        stats["errors"].append(f"client {idx}: resize {r.status_code} {r.text[:120]}")
        return
    job = r.json()["job"]
    if idx % 5 == 4:
        await asyncio.sleep(0.05)
        r = await c.post(f"/api/jobs/{job}/cancel")
        if r.status_code != 200:
            stats["errors"].append(f"client {idx}: cancel {r.status_code}")
    state = None
    if idx % 2:  # server-sent events
        async with c.stream("GET", f"/api/jobs/{job}/events") as r:
            if r.status_code >= 500:
                stats["5xx"] += 1
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    import json

                    st = json.loads(line[5:])
                    stats["job_events"] += 1
                    if st["state"] in ("done", "error", "cancelled"):
                        state = st
                        break
                if time.time() > deadline:
                    break
    else:
        while time.time() < deadline:
            st = (await c.get(f"/api/jobs/{job}")).json()
            if st["state"] in ("done", "error", "cancelled"):
                state = st
                break
            await asyncio.sleep(0.1)
    if state is None:
        stats["timeouts"] += 1
        return
    if state["state"] == "cancelled":
        stats["jobs_cancelled"] += 1
    elif state["state"] == "done":
        r = await c.get(f"/api/jobs/{job}/result")
        if r.status_code != 200 or not r.content.startswith(b"\x89PNG"):
            stats["errors"].append(f"client {idx}: job result {r.status_code}")
        else:
            stats["jobs_done"] += 1
            stats["job_s"].append(time.perf_counter() - t0)
    else:
        if (state.get("status") or 0) >= 500:
            stats["5xx"] += 1
        stats["errors"].append(f"client {idx}: job {state['state']} {state.get('error')}")


async def _client(
    idx: int,
    url: str,
    image: tuple[str, bytes],
    clicks: int,
    deadline: float,
    stats: dict,
    rng: random.Random,
    jobs: bool = True,
) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120.0) as c:
        try:
            t0 = time.perf_counter()
            r = await c.post(
                "/api/images", files={"file": (image[0], image[1], "application/octet-stream")}
            )
            if r.status_code != 201:
                stats["errors"].append(f"client {idx}: upload {r.status_code} {r.text[:120]}")
                return
            info = r.json()
            stats["upload_s"].append(time.perf_counter() - t0)
            sid, job, W, H = info["session"], info["job"], info["width"], info["height"]
            while True:
                st = (await c.get(f"/api/jobs/{job}")).json()
                if st["state"] == "done":
                    break
                if st["state"] == "error" or time.time() > deadline:
                    stats["errors"].append(
                        f"client {idx}: features {st['state']} {st.get('error')}"
                    )
                    return
                await asyncio.sleep(0.1)
            stats["ready_s"].append(time.perf_counter() - t0)
            for k in range(clicks):
                if time.time() > deadline:
                    stats["timeouts"] += 1
                    break
                x, y = rng.randrange(W), rng.randrange(H)
                space = "lab" if k % 3 == 2 else "luminance"
                t1 = time.perf_counter()
                r = await c.get(
                    f"/api/sessions/{sid}/distance", params={"x": x, "y": y, "space": space}
                )
                body = r.content
                dt = time.perf_counter() - t1
                if r.status_code >= 500:
                    stats["5xx"] += 1
                pw, ph = int(r.headers.get("X-Width", 0)), int(r.headers.get("X-Height", 0))
                if r.status_code != 200 or len(body) != 4 * pw * ph or pw > W or ph > H:
                    stats["errors"].append(
                        f"client {idx}: distance {r.status_code} {len(body)} bytes"
                    )
                    continue
                stats["click_s"].append(dt)
                stats["bytes"] += len(body)
            r = await c.post(
                f"/api/sessions/{sid}/render",
                json={
                    "points": [[W // 2, H // 2]],
                    "lam": 0.5,
                    "tau": 0.25,
                    "feather": 0.02,
                    "adjustments": {"exposure": 0.5},
                    "format": "jpeg",
                },
            )
            if r.status_code >= 500:
                stats["5xx"] += 1
            if r.status_code != 200 or not r.content.startswith(b"\xff\xd8"):
                stats["errors"].append(f"client {idx}: render {r.status_code}")
            else:
                stats["renders"] += 1
            if jobs:
                await _job(c, idx, sid, W, H, deadline, stats)
        except Exception as exc:  # noqa: BLE001 - a failed request is an error of the run
            stats["errors"].append(f"client {idx}: {type(exc).__name__}: {exc}")


def run_load(
    url: str,
    clients: int = 20,
    clicks: int = 10,
    max_seconds: float = 300.0,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    jobs: bool = True,
    pid: int | None = None,
) -> dict:
    """Run the load against a running server at ``url`` (process ``pid``, default this one)."""
    import threading

    images = _images(clients, size, seed)
    stats = {
        "errors": [],
        "click_s": [],
        "upload_s": [],
        "ready_s": [],
        "bytes": 0,
        "renders": 0,
        "timeouts": 0,
        "5xx": 0,
        "jobs_done": 0,
        "jobs_cancelled": 0,
        "job_s": [],
        "job_events": 0,
    }
    deadline = time.time() + max_seconds
    pid = pid or os.getpid()
    rss = {"before": _rss(pid), "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss["peak"] = max(rss["peak"], _rss(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def main() -> None:
        await asyncio.gather(
            *[
                _client(
                    i, url, images[i], clicks, deadline, stats, random.Random(seed * 1000 + i), jobs
                )
                for i in range(clients)
            ]
        )

    t0 = time.perf_counter()
    try:
        asyncio.run(main())
    finally:
        stop.set()
        sampler.join()
    stats["wall_s"] = time.perf_counter() - t0
    rss["after"] = _rss(pid)
    jl = np.array(stats["job_s"])
    lat = np.array(stats["click_s"]) * 1000
    stats["summary"] = {
        "clients": clients,
        "clicks_ok": int(lat.size),
        "errors": len(stats["errors"]),
        "renders": stats["renders"],
        "timeouts": stats["timeouts"],
        "click_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "click_p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
        "click_max_ms": float(lat.max()) if lat.size else None,
        "ready_p50_s": float(np.median(stats["ready_s"])) if stats["ready_s"] else None,
        "ready_max_s": float(np.max(stats["ready_s"])) if stats["ready_s"] else None,
        "clicks_per_s": lat.size / stats["wall_s"] if stats["wall_s"] else 0.0,
        "MB_received": stats["bytes"] / 1e6,
        "wall_s": stats["wall_s"],
        "cpu_count": os.cpu_count(),
        "5xx": stats["5xx"],
        "jobs_done": stats["jobs_done"],
        "jobs_cancelled": stats["jobs_cancelled"],
        "job_events": stats["job_events"],
        "job_p50_s": float(np.median(jl)) if jl.size else None,
        "job_max_s": float(jl.max()) if jl.size else None,
        "rss_before_MB": rss["before"] / 1e6,
        "rss_peak_MB": rss["peak"] / 1e6,
        "rss_after_MB": rss["after"] / 1e6,
    }
    return stats


def _start_subprocess(backend: str, max_memory_mb: int):
    cmd = [
        str(Path(sys.executable).with_name("sempix")),
        "serve",
        "--port",
        "0",
        "--features",
        backend,
        "--max-memory-mb",
        str(max_memory_mb),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+?)/?\s", line + " ")
    if not m:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()[:500]}")
    return proc, m.group(1).rstrip("/")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--clicks", type=int, default=10, help="distance requests per client")
    ap.add_argument("--backend", default="ade20k", choices=["ade20k", "lowlevel"])
    ap.add_argument(
        "--size", default=None, help="synthetic image size WxH instead of BSDS500 photos"
    )
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument(
        "--thread", action="store_true", help="run the server in a thread of this process"
    )
    ap.add_argument("--no-jobs", action="store_true", help="skip the resize jobs")
    ap.add_argument("--max-memory-mb", type=int, default=3000, help="the server's memory budget")
    args = ap.parse_args(argv)
    size = None
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        size = (h, w)
    proc = None
    if args.thread:
        from sempix.web.app import create_app
        from sempix.web.testing import serve_in_thread

        ctx = serve_in_thread(
            create_app(backend=args.backend, max_memory_bytes=args.max_memory_mb * 1_000_000)
        )
        url = ctx.__enter__()
    else:
        proc, url = _start_subprocess(args.backend, args.max_memory_mb)
    try:
        stats = run_load(
            url,
            args.clients,
            args.clicks,
            args.max_seconds,
            size,
            jobs=not args.no_jobs,
            pid=proc.pid if proc is not None else None,
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        else:
            ctx.__exit__(None, None, None)
    s = stats["summary"]
    bsds = size is None and os.environ.get("SEMPIX_DATA_DIR")
    what = "BSDS500 val" if bsds else args.size or "640x480"
    print(
        f"web load test: {s['clients']} concurrent clients, backend {args.backend}, "
        f"images {what}, "
        f"os.cpu_count()={s['cpu_count']}"
    )
    print("| metric | value |\n|---|---|")
    for k in (
        "clicks_ok",
        "errors",
        "5xx",
        "renders",
        "timeouts",
        "click_p50_ms",
        "click_p95_ms",
        "click_max_ms",
        "ready_p50_s",
        "ready_max_s",
        "clicks_per_s",
        "jobs_done",
        "jobs_cancelled",
        "job_events",
        "job_p50_s",
        "job_max_s",
        "rss_before_MB",
        "rss_peak_MB",
        "rss_after_MB",
        "MB_received",
        "wall_s",
    ):
        v = s[k]
        print(f"| {k} | {v:.3g} |" if isinstance(v, float) else f"| {k} | {v} |")
    for e in stats["errors"][:10]:
        print("error:", e)
    return 0 if not stats["errors"] and not stats["5xx"] else 1


if __name__ == "__main__":
    sys.exit(main())
