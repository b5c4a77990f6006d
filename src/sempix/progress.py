"""Progress reporting shared by the library, the CLI and the web server.

Library functions take an optional ``progress`` callable ``progress(fraction: float, message: str)``
with ``fraction`` in [0, 1]; they never print. The CLI passes :func:`cli_progress` (a rich progress
bar on stderr, silent with ``--quiet``); the web server passes a callback that stores the state for
the page to poll.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

ProgressFn = Callable[[float, str], None]


def null_progress(fraction: float, message: str = "") -> None:  # noqa: ARG001
    """A progress callback that does nothing."""


def report(progress: ProgressFn | None, fraction: float, message: str = "") -> None:
    """Call ``progress`` if it is set, clamping ``fraction`` to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def sub_progress(progress: ProgressFn | None, start: float, stop: float) -> ProgressFn | None:
    """Map a stage's [0, 1] progress into [start, stop] of the parent's progress."""
    if progress is None:
        return None

    def _sub(fraction: float, message: str = "") -> None:
        report(progress, start + (stop - start) * fraction, message)

    return _sub


@contextlib.contextmanager
def cli_progress(description: str, quiet: bool = False) -> Iterator[ProgressFn]:
    """Context manager yielding a progress callback that drives a rich progress bar on stderr."""
    if quiet:
        yield null_progress
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stderr)
    if not console.is_terminal:  # logs and pipes: no bar (it would only add blank lines)
        yield null_progress
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[msg]}"),
        console=console,
        transient=not console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=1.0, msg="")

        def _update(fraction: float, message: str = "") -> None:
            bar.update(task, completed=fraction, msg=message)

        yield _update
        bar.update(task, completed=1.0)
