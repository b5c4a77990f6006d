"""HTTP hardening of the local web app: Host / Origin checks, body limits, security headers.

The editor is a local app without accounts: anything that can send it requests can use it. Two
kinds of web pages the user visits could do that through the browser, and this module closes both
(issue 12, items 5, 6, 8):

* **DNS rebinding** -- a page on ``evil.example`` re-resolves its own name to 127.0.0.1 and then
  talks to the editor as a *same-origin* page. Its requests carry ``Host: evil.example:PORT``, so
  the ``Host`` header must name this server: a loopback name (``localhost``, ``*.localhost``,
  ``127.0.0.1``, ``[::1]``), the address the connection arrived on, or a name given in
  ``allowed_hosts``; and its port must be the server's port. Anything else gets 400.
* **Cross-site requests (CSRF)** -- a form or ``fetch`` from another site. State-changing methods
  (POST, PUT, PATCH, DELETE) are refused (403) when ``Sec-Fetch-Site`` says ``cross-site`` or
  ``same-site`` or when ``Origin`` is present and is not this server's origin (``null`` included);
  cross-site subresource requests of any method are refused too (a page cannot make the server burn
  CPU with ``<img src=...>``); top-level navigations (a link to the editor) are allowed. CORS stays
  closed: no ``Access-Control-Allow-*`` header is ever sent, so other origins cannot read answers.

Request bodies are limited *while they are read*: a declared ``Content-Length`` over the limit is
answered 413 before anything is read, a chunked body is stopped at the limit (413), and a body that
stops arriving for ``body_timeout_s`` seconds (or takes longer than ``body_deadline_s`` in all) gets
408. The limit is chosen per request by ``body_limit(scope, content_type)``: uploads (multipart) get
the upload size, JSON and everything else a small ``max_json_bytes`` -- so a 60 MB JSON body is
never parsed.

Every response, errors included (the middleware wraps the whole app, outside Starlette's error
handler), carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a
``Content-Security-Policy`` (:data:`CSP`: same-origin scripts/styles/connections, images also from
``blob:``/``data:``, no frames, no plugins), ``Referrer-Policy: no-referrer`` and
``Cross-Origin-Resource-Policy: same-origin``.

API
---
``install_security(app, *, body_limit, allowed_hosts=(), ...)`` wraps a FastAPI/Starlette app.
``SecurityMiddleware(app, ...)`` is the ASGI middleware itself.
``content_disposition(filename, disposition="attachment")`` -> RFC 6266 header value with an ASCII
fallback and ``filename*=UTF-8''...`` (non-ASCII upload names never break a download).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

#: Content-Security-Policy of every response (the pages load only same-origin scripts and styles).
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266 / 5987 ``Content-Disposition`` value for a download name.

    ``filename="..."`` holds an ASCII-only fallback (letters, digits, ``._-``; other characters
    dropped), ``filename*=UTF-8''...`` the full name percent-encoded, so the header is pure ASCII
    for every name (a latin-1 header encoding error used to turn non-ASCII upload names into 500).
    """
    name = str(filename).replace("\r", "").replace("\n", "")
    safe = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "._-")).lstrip(".")
    if not safe or safe.startswith("_") and not safe.strip("_."):
        safe = "download"
    return f"{disposition}; filename=\"{safe}\"; filename*=UTF-8''{quote(name, safe='')}"


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (IPv6 in brackets) -> (lower-case host without brackets, port or None)."""
    value = value.strip()
    if not value or any(c in value for c in " /\\@?#"):
        return None
    try:
        parts = urlsplit("//" + value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return host.lower().rstrip("."), port


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _BodyError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class SecurityMiddleware:
    """ASGI middleware: Host check, cross-origin refusal, body limits, security headers.

    Parameters
    ----------
    app : the ASGI app to protect.
    body_limit : ``(scope, content_type) -> int`` bytes allowed in the request body, or an int.
    allowed_hosts : extra host names (lower case, no port) accepted in ``Host``, e.g. the machine's
        name when the server listens on all interfaces. ``"*"`` disables the Host check.
    body_timeout_s : longest pause between two parts of a body (408 after it).
    body_deadline_s : longest time to receive a whole body (408 after it).
    """

    def __init__(
        self,
        app: Any,
        *,
        body_limit: Callable[[dict, str], int] | int = 1_000_000,
        allowed_hosts: Iterable[str] = (),
        body_timeout_s: float = 10.0,
        body_deadline_s: float = 300.0,
    ):
        self.app = app
        self.body_limit = body_limit
        hosts = {h.strip().lower().rstrip(".") for h in allowed_hosts if h and h.strip()}
        self.any_host = "*" in hosts
        self.allowed_hosts = hosts - {"*"}
        self.body_timeout_s = float(body_timeout_s)
        self.body_deadline_s = float(body_deadline_s)

    # ------------------------------------------------------------------------------- checks

    def _check_host(self, scope: dict, headers: dict) -> str | None:
        """None when the Host header names this server, else the error message."""
        if self.any_host:
            return None
        raw = headers.get("host")
        if raw is None:
            return None if scope.get("http_version") == "1.0" else "missing Host header"
        parsed = _split_host(raw)
        if parsed is None:
            return "malformed Host header"
        host, port = parsed
        server = scope.get("server")
        s_host, s_port = (server[0], server[1]) if server else (None, None)
        if s_host is not None:
            s_host = str(s_host).lower().strip("[]")
        ok = (
            _is_loopback(host)
            or host in self.allowed_hosts
            or (s_host is not None and host == s_host)
        )
        if ok and s_port is not None:
            eff = port if port is not None else DEFAULT_PORTS.get(scope.get("scheme", "http"), 80)
            ok = eff == s_port
        if ok:
            return None
        where = f"{s_host}:{s_port}" if s_host else "this server"
        return (
            f"Host {raw!r} is not this server ({where}); requests through other host names are "
            f"refused (DNS rebinding protection) -- open the editor at its printed address"
        )

    def _check_origin(self, scope: dict, headers: dict) -> str | None:
        """None when the request is same-origin (or not from a browser page), else the message."""
        method = scope.get("method", "GET").upper()
        site = headers.get("sec-fetch-site", "").lower()
        mode = headers.get("sec-fetch-mode", "").lower()
        if site == "cross-site" and mode != "navigate":
            return "cross-site requests are refused"
        if method in SAFE_METHODS:
            return None
        if site in ("cross-site", "same-site"):
            return "cross-site requests are refused"
        origin = headers.get("origin")
        if origin is None:
            return None  # not sent by a browser page (curl, scripts) or a same-origin GET
        o = urlsplit(origin.strip())
        host = headers.get("host", "")
        parsed = _split_host(host)
        if o.scheme not in ("http", "https") or not o.hostname or parsed is None:
            return f"cross-origin request from {origin!r} refused"
        try:
            o_port = o.port or DEFAULT_PORTS[o.scheme]
        except ValueError:
            return f"cross-origin request from {origin!r} refused"
        scheme = scope.get("scheme", "http")
        h_host, h_port = parsed
        h_port = h_port or DEFAULT_PORTS.get(scheme, 80)
        if (o.scheme, o.hostname.lower(), o_port) != (scheme, h_host, h_port):
            return f"cross-origin request from {origin!r} refused"
        return None

    def _limit(self, scope: dict, content_type: str) -> int:
        if callable(self.body_limit):
            return int(self.body_limit(scope, content_type))
        return int(self.body_limit)

    # ---------------------------------------------------------------------------------- ASGI

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = replaced = False
        error: list[_BodyError] = []

        async def send_with_headers(message: dict) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                if (
                    error and not started
                ):  # the body broke a limit: answer that, not the app's reaction
                    started = replaced = True
                    await _send_json(
                        send, error[0].status, error[0].message, extra=SECURITY_HEADERS
                    )
                    return
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            elif replaced:
                return  # the app's body of a replaced response
            await send(message)

        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        problem = self._check_host(scope, headers)
        if problem is not None:
            await _send_json(send_with_headers, 400, problem)
            return
        problem = self._check_origin(scope, headers)
        if problem is not None:
            await _send_json(send_with_headers, 403, problem)
            return

        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self._limit(scope, ctype)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is not None:
            try:
                n = int(length)
                if n < 0:
                    raise ValueError
            except ValueError:
                await _send_json(send_with_headers, 400, "bad Content-Length header")
                return
            if n > limit:
                await _send_json(send_with_headers, 413, _too_large(limit, ctype))
                return
        expects_body = chunked or (length is not None and int(length) > 0)
        total = 0
        done = not expects_body
        t0 = time.monotonic()

        async def limited_receive() -> dict:
            nonlocal total, done
            if done:
                return await receive()
            wait = min(
                self.body_timeout_s, max(0.0, self.body_deadline_s - (time.monotonic() - t0))
            )
            try:
                message = await asyncio.wait_for(receive(), timeout=wait)
            except TimeoutError:
                done = True
                error.append(
                    _BodyError(
                        408,
                        f"request body too slow: nothing received for {self.body_timeout_s:.0f} s",
                    )
                )
                raise error[-1] from None
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    done = True
                    error.append(_BodyError(413, _too_large(limit, ctype)))
                    raise error[-1]
                if not message.get("more_body", False):
                    done = True
            else:
                done = True
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyError:
            if not started:
                started = True
                await _send_json(send, error[0].status, error[0].message, extra=SECURITY_HEADERS)
        except Exception:
            if error and started:
                return  # the app failed because its body was cut; the limit answer went out
            raise


def _too_large(limit: int, ctype: str) -> str:
    what = "upload" if ctype.startswith("multipart/") else "request body"
    if limit >= 1_000_000:
        return f"{what} too large: more than {limit / 1e6:.0f} MB"
    return f"{what} too large: more than {limit // 1000} kB"


async def _send_json(send: Callable, status: int, message: str, extra=()) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    if status in (408, 413):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def machine_names() -> set[str]:
    """This machine's host name (and ``NAME.local``), for ``allowed_hosts`` on
    ``--host 0.0.0.0``."""
    try:
        name = socket.gethostname().lower().rstrip(".")
    except OSError:
        return set()
    return {name, f"{name}.local"} if name else set()


def install_security(app: Any, **options: Any) -> Any:
    """Wrap ``app`` (FastAPI/Starlette) in :class:`SecurityMiddleware`, outside its error handler.

    The middleware becomes the outermost layer of the app's middleware stack, so that the 500
    answers of Starlette's ``ServerErrorMiddleware`` get the security headers too. ``options`` are
    :class:`SecurityMiddleware`'s keyword arguments. Returns ``app``.
    """
    build = app.build_middleware_stack

    def build_middleware_stack():
        return SecurityMiddleware(build(), **options)

    app.build_middleware_stack = build_middleware_stack
    app.state.security = options
    return app


__all__ = [
    "CSP",
    "SECURITY_HEADERS",
    "SecurityMiddleware",
    "content_disposition",
    "install_security",
    "machine_names",
]
