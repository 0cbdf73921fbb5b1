"""A catalog of real fixture environments for export, curriculum and serving tests.

Each module is recorded as the synthesis loop would record an accepted environment; its name and
levels are read from its syntax tree (the modules are untrusted and are never imported here:
only the sandbox runs them)."""

from __future__ import annotations

import ast
from pathlib import Path

from resyn.catalog import Catalog, EnvironmentRecord
from tests.conftest import FIXTURES
from tests.test_catalog import make_candidate, make_environment, make_run, make_task

GOOD = FIXTURES / "good"


def class_attribute(module: Path, attribute: str) -> object:
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == attribute for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            return node.value.value
    raise AssertionError(f"no {attribute} in {module}")


def catalog_of(path: Path, modules: list[Path], *, statuses: dict[str, str] | None = None) -> list[str]:
    """A catalog at ``path`` whose accepted environments are ``modules`` (``statuses`` maps a
    module's stem to another status); returns the env ids in module order."""
    statuses = statuses or {}
    ids = []
    with Catalog.open(path) as catalog:
        catalog.upsert_run(make_run("run-x", status="finished"))
        tasks = [make_task("run-x", module.stem.replace("_", " "), i) for i, module in enumerate(modules)]
        catalog.add_tasks(tasks)
        for task, module in zip(tasks, modules, strict=True):
            name = str(class_attribute(module, "name"))
            candidate = make_candidate(task, 1, module.read_text())
            catalog.add_candidate(candidate)
            env: EnvironmentRecord = make_environment(candidate, name).model_copy(
                update={
                    "max_difficulty": int(str(class_attribute(module, "max_difficulty"))),
                    "status": statuses.get(module.stem, "accepted"),
                }
            )
            done = candidate.model_copy(
                update={
                    "outcome": "accepted",
                    "passed_static": True,
                    "passed_checks": True,
                    "passed_judge": True,
                }
            )
            final = task.model_copy(update={"status": "accepted", "rounds": 1, "env_id": env.env_id})
            ids.append(catalog.accept(env, done, final))
    return ids
