"""``verl``: parquet in verl's RL dataset layout, and a custom reward function file.

``data/<split>.parquet`` per split with verl's columns:

* ``data_source``: ``resyn/<env_id>`` (verl groups metrics by it and passes it to the scorer);
* ``prompt``: the chat list (system message with the answer format, then the question);
* ``ability``: option ``ability`` (default ``reasoning``);
* ``reward_model``: ``{style: "rule", ground_truth: <JSON: env_id, code_sha256, seed,
  difficulty, instance_json>}``;
* ``extra_info``: ``{split, index, env_id, env_name, code_sha256, seed, difficulty, solution}``.

``reward.py`` defines ``compute_score(data_source, solution_str, ground_truth, extra_info=None,
**kwargs) -> float`` for verl's naive/prime/dapo managers and the reward loop, and
``compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, **kwargs) ->
list[float]`` for the batch manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from resyn.export.entry import write_entry_point
from resyn.export.files import write_parquet
from resyn.export.formats import ExportContext, Format
from resyn.export.formats._shared import CHAT
from resyn.export.model import ExportRow, ground_truth

DATA_SOURCE_PREFIX = "resyn/"
"""``data_source`` is this prefix plus the environment id; the reward file hands rows of any
other data source to verl's own ``default_compute_score``."""

COLUMNS = {
    "data_source": "VARCHAR",
    "prompt": CHAT,
    "ability": "VARCHAR",
    "reward_model": "STRUCT(style VARCHAR, ground_truth VARCHAR)",
    "extra_info": (
        "STRUCT(split VARCHAR, index BIGINT, env_id VARCHAR, env_name VARCHAR, code_sha256 VARCHAR, "
        "seed BIGINT, difficulty BIGINT, solution VARCHAR)"
    ),
}


def records(rows: list[ExportRow], system_prompt: str, ability: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {
            "data_source": DATA_SOURCE_PREFIX + row.env_id,
            "prompt": row.messages(system_prompt),
            "ability": ability,
            "reward_model": {"style": "rule", "ground_truth": ground_truth(row)},
            "extra_info": {
                "split": row.split,
                "index": row.index,
                "env_id": row.env_id,
                "env_name": row.env_name,
                "code_sha256": row.code_sha256,
                "seed": row.seed,
                "difficulty": row.difficulty,
                "solution": row.solution,
            },
        }


def write(ctx: ExportContext) -> str:
    ability = str(ctx.options.get("ability", "reasoning"))
    for split, rows in ctx.rows.items():
        write_parquet(
            ctx.out / "data" / f"{split}.parquet", records(rows, ctx.system_prompt, ability), COLUMNS
        )
    return write_entry_point(ctx.out, "verl", function="compute_score")


FORMAT = Format(
    "verl",
    "verl: RL parquet (data_source, prompt, ability, reward_model, extra_info) and reward.py:compute_score",
    write,
    options={"ability": "the ability column (default: reasoning)"},
)
