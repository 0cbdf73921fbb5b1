"""One keyword, round by round: write → extract → checks → judge → accepted, or revise with the
evidence of what failed, up to ``max_rounds``.

Every step's result is written to the catalog before the next starts, so a task interrupted at
any point (Ctrl-C, kill -9) continues from its first unfinished step: a module already written is
not asked for again, a check report already stored is not recomputed, and an accepted environment
is never touched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from resyn.catalog import Catalog
from resyn.catalog.records import (
    CalibrationRecord,
    CandidateRecord,
    DuplicateRecord,
    EnvironmentRecord,
    Lineage,
    SolverAttempt,
    TaskRecord,
    VerdictRecord,
    env_id_for,
)
from resyn.checks import CheckConfig, CheckReport, run_checks
from resyn.errors import ResynError
from resyn.llm import BatchSettings, LLMError, Model, ProviderError, ReplayMissError
from resyn.sandbox import SandboxConfig
from resyn.synth import prompts
from resyn.synth.calibration import CalibrationSettings, calibrate
from resyn.synth.extract import extract_module
from resyn.synth.judge import JudgeOutcome, Verdict, judge, judge_samples
from resyn.synth.similarity import (
    DUPLICATE_CODE_THRESHOLD,
    DuplicateIndex,
    EnvFingerprint,
    env_fingerprint,
    environment_similarity,
)

T = TypeVar("T")

#: Checks that look only at the source; "passed static" in the funnel means none of them failed.
STATIC_CHECKS = ("syntax", "structure", "imports", "global_random")

#: Provider answers that mean every further call would fail the same way: stop the whole run.
_FATAL_STATUS = frozenset({401, 403, 404})


class SynthesisSettings(BaseModel):
    """How a run synthesizes: models, rounds, concurrency, token limits and check thresholds.
    Stored with the run, so a resumed run works exactly as it started."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    model: str
    """The writer, ``provider/model``."""
    judge_model: str
    """The judge, ``provider/model`` (the writer's unless given)."""
    base_url: str | None = None
    """Endpoint of the writer (an OpenAI- or Anthropic-compatible server)."""
    judge_base_url: str | None = None
    """Endpoint of the judge."""
    max_rounds: int = Field(3, ge=1, le=20)
    """Rounds per keyword: the first write, then revisions with evidence."""
    concurrency: int = Field(8, ge=1, le=1024)
    """Keywords in flight at once (and calls in flight per model)."""
    check_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=256)
    """Check-suite runs at once: each keeps about one core busy, so one per core."""
    write_max_tokens: int = Field(16_000, ge=256)
    """Token limit of a write or revise answer (a module is typically 2-6k tokens)."""
    judge_max_tokens: int = Field(2_000, ge=64)
    temperature: float | None = Field(None, ge=0, le=2)
    """Writer temperature; ``None`` leaves the provider's default."""
    checks: CheckConfig = Field(default_factory=CheckConfig)
    calibration: CalibrationSettings | None = None
    """Solver calibration of every environment the judge accepts (``--solver-model``)."""
    budget_usd: float | None = Field(None, gt=0)
    """Stop starting calls once the run (all its sessions) has spent this much (``--budget-usd``)."""
    max_calls: int | None = Field(None, ge=1)
    """Stop starting calls once the run has made this many requests (``--max-calls``)."""
    max_requests_per_minute: int | None = Field(None, ge=1)
    """Per-model request rate cap (``--rpm``), under the provider's own limit."""
    reuse_calls: bool = False
    """Answer identical requests from the catalog's call log (``--reuse-calls``)."""
    propose: int | None = Field(None, ge=1, le=200)
    """Expand each keyword, taken as a seed, into this many task ideas first (``--propose N``)."""
    batch_api: bool = False
    """Send the writer's, judge's and solver's requests through the provider's batch API (half
    price, answers within the batch window instead of seconds; ``--batch-api``)."""
    batch: BatchSettings | None = None
    """How batches are collected and polled with ``batch_api`` (``None``: ``BatchSettings()``)."""
    unsafe_no_sandbox: bool = False
    """Run candidates without isolation: only for a transcript of code you trust."""


class RunAborted(ResynError):
    """A fault that would fail every further call (bad key, unknown model, a replay miss): the
    run stops, and rerunning after the fix continues where it stopped."""


def slug(text: str) -> str:
    """A file-name-safe form of a keyword, for labels."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "keyword"


def task_id_for(run_id: str, keyword: str) -> str:
    """Stable across resumes: the same run and keyword give the same task."""
    from resyn.synth.keywords import normalize_keyword

    return hashlib.sha256(f"{run_id}\0{normalize_keyword(keyword)}".encode()).hexdigest()[:16]


class Synthesizer:
    """Runs tasks of one run. All catalog writes happen on the event loop's thread; check-suite
    runs go to a thread pool (they block on sandbox workers, which do the CPU work)."""

    def __init__(
        self,
        *,
        run_id: str,
        settings: SynthesisSettings,
        writer: Model,
        judge_model: Model,
        catalog: Catalog,
        log: Callable[[str], None],
        solver: Model | None = None,
    ) -> None:
        self.run_id = run_id
        self.settings = settings
        self.writer = writer
        self.judge_model = judge_model
        self.solver = solver
        self.stopped_by: str | None = None
        self._fingerprints: DuplicateIndex[str, EnvFingerprint] | None = None
        """Why the run stopped starting work (a budget), once it did."""
        self.catalog = catalog
        self.log = log
        self.sandbox_config = SandboxConfig(unsafe_no_sandbox=settings.unsafe_no_sandbox)
        self._pool = ThreadPoolExecutor(settings.check_workers, thread_name_prefix="resyn-checks")

    def close(self) -> None:
        # Check runs already started finish in their threads (a sandbox call cannot be abandoned
        # half-way without leaking its workers); queued ones are dropped.
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _in_pool(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    # -- a task ------------------------------------------------------------------------------------

    async def run_task(self, task: TaskRecord) -> TaskRecord:
        """Take ``task`` from wherever it stopped to accepted, rejected or error."""
        history = self.catalog.candidates(task.task_id)
        current: CandidateRecord | None = None
        if history and history[-1].outcome in (None, "error", "judge_error"):
            # Unfinished: continue it from its first missing step, without the outcome of the
            # failed attempt (``_advance`` reads an outcome after the write as "this round ended").
            current = history.pop().model_copy(
                update={"outcome": None, "reason": None, "feedback": None, "finished_at": None}
            )
        while True:
            if current is None:
                round_number = len(history) + 1
                if round_number > self.settings.max_rounds:
                    reason = history[-1].reason if history else "no round ran"
                    return self._finish_task(task, "rejected", len(history), reason)
                parent = next((c for c in reversed(history) if c.code is not None), None)
                current = CandidateRecord(
                    candidate_id=uuid.uuid4().hex,
                    task_id=task.task_id,
                    run_id=self.run_id,
                    keyword=task.keyword,
                    round=round_number,
                    parent_id=parent.candidate_id if parent else None,
                )
                self.catalog.add_candidate(current)
            current = await self._advance(task, current, history)
            if current.outcome == "accepted":
                return self.catalog_task(task)
            if current.outcome in ("error", "judge_error"):
                return self._finish_task(task, "error", len(history), current.reason)
            if current.outcome == "duplicate":  # revising would only restyle the same task
                return self._finish_task(task, "rejected", len(history) + 1, current.reason)
            history.append(current)
            current = None

    def task_failed(self, task: TaskRecord, exc: Exception) -> TaskRecord:
        """Record an unexpected exception of a task: traceback to the log, the task in state error."""
        trace = "".join(traceback.format_exception(exc)).rstrip()
        self.log(f"{task.keyword!r}: internal error, the task is left in state error:\n{trace}")
        reason = f"internal error: {type(exc).__name__}: {exc} (see log.txt; report it as a resyn bug)"
        return self._finish_task(task, "error", task.rounds, _first_line(reason, 300))

    def catalog_task(self, task: TaskRecord) -> TaskRecord:
        return next((t for t in self.catalog.tasks(self.run_id) if t.task_id == task.task_id), task)

    def _finish_task(self, task: TaskRecord, status: Any, rounds: int, reason: str | None) -> TaskRecord:
        self.catalog.update_task(task.task_id, status=status, rounds=rounds, reason=reason)
        self.log(f"{task.keyword!r}: {status} after {rounds} round(s)" + (f": {reason}" if reason else ""))
        return task.model_copy(update={"status": status, "rounds": rounds, "reason": reason})

    # -- a round -----------------------------------------------------------------------------------

    async def _advance(
        self, task: TaskRecord, candidate: CandidateRecord, history: list[CandidateRecord]
    ) -> CandidateRecord:
        """Run the steps of one round that have no stored result yet; return the finished round."""
        tags = {
            "run_id": self.run_id,
            "task_id": task.task_id,
            "candidate_id": candidate.candidate_id,
            "keyword": task.keyword,
            "round": str(candidate.round),
        }
        if candidate.code is None:
            try:
                candidate = await self._write(task, candidate, history, tags)
            except LLMError as exc:
                abort_if_fatal(exc)
                return self._finish(candidate, "error", f"writer call failed: {exc}")
            if candidate.outcome is not None:
                return candidate
        assert candidate.code is not None

        report = self.catalog.check_report(candidate.candidate_id)
        if report is None:
            report = await self._in_pool(partial(self._check, task, candidate.code))
            self.catalog.add_check_report(candidate.candidate_id, report)
        failed = [c.name for c in report.failures]
        candidate = candidate.model_copy(
            update={
                "env_name": report.env_name,
                "passed_static": not any(name in STATIC_CHECKS for name in failed),
                "passed_checks": report.accepted,
            }
        )
        if not report.accepted:
            self.log(f"{task.keyword!r} round {candidate.round}: checks failed ({', '.join(failed)})")
            return self._finish(
                candidate, "checks_failed", f"checks failed: {', '.join(failed)}", report.feedback()
            )
        self.log(f"{task.keyword!r} round {candidate.round}: checks passed ({report.seconds:.1f} s)")

        assert report.max_difficulty is not None and candidate.code is not None
        code, levels = candidate.code, report.max_difficulty
        samples = report.samples or await self._in_pool(  # reports stored before v4 lack them
            lambda: judge_samples(code, levels, self.sandbox_config)
        )
        assert candidate.code_sha256 is not None and report.env_name is not None
        fingerprint = env_fingerprint(
            env_id_for(report.env_name, candidate.code_sha256), code, [str(x["question"]) for x in samples]
        )
        duplicate = self._duplicate(candidate, fingerprint)
        if duplicate is not None:
            return duplicate
        verdict = self._stored_verdict(candidate)  # a resumed round is not judged twice
        if verdict is None:
            try:
                outcome = await self._judge(task, candidate, report, samples, tags)
            except LLMError as exc:
                abort_if_fatal(exc)
                return self._finish(candidate, "error", f"judge call failed: {exc}")
            verdict = outcome.verdict
            self.catalog.add_verdict(
                VerdictRecord(
                    verdict_id=uuid.uuid4().hex,
                    candidate_id=candidate.candidate_id,
                    call_id=outcome.call_ids[-1] if outcome.call_ids else None,
                    accept=verdict.accept if verdict else None,
                    feedback=verdict.feedback if verdict else None,
                    scores=verdict.scores if verdict else {},
                    error=outcome.error,
                    verdict=verdict.model_dump() if verdict else None,
                )
            )
            if verdict is None:
                self.log(f"{task.keyword!r} round {candidate.round}: judge failed ({outcome.error})")
                return self._finish(candidate, "judge_error", f"judge failed: {outcome.error}")
        if not verdict.accept:
            self.log(f"{task.keyword!r} round {candidate.round}: judge rejected it")
            return self._finish(
                candidate, "judge_rejected", f"judge rejected: {_first_line(verdict.feedback)}",
                _judge_feedback(verdict),
            )  # fmt: skip
        candidate = candidate.model_copy(update={"passed_judge": True})
        # Judged concurrently with another task's candidate? The index may have grown meanwhile.
        duplicate = self._duplicate(candidate, fingerprint)
        if duplicate is not None:
            return duplicate
        calibration: tuple[CalibrationRecord, list[SolverAttempt]] | None = None
        if self.solver is not None and self.settings.calibration is not None:
            try:
                calibration = await self._calibrate(task, candidate, report)
            except LLMError as exc:  # single failed solver calls are attempts; this is worse
                abort_if_fatal(exc)
                return self._finish(candidate, "error", f"calibration failed: {exc}")
        return self._accept(task, candidate, report, verdict, samples, calibration, fingerprint)

    def _index(self) -> DuplicateIndex[str, EnvFingerprint]:
        """Fingerprints of every environment in the catalog, loaded once per run."""
        if self._fingerprints is None:
            self._fingerprints = DuplicateIndex()
            for env_id, stored in self.catalog.fingerprints():
                with contextlib.suppress(ValueError):  # a signature of an older version: skip it
                    self._fingerprints.add(env_id, EnvFingerprint.model_validate(stored))
        return self._fingerprints

    def _duplicate(self, candidate: CandidateRecord, fingerprint: EnvFingerprint) -> CandidateRecord | None:
        """The candidate finished as a duplicate of a catalog environment, or ``None``."""
        found = self._index().nearest(fingerprint, min_similarity=DUPLICATE_CODE_THRESHOLD)
        if not found:
            return None
        other, score = found[0]
        detail = environment_similarity(fingerprint, self._index().get(other)).model_dump(mode="json")
        self.catalog.add_duplicate(
            DuplicateRecord(
                duplicate_id=uuid.uuid4().hex,
                run_id=self.run_id,
                kind="environment",
                subject=candidate.candidate_id,
                duplicate_of=other,
                similarity=score,
                detail=detail,
            )
        )
        self.log(f"{candidate.keyword!r} round {candidate.round}: near-duplicate of {other} ({score:.2f})")
        return self._finish(candidate, "duplicate", f"near-duplicate of {other} (similarity {score:.2f})")

    def _stored_verdict(self, candidate: CandidateRecord) -> Verdict | None:
        for stored in reversed(self.catalog.verdicts(candidate.candidate_id)):
            if stored.verdict is not None:
                return Verdict.model_validate(stored.verdict)
        return None

    async def _calibrate(
        self, task: TaskRecord, candidate: CandidateRecord, report: CheckReport
    ) -> tuple[CalibrationRecord, list[SolverAttempt]]:
        assert self.solver is not None and self.settings.calibration is not None
        assert candidate.code is not None and candidate.code_sha256 is not None
        assert report.env_name is not None and report.max_difficulty is not None
        record, attempts = await calibrate(
            env_id=env_id_for(report.env_name, candidate.code_sha256),
            code=candidate.code,
            max_difficulty=report.max_difficulty,
            has_solution=bool(report.has_solution),
            solver=self.solver,
            settings=self.settings.calibration,
            sandbox_config=self.sandbox_config,
            run_id=self.run_id,
            in_pool=self._in_pool,
            tags={"task_id": task.task_id, "candidate_id": candidate.candidate_id},
        )
        rates = ", ".join(
            f"{level.difficulty}:{'-' if level.pass_rate is None else f'{level.pass_rate:.2f}'}"
            for level in record.levels
        )
        self.log(f"{task.keyword!r}: solver pass rates by level {rates} → {record.status}")
        return record, attempts

    async def _write(
        self,
        task: TaskRecord,
        candidate: CandidateRecord,
        history: list[CandidateRecord],
        tags: dict[str, str],
    ) -> CandidateRecord:
        call_id = uuid.uuid4().hex
        if history:
            parent = next((c for c in reversed(history) if c.code is not None), None)
            name = "revise"
            variables: dict[str, Any] = {
                "keyword": task.prompt_keyword,
                "code": parent.code if parent and parent.code else "",
                "feedback": history[-1].feedback or history[-1].reason or "",
                "round": candidate.round,
            }
        else:
            name, variables = "write", {"keyword": task.prompt_keyword}
        request = prompts.request(
            name,
            variables,
            max_tokens=self.settings.write_max_tokens,
            purpose="writer",
            tags={**tags, "call_id": call_id},
            temperature=self.settings.temperature,
        )
        response = await self.writer.generate(request)
        extraction = extract_module(response.text, response.finish_reason)
        candidate = candidate.model_copy(update={"write_call_id": call_id})
        if extraction.code is None:
            self.log(
                f"{task.keyword!r} round {candidate.round}: no module in the answer ({extraction.problem})"
            )
            return self._finish(
                candidate, "no_code", f"no module in the answer: {extraction.problem}", extraction.feedback
            )
        candidate = candidate.model_copy(
            update={
                "code": extraction.code,
                "code_sha256": hashlib.sha256(extraction.code.encode()).hexdigest(),
                "extracted": True,
            }
        )
        self.catalog.update_candidate(candidate)
        return candidate

    def _check(self, task: TaskRecord, code: str) -> CheckReport:
        return run_checks(
            code,
            filename=f"{slug(task.keyword)}.py",
            label=task.keyword,
            config=self.settings.checks,
            sandbox_config=self.sandbox_config,
        )

    async def _judge(
        self,
        task: TaskRecord,
        candidate: CandidateRecord,
        report: CheckReport,
        samples: list[dict[str, Any]],
        tags: dict[str, str],
    ) -> JudgeOutcome:
        assert candidate.code is not None
        return await judge(
            self.judge_model,
            keyword=task.prompt_keyword,
            code=candidate.code,
            samples=samples,
            report=report,
            max_tokens=self.settings.judge_max_tokens,
            tags=tags,
        )

    def _finish(
        self, candidate: CandidateRecord, outcome: Any, reason: str, feedback: str | None = None
    ) -> CandidateRecord:
        done = candidate.model_copy(
            update={
                "outcome": outcome,
                "reason": _first_line(reason, 300),
                "feedback": feedback,
                "finished_at": datetime.now(UTC),
            }
        )
        self.catalog.update_candidate(done)
        return done

    def _accept(
        self,
        task: TaskRecord,
        candidate: CandidateRecord,
        report: CheckReport,
        verdict: Verdict,
        samples: list[dict[str, Any]],
        calibration: tuple[CalibrationRecord, list[SolverAttempt]] | None,
        fingerprint: EnvFingerprint,
    ) -> CandidateRecord:
        assert candidate.code is not None and candidate.code_sha256 is not None
        assert report.env_name is not None and report.max_difficulty is not None
        done = candidate.model_copy(
            update={
                "passed_judge": True,
                "outcome": "accepted",
                "reason": "accepted",
                "finished_at": datetime.now(UTC),
            }
        )
        rounds = self.catalog.candidates(task.task_id)
        lineage = Lineage(
            candidate_ids=[c.candidate_id for c in rounds if c.round <= candidate.round],
            call_ids=self.catalog.call_ids(task_id=task.task_id),
        )
        env = EnvironmentRecord(
            env_id=env_id_for(report.env_name, candidate.code_sha256),
            name=report.env_name,
            keyword=task.keyword,
            description=report.description,
            code=candidate.code,
            code_sha256=candidate.code_sha256,
            max_difficulty=report.max_difficulty,
            has_solution=bool(report.has_solution),
            run_id=self.run_id,
            task_id=task.task_id,
            candidate_id=candidate.candidate_id,
            check_metrics={c.name: c.metrics for c in report.checks if c.metrics},
            judge_scores=verdict.scores,
            lineage=lineage,
            samples=samples,
            fingerprint=fingerprint.model_dump(mode="json"),
            # Without calibration, an environment with no gold answer has nothing that shows it
            # solvable: kept, but not training material until a solver passes it.
            status=calibration[0].status
            if calibration
            else ("accepted" if report.has_solution else "unproven"),
        )
        final_task = task.model_copy(
            update={
                "status": "accepted",
                "rounds": candidate.round,
                "reason": None,
                "env_id": env.env_id,
                "updated_at": datetime.now(UTC),
            }
        )
        env_id = self.catalog.accept(env, done, final_task, calibration)
        if env_id not in self._index():
            self._index().add(env_id, fingerprint)
        status = "" if env.status == "accepted" else f" (status {env.status})"
        self.log(f"{task.keyword!r}: accepted as {env_id} in round {candidate.round}{status}")
        return done


def abort_if_fatal(exc: LLMError) -> None:
    """Faults every further call would repeat stop the run instead of failing task after task."""
    if isinstance(exc, ReplayMissError) or (
        isinstance(exc, ProviderError) and not exc.transient and exc.status_code in _FATAL_STATUS
    ):
        raise RunAborted(str(exc)) from None


def _first_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _judge_feedback(verdict: Verdict) -> str:
    scores = ", ".join(f"{name} {value}/5" for name, value in verdict.scores.items())
    return (
        "The module passed every automatic check, but the reviewer rejected it.\n"
        f"Reviewer's scores: {scores}.\n"
        f"Reviewer's feedback:\n{verdict.feedback}"
    )
