"""``resyn catalog list|show|sql|stats``: reading the environment catalog.

Every command opens the catalog read-only, so none of them can damage it; while a synthesis run
holds the file DuckDB locks readers out, and the error says so. ``--json`` prints the same
pydantic models the Python API returns.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape
from rich.table import Table

from resyn.catalog import (
    Catalog,
    CatalogError,
    CatalogStats,
    EnvironmentRecord,
    EnvironmentSummary,
    default_catalog_path,
)
from resyn.catalog.queries import jsonable
from resyn.cli.app import cli, console, err_console

F = TypeVar("F", bound=Callable[..., Any])

_CELL_LIMIT = 300
"""Characters of one SQL value shown in a table cell (a module's code would flood the terminal);
``--json`` prints values whole."""


def catalog_option(function: F) -> F:
    """``--catalog PATH`` (or ``$RESYN_CATALOG``); ``None`` means the default location."""
    return click.option(
        "--catalog",
        "catalog_path",
        type=click.Path(path_type=Path),
        envvar="RESYN_CATALOG",
        default=None,
        help="The catalog file (default: $RESYN_CATALOG, else runs/catalog.duckdb).",
    )(function)


def open_reader(catalog_path: Path | None) -> Catalog:
    return Catalog.open(catalog_path if catalog_path is not None else default_catalog_path(), read_only=True)


def require_run(catalog: Catalog, run_id: str) -> None:
    """An unknown ``--run`` is an error, not an empty result: it is most likely misspelled."""
    if catalog.get_run(run_id) is not None:
        return
    names = [run.run_id for run in catalog.runs()]
    close = difflib.get_close_matches(run_id, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = f"; runs: {', '.join(names[:10])}{', …' if len(names) > 10 else ''}" if names else ""
    raise CatalogError(f"no run {run_id!r} in catalog {catalog.path}{hint}{listing}")


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def _table(*columns: str) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column)
    return table


@cli.group("catalog")
def catalog_group() -> None:
    """Browse the catalog of accepted environments (opened read-only)."""


# -- list -----------------------------------------------------------------------------------------
@catalog_group.command("list")
@click.option("--run", "run_id", default=None, metavar="NAME", help="Only the environments of this run.")
@click.option("--keyword", default=None, metavar="K", help="Only keywords containing K (any case).")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="At most this many.")
@click.option(
    "--status",
    type=click.Choice(["accepted", "too_easy", "too_hard", "unproven"]),
    default=None,
    help="Only environments with this status (accepted = training material).",
)
@click.option(
    "--sort",
    type=click.Choice(["created", "learnability", "name"]),
    default="created",
    show_default=True,
    help="Order; learnability ranks by the latest calibration, highest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@catalog_option
def list_command(
    run_id: str | None,
    keyword: str | None,
    limit: int | None,
    status: str | None,
    sort: str,
    as_json: bool,
    catalog_path: Path | None,
) -> None:
    """List the accepted environments, oldest first."""
    with open_reader(catalog_path) as catalog:
        if run_id is not None:
            require_run(catalog, run_id)
        environments = catalog.list_environments(
            run_id=run_id, keyword=keyword, limit=limit, status=status, sort=sort
        )
    if as_json:
        _echo_json([env.model_dump(mode="json") for env in environments])
        return
    print_environment_list(environments)


#: Rows the human table shows at most.
TABLE_ROWS = 500


def print_environment_list(environments: list[EnvironmentSummary]) -> None:
    """The table of ``resyn catalog list`` (also printed at the end of ``resyn demo``)."""
    if not environments:
        err_console.print("[dim]no environments match[/]")
        return
    total = len(environments)
    environments = environments[:TABLE_ROWS]  # laying out 10,000 rows takes rich ~20 s
    table = _table("id", "keyword", "levels", "gold", "rounds", "status", "learn.", "description")
    # An id must stay whole (it is what `show` and `check` take); the keyword may wrap; the
    # description gets what is left of the width, cut to one line. The run is in --json.
    for column in table.columns[:-1]:
        column.no_wrap = column.header != "keyword"
    id_width = max(len(env.env_id) for env in environments)
    keyword_width = min(20, max(len(env.keyword) for env in environments))
    table.columns[0].min_width = id_width
    table.columns[1].min_width = min(12, keyword_width)
    table.columns[1].max_width = keyword_width
    # Rich squeezes columns away when a no-wrap column wants more than is left: bound it.
    table.columns[-1].max_width = max(12, console.width - id_width - keyword_width - 46)
    table.columns[-1].no_wrap = True
    table.columns[-1].overflow = "ellipsis"
    for env in environments:
        table.add_row(
            escape(env.env_id),
            escape(env.keyword),
            str(env.max_difficulty),
            "yes" if env.has_solution else "no",
            str(env.rounds),
            env.status,
            "-" if env.learnability is None else f"{env.learnability:.2f}",
            escape(env.description or ""),
        )
    console.print(table)
    shown = f"the first {len(environments)} of " if total > len(environments) else ""
    more = " (use --limit, --json or `resyn catalog sql` for the rest)" if shown else ""
    console.print(f"[dim]{shown}{total} environment{'s' if total != 1 else ''}{more}[/]")


# -- show -----------------------------------------------------------------------------------------
@catalog_group.command("show")
@click.argument("env_id", metavar="ID")
@click.option("--code", is_flag=True, help="Also print the module's code.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@catalog_option
def show_command(env_id: str, code: bool, as_json: bool, catalog_path: Path | None) -> None:
    """Show one environment (ID or a unique prefix of it): what it is, how it fared and how it was
    made, round by round and call by call."""
    with open_reader(catalog_path) as catalog:
        env = catalog.environment(env_id)
        rounds = catalog.candidates(env.task_id)
        calls = catalog.calls(task_id=env.task_id)
        known = {call.call_id for call in calls}
        missing = [call_id for call_id in env.lineage.call_ids if call_id not in known]
        if missing:  # calls recorded without a task tag, but named in the lineage
            calls = sorted(calls + catalog.calls(call_ids=missing), key=lambda c: c.call.started_at)
    round_rows = [
        {
            "round": c.round,
            "candidate_id": c.candidate_id,
            "outcome": c.outcome,
            "reason": c.reason,
        }
        for c in rounds
    ] or [
        {"round": i + 1, "candidate_id": cid, "outcome": None, "reason": None}
        for i, cid in enumerate(env.lineage.candidate_ids)
    ]
    call_rows = [
        {
            "call_id": c.call_id,
            "candidate_id": c.candidate_id,
            "template": c.call.template,
            "purpose": c.call.purpose,
            "model": c.call.resolved_model or c.call.requested_model,
            "tokens_in": c.call.tokens_in,
            "tokens_out": c.call.tokens_out,
            "cost_usd": c.call.cost_usd,
            "latency_s": c.call.latency_s,
            "error": c.call.error,
        }
        for c in calls
    ]
    if as_json:
        document = {
            "environment": env.model_dump(mode="json", exclude=None if code else {"code"}),
            "rounds": round_rows,
            "calls": call_rows,
        }
        _echo_json(document)
        return
    _print_environment(env, round_rows, call_rows)
    if code:
        console.rule(f"{env.name}.py")
        click.echo(env.code.rstrip("\n"))


def _print_environment(
    env: EnvironmentRecord, rounds: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> None:
    console.print(f"[bold]{escape(env.env_id)}[/]  {escape(env.name)}")
    facts = [
        ("keyword", env.keyword),
        ("levels", f"1..{env.max_difficulty}"),
        ("gold answers", "yes" if env.has_solution else "no (verifier only)"),
        ("run", env.run_id),
        ("task", env.task_id),
        ("accepted", f"{env.created_at:%Y-%m-%d %H:%M:%S} UTC after {len(rounds)} round(s)"),
        ("code sha256", env.code_sha256),
    ]
    for label, value in facts:
        console.print(f"[dim]{label}:[/] {escape(value)}")
    if env.description:
        console.print()
        console.print(escape(env.description.strip()))
    if env.judge_scores:
        scores = ", ".join(f"{name} {score}" for name, score in env.judge_scores.items())
        console.print(f"\n[bold]judge:[/] {escape(scores)}")
    if env.check_metrics:
        console.print("\n[bold]checks[/]")
        table = _table("check", "metrics")
        table.columns[1].overflow = "fold"
        for name, metrics in env.check_metrics.items():
            shown = ", ".join(f"{key}={value:g}" for key, value in list(metrics.items())[:6])
            more = f", … {len(metrics) - 6} more" if len(metrics) > 6 else ""
            table.add_row(escape(name), escape(shown + more) if shown else "[dim]-[/]")
        console.print(table)
    console.print("\n[bold]lineage[/]")
    table = _table("round", "candidate", "outcome", "reason")
    table.columns[3].overflow = "fold"
    for row in rounds:
        table.add_row(
            str(row["round"]),
            escape(row["candidate_id"]),
            escape(row["outcome"] or "?"),
            escape(row["reason"] or ""),
        )
    console.print(table)
    if calls:
        console.print("\n[bold]calls[/]")
        table = _table("template", "model", "tokens in/out", "cost", "latency", "candidate")
        for row in calls:
            cost = "?" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}"
            tokens = f"{row['tokens_in'] if row['tokens_in'] is not None else '?'}/" + (
                f"{row['tokens_out'] if row['tokens_out'] is not None else '?'}"
            )
            table.add_row(
                escape(row["template"]) + (" [red](failed)[/]" if row["error"] else ""),
                escape(row["model"]),
                tokens,
                cost,
                f"{row['latency_s']:.1f} s",
                escape(row["candidate_id"] or ""),
            )
        console.print(table)


# -- sql ------------------------------------------------------------------------------------------
@catalog_group.command("sql")
@click.argument("query", metavar='"SELECT …"')
@click.option("--json", "as_json", is_flag=True, help="Print columns and rows as JSON.")
@catalog_option
def sql_command(query: str, as_json: bool, catalog_path: Path | None) -> None:
    """Run one read-only SQL query on the catalog.

    Tables: runs, tasks, candidates, check_reports, check_results, verdicts, environments,
    llm_calls. Writes, COPY, ATTACH, PRAGMA and several statements at once are refused.
    """
    with open_reader(catalog_path) as catalog:
        result = catalog.sql(query)
    if as_json:
        _echo_json(result.model_dump())
    else:
        table = _table(*(escape(c) for c in result.columns))
        for column in table.columns:
            column.overflow = "fold"
        for row in result.rows:
            table.add_row(*(_cell(value) for value in row))
        console.print(table)
        console.print(f"[dim]{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}[/]")
    if result.truncated:
        err_console.print(
            f"[yellow]only the first {result.limit} rows are shown: add LIMIT/OFFSET or aggregate[/]"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]NULL[/]"
    plain = jsonable(value)
    text = plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)
    if len(text) > _CELL_LIMIT:
        text = text[: _CELL_LIMIT - 1] + "…"
    return escape(text)


# -- stats ----------------------------------------------------------------------------------------
@catalog_group.command("stats")
@click.option("--run", "run_id", default=None, metavar="NAME", help="Only this run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@catalog_option
def stats_command(run_id: str | None, as_json: bool, catalog_path: Path | None) -> None:
    """The candidate funnel, why candidates failed, and what it cost."""
    with open_reader(catalog_path) as catalog:
        if run_id is not None:
            require_run(catalog, run_id)
        stats = catalog.stats(run_id, diversity=True)
    if as_json:
        _echo_json(stats.model_dump(mode="json"))
        return
    _print_stats(stats)


def _print_stats(stats: CatalogStats) -> None:
    scope = f"run {stats.run_id}" if stats.run_id else f"{stats.runs} run{'s' if stats.runs != 1 else ''}"
    tasks = ", ".join(f"{n} {status}" for status, n in stats.tasks.items()) or "none"
    envs = f"{stats.environments} environment{'s' if stats.environments != 1 else ''}"
    console.print(f"[bold]{escape(scope)}[/]: {envs}; tasks: {escape(tasks)}")
    console.print("\n[bold]candidate funnel[/]")
    funnel = _table("stage", "candidates", "of written")
    written = stats.funnel.written
    for stage, count in stats.funnel.model_dump().items():
        share = f"{100 * count / written:.0f} %" if written else "-"
        funnel.add_row(stage.replace("_", " "), str(count), share)
    console.print(funnel)
    if stats.outcomes:
        outcomes = ", ".join(f"{n} {outcome}" for outcome, n in stats.outcomes.items())
        console.print(f"[dim]outcomes:[/] {escape(outcomes)}")
    console.print(f"[dim]judge:[/] {stats.judge_rejected} rejected, {stats.judge_errors} errors")
    if stats.failed_checks:
        console.print("\n[bold]failed checks[/] (candidates failing each)")
        reasons = _table("check", "candidates")
        for name, count in stats.failed_checks.items():
            reasons.add_row(escape(name), str(count))
        console.print(reasons)
    console.print("\n[bold]cost[/]")
    unknown = f" (+ {stats.calls_without_cost} calls of unknown cost)" if stats.calls_without_cost else ""
    per_env = f"${stats.cost_per_environment_usd:.4f}" if stats.cost_per_environment_usd is not None else "-"
    rounds = f"{stats.mean_rounds_to_acceptance:.2f}" if stats.mean_rounds_to_acceptance is not None else "-"
    console.print(f"calls: {stats.calls} ({stats.failed_calls} failed)")
    console.print(f"tokens: {stats.tokens_in} in, {stats.tokens_out} out")
    console.print(f"total: ${stats.cost_usd:.4f}{unknown}")
    console.print(f"per environment: {per_env}")
    console.print(f"mean rounds to acceptance: {rounds}")
    if stats.environments_by_status:
        statuses = ", ".join(f"{n} {status}" for status, n in stats.environments_by_status.items())
        console.print(f"\n[bold]environments by status[/]: {escape(statuses)}")
    if stats.diversity is not None:
        d = stats.diversity
        sample = f" (a sample of {d.compared} of {d.environments})" if d.sampled else ""
        pairs = d.pairwise
        console.print(f"\n[bold]diversity[/]{sample}")
        console.print(
            f"families of related environments (similarity ≥ {d.family_threshold:g}): {d.families}, "
            f"largest {d.largest_family}"
        )
        if pairs.get("count"):
            console.print(
                f"pairwise similarity: mean {pairs['mean']:.2f}, median {pairs['p50']:.2f}, "
                f"p90 {pairs['p90']:.2f}, max {pairs['max']:.2f} over {pairs['count']} pairs"
            )
        skipped = ", ".join(f"{n} {kind}" for kind, n in d.duplicates_skipped.items()) or "none"
        console.print(f"near-duplicates skipped: {escape(skipped)}")
