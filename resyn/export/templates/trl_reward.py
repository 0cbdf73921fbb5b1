"""Reward functions of a resyn export for TRL's ``GRPOTrainer``.

>>> import sys; sys.path.insert(0, "EXPORT_DIR")                          # doctest: +SKIP
>>> from reward import resyn_reward
>>> from datasets import load_dataset
>>> data = load_dataset("parquet", data_files={"train": "EXPORT_DIR/data/train.parquet"})
>>> trainer = GRPOTrainer(model=..., reward_funcs=[resyn_reward], train_dataset=data["train"], ...)

TRL calls ``resyn_reward(prompts=, completions=, completion_ids=, **columns)`` with every other
dataset column as a list, one value per completion. The ones used are ``env_id``,
``code_sha256`` and ``instance_json``; completions may be strings (standard format) or message
lists (conversational: the last message's content is scored). The answer is taken from the last
``<answer>…</answer>`` block (then ``\\boxed{}``, then a "final answer:" line) after reasoning is
dropped, and checked by the environment's ``verify`` in resyn's sandbox, from ``envs/`` beside
this file.

* Scores are floats in [0, 1] and never raise: a completion that cannot be scored gets 0.0, and
  ``resyn.export.runtime.scorer(EXPORT_DIR).metrics()`` counts why. A row that is not a resyn row
  (``env_id`` missing or None, e.g. in a dataset mixed with other tasks) gets ``None``, TRL's
  "not applicable".
* ``resyn_reward`` also logs, through TRL's ``log_metric``, the share of completions without an
  answer (``resyn/no_answer``) and of items the pipeline failed to score (``resyn/errors``:
  timeouts, crashes, bad items…), which should stay 0.
* ``resyn_reward_async`` is the same score as a coroutine; TRL runs async reward functions
  concurrently with each other.
* Both are module-level functions, so they pickle by reference: a process that unpickles them
  needs this directory on ``sys.path`` (or ``PYTHONPATH``), like any module.

Needs resyn (``pip install resyn``) and bubblewrap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from resyn.export import runtime
from resyn.reward import ScoreResult

EXPORT_DIR = Path(__file__).resolve().parent

# Reasons a completion scores 0 that are the policy's doing; any other non-"ok" reason is an error
# of the pipeline (see resyn.reward.REASONS).
_POLICY = frozenset({"ok", "no_answer", "empty", "not_text", "too_long"})


def _split(
    completions: Sequence[Any],
    env_id: Sequence[Any] | None,
    code_sha256: Sequence[Any] | None,
    instance_json: Sequence[Any] | None,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Positions of resyn rows and their score items."""
    count = len(completions)
    envs = list(env_id) if env_id is not None else [None] * count
    hashes = list(code_sha256) if code_sha256 is not None else [None] * count
    instances = list(instance_json) if instance_json is not None else [None] * count
    keep = [i for i in range(count) if i < len(envs) and envs[i] is not None]
    batch = runtime.items(
        [completions[i] for i in keep],
        [envs[i] for i in keep],
        [hashes[i] if i < len(hashes) else None for i in keep],
        [instances[i] if i < len(instances) else None for i in keep],
    )
    return keep, batch


def _place(count: int, keep: list[int], values: Sequence[float]) -> list[float | None]:
    out: list[float | None] = [None] * count
    for position, value in zip(keep, values, strict=True):
        out[position] = value
    return out


def _log(log_metric: Any, results: Sequence[ScoreResult]) -> None:
    if not callable(log_metric) or not results:
        return
    metric: Callable[[str, float], Any] = log_metric
    try:
        metric("resyn/no_answer", sum(r.reason == "no_answer" for r in results) / len(results))
        metric("resyn/errors", sum(r.reason not in _POLICY for r in results) / len(results))
    except Exception:  # logging must never cost a training step
        pass


def resyn_reward(
    prompts: Sequence[Any] | None = None,
    completions: Sequence[Any] = (),
    env_id: Sequence[Any] | None = None,
    code_sha256: Sequence[Any] | None = None,
    instance_json: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """One score in [0, 1] per completion (None for rows that are not resyn rows)."""
    keep, batch = _split(completions, env_id, code_sha256, instance_json)
    results = runtime.detailed(EXPORT_DIR, batch) if batch else []
    _log(kwargs.get("log_metric"), results)
    return _place(len(completions), keep, [r.score for r in results])


async def resyn_reward_async(
    prompts: Sequence[Any] | None = None,
    completions: Sequence[Any] = (),
    env_id: Sequence[Any] | None = None,
    code_sha256: Sequence[Any] | None = None,
    instance_json: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """:func:`resyn_reward` as a coroutine."""
    keep, batch = _split(completions, env_id, code_sha256, instance_json)
    scores = await runtime.ascores(EXPORT_DIR, batch) if batch else []
    return _place(len(completions), keep, scores)
