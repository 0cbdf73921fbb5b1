"""``resyn report``: write one self-contained HTML page about a run or the whole catalog.

The catalog is opened read-only (like ``resyn catalog``), so a report can never change it; an
unknown ``--run`` is the same one-line error as in ``resyn catalog stats``.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from resyn.cli.app import cli, console
from resyn.cli.catalog import catalog_option, open_reader, require_run
from resyn.report import build_report_data, render_report, write_report


@cli.command("report")
@click.option(
    "--run", "run_id", default=None, metavar="NAME", help="Only this run (default: the whole catalog)."
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE.html",
    help="Where to write the page (missing directories are created).",
)
@catalog_option
def report_command(run_id: str | None, out: Path, catalog_path: Path | None) -> None:
    """Write an HTML report: funnel, failure reasons, rounds, cost, pass-rate curves, and one card
    per environment with its samples and revision history.

    The page is a single file with inline CSS and SVG: no scripts, nothing loaded from the
    network, so it opens anywhere and can be mailed or archived as is.
    """
    with open_reader(catalog_path) as catalog:
        if run_id is not None:
            require_run(catalog, run_id)
        data = build_report_data(catalog, run_id)
    path = write_report(render_report(data), out)
    scope = f"run {run_id}" if run_id is not None else "the whole catalog"
    envs = len(data.environments)
    console.print(
        f"wrote {escape(str(path))} ({escape(scope)}: {envs} environment{'s' if envs != 1 else ''}, "
        f"{len(data.rejected)} rejected keyword{'s' if len(data.rejected) != 1 else ''}, "
        f"{path.stat().st_size / 1024:.0f} KiB)"
    )
