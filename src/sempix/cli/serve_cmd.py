"""``sempix serve [--host 127.0.0.1] [--port 8000]``: the local web editor."""

from __future__ import annotations

import click

from sempix.cli.common import command
from sempix.errors import InputError


@command("serve", features=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. The default only accepts connections from this machine; "
                   "0.0.0.0 exposes the editor to the network (no authentication!).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0 = pick a free one).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=24_000_000, show_default=True,
              help="Largest accepted image (width x height).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.001), default=64.0, show_default=True,
              help="Largest accepted upload in MB.")
@click.option("--max-sessions", type=click.IntRange(min=1), default=None,
              help="Open images kept at most (least recently used are evicted). Default: sized by "
                   "the memory budget (budget / 4 MB, at least 16), so memory decides first.")
@click.option("--max-memory-mb", type=click.IntRange(min=64), default=None,
              help="Memory budget of the open images, their features, per-request work and job "
                   "results. Default: a quarter of the RAM, between 1 and 16 GB.")
@click.option("--workers", type=click.IntRange(min=1, max=64), default=2, show_default=True,
              help="Threads for feature computation.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also accept requests addressed to this host name (repeatable). Loopback names "
                   "and the address a request arrives on are always accepted; other names are "
                   "refused against DNS rebinding.")
@click.option("--styles-dir", type=click.Path(file_okay=False), default=None,
              help="Folder of trained style files (sempix adjust train) offered by the Style "
                   "panel by name; styles can always be uploaded.")
def serve(host, port, max_pixels, max_upload_mb, max_sessions, max_memory_mb, workers, allow_hosts,
          styles_dir, features, quiet, debug):
    """Start the local web app: masks, resize, soft layers, palette & harmony, recolor, style."""
    import errno
    import socket

    import uvicorn

    from sempix.web.app import create_app

    if features == "none":
        raise InputError("the editor needs a feature backend (ade20k, segformer or lowlevel)")
    from sempix.web.security import machine_names

    hosts = {h.strip().lower() for h in allow_hosts if h.strip()}
    if host in ("0.0.0.0", "", "::"):
        hosts |= machine_names()
    elif not host.replace(".", "").isdigit() and ":" not in host:
        hosts.add(host.lower())  # bound by name
    limits = {"max_sessions": max_sessions}
    if max_memory_mb is not None:
        limits["max_memory_bytes"] = int(max_memory_mb * 1e6)
    if styles_dir:
        limits["adjust_styles_dir"] = str(styles_dir)
    app = create_app(backend=features.lower(), max_pixels=max_pixels,
                     max_upload_bytes=int(max_upload_mb * 1e6), workers=workers,
                     allowed_hosts=tuple(sorted(hosts)), **limits)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = ("choose another --port" if exc.errno in (errno.EADDRINUSE, errno.EACCES)
                else "check --host: give an address of this machine, e.g. 127.0.0.1")
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} ({hint})"
        ) from None
    real_port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    click.echo(f"sempix editor on http://{shown}:{real_port}/  (Ctrl+C to stop)", err=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo("warning: the editor is reachable from other machines and has no authentication",
                   err=True)
    config = uvicorn.Config(app, log_level="warning" if quiet else "info", access_log=debug)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
