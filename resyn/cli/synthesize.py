"""``resyn synthesize`` and ``resyn demo``: the synthesis loop over keywords, into the catalog."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from resyn.catalog import Catalog, default_catalog_path
from resyn.checks import CheckConfig
from resyn.cli.app import cli, console, err_console, unsafe_option
from resyn.cli.calibrate import calibration_settings, solver_options
from resyn.cli.catalog import print_environment_list
from resyn.synth.keywords import collect_keywords
from resyn.synth.loop import SynthesisSettings
from resyn.synth.run import (
    RunProgress,
    RunSummary,
    check_new_run,
    check_run_name,
    check_settings,
    default_run_name,
    preflight,
    resolve_settings,
    synthesize,
)

_OUTCOME_STYLE = {"accepted": "green", "rejected": "red", "error": "yellow", "pending": "dim"}


@cli.command(name="synthesize")
@click.argument("keywords", nargs=-1, metavar="[KEYWORD]...")
@click.option(
    "--keywords",
    "keyword_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=True),
    help="A file with one keyword per line (# comments); repeatable.",
)
@click.option("--model", help="Writer model: openai/<model>, anthropic/<model> or replay/<transcript>.")
@click.option("--judge-model", help="Judge model (default: the writer's).")
@click.option("--base-url", help="Endpoint of the writer: any OpenAI- or Anthropic-compatible server.")
@click.option("--judge-base-url", help="Endpoint of the judge (default: the writer's when the models match).")
@click.option("--max-rounds", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option(
    "--concurrency", type=click.IntRange(1, 1024), default=8, show_default=True, help="Keywords in flight."
)
@click.option(
    "--check-workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Check-suite runs at once (default: cores).",
)
@click.option(
    "--seeds",
    type=click.IntRange(4, 100_000),
    default=None,
    help="Instances per level in the checks (default 100).",
)
@click.option("--catalog", "catalog_path", type=click.Path(path_type=Path), envvar="RESYN_CATALOG", default=None,
              help="Catalog file (default runs/catalog.duckdb, or RESYN_CATALOG).")  # fmt: skip
@click.option("--run", "run_name", help="Run name; rerun with the same name to continue (default: the time).")
@solver_options
@click.option(
    "--budget-usd",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Stop starting calls once the run has spent this much (needs prices for the models).",
)
@click.option(
    "--max-calls", type=click.IntRange(1, None), default=None, help="Stop after this many requests."
)
@click.option(
    "--rpm", type=click.IntRange(1, None), default=None, help="Requests per minute per model at most."
)
@click.option("--reuse-calls", is_flag=True, help="Answer identical requests from the catalog's call log.")
@click.option("--batch-api", is_flag=True, help="Use the provider's batch API (half price, slower answers).")
@click.option(
    "--propose",
    type=click.IntRange(1, 200),
    default=None,
    help="Take the keywords as seeds and expand each into N distinct task ideas first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as one JSON document.")
@unsafe_option
def synthesize_command(
    keywords: tuple[str, ...],
    keyword_files: tuple[Path, ...],
    model: str | None,
    judge_model: str | None,
    base_url: str | None,
    judge_base_url: str | None,
    max_rounds: int,
    concurrency: int,
    check_workers: int | None,
    seeds: int | None,
    catalog_path: Path | None,
    run_name: str | None,
    as_json: bool,
    unsafe_no_sandbox: bool,
    solver_model: str | None,
    solver_base_url: str | None,
    solver_instances: int,
    solver_attempts: int,
    budget_usd: float | None,
    max_calls: int | None,
    rpm: int | None,
    reuse_calls: bool,
    batch_api: bool,
    propose: int | None,
) -> None:
    """Write environments for KEYWORDs with an LLM, check them, judge them, revise, and catalog
    the accepted ones.

    Each keyword runs: write → checks → judge → accepted, or → revise with the evidence of what
    failed, up to --max-rounds. Ctrl-C stops cleanly; rerunning with the same --run continues.
    """
    words = collect_keywords(keywords, keyword_files)
    # Limits and transport options: given with --model they are part of the requested settings;
    # given alone (resuming a run by name) they replace the stored ones.
    limits: dict[str, object] = {
        "budget_usd": budget_usd,
        "max_calls": max_calls,
        "max_requests_per_minute": rpm,
        "reuse_calls": reuse_calls or None,
        "batch_api": batch_api or None,
    }
    limits = {name: value for name, value in limits.items() if value is not None}
    requested = None
    if model is not None:
        from resyn.llm import parse_model_string

        parse_model_string(model)
        if judge_model is not None:
            parse_model_string(judge_model)
        same_judge = judge_model is None or judge_model == model
        fields: dict[str, object] = {
            "model": model,
            "judge_model": judge_model or model,
            "base_url": base_url,
            "judge_base_url": judge_base_url or (base_url if same_judge else None),
            "max_rounds": max_rounds,
            "concurrency": concurrency,
            "unsafe_no_sandbox": unsafe_no_sandbox,
            "checks": CheckConfig() if seeds is None else CheckConfig(seeds_per_level=seeds),
            "calibration": calibration_settings(
                solver_model, solver_base_url, solver_instances, solver_attempts
            ),
            "propose": propose,
            **limits,
        }
        if check_workers is not None:
            fields["check_workers"] = check_workers
        requested = SynthesisSettings.model_validate(fields)
        preflight(requested)  # a missing key or sandbox fails before the catalog is touched
    summary = _run(
        catalog_path or default_catalog_path(), run_name or default_run_name(), requested, words, limits
    )
    report_summary(summary, as_json)


def _run(
    path: Path,
    run_id: str,
    requested: SynthesisSettings | None,
    words: list[str],
    limits: dict[str, object] | None = None,
) -> RunSummary:
    """Open the catalog as its one writer, start or resume ``run_id``, and run it to the end.
    ``limits`` replace the stored settings of a run resumed without ``--model``."""
    check_run_name(run_id)
    if not path.exists():  # no catalog, so a new run: what it lacks fails before the file is made
        check_new_run(requested, words)
    with Catalog.open(path) as catalog:
        settings, resumed = resolve_settings(catalog, run_id, requested, words)
        if requested is None and limits:
            settings = SynthesisSettings.model_validate(settings.model_dump() | limits)
            check_settings(settings)
        with _progress_display() as (log, on_progress):
            return synthesize(
                words,
                catalog=catalog,
                run_id=run_id,
                settings=settings,
                resumed=resumed,
                log=log,
                on_progress=on_progress,
            )


@contextlib.contextmanager
def _progress_display() -> Iterator[tuple[Callable[[str], None], Callable[[RunProgress], None]]]:
    """A live progress bar on a terminal (log lines scroll above it); elsewhere (CI logs, batch
    jobs) plain lines: the log, and one progress line whenever a keyword finishes."""
    if not err_console.is_terminal:
        last_done = [-1]

        def plain(progress: RunProgress) -> None:
            if progress.done != last_done[0]:
                last_done[0] = progress.done
                err_console.print(f"progress: {_progress_text(progress)}", highlight=False)

        yield (lambda line: err_console.print(escape(line), highlight=False)), plain
        return
    columns = (TextColumn("[bold]keywords"), BarColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err_console, transient=True) as bar:
        handle = bar.add_task("starting", total=None)

        def live(progress: RunProgress) -> None:
            bar.update(
                handle, total=progress.total, completed=progress.done, description=_progress_text(progress)
            )

        yield (lambda line: bar.console.print(f"[dim]{escape(line)}[/]")), live


def _progress_text(progress: RunProgress) -> str:
    eta = progress.eta_s
    when = "?" if eta is None else f"{eta / 60:.0f} min" if eta >= 90 else f"{eta:.0f} s"
    return (
        f"{progress.done}/{progress.total} done, {progress.accepted} accepted, {progress.in_flight} in flight, "
        f"${progress.spent_usd:.2f} spent, ETA {when}"
    )


@cli.command()
@click.option("--catalog", "catalog_path", type=click.Path(path_type=Path), default=Path("runs/demo.duckdb"),
              show_default=True, help="Catalog file for the demo's environments.")  # fmt: skip
@click.option("--run", "run_name", help="Run name (default: demo-<time>).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as one JSON document.")
@unsafe_option
def demo(catalog_path: Path, run_name: str | None, as_json: bool, unsafe_no_sandbox: bool) -> None:
    """Run the whole synthesis loop offline against a bundled, hand-written transcript.

    The model's answers are hand-written examples (resyn/demo/answers/); extraction, the sandboxed
    checks, judge parsing and the catalog all run for real.
    """
    from resyn.demo import KEYWORDS, demo_settings

    settings = demo_settings(unsafe_no_sandbox=unsafe_no_sandbox)
    run_id = run_name or default_run_name().replace("run-", "demo-")
    if not as_json:
        err_console.print(
            "[bold]resyn demo[/]: the model's answers are hand-written examples replayed from "
            "resyn/demo/transcript.jsonl; everything after the model runs for real."
        )
    summary = _run(catalog_path, run_id, settings, list(KEYWORDS))
    if not as_json:
        print_summary(summary)
        with Catalog.open(catalog_path, read_only=True) as catalog:
            environments = catalog.list_environments()
        console.print(f"\n[bold]catalog {escape(str(catalog_path))}[/]")
        print_environment_list(environments)
    report_summary(summary, as_json, printed=True)
    if not as_json:
        console.print(
            f"\nexplore: resyn catalog list --catalog {catalog_path} · "
            f"resyn catalog show ID --catalog {catalog_path} · resyn catalog stats --catalog {catalog_path}"
        )


#: Exit status of a run stopped by --budget-usd or --max-calls: not finished, nothing failed.
EXIT_STOPPED = 3


def report_summary(summary: RunSummary, as_json: bool, *, printed: bool = False) -> None:
    """Print the per-keyword table and the funnel (or the JSON document); exit 130 if interrupted,
    3 if stopped at a limit (a batch script can tell an unfinished run from a finished one)."""
    if as_json:
        click.echo(json.dumps(summary.model_dump(mode="json"), indent=2))
    elif not printed:
        print_summary(summary)
    if summary.status == "interrupted":
        sys.exit(130)
    if summary.status == "stopped":
        sys.exit(EXIT_STOPPED)


def print_summary(summary: RunSummary) -> None:
    table = Table(title=f"run {summary.run_id}", box=None, header_style="bold", title_justify="left")
    table.add_column("keyword", overflow="fold")
    table.add_column("rounds", justify="right")
    table.add_column("outcome")
    table.add_column("environment / reason", overflow="fold")
    for task in summary.tasks:
        style = _OUTCOME_STYLE.get(task.status, "")
        detail = task.env_id if task.status == "accepted" else (task.reason or "")
        table.add_row(
            escape(task.keyword), str(task.rounds), f"[{style}]{task.status}[/]", escape(detail or "")
        )
    console.print(table)
    stats = summary.stats
    funnel = stats.funnel
    console.print(
        f"\nfunnel (module versions): written {funnel.written} → code extracted {funnel.extracted} → "
        f"passed static {funnel.passed_static} → passed checks {funnel.passed_checks} → "
        f"passed judge {funnel.passed_judge} → accepted {funnel.accepted}"
    )
    cost = "unknown" if stats.cost_usd is None else f"${stats.cost_usd:.4f}"
    if stats.cost_per_environment_usd is not None:
        cost += f" (${stats.cost_per_environment_usd:.4f} per accepted environment)"
    console.print(
        f"calls {stats.calls}, tokens in {stats.tokens_in} / out {stats.tokens_out}, cost {cost}, "
        f"{summary.seconds:.1f} s · catalog {escape(summary.catalog)} · log {escape(summary.run_dir)}/log.txt"
    )
    if summary.status == "stopped":
        console.print(
            f"[yellow]run stopped[/] at its limit: rerun with --run {summary.run_id} and a larger "
            "--budget-usd or --max-calls to continue"
        )
    elif summary.status != "finished":
        console.print(f"[yellow]run {summary.status}[/]: rerun with --run {summary.run_id} to continue")
