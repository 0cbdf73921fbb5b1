"""The rows of the catalog as pydantic models: what the synthesis loop writes and readers get back.

Vocabulary:

* a **run** is one ``resyn synthesize --run NAME`` job (resumable: same name, same run);
* a **task** is one keyword within a run;
* a **candidate** is one module version, i.e. one round of a task (round 1 from the ``write``
  prompt, later rounds from ``revise`` with the previous candidate as ``parent_id``);
* an **environment** is an accepted candidate, with its lineage back to the calls that made it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["running", "finished", "interrupted", "stopped", "failed"]
"""``stopped``: ``--budget-usd`` or ``--max-calls`` was reached; rerun with a larger one to continue."""
TaskStatus = Literal["pending", "accepted", "rejected", "error"]
"""``pending``: not finished (never started, or stopped mid-way); ``accepted``/``rejected``: final;
``error``: stopped by an infrastructure fault (provider, judge failure), retried on resume."""

EnvStatus = Literal["accepted", "too_easy", "too_hard", "unproven"]
"""``accepted``: training material (calibrated as learnable, or not calibrated). The others are kept
but not exported by default: ``too_easy`` (the solver passes ≥ 95 % at every level), ``too_hard``
(it never passes, though gold answers verify), ``unproven`` (it never passes and nothing shows the
task solvable: no gold answer, or no verified attempt)."""

CandidateOutcome = Literal[
    "accepted",
    "duplicate",  # passed checks and judge, but near-duplicates an environment already in the catalog
    "no_code",  # no module could be extracted from the answer (no code, truncated, wrong contract)
    "checks_failed",  # static or sandboxed checks rejected it
    "judge_rejected",  # the judge said no
    "judge_error",  # the judge failed to give a valid verdict twice
    "error",  # an infrastructure fault (provider error, sandbox unavailable)
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class RunRecord(_Row):
    run_id: str
    """The run's name (``--run NAME``, or generated from the time)."""
    created_at: datetime = Field(default_factory=utcnow)
    config: dict[str, Any]
    """The run's configuration as given (models, rounds, concurrency, keywords file, …)."""
    resyn_version: str
    status: RunStatus = "running"
    finished_at: datetime | None = None


class TaskRecord(_Row):
    task_id: str
    """Stable id: derived from run id and keyword, so a resumed run finds its tasks again."""
    run_id: str
    keyword: str
    position: int
    """Order of the keyword in the run's input."""
    status: TaskStatus = "pending"
    rounds: int = 0
    """Rounds finished so far."""
    reason: str | None = None
    """One line: why it was rejected or errored (the last round's reason)."""
    env_id: str | None = None
    """The accepted environment, when ``status`` is ``accepted``."""
    updated_at: datetime = Field(default_factory=utcnow)
    brief: str | None = None
    """For a proposed task: the idea's description, given to the writer with the keyword."""

    @property
    def prompt_keyword(self) -> str:
        """What the writer and the judge are told the task is."""
        return f"{self.keyword}: {self.brief}" if self.brief else self.keyword


class CandidateRecord(_Row):
    candidate_id: str
    task_id: str
    run_id: str
    keyword: str
    round: int = Field(ge=1)
    parent_id: str | None = None
    """The candidate this one revises (``None`` for round 1)."""
    write_call_id: str | None = None
    """The LLM call whose answer this module was extracted from."""
    code: str | None = None
    """The extracted module (``None`` when extraction failed)."""
    code_sha256: str | None = None
    env_name: str | None = None
    extracted: bool = False
    passed_static: bool = False
    passed_checks: bool = False
    passed_judge: bool = False
    outcome: CandidateOutcome | None = None
    """``None`` while the round is in progress (a crash leaves it so)."""
    reason: str | None = None
    """One line: the main reason of the outcome."""
    feedback: str | None = None
    """The text handed to the ``revise`` prompt of the next round."""
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class VerdictRecord(_Row):
    verdict_id: str
    candidate_id: str
    call_id: str | None
    """The judge call that gave it (the last one when the first was malformed)."""
    accept: bool | None
    """``None`` for a judge failure (``error`` says why)."""
    feedback: str | None = None
    scores: dict[str, int] = Field(default_factory=dict)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    verdict: dict[str, Any] | None = None
    """The whole structured verdict, so a resumed round reuses it instead of asking again."""


class Lineage(_Row):
    candidate_ids: list[str]
    """Every round of the task, first to last (the last is the accepted one)."""
    call_ids: list[str]
    """Every LLM call of the task: writes, revisions and judge calls."""


class EnvironmentRecord(_Row):
    env_id: str
    """``<name>-<first 8 hex digits of code_sha256>``: stable and readable."""
    name: str
    keyword: str
    description: str | None
    code: str
    code_sha256: str
    max_difficulty: int
    has_solution: bool
    run_id: str
    task_id: str
    candidate_id: str
    check_metrics: dict[str, dict[str, float]]
    """Per check, the metrics of the accepting check run."""
    judge_scores: dict[str, int]
    lineage: Lineage
    created_at: datetime = Field(default_factory=utcnow)
    status: EnvStatus = "accepted"
    samples: list[dict[str, Any]] = Field(default_factory=list)
    """Sampled questions with gold answers (lowest and highest level), as the judge saw them."""
    fingerprint: dict[str, Any] | None = None
    """Code and question signatures for near-duplicate detection (``resyn.synth.similarity``)."""


class ProposalRecord(_Row):
    """One task idea the ``propose`` prompt produced from a seed keyword."""

    proposal_id: str
    run_id: str
    seed_keyword: str
    keyword: str
    description: str
    call_id: str | None
    duplicate_of: str | None = None
    """The idea or catalog keyword this one near-duplicates; ``None`` when it was kept."""
    similarity: float | None = None
    created_at: datetime = Field(default_factory=utcnow)


class DuplicateRecord(_Row):
    """A near-duplicate that was skipped, with what it duplicates (never silently dropped)."""

    duplicate_id: str
    run_id: str | None
    kind: Literal["proposal", "environment"]
    subject: str
    """The proposal's keyword, or the duplicate candidate's id."""
    duplicate_of: str
    """The keyword or environment id it duplicates."""
    similarity: float
    detail: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class CalibrationLevel(_Row):
    difficulty: int
    attempts: int
    """Solver attempts that produced an answer to score (failed calls are not attempts)."""
    correct: int
    failed_calls: int = 0
    pass_rate: float | None
    """``correct / attempts``; ``None`` when no attempt could be made."""
    learnability: float | None
    """``4 p (1 - p)``: 1 at p = 0.5, 0 at p = 0 or 1 — how much RL signal the level gives."""


class CalibrationRecord(_Row):
    """One solver calibration of one environment."""

    calibration_id: str
    env_id: str
    run_id: str | None
    solver_model: str
    instances_per_level: int
    attempts_per_instance: int
    status: EnvStatus
    levels: list[CalibrationLevel]
    learnability: float
    """Mean learnability over the levels with attempts (what ``--sort learnability`` ranks by)."""
    any_verified: bool
    """Some attempt scored 1.0: the task is shown solvable even without a gold answer."""
    created_at: datetime = Field(default_factory=utcnow)


class SolverAttempt(_Row):
    attempt_id: str
    calibration_id: str
    env_id: str
    seed: int
    difficulty: int
    call_id: str | None
    answer: str | None
    """The extracted answer (``None`` when the call failed or nothing could be extracted)."""
    score: float | None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


def env_id_for(name: str, code_sha256: str) -> str:
    return f"{name}-{code_sha256[:8]}"
