"""The LLM judge: a second opinion on candidates that already passed the checks.

The checks prove the module is mechanically sound (deterministic, diverse, a verifier that rejects
junk and near-misses). They cannot tell whether it is the task the keyword asked for, whether the
question is fair, or whether the verifier checks the real constraints rather than a convenient
subset. The judge reads the code, sampled questions with their gold answers at the lowest and the
highest difficulty, and the check results, and answers with a structured ``Verdict``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from resyn.checks.report import CheckReport, clip
from resyn.llm import Model, StructuredOutputError
from resyn.sandbox import Sandbox, SandboxConfig
from resyn.synth import prompts

#: How many questions the judge sees per difficulty level it is shown (lowest and highest).
SAMPLES_PER_LEVEL = 2


class Verdict(BaseModel):
    """The judge's structured answer. Flat on purpose: every provider's structured output handles
    a flat object with integer bounds; nested ``$ref`` schemas are less portable."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    faithfulness: int = Field(ge=1, le=5)
    """Is this the task the keyword names (not an easier or different one)?"""
    self_contained: int = Field(ge=1, le=5)
    """Does the question state everything needed, including the exact answer format?"""
    verifier_soundness: int = Field(ge=1, le=5)
    """Does verify check the real constraints, accepting every valid answer and no wrong one?"""
    non_triviality: int = Field(ge=1, le=5)
    """Does solving it take reasoning (not a lookup or a copy from the question)?"""
    difficulty_scaling: int = Field(ge=1, le=5)
    """Do higher levels make the problem meaningfully harder?"""
    accept: bool
    """Whether the environment is good training material as it stands."""
    feedback: str
    """For a rejection: what to change, concretely. For an acceptance: remarks, may be empty."""

    @property
    def scores(self) -> dict[str, int]:
        return {
            "faithfulness": self.faithfulness,
            "self_contained": self.self_contained,
            "verifier_soundness": self.verifier_soundness,
            "non_triviality": self.non_triviality,
            "difficulty_scaling": self.difficulty_scaling,
        }


class JudgeOutcome(BaseModel):
    """What judging one candidate produced: a verdict, or the error of the last attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict | None
    error: str | None
    call_ids: list[str]
    """The judge calls made (two when the first verdict was malformed)."""


def judge_samples(code: str, max_difficulty: int, config: SandboxConfig) -> list[dict[str, Any]]:
    """Questions and gold answers at the lowest and highest difficulty, drawn in the sandbox."""
    levels = sorted({1, max_difficulty})
    keys = [(seed, level) for level in levels for seed in range(SAMPLES_PER_LEVEL)]
    with Sandbox(code, filename="candidate.py", config=config) as sandbox:
        if not sandbox.load().ok:
            return []
        results = sandbox.sample(keys)
    samples = []
    for (seed, level), result in zip(keys, results, strict=True):
        if not result.ok or not isinstance(result.value, dict):
            continue
        gold = result.value.get("solution")
        samples.append(
            {
                "difficulty": level,
                "seed": seed,
                "question": clip(str(result.value.get("question")), 3000),
                "gold": clip(gold, 1000) if isinstance(gold, str) else None,
            }
        )
    return samples


#: Checks whose summary is a wall-clock measurement: it differs on every run, and a prompt that
#: differs cannot be answered from the call log (``--reuse-calls``). The judge gets the verdict only.
_MEASURED = frozenset({"timing"})


def check_lines(report: CheckReport) -> list[dict[str, str]]:
    """The check results as the judge sees them: name, status and the one-line summary."""
    return [
        {
            "name": c.name,
            "status": c.status,
            "summary": ("within the time limits" if c.status == "pass" else "too slow")
            if c.name in _MEASURED
            else c.summary,
        }
        for c in report.checks
    ]


async def judge(
    model: Model,
    *,
    keyword: str,
    code: str,
    samples: list[dict[str, Any]],
    report: CheckReport,
    max_tokens: int,
    tags: dict[str, str],
) -> JudgeOutcome:
    """Ask ``model`` for a verdict. A malformed verdict is asked for once more (the model's
    sampling may well produce a valid one); a second failure is the outcome's ``error``. Transport
    and provider errors other than a malformed answer propagate to the caller."""
    variables = {"keyword": keyword, "code": code, "samples": samples, "checks": check_lines(report)}
    call_ids: list[str] = []
    error = ""
    for _attempt in range(2):
        call_id = uuid.uuid4().hex
        call_ids.append(call_id)
        request = prompts.request(
            "judge",
            variables,
            max_tokens=max_tokens,
            purpose="judge",
            tags={**tags, "call_id": call_id},
            output=Verdict,
        )
        try:
            response = await model.generate(request)
            return JudgeOutcome(verdict=response.output(Verdict), error=None, call_ids=call_ids)
        except StructuredOutputError as exc:
            error = str(exc)
    return JudgeOutcome(verdict=None, error=f"malformed verdict twice: {error}", call_ids=call_ids)
