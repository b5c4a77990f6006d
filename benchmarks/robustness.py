"""Robustness probe of the CLI and the web server (issue 12): fuzz, kills, abuse, load.

Four parts, each bounded in time and run on loopback only (127.0.0.1):

``cli``   commands x bad inputs x odd sizes, each in a subprocess with a timeout: exit code,
          the number of stderr lines, whether a traceback was printed, leftovers (``.part``
          files, partial outputs). A case passes when bad input gives exit 2 with one ``error:``
          line, odd sizes give 0 or 2, nothing hangs, and a failed run leaves no file behind.
``kill``  carve and softseg killed at random moments (SIGKILL or SIGTERM), then run again: no
          ``.part`` file may remain after the next run, and a softseg folder is never partial.
``web``   the abuse table against ``sempix serve`` (a subprocess): bad uploads, malformed JSON on
          every POST route of the app (discovered from ``create_app().routes``), path traversal,
          huge and slow bodies, cross-origin requests, a rebinding ``Host``, unicode file names.
          Passes when the status is the expected class and no answer is a 5xx.
``load``  ``benchmarks/web_load.py``'s concurrent clients against the same kind of server, with the
          server's RSS (VmRSS) before and after and its peak (VmHWM).

    python benchmarks/robustness.py                     # all parts, scaled to a few minutes
    python benchmarks/robustness.py --parts cli,kill --kills 10 --scale 2

Prints Markdown tables, ``os.cpu_count()`` and the load average. Exit code 1 when a case failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _sempix() -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from sempix.cli import main; sys.argv[0] = 'sempix'; main()",
    ]


def _png_bytes(h: int, w: int, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / max(w, 1), yy / max(h, 1), 0.5 + 0.5 * np.sin(xx / 7.0)], -1)
    img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((img * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _declared_huge_png(w: int = 50_000, h: int = 50_000) -> bytes:
    def chunk(t: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + t
            + data
            + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


def _table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ CLI


def _inputs(d: Path) -> dict[str, Path]:
    """Bad inputs and odd sizes, written into ``d``."""
    files = {}

    def put(name: str, data: bytes) -> None:
        p = d / name
        p.write_bytes(data)
        files[name] = p

    good = _png_bytes(48, 64)
    put("ok.png", good)
    put("ok2.png", _png_bytes(40, 56, seed=9))
    put("empty.png", b"")
    put("text.png", b"this is not an image\n" * 10)
    put("truncated.png", good[: len(good) // 2])
    put("huge_header.png", _declared_huge_png())
    for h, w in ((1, 1), (1, 64), (64, 1), (2, 2), (128, 192), (1, 3000), (3000, 1)):
        put(f"size_{w}x{h}.png", _png_bytes(h, w, seed=h * 7 + w))
    (d / "afile").write_text("a regular file")
    files["afile"] = d / "afile"
    (d / "adir.png").mkdir()
    files["adir.png"] = d / "adir.png"
    return files


# (command template, what it exercises, expected exit codes). {in} = input, {o} = an output path.
_CLI_COMMANDS = {
    "carve": ["carve", "{in}", "-o", "{o}.png", "--width", "80%", "--features", "none"],
    "carve-fig": [
        "carve",
        "{in}",
        "-o",
        "{o}.png",
        "--width",
        "80%",
        "--features",
        "lowlevel",
        "--energy-figure",
        "{o}_fig.png",
        "--figure-lambdas",
        "0,0.5",
    ],
    "mask": ["mask", "{in}", "-o", "{o}.png", "--at", "0,0", "--features", "lowlevel"],
    "softseg": [
        "softseg",
        "{in}",
        "-o",
        "{o}_dir",
        "--features",
        "lowlevel",
        "--layers",
        "2",
        "--eigvecs",
        "6",
        "--initial",
        "4",
        "--work-pixels",
        "2000",
    ],
    "palette": ["palette", "{in}", "-o", "{o}.png", "--preview", "{o}_prev.png"],
    "names": ["names", "{in}", "--preview", "{o}.png"],
    "harmonize": ["harmonize", "{in}", "-o", "{o}.png", "--preview", "{o}_prev.png"],
    "harmony": ["harmony", "{in}"],
    "features": [
        "features",
        "{in}",
        "-o",
        "{o}.npz",
        "--features",
        "lowlevel",
        "--preview",
        "{o}_p.png",
    ],
    "retarget": [
        "retarget",
        "{in}",
        "-o",
        "{o}.png",
        "--width",
        "80%",
        "--method",
        "seam",
        "--features",
        "none",
    ],
    "recolor": ["recolor", "{in}", "{d}/ok2.png", "-o", "{o}_dir", "--features", "none"],
}

_BAD = ["missing.png", "empty.png", "text.png", "truncated.png", "huge_header.png", "adir.png"]
_ODD = [
    "size_1x1.png",
    "size_64x1.png",
    "size_1x64.png",
    "size_2x2.png",
    "size_192x128.png",
    "size_3000x1.png",
    "size_1x3000.png",
]
_BAD_OPTIONS = {  # command -> extra arguments that are bad
    "carve": [["--width", "nan"], ["--lambda", "2"]],
    "carve-fig": [["--figure-lambdas", "a,b"]],
    "softseg": [["--seed", "-1"]],
    "names": [],
    "retarget": [["--lr", "nan"], ["--weights", "/nonexistent.pth"]],
}


def _cli_case(case: tuple, d: Path, timeout: float) -> list:
    cmd_name, inp, extra, kind = case
    out_dir = Path(tempfile.mkdtemp(prefix="o-", dir=d))
    o = out_dir / "out"
    src = str(d / inp) if inp != "UNDER_FILE" else str(d / "ok.png")
    args = [
        a.replace("{in}", src).replace("{o}", str(o)).replace("{d}", str(d))
        for a in _CLI_COMMANDS[cmd_name]
    ]
    if inp == "UNDER_FILE":  # every output below a regular file
        args = [a.replace(str(o), str(d / "afile" / "out")) for a in args]
    args += extra + ["-q"]
    t0 = time.time()
    try:
        p = subprocess.run(
            _sempix() + args,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=out_dir,
        )
        code, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        code, err = "TIMEOUT", ""
    dt = time.time() - t0
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning")]
    tb = "Traceback" in err
    left = sorted(str(f.relative_to(out_dir)) for f in out_dir.rglob("*"))
    parts = [f for f in left if f.endswith(".part") or ".part/" in f]
    if kind == "bad":
        ok = code == 2 and len(lines) == 1 and lines[0].startswith("error:") and not tb and not left
    else:
        ok = (code == 0 or (code == 2 and len(lines) == 1 and not left)) and not tb and not parts
    shutil.rmtree(out_dir, ignore_errors=True)
    first = (lines[0][:70] if lines else "").replace("|", "/")
    return [
        cmd_name,
        inp + (" " + " ".join(extra) if extra else ""),
        code,
        len(lines),
        "yes" if tb else "no",
        len(parts) or (len(left) if code != 0 else 0),
        f"{dt:.1f}",
        "ok" if ok else "FAIL",
        first,
    ]


def run_cli(scale: float, timeout: float, workers: int) -> tuple[str, int]:
    d = Path(tempfile.mkdtemp(prefix="sempix-fuzz-"))
    try:
        _inputs(d)
        cases = []
        rng = random.Random(0)
        for name, template in _CLI_COMMANDS.items():
            has_output = any("{o}" in a for a in template)
            bad = list(_BAD) + (["UNDER_FILE"] if has_output else [])
            odd = list(_ODD)
            n_bad = max(1, round(len(bad) * min(1.0, scale / 2)))
            n_odd = max(1, round(len(odd) * min(1.0, scale / 2)))
            for inp in rng.sample(bad, n_bad):
                cases.append((name, inp, [], "bad"))
            for inp in rng.sample(odd, n_odd):
                cases.append((name, inp, [], "odd"))
            for extra in _BAD_OPTIONS.get(name, []):
                cases.append((name, "ok.png", extra, "bad"))
        cases.append(("names", "ok.png", [], "odd"))
        with ThreadPoolExecutor(workers) as ex:
            rows = list(ex.map(lambda c: _cli_case(c, d, timeout), cases))
        fails = sum(r[7] != "ok" for r in rows)
        head = [
            "command",
            "input",
            "exit",
            "stderr lines",
            "traceback",
            "leftovers",
            "s",
            "verdict",
            "first line",
        ]
        summary = (
            f"CLI fuzz: {len(rows)} cases, {len(rows) - fails} ok, {fails} failed "
            f"(bad input must give exit 2 + one error line + no files; odd sizes 0 or 2; "
            f"timeout {timeout:.0f} s)"
        )
        return summary + "\n\n" + _table(head, rows), fails
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------------------- kills


def run_kill(n: int, seed: int = 0) -> tuple[str, int]:
    d = Path(tempfile.mkdtemp(prefix="sempix-kill-"))
    rng = random.Random(seed)
    try:
        (d / "big.png").write_bytes(_png_bytes(360, 480, seed=3))
        jobs = {
            "carve": (
                [
                    "carve",
                    str(d / "big.png"),
                    "-o",
                    str(d / "o.png"),
                    "--width",
                    "60%",
                    "--features",
                    "lowlevel",
                    "--seams",
                    str(d / "s.png"),
                    "-q",
                ],
                [d / "o.png"],
            ),
            "softseg": (
                [
                    "softseg",
                    str(d / "big.png"),
                    "-o",
                    str(d / "layers"),
                    "--features",
                    "lowlevel",
                    "--layers",
                    "3",
                    "--eigvecs",
                    "8",
                    "--initial",
                    "6",
                    "--work-pixels",
                    "6000",
                    "--preview",
                    "-q",
                ],
                [d / "layers"],
            ),
        }
        # one undisturbed run of each: duration and the complete output set
        ref = {}
        for name, (args, outs) in jobs.items():
            t0 = time.time()
            subprocess.run(_sempix() + args, check=True, capture_output=True, timeout=600)
            ref[name] = (
                time.time() - t0,
                sorted(p.name for p in outs[0].iterdir()) if outs[0].is_dir() else None,
            )
            for o in outs:
                shutil.rmtree(o, ignore_errors=True) if o.is_dir() else o.unlink(missing_ok=True)
            (d / "s.png").unlink(missing_ok=True)
        rows = []
        fails = 0
        for i in range(n):
            name = list(jobs)[i % len(jobs)]
            args, outs = jobs[name]
            dur, full_set = ref[name]
            sig = signal.SIGKILL if i % 3 != 2 else signal.SIGTERM
            at = rng.uniform(0.05, 1.1) * dur
            p = subprocess.Popen(
                _sempix() + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            time.sleep(at)
            p.send_signal(sig)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            parts_after_kill = [f.name for f in d.iterdir() if f.name.endswith(".part")]
            partial = False
            if name == "softseg" and outs[0].exists():
                partial = sorted(x.name for x in outs[0].iterdir()) != full_set
            # the next run must clean up and complete the set
            r = subprocess.run(_sempix() + args, check=False, capture_output=True, timeout=600)
            parts_after_next = [f.name for f in d.iterdir() if f.name.endswith(".part")]
            complete = (
                sorted(x.name for x in outs[0].iterdir()) == full_set
                if full_set is not None
                else outs[0].is_file()
            )
            ok = not parts_after_next and not partial and complete and r.returncode == 0
            fails += not ok
            rows.append(
                [
                    name,
                    signal.Signals(sig).name,
                    f"{at:.2f} / {dur:.2f}",
                    p.returncode,
                    len(parts_after_kill),
                    "yes" if partial else "no",
                    len(parts_after_next),
                    "yes" if complete else "no",
                    "ok" if ok else "FAIL",
                ]
            )
            for o in outs:
                shutil.rmtree(o, ignore_errors=True) if o.is_dir() else o.unlink(missing_ok=True)
            (d / "s.png").unlink(missing_ok=True)
        head = [
            "command",
            "signal",
            "killed at s (of a full run)",
            "exit",
            ".part after kill",
            "partial set after kill",
            ".part after next run",
            "next run complete",
            "verdict",
        ]
        return (
            f"kills: {n} runs killed at random moments, {n - fails} ok\n\n" + _table(head, rows)
        ), fails
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------------- web


def _start_server(extra: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = _sempix() + ["serve", "--port", "0", "--features", "lowlevel", "--quiet", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+?)/?\s", line + " ")
    if not m:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {proc.stderr.read()[:500]}")
    return proc, m.group(1).rstrip("/")


def _rss_mb(pid: int) -> tuple[float, float]:
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith(("VmRSS:", "VmHWM:")):
                k, v = ln.split(":", 1)
                vals[k] = int(v.split()[0]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def _raw(
    url: str,
    data: bytes,
    timeout: float = 30.0,
    chunks: list[bytes] | None = None,
    pause: float = 0.0,
) -> tuple[int | None, bytes, float]:
    u = urllib.parse.urlsplit(url)
    t0 = time.time()
    resp = b""
    with socket.create_connection((u.hostname, u.port), timeout=timeout) as s:
        try:
            s.sendall(data)
            for c in chunks or ():
                s.sendall(c)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                resp += part
                head, sep, body = resp.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
                    if m and len(body) >= int(m.group(1)):
                        break
        except (ConnectionResetError, TimeoutError, OSError):
            pass
    try:
        status = int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = None
    return status, resp.partition(b"\r\n\r\n")[2], time.time() - t0


def _multipart(
    files: list[tuple[str, str, bytes]], boundary: str = "sempixfuzz"
) -> tuple[bytes, str]:
    out = b""
    for field, name, data in files:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                f"filename*=UTF-8''{urllib.parse.quote(name)}; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _req(
    method: str,
    path: str,
    host: str,
    body: bytes = b"",
    ctype: str | None = None,
    headers: dict | None = None,
) -> bytes:
    h = {"Host": host, "Connection": "close", "Content-Length": str(len(body))}
    if ctype:
        h["Content-Type"] = ctype
    h.update(headers or {})
    return (
        f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    ).encode() + body


#: a valid body per route ending, for the mixed-session-kind requests
_VALID_BODIES = {
    "/mask": b'{"points": [[1, 1]]}',
    "/render": b'{"points": [[1, 1]]}',
    "/resize": b'{"width": 40, "height": 40}',
    "/solve": b"{}",
    "/group": b'{"group": 0, "colors": []}',
}


def _routes(routes, prefix: str = ""):
    """(path, methods) of every route, also inside routers included lazily by newer FastAPI."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            ctx = getattr(r, "include_context", None)
            yield from _routes(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        elif getattr(r, "methods", None) and hasattr(r, "path"):
            yield prefix + r.path, tuple(sorted(r.methods))


def _chunked_upload(url: str, host: str, total: int) -> tuple[int | None, int, float]:
    """Stream a valid multipart upload with chunked encoding; (status, bytes sent, seconds)."""
    u = urllib.parse.urlsplit(url)
    head = (
        f"POST /api/images HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=xx\r\nConnection: close\r\n\r\n"
    ).encode()
    pre = b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    chunk = b"a" * (1 << 20)
    sent, status, t0 = 0, None, time.time()
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        try:
            s.sendall(head + f"{len(pre):x}\r\n".encode() + pre + b"\r\n")
            while sent < total:
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            data = s.recv(65536)
            status = int(data.split(b" ", 2)[1]) if data else None
        except (OSError, IndexError, ValueError):
            pass
    return status, sent, time.time() - t0


def run_web(timeout: float) -> tuple[str, int]:
    import httpx

    from sempix.web.app import create_app

    proc, url = _start_server(["--max-upload-mb", "8"])
    rows = []
    fails = 0
    host = urllib.parse.urlsplit(url).netloc

    def check(group: str, what: str, status, expect: str, dt: float, body: bytes = b"") -> None:
        nonlocal fails
        cls = "none" if status is None else f"{status // 100}xx"
        ok = (
            status is not None
            and status < 500
            and (
                (expect == "2xx" and 200 <= status < 300)
                or (expect == "4xx" and 400 <= status < 500)
                or expect == str(status)
            )
        )
        if expect == "closed":
            ok = status is None or 400 <= status < 500
        if expect == "<500":
            ok = status is not None and status < 500
        fails += not ok
        rows.append(
            [
                group,
                what,
                status,
                expect,
                f"{dt:.2f}",
                "ok" if ok else "FAIL",
                body[:60].decode("utf-8", "replace").replace("|", "/").replace("\n", " ")
                if status is None or status >= 400
                else cls,
            ]
        )

    try:
        c = httpx.Client(base_url=url, timeout=timeout)
        # a real session for the routes that need one
        r = c.post("/api/images", files={"file": ("ok.png", _png_bytes(48, 64), "image/png")})
        sid = r.json().get("session", "x") if r.status_code == 201 else "x"
        job = r.json().get("job") if r.status_code == 201 else None
        t0 = time.time()
        while job and time.time() - t0 < 60:
            st = c.get(f"/api/jobs/{job}").json()
            if st.get("state") in ("done", "error"):
                break
            time.sleep(0.2)
        # ---- bad uploads
        good = _png_bytes(48, 64)
        uploads = {
            "empty file": b"",
            "text as .png": b"hello\n" * 50,
            "truncated PNG": good[: len(good) // 2],
            "declared 50000x50000": _declared_huge_png(),
            "5000x1": _png_bytes(1, 5000),
            "1x1": _png_bytes(1, 1),
            "random bytes": os.urandom(4096),
        }
        for name, data in uploads.items():
            body, ctype = _multipart([("file", "x.png", data)])
            st, b, dt = _raw(url, _req("POST", "/api/images", host, body, ctype))
            expect = "2xx" if name in ("5000x1", "1x1") else "4xx"
            check("bad upload", name, st, expect, dt, b)
        body, ctype = _multipart([("nofile", "x.png", good)])
        st, b, dt = _raw(url, _req("POST", "/api/images", host, body, ctype))
        check("bad upload", "wrong field name", st, "4xx", dt, b)
        # ---- malformed JSON on every POST route
        app = create_app(backend="lowlevel")
        posts = sorted({(path, m) for path, m in _routes(app.routes) if "POST" in m}, key=str)
        bodies = {
            "not JSON": b"{not json",
            "wrong types": b'{"points": "abc", "lam": "x", "width": []}',
            "JSON array": b"[1, 2, 3]",
            "deep nesting": b"[" * 5000 + b"]" * 5000,
            "nan values": b'{"points": [[NaN, 1]], "lam": NaN, "width": 1e309}',
        }
        rsid = None  # a recolor session, for the recolor routes
        r = c.post(
            "/api/recolor/sessions",
            files=[
                ("files", ("a.png", good, "image/png")),
                ("files", ("b.png", _png_bytes(40, 56, 2), "image/png")),
            ],
        )
        if r.status_code == 201:
            rsid = r.json().get("session")
        for path, _m in posts:
            if "images" in path and "{" not in path or path.endswith("/sessions"):
                continue  # upload routes: multipart, covered above
            own = rsid if "/recolor" in path and rsid else sid
            p = re.sub(r"\{sid\}|\{session[^}]*\}", own, path)
            p = re.sub(r"\{[^}]+\}", "0", p)
            for what, body in bodies.items():
                st, b, dt = _raw(url, _req("POST", p, host, body, "application/json"))
                # unknown keys are ignored by the models (defaults apply): any non-5xx is fine
                check(
                    "malformed JSON",
                    f"{path}: {what}",
                    st,
                    "<500" if what in ("wrong types", "nan values") else "4xx",
                    dt,
                    b,
                )
            if "{" in path and rsid:  # the other kind of session on this route (issue 12 item 9)
                other = sid if own == rsid else rsid
                p2 = re.sub(r"\{[^}]+\}", other, path)
                valid = next((v for k, v in _VALID_BODIES.items() if path.endswith(k)), b"{}")
                st, b, dt = _raw(url, _req("POST", p2, host, valid, "application/json"))
                check(
                    "mixed session kinds",
                    f"{path} with a {'mask' if other == sid else 'recolor'} session",
                    st,
                    "4xx",
                    dt,
                    b,
                )
        # ---- traversal and unknown ids
        for path in (
            "/static/../../../../etc/passwd",
            "/static/%2e%2e/%2e%2e/etc/passwd",
            "/static/..%2f..%2f..%2fetc%2fpasswd",
            f"/api/sessions/{sid}%2f..%2f..%2fetc/image",
            "/api/sessions/../../etc/passwd",
            "/api/jobs/..%2f..%2fetc%2fpasswd/result",
            "/api/sessions/0000000000000000/image",
        ):
            st, b, dt = _raw(url, _req("GET", path, host))
            check("traversal / unknown id", path, st, "4xx", dt, b)
        # ---- huge and slow bodies
        st, b, dt = _raw(
            url,
            _req(
                "POST",
                f"/api/sessions/{sid}/render",
                host,
                b"{",
                "application/json",
                {"Content-Length": "63000000"},
            )[:-1],
        )
        check("huge body", "JSON, Content-Length 63 MB", st, "413", dt, b)
        big = json.dumps({"points": [[1, 1]] * 1_500_000}).encode()
        st, b, dt = _raw(
            url, _req("POST", f"/api/sessions/{sid}/render", host, big, "application/json")
        )
        check("huge body", f"JSON body {len(big) / 1e6:.0f} MB sent", st, "413", dt, b)
        body, ctype = _multipart([("file", "x.png", b"\x00" * 30_000_000)])
        st, b, dt = _raw(url, _req("POST", "/api/images", host, body, ctype))
        check("huge body", "upload 30 MB (limit 8)", st, "413", dt, b)
        st, sent, dt = _chunked_upload(url, host, 100 << 20)
        check(
            "huge body",
            f"chunked upload of 100 MB: server stopped it after {sent / 1e6:.0f} MB",
            st,
            "closed",
            dt,
            b"",
        )
        st, b, dt = _raw(
            url,
            _req(
                "POST",
                f"/api/sessions/{sid}/render",
                host,
                b"",
                "application/json",
                {"Content-Length": "100"},
            ),
            timeout=40,
        )
        check("slow body", "headers, then no body", st, "408", dt, b)
        # ---- cross-origin, rebinding
        body, ctype = _multipart([("file", "x.png", good)])
        for what, hdrs, expect in (
            ("Origin: http://evil.example", {"Origin": "http://evil.example"}, "403"),
            ("Origin: null", {"Origin": "null"}, "403"),
            ("Sec-Fetch-Site: cross-site", {"Sec-Fetch-Site": "cross-site"}, "403"),
            ("same origin", {"Origin": url, "Sec-Fetch-Site": "same-origin"}, "2xx"),
        ):
            st, b, dt = _raw(url, _req("POST", "/api/images", host, body, ctype, hdrs))
            check("cross-origin", f"upload, {what}", st, expect, dt, b)
        st, b, dt = _raw(
            url,
            _req("DELETE", f"/api/sessions/{sid}", host, headers={"Origin": "http://evil.example"}),
        )
        check("cross-origin", "DELETE session, evil Origin", st, "403", dt, b)
        for h in (
            "evil.example",
            f"evil.example:{urllib.parse.urlsplit(url).port}",
            "127.0.0.1.nip.io",
        ):
            st, b, dt = _raw(url, _req("GET", "/api/config", h))
            check("rebinding Host", f"Host: {h}", st, "400", dt, b)
            st, b, dt = _raw(url, _req("POST", "/api/images", h, body, ctype))
            check("rebinding Host", f"upload, Host: {h}", st, "400", dt, b)
        # ---- unicode names
        for name in ("фото.png", "写真 1.png", 'a"b;c.png', "\u202eevil.png"):
            r = c.post("/api/images", files={"file": (name, good, "image/png")})
            check("unicode name", f"upload {name!r}", r.status_code, "2xx", 0.0, r.content)
            if r.status_code == 201:
                s2, j2 = r.json()["session"], r.json().get("job")
                t0 = time.time()
                while j2 and time.time() - t0 < 60:
                    if c.get(f"/api/jobs/{j2}").json().get("state") in ("done", "error"):
                        break
                    time.sleep(0.2)
                t0 = time.time()
                r2 = c.post(
                    f"/api/sessions/{s2}/mask", json={"points": [[5, 5]], "lam": 0.5, "tau": 0.2}
                )
                check(
                    "unicode name",
                    f"mask download of {name!r}",
                    r2.status_code,
                    "2xx",
                    time.time() - t0,
                    r2.content,
                )
        # ---- headers on errors
        r = c.get("/api/sessions/nope")
        ok = all(
            k in r.headers
            for k in ("x-content-type-options", "x-frame-options", "content-security-policy")
        )
        check(
            "headers",
            "404 carries nosniff, frame deny, CSP",
            r.status_code if ok else 500,
            "4xx",
            0.0,
        )
        alive = proc.poll() is None
        check("server", "still alive after the abuse", 200 if alive else None, "2xx", 0.0)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    head = ["group", "request", "status", "expected", "s", "verdict", "answer"]
    return (
        f"web abuse: {len(rows)} requests, {len(rows) - fails} ok\n\n" + _table(head, rows)
    ), fails


def run_load(clients: int, clicks: int, max_seconds: float) -> tuple[str, int]:
    """The load twice: the server's default settings, then with room for every client's session."""
    import web_load

    rows, errors, first = [], 0, []
    for label, extra in (
        ("defaults", []),
        (f"--max-sessions {clients + 4}", ["--max-sessions", str(clients + 4)]),
    ):
        proc, url = _start_server(extra)
        try:
            time.sleep(1.0)
            before = _rss_mb(proc.pid)
            stats = web_load.run_load(
                url, clients=clients, clicks=clicks, max_seconds=max_seconds, size=(480, 640)
            )
            time.sleep(1.0)
            after = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        s = stats["summary"]
        rows.append(
            [
                label,
                clients,
                s["clicks_ok"],
                s["errors"],
                s["renders"],
                s["timeouts"],
                f"{s['click_p50_ms']:.0f}" if s["click_p50_ms"] else "-",
                f"{s['click_p95_ms']:.0f}" if s["click_p95_ms"] else "-",
                f"{s['wall_s']:.1f}",
                f"{before[0]:.0f}",
                f"{after[0]:.0f}",
                f"{after[1]:.0f}",
            ]
        )
        errors += int(s["errors"])
        first += [f"{label}: {e}" for e in stats["errors"][:3]]
    head = [
        "server",
        "clients",
        "clicks ok",
        "errors",
        "renders",
        "timeouts",
        "click p50 ms",
        "click p95 ms",
        "wall s",
        "RSS before MB",
        "RSS after MB",
        "peak RSS MB",
    ]
    text = (
        f"load: {clients} concurrent clients x {clicks} clicks + 1 render, 640x480 synthetic "
        "images, "
        f"lowlevel features, `sempix serve` in a subprocess\n\n" + _table(head, rows)
    )
    if first:
        text += "\n\nfirst errors: " + "; ".join(first)
    return text, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="cli,kill,web,load")
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="share of the input x command grid of the CLI fuzz (2 = all)",
    )
    ap.add_argument(
        "--timeout", type=float, default=120.0, help="seconds before a CLI case is a hang"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=240.0)
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    print(
        f"sempix robustness probe: os.cpu_count()={os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, loopback only\n"
    )
    total_fail = 0
    for part in parts:
        t0 = time.time()
        if part == "cli":
            text, fails = run_cli(args.scale, args.timeout, args.workers)
        elif part == "kill":
            text, fails = run_kill(args.kills)
        elif part == "web":
            text, fails = run_web(60.0)
        elif part == "load":
            text, fails = run_load(args.clients, args.clicks, args.max_seconds)
        else:
            raise SystemExit(f"unknown part {part!r}")
        total_fail += fails
        print(f"## {part} ({time.time() - t0:.0f} s, load average {os.getloadavg()[0]:.2f})\n")
        print(text + "\n", flush=True)
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
