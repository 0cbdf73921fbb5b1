"""``resyn export FORMAT --out DIR``: catalog environments into a trainer's data and reward files."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from resyn.catalog import default_catalog_path
from resyn.cli.app import cli, console, err_console, fail, sandbox_config, unsafe_option
from resyn.cli.catalog import catalog_option
from resyn.export.errors import ExportError
from resyn.export.exporter import ExportSettings, export
from resyn.export.formats import FORMATS


@cli.command("export")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(FORMATS))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to create.")
@click.option("--env", "env_ids", multiple=True, help="An environment id or unique prefix (repeatable).")
@click.option(
    "--where", help="SQL condition on the catalog's environments table, e.g. \"keyword ILIKE '%graph%'\"."
)
@click.option(
    "--status",
    default="accepted",
    show_default=True,
    help="Status of environments chosen by --where or by default ('any' for every status).",
)
@click.option(
    "--n-per-env",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Rows per environment before the split.",
)
@click.option(
    "--difficulty", help="A level (3) or range (1-3), clipped to each environment's levels; default: all."
)
@click.option(
    "--mix",
    type=click.Path(path_type=Path),
    help="A TOML or JSON mix file (environments, weights, levels, total).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Makes the rows reproducible.")
@click.option(
    "--split", default="train=1", show_default=True, help="Splits and fractions, e.g. train=0.95,test=0.05."
)
@click.option("--held-out-difficulty", help="Levels (e.g. 4-5) that appear only in the non-train splits.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="A format option (repeatable).")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Sandboxed render workers."
)
@click.option("--force", is_flag=True, help="Replace --out if it exists and is not empty.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@catalog_option
@unsafe_option
def export_command(
    format_name: str,
    out: Path,
    env_ids: tuple[str, ...],
    where: str | None,
    status: str,
    n_per_env: int,
    difficulty: str | None,
    mix: Path | None,
    seed: int,
    split: str,
    held_out_difficulty: str | None,
    options: tuple[str, ...],
    workers: int,
    force: bool,
    as_json: bool,
    catalog_path: Path | None,
    unsafe_no_sandbox: bool,
) -> None:
    """Render instances of catalog environments into FORMAT: jsonl, parquet, trl, verl,
    openrlhf, verifiers or reasoning-gym. The directory holds the data, the environment modules,
    manifest.json and the reward entry point for that trainer."""
    catalog = catalog_path if catalog_path is not None else default_catalog_path()
    if not catalog.exists():
        fail(f"no catalog at {catalog}: pass --catalog PATH or run `resyn synthesize` first")
    parsed: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            fail(f"--option {option!r}: write KEY=VALUE, e.g. --option prompt=standard")
        parsed[key] = value
    try:
        settings = ExportSettings.build(
            format=format_name,
            out=out,
            env_ids=list(env_ids),
            where=where,
            status=None if status == "any" else status,
            n_per_env=n_per_env,
            difficulty=difficulty,
            mix=mix,
            seed=seed,
            split=split,
            held_out_difficulty=held_out_difficulty,
            force=force,
            workers=workers,
            options=parsed,
        )
        began = time.perf_counter()
        manifest = export(
            settings,
            catalog,
            command=shlex.join(["resyn", *sys.argv[1:]]),
            sandbox=sandbox_config(unsafe_no_sandbox),
            progress=_progress() if err_console.is_terminal else None,
        )
    except ExportError as exc:
        fail(str(exc))
    seconds = time.perf_counter() - began
    if as_json:
        console.print_json(manifest.model_dump_json())
        return
    rows = sum(count.rows for count in manifest.splits.values())
    table = Table(title=f"{format_name} export: {escape(str(out))}", title_justify="left")
    for column in ("split", "rows", "requested"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for name, count in manifest.splits.items():
        table.add_row(name, str(count.rows), str(count.requested))
    console.print(table)
    console.print(
        f"{_plural(len(manifest.environments), 'environment')}, {_plural(rows, 'row')} in {seconds:.1f} s "
        f"({rows / max(seconds, 1e-9):,.0f} rows/s); reward entry point: {escape(manifest.entry_point or '-')}"
    )
    for note in manifest.shortfalls:
        err_console.print(f"[yellow]shortfall:[/] {escape(note)}")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _progress() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        err_console.print(f"rendered {done}/{total}", end="\r")

    return show
