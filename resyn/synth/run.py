"""A synthesis run: open or resume it, drive its keywords concurrently, and summarise.

A run is named (``--run NAME``) and lives in the catalog (its configuration, tasks, rounds, calls)
and in ``<catalog dir>/<NAME>/`` (``config.json``, ``log.txt`` and ``calls.jsonl``, the full call
log, which is also a replay transcript). Rerunning with the same name continues with the keywords
that are not finished; accepted and rejected keywords are not touched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from resyn.catalog import Catalog, CatalogStats
from resyn.catalog.records import RunRecord, RunStatus, TaskRecord
from resyn.errors import ResynError
from resyn.llm import JsonlRecorder, LLMError, LLMSettings, Model, TeeRecorder, get_model, with_batching
from resyn.sandbox import probe
from resyn.synth.guards import Budget, BudgetExhausted, GuardedModel, require_prices
from resyn.synth.keywords import normalize_keyword
from resyn.synth.loop import RunAborted, SynthesisSettings, Synthesizer, abort_if_fatal, task_id_for
from resyn.synth.propose import propose, screen_ideas
from resyn.synth.similarity import IdeaSignature, idea_signature

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: Settings that define what a run produces; a resumed run must keep them. The others (rounds,
#: concurrency, workers) are operational and may change between sessions of the same run.
_FIXED_SETTINGS = ("model", "judge_model", "base_url", "judge_base_url", "checks", "write_max_tokens",
                   "judge_max_tokens", "temperature", "propose")  # fmt: skip


class RunSummary(BaseModel):
    """What a run (or this session of it) ended with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    status: RunStatus
    catalog: str
    run_dir: str
    seconds: float
    tasks: list[TaskRecord]
    stats: CatalogStats


def default_run_name() -> str:
    return datetime.now(UTC).strftime("run-%Y%m%d-%H%M%S")


def run_dir_for(catalog_path: Path, run_id: str) -> Path:
    """Runs live next to their catalog: ``runs/catalog.duckdb`` ↔ ``runs/<run>/``."""
    return catalog_path.parent / run_id


def check_run_name(run_id: str) -> None:
    """A run name is also a directory name next to the catalog."""
    if not RUN_NAME.match(run_id):
        raise ResynError(f"run name {run_id!r} is not usable: use letters, digits, '.', '_' and '-'")


def check_new_run(requested: SynthesisSettings | None, keywords: list[str]) -> SynthesisSettings:
    """What a new run needs besides a name: ``--model`` and keywords."""
    if requested is None:
        raise ResynError(
            "--model is required for a new run: e.g. --model openai/gpt-4o-mini, or replay/<transcript>"
        )
    if not keywords:
        raise ResynError("no keywords: pass KEYWORD ... or --keywords FILE")
    return requested


def resolve_settings(
    catalog: Catalog, run_id: str, requested: SynthesisSettings | None, keywords: list[str]
) -> tuple[SynthesisSettings, bool]:
    """The settings a run works with and whether it resumes an earlier session. ``requested`` is
    ``None`` when the user gave no ``--model`` (allowed only to resume)."""
    check_run_name(run_id)
    existing = catalog.get_run(run_id)
    if existing is None:
        return check_new_run(requested, keywords), False
    stored = SynthesisSettings.model_validate(existing.config["settings"])
    if requested is None:
        return stored, True
    for field in _FIXED_SETTINGS:
        if getattr(requested, field) != getattr(stored, field):
            raise ResynError(
                f"run {run_id!r} was started with a different {field.replace('_', '-')} "
                f"({getattr(stored, field)!r}): rerun with the same options, or choose a new --run"
            )
    return requested, True


def check_settings(settings: SynthesisSettings) -> None:
    """What the settings ask for that cannot work, without touching anything: a budget without
    prices, a batch API for a model that has none."""
    specs = [settings.model, settings.judge_model]
    if settings.calibration is not None:
        specs.append(settings.calibration.solver_model)
    if settings.budget_usd is not None:
        require_prices(specs)
    if settings.batch_api:
        for spec in specs:
            if spec.partition("/")[0] not in ("openai", "anthropic"):
                raise ResynError(
                    f"--batch-api: {spec} has no batch API (only openai/<model> and anthropic/<model>): "
                    "drop --batch-api"
                )


def preflight(settings: SynthesisSettings) -> None:
    """Everything that would fail every call or every check, checked before anything is written:
    the settings, the sandbox (or --unsafe-no-sandbox), the keys and endpoints of both models, a
    replay file."""
    check_settings(settings)
    probe(settings.unsafe_no_sandbox)
    get_model(settings.model, base_url=settings.base_url).check_ready()
    get_model(settings.judge_model, base_url=settings.judge_base_url).check_ready()
    if settings.calibration is not None:
        get_model(
            settings.calibration.solver_model, base_url=settings.calibration.solver_base_url
        ).check_ready()


def synthesize(
    keywords: list[str],
    *,
    catalog: Catalog,
    run_id: str,
    settings: SynthesisSettings,
    resumed: bool,
    log: Callable[[str], None] = lambda line: None,
    writer: Model | None = None,
    judge_model: Model | None = None,
    on_progress: Callable[[RunProgress], None] | None = None,
) -> RunSummary:
    """Run (or continue) ``run_id`` over ``keywords`` and return its summary. ``writer`` and
    ``judge_model`` replace the models the settings name (tests, the demo). Ctrl-C and SIGTERM
    stop cleanly with status ``interrupted``; a fault that would fail every call raises
    ``RunAborted`` after recording status ``failed``."""
    started = time.monotonic()
    if writer is None or judge_model is None:
        preflight(settings)
    else:
        check_settings(settings)
        probe(settings.unsafe_no_sandbox)
        writer.check_ready()
        judge_model.check_ready()
    run_dir = run_dir_for(catalog.path, run_id)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResynError(
            f"cannot create run directory {run_dir} ({exc.strerror}): pass a writable --catalog"
        ) from None
    logfile = (run_dir / "log.txt").open("a", encoding="utf-8")

    def emit(line: str) -> None:
        logfile.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} {line}\n")
        logfile.flush()
        log(line)

    spent = catalog.stats(run_id) if resumed else None
    budget = Budget(
        max_usd=settings.budget_usd,
        max_calls=settings.max_calls,
        spent_usd=(spent.cost_usd or 0.0) if spent else 0.0,
        calls=_requests_made(catalog, run_id) if spent else 0,
    )
    recorder = TeeRecorder(catalog, JsonlRecorder(run_dir / "calls.jsonl"), budget)
    for given in (writer, judge_model):
        if given is not None:  # models built by the caller record into the run too
            given.recorder = TeeRecorder(recorder, given.recorder)
    llm_settings = LLMSettings(
        max_concurrency=settings.concurrency, max_requests_per_minute=settings.max_requests_per_minute
    )
    writer = writer or get_model(
        settings.model, base_url=settings.base_url, settings=llm_settings, recorder=recorder
    )
    judge_model = judge_model or get_model(
        settings.judge_model, base_url=settings.judge_base_url, settings=llm_settings, recorder=recorder
    )
    solver: Model | None = None
    if settings.calibration is not None:
        solver = get_model(
            settings.calibration.solver_model,
            base_url=settings.calibration.solver_base_url,
            settings=llm_settings,
            recorder=recorder,
        )

    if settings.batch_api:
        batching = settings.batch
        writer, judge_model = with_batching(writer, batching), with_batching(judge_model, batching)
        solver = with_batching(solver, batching) if solver is not None else None
    reuse = catalog.reusable_calls if settings.reuse_calls else None
    writer, judge_model = (GuardedModel(m, budget=budget, reuse=reuse) for m in (writer, judge_model))
    if solver is not None:
        solver = GuardedModel(solver, budget=budget, reuse=reuse)

    config = {"settings": settings.model_dump(mode="json"), "keywords": keywords}
    if not resumed:
        catalog.upsert_run(RunRecord(run_id=run_id, config=config, resyn_version=version("resyn")))
    else:
        catalog.set_run_status(run_id, "running")
    if not settings.propose:
        _add_tasks(catalog, run_id, [(keyword, None) for keyword in keywords])
    synthesizer = Synthesizer(
        run_id=run_id,
        settings=settings,
        writer=writer,
        judge_model=judge_model,
        catalog=catalog,
        log=emit,
        solver=solver,
    )
    status: RunStatus = "failed"
    try:
        if settings.propose:
            # A resumed run also retries the seeds it started with whose proposal failed, when
            # it is resumed by name only (no keywords given).
            stored = catalog.get_run(run_id)
            started_with = stored.config.get("keywords", []) if stored else []
            seeds = list(dict.fromkeys([*started_with, *keywords]))
            asyncio.run(_propose_all(catalog, run_id, seeds, settings, writer, emit))
        run_tasks = catalog.tasks(run_id)
        # The file describes the whole run, also when this session resumes it with fewer keywords.
        run_file = {**config, "keywords": [t.keyword for t in run_tasks]}
        if settings.propose:
            run_file["seeds"] = sorted({p.seed_keyword for p in catalog.proposals(run_id)})
        (run_dir / "config.json").write_text(json.dumps(run_file, indent=2) + "\n")
        todo = [t for t in run_tasks if t.status in ("pending", "error")]
        emit(
            f"run {run_id}: {len(todo)} keyword(s) to do"
            + (f" (resumed; {len(run_tasks) - len(todo)} already finished)" if resumed else "")
        )
        if todo:
            budget.admit()  # a resumed run already at its limit does nothing (a finished one stays so)
        progress = RunProgress(total=len(todo), spent_usd=budget.spent_usd)
        models: list[Model] = [m for m in (writer, judge_model, solver) if m is not None]
        asyncio.run(_drive(synthesizer, todo, models, progress, budget, on_progress))
        status = "stopped" if synthesizer.stopped_by else "finished"
        if synthesizer.stopped_by:
            emit(f"stopped: {synthesizer.stopped_by}; rerun with a larger limit to continue")
    except BudgetExhausted as exc:
        status = "stopped"
        emit(f"stopped: {exc}; rerun with a larger limit to continue")
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = "interrupted"
        emit("interrupted: finished work is saved; rerun the same command to continue")
    except RunAborted as exc:
        emit(f"aborted: {exc}")
        raise
    finally:
        synthesizer.close()
        catalog.set_run_status(run_id, status, finished_at=datetime.now(UTC))
        logfile.close()
    return RunSummary(
        run_id=run_id,
        status=status,
        catalog=str(catalog.path),
        run_dir=str(run_dir),
        seconds=round(time.monotonic() - started, 3),
        tasks=catalog.tasks(run_id),
        stats=catalog.stats(run_id),
    )


def _requests_made(catalog: Catalog, run_id: str) -> int:
    """Calls of the run that sent a request, as ``Budget`` counts them (reused and replayed
    answers sent none)."""
    literal = run_id.replace("'", "''")
    found = catalog.sql(f"SELECT count(*) FROM llm_calls WHERE run_id = '{literal}' AND attempts > 0")
    return int(found.rows[0][0])


def _add_tasks(catalog: Catalog, run_id: str, items: list[tuple[str, str | None]]) -> None:
    """Add ``(keyword, brief)`` tasks the run does not have yet (keywords compared normalized)."""
    existing = catalog.tasks(run_id)
    known = {normalize_keyword(t.keyword) for t in existing}
    new: list[tuple[str, str | None]] = []
    for keyword, brief in items:
        if normalize_keyword(keyword) not in known:
            known.add(normalize_keyword(keyword))
            new.append((keyword, brief))
    catalog.add_tasks(
        [
            TaskRecord(
                task_id=task_id_for(run_id, keyword),
                run_id=run_id,
                keyword=keyword,
                position=len(existing) + i,
                brief=brief,
            )
            for i, (keyword, brief) in enumerate(new)
        ]
    )


async def _propose_all(
    catalog: Catalog,
    run_id: str,
    seeds: list[str],
    settings: SynthesisSettings,
    model: Model,
    emit: Callable[[str], None],
) -> None:
    """Expand every seed not yet expanded in this run into tasks. Seeds run concurrently; ideas are
    screened in seed order against the catalog, the run's tasks and the ideas kept before them."""
    assert settings.propose is not None
    done_seeds = {p.seed_keyword for p in catalog.proposals(run_id)}
    todo = [seed for seed in seeds if seed not in done_seeds]
    if not todo:
        return
    existing: list[tuple[str, IdeaSignature]] = [
        (f"env:{env.env_id}", idea_signature(env.keyword, env.description))
        for env in catalog.list_environments()
    ]
    existing += [(t.keyword, idea_signature(t.keyword, t.brief)) for t in catalog.tasks(run_id)]
    names = [t.keyword for t in catalog.tasks(run_id)][:100]
    try:
        with _cancel_on_sigterm():
            answers = await asyncio.gather(
                *(
                    propose(model, seed, settings.propose, names, max_tokens=settings.judge_max_tokens * 2,
                            tags={"run_id": run_id})
                    for seed in todo
                ),
                return_exceptions=True,
            )  # fmt: skip
    finally:
        await model.aclose()
    for seed, answer in zip(todo, answers, strict=True):
        if isinstance(answer, BaseException):
            if isinstance(answer, LLMError):
                abort_if_fatal(answer)
                emit(f"seed {seed!r}: proposing failed ({answer}); rerun to try again")
                continue
            raise answer
        ideas, call_id = answer
        proposals, duplicates = screen_ideas(
            run_id=run_id, seed=seed, ideas=ideas, call_id=call_id, existing=existing
        )
        catalog.add_proposals(proposals)
        for duplicate in duplicates:
            catalog.add_duplicate(duplicate)
        kept = [p for p in proposals if p.duplicate_of is None]
        _add_tasks(catalog, run_id, [(p.keyword, p.description) for p in kept])
        existing += [(p.keyword, idea_signature(p.keyword, p.description)) for p in kept]
        emit(
            f"seed {seed!r}: {len(kept)} task(s) proposed"
            + (f", {len(duplicates)} near-duplicate(s) skipped" if duplicates else "")
        )


class RunProgress(BaseModel):
    """Where a session of a run stands, for a progress display."""

    model_config = ConfigDict(extra="forbid")

    total: int
    """Keywords this session has to do."""
    done: int = 0
    accepted: int = 0
    in_flight: int = 0
    spent_usd: float = 0.0
    """Spent by the run so far (all sessions), as far as prices are known."""
    started: float = Field(default_factory=time.monotonic)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far; ``None`` before the first keyword finishes."""
        if self.done == 0:
            return None
        return (time.monotonic() - self.started) / self.done * (self.total - self.done)


async def _drive(
    synthesizer: Synthesizer,
    todo: list[TaskRecord],
    models: list[Model],
    progress: RunProgress,
    budget: Budget,
    on_progress: Callable[[RunProgress], None] | None,
) -> None:
    """``concurrency`` workers take tasks from a queue; the first fatal error cancels the rest."""
    with _cancel_on_sigterm():
        await _run_workers(synthesizer, todo, models, progress, budget, on_progress)


@contextlib.contextmanager
def _cancel_on_sigterm() -> Iterator[None]:
    """Batch schedulers stop jobs with SIGTERM: treat it like Ctrl-C, cancelling the running
    coroutine so every ``finally`` runs. (Not possible outside the main thread, or off Unix.)"""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    installed = False
    if main is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, main.cancel)
            installed = True
    try:
        yield
    finally:
        if installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGTERM)


async def _run_workers(
    synthesizer: Synthesizer,
    todo: list[TaskRecord],
    models: list[Model],
    progress: RunProgress,
    budget: Budget,
    on_progress: Callable[[RunProgress], None] | None,
) -> None:
    queue: asyncio.Queue[TaskRecord] = asyncio.Queue()
    for task in todo:
        queue.put_nowait(task)

    async def worker() -> None:
        while True:
            if synthesizer.stopped_by:
                return
            try:
                task = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            progress.in_flight += 1
            report()
            try:
                finished = await synthesizer.run_task(task)
            except BudgetExhausted as exc:
                # Calls in flight elsewhere finish; no task starts another. This task's round
                # stays unfinished, so a rerun with a larger budget continues it.
                synthesizer.stopped_by = str(exc)
                return
            except (RunAborted, asyncio.CancelledError):
                raise
            except Exception as exc:
                # A bug or an unexpected fault in one task must not end a batch job of hundreds:
                # the task is left in state error (retried on resume) and the traceback logged.
                finished = synthesizer.task_failed(task, exc)
            finally:
                progress.in_flight -= 1
            progress.done += 1
            progress.accepted += finished.status == "accepted"
            report()

    def report() -> None:
        progress.spent_usd = budget.spent_usd
        if on_progress is not None:
            on_progress(progress)

    workers = [asyncio.create_task(worker()) for _ in range(min(synthesizer.settings.concurrency, len(todo)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for pending in workers:
            pending.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for model in models:
            await model.aclose()


def summary_document(summary: RunSummary) -> dict[str, Any]:
    """The ``--json`` form of a summary."""
    return summary.model_dump(mode="json")
