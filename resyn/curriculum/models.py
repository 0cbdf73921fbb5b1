"""What a curriculum is configured with and hands out: its settings, its items, its error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from resyn.errors import ResynError
from resyn.export.model import prompt_text

__all__ = ["STATE_FORMAT", "TRAIN_SEED_RANGE", "CurriculumError", "CurriculumItem", "CurriculumSettings"]

TRAIN_SEED_RANGE = 2**40
"""Training seeds stay below this; exports draw their non-train splits from ``[2**40, ...)``
(``resyn.export.plan.SEED_RANGE``)."""

STATE_FORMAT = "resyn.curriculum/1"
"""The ``format`` of :meth:`Curriculum.state_dict`; another format is refused on load."""


class CurriculumError(ResynError):
    """A curriculum that cannot go on (no environment left) or a state that does not belong to
    it; the message names the fix."""


class CurriculumSettings(BaseModel):
    """How a :class:`Curriculum` moves levels and weighs environments. Each default says why."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    window: int = Field(64, ge=1, le=100_000)
    """Recent rewards kept per (environment, level). 64 gives a pass-rate estimate within about
    ±0.1 at p = 0.5 and forgets a policy that has moved on within a few steps."""

    min_samples: int = Field(16, ge=1)
    """Rewards at the current level, since arriving there, before the level may move again: a
    move on four lucky answers would make the level oscillate. With GRPO groups every completion
    is a sample, so two groups of eight suffice."""

    raise_above: float = Field(0.8, gt=0, le=1)
    """Move up when the recent pass rate at the current level is at least this."""

    lower_below: float = Field(0.2, ge=0, lt=1)
    """Move down when the recent pass rate at the current level is at most this."""

    step: int = Field(1, ge=1)
    """Levels per move."""

    success_threshold: float = Field(1.0, ge=0, le=1)
    """A reward at least this (less 1e-9) is a pass. 1.0 matches solver calibration (only fully
    correct answers count); lower it for environments that give partial credit."""

    reweight: float = Field(0.5, ge=0, le=1)
    """Share of the draw that follows learnability (0: base weights only; 1: learnability only).
    Half keeps every environment near its base share while still favouring the ones that teach."""

    learnability_floor: float = Field(0.1, gt=0, le=1)
    """Least learnability an environment counts with, so one that is all-pass or all-fail at
    the end of its range is still drawn (its pass rate can change only if it is)."""

    temperature: float = Field(1.0, gt=0)
    """Learnability is raised to ``1 / temperature``: below 1 sharpens the preference for
    intermediate pass rates, above 1 flattens it."""

    seed_range: int = Field(TRAIN_SEED_RANGE, ge=1, le=TRAIN_SEED_RANGE)
    """Seeds are drawn from ``[0, seed_range)``; at most ``2**40`` so that training never uses
    an export's held-out seeds."""

    max_pending: int = Field(100_000, ge=1)
    """Items handed out and not yet rewarded that are remembered; beyond it the oldest expire
    (counted), so a consumer that never calls ``update`` cannot grow memory without bound."""

    max_render_failures: int = Field(8, ge=1)
    """Consecutive render failures at one level before the environment's range is capped below
    it (or the environment dropped, at the bottom of its range)."""

    prompt_format: Literal["chat", "text"] = "chat"
    """The ``prompt`` of iterated rows: chat messages (system + user) or one string."""

    prefetch: int = Field(32, ge=1)
    """Items rendered at a time when iterating: one sandbox round trip per ``prefetch`` rows.
    Rewards fed back reach the draw at the next refill."""

    @model_validator(mode="after")
    def _thresholds(self) -> CurriculumSettings:
        if not self.lower_below < self.raise_above:
            raise ValueError(
                f"lower_below ({self.lower_below}) must be below raise_above ({self.raise_above})"
            )
        return self


class CurriculumItem(BaseModel):
    """One instance handed to the trainer; send its reward back with :meth:`Curriculum.update`
    (the item itself or its ``item_id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str
    env_id: str
    code_sha256: str
    seed: int
    difficulty: int
    question: str
    instance_json: str
    """The instance as compact JSON text, what :class:`~resyn.reward.RewardScorer` verifies."""
    solution: str | None = None
    """The environment's reference answer, when it has one (for evaluation, never needed)."""
    messages: list[dict[str, str]]
    """The chat: :data:`~resyn.export.model.SYSTEM_PROMPT` as system message, then the question."""

    def prompt_text(self) -> str:
        """The prompt as one string (the answer-format instruction after the question)."""
        return prompt_text(self.question)

    def row(self, prompt_format: Literal["chat", "text"] = "chat") -> dict[str, Any]:
        """A dataset row: ``prompt`` plus the columns a reward function needs."""
        return {
            "prompt": [dict(m) for m in self.messages] if prompt_format == "chat" else self.prompt_text(),
            "item_id": self.item_id,
            "env_id": self.env_id,
            "code_sha256": self.code_sha256,
            "seed": self.seed,
            "difficulty": self.difficulty,
            "instance_json": self.instance_json,
        }
