"""Reward entry point of a resyn export (jsonl / parquet).

``score(completions, env_id, code_sha256, instance_json)`` takes a batch as column lists (the
dataset's columns, one value per completion) and returns one float in [0, 1] per completion. It
never raises: a completion that cannot be scored gets 0.0, and
``resyn.export.runtime.scorer(EXPORT_DIR).metrics()`` counts why. The environment modules run in
resyn's sandbox, from ``envs/`` beside this file. Needs ``pip install resyn`` (and bubblewrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resyn.export import runtime

EXPORT_DIR = Path(__file__).resolve().parent


def score(
    completions: Sequence[Any],
    env_id: Sequence[str],
    code_sha256: Sequence[str],
    instance_json: Sequence[str],
    **kwargs: Any,
) -> list[float]:
    return runtime.scores(EXPORT_DIR, runtime.items(completions, env_id, code_sha256, instance_json))


async def ascore(
    completions: Sequence[Any],
    env_id: Sequence[str],
    code_sha256: Sequence[str],
    instance_json: Sequence[str],
    **kwargs: Any,
) -> list[float]:
    return await runtime.ascores(EXPORT_DIR, runtime.items(completions, env_id, code_sha256, instance_json))
