"""Drawing instances from a sandboxed module: the raw material every dynamic check reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from resyn.checks.report import Evidence, clip
from resyn.sandbox import ItemResult, Sandbox


@dataclass(frozen=True, slots=True)
class Sample:
    """One ``(seed, difficulty)`` instance as the worker produced it (or the failure instead)."""

    seed: int
    difficulty: int
    result: ItemResult

    @property
    def ok(self) -> bool:
        return self.result.ok and isinstance(self.result.value, dict)

    @property
    def value(self) -> dict[str, Any]:
        value = self.result.value
        return value if isinstance(value, dict) else {}

    @property
    def instance(self) -> dict[str, Any]:
        instance = self.value.get("instance")
        return instance if isinstance(instance, dict) else {}

    @property
    def question(self) -> str:
        question = self.value.get("question")
        return question if isinstance(question, str) else ""

    @property
    def gold(self) -> str | None:
        solution = self.value.get("solution")
        return solution if isinstance(solution, str) else None

    @property
    def t_generate(self) -> float:
        t = self.value.get("t_generate")
        return float(t) if isinstance(t, int | float) else self.result.seconds

    def evidence(self, detail: str, **extra: Any) -> Evidence:
        return Evidence(
            detail=detail,
            seed=self.seed,
            difficulty=self.difficulty,
            question=clip(self.question) if self.ok else None,
            expected=clip(self.gold),
            **extra,
        )

    def failure_evidence(self) -> Evidence:
        return Evidence(
            detail=self.result.error or "no result",
            seed=self.seed,
            difficulty=self.difficulty,
            traceback=self.result.traceback,
            line=self.result.line,
        )


def draw(sandbox: Sandbox, keys: Sequence[tuple[int, int]]) -> list[Sample]:
    results = sandbox.sample(keys)
    return [
        Sample(seed, difficulty, result) for (seed, difficulty), result in zip(keys, results, strict=True)
    ]
