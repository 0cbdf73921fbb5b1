"""A resyn export as a verifiers environment (the v0 API: ``vf.SingleTurnEnv``).

    pip install environments/<name>          # with resyn installed first
    python -c "import verifiers as vf; env = vf.load_environment('<name>')"
    vf-eval <name> -m gpt-4.1-mini -n 20     # or train with prime-rl / verifiers' trainer

``load_environment(**kwargs)`` returns a ``vf.SingleTurnEnv`` whose dataset and eval dataset are
the export's rows (``question``; ``answer``: the ground-truth JSON holding the instance, its
environment id and code hash; ``info``: env id, seed, difficulty…), with the export's system
prompt (which asks for the answer inside ``<answer></answer>``), an ``XMLParser`` for that tag,
and a ``vf.Rubric`` of one reward function, :func:`resyn_reward`, which checks the completion with
the environment's ``verify`` in resyn's sandbox. The data and the environment modules are read
from ``<module>_data/`` beside this file, so the installed package needs nothing else.

Scores are floats in [0, 1] and never raise: anything that cannot be scored is 0.0, counted by
``resyn.export.runtime.scorer(DATA_DIR).metrics()``. Needs resyn and bubblewrap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resyn.export import runtime

DATA_DIR = Path(__file__).resolve().parent / f"{Path(__file__).stem}_data"


def _config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA_DIR / "config.json").read_text(encoding="utf-8"))
    return loaded


def rows(split: str, limit: int = -1) -> list[dict[str, Any]]:
    """The rows of one split (the first ``limit`` of them when ``limit`` ≥ 0)."""
    path = DATA_DIR / f"{split}.jsonl"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        found = [json.loads(line) for line in lines if line.strip()]
    return found if limit < 0 else found[:limit]


async def resyn_reward(completion: Any, answer: Any, **kwargs: Any) -> float:
    """The score in [0, 1] of one completion (a message list or a string) against the row's
    ``answer`` (ground-truth JSON)."""
    scores = await runtime.ascores(DATA_DIR, runtime.ground_truth_items([completion], [answer]))
    return scores[0]


def load_environment(
    split: str = "train",
    eval_split: str | None = "test",
    num_train_examples: int = -1,
    num_eval_examples: int = -1,
    system_prompt: str | None = None,
    **kwargs: Any,
) -> Any:
    """The environment (``vf.SingleTurnEnv``); ``kwargs`` go to its constructor."""
    import verifiers as vf
    from datasets import Dataset

    config = _config()
    train = rows(split, num_train_examples)
    if not train:
        raise ValueError(f"{config['name']}: split {split!r} has no rows (splits: {config['splits']})")
    held_out = rows(eval_split, num_eval_examples) if eval_split and eval_split != split else []
    parser = vf.XMLParser(["answer"], answer_field="answer")
    rubric = vf.Rubric(funcs=[resyn_reward], weights=[1.0], parser=parser)
    return vf.SingleTurnEnv(
        dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(held_out) if held_out else None,
        system_prompt=system_prompt if system_prompt is not None else config["system_prompt"],
        parser=parser,
        rubric=rubric,
        **kwargs,
    )
