"""``resyn export`` and :func:`resyn.export.exporter.export`: environment selection, planning,
rendering in the sandbox, splits that never share an instance, mixes, the manifest, the generic
formats' reward entry point, and bad input. The environments are fixture modules recorded in a
catalog (tests/export_helpers.py); they run only in the sandbox."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from resyn.export.errors import ExportError
from resyn.export.exporter import ExportSettings, export
from resyn.export.files import file_sha256
from resyn.export.mix import apportion, load_mix
from resyn.export.model import SYSTEM_PROMPT, ExportManifest
from resyn.export.plan import SEED_RANGE
from tests.export_helpers import GOOD, catalog_of
from tests.test_cli import assert_one_line_error
from tests.test_cli_catalog import resyn

BAD = GOOD.parent / "bad"
HOSTILE = GOOD.parent / "hostile"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("export") / "catalog.duckdb"
    modules = [
        GOOD / "count_divisible.py",
        GOOD / "arithmetic_expression.py",
        GOOD / "modular_power.py",
        BAD / "low_diversity.py",
        HOSTILE / "segfault.py",
    ]
    ids = catalog_of(path, modules, statuses={"low_diversity": "too_easy", "segfault": "unproven"})
    return path, ids


def load_entry(directory: Path) -> ModuleType:
    """Import an export's ``reward.py`` by path, as a trainer does."""
    spec = importlib.util.spec_from_file_location(f"reward_{abs(hash(directory))}", directory / "reward.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_export(catalog: Path, out: Path, **values: Any) -> ExportManifest:
    return export(ExportSettings.build(out=out, **values), catalog)


def test_jsonl_export_is_complete_and_scores(catalog: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, ids = catalog
    out = tmp_path / "out"
    manifest = run_export(path, out, format="jsonl", n_per_env=60, split="train=0.8,test=0.2", seed=5)
    # Default selection: the accepted environments only.
    assert [e.env_id for e in manifest.environments] == sorted(ids[:3])
    assert {name: count.rows for name, count in manifest.splits.items()} == {"train": 144, "test": 36}
    assert manifest.shortfalls == []
    train, test = read_jsonl(out / "data/train.jsonl"), read_jsonl(out / "data/test.jsonl")
    assert [row["index"] for row in train] == list(range(144))
    assert Counter(row["env_id"] for row in train) == {env_id: 48 for env_id in ids[:3]}
    # Splits never share an instance, and each split keeps to its own seed range.
    instances = [(row["env_id"], row["instance_json"]) for row in train + test]
    assert len(set(instances)) == len(instances)
    assert all(row["seed"] < SEED_RANGE for row in train)
    assert all(SEED_RANGE <= row["seed"] < 2 * SEED_RANGE for row in test)
    # Every level of each environment is drawn.
    levels = {(row["env_id"], row["difficulty"]) for row in train}
    assert levels == {(e.env_id, d) for e in manifest.environments for d in range(1, e.max_difficulty + 1)}
    row = train[0]
    assert row["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": row["question"]},
    ]
    assert row["messages"][-1]["content"] in row["prompt"]
    # The manifest describes exactly the files there.
    listed = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest.files) == listed
    assert all(file_sha256(out / name) == digest for name, digest in manifest.files.items())
    assert json.loads((out / "manifest.json").read_text())["splits"]["test"] == {"rows": 36, "requested": 36}
    for env in manifest.environments:
        assert file_sha256(out / env.module) == env.code_sha256
    # The reward entry point scores the reference answers 1 and a wrong answer 0.
    reward = load_entry(out)
    rows = train + test
    columns = (
        [r["env_id"] for r in rows],
        [r["code_sha256"] for r in rows],
        [r["instance_json"] for r in rows],
    )
    gold = [f"Thinking...\n<answer>{r['solution']}</answer>" for r in rows]
    assert reward.score(gold, *columns) == [1.0] * len(rows)
    assert reward.score(["<answer>not a number</answer>"] * len(rows), *columns) == [0.0] * len(rows)
    assert asyncio.run(reward.ascore(gold[:5], *(c[:5] for c in columns))) == [1.0] * 5


def test_exports_are_reproducible(catalog: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, ids = catalog
    made = [
        run_export(path, tmp_path / name, format="jsonl", env_ids=[ids[0]], n_per_env=30, seed=seed)
        for name, seed in (("a", 1), ("b", 1), ("c", 2))
    ]
    data = [m.files["data/train.jsonl"] for m in made]
    assert data[0] == data[1] != data[2]


def test_parquet_types(catalog: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, ids = catalog
    run_export(path, tmp_path / "p", format="parquet", env_ids=[ids[1]], n_per_env=10, difficulty="2-3")
    parquet = str(tmp_path / "p/data/train.parquet")
    types = dict(duckdb.sql(f"DESCRIBE SELECT * FROM '{parquet}'").fetchall()[i][:2] for i in range(12))
    assert types["messages"] == 'STRUCT("role" VARCHAR, "content" VARCHAR)[]'
    assert types["seed"] == "BIGINT" and types["instance_json"] == "VARCHAR"
    difficulties = duckdb.sql(f"SELECT DISTINCT difficulty FROM '{parquet}' ORDER BY 1").fetchall()
    assert difficulties == [(2,), (3,)]


def test_held_out_levels_appear_only_in_the_test_split(
    catalog: tuple[Path, list[str]], tmp_path: Path
) -> None:
    path, ids = catalog
    run_export(
        path,
        tmp_path / "h",
        format="jsonl",
        env_ids=[ids[0]],
        n_per_env=40,
        split="train=0.5,test=0.5",
        held_out_difficulty="4-5",
    )
    train = {row["difficulty"] for row in read_jsonl(tmp_path / "h/data/train.jsonl")}
    test = {row["difficulty"] for row in read_jsonl(tmp_path / "h/data/test.jsonl")}
    assert train == {1, 2, 3} and test == {4, 5}


def test_an_environment_with_few_instances_yields_what_it_has(
    catalog: tuple[Path, list[str]], tmp_path: Path
) -> None:
    path, ids = catalog
    # low_diversity has 40 distinct instances per level: asking for 100 gives those 40, once.
    manifest = run_export(
        path, tmp_path / "few", format="jsonl", env_ids=[ids[3]], n_per_env=100, difficulty=1
    )
    rows = read_jsonl(tmp_path / "few/data/train.jsonl")
    assert len(rows) == 40 == len({row["instance_json"] for row in rows})
    assert manifest.splits["train"].requested == 100
    assert len(manifest.shortfalls) == 1 and "40/100" in manifest.shortfalls[0]
    assert "repeated an instance" in manifest.shortfalls[0]


def test_a_hostile_environment_is_a_shortfall_not_a_crash(
    catalog: tuple[Path, list[str]], tmp_path: Path
) -> None:
    path, ids = catalog
    manifest = run_export(path, tmp_path / "hostile", format="jsonl", env_ids=[ids[0], ids[4]], n_per_env=5)
    assert manifest.rows_per_env["train"] == {ids[0]: 5}
    assert [env.env_id for env in manifest.environments] == [ids[0]]
    assert [p.stem for p in (tmp_path / "hostile/envs").iterdir()] == [ids[0]]
    assert any(note.startswith(ids[4]) and "failed" in note for note in manifest.shortfalls)
    with pytest.raises(ExportError, match="no instance could be rendered"):
        run_export(path, tmp_path / "only-hostile", format="jsonl", env_ids=[ids[4]], n_per_env=2)
    assert not (tmp_path / "only-hostile").exists()


def test_mix_files(catalog: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, ids = catalog
    mix = tmp_path / "mix.toml"
    mix.write_text(
        f"""total = 200
[[entries]]
env = "{ids[0]}"
weight = 3
difficulty = [2, 3]

[[entries]]
where = "name = 'arithmetic_expression' OR name = 'modular_power'"
weight = 1
difficulty = 4
"""
    )
    manifest = run_export(path, tmp_path / "m", format="jsonl", mix=mix, seed=3)
    rows = read_jsonl(tmp_path / "m/data/train.jsonl")
    counts = Counter((row["env_id"], row["difficulty"]) for row in rows)
    assert counts == {(ids[0], 2): 75, (ids[0], 3): 75, (ids[1], 4): 25, (ids[2], 4): 25}
    assert manifest.settings["mix"]["total"] == 200 and manifest.settings["mix_path"] == str(mix)
    as_json = tmp_path / "mix.json"
    as_json.write_text(json.dumps(load_mix(mix).model_dump()))
    again = run_export(path, tmp_path / "m2", format="jsonl", mix=as_json, seed=3)
    assert again.files["data/train.jsonl"] == manifest.files["data/train.jsonl"]


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [(10, [1, 1, 1], [4, 3, 3]), (7, [0, 2, 1], [0, 5, 2]), (0, [1], [0]), (5, [0.5, 0.5], [3, 2])],
)
def test_apportion(total: int, weights: list[float], expected: list[int]) -> None:
    assert apportion(total, weights) == expected


def test_an_existing_out_is_kept_unless_forced(catalog: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, ids = catalog
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="--force"):
        run_export(path, out, format="jsonl", env_ids=[ids[0]], n_per_env=3)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # A forced export that fails leaves the old directory as it was.
    with pytest.raises(ExportError):
        run_export(path, out, format="jsonl", env_ids=[ids[4]], n_per_env=1, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    run_export(path, out, format="jsonl", env_ids=[ids[0]], n_per_env=3, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["data", "envs", "manifest.json", "reward.py"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_export(catalog: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, ids = catalog
    out = tmp_path / "cli"
    result = resyn(
        "export", "parquet", "--catalog", str(path), "--out", str(out), "--env", ids[1][:12],
        "--n-per-env", "20", "--split", "train=0.9,test=0.1", "--seed", "9",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "20 rows" in result.stdout and "reward.py:score" in result.stdout
    manifest = ExportManifest.model_validate_json((out / "manifest.json").read_text())
    assert manifest.command.startswith("resyn export parquet --catalog")
    assert manifest.splits["test"].rows == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("export", "csv", "--out", "{tmp}/x"), "'csv' is not one of"),
        (("export", "jsonl", "--out", "{tmp}/x", "--where", "name = 'nothing'"), "no environments matching"),
        (("export", "jsonl", "--out", "{tmp}/x", "--where", "nonsense ="), "--where"),
        (("export", "jsonl", "--out", "{tmp}/x", "--env", "nope"), "nope"),
        (("export", "jsonl", "--out", "{tmp}/x", "--split", "train=a"), "--split"),
        (("export", "jsonl", "--out", "{tmp}/x", "--difficulty", "3-1"), "difficulty"),
        (("export", "jsonl", "--out", "{tmp}/x", "--difficulty", "9"), "above every chosen"),
        (("export", "jsonl", "--out", "{tmp}/x", "--mix", "{tmp}/none.toml"), "cannot read mix file"),
        (("export", "jsonl", "--out", "{tmp}/x", "--mix", "{tmp}/zero.toml"), "sum to 0"),
        (("export", "jsonl", "--out", "{tmp}/x", "--mix", "{tmp}/missing.toml"), "mix entry 1"),
        (("export", "jsonl", "--out", "{tmp}/x", "--mix", "{tmp}/broken.toml"), "not valid TOML"),
        (
            ("export", "jsonl", "--out", "{tmp}/x", "--mix", "{tmp}/missing.toml", "--difficulty", "1"),
            "not both",
        ),
        (("export", "jsonl", "--out", "{tmp}/full"), "--force"),
        (("export", "jsonl", "--out", "{tmp}/x", "--held-out-difficulty", "4-5"), "second split"),
        (("export", "jsonl", "--out", "{tmp}/x", "--option", "novalue"), "KEY=VALUE"),
        (("export", "trl", "--out", "{tmp}/x", "--option", "promt=standard"), "its options: files, prompt"),
        (("export", "trl", "--out", "{tmp}/x", "--option", "prompt=chat"), "expected one of"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    catalog: tuple[Path, list[str]], tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    path, _ = catalog
    (tmp_path / "zero.toml").write_text('total = 5\n[[entries]]\nenv = "a"\nweight = 0\n')
    (tmp_path / "missing.toml").write_text('total = 5\n[[entries]]\nenv = "no_such_env"\n')
    (tmp_path / "broken.toml").write_text("total = = 5\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = resyn(*(a.format(tmp=tmp_path) for a in args), "--catalog", str(path))
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_no_catalog(tmp_path: Path) -> None:
    result = resyn(
        "export", "jsonl", "--out", str(tmp_path / "x"), "--catalog", str(tmp_path / "none.duckdb")
    )
    assert_one_line_error(result, "no catalog")


def test_openrlhf_labels_score_the_same_through_the_file_and_resyn_serve(
    catalog: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """The label an ``openrlhf`` export writes is what ``resyn serve``'s ``/get_reward`` takes:
    the same rows score the same through the export's ``reward.py`` and over HTTP."""
    import urllib.request

    from resyn.reward import RewardScorer
    from resyn.serve.server import RewardServer, ServeConfig

    path, ids = catalog
    common: dict[str, Any] = {"env_ids": ids[:2], "n_per_env": 6, "seed": 4}
    run_export(path, tmp_path / "o", format="openrlhf", options={"prompt": "standard"}, **common)
    run_export(path, tmp_path / "g", format="jsonl", **common)
    rows = read_jsonl(tmp_path / "o/data/train.jsonl")
    gold = {(r["env_id"], r["seed"]): r["solution"] for r in read_jsonl(tmp_path / "g/data/train.jsonl")}
    responses = [
        f"<answer>{gold[(r['env_id'], r['seed'])]}</answer>" if i % 2 else "<answer>wrong</answer>"
        for i, r in enumerate(rows)
    ]
    body = {
        "query": [r["prompt"] + response for r, response in zip(rows, responses, strict=True)],
        "prompts": [r["prompt"] for r in rows],
        "labels": [r["label"] for r in rows],
    }
    expected = [float(i % 2) for i in range(len(rows))]
    from_file = load_entry(tmp_path / "o").reward_func(body["query"], body["prompts"], body["labels"])
    assert list(from_file["scores"]) == expected
    with RewardServer(RewardScorer.from_catalog(path, ids[:2]), ServeConfig(port=0)).start() as server:
        request = urllib.request.Request(
            f"{server.url}/get_reward",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            served = json.loads(reply.read())
    assert served["rewards"] == served["scores"] == expected


def test_catalog_environments_reads_whole_records_by_status_or_id(catalog: tuple[Path, list[str]]) -> None:
    from resyn.catalog import Catalog

    path, ids = catalog
    with Catalog.open(path, read_only=True) as opened:
        assert sorted(r.env_id for r in opened.environments()) == sorted(ids[:3])
        assert sorted(r.env_id for r in opened.environments(status=None)) == sorted(ids)
        assert [r.env_id for r in opened.environments(status="too_easy")] == [ids[3]]
        chosen = opened.environments([ids[4][:12], ids[0]])  # any status, prefixes resolve
        assert [r.env_id for r in chosen] == [ids[4], ids[0]]
        assert all(r.code == opened.environment(r.env_id).code for r in chosen)
