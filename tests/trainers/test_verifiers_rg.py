"""The ``verifiers`` export installed as a package and loaded by verifiers, its rubric scoring
rollouts; the ``reasoning-gym`` export registered with reasoning-gym and scored through it."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from resyn.export.model import SYSTEM_PROMPT, ground_truth
from tests.trainers.exports import render, write_export

pytestmark = pytest.mark.trainers


def test_verifiers_package_installs_and_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import verifiers as vf

    rendered = render(("sort_numbers", "modular_power"), {"train": 3, "test": 2})
    out, entry = write_export(rendered, tmp_path / "export", "verifiers", {"name": "resyn_fixtures"})
    assert entry == "environments/resyn_fixtures/resyn_fixtures.py:load_environment"
    # Build and install the wheel (hatchling, offline: no build isolation, no dependencies), then
    # delete the export: the installed package must carry its data and environment modules.
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(out / "environments" / "resyn_fixtures")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (site / "resyn_fixtures_data" / "envs" / "sort_numbers.py").exists()
    shutil.rmtree(out)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()

    env = vf.load_environment("resyn-fixtures", num_eval_examples=3)
    module = sys.modules["resyn_fixtures"]
    assert Path(module.__file__).parent == site
    assert isinstance(env, vf.SingleTurnEnv)
    assert len(env.dataset) == len(rendered.rows["train"]) and len(env.eval_dataset) == 3
    first = env.dataset[0]
    assert first["prompt"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": rendered.rows["train"][0].question},
    ]
    assert first["answer"] == ground_truth(rendered.rows["train"][0])
    assert env.system_prompt == SYSTEM_PROMPT

    async def score(row: dict[str, Any], text: Any) -> float:
        state = vf.State(input=dict(row))
        state["completion"] = [{"role": "assistant", "content": text}] if isinstance(text, str) else text
        state["trajectory"] = []  # a single-turn rollout (verifiers' own num_turns metric reads it)
        await env.rubric.score_rollout(state)
        assert state["metrics"]["resyn_reward"] == state["reward"]
        return float(state["reward"])

    rows = list(env.dataset)
    solutions = [r.solution for r in rendered.rows["train"]]
    golds = [f"<answer>{s}</answer>" for s in solutions]

    async def all_scores() -> list[float]:
        return list(
            await asyncio.gather(
                *(score(row, gold) for row, gold in zip(rows, golds, strict=True)),
                *(score(row, "<answer>-1</answer>") for row in rows),
                score(rows[0], ""),
                score(rows[0], "<answer>" + "7" * 100_000 + "</answer>"),
                score(rows[0], [{"role": "assistant", "content": None}]),
            )
        )

    assert asyncio.run(all_scores()) == [1.0] * len(rows) + [0.0] * (len(rows) + 3)
    assert env.parser.parse_answer([{"role": "assistant", "content": golds[0]}]) == solutions[0]


def test_reasoning_gym_registration_and_scoring(tmp_path: Path) -> None:
    import reasoning_gym
    from reasoning_gym.factory import DATASETS
    from reasoning_gym.utils import extract_answer

    rendered = render(("sort_numbers", "linear_equation"), {"train": 3, "test": 2})
    out, _ = write_export(rendered, tmp_path / "export", "reasoning-gym")
    spec = importlib.util.spec_from_file_location("resyn_rg_export", out / "reasoning_gym_dataset.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        assert sorted(module.NAMES) == ["resyn_export", "resyn_linear_equation", "resyn_sort_numbers"]
        data = reasoning_gym.create_dataset("resyn_export", size=8, seed=42)
        assert len(data) == 8
        for entry in data:
            # How reasoning-gym's own loops score: extract the <answer> block, then score_answer.
            completion = f"<think>hmm</think><answer>{entry['answer']}</answer>"
            assert data.score_answer(extract_answer(completion), entry) == 1.0
            assert data.score_answer(extract_answer("<answer>0</answer>"), entry) == 0.0
            assert reasoning_gym.get_score_answer_fn("resyn_export")(entry["answer"], entry) == 1.0
        single = reasoning_gym.create_dataset("resyn_linear_equation", seed=1, split="test")
        assert {e["metadata"]["env_name"] for e in single} == {"linear_equation"} and len(single) == 2
        # A composite dataset mixing the export with one of reasoning-gym's own tasks.
        from reasoning_gym.composite import CompositeConfig, CompositeDataset, DatasetSpec

        composite = CompositeDataset(
            CompositeConfig(
                size=10,
                seed=3,
                datasets=[DatasetSpec("resyn_sort_numbers", 1.0, {}), DatasetSpec("chain_sum", 1.0, {})],
            )
        )
        for entry in composite:
            assert composite.score_answer(entry["answer"], entry) == 1.0
    finally:
        for name in ("resyn_export", "resyn_linear_equation", "resyn_sort_numbers"):
            DATASETS.pop(name, None)
