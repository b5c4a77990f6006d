"""Loopback load test of the web editor: N concurrent clients open images and click.

Starts the real server (``sempix serve`` in a subprocess, or in a thread with ``--thread``) on a
free 127.0.0.1 port, then runs ``--clients`` concurrent clients (asyncio + httpx). Each client
uploads an image, polls its feature job, then requests ``--clicks`` per-click distance maps at
random points (and one full-resolution render). Bounded: stops after all clicks or
``--max-seconds``.

Reports errors (must be 0), p50/p95/max latency of a click -> distance-map request (request sent
to last byte received), feature-job wait, throughput, and ``os.cpu_count()``.

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


async def _client(
    idx: int,
    url: str,
    image: tuple[str, bytes],
    clicks: int,
    deadline: float,
    stats: dict,
    rng: random.Random,
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
                if r.status_code != 200 or len(body) != 4 * W * H:
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
            if r.status_code != 200 or not r.content.startswith(b"\xff\xd8"):
                stats["errors"].append(f"client {idx}: render {r.status_code}")
            else:
                stats["renders"] += 1
        except Exception as exc:  # noqa: BLE001 - a failed request is an error of the run
            stats["errors"].append(f"client {idx}: {type(exc).__name__}: {exc}")


def run_load(
    url: str,
    clients: int = 20,
    clicks: int = 10,
    max_seconds: float = 300.0,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> dict:
    """Run the load against a running server at ``url``; returns the statistics dict."""
    images = _images(clients, size, seed)
    stats = {
        "errors": [],
        "click_s": [],
        "upload_s": [],
        "ready_s": [],
        "bytes": 0,
        "renders": 0,
        "timeouts": 0,
    }
    deadline = time.time() + max_seconds

    async def main() -> None:
        await asyncio.gather(
            *[
                _client(i, url, images[i], clicks, deadline, stats, random.Random(seed * 1000 + i))
                for i in range(clients)
            ]
        )

    t0 = time.perf_counter()
    asyncio.run(main())
    stats["wall_s"] = time.perf_counter() - t0
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
    }
    return stats


def _start_subprocess(backend: str, max_sessions: int):
    cmd = [
        str(Path(sys.executable).with_name("sempix")),
        "serve",
        "--port",
        "0",
        "--features",
        backend,
        "--max-sessions",
        str(max_sessions),
        "--max-memory-mb",
        "6000",
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
            create_app(
                backend=args.backend, max_sessions=args.clients + 4, max_memory_bytes=6_000_000_000
            )
        )
        url = ctx.__enter__()
    else:
        proc, url = _start_subprocess(args.backend, args.clients + 4)
    try:
        stats = run_load(url, args.clients, args.clicks, args.max_seconds, size)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        else:
            ctx.__exit__(None, None, None)
    s = stats["summary"]
    use_bsds = size is None and os.environ.get("SEMPIX_DATA_DIR")
    images_label = "BSDS500 val" if use_bsds else args.size or "640x480"
    print(
        f"web load test: {s['clients']} concurrent clients, backend {args.backend}, "
        f"images {images_label}, "
        f"os.cpu_count()={s['cpu_count']}"
    )
    print("| metric | value |\n|---|---|")
    for k in (
        "clicks_ok",
        "errors",
        "renders",
        "timeouts",
        "click_p50_ms",
        "click_p95_ms",
        "click_max_ms",
        "ready_p50_s",
        "ready_max_s",
        "clicks_per_s",
        "MB_received",
        "wall_s",
    ):
        v = s[k]
        print(f"| {k} | {v:.3g} |" if isinstance(v, float) else f"| {k} | {v} |")
    for e in stats["errors"][:10]:
        print("error:", e)
    return 0 if not stats["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
