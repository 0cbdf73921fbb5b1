"""What crosses the boundary of the scoring core: the items trainers send, the environments a scorer
serves, its configuration, and what comes back.

Items and environments are pydantic models (validated once, at the edge); per-item results are a
named tuple, because a trainer step creates tens of thousands of them and pydantic construction
would cost more than the verifier call for trivial environments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from resyn.sandbox.config import SandboxConfig

if TYPE_CHECKING:
    from resyn.catalog.records import EnvironmentRecord

__all__ = [
    "REASONS",
    "EnvSpec",
    "Reason",
    "RewardConfig",
    "ScoreItem",
    "ScoreResult",
    "completion_text",
]

Reason = Literal[
    "ok",
    "invalid_item",
    "unknown_env",
    "code_mismatch",
    "not_text",
    "empty",
    "too_long",
    "no_answer",
    "load_error",
    "generate_error",
    "verify_error",
    "invalid_score",
    "timeout",
    "crashed",
    "worker_error",
    "sandbox_unavailable",
    "closed",
    "internal_error",
]

#: Every reason a score can have, in the order :meth:`RewardScorer.metrics` lists them.
#:
#: - ``ok``: ``verify`` ran and returned a number in [0, 1]. A wrong answer is ``ok`` with 0.0:
#:   only the other reasons are failures of the pipeline rather than of the policy.
#: - ``invalid_item``: the item does not validate (no env id; neither an instance nor
#:   ``(seed, difficulty)``; instance JSON that does not parse to an object or is too large;
#:   a difficulty outside ``1..max_difficulty``).
#: - ``unknown_env``: the scorer serves no environment of that id.
#: - ``code_mismatch``: the item's ``code_sha256`` names another version of the environment, so
#:   its instance may not mean what this version's verifier thinks.
#: - ``not_text``, ``empty``, ``too_long``: the completion is not a string (nor chat messages
#:   with text content), is blank, or is longer than ``max_completion_chars``.
#: - ``no_answer``: :func:`resyn.grading.extract_answer` found no answer in it. Extraction runs in
#:   the worker (with the verify call); when the worker cannot run (the module does not load, the
#:   worker dies), the scorer checks the item itself, so an item without an answer counts here
#:   whatever happens to its environment. The same holds for an ``instance_json`` that is not a
#:   JSON object (``invalid_item``), which the worker parses.
#: - ``load_error``: the module does not import in the sandbox (retried after ``load_retry_s``).
#: - ``generate_error``: regenerating the instance from ``(seed, difficulty)`` raised or returned
#:   something that is not an instance.
#: - ``verify_error``: ``verify`` raised.
#: - ``invalid_score``: ``verify`` returned a non-number, a bool, NaN or a value outside [0, 1].
#: - ``timeout``, ``crashed``: the worker missed its deadline or died (segfault, SIGKILL, memory);
#:   it is killed and respawned, the other items of its batch keep their results.
#: - ``worker_error``: the worker sent an oversize or malformed reply (it is killed and respawned).
#: - ``sandbox_unavailable``: this machine cannot isolate untrusted code (no bubblewrap).
#: - ``closed``: the scorer was closed before the item ran.
#: - ``internal_error``: a bug in resyn; logged with its traceback.
REASONS: tuple[Reason, ...] = get_args(Reason)

_HEX = re.compile(r"^[0-9a-f]{8,64}$")


class ScoreResult(NamedTuple):
    """The score of one item, why it is what it is, and for failures a short detail (the error
    from the sandbox, or which check of the item failed)."""

    score: float
    reason: Reason
    detail: str | None = None


class ScoreItem(BaseModel):
    """One completion to score, with what identifies its instance.

    The instance travels with the data (``instance`` as an object or ``instance_json`` as the
    JSON text a dataset column holds), or is regenerated from ``(seed, difficulty)``: the harness
    owns seeding, so both give the same instance. With both, the given instance is used (no
    worker call). ``code_sha256`` (or a prefix of at least 8 hex digits) pins the environment
    version the instance was made by; a mismatch scores 0 (``code_mismatch``).

    ``completion`` is typed ``Any`` on purpose: a completion that is not text is a counted
    ``not_text`` score of 0, not a validation error. Strings and chat message lists (TRL's
    conversational format: the last assistant message's content) are text.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    env_id: str
    completion: Any = None
    instance: dict[str, Any] | None = None
    instance_json: str | None = None
    seed: int | None = None
    difficulty: int | None = None
    code_sha256: str | None = None


class EnvSpec(BaseModel):
    """An environment a scorer serves: its module source and identity. Carrying the code (rather
    than a catalog reference) is what lets a scorer pickle into another process or machine and
    score there without opening the catalog, which a running ``synthesize`` may hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_id: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1)
    code_sha256: str = ""
    """sha256 of the UTF-8 code; computed when empty, checked when given."""
    max_difficulty: int | None = Field(None, ge=1)
    """Difficulty levels of the environment, when known without running it (the catalog knows);
    otherwise taken from the module when a worker loads it."""
    filename: str = "environment.py"
    """The file name tracebacks from the worker mention."""

    @model_validator(mode="after")
    def _hash(self) -> EnvSpec:
        digest = hashlib.sha256(self.code.encode()).hexdigest()
        if not self.code_sha256:
            object.__setattr__(self, "code_sha256", digest)
        elif self.code_sha256 != digest:
            raise ValueError(
                f"code_sha256 of {self.env_id} does not match its code "
                f"({self.code_sha256[:12]}… given, {digest[:12]}… computed): pass the code it was made for"
            )
        return self

    @classmethod
    def from_file(cls, path: str | Path, env_id: str | None = None) -> EnvSpec:
        """An environment module on disk; its id defaults to the file's stem."""
        path = Path(path)
        return cls(env_id=env_id or path.stem, code=path.read_text(encoding="utf-8"), filename=path.name)

    @classmethod
    def from_record(cls, record: EnvironmentRecord) -> EnvSpec:
        """A catalog environment (its code, hash and levels as the catalog recorded them)."""
        return cls(
            env_id=record.env_id,
            code=record.code,
            code_sha256=record.code_sha256,
            max_difficulty=record.max_difficulty,
            filename=f"{record.env_id}.py",
        )

    def matches(self, code_sha256: str) -> bool:
        """Whether an item's code hash (full or a prefix of ≥ 8 hex digits) names this code."""
        given = code_sha256.strip().lower()
        return bool(_HEX.match(given)) and self.code_sha256.startswith(given)


class RewardConfig(BaseModel):
    """How a :class:`~resyn.reward.RewardScorer` runs. Each default says why."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    workers_per_env: int = Field(2, ge=1, le=64)
    """Sandboxed workers per environment (code hash), started on demand. Two saturate two cores;
    more help only with more cores, and each costs memory in every trainer process (~32 MB RSS,
    ~63 MB for a module that imports sympy)."""

    batch_size: int = Field(128, ge=1, le=4096)
    """Most verify calls in one message to a worker. 128 keeps a request and its reply within one
    64 KiB pipe buffer for typical answers (docs/benchmarks.md); items from concurrent callers of
    the same environment are merged into batches up to this size."""

    max_completion_chars: int = Field(65_536, ge=1)
    """Longer completions score 0 (``too_long``) without being parsed: a runaway generation must
    not cost the trainer seconds of regex work or a verifier timeout."""

    max_instance_json_chars: int = Field(4_000_000, ge=2)
    """Longest ``instance_json`` accepted (``invalid_item`` beyond): instances are small data, and
    this bounds what one bad row can make the parent parse and send."""

    max_live_envs: int = Field(32, ge=1)
    """Environments with workers at once in this process; beyond it, the least recently used idle
    one is shut down (and restarted on its next use), so a catalog-wide mix cannot start hundreds
    of workers."""

    worker_idle_s: float | None = Field(600.0, gt=0)
    """A worker unused this long is stopped to give back its memory (``None``: never)."""

    load_retry_s: float = Field(60.0, gt=0)
    """After a module fails to load, its items score 0 (``load_error``) without a new attempt for
    this long: a module that hangs at import must not cost a load deadline per call, yet a
    transient failure (an overloaded machine missing the start deadline) heals."""

    instance_cache_size: int = Field(4096, ge=0)
    """Regenerated instances kept per scorer (GRPO scores each prompt's instance once per
    completion in the group, and again in later epochs)."""

    failures_per_call: int = Field(3, ge=1)
    """Items of one call (per environment) that may kill their worker (timeout, crash) before
    the call's remaining items there fail at once. Each such item costs about two deadlines (the
    sandbox finds it by retrying its batch one item at a time), so this bounds the stall a module
    that hangs on every answer causes; below it, every other item of the call is still scored."""

    quarantine_s: float = Field(30.0, ge=0)
    """After a call used up ``failures_per_call``, the environment's items fail at once for this
    long, so a broken module costs one slow training step per period, not every step (0: never)."""

    close_timeout_s: float = Field(5.0, gt=0)
    """How long ``close()`` waits (in all) for batches in flight before killing their workers."""

    sandbox: SandboxConfig = SandboxConfig(item_timeout_s=2.0, call_overhead_s=1.0)
    """Limits of the workers. The per-item deadline is 2 s, not the check suite's 5 s: accepted
    verifiers have a p95 under 100 ms and answer a 100 000-character input within 2 s (the
    ``timing`` and ``long_answers`` checks), so anything slower in training is a hang. One second
    of slack covers the pipe traffic of a batch of ``batch_size`` answers."""


def completion_text(completion: object) -> str | None:
    """The text of a completion: a string as is; for chat messages (a list of
    ``{"role", "content"}``, or one such dict) the last assistant message's content, whose parts
    may be strings or ``{"type": "text", "text": ...}``. ``None`` for anything else."""
    if type(completion) is str:  # the common case, first
        return completion
    if isinstance(completion, str):
        return str(completion)
    if isinstance(completion, Mapping):
        return _content(completion.get("content"))
    if isinstance(completion, list | tuple):
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                return _content(message.get("content"))
    return None


def _content(content: object) -> str | None:
    if isinstance(content, str):
        return str(content)
    if isinstance(content, list | tuple):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    return None
                parts.append(text)
        return "".join(parts) if parts or not content else None
    return None
