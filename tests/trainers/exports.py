"""Trainer-format exports of the fixture environments, built without a catalog: instances are
rendered in the sandbox and handed to a format as an :class:`ExportContext`, as the exporter
does. Shared by tests/test_export_formats.py and the real-trainer tests."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from resyn.export.formats import ExportContext, get_format
from resyn.export.model import ENVS_DIR, ExportedEnv, ExportRow
from resyn.sandbox import Sandbox
from tests.conftest import FIXTURES

GOOD = FIXTURES / "good"
ENVS = ("sort_numbers", "modular_power", "linear_equation")
"""Fixture environments with cheap verifiers and a reference answer at every level."""


@dataclass(frozen=True)
class Rendered:
    rows: dict[str, list[ExportRow]]
    environments: list[ExportedEnv]
    sources: dict[str, str]


def render(envs: tuple[str, ...] = ENVS, per_split: dict[str, int] | None = None, seed: int = 11) -> Rendered:
    """Rows of ``envs`` (fixture file stems, which are also the env ids): ``per_split[split]``
    instances per environment and split, distinct seeds throughout, levels 1..3 in turn."""
    per_split = per_split or {"train": 4, "test": 2}
    rows: dict[str, list[ExportRow]] = {split: [] for split in per_split}
    environments: list[ExportedEnv] = []
    sources: dict[str, str] = {}
    for env_id in envs:
        source = (GOOD / f"{env_id}.py").read_text()
        sources[env_id] = source
        code_sha256 = hashlib.sha256(source.encode()).hexdigest()
        with Sandbox(source, filename=f"{env_id}.py") as sandbox:
            loaded = sandbox.load()
            assert loaded.ok, loaded.error
            max_difficulty = int(loaded.max_difficulty)
            next_seed = seed
            for split, count in per_split.items():
                keys = [(next_seed + i, 1 + i % min(3, max_difficulty)) for i in range(count)]
                next_seed += count
                for (instance_seed, difficulty), result in zip(keys, sandbox.sample(keys), strict=True):
                    assert result.ok, result.error
                    value = result.value
                    rows[split].append(
                        ExportRow(
                            split=split,
                            index=len(rows[split]),
                            env_id=env_id,
                            env_name=str(loaded.name),
                            code_sha256=code_sha256,
                            seed=instance_seed,
                            difficulty=difficulty,
                            question=value["question"],
                            instance_json=json.dumps(value["instance"], separators=(",", ":")),
                            solution=value["solution"],
                        )
                    )
        environments.append(
            ExportedEnv(
                env_id=env_id,
                name=str(loaded.name),
                keyword=env_id.replace("_", " "),
                code_sha256=code_sha256,
                max_difficulty=max_difficulty,
                has_solution=loaded.has_solution,
                module=f"{ENVS_DIR}/{env_id}.py",
                description=loaded.doc or None,
            )
        )
    return Rendered(rows, environments, sources)


def write_export(
    rendered: Rendered, out: Path, format_name: str, options: dict[str, str] | None = None
) -> tuple[Path, str | None]:
    """Write ``rendered`` as format ``format_name`` into ``out`` (the environment modules first,
    as the exporter does); returns ``out`` and the format's entry point."""
    if out.exists():
        shutil.rmtree(out)
    (out / ENVS_DIR).mkdir(parents=True)
    for env in rendered.environments:
        (out / env.module).write_text(rendered.sources[env.env_id])
    context = ExportContext(out, rendered.rows, rendered.environments, options=dict(options or {}))
    return out, get_format(format_name).write(context)
