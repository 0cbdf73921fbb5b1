"""``openrlhf``: JSON Lines prompts with a label, and a ``reward_func`` file for OpenRLHF.

``data/<split>.jsonl`` per split: ``prompt`` (the chat list, for ``--data.apply_chat_template``;
one string with option ``prompt=standard``), ``label`` (the ground-truth JSON:
env_id, code_sha256, seed, difficulty, instance_json), and ``env_id``, ``env_name``, ``seed``,
``difficulty``, ``split``, ``index`` for reference.

    --data.input_key prompt --data.label_key label --data.apply_chat_template \\
    --reward.remote_url EXPORT_DIR/reward.py

``reward.py`` defines ``reward_func(queries, prompts, labels, **kwargs)`` → ``{"rewards",
"scores", "extra_logs"}``. The same labels are what ``resyn serve``'s ``/get_reward`` takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from resyn.export.entry import write_entry_point
from resyn.export.files import write_jsonl
from resyn.export.formats import ExportContext, Format
from resyn.export.formats._shared import choice, prompt_value
from resyn.export.model import ExportRow, ground_truth

PROMPTS = ("conversational", "standard")


def records(rows: list[ExportRow], system_prompt: str, prompt: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {
            "prompt": prompt_value(row, system_prompt, prompt),
            "label": ground_truth(row),
            "env_id": row.env_id,
            "env_name": row.env_name,
            "seed": row.seed,
            "difficulty": row.difficulty,
            "split": row.split,
            "index": row.index,
        }


def write(ctx: ExportContext) -> str:
    prompt = choice(ctx, "prompt", PROMPTS)
    for split, rows in ctx.rows.items():
        write_jsonl(ctx.out / "data" / f"{split}.jsonl", records(rows, ctx.system_prompt, prompt))
    return write_entry_point(ctx.out, "openrlhf", function="reward_func")


FORMAT = Format(
    "openrlhf",
    "OpenRLHF: JSONL with prompt and label keys, and reward.py:reward_func for --reward.remote_url",
    write,
    options={"prompt": "conversational (default: a chat list for --data.apply_chat_template) or standard"},
)
