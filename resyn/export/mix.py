"""Mix files: which environments an export draws from, in what proportion, at which levels.

A mix is TOML or JSON::

    total = 10000                       # rows in all (before the split); --n-per-env is ignored

    [[entries]]
    env = ["josephus-1a2b3c4d"]         # ids or unique id prefixes
    weight = 2.0
    difficulty = [1, 3]                 # inclusive range, clipped to each environment's levels

    [[entries]]
    where = "keyword ILIKE '%graph%'"   # a SQL condition on the catalog's environments table
    weight = 1.0
    difficulty = 2                      # one level

Rows are apportioned to entries by weight (largest remainder, so counts sum to ``total``
exactly), then evenly to each entry's environments, then evenly to the entry's levels. The same
file, catalog and ``--seed`` give the same rows.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from resyn.export.errors import ExportError

__all__ = ["Mix", "MixEntry", "MixError", "apportion", "load_mix"]


class MixError(ExportError):
    """A mix file that cannot be used; the message names the fix."""


class MixEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    env: list[str] | None = None
    """Environment ids or unique id prefixes."""
    where: str | None = None
    """A SQL condition over the catalog's ``environments`` table (``status``, ``name``,
    ``keyword``, ``max_difficulty``, ``has_solution``, ``run_id``, ...)."""
    weight: float = Field(1.0, ge=0)
    difficulty: tuple[int, int] | None = None
    """Inclusive range of levels; ``None``: every level of each environment."""

    @field_validator("env", mode="before")
    @classmethod
    def _one_id(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("difficulty", mode="before")
    @classmethod
    def _level_or_range(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        return value

    @model_validator(mode="after")
    def _check(self) -> MixEntry:
        if (self.env is None) == (self.where is None):
            raise ValueError("give exactly one of `env` (ids) and `where` (a SQL condition)")
        if self.env is not None and not self.env:
            raise ValueError("`env` is empty: list at least one environment id")
        if self.difficulty is not None:
            low, high = self.difficulty
            if low < 1 or high < low:
                raise ValueError(f"difficulty {list(self.difficulty)} is not a range 1 <= low <= high")
        return self

    def label(self) -> str:
        return f"env {', '.join(self.env)}" if self.env is not None else f"where {self.where}"


class Mix(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    total: int = Field(gt=0)
    entries: list[MixEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights(self) -> Mix:
        if not sum(entry.weight for entry in self.entries) > 0:
            raise ValueError("the weights of the entries sum to 0: give at least one a positive weight")
        return self


def load_mix(path: str | Path) -> Mix:
    """Read a mix file (``.toml`` or ``.json``); :class:`MixError` with a one-line reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MixError(f"cannot read mix file {path}: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise MixError(f"mix file {path} is not valid {kind}: {exc}") from None
    try:
        return Mix.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise MixError(f"mix file {path}: {where}: {message}") from None


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer shares proportional to ``weights`` that sum to ``total``
    (largest remainder; ties go to the earlier entry, so the result is deterministic)."""
    mass = sum(weights)
    if total <= 0 or mass <= 0:
        return [0] * len(weights)
    exact = [total * w / mass for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares
