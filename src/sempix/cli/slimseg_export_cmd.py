"""``sempix slimseg export ckpt.pt``: add the per-width plain networks the feature backend reads."""

from __future__ import annotations

import click

from sempix.cli.common import command


@command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True))
def export(checkpoint, quiet, debug):
    """Fold each width of CHECKPOINT into a plain DeepLabV3+ and store them in it (in place).

    Needed for checkpoints of `sempix slimseg train` (or an interrupted distill) to be used with
    `--features slimseg --checkpoint CHECKPOINT`; `sempix slimseg distill` does it itself.
    """
    from sempix.slimseg.distill import add_export

    add_export(checkpoint)
    if not quiet:
        click.echo(f"{checkpoint}: exported every width for --features slimseg", err=True)
