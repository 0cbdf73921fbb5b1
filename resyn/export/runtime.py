"""What an export's reward entry point calls at training time.

Each export directory carries a small ``reward.py`` (a copy of a file in
:mod:`resyn.export.templates`) whose functions have the signature its trainer expects and
delegate here. One :class:`~resyn.reward.RewardScorer` per export directory and process serves
them, built on first use from the directory's ``envs/`` — never from a catalog, so training
needs nothing but the directory and resyn. The scorer's workers are per process (a forked
trainer worker starts its own; see :mod:`resyn.reward.scorer`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resyn.export.model import ENVS_DIR
from resyn.reward import RewardScorer, ScoreResult

__all__ = ["ascores", "close_all", "detailed", "ground_truth_items", "items", "scorer", "scores"]

_lock = threading.Lock()
_scorers: dict[Path, RewardScorer] = {}


def scorer(export_dir: str | Path) -> RewardScorer:
    """The scorer of an export directory (created once per process)."""
    key = Path(export_dir).resolve()
    with _lock:
        found = _scorers.get(key)
        if found is None:
            paths = sorted((key / ENVS_DIR).glob("*.py"))
            found = _scorers[key] = RewardScorer.from_files(paths)
        return found


def close_all() -> None:
    """Close every scorer this process made for export directories, stopping their workers (they
    would otherwise idle until ``RewardConfig.worker_idle_s``). A later call starts new ones."""
    with _lock:
        scorers = list(_scorers.values())
        _scorers.clear()
    for found in scorers:
        found.close()


def items(
    completions: Sequence[Any],
    env_ids: Sequence[Any],
    code_sha256s: Sequence[Any] | None,
    instance_jsons: Sequence[Any],
) -> list[dict[str, Any]]:
    """Score items from column lists (as trainers pass dataset columns)."""
    hashes = code_sha256s if code_sha256s is not None else [None] * len(completions)
    return [
        {"env_id": e, "completion": c, "code_sha256": h, "instance_json": i}
        for c, e, h, i in zip(completions, env_ids, hashes, instance_jsons, strict=True)
    ]


def ground_truth_items(completions: Sequence[Any], ground_truths: Sequence[Any]) -> list[dict[str, Any]]:
    """Score items from :func:`resyn.export.model.ground_truth` strings (or already decoded
    dicts). A label that does not decode becomes an item the scorer rejects (``invalid_item``,
    scored 0) rather than an exception in the trainer."""
    out: list[dict[str, Any]] = []
    for completion, truth in zip(completions, ground_truths, strict=True):
        label: Any = truth
        if isinstance(truth, str | bytes):
            try:
                label = json.loads(truth)
            except ValueError:
                label = None
        if not isinstance(label, dict):
            label = {"env_id": ""}
        out.append({**label, "completion": completion})
    return out


def scores(export_dir: str | Path, batch: list[dict[str, Any]]) -> list[float]:
    return scorer(export_dir).score(batch)


async def ascores(export_dir: str | Path, batch: list[dict[str, Any]]) -> list[float]:
    return await scorer(export_dir).ascore(batch)


def detailed(export_dir: str | Path, batch: list[dict[str, Any]]) -> list[ScoreResult]:
    return scorer(export_dir).score_detailed(batch)
