"""The outcome of a check run: per-check results with evidence, and the feedback text built from
them that the synthesis loop hands back to the writing LLM."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pass", "fail", "warn", "skip"]

_TEXT_LIMIT = 600


def clip(text: str | None, limit: int = _TEXT_LIMIT) -> str | None:
    """Shorten evidence text so a report stays readable and a prompt stays small."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 40] + f"… [{len(text) - limit + 40} more characters]"


class Evidence(BaseModel):
    """One concrete observation behind a failure: enough to reproduce it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detail: str
    seed: int | None = None
    difficulty: int | None = None
    question: str | None = None
    answer: str | None = None
    expected: str | None = None
    score: float | None = None
    line: int | None = None
    traceback: str | None = None

    def render(self) -> str:
        parts = [self.detail]
        if self.seed is not None:
            parts.append(f"seed={self.seed} difficulty={self.difficulty}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.question is not None:
            parts.append(f"question: {clip(self.question, 300)!r}")
        if self.expected is not None:
            parts.append(f"gold: {clip(self.expected, 200)!r}")
        if self.answer is not None:
            parts.append(f"answer tried: {clip(self.answer, 200)!r}")
        if self.score is not None:
            parts.append(f"score: {self.score:g}")
        text = "; ".join(parts)
        if self.traceback:
            text += "\n" + (clip(self.traceback, 1200) or "")
        return text


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    status: Status
    summary: str
    metrics: dict[str, float] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)


class CheckReport(BaseModel):
    """Everything ``resyn check`` found out about one environment module."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    code_sha256: str
    env_name: str | None
    description: str | None = None
    """The environment class's docstring (what the task is), when the module loaded."""
    max_difficulty: int | None
    has_solution: bool | None
    isolation: str
    accepted: bool
    seconds: float
    checks: list[CheckResult]
    samples: list[dict[str, Any]] = Field(default_factory=list)
    """Questions and gold answers (``None``: no reference) of the first seeds at the lowest and the
    highest level, as the sweep drew them: what the judge is shown, without another sandbox."""

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    def feedback(self, max_evidence: int = 3) -> str:
        """Failures with their evidence, phrased for the LLM that will revise the module."""
        if self.accepted:
            return "All checks passed."
        lines = [f"The module was rejected by {len(self.failures)} check(s):"]
        for check in self.failures:
            lines.append(f"\n## {check.name}: {check.summary}")
            lines.extend(f"- {ev.render()}" for ev in check.evidence[:max_evidence])
        warnings = [c for c in self.checks if c.status == "warn"]
        if warnings:
            lines.append("\nWarnings (not blocking):")
            lines.extend(f"- {c.name}: {c.summary}" for c in warnings)
        return "\n".join(lines)
