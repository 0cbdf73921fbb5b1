"""``reasoning-gym``: the export as reasoning-gym datasets.

``reasoning_gym_dataset.py`` defines ``ResynDataset`` (a ``reasoning_gym`` ``ProceduralDataset``)
and registers it when imported: under the export's name (option ``name``; by default
``resyn_<env name>`` for one environment, else ``resyn_export``) for all its environments, and,
when there are several, under ``resyn_<env name>`` for each one. Its items are the exported rows
(``data/<split>.jsonl``): ``{"question", "answer" (the reference answer, None when the environment
has none), "metadata" (env id, code hash, seed, difficulty, instance JSON, …)}``, and
``score_answer(answer, entry)`` checks an answer with the environment's ``verify`` in resyn's
sandbox: exact scoring by the environment, never reasoning-gym's substring partial credit.

    import reasoning_gym, runpy
    runpy.run_path("EXPORT_DIR/reasoning_gym_dataset.py")          # or import it by path
    data = reasoning_gym.create_dataset("resyn_sort_numbers", size=100, seed=1, split="train")
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

from resyn.export.entry import TEMPLATES
from resyn.export.files import write_jsonl
from resyn.export.formats import ExportContext, Format
from resyn.export.formats._shared import export_name
from resyn.export.model import ExportRow

MODULE = "reasoning_gym_dataset.py"
SETTINGS = "reasoning_gym.json"


def records(rows: list[ExportRow]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {
            "question": row.question,
            "solution": row.solution,
            "env_id": row.env_id,
            "env_name": row.env_name,
            "code_sha256": row.code_sha256,
            "seed": row.seed,
            "difficulty": row.difficulty,
            "instance_json": row.instance_json,
            "split": row.split,
            "index": row.index,
        }


def dataset_names(ctx: ExportContext) -> dict[str, list[str] | None]:
    """Registered name -> the environment ids it serves (None: all of them)."""
    name = export_name(ctx)
    names: dict[str, list[str] | None] = {name: None}
    if len(ctx.environments) > 1:
        by_name: dict[str, list[str]] = {}
        for env in ctx.environments:
            by_name.setdefault(f"resyn_{env.name}", []).append(env.env_id)
        for each, ids in sorted(by_name.items()):
            if each in names:
                raise ValueError(f"option name={name!r} is also the name of one environment's dataset")
            names[each] = sorted(ids)
    return names


def write(ctx: ExportContext) -> str:
    names = dataset_names(ctx)
    for split, rows in ctx.rows.items():
        write_jsonl(ctx.out / "data" / f"{split}.jsonl", records(rows))
    settings = {"datasets": names, "splits": list(ctx.rows), "system_prompt": ctx.system_prompt}
    (ctx.out / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(TEMPLATES / "reasoning_gym_dataset.py", ctx.out / MODULE)
    return f"{MODULE}:ResynDataset"


FORMAT = Format(
    "reasoning-gym",
    "reasoning-gym: a ProceduralDataset registered under the export's (and each environment's) name",
    write,
    options={"name": "the registered dataset name (default: resyn_<env name> or resyn_export)"},
)
