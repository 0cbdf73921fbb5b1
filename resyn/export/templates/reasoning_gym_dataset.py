"""A resyn export as reasoning-gym datasets; importing this file registers them.

    import importlib.util, reasoning_gym
    spec = importlib.util.spec_from_file_location("resyn_rg", "EXPORT_DIR/reasoning_gym_dataset.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    data = reasoning_gym.create_dataset("resyn_sort_numbers", size=100, seed=1, split="train")
    entry = data[0]; data.score_answer("1, 2, 3", entry)

Registered names (``reasoning_gym.json`` beside this file): the export's name for all its
environments, and ``resyn_<env name>`` for each one when there are several. Configuration
(:class:`ResynDatasetConfig`): ``split`` (default ``train``), ``env_ids`` (a subset), ``seed``
and ``size`` (default: every row of the split once). Item ``idx`` is row ``order[idx % rows]``
of a permutation drawn from ``seed``, so a dataset larger than the split repeats it.

Items are ``{"question", "answer", "metadata"}``: ``answer`` is the environment's reference
answer (None when it has none), ``metadata`` identifies the instance (env id, code hash, seed,
difficulty, instance JSON). ``score_answer(answer, entry)`` checks ``answer`` — the extracted
answer, as reasoning-gym passes it, or a whole completion containing ``<answer>`` tags — with the
environment's ``verify`` in resyn's sandbox (modules from ``envs/`` beside this file): exact
scoring by the environment, no substring partial credit. It never raises: anything that cannot
be scored is 0.0, counted by ``resyn.export.runtime.scorer(EXPORT_DIR).metrics()``.
"""

# No ``from __future__ import annotations``: dataclasses resolve string annotations through
# ``sys.modules[__module__]``, which a file loaded with ``spec.loader.exec_module`` alone lacks.
import dataclasses
import json
from functools import cache
from pathlib import Path
from random import Random
from typing import Any, ClassVar

from reasoning_gym.dataset import ProceduralDataset
from reasoning_gym.factory import DATASETS, register_dataset

from resyn.export import runtime

EXPORT_DIR = Path(__file__).resolve().parent
SETTINGS: dict[str, Any] = json.loads((EXPORT_DIR / "reasoning_gym.json").read_text(encoding="utf-8"))


@cache
def _split_rows(split: str) -> tuple[dict[str, Any], ...]:
    path = EXPORT_DIR / "data" / f"{split}.jsonl"
    if not path.exists():
        return ()
    with path.open(encoding="utf-8") as lines:
        return tuple(json.loads(line) for line in lines if line.strip())


@dataclasses.dataclass
class ResynDatasetConfig:
    split: str = "train"
    env_ids: tuple[str, ...] | None = None
    """Only these environments (None: every environment of the registered name)."""
    seed: int | None = None
    size: int | None = None
    """Items in the dataset (None: the number of rows)."""
    dataset_name: str = "resyn"
    """The registered name (set per name by :func:`register`): items' ``source_dataset``, which
    reasoning-gym's composite datasets route scoring by."""

    def validate(self) -> None:
        if self.split not in SETTINGS["splits"]:
            raise ValueError(f"split {self.split!r}: this export has {', '.join(SETTINGS['splits'])}")
        if self.size is not None and self.size < 1:
            raise ValueError("size must be positive")


class ResynDataset(ProceduralDataset):  # type: ignore[misc]
    """The rows of one split of a resyn export."""

    export_dir: ClassVar[Path] = EXPORT_DIR

    def __init__(self, config: ResynDatasetConfig) -> None:
        wanted = set(config.env_ids) if config.env_ids is not None else None
        self.rows = [r for r in _split_rows(config.split) if wanted is None or r["env_id"] in wanted]
        if not self.rows:
            raise ValueError(f"no rows in split {config.split!r} for environments {config.env_ids}")
        super().__init__(config=config, seed=config.seed, size=config.size or len(self.rows))
        self.order = list(range(len(self.rows)))
        Random(self.seed).shuffle(self.order)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        row = self.rows[self.order[idx % len(self.rows)]]
        return {
            "question": row["question"],
            "answer": row["solution"],
            "metadata": {
                "source_dataset": self.config.dataset_name,
                "source_index": idx,
                "env_id": row["env_id"],
                "env_name": row["env_name"],
                "code_sha256": row["code_sha256"],
                "seed": row["seed"],
                "difficulty": row["difficulty"],
                "instance_json": row["instance_json"],
                "split": row["split"],
                "index": row["index"],
            },
        }

    def score_answer(self, answer: str | None, entry: dict[str, Any]) -> float:
        return score_answer(answer, entry)


def score_answer(answer: str | None, entry: dict[str, Any]) -> float:
    """The score in [0, 1] of ``answer`` for ``entry`` (an item of a :class:`ResynDataset`)."""
    try:
        meta = entry["metadata"]
        if not isinstance(answer, str):
            completion: Any = answer  # scored 0 as not text
        elif "<answer" in answer.lower():
            completion = answer
        else:
            completion = f"<answer>{answer}</answer>"
        item = {
            "env_id": meta["env_id"],
            "code_sha256": meta["code_sha256"],
            "instance_json": meta["instance_json"],
            "completion": completion,
        }
    except Exception:
        return 0.0
    return runtime.scores(EXPORT_DIR, [item])[0]


def register() -> list[str]:
    """Register this export's datasets (again, when this file is imported twice); returns their
    names. A name that another dataset already holds is an error, not silently replaced."""
    names: list[str] = []
    for name, ids in SETTINGS["datasets"].items():
        config_cls = dataclasses.make_dataclass(
            f"{name}_config",
            [
                ("env_ids", tuple[str, ...] | None, dataclasses.field(default=tuple(ids) if ids else None)),
                ("dataset_name", str, dataclasses.field(default=name)),
            ],
            bases=(ResynDatasetConfig,),
        )
        held = DATASETS.get(name)
        if held is not None:
            if getattr(held[0], "export_dir", None) != EXPORT_DIR:
                raise ValueError(f"reasoning-gym already has a dataset called {name!r}")
            del DATASETS[name]
        register_dataset(name, ResynDataset, config_cls)
        names.append(name)
    return names


NAMES = register()
