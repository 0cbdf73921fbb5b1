"""What a report shows, read from the catalog into one validated :class:`ReportData` document.

Reading and rendering are separate so each can be tested on its own: this module knows the catalog
and nothing about HTML; :mod:`resyn.report.render` knows HTML and nothing about DuckDB. Everything
comes through the public :class:`~resyn.catalog.Catalog` API: runs, tasks, statistics and
duplicates through its typed methods, and the per-round detail (candidates, check findings,
verdicts, environments, calibrations) through :meth:`Catalog.sql` in one read-only query per table
for the whole scope, decoded into the catalog's own record models. The typed API reads one
candidate at a time, which costs seconds for a run of hundreds of environments. The catalog should
be opened read-only: a report never writes.

Text in here is untrusted (module code, questions, LLM feedback): it is kept verbatim, and the
renderer escapes it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from resyn.catalog import (
    CandidateRecord,
    Catalog,
    CatalogError,
    CatalogStats,
    EnvironmentRecord,
    RunRecord,
    TaskRecord,
)
from resyn.catalog.queries import SqlResult
from resyn.catalog.records import CalibrationRecord, DuplicateRecord, EnvStatus, VerdictRecord
from resyn.catalog.rows import decode_many
from resyn.checks.report import CheckResult, clip

M = TypeVar("M", bound=BaseModel)

EVIDENCE_PER_CHECK = 3
"""Evidence items shown per failed check: enough to see the pattern, as in the revise prompt."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CheckFinding(_Model):
    """One failed (or warning) check of a round, with the first pieces of its evidence."""

    name: str
    status: str
    summary: str
    evidence: list[str] = Field(default_factory=list)
    """Each piece of evidence rendered as one text (seed, difficulty, question, answer, traceback)."""


class JudgeVerdict(_Model):
    accept: bool | None
    """``None`` when the judge failed to give a valid verdict (``error`` says why)."""
    feedback: str | None
    scores: dict[str, int]
    error: str | None


class Revision(_Model):
    """One round of a task (one candidate module), with what happened to it."""

    candidate_id: str
    round: int
    parent_id: str | None
    """The candidate this round revises, as recorded."""
    children: list[str] = Field(default_factory=list)
    """Candidates that name this one as their parent (the revisions of this round)."""
    outcome: str | None
    """The candidate's outcome; ``None`` for a round that never finished."""
    reason: str | None
    extracted: bool
    passed_static: bool
    passed_checks: bool
    passed_judge: bool
    checked: bool
    """A check report is stored for this round."""
    check_seconds: float | None = None
    failures: list[CheckFinding] = Field(default_factory=list)
    warnings: list[CheckFinding] = Field(default_factory=list)
    verdict: JudgeVerdict | None = None
    """The judge's last verdict on this round, when it got that far."""


class Sample(_Model):
    """A question with its gold answer, as the judge saw it."""

    difficulty: int | None
    seed: int | None
    question: str
    gold: str | None


class EnvironmentCard(_Model):
    """An environment of the catalog with its samples, calibration and revision history."""

    env_id: str
    name: str
    keyword: str
    status: EnvStatus
    description: str | None
    run_id: str
    task_id: str
    max_difficulty: int
    has_solution: bool
    created_at: datetime
    judge_scores: dict[str, int]
    samples: list[Sample]
    code: str
    calibration: CalibrationRecord | None
    """The latest calibration; ``None`` when the environment was never calibrated."""
    calibrations: int
    """How many calibrations the environment has had (the latest is shown)."""
    revisions: list[Revision]
    """Every round of the task that produced it, first to last."""


class TaskSummary(_Model):
    """A keyword that did not (or not yet) become an environment."""

    task_id: str
    run_id: str
    keyword: str
    status: str
    rounds: int
    reason: str | None
    """The last round's reason: why it was rejected or stopped."""
    revisions: list[Revision]


class JudgeRejection(_Model):
    task_id: str
    keyword: str
    candidate_id: str
    round: int
    feedback: str | None
    scores: dict[str, int]


class ReportData(_Model):
    """Everything the HTML report shows, for one run or for the whole catalog."""

    catalog_path: str
    generated_at: datetime
    run_id: str | None
    """The run reported on; ``None`` for the whole catalog."""
    runs: list[RunRecord]
    """The runs in scope (one with ``run_id``, else all, oldest first)."""
    stats: CatalogStats
    tasks: int
    """Keywords in scope."""
    rounds_to_acceptance: dict[int, int]
    """Accepted tasks by the number of rounds they took."""
    environments: list[EnvironmentCard]
    rejected: list[TaskSummary]
    """Tasks rejected for good, with their last reason."""
    unfinished: list[TaskSummary]
    """Tasks still ``pending`` or stopped by an ``error`` (retried when the run resumes)."""
    judge_rejections: list[JudgeRejection]
    duplicates: list[DuplicateRecord]

    @property
    def empty(self) -> bool:
        """Nothing to report: no runs (an empty catalog) or a run without a single keyword."""
        return not self.runs or self.tasks == 0


def build_report_data(catalog: Catalog, run_id: str | None = None) -> ReportData:
    """Read what the report shows for ``run_id`` (or the whole catalog) from an open catalog.

    An unknown run is a :class:`CatalogError`: a report of nothing would hide a misspelt name.
    Rounds, check findings, verdicts, environments and calibrations are each read with one query
    over the whole scope (see :class:`_Reader`), not one per task: a report on a run of 500
    environments would otherwise spend seconds in thousands of point queries. The aggregates come
    from :meth:`Catalog.stats`, so the page's numbers are those of ``resyn catalog stats``.
    """
    if run_id is not None:
        run = catalog.get_run(run_id)
        if run is None:
            raise CatalogError(f"no run {run_id!r} in catalog {catalog.path}")
        runs = [run]
    else:
        runs = catalog.runs()
    tasks = [task for run in runs for task in catalog.tasks(run.run_id)]
    in_run = _in_run(run_id)
    reader = _Reader(catalog)
    candidates = reader.select(
        CandidateRecord,
        "candidates",
        f"SELECT * FROM candidates c WHERE {in_run} ORDER BY c.task_id, c.round, c.created_at",
    )
    revisions = _revisions(reader, candidates, in_run)
    by_task: dict[str, list[Revision]] = {task.task_id: [] for task in tasks}
    for candidate, revision in zip(candidates, revisions, strict=True):
        by_task.setdefault(candidate.task_id, []).append(revision)

    # The run's environments, and those its tasks were accepted as when the same module had
    # already been accepted in an earlier run (that environment's row names the earlier run).
    envs_in_scope = f"SELECT env_id FROM tasks c WHERE {in_run} AND c.env_id IS NOT NULL"
    env_filter = (
        "TRUE" if run_id is None else f"(c.run_id = {_literal(run_id)} OR c.env_id IN ({envs_in_scope}))"
    )
    environments = reader.select(
        EnvironmentRecord,
        "environments",
        f"SELECT * FROM environments c WHERE {env_filter} ORDER BY c.created_at, c.env_id",
    )
    latest: dict[str, CalibrationRecord] = {}
    counts: Counter[str] = Counter()
    for calibration in reader.select(
        CalibrationRecord,
        "calibrations",
        "SELECT k.* FROM calibrations k WHERE k.env_id IN "
        f"(SELECT c.env_id FROM environments c WHERE {env_filter}) ORDER BY k.created_at, k.calibration_id",
    ):
        latest[calibration.env_id] = calibration  # oldest first: the last one wins
        counts[calibration.env_id] += 1

    cards = []
    for env in environments:
        # The rounds shown are those of the task in scope that produced it (its own task, or this
        # run's task that was accepted as the same module).
        chain_task = next((t.task_id for t in tasks if t.env_id == env.env_id), env.task_id)
        cards.append(
            EnvironmentCard(
                env_id=env.env_id,
                name=env.name,
                keyword=env.keyword,
                status=env.status,
                description=env.description,
                run_id=env.run_id,
                task_id=env.task_id,
                max_difficulty=env.max_difficulty,
                has_solution=env.has_solution,
                created_at=env.created_at,
                judge_scores=env.judge_scores,
                samples=[_sample(raw) for raw in env.samples],
                code=env.code,
                calibration=latest.get(env.env_id),
                calibrations=counts[env.env_id],
                revisions=by_task.get(chain_task, []),
            )
        )

    def summary(task: TaskRecord) -> TaskSummary:
        return TaskSummary(
            task_id=task.task_id,
            run_id=task.run_id,
            keyword=task.keyword,
            status=task.status,
            rounds=task.rounds,
            reason=task.reason,
            revisions=by_task[task.task_id],
        )

    judge_rejections = [
        JudgeRejection(
            task_id=task.task_id,
            keyword=task.keyword,
            candidate_id=rev.candidate_id,
            round=rev.round,
            feedback=rev.verdict.feedback if rev.verdict else None,
            scores=rev.verdict.scores if rev.verdict else {},
        )
        for task in tasks
        for rev in by_task[task.task_id]
        if rev.outcome == "judge_rejected"
    ]
    return ReportData(
        catalog_path=str(catalog.path),
        generated_at=datetime.now(UTC),
        run_id=run_id,
        runs=runs,
        stats=catalog.stats(run_id),
        tasks=len(tasks),
        rounds_to_acceptance=dict(sorted(Counter(t.rounds for t in tasks if t.status == "accepted").items())),
        environments=cards,
        rejected=[summary(t) for t in tasks if t.status == "rejected"],
        unfinished=[summary(t) for t in tasks if t.status in ("pending", "error")],
        judge_rejections=judge_rejections,
        duplicates=catalog.duplicates(run_id),
    )


# -- reading in bulk --------------------------------------------------------------------------------
_NO_LIMIT = 2**62
"""``Catalog.sql`` returns at most ``limit`` rows; a report needs all of its scope."""


def _literal(value: str) -> str:
    """A SQL string literal: ``Catalog.sql`` takes no parameters. DuckDB's standard strings have
    no backslash escapes, so doubling the quotes is the whole of it (and the statement runs
    read-only, in a transaction that is rolled back, whatever it says)."""
    return "'" + value.replace("'", "''") + "'"


def _in_run(run_id: str | None) -> str:
    """The condition on a table aliased ``c`` that keeps the rows of the run (all rows for none)."""
    return "TRUE" if run_id is None else f"c.run_id = {_literal(run_id)}"


class _Reader:
    """Whole-scope reads through :meth:`Catalog.sql`, the API's door for read-only queries (the
    typed API reads one task, candidate or environment at a time).

    Rows are decoded the way the catalog decodes its own. Which columns hold JSON is read from the
    catalog's schema rather than listed here, so a JSON column added by a later migration decodes
    without a change to the report.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.json_columns: dict[str, set[str]] = {}
        for table, column in self.sql(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND data_type = 'JSON'"
        ).rows:
            self.json_columns.setdefault(str(table), set()).add(str(column))

    def sql(self, query: str) -> SqlResult:
        return self.catalog.sql(query, limit=_NO_LIMIT)

    def select(self, model: type[M], table: str, query: str) -> list[M]:
        """The rows of ``query`` (columns named as in ``table``) as ``model`` records."""
        result = self.sql(query)
        return decode_many(model, result.columns, result.rows, self.json_columns.get(table, set()))


def _revisions(reader: _Reader, candidates: list[CandidateRecord], in_run: str) -> list[Revision]:
    """The candidates as rounds with their check findings and last verdict, children linked to
    parents; three queries for the whole scope."""
    children: dict[str, list[str]] = {}
    for candidate in candidates:
        if candidate.parent_id is not None:
            children.setdefault(candidate.parent_id, []).append(candidate.candidate_id)
    joined = f"JOIN candidates c ON c.candidate_id = x.candidate_id WHERE {in_run}"
    seconds = {
        str(cid): float(value)
        for cid, value in reader.sql(f"SELECT x.candidate_id, x.seconds FROM check_reports x {joined}").rows
    }
    found = reader.sql(
        "SELECT x.candidate_id, x.check_name AS name, x.status, x.summary, x.metrics, x.evidence "
        f"FROM check_results x {joined} AND x.status IN ('fail', 'warn') ORDER BY x.candidate_id, x.position"
    )
    checks = decode_many(
        CheckResult, found.columns, found.rows, reader.json_columns.get("check_results", set())
    )
    findings: dict[str, list[CheckResult]] = {}
    for row, check in zip(found.rows, checks, strict=True):
        findings.setdefault(str(row[0]), []).append(check)
    verdicts: dict[str, VerdictRecord] = {}
    for verdict in reader.select(
        VerdictRecord, "verdicts", f"SELECT x.* FROM verdicts x {joined} ORDER BY x.created_at, x.verdict_id"
    ):
        verdicts[verdict.candidate_id] = verdict  # oldest first: the last one wins

    revisions = []
    for candidate in candidates:
        cid = candidate.candidate_id
        own = findings.get(cid, [])
        last = verdicts.get(cid)
        revisions.append(
            Revision(
                candidate_id=cid,
                round=candidate.round,
                parent_id=candidate.parent_id,
                children=children.get(cid, []),
                outcome=candidate.outcome,
                reason=candidate.reason,
                extracted=candidate.extracted,
                passed_static=candidate.passed_static,
                passed_checks=candidate.passed_checks,
                passed_judge=candidate.passed_judge,
                checked=cid in seconds,
                check_seconds=seconds.get(cid),
                failures=[_finding(c) for c in own if c.status == "fail"],
                warnings=[_finding(c) for c in own if c.status == "warn"],
                verdict=None
                if last is None
                else JudgeVerdict(
                    accept=last.accept, feedback=last.feedback, scores=last.scores, error=last.error
                ),
            )
        )
    return revisions


def _finding(check: CheckResult) -> CheckFinding:
    return CheckFinding(
        name=check.name,
        status=check.status,
        summary=check.summary,
        evidence=[ev.render() for ev in check.evidence[:EVIDENCE_PER_CHECK]],
    )


def _sample(raw: Any) -> Sample:
    """One stored sample, whatever its shape: samples are JSON the loop wrote from sandbox output,
    so a field may be missing or of another type; the page shows what there is."""
    data = raw if isinstance(raw, dict) else {"question": raw}

    def integer(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    question = data.get("question")
    gold = data.get("gold")
    return Sample(
        difficulty=integer(data.get("difficulty")),
        seed=integer(data.get("seed")),
        question=clip(question if isinstance(question, str) else str(question), 3000) or "",
        gold=None if gold is None else clip(gold if isinstance(gold, str) else str(gold), 1000),
    )
