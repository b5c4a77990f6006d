"""Small version of benchmarks/web_load.py: concurrent clients (clicks, renders, background jobs
followed by server-sent events or polling, some cancelled) against the real server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sempix.web.app import create_app
from sempix.web.testing import serve_in_thread


def _load_module():
    p = Path(__file__).resolve().parents[1] / "benchmarks" / "web_load.py"
    if not p.is_file():
        pytest.skip("benchmarks/web_load.py not found")
    spec = importlib.util.spec_from_file_location("sempix_web_load", p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_concurrent_clients_with_jobs_no_errors():
    mod = _load_module()
    app = create_app(backend="lowlevel", workers=2, max_memory_bytes=400_000_000)
    with serve_in_thread(app) as url:
        stats = mod.run_load(url, clients=5, clicks=3, max_seconds=120, size=(120, 160))
        import httpx

        assert httpx.get(url + "/api/config").status_code == 200  # still serving
    s = stats["summary"]
    assert s["errors"] == 0, stats["errors"]
    assert s["5xx"] == 0
    assert s["clicks_ok"] == 15 and s["renders"] == 5
    assert (
        s["jobs_done"] + s["jobs_cancelled"] == 5
        and s["jobs_cancelled"] <= 1
        and s["jobs_done"] >= 4
    )
    assert s["job_events"] >= 2  # progress pushed to the SSE clients
    assert s["click_p95_ms"] is not None and s["click_p95_ms"] < 10_000
    st = app.state.sempix.sessions
    assert st.peak_bytes <= st.max_bytes and st.reserved_bytes == 0
