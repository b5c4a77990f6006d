"""``sempix models list|fetch|path``: list, download and locate model files."""

from __future__ import annotations

import json

import click

from sempix.cli.common import command


@click.group(
    "models",
    context_settings={"help_option_names": ["-h", "--help"]},
)
def models() -> None:
    """List, fetch and locate model files.

    Files are looked up in SEMPIX_MODEL_DIR, then the user cache (SEMPIX_CACHE_DIR/models or the
    platform cache dir), and downloaded into the cache (size and sha256 checked) unless
    SEMPIX_OFFLINE=1.
    """


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n} B"  # pragma: no cover


@command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_models(as_json: bool, quiet: bool, debug: bool) -> None:
    """Show every known model: name, file, size, licence, and where it is (if local)."""
    from sempix.models import REGISTRY, cache_dir, model_dirs, model_status

    rows = [model_status(name) for name in REGISTRY]
    if as_json:
        click.echo(
            json.dumps({"search_dirs": [str(d) for d in model_dirs()], "models": rows}, indent=2)
        )
        return
    header = ("NAME", "FILE", "SIZE", "LICENCE", "AVAILABLE")
    table = [header] + [
        (
            r["name"],
            r["file"],
            _human(r["size"]),
            r["licence"] if len(r["licence"]) <= 40 else r["licence"][:37] + "...",
            r["local"] if r["local"] else "no (sempix models fetch " + r["name"] + ")",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    if not quiet:
        dirs = ", ".join(str(d) for d in model_dirs())
        click.echo(f"searched: {dirs} (downloads go to {cache_dir()})")


@command("fetch")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option(
    "--verify", is_flag=True, help="Also check the sha256 of files that are already local."
)
def fetch(names: tuple[str, ...], verify: bool, quiet: bool, debug: bool) -> None:
    """Download models into the cache (skipped when already available).

    NAME may be 'all' (every single-file model; the SegFormer checkpoints, 15-340 MB each, are
    fetched only by name, e.g. `sempix models fetch segformer-b2`).
    """
    from sempix.errors import ModelUnavailableError
    from sempix.models import REGISTRY, find_local, get_model_path, verify_file

    wanted = [n for n in REGISTRY if not REGISTRY[n].hf_repo] if names == ("all",) else list(names)
    for name in wanted:
        local = find_local(
            name
        )  # checks the sha256 (once per process): corrupt files are not "found"
        if local is not None:
            if verify:
                ok, msg = verify_file(local, name)
                if not ok:
                    raise ModelUnavailableError(f"{name}: {msg} (delete it and fetch again)")
            click.echo(f"{name}: {local} (already available, sha256 ok)")
            continue
        path = get_model_path(name, progress=not quiet)
        if name in REGISTRY and REGISTRY[name].hf_repo:
            click.echo(
                f"{name}: {path} (downloaded from the Hugging Face Hub, every file complete)"
            )
        else:
            click.echo(f"{name}: {path} (downloaded, size and sha256 ok)")


@command("path")
@click.argument("name")
@click.option("--verify", is_flag=True, help="Check size and sha256 (reads the whole file).")
def path(name: str, verify: bool, quiet: bool, debug: bool) -> None:
    """Print the local path of model NAME (exit 2 if it is not available)."""
    from sempix.errors import ModelUnavailableError
    from sempix.models import get_model_path, verify_file

    p = get_model_path(name, download=False)
    if verify:
        ok, msg = verify_file(p, name)
        if not ok:
            raise ModelUnavailableError(msg)
        if not quiet:
            click.echo(msg, err=True)
    click.echo(str(p))


models.add_command(list_models)
models.add_command(fetch)
models.add_command(path)
