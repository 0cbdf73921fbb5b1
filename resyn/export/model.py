"""What an export is made of: the rows every format writes, the environments they need, and the
manifest that describes the directory.

Every trainer format is a different spelling of the same :class:`ExportRow`: a rendered question,
the instance it was rendered from (as JSON text, the one type every dataset library stores), and
what identifies that instance again — environment id, code hash, ``(seed, difficulty)``. The
reward entry point of each format turns a row back into a :class:`resyn.reward.ScoreItem`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ANSWER_FORMAT",
    "MANIFEST_NAME",
    "SYSTEM_PROMPT",
    "ExportManifest",
    "ExportRow",
    "ExportedEnv",
    "chat_messages",
    "ground_truth",
    "prompt_text",
]

MANIFEST_NAME = "manifest.json"
ENVS_DIR = "envs"
"""Environment modules live in ``<out>/envs/<env_id>.py``: the file stem is the id
:meth:`resyn.reward.RewardScorer.from_files` serves them under."""

ANSWER_FORMAT = (
    "Think step by step, then give only your final answer inside <answer></answer> tags, "
    "in exactly the format the question asks for."
)
"""How a policy is told to mark its answer; :func:`resyn.grading.extract_answer` takes the last
``<answer>`` block (then ``\\boxed{}``, then a "final answer:" line)."""

SYSTEM_PROMPT = ANSWER_FORMAT
"""The system message of chat-formatted rows."""


def chat_messages(question: str, system_prompt: str | None = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The OpenAI-style chat a policy sees: the answer-format system message, then the question.
    Exports and :class:`resyn.Curriculum` items both use it, so a policy trained on one sees
    the same prompt from the other."""
    chat = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*chat, {"role": "user", "content": question}]


def prompt_text(question: str, system_prompt: str | None = SYSTEM_PROMPT) -> str:
    """The prompt as one string, for trainers that take plain text (the answer-format
    instruction follows the question)."""
    return f"{question}\n\n{system_prompt}" if system_prompt else question


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ExportedEnv(_Frozen):
    """One environment an export contains."""

    env_id: str
    name: str
    keyword: str
    code_sha256: str
    max_difficulty: int
    has_solution: bool
    module: str
    """Path of its module inside the export directory (``envs/<env_id>.py``)."""
    description: str | None = None


class ExportRow(_Frozen):
    """One instance, rendered."""

    split: str
    index: int
    """Position within its split (0-based), the ``extra_info.index`` verl expects."""
    env_id: str
    env_name: str
    code_sha256: str
    seed: int
    difficulty: int
    question: str
    instance_json: str
    """The instance as compact JSON text; ``verify`` sees ``json.loads`` of it."""
    solution: str | None = None
    """The environment's reference answer (``None`` when it has none): for evaluation and SFT
    warm-up, never needed for scoring."""

    def messages(self, system_prompt: str | None = SYSTEM_PROMPT) -> list[dict[str, str]]:
        """The OpenAI-style chat for this row."""
        return chat_messages(self.question, system_prompt)

    def prompt_text(self, system_prompt: str | None = SYSTEM_PROMPT) -> str:
        """The prompt as one string (see :func:`prompt_text`)."""
        return prompt_text(self.question, system_prompt)


def ground_truth(row: ExportRow) -> str:
    """A row's identity as one JSON string: what trainers carry as a "label" or "ground truth"
    column (verl's ``reward_model.ground_truth``, OpenRLHF's label key, verifiers' ``answer``).
    It holds the instance, so scoring never regenerates it; ``seed`` and ``difficulty`` let a
    reader regenerate or audit it."""
    return json.dumps(
        {
            "env_id": row.env_id,
            "code_sha256": row.code_sha256,
            "seed": row.seed,
            "difficulty": row.difficulty,
            "instance_json": row.instance_json,
        },
        separators=(",", ":"),
    )


class SplitCount(_Frozen):
    rows: int
    """Rows written."""
    requested: int
    """Rows the plan asked for; fewer were written when an environment has fewer distinct
    instances than asked (duplicates are never written twice, nor across splits)."""


class ExportManifest(_Frozen):
    """``manifest.json``: what is in an export directory and how it was made."""

    format: str
    resyn_version: str
    python_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    command: str
    """The command line (or API call) that made this directory."""
    catalog: str | None
    seed: int
    settings: dict[str, Any]
    """The resolved export settings (n per environment, difficulty, mix, splits)."""
    environments: list[ExportedEnv]
    splits: dict[str, SplitCount]
    rows_per_env: dict[str, dict[str, int]]
    """Per split, rows per environment id."""
    files: dict[str, str]
    """Every file of the directory but the manifest, with its sha256."""
    entry_point: str | None = None
    """How the trainer reaches the reward function, e.g. ``reward.py:reward_func``."""
    shortfalls: list[str] = Field(default_factory=list)
    """Human-readable notes on rows that could not be drawn (too few distinct instances,
    instances that failed to render)."""
