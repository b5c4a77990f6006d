"""The ``sempix`` command line.

Subcommands live in their own modules (``sempix.cli.<name>_cmd``) and are imported only when used,
so ``sempix --help`` stays fast (no torch/numba import). Register a new command in ``COMMANDS``.

Exit codes: 0 ok, 1 internal error, 2 bad input or usage.
"""

from __future__ import annotations

import importlib

import click

from sempix import __version__

# name -> (module, attribute, one-line help shown in `sempix --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "features": (
        "sempix.cli.features_cmd",
        "features",
        "Compute semantic pixel features (+ preview).",
    ),
    "models": ("sempix.cli.models_cmd", "models", "List, fetch and locate model files."),
    "carve": ("sempix.cli.carve_cmd", "carve", "Semantic seam carving (content-aware resize)."),
    "mask": (
        "sempix.cli.mask_cmd",
        "mask",
        "Semantic range mask from clicked points (+ adjustments).",
    ),
    "serve": ("sempix.cli.serve_cmd", "serve", "Start the local web editor."),
    "softseg": ("sempix.cli.softseg_cmd", "softseg", "Semantic soft segmentation into layers."),
    "palette": ("sempix.cli.palette_cmd", "palette", "Extract a colour palette (swatch / JSON)."),
    "names": ("sempix.cli.palette_cmd", "names", "Colour names of colours or of an image."),
    "harmonize": ("sempix.cli.palette_cmd", "harmonize", "Palette-based colour harmonization."),
    "harmony": (
        "sempix.cli.palette_cmd",
        "harmony",
        "Colour-harmony metrics (F-score, PIT, MITS).",
    ),
    "recolor": ("sempix.cli.recolor_cmd", "recolor", "Multi-image colour consistency."),
    "retarget": (
        "sempix.cli.retarget_cmd",
        "retarget",
        "Deep-feature retargeting and other resizers.",
    ),
    "adjust": ("sempix.cli.adjust_cmd", "adjust", "Learned semantics-aware photo adjustment."),
    "batch": (
        "sempix.cli.batch_cmd",
        "batch",
        "Run a tool over whole photo libraries (local or Dask cluster).",
    ),
    "slimseg": (
        "sempix.cli.slimseg_cmd",
        "slimseg",
        "Slimmable segmentation: train, eval, distill, predict.",
    ),
    "burst": (
        "sempix.cli.burst_cmd",
        "burst",
        "Burst merging, P-D curves, AUR and burst-length advice.",
    ),
    "warmup": ("sempix.cli.warmup_cmd", "warmup", "Compile the numba kernels once (set-up step)."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built yet
                return None
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sempix")
def cli() -> None:
    """sempix: semantics-aware image editing.

    Every command takes --features BACKEND (ade20k, segformer, lowlevel, none where it applies),
    --quiet and --debug. Exit codes: 0 ok, 1 internal error, 2 bad input or usage.
    Model files are looked up in SEMPIX_MODEL_DIR, then the user cache, then downloaded
    (set SEMPIX_OFFLINE=1 to forbid downloads).
    """


def _exit(code: int, fast: bool) -> None:
    """Leave the process. ``fast``: flush the standard streams and ``os._exit`` - a command whose
    work is done (outputs written atomically and closed) skips the interpreter's teardown of
    numba/LLVM and thousands of modules, which took ~0.2 s quiet and >1 s on a loaded machine."""
    import os
    import sys

    if fast:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Usage errors (unknown option, bad choice, missing argument...) are reported as one line
    ``error: ...`` with a pointer to ``--help``, exit code 2, like every other bad input.

    Called without ``argv`` (the ``sempix`` console script) the process ends with ``os._exit``
    after the command (see :func:`_exit`; ``SEMPIX_FAST_EXIT=0`` turns this off); with ``argv``
    (tests, :mod:`sempix.examples`) it raises ``SystemExit`` as usual.
    """
    import os
    import sys

    fast = argv is None and os.environ.get("SEMPIX_FAST_EXIT", "1") != "0"
    code = 0
    try:
        rv = cli.main(args=argv, prog_name="sempix", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.UsageError as exc:
        ctx = exc.ctx
        where = ctx.command_path if ctx is not None else "sempix"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        code = 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        code = 130
    except SystemExit as exc:  # the commands' error handler exits with the code
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    _exit(code, fast)
