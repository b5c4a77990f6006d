"""Shared pieces of every CLI command: common options and error handling.

Use :func:`command` instead of ``click.command``::

    @command(features=True)
    @click.argument("image", type=click.Path())
    def carve(image, features, quiet, debug, **kw): ...

``command`` adds ``--debug`` and ``--quiet`` (and ``--features BACKEND`` with ``--runtime`` and
``--device`` when asked: see :func:`runtime_options`), and turns
exceptions into one clear line on stderr plus an exit code (2 for :class:`InputError` and
:class:`ModelUnavailableError` and click usage errors, 1 for anything else); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import errno
import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from sempix.errors import InputError, SempixError
from sempix.features.constants import BACKENDS as FEATURE_BACKENDS

RUNTIMES = ("auto", "litert", "torch")
DEVICES = ("cpu", "cuda")


def runtime_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--runtime`` and ``--device``; the command body runs inside
    :func:`sempix.features.runtime.use_runtime`, so every ``compute_features`` call made by the
    command (and its worker threads) uses them. The wrapped function does not receive them.
    """

    # a command with its own --device (retarget's VGG) keeps it; it then places the features too
    own_device = any(
        getattr(p, "name", None) == "device" for p in getattr(fn, "__click_params__", [])
    )

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        runtime = kwargs.pop("runtime", None)
        device = kwargs.get("device") if own_device else kwargs.pop("device", None)
        if runtime is None and device is None:
            return fn(*args, **kwargs)
        from sempix.features.runtime import use_runtime

        with use_runtime(runtime, device):
            return fn(*args, **kwargs)

    if not own_device:
        body = click.option(
            "--device",
            type=click.Choice(list(DEVICES), case_sensitive=False),
            default=None,
            help="Device of the torch runtime and SegFormer backends "
            "(default: cuda if present, else cpu).",
        )(body)
    return click.option(
        "--runtime", type=click.Choice(list(RUNTIMES), case_sensitive=False), default=None,
        help="How the ade20k network runs: litert (int8, CPU), torch (float32, CPU/CUDA), "
        "auto (default: torch on CUDA, else litert).",
    )(body)


#: errno values of an OSError that mean a bad path given by the user (exit 2, not an internal error)
_USER_PATH_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.EEXIST,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so that it unwinds like Ctrl+C (temporary files go)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def install_sigterm_handler() -> Any:
    """Handle SIGTERM like SIGINT (an exception in the main thread; no-op elsewhere).

    Returns the previous handler (None when nothing was installed) for ``signal.signal``.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        try:
            return signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):
            pass
    return None


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn``; map exceptions to one stderr line and an exit code (traceback with debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except SempixError as exc:
            if debug:
                traceback.print_exc()
            _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, exc.exit_code)
        except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except Terminated:
            _fail("terminated", 143)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except MemoryError:
            if debug:
                traceback.print_exc()
            _fail("out of memory (try a smaller image, or lower SEMPIX_MAX_PIXELS)", 1)
        except OSError as exc:
            if debug:
                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            what = exc.strerror or str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if exc.errno in _USER_PATH_ERRNOS and exc.filename:
                _fail(f"{where}{what}", 2)
            _fail(f"{where}{what} ({type(exc).__name__}; run with --debug for details)", 1)
        except Exception as exc:  # noqa: BLE001 - top-level boundary
            if debug:
                traceback.print_exc()
            msg = str(exc).splitlines()[0] if str(exc) else ""
            _fail(f"internal error: {type(exc).__name__}: {msg} (run with --debug for details)", 1)

    return wrapper


def configure_logging(quiet: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else (logging.ERROR if quiet else logging.WARNING)
    logging.basicConfig(
        level=level, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True
    )


def compile_cold_kernels(name: str, kwargs: dict) -> None:
    """Before a command runs: if numba kernels it needs are not compiled yet, say so on stderr
    ("compiling kernels, once: ~N s") and compile them with a progress bar (all the signatures of
    the command's kernel groups, so that the message never repeats on later runs).

    With ``--features none`` the feature kernels are skipped. Never fails the command: a problem
    here only means numba compiles lazily, as it would anyway.
    """
    from sempix.kernels import COMMAND_GROUPS

    groups = COMMAND_GROUPS.get(name)
    if not groups:
        return
    if str(kwargs.get("features") or "").lower() == "none":
        groups = tuple(g for g in groups if g != "features")
    try:
        from sempix import kernels

        cold = kernels.cold_kernels(groups)
        if not cold:
            return
        quiet = bool(kwargs.get("quiet"))
        if not quiet:
            click.echo(f"compiling kernels, once: ~{kernels.estimate_seconds(cold):.0f} s "
                       f"(`sempix warmup` does this ahead of time)", err=True)
        from sempix.progress import cli_progress

        with cli_progress("compiling kernels", quiet=quiet) as prog:
            kernels.warm_up(groups=groups, progress=prog)
    except Exception as exc:  # noqa: BLE001 - numba then compiles on first call, as it would anyway
        logging.getLogger(__name__).debug("kernel warm-up skipped: %s", exc)


def command(
    name: str | None = None, *, features: bool | str = False, **click_kwargs: Any
) -> Callable[[Callable[..., Any]], click.Command]:
    """Decorator: a click command with sempix's common options and error handling.

    Parameters
    ----------
    features : bool or str
        Add ``--features BACKEND`` (default ``ade20k``; pass a string to choose another default).
        The option also accepts ``none`` (tools that can run without features).
    """

    def decorator(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def body(*args: Any, **kwargs: Any) -> Any:
            configure_logging(kwargs.get("quiet", False), kwargs.get("debug", False))
            compile_cold_kernels(name or fn.__name__, kwargs)
            previous = install_sigterm_handler()
            try:
                return fn(*args, **kwargs)
            finally:
                if previous is not None:
                    import signal

                    signal.signal(signal.SIGTERM, previous)

        inner = runtime_options(body) if features else body
        wrapped = handle_errors(inner)
        wrapped = click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")(
            wrapped
        )
        wrapped = click.option("--quiet", "-q", is_flag=True, help="No progress bars or info.")(
            wrapped
        )
        if features:
            default = features if isinstance(features, str) else "ade20k"
            wrapped = click.option(
                "--features",
                "features",
                default=default,
                show_default=True,
                type=click.Choice([*FEATURE_BACKENDS, "none"], case_sensitive=False),
                help="Semantic feature backend "
                "(lowlevel = weight-free, not semantic; none = no features).",
            )(wrapped)
        click_kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        return click.command(name, **click_kwargs)(wrapped)

    return decorator


def size_option(value, current: int, what: str) -> int | None:
    """``--width`` / ``--height`` value -> pixels (:func:`sempix.ops.parse_size`); the library
    error names the parameter, the CLI adds the option name."""
    from sempix.ops import parse_size

    try:
        return parse_size(value, current, what)
    except InputError as exc:
        raise InputError(f"--{what}: {exc}") from None


def number_list(text: str, option: str, *, kind: type = float, example: str = "0,0.5,1") -> list:
    """Parse ``"1, 0.5,2"`` (the value of ``--OPTION``) into numbers of ``kind`` (int or float).

    The one comma-separated list parser of the CLI; callers check ranges themselves.

    Raises
    ------
    InputError
        ``--OPTION 'TEXT': give numbers separated by commas, e.g. EXAMPLE`` (``integers`` for int).
    """
    try:
        return [kind(t) for t in str(text).replace(" ", "").split(",") if t]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise InputError(
            f"--{option} {text!r}: give {what} separated by commas, e.g. {example}"
        ) from None


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths and tuples turned into JSON types."""
    import math
    import os

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return None
    return value


def emit_json(command_name: str, **fields: Any) -> None:
    """Print one JSON object on stdout: the result summary of a command run with ``--json``.

    One schema style for every command: ``{"command": NAME, "input": PATH, "input_size": [W, H],
    "output_size": [W, H], "outputs": {ROLE: PATH}, "timings": {STAGE: SECONDS}, ...}`` (sizes
    are ``[width, height]`` like the ``WxH`` of the messages; tool-specific fields such as
    ``scores`` follow). Human messages keep going to stderr, so stdout stays parseable.
    """
    import json

    doc = {"command": command_name, **fields}
    click.echo(json.dumps(json_ready(doc), indent=2))
