"""Custom reward function of a resyn export for verl.

    custom_reward_function.path=EXPORT_DIR/reward.py custom_reward_function.name=compute_score
    # newer verl: reward.custom_reward_function.path=... reward.custom_reward_function.name=...
    # batch reward manager: reward_model.reward_manager=batch custom_reward_function.name=compute_score_batch

``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)`` scores one
decoded response against the row's ``reward_model.ground_truth`` (a JSON object holding the
instance, its environment id and code hash); ``compute_score_async`` is the same as a
coroutine; ``compute_score_batch(data_sources=, solution_strs=, ground_truths=, extra_infos=)``
scores a batch in one call (faster: the sandbox
workers get the whole batch at once). The answer is the last ``<answer>…</answer>`` block (then
``\\boxed{}``, then a "final answer:" line) after reasoning is dropped, checked by the
environment's ``verify`` in resyn's sandbox, from ``envs/`` beside this file.

* Scores are floats in [0, 1] and never raise: anything that cannot be scored is 0.0, counted by
  ``resyn.export.runtime.scorer(EXPORT_DIR).metrics()``.
* Safe in verl's reward-loop thread pool and process pools: no signals (deadlines are enforced
  by the sandbox), one scorer per process.
* Rows whose ``data_source`` does not start with ``resyn/`` (a dataset mixed with verl's own
  tasks) go to ``verl.utils.reward_score.default_compute_score``, so one file serves the mix.

Needs resyn (``pip install resyn``) and bubblewrap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resyn.export import runtime

EXPORT_DIR = Path(__file__).resolve().parent
PREFIX = "resyn/"


def _ours(data_source: Any) -> bool:
    return not isinstance(data_source, str) or data_source.startswith(PREFIX)


def _verl_default(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any) -> float:
    """verl's built-in scorer for a row that is not ours; 0.0 if verl cannot score it."""
    try:
        from verl.utils.reward_score import default_compute_score

        result = default_compute_score(data_source, solution_str, ground_truth, extra_info)
        value = float(result["score"] if isinstance(result, dict) else result)
        return value if math.isfinite(value) else 0.0
    except Exception:
        return 0.0


def compute_score(
    data_source: Any,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Any = None,
    **kwargs: Any,
) -> float:
    """The score in [0, 1] of one response."""
    if not _ours(data_source):
        return _verl_default(data_source, solution_str, ground_truth, extra_info)
    return runtime.scores(EXPORT_DIR, runtime.ground_truth_items([solution_str], [ground_truth]))[0]


async def compute_score_async(
    data_source: Any,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Any = None,
    **kwargs: Any,
) -> float:
    """:func:`compute_score` as a coroutine (verl's reward loop awaits an async scorer instead of
    running it in its thread pool)."""
    if not _ours(data_source):
        return _verl_default(data_source, solution_str, ground_truth, extra_info)
    scores = await runtime.ascores(EXPORT_DIR, runtime.ground_truth_items([solution_str], [ground_truth]))
    return scores[0]


def compute_score_batch(
    data_sources: Sequence[Any] = (),
    solution_strs: Sequence[Any] = (),
    ground_truths: Sequence[Any] = (),
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float]:
    """One score in [0, 1] per response, for verl's batch reward manager."""
    count = len(solution_strs)
    if len(ground_truths) != count:
        return [0.0] * count
    sources = list(data_sources) if len(data_sources) == count else [PREFIX] * count
    infos = list(extra_infos) if extra_infos is not None and len(extra_infos) == count else [None] * count
    out = [0.0] * count
    mine = [i for i in range(count) if _ours(sources[i])]
    scores = runtime.scores(
        EXPORT_DIR,
        runtime.ground_truth_items([solution_strs[i] for i in mine], [ground_truths[i] for i in mine]),
    )
    for i, score in zip(mine, scores, strict=True):
        out[i] = score
    for i in range(count):
        if not _ours(sources[i]):
            out[i] = _verl_default(sources[i], solution_strs[i], ground_truths[i], infos[i])
    return out
