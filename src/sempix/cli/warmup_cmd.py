"""``sempix warmup [TOOL...]``: compile the numba kernels of the tools once, ahead of their first
use."""

from __future__ import annotations

import click

from sempix.cli.common import command


@command("warmup")
@click.argument("tools", nargs=-1, metavar="[TOOL]...")
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="Only list the kernels, their signatures and whether they are compiled.",
)
def warmup(tools, list_only, quiet, debug):
    """Compile the numba kernels of TOOL... (default: all tools) into numba's on-disk cache.

    Without this the first command of each tool compiles its kernels itself (it says so:
    "compiling kernels, once: ~N s"). `make example` runs it. TOOL is a command name (carve,
    mask, softseg, recolor, ...) or a kernel group (carve, features, color, transfer, recolor,
    retarget, softseg, png).
    """
    import time

    from sempix import kernels
    from sempix.progress import cli_progress

    groups = kernels.groups_for(tools)
    if list_only:
        for k in kernels.kernels_for(groups):
            for sig in k.signatures:
                state = "compiled" if kernels.is_cached(k, sig) else "cold"
                click.echo(f"{state:8s}  {k.qualname}{sig}")
        return
    cold = kernels.cold_kernels(groups)
    if not quiet and cold:
        click.echo(
            f"compiling kernels, once: ~{kernels.estimate_seconds(cold):.0f} s "
            f"({len(cold)} kernel signatures not compiled yet, pymatting's included)",
            err=True,
        )
    t = time.perf_counter()
    with cli_progress("compiling kernels", quiet=quiet) as prog:
        res = kernels.warm_up(tools, progress=prog)
    if not quiet:
        click.echo(
            f"kernels ready: {len(res['compiled'])} compiled, {len(res['loaded'])} already "
            f"cached ({time.perf_counter() - t:.1f} s; groups: {', '.join(groups)})",
            err=True,
        )
