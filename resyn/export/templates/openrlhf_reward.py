"""Reward function of a resyn export for OpenRLHF (``--reward.remote_url EXPORT_DIR/reward.py``,
with ``--data.input_key prompt --data.label_key label --data.apply_chat_template``).

``reward_func(queries, prompts, labels, **kwargs)``: ``queries`` are the full texts (templated
prompt + response), so each response is ``query[len(prompt):]``; ``labels`` are the rows'
``label`` values (JSON objects holding the instance, its environment id and code hash). The answer
is the last ``<answer>…</answer>`` block (then ``\\boxed{}``, then a "final answer:" line) after
reasoning is dropped, checked by the environment's ``verify`` in resyn's sandbox, from ``envs/``
beside this file.

Returns ``{"rewards": Tensor, "scores": Tensor, "extra_logs": {name: Tensor}}``, every tensor one
float per query: ``rewards`` and ``scores`` are the score in [0, 1]; ``extra_logs`` has
``resyn_no_answer`` (1.0 where the response gives no answer) and ``resyn_error`` (1.0 where the
pipeline failed to score it: timeouts, crashes, bad labels…), which OpenRLHF averages into its
logs. torch is imported only when called; **without torch the same dict holds plain lists**.

It never raises: anything that cannot be scored is 0.0, counted by
``resyn.export.runtime.scorer(EXPORT_DIR).metrics()``. Needs resyn and bubblewrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resyn.export import runtime

EXPORT_DIR = Path(__file__).resolve().parent

# Reasons that are the policy's doing; any other non-"ok" reason is a failure of the pipeline.
_POLICY = frozenset({"ok", "no_answer", "empty", "not_text", "too_long"})


def _response(query: Any, prompt: Any) -> Any:
    if isinstance(query, str) and isinstance(prompt, str):
        return query[len(prompt) :]
    return None  # not text: scores 0 (not_text)


def _tensor(values: list[float]) -> Any:
    try:
        import torch
    except ImportError:
        return values
    return torch.tensor(values, dtype=torch.float32)


def reward_func(
    queries: Sequence[Any], prompts: Sequence[Any], labels: Sequence[Any], **kwargs: Any
) -> dict[str, Any]:
    """Scores of ``queries`` (prompt + response) against ``labels``."""
    count = len(queries)
    if len(prompts) == count and len(labels) == count:
        responses = [_response(q, p) for q, p in zip(queries, prompts, strict=True)]
        results = runtime.detailed(EXPORT_DIR, runtime.ground_truth_items(responses, list(labels)))
        scores = [r.score for r in results]
        no_answer = [float(r.reason == "no_answer") for r in results]
        errors = [float(r.reason not in _POLICY) for r in results]
    else:  # a malformed call: score nothing rather than raise into the trainer
        scores, no_answer, errors = [0.0] * count, [0.0] * count, [1.0] * count
    return {
        "rewards": _tensor(scores),
        "scores": _tensor(list(scores)),
        "extra_logs": {"resyn_no_answer": _tensor(no_answer), "resyn_error": _tensor(errors)},
    }
