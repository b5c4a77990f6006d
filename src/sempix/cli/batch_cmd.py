"""``sempix batch TOOL INPUTS... -o OUTDIR [tool options] [--workers N] [--scheduler ADDRESS]``.

One subcommand per registered batch tool (:mod:`sempix.batch.tools`), built from the tool's
option list, so a tool registered later appears here without CLI code.
"""

from __future__ import annotations

import sys

import click

from sempix.cli.common import command
from sempix.errors import InputError

_COMMON = (
    "inputs",
    "output",
    "workers",
    "scheduler",
    "retry_failed",
    "dry_run",
    "memory_limit",
    "quiet",
    "debug",
    "window",
)


def _registry():
    from sempix.batch.tools import REGISTRY

    return REGISTRY


class BatchGroup(click.Group):
    """The tools of the batch registry as subcommands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_registry())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        tool = _registry().get(cmd_name)
        return None if tool is None else _make_command(tool)


def _option_decls(o) -> tuple[list[str], dict]:
    longs = [c for c in o.cli if c.startswith("--")]
    shorts = [c for c in o.cli if not c.startswith("--")]
    name = o.key.replace("_", "-")
    if o.flag and o.default:
        decls = [f"--{name}/--no-{name}"]
    else:
        decls = [*(longs or [f"--{name}"]), *shorts]
    kw: dict = {"help": o.help, "show_default": o.default not in (None, (), False)}
    if o.flag and o.default:
        kw.update(default=True)
    elif o.flag:
        kw.update(is_flag=True, default=False)
    elif o.multiple:
        kw.update(multiple=True, default=())
    else:
        kw.update(default=o.default, type=o.type)
    return [*decls, o.key], kw


def _make_command(tool) -> click.Command:
    def body(
        inputs,
        output,
        workers,
        scheduler,
        retry_failed,
        dry_run,
        memory_limit,
        window,
        quiet,
        debug,
        **opts,
    ):
        return _run_batch(
            tool.name,
            inputs,
            output,
            opts,
            workers=workers,
            scheduler=scheduler,
            retry_failed=retry_failed,
            dry_run=dry_run,
            memory_limit=memory_limit,
            window=window,
            quiet=quiet,
            debug=debug,
        )

    body.__name__ = f"batch_{tool.name}"
    body.__doc__ = (
        f"{tool.help}\n\nINPUTS are image files, folders (recursive) and globs; outputs mirror the "
        "input tree in OUTDIR, with the manifest OUTDIR/sempix-batch.sqlite. Re-running skips "
        "what is done; exit code 0 when every input succeeded, 2 when some were bad."
    )
    f = body
    for o in reversed(tool.options):
        decls, kw = _option_decls(o)
        f = click.option(*decls, **kw)(f)
    f = click.option("--window", type=click.IntRange(min=1), default=None,
                     help="Tasks in flight at most (default 4 per worker thread).")(f)
    f = click.option("--memory-limit", default=None, metavar="SIZE",
                     help="Memory limit per local worker, e.g. 4GB (default: memory / workers).")(f)
    f = click.option(
        "--dry-run", is_flag=True, help="Only list the plan (run / skip / retry per input)."
    )(f)
    f = click.option(
        "--retry-failed", is_flag=True, help="Re-run inputs that failed in an earlier run."
    )(f)
    f = click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="tcp://HOST:8786 = an existing Dask cluster; sync = in this process "
                          "(default: a local cluster).")(f)
    f = click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
                     help="Local worker processes (default: one per core).")(f)
    f = click.option(
        "-o",
        "--output",
        required=True,
        type=click.Path(file_okay=False),
        metavar="OUTDIR",
        help="Output folder (mirrors the input tree).",
    )(f)
    f = click.argument("inputs", nargs=-1, required=True)(f)
    return command(tool.name)(f)


def _progress_ui(quiet: bool):
    """A progress callback driving a rich bar on stderr (no bar when quiet or not a terminal)."""
    from rich.console import Console

    console = Console(file=sys.stderr)
    state: dict = {"bar": None, "task": None}

    def cb(ev: dict) -> None:
        if ev.get("phase") == "start":
            if not quiet:
                msg = f"{ev['workers']} worker(s), {ev['scheduler']}"
                if ev.get("dashboard"):
                    msg += f"; dashboard: {ev['dashboard']}"
                console.print(msg, highlight=False)
            return
        if quiet or not console.is_terminal:
            return
        if state["bar"] is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                           TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console)
            bar.start()
            state["bar"] = bar
            state["task"] = bar.add_task(ev["phase"], total=None, stats="")
        bar = state["bar"]
        finished = ev["done"] + ev["failed"] + ev["skipped"]
        bar.update(state["task"], description=ev["phase"], completed=finished,
                   total=finished + ev["remaining"],
                   stats=f"done {ev['done']}  failed {ev['failed']}  skipped {ev['skipped']}  "
                         f"left {ev['remaining']}  {ev['rate']:.2f}/s")

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].stop()

    return cb, close


def _run_batch(
    tool,
    inputs,
    output,
    opts,
    *,
    workers,
    scheduler,
    retry_failed,
    dry_run,
    memory_limit,
    window,
    quiet,
    debug,
):
    from sempix.batch import run

    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()}
    if scheduler is None and not dry_run:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise InputError("sempix batch needs dask.distributed: pip install 'sempix[dask]' "
                             "(or run in this process with --scheduler sync)") from None
    cb, close = _progress_ui(quiet)
    try:
        summary = run(
            tool,
            list(inputs),
            output,
            opts,
            scheduler=scheduler,
            workers=workers,
            retry_failed=retry_failed,
            dry_run=dry_run,
            progress=cb,
            memory_limit=memory_limit,
            window=window,
        )
    finally:
        close()
    if dry_run:
        for rel, action in summary.planned:
            click.echo(f"{action:<14} {rel}")
        counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.plan.items()))
        click.echo(f"plan: {summary.total} inputs ({counts}) -> {output}", err=True)
        return
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"sempix batch {tool}", show_header=False)
        for k, v in summary.rows():
            t.add_row(k, v)
        Console(file=sys.stderr).print(t)
    for rel, err in summary.failures[:20]:
        click.echo(f"failed: {rel}: {err}", err=True)
    if summary.failed > 20:
        click.echo(
            f"... and {summary.failed - 20} more failures (see {summary.manifest})", err=True
        )
    if summary.exit_code:
        click.get_current_context().exit(summary.exit_code)


@click.group("batch", cls=BatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
def batch() -> None:
    """Run a tool over whole photo libraries, locally or on a Dask cluster.

    \b
      sempix batch carve photos/ -o out/ --width 80%
      sempix batch harmonize 'shoot/**/*.jpg' -o harmonized/ --workers 4
      sempix batch recolor shoot/ -o consistent/ --scheduler tcp://10.0.0.5:8786
    """
