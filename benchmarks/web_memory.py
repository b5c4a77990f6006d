"""Per-request memory of the web app (issue 12 item 2): concurrent full-resolution requests with
many points on a huge session, peak RSS of this process (the server runs in it via TestClient).

    python benchmarks/web_memory.py --size 4800 --points 64      # 23 MP, two requests at once

Before the fix one 64-point /mask on a 23 MP session added ~12 GB RSS (issue 12); the requests now
take the per-point minimum incrementally and run inside a memory reservation of the budget.
"""

from __future__ import annotations

import argparse
import io
import os
import threading
import time

import numpy as np


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str] | None = None) -> int:
    from fastapi.testclient import TestClient
    from PIL import Image

    from sempix.web.app import create_app

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4800, help="side of the black square PNG")
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--requests", default="mask,render", help="endpoints run at the same time")
    args = ap.parse_args(argv)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((args.size, args.size, 3), np.uint8)).save(buf, format="PNG")
    app = create_app(backend="lowlevel", workers=1, max_pixels=max(24_000_000, args.size**2))
    st = app.state.sempix.sessions
    with TestClient(app) as c:
        info = c.post(
            "/api/images", files={"file": ("black.png", buf.getvalue(), "image/png")}
        ).json()
        sid = info["session"]
        while c.get(f"/api/jobs/{info['job']}").json()["state"] not in ("done", "error"):
            time.sleep(0.2)
        rng = np.random.default_rng(0)
        pts = [
            [int(x), int(y)]
            for x, y in zip(
                rng.integers(0, args.size, args.points), rng.integers(0, args.size, args.points)
            )
        ]
        t0 = time.perf_counter()
        r = c.get(f"/api/sessions/{sid}/distance", params={"x": 10, "y": 10})
        click_s, click_bytes = time.perf_counter() - t0, len(r.content)
        base, peak, stop = _rss(), [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.01)

        res: dict = {}

        def req(kind: str) -> None:
            t = time.perf_counter()
            body = {
                "points": pts,
                "lam": 0.5,
                "tau": 0.25,
                "feather": 0.02,
                "adjustments": {"exposure": 0.5},
                "format": "jpeg",
            }
            rr = c.post(f"/api/sessions/{sid}/{kind}", json=body)
            res[kind] = (rr.status_code, time.perf_counter() - t)

        th = threading.Thread(target=sample)
        th.start()
        ts = [threading.Thread(target=req, args=(k,)) for k in args.requests.split(",")]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        stop.set()
        th.join()
    print(
        f"{args.size}x{args.size} ({args.size**2 / 1e6:.1f} MP), {args.points} points, "
        f"os.cpu_count()={os.cpu_count()}, budget {st.max_bytes / 1e6:.0f} MB"
    )
    print("| metric | value |\n|---|---|")
    print(
        f"| one click (distance maps at preview size) | {click_s:.2f} s, "
        f"{click_bytes / 1e6:.1f} MB |"
    )
    for k, (code, s) in res.items():
        print(f"| {k} | HTTP {code}, {s:.1f} s |")
    print(
        f"| RSS before / peak | {base / 1e6:.0f} MB / {peak[0] / 1e6:.0f} MB "
        f"(+{(peak[0] - base) / 1e6:.0f} MB) |"
    )
    print(f"| budget peak (sessions + reservations) | {st.peak_bytes / 1e6:.0f} MB |")
    return 0 if all(code == 200 for code, _ in res.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
