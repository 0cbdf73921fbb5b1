"""``trl``: a dataset for TRL's ``GRPOTrainer`` and the reward functions that score it.

``data/<split>.parquet`` (or ``.jsonl``, option ``files``) per split, loadable with
``datasets.load_dataset("parquet", data_files={"train": "data/train.parquet"})``. Columns:

* ``prompt``: conversational by default (``[{"role": "system", ...}, {"role": "user", ...}]``),
  or one string with option ``prompt=standard``;
* what the reward function needs: ``env_id``, ``code_sha256``, ``instance_json``;
* for reference: ``env_name``, ``seed``, ``difficulty``, ``solution``, ``split``, ``index``.

TRL passes every column but ``prompt`` to reward functions as keyword lists
(``remove_unused_columns`` is False for GRPO). ``reward.py`` defines ``resyn_reward`` (sync) and
``resyn_reward_async``, both ``f(prompts, completions, **kwargs) -> list[float | None]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from resyn.export.entry import write_entry_point
from resyn.export.files import write_jsonl, write_parquet
from resyn.export.formats import ExportContext, Format
from resyn.export.formats._shared import CHAT, choice, prompt_value
from resyn.export.model import ExportRow

PROMPTS = ("conversational", "standard")
FILES = ("parquet", "jsonl", "both")


def columns(prompt: str) -> dict[str, str]:
    return {
        "prompt": CHAT if prompt == "conversational" else "VARCHAR",
        "env_id": "VARCHAR",
        "code_sha256": "VARCHAR",
        "instance_json": "VARCHAR",
        "env_name": "VARCHAR",
        "seed": "BIGINT",
        "difficulty": "BIGINT",
        "solution": "VARCHAR",
        "split": "VARCHAR",
        "index": "BIGINT",
    }


def records(rows: list[ExportRow], system_prompt: str, prompt: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {
            "prompt": prompt_value(row, system_prompt, prompt),
            "env_id": row.env_id,
            "code_sha256": row.code_sha256,
            "instance_json": row.instance_json,
            "env_name": row.env_name,
            "seed": row.seed,
            "difficulty": row.difficulty,
            "solution": row.solution,
            "split": row.split,
            "index": row.index,
        }


def write(ctx: ExportContext) -> str:
    prompt = choice(ctx, "prompt", PROMPTS)
    files = choice(ctx, "files", FILES)
    schema = columns(prompt)
    for split, rows in ctx.rows.items():
        if files in ("parquet", "both"):
            write_parquet(
                ctx.out / "data" / f"{split}.parquet", records(rows, ctx.system_prompt, prompt), schema
            )
        if files in ("jsonl", "both"):
            write_jsonl(ctx.out / "data" / f"{split}.jsonl", records(rows, ctx.system_prompt, prompt))
    return write_entry_point(ctx.out, "trl", function="resyn_reward")


FORMAT = Format(
    "trl",
    "TRL GRPOTrainer: a prompt-column dataset per split and reward.py:resyn_reward (sync and async)",
    write,
    options={
        "prompt": "conversational (default: a chat list) or standard (one string)",
        "files": "parquet (default), jsonl or both",
    },
)
