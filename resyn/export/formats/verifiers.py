"""``verifiers``: an installable environment package for Prime Intellect's verifiers.

    environments/<name>/
        pyproject.toml        hatchling; depends on verifiers and resyn
        <name>.py             load_environment(**kwargs) -> vf.SingleTurnEnv
        <name>_data/          package data, installed next to the module
            config.json       name, system prompt, splits
            <split>.jsonl     question, answer (the ground-truth JSON), info, task
            envs/<env_id>.py  the environment modules the reward runs in resyn's sandbox

``pip install environments/<name>`` (resyn installed first) makes it loadable anywhere with
``verifiers.load_environment("<name>")``: the module finds its data beside itself, in the source
tree and in site-packages alike, and never needs this export directory again. The name is option
``name``, or ``resyn_<env name>`` for one environment, or ``resyn_export``.
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
from resyn.export.model import ENVS_DIR, ExportRow, ground_truth

VERIFIERS_REQUIREMENT = "verifiers>=0.1.9,<0.4"
"""``load_environment`` builds a v0 ``SingleTurnEnv``; verifiers 0.4 ships only the v1 API."""

PYPROJECT = """\
[project]
name = "{project}"
version = "0.1.0"
description = "resyn environments ({envs}) for verifiers"
requires-python = ">=3.11"
dependencies = ["{verifiers}", "resyn"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
include = ["{module}.py", "{module}_data/**"]
"""


def records(rows: list[ExportRow], task: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {
            "question": row.question,
            "answer": ground_truth(row),
            "info": {
                "env_id": row.env_id,
                "env_name": row.env_name,
                "seed": row.seed,
                "difficulty": row.difficulty,
                "split": row.split,
                "index": row.index,
            },
            "task": task,
        }


def write(ctx: ExportContext) -> str:
    name = export_name(ctx)
    package = ctx.out / "environments" / name
    data = package / f"{name}_data"
    (data / ENVS_DIR).mkdir(parents=True, exist_ok=True)
    for env in ctx.environments:
        shutil.copyfile(ctx.out / env.module, data / ENVS_DIR / f"{env.env_id}.py")
    for split, rows in ctx.rows.items():
        write_jsonl(data / f"{split}.jsonl", records(rows, name))
    config = {"name": name, "system_prompt": ctx.system_prompt, "splits": list(ctx.rows)}
    (data / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    envs = ", ".join(sorted(env.name for env in ctx.environments))
    (package / "pyproject.toml").write_text(
        PYPROJECT.format(
            project=name.replace("_", "-"), envs=envs, verifiers=VERIFIERS_REQUIREMENT, module=name
        ),
        encoding="utf-8",
    )
    shutil.copyfile(TEMPLATES / "verifiers_env.py", package / f"{name}.py")
    return f"environments/{name}/{name}.py:load_environment"


FORMAT = Format(
    "verifiers",
    "verifiers: an installable environment package (environments/<name>) exposing load_environment()",
    write,
    options={"name": "the environment package and module name (default: resyn_<env name> or resyn_export)"},
)
