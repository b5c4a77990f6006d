"""Run the real web server (uvicorn) in a background thread on a free loopback port.

Used by the browser tests, the HTTP load test (``benchmarks/web_load.py``) and its small test
version::

    with serve_in_thread(create_app(backend="lowlevel")) as url:
        httpx.get(url + "/api/config")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int | None = None,
                    timeout: float = 20.0) -> Iterator[str]:
    """Start uvicorn with ``app`` in a daemon thread; yield ``http://host:port``; stop it after."""
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sempix-test-server", daemon=True)
    thread.start()
    t0 = time.time()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the test server failed to start on {host}:{port}")
        if time.time() - t0 > timeout:
            raise RuntimeError("the test server did not start in time")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
