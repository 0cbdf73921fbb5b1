"""``resyn check``, ``resyn sample`` and ``resyn bench``: one environment module at a time."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from resyn.checks import CheckConfig, CheckReport, run_checks
from resyn.cli.app import cli, console, err_console, fail, sandbox_config, unsafe_option
from resyn.cli.catalog import catalog_option
from resyn.errors import ResynError
from resyn.sandbox import Sandbox, WorkerFailure
from resyn.sources import EnvSource, example_names, load_source

_STATUS_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


# -- check ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("envs", nargs=-1, metavar="ENV...")
@click.option("--examples", is_flag=True, help="Check every bundled example environment.")
@click.option(
    "--seeds",
    type=click.IntRange(4, 100_000),
    default=None,
    help="Instances generated per difficulty level (default 100).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report(s) as one JSON document.")
@click.option("--list-rg", is_flag=True, help="List the reasoning-gym tasks usable as rg:TASK and exit.")
@catalog_option
@unsafe_option
def check(
    envs: tuple[str, ...],
    examples: bool,
    seeds: int | None,
    as_json: bool,
    list_rg: bool,
    catalog_path: Path | None,
    unsafe_no_sandbox: bool,
) -> None:
    """Run the generator–verifier check suite on environment modules.

    ENV is a path to a .py module, example:NAME for a bundled example, rg:TASK for a
    reasoning-gym task (needs the reasoning-gym extra), or the id of an environment in the catalog
    (NAME-1a2b3c4d, or catalog:ID-PREFIX). Exit 0 if all are accepted, 1 if any is rejected, 2 on
    a usage error.
    """
    if list_rg:
        from resyn.adapters import AdapterError
        from resyn.adapters.reasoning_gym import task_names

        try:
            click.echo("\n".join(f"rg:{name}" for name in task_names()))
        except AdapterError as exc:
            raise ResynError(str(exc)) from None
        return
    specs = list(envs) + ([f"example:{name}" for name in example_names()] if examples else [])
    if not specs:
        fail("no environment given: pass a module path, example:NAME, rg:TASK, or --examples")
    # Every argument is validated before any work.
    sources = [load_source(spec, catalog_path) for spec in specs]
    config = CheckConfig() if seeds is None else CheckConfig(seeds_per_level=seeds)
    config = config.model_copy(
        update={"probe_instances_per_level": min(config.probe_instances_per_level, config.seeds_per_level)}
    )
    reports: list[CheckReport] = []
    for source in sources:
        if not as_json and len(sources) > 1:
            err_console.print(f"[dim]checking {escape(source.label)} …[/]")
        report = run_checks(
            source.source,
            filename=source.filename,
            label=source.label,
            config=config,
            sandbox_config=sandbox_config(unsafe_no_sandbox, source),
            static_checks=not source.trusted_adapter,
        )
        reports.append(report)
        if not as_json:
            _print_report(report)
    if as_json:
        document: Any = (
            reports[0].model_dump(mode="json")
            if len(reports) == 1
            else {
                "accepted": all(r.accepted for r in reports),
                "reports": [r.model_dump(mode="json") for r in reports],
            }
        )
        click.echo(json.dumps(document, indent=2))
    elif len(reports) > 1:
        accepted = sum(r.accepted for r in reports)
        console.print(f"\n{accepted} of {len(reports)} environments accepted.")
    sys.exit(0 if all(r.accepted for r in reports) else 1)


def _print_report(report: CheckReport) -> None:
    verdict = "[bold green]ACCEPTED[/]" if report.accepted else "[bold red]REJECTED[/]"
    name = report.env_name or "?"
    console.print(
        f"\n{verdict}  [bold]{escape(name)}[/]  ({escape(report.label)}, "
        f"{report.max_difficulty or '?'} levels, {report.seconds:.1f} s)"
    )
    console.print(f"[dim]sandbox: {escape(report.isolation)}[/]")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("result", overflow="fold")
    for result in report.checks:
        style = _STATUS_STYLE[result.status]
        table.add_row(result.name, f"[{style}]{result.status}[/]", escape(result.summary))
    console.print(table)
    for result in report.checks:
        if result.status != "fail" or not result.evidence:
            continue
        console.print(f"[bold red]{result.name}[/] evidence:")
        for evidence in result.evidence[:3]:
            console.print("  - " + escape(evidence.render()).replace("\n", "\n    "))


# -- sample ---------------------------------------------------------------------------------------
@cli.command()
@click.argument("env", metavar="ENV")
@click.option(
    "-n", "count", type=click.IntRange(1, 10_000), default=3, show_default=True, help="Number of instances."
)
@click.option("--difficulty", type=click.IntRange(1, None), default=1, show_default=True)
@click.option("--seed", type=click.IntRange(0, None), default=0, show_default=True, help="First seed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@catalog_option
@unsafe_option
def sample(
    env: str,
    count: int,
    difficulty: int,
    seed: int,
    as_json: bool,
    catalog_path: Path | None,
    unsafe_no_sandbox: bool,
) -> None:
    """Print instances of an environment: question, gold answer and instance data.

    ENV is anything `resyn check` takes, a catalog environment id included.
    """
    source = load_source(env, catalog_path)
    with Sandbox(
        source.source, filename=source.filename, config=sandbox_config(unsafe_no_sandbox, source)
    ) as sandbox:
        load = _require_load(sandbox, source)
        if type(load.max_difficulty) is int and difficulty > load.max_difficulty:
            fail(
                f"--difficulty {difficulty} is above this environment's max_difficulty {load.max_difficulty}"
            )
        keys = [(s, difficulty) for s in range(seed, seed + count)]
        results = sandbox.sample(keys)
    rows = []
    for (s, d), result in zip(keys, results, strict=True):
        value = result.value if result.ok and isinstance(result.value, dict) else {}
        rows.append(
            {
                "seed": s,
                "difficulty": d,
                "ok": result.ok,
                "error": result.error,
                "question": value.get("question"),
                "solution": value.get("solution"),
                "instance": value.get("instance"),
            }
        )
    if as_json:
        click.echo(json.dumps({"env": load.name, "label": source.label, "instances": rows}, indent=2))
    else:
        for row in rows:
            console.rule(f"seed {row['seed']} · difficulty {row['difficulty']}")
            if not row["ok"]:
                console.print(f"[red]{escape(str(row['error']))}[/]")
                continue
            console.print(escape(str(row["question"])))
            console.print(f"[bold]gold:[/] {escape(str(row['solution']))}")
            console.print(f"[dim]instance: {escape(json.dumps(row['instance'])[:2000])}[/]")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


def _require_load(sandbox: Sandbox, source: EnvSource) -> Any:
    load = sandbox.load()
    if not load.ok:
        fail(f"{source.label}: the module does not load ({load.error}); run `resyn check {source.label}`", 1)
    return load


# -- bench ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("env", metavar="ENV")
@click.option(
    "--calls",
    type=click.IntRange(100, 10_000_000),
    default=50_000,
    show_default=True,
    help="Verify calls per measurement.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=128,
    show_default=True,
    help="Calls per message to the worker.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Sandboxed worker processes for the batched measurement.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@unsafe_option
def bench(env: str, calls: int, batch: int, workers: int, as_json: bool, unsafe_no_sandbox: bool) -> None:
    """Measure sandboxed verify throughput (batched and unbatched) against direct calls.

    The direct baseline runs the same verify on the same instances and answers in a plain loop
    inside the worker process, so untrusted code still never runs outside the sandbox.
    """
    source = load_source(env)
    config = sandbox_config(unsafe_no_sandbox, source)
    started = time.perf_counter()
    with Sandbox(source.source, filename=source.filename, config=config, workers=workers) as sandbox:
        load = _require_load(sandbox, source)
        cold_start = time.perf_counter() - started
        levels = load.max_difficulty if type(load.max_difficulty) is int else 1
        drawn = sandbox.sample([(s, 1 + s % levels) for s in range(64)])
        usable = [r.value for r in drawn if r.ok and isinstance(r.value, dict)]
        if not usable:
            fail(f"{source.label}: no instance could be generated; run `resyn check {source.label}`", 1)
        instances = [v["instance"] for v in usable]
        answers = [str(v["solution"]) if isinstance(v.get("solution"), str) else "0" for v in usable]
        items = [(i % len(instances), answers[i % len(instances)]) for i in range(calls)]
        try:
            direct_s = sandbox.time_verify(instances, items)
        except WorkerFailure as failure:
            fail(
                f"{source.label}: the direct baseline failed ({failure}); run `resyn check {source.label}`", 1
            )
        batched_s = _timed(lambda: sandbox.verify(instances, items, batch_size=batch))
        single = items[: min(calls, 5_000)]
        single_s = _timed(lambda: sandbox.verify(instances, single, batch_size=1))
        errors = sum(not r.ok for r in sandbox.verify(instances, items[:1000], batch_size=batch))
    result = {
        "env": load.name,
        "label": source.label,
        "isolation": sandbox.isolation.describe(),
        "calls": calls,
        "batch": batch,
        "workers": workers,
        "cold_start_s": round(cold_start, 4),
        "direct_calls_per_s": round(calls / direct_s if direct_s > 0 else float("inf"), 1),
        "direct_us_per_call": round(direct_s / calls * 1e6, 3),
        "sandboxed_batched_calls_per_s": round(calls / batched_s, 1),
        "sandboxed_unbatched_calls_per_s": round(len(single) / single_s, 1),
        "batched_vs_direct": round((calls / batched_s) / (calls / direct_s), 4) if direct_s > 0 else None,
        "errors_in_first_1000": errors,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table(box=None, show_header=False)
    for key, value in result.items():
        table.add_row(key, escape(str(value)))
    console.print(table)


def _timed(fn: Callable[[], object]) -> float:
    """Best of two runs: the first also warms the worker's caches."""
    times = []
    for _ in range(2):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)
