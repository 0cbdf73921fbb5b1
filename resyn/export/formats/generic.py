"""``jsonl`` and ``parquet``: trainer-neutral rows, one file per split.

Columns: ``messages`` (OpenAI-style chat: the system message with the answer format, then the
question), ``prompt`` (the same as one string), ``question`` (the question alone), ``env_id``, ``env_name``, ``code_sha256``,
``seed``, ``difficulty``, ``instance_json``, ``solution``, ``split``, ``index``. The reward entry
point is ``reward.py:score``, which takes completions and the rows' identity columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from resyn.export.entry import write_entry_point
from resyn.export.files import write_jsonl, write_parquet
from resyn.export.formats import ExportContext, Format
from resyn.export.model import ExportRow

COLUMNS = {
    "messages": "STRUCT(role VARCHAR, content VARCHAR)[]",
    "prompt": "VARCHAR",
    "question": "VARCHAR",
    "env_id": "VARCHAR",
    "env_name": "VARCHAR",
    "code_sha256": "VARCHAR",
    "seed": "BIGINT",
    "difficulty": "BIGINT",
    "instance_json": "VARCHAR",
    "solution": "VARCHAR",
    "split": "VARCHAR",
    "index": "BIGINT",
}


def records(rows: list[ExportRow], system_prompt: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {
            "messages": row.messages(system_prompt),
            "prompt": row.prompt_text(system_prompt),
            "question": row.question,
            "env_id": row.env_id,
            "env_name": row.env_name,
            "code_sha256": row.code_sha256,
            "seed": row.seed,
            "difficulty": row.difficulty,
            "instance_json": row.instance_json,
            "solution": row.solution,
            "split": row.split,
            "index": row.index,
        }


def _write_jsonl(ctx: ExportContext) -> str:
    for split, rows in ctx.rows.items():
        write_jsonl(ctx.out / "data" / f"{split}.jsonl", records(rows, ctx.system_prompt))
    return write_entry_point(ctx.out, "generic")


def _write_parquet(ctx: ExportContext) -> str:
    for split, rows in ctx.rows.items():
        write_parquet(ctx.out / "data" / f"{split}.parquet", records(rows, ctx.system_prompt), COLUMNS)
    return write_entry_point(ctx.out, "generic")


FORMATS = {
    "jsonl": Format("jsonl", "JSON Lines per split: chat messages plus the instance columns", _write_jsonl),
    "parquet": Format("parquet", "Parquet per split, same columns as jsonl", _write_parquet),
}
