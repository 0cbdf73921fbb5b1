"""``resyn calibrate``: measure a solver's pass rates on catalog environments, and the options that
``resyn synthesize`` shares for calibrating as it goes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape

from resyn.catalog import Catalog, default_catalog_path
from resyn.cli.app import cli, console, err_console, unsafe_option
from resyn.cli.catalog import catalog_option
from resyn.llm import parse_model_string
from resyn.sandbox import SandboxConfig
from resyn.synth.calibration import CalibrationSettings, calibrate_environments

F = TypeVar("F", bound=Callable[..., Any])


def solver_options(function: F) -> F:
    """``--solver-model`` and its knobs, shared by ``synthesize`` and ``calibrate``."""
    for option in reversed(
        [
            click.option("--solver-model", help="Solver for calibration: provider/model (e.g. your policy)."),
            click.option("--solver-base-url", help="Endpoint of the solver."),
            click.option(
                "--solver-instances",
                type=click.IntRange(1, 1000),
                default=2,
                show_default=True,
                help="Instances per difficulty level.",
            ),
            click.option(
                "--solver-attempts",
                type=click.IntRange(1, 100),
                default=4,
                show_default=True,
                help="Solver answers per instance.",
            ),
        ]
    ):
        function = option(function)
    return function


def calibration_settings(
    model: str | None, base_url: str | None, instances: int, attempts: int
) -> CalibrationSettings | None:
    if model is None:
        return None
    parse_model_string(model)
    return CalibrationSettings(
        solver_model=model,
        solver_base_url=base_url,
        instances_per_level=instances,
        attempts_per_instance=attempts,
    )


@cli.command()
@click.argument("env_ids", nargs=-1, required=True, metavar="ID...")
@solver_options
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    help="Solver calls in flight.",
)
@catalog_option
@unsafe_option
def calibrate(
    env_ids: tuple[str, ...],
    solver_model: str | None,
    solver_base_url: str | None,
    solver_instances: int,
    solver_attempts: int,
    concurrency: int,
    catalog_path: Path | None,
    unsafe_no_sandbox: bool,
) -> None:
    """Re-run solver calibration for catalog environments (e.g. against a newer policy): pass rates
    and learnability per level, stored with every attempt, and the environment's new status."""
    settings = calibration_settings(solver_model, solver_base_url, solver_instances, solver_attempts)
    if settings is None:
        raise click.UsageError("--solver-model is required: e.g. --solver-model openai/gpt-4.1-mini")
    path = catalog_path or default_catalog_path()
    if not path.exists():  # the error of a reader; opening as the writer would create the file
        Catalog.open(path, read_only=True).close()
    with Catalog.open(path) as catalog:
        records = calibrate_environments(
            catalog,
            list(env_ids),
            settings,
            sandbox_config=SandboxConfig(unsafe_no_sandbox=unsafe_no_sandbox),
            concurrency=concurrency,
            log=lambda line: err_console.print(f"[dim]{escape(line)}[/]"),
        )
    for record in records:
        rates = " ".join(
            "-" if level.pass_rate is None else f"{level.pass_rate:.2f}" for level in record.levels
        )
        console.print(f"{escape(record.env_id)}  {record.status}  pass rates by level: {rates}")
