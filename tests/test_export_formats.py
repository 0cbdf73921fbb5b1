"""The trainer export formats (trl, verl, openrlhf, verifiers, reasoning-gym) without the trainers:
their files and schemas (Parquet read back with DuckDB), and their reward entry points imported
from the export directory as a trainer would, scoring gold answers 1.0 and wrong, empty,
oversize and non-text completions 0.0, and surviving a pickle round trip into another process.

The real trainers run against the same exports in tests/trainers/ (``pytest -m trainers``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from resyn.export import runtime
from resyn.export.formats import FORMATS, get_format
from resyn.export.model import SYSTEM_PROMPT, ExportRow, ground_truth
from tests.trainers.exports import Rendered, render, write_export

TRAINER_FORMATS = ("trl", "verl", "openrlhf", "verifiers", "reasoning-gym")
OVERSIZE = "<answer>" + "7" * 70_000 + "</answer>"


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return render()


@pytest.fixture(autouse=True)
def _close_scorers(tmp_path: Path) -> Iterator[None]:
    """Each export directory gets a scorer (and sandbox workers) per process: stop the ones this
    test made so workers do not pile up over the module."""
    yield
    for key in [k for k in runtime._scorers if tmp_path in k.parents]:
        runtime._scorers.pop(key).close()


def load(path: Path, name: str | None = None) -> ModuleType:
    """Import a file by path, as a trainer loads a reward file."""
    name = name or f"export_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def gold(row: ExportRow) -> str:
    assert row.solution is not None
    return f"<think>Let me work it out.</think>\nThe answer is <answer>{row.solution}</answer>"


def wrong(row: ExportRow) -> str:
    return (
        f"<answer>{row.solution}, 1</answer>"
        if "," in (row.solution or "")
        else "<answer>-123456789</answer>"
    )


def bad_completions() -> list[Any]:
    """Completions that must score 0.0 whatever the row: no answer, empty, oversize, not text."""
    return ["I don't know.", "", "   ", OVERSIZE, None, 42, {"content": 5}, [{"role": "assistant"}]]


def parquet(path: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Column types (identifiers unquoted) and rows of a Parquet file, read with DuckDB."""
    with duckdb.connect() as conn:
        described = conn.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
        types = {name: kind.replace('"', "") for name, kind, *_ in described}  # quoting varies by version
        cursor = conn.execute(f"SELECT * FROM '{path}'")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return types, rows


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def unpickle_and_call(export: Path, pickled: bytes, call: str) -> Any:
    """Unpickle a reward function in a fresh interpreter whose path holds the export directory
    (what a trainer's worker process does) and evaluate ``call`` with it as ``f``."""
    script = (
        f"import json, pickle, sys\nf = pickle.loads(sys.stdin.buffer.read())\nprint(json.dumps({call}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(export), str(Path.cwd())])}
    done = subprocess.run(
        [sys.executable, "-c", script], input=pickled, capture_output=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def pickled_from(export: Path, attribute: str, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Pickle ``reward.<attribute>`` imported as the module ``reward`` (by reference, as pickle
    does for module-level functions)."""
    monkeypatch.syspath_prepend(str(export))
    monkeypatch.delitem(sys.modules, "reward", raising=False)
    module = importlib.import_module("reward")
    try:
        return pickle.dumps(getattr(module, attribute))
    finally:
        sys.modules.pop("reward", None)


def test_every_trainer_format_is_registered() -> None:
    for name in TRAINER_FORMATS:
        assert name in FORMATS
        found = get_format(name)
        assert found.name == name and found.summary


# -- trl -----------------------------------------------------------------------------------------


def test_trl_conversational_dataset(rendered: Rendered, tmp_path: Path) -> None:
    out, entry = write_export(rendered, tmp_path / "trl", "trl")
    assert entry == "reward.py:resyn_reward"
    assert sorted(p.name for p in (out / "data").iterdir()) == ["test.parquet", "train.parquet"]
    types, rows = parquet(out / "data" / "train.parquet")
    assert types["prompt"] == "STRUCT(role VARCHAR, content VARCHAR)[]"
    assert {"env_id", "code_sha256", "instance_json", "seed", "difficulty", "solution"} <= set(types)
    assert types["seed"] == "BIGINT"
    first = rendered.rows["train"][0]
    assert rows[0]["prompt"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": first.question},
    ]
    assert (rows[0]["env_id"], rows[0]["instance_json"]) == (first.env_id, first.instance_json)
    assert len(rows) == len(rendered.rows["train"])
    assert [r["index"] for r in rows] == list(range(len(rows)))


def test_trl_standard_prompts_and_jsonl(rendered: Rendered, tmp_path: Path) -> None:
    out, _ = write_export(rendered, tmp_path / "trl", "trl", {"prompt": "standard", "files": "both"})
    types, rows = parquet(out / "data" / "test.parquet")
    assert types["prompt"] == "VARCHAR"
    assert rows[0]["prompt"] == rendered.rows["test"][0].prompt_text()
    lines = jsonl(out / "data" / "test.jsonl")
    assert [line["prompt"] for line in lines] == [r["prompt"] for r in rows]
    with pytest.raises(ValueError, match="prompt"):
        write_export(rendered, tmp_path / "bad", "trl", {"prompt": "chatty"})


def test_trl_reward_functions(rendered: Rendered, tmp_path: Path) -> None:
    out, _ = write_export(rendered, tmp_path / "trl", "trl")
    reward = load(out / "reward.py")
    rows = rendered.rows["train"]
    columns = {
        "env_id": [r.env_id for r in rows],
        "code_sha256": [r.code_sha256 for r in rows],
        "instance_json": [r.instance_json for r in rows],
        "seed": [r.seed for r in rows],
        "solution": [r.solution for r in rows],
    }
    prompts = [r.messages() for r in rows]
    metrics: dict[str, float] = {}
    extra = {"completion_ids": [[1, 2]] * len(rows), "trainer_state": object(), "log_extra": print}
    chat = [[{"role": "assistant", "content": gold(r)}] for r in rows]
    assert reward.resyn_reward(
        prompts=prompts, completions=chat, **columns, **extra, log_metric=metrics.__setitem__
    ) == [1.0] * len(rows)
    assert metrics == {"resyn/no_answer": 0.0, "resyn/errors": 0.0}
    assert reward.resyn_reward(prompts=prompts, completions=[gold(r) for r in rows], **columns) == [
        1.0
    ] * len(rows)
    assert reward.resyn_reward(prompts=prompts, completions=[wrong(r) for r in rows], **columns) == [
        0.0
    ] * len(rows)
    assert asyncio.run(reward.resyn_reward_async(prompts=prompts, completions=chat, **columns, **extra)) == [
        1.0
    ] * len(rows)
    bad = bad_completions()
    n = len(bad)
    few = {key: values[:1] * n for key, values in columns.items()}
    assert (
        reward.resyn_reward(prompts=prompts[:1] * n, completions=bad, **few, log_metric=metrics.__setitem__)
        == [0.0] * n
    )
    assert metrics["resyn/no_answer"] == pytest.approx(1 / n)
    assert metrics["resyn/errors"] == 0.0
    # A row that is not a resyn row (a mixed dataset) is "not applicable" (None); a resyn row whose
    # instance is corrupt is a counted error scored 0.
    mixed = reward.resyn_reward(
        prompts=prompts[:3],
        completions=[gold(rows[0])] * 3,
        env_id=[rows[0].env_id, None, rows[0].env_id],
        code_sha256=[rows[0].code_sha256, None, rows[0].code_sha256],
        instance_json=[rows[0].instance_json, None, "{not json"],
        log_metric=metrics.__setitem__,
    )
    assert mixed == [1.0, None, 0.0]
    assert metrics["resyn/errors"] == pytest.approx(1 / 2)
    assert reward.resyn_reward.__name__ == "resyn_reward"


def test_trl_reward_pickles_into_another_process(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = write_export(rendered, tmp_path / "trl", "trl")
    row = rendered.rows["test"][0]
    call = (
        f"f(prompts=[''], completions=[{gold(row)!r}, {wrong(row)!r}], env_id=[{row.env_id!r}] * 2, "
        f"code_sha256=[{row.code_sha256!r}] * 2, instance_json=[{row.instance_json!r}] * 2)"
    )
    assert unpickle_and_call(out, pickled_from(out, "resyn_reward", monkeypatch), call) == [1.0, 0.0]
    pickle.loads(pickled_from(out, "resyn_reward_async", monkeypatch))


# -- verl ----------------------------------------------------------------------------------------


def test_verl_parquet_schema(rendered: Rendered, tmp_path: Path) -> None:
    out, entry = write_export(rendered, tmp_path / "verl", "verl")
    assert entry == "reward.py:compute_score"
    types, rows = parquet(out / "data" / "train.parquet")
    assert list(types) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert types["reward_model"] == "STRUCT(style VARCHAR, ground_truth VARCHAR)"
    assert types["extra_info"].startswith("STRUCT(split VARCHAR, index BIGINT, env_id VARCHAR")
    for row, source in zip(rows, rendered.rows["train"], strict=True):
        assert row["data_source"] == f"resyn/{source.env_id}"
        assert row["prompt"] == source.messages()
        assert row["ability"] == "reasoning"
        assert row["reward_model"] == {"style": "rule", "ground_truth": ground_truth(source)}
        info = row["extra_info"]
        assert (info["split"], info["index"], info["seed"], info["difficulty"]) == (
            "train",
            source.index,
            source.seed,
            source.difficulty,
        )
    _, test_rows = parquet(out / "data" / "test.parquet")
    assert {r["extra_info"]["split"] for r in test_rows} == {"test"}


def test_verl_compute_score(rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = write_export(rendered, tmp_path / "verl", "verl")
    reward = load(out / "reward.py")
    rows = rendered.rows["test"]
    for row in rows:
        truth = ground_truth(row)
        info = {"split": "test", "index": row.index}
        assert reward.compute_score(f"resyn/{row.env_id}", gold(row), truth, info) == 1.0
        assert (
            reward.compute_score(
                data_source=f"resyn/{row.env_id}", solution_str=wrong(row), ground_truth=truth
            )
            == 0.0
        )
    truth = ground_truth(rows[0])
    for bad in bad_completions():
        assert reward.compute_score("resyn/x", bad, truth, None) == 0.0
    for label in ("{not json", "", None, "[]", json.dumps({"env_id": "nope", "instance_json": "{}"})):
        assert reward.compute_score("resyn/x", gold(rows[0]), label) == 0.0
    batch = reward.compute_score_batch(
        data_sources=[f"resyn/{r.env_id}" for r in rows],
        solution_strs=[gold(r) if i % 2 else wrong(r) for i, r in enumerate(rows)],
        ground_truths=[ground_truth(r) for r in rows],
        extra_infos=[{} for _ in rows],
    )
    assert batch == [float(i % 2) for i in range(len(rows))]
    assert (
        reward.compute_score_batch(data_sources=[], solution_strs=[], ground_truths=[], extra_infos=[]) == []
    )
    assert reward.compute_score_batch(["resyn/x"], [gold(rows[0])], [], None) == [0.0]
    # Rows of another data source go to verl's default scorer: without verl, 0.0, not an error.
    monkeypatch.setitem(sys.modules, "verl", None)
    assert reward.compute_score("openai/gsm8k", "#### 42", "42") == 0.0
    mixed = reward.compute_score_batch(
        ["openai/gsm8k", f"resyn/{rows[0].env_id}"], ["#### 42", gold(rows[0])], ["42", truth], None
    )
    assert mixed == [0.0, 1.0]
    assert asyncio.run(reward.compute_score_async(f"resyn/{rows[0].env_id}", gold(rows[0]), truth)) == 1.0


def test_verl_reward_pickles_into_another_process(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = write_export(rendered, tmp_path / "verl", "verl")
    row = rendered.rows["test"][1]
    call = f"[f('resyn/x', {gold(row)!r}, {ground_truth(row)!r}), f('resyn/x', {wrong(row)!r}, {ground_truth(row)!r})]"
    assert unpickle_and_call(out, pickled_from(out, "compute_score", monkeypatch), call) == [1.0, 0.0]


# -- openrlhf ------------------------------------------------------------------------------------


def test_openrlhf_jsonl(rendered: Rendered, tmp_path: Path) -> None:
    out, entry = write_export(rendered, tmp_path / "openrlhf", "openrlhf")
    assert entry == "reward.py:reward_func"
    lines = jsonl(out / "data" / "train.jsonl")
    assert len(lines) == len(rendered.rows["train"])
    for line, row in zip(lines, rendered.rows["train"], strict=True):
        assert line["prompt"] == row.messages()
        assert line["label"] == ground_truth(row)
        assert json.loads(line["label"])["instance_json"] == row.instance_json
    out, _ = write_export(rendered, tmp_path / "standard", "openrlhf", {"prompt": "standard"})
    assert jsonl(out / "data" / "test.jsonl")[0]["prompt"] == rendered.rows["test"][0].prompt_text()


def test_openrlhf_reward_func(rendered: Rendered, tmp_path: Path) -> None:
    out, _ = write_export(rendered, tmp_path / "openrlhf", "openrlhf")
    reward = load(out / "reward.py")
    rows = rendered.rows["train"]
    # A templated prompt whose text itself mentions <answer></answer>: only the response is read.
    prompts = [f"<|user|>{r.prompt_text()}<|assistant|>" for r in rows]
    responses = [gold(r) if i % 3 else wrong(r) for i, r in enumerate(rows)]
    result = reward.reward_func(
        queries=[p + c for p, c in zip(prompts, responses, strict=True)],
        prompts=prompts,
        labels=[ground_truth(r) for r in rows],
    )
    expected = [float(i % 3 != 0) for i in range(len(rows))]
    assert set(result) == {"rewards", "scores", "extra_logs"}
    assert set(result["extra_logs"]) == {"resyn_no_answer", "resyn_error"}
    try:
        import torch  # noqa: F401  (with torch, tensors; see the trainers tests)
    except ImportError:
        assert result["rewards"] == expected and result["scores"] == expected
        assert result["extra_logs"]["resyn_error"] == [0.0] * len(rows)
    else:
        assert result["rewards"].tolist() == expected
    truth = ground_truth(rows[0])
    bad = bad_completions()
    result = reward.reward_func(
        [f"P{b}" if isinstance(b, str) else b for b in bad], ["P"] * len(bad), [truth] * len(bad)
    )
    assert list(result["rewards"]) == [0.0] * len(bad)
    assert list(reward.reward_func(["P<answer>1</answer>"], ["P"], [])["rewards"]) == [0.0]
    assert list(reward.reward_func(["P" + gold(rows[0])], ["P"], ["{oops"])["extra_logs"]["resyn_error"]) == [
        1.0
    ]


def test_openrlhf_reward_pickles_into_another_process(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = write_export(rendered, tmp_path / "openrlhf", "openrlhf")
    row = rendered.rows["train"][2]
    call = f"list(map(float, f(['P' + {gold(row)!r}], ['P'], [{ground_truth(row)!r}])['rewards']))"
    assert unpickle_and_call(out, pickled_from(out, "reward_func", monkeypatch), call) == [1.0]


# -- verifiers -----------------------------------------------------------------------------------


def test_verifiers_package(rendered: Rendered, tmp_path: Path) -> None:
    out, entry = write_export(rendered, tmp_path / "vf", "verifiers")
    assert entry == "environments/resyn_export/resyn_export.py:load_environment"
    package = out / "environments" / "resyn_export"
    data = package / "resyn_export_data"
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["project"]["name"] == "resyn-export"
    assert any(d.startswith("verifiers") for d in project["project"]["dependencies"])
    assert "resyn" in project["project"]["dependencies"]
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["include"] == [
        "resyn_export.py",
        "resyn_export_data/**",
    ]
    assert sorted(p.name for p in (data / "envs").iterdir()) == sorted(f"{e}.py" for e in rendered.sources)
    lines = jsonl(data / "train.jsonl")
    assert set(lines[0]) == {"question", "answer", "info", "task"}
    assert lines[0]["answer"] == ground_truth(rendered.rows["train"][0])
    assert json.loads((data / "config.json").read_text())["system_prompt"] == SYSTEM_PROMPT
    one, _ = write_export(
        Rendered({"train": rendered.rows["train"][:4]}, rendered.environments[:1], rendered.sources),
        tmp_path / "one",
        "verifiers",
    )
    assert (one / "environments" / "resyn_sort_numbers" / "resyn_sort_numbers.py").exists()
    named, _ = write_export(rendered, tmp_path / "named", "verifiers", {"name": "My-Tasks"})
    assert (named / "environments" / "my_tasks" / "my_tasks_data" / "test.jsonl").exists()


def test_verifiers_reward_without_verifiers(rendered: Rendered, tmp_path: Path) -> None:
    """The module imports without verifiers installed (it is only needed by load_environment), and
    its rubric function scores through resyn."""
    out, _ = write_export(rendered, tmp_path / "vf", "verifiers")
    module = load(out / "environments" / "resyn_export" / "resyn_export.py")
    assert len(module.rows("train")) == len(rendered.rows["train"])
    assert len(module.rows("train", 2)) == 2 and module.rows("validation") == []
    rows = rendered.rows["test"]

    async def score_all() -> list[float]:
        completions: list[Any] = [[{"role": "assistant", "content": gold(r)}] for r in rows]
        completions += [wrong(r) for r in rows] + bad_completions()
        answers = [ground_truth(r) for r in rows] * 2 + [ground_truth(rows[0])] * len(bad_completions())
        return list(
            await asyncio.gather(
                *(module.resyn_reward(c, a) for c, a in zip(completions, answers, strict=True))
            )
        )

    assert asyncio.run(score_all()) == [1.0] * len(rows) + [0.0] * (len(rows) + len(bad_completions()))


# -- reasoning-gym -------------------------------------------------------------------------------


@pytest.mark.reasoning_gym
def test_reasoning_gym_dataset(rendered: Rendered, tmp_path: Path) -> None:
    reasoning_gym = pytest.importorskip("reasoning_gym")
    from reasoning_gym.factory import DATASETS

    out, entry = write_export(rendered, tmp_path / "rg", "reasoning-gym", {"name": "resyn_fixtures"})
    assert entry == "reasoning_gym_dataset.py:ResynDataset"
    names = ["resyn_fixtures", "resyn_linear_equation", "resyn_modular_power", "resyn_sort_numbers"]
    try:
        module = load(out / "reasoning_gym_dataset.py")
        assert sorted(module.NAMES) == names
        data = reasoning_gym.create_dataset("resyn_fixtures", seed=3, split="test")
        assert len(data) == len(rendered.rows["test"])
        entries = list(data)
        assert {e["metadata"]["index"] for e in entries} == set(range(len(entries)))  # a permutation
        assert {e["metadata"]["source_dataset"] for e in entries} == {"resyn_fixtures"}
        assert entries == list(reasoning_gym.create_dataset("resyn_fixtures", seed=3, split="test"))
        by_index = {r.index: r for r in rendered.rows["test"]}
        for entry in entries:
            row = by_index[entry["metadata"]["index"]]
            assert entry["question"] == row.question and entry["answer"] == row.solution
            assert data.score_answer(entry["answer"], entry) == 1.0
            assert data.score_answer(gold(row), entry) == 1.0  # a whole completion is read too
            assert (
                data.score_answer(f"{entry['answer']} {entry['answer']}", entry) == 0.0
            )  # no partial credit
            assert data.score_answer(None, entry) == 0.0
        assert data.score_answer(entries[0]["answer"], {"metadata": {}}) == 0.0
        assert data.score_answer(OVERSIZE, entries[0]) == 0.0
        one = reasoning_gym.create_dataset("resyn_sort_numbers", size=10, seed=1)
        assert len(one) == 10 and {e["metadata"]["env_id"] for e in one} == {"sort_numbers"}
        assert one[0]["question"] == one[4]["question"]  # its 4 train rows, repeated
        with pytest.raises(ValueError, match="split"):
            reasoning_gym.create_dataset("resyn_fixtures", split="validation")
        # Importing the file again re-registers its own names; another export may not take them.
        load(out / "reasoning_gym_dataset.py")
        other, _ = write_export(rendered, tmp_path / "rg2", "reasoning-gym", {"name": "resyn_fixtures"})
        with pytest.raises(ValueError, match="already has a dataset"):
            load(other / "reasoning_gym_dataset.py")
    finally:
        for name in names:
            DATASETS.pop(name, None)
