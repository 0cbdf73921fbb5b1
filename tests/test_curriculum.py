"""The online curriculum (``resyn.Curriculum``): levels follow the rewards fed back and stay in
their ranges, weights move toward learnable environments, seeds never repeat, draws are
reproducible (also through a checkpoint), and broken or hostile modules are dropped without
reaching the trainer.

Environment modules run only in sandbox workers (through the export renderer).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import resyn
from resyn.curriculum import (
    STATE_FORMAT,
    TRAIN_SEED_RANGE,
    Curriculum,
    CurriculumError,
    CurriculumItem,
    CurriculumSettings,
    SeedPermutation,
)
from resyn.export.model import SYSTEM_PROMPT
from resyn.reward import EnvSpec
from resyn.sandbox import SandboxConfig
from tests.conftest import FIXTURES

GOOD = FIXTURES / "good"
COUNT = "count_divisible"  # levels 1..5
ARITH = "arithmetic_expression"  # levels 1..6

# Small windows so that a few batches move levels; the thresholds are the defaults.
QUICK = CurriculumSettings(window=8, min_samples=8)
# Hostile modules must not cost the default deadlines.
FAST_SANDBOX = SandboxConfig(load_timeout_s=3.0, item_timeout_s=2.0, call_overhead_s=1.0)

Reward = Callable[[CurriculumItem], float]


def spec(name: str, folder: str = "good") -> EnvSpec:
    return EnvSpec.from_file(FIXTURES / folder / f"{name}.py")


@pytest.fixture
def two_envs() -> list[EnvSpec]:
    return [spec(COUNT), spec(ARITH)]


def coin(item: CurriculumItem) -> float:
    """A reward that depends on the rendered item: equal items get equal rewards, and a
    curriculum that drew something else is fed something else."""
    digest = hashlib.sha256(f"{item.item_id}|{item.question}|{item.instance_json}".encode()).digest()
    return 1.0 if digest[0] < 128 else 0.0


def always(value: float) -> Reward:
    return lambda item: value


def run(curriculum: Curriculum, steps: int, n: int, reward: Reward) -> list[list[CurriculumItem]]:
    """``steps`` rounds of draw ``n`` → reward every item."""
    batches = []
    for _ in range(steps):
        batch = curriculum.next_batch(n)
        assert len(batch) == n
        curriculum.update(batch, [reward(item) for item in batch])
        batches.append(batch)
    return batches


def fingerprint(batches: Sequence[Sequence[CurriculumItem]]) -> list[tuple[str, str, str]]:
    return [(item.item_id, item.question, item.instance_json) for batch in batches for item in batch]


# -- levels --------------------------------------------------------------------------------------------


def test_levels_rise_with_passes_up_to_the_top_and_never_skip(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=3, settings=QUICK) as curriculum:
        assert {curriculum.level(COUNT), curriculum.level(ARITH)} == {1}
        seen: dict[str, list[int]] = {COUNT: [], ARITH: []}
        for batch in run(curriculum, 20, 16, always(1.0)):
            for item in batch:
                seen[item.env_id].append(item.difficulty)
        assert curriculum.level(COUNT) == 5 and curriculum.level(ARITH) == 6
        for levels in seen.values():
            assert levels == sorted(levels)  # only ever up
            assert set(levels) == set(range(1, max(levels) + 1))  # one step at a time
        stats = curriculum.stats()
        assert stats["envs"][COUNT]["moves_up"] == 4 and stats["envs"][ARITH]["moves_up"] == 5
        assert stats["envs"][COUNT]["pass_rate"] == 1.0 and stats["envs"][COUNT]["levels"] == [1, 5]


def test_levels_fall_with_failures_down_to_the_bottom(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=3, settings=QUICK, start={COUNT: 5, ARITH: 6}) as curriculum:
        first = curriculum.next_batch(16)
        assert {(i.env_id, i.difficulty) for i in first} == {(COUNT, 5), (ARITH, 6)}
        curriculum.update(first, [0.0] * len(first))
        run(curriculum, 20, 16, always(0.0))
        assert curriculum.level(COUNT) == 1 and curriculum.level(ARITH) == 1
        assert curriculum.stats()["envs"][ARITH]["moves_down"] == 5


def test_intermediate_pass_rates_hold_the_level() -> None:
    settings = CurriculumSettings(window=8, min_samples=8, success_threshold=0.5)
    with Curriculum([spec(COUNT)], seed=0, settings=settings, start={COUNT: 3}) as curriculum:
        half = iter([1.0, 0.0] * 1000)
        run(curriculum, 10, 8, lambda item: next(half))
        assert curriculum.level(COUNT) == 3
        assert curriculum.stats()["envs"][COUNT]["pass_rate"] == 0.5


def test_a_level_moves_only_after_min_samples_since_arriving() -> None:
    with Curriculum([spec(COUNT)], seed=0, settings=QUICK) as curriculum:
        run(curriculum, 1, 8, always(1.0))
        assert curriculum.level(COUNT) == 2
        run(curriculum, 1, 7, always(1.0))
        assert curriculum.level(COUNT) == 2  # 7 < min_samples at level 2
        run(curriculum, 1, 1, always(1.0))
        assert curriculum.level(COUNT) == 3


def test_rewards_for_a_level_already_left_do_not_move_the_new_one() -> None:
    with Curriculum([spec(COUNT)], seed=0, settings=QUICK) as curriculum:
        early, late = curriculum.next_batch(8), curriculum.next_batch(8)
        assert {i.difficulty for i in early + late} == {1}
        curriculum.update(early, [1.0] * 8)
        assert curriculum.level(COUNT) == 2
        curriculum.update(late, [1.0] * 8)  # still level-1 evidence
        assert curriculum.level(COUNT) == 2
        stats = curriculum.stats()["envs"][COUNT]
        assert stats["pass_rates"] == {"1": 1.0} and stats["window"] == 0


def test_levels_stay_inside_their_ranges(two_envs: list[EnvSpec]) -> None:
    levels = {ARITH: (2, 4), COUNT: (3, 99)}  # the top is clipped to the module's 5
    with Curriculum(two_envs, seed=1, settings=QUICK, levels=levels, start={ARITH: 1}) as curriculum:
        assert curriculum.level(ARITH) == 2 and curriculum.level(COUNT) == 3
        drawn = fingerprint_levels(run(curriculum, 15, 16, always(1.0)))
        assert curriculum.level(ARITH) == 4 and curriculum.level(COUNT) == 5
        drawn += fingerprint_levels(run(curriculum, 15, 16, always(0.0)))
        assert curriculum.level(ARITH) == 2 and curriculum.level(COUNT) == 3
        assert {d for e, d in drawn if e == ARITH} == {2, 3, 4}
        assert {d for e, d in drawn if e == COUNT} == {3, 4, 5}
        assert curriculum.stats()["envs"][COUNT]["levels"] == [3, 5]


def fingerprint_levels(batches: list[list[CurriculumItem]]) -> list[tuple[str, int]]:
    return [(item.env_id, item.difficulty) for batch in batches for item in batch]


# -- weights -------------------------------------------------------------------------------------------


def test_reweighting_shifts_mass_toward_intermediate_pass_rates() -> None:
    envs = [spec(COUNT), spec(ARITH), spec("sort_numbers")]
    settings = CurriculumSettings(reweight=1.0, learnability_floor=0.1, success_threshold=0.5)
    # count_divisible is solved at its only level, arithmetic never, sort_numbers half the time.
    levels = {COUNT: (5, 5), ARITH: (1, 1), "sort_numbers": (1, 1)}
    outcome = {COUNT: always(1.0), ARITH: always(0.0), "sort_numbers": coin}
    with Curriculum(envs, seed=5, settings=settings, levels=levels) as curriculum:
        assert curriculum.probabilities() == pytest.approx({e.env_id: 1 / 3 for e in envs})
        run(curriculum, 12, 48, lambda item: outcome[item.env_id](item))
        probabilities = curriculum.probabilities()
        assert probabilities["sort_numbers"] > 0.7
        # the floor: neither the solved nor the hopeless environment starves
        assert probabilities[COUNT] > 0.05 and probabilities[ARITH] > 0.05
        drawn = Counter(item.env_id for item in curriculum.next_batch(300))
        assert drawn["sort_numbers"] > 2 * (drawn[COUNT] + drawn[ARITH]) > 0
        stats = curriculum.stats()["envs"]
        assert stats["sort_numbers"]["learnability"] > stats[COUNT]["learnability"]
        assert stats["sort_numbers"]["probability"] == probabilities["sort_numbers"]


def test_without_reweighting_the_base_weights_rule(two_envs: list[EnvSpec]) -> None:
    settings = CurriculumSettings(reweight=0.0)
    with Curriculum(two_envs, seed=2, settings=settings, weights={COUNT: 3.0}) as curriculum:
        run(curriculum, 3, 32, lambda item: 1.0 if item.env_id == COUNT else 0.0)
        assert curriculum.probabilities() == pytest.approx({COUNT: 0.75, ARITH: 0.25})
        drawn = Counter(item.env_id for item in curriculum.next_batch(400))
        assert 250 < drawn[COUNT] < 350


def test_a_zero_weight_environment_is_never_drawn(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=2, weights={ARITH: 0.0}) as curriculum:
        assert {item.env_id for item in curriculum.next_batch(64)} == {COUNT}


# -- seeds and determinism -----------------------------------------------------------------------------


def test_seed_permutation_is_a_bijection_with_an_inverse() -> None:
    for size in (1, 2, 7, 1000, 4097):
        perm = SeedPermutation("k", size)
        assert sorted(perm(i) for i in range(size)) == list(range(size))
        assert all(perm.index(perm(i)) == i for i in range(size))
    big = SeedPermutation("k", TRAIN_SEED_RANGE)
    seeds = [big(i) for i in range(2000)]
    assert len(set(seeds)) == 2000 and all(0 <= s < TRAIN_SEED_RANGE for s in seeds)
    assert [big.index(s) for s in seeds] == list(range(2000))
    assert seeds != [SeedPermutation("other", TRAIN_SEED_RANGE)(i) for i in range(2000)]
    with pytest.raises(IndexError):
        big(TRAIN_SEED_RANGE)


def test_train_seeds_stay_below_the_exports_held_out_range() -> None:
    plan = pytest.importorskip("resyn.export.plan")
    assert plan.SEED_RANGE == TRAIN_SEED_RANGE
    with pytest.raises(ValidationError):
        CurriculumSettings(seed_range=TRAIN_SEED_RANGE + 1)


def test_items_never_repeat(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=4, settings=QUICK) as curriculum:
        items = [item for batch in run(curriculum, 12, 32, coin) for item in batch]
        keys = [(item.env_id, item.seed) for item in items]
        assert len(set(keys)) == len(keys)  # not even across levels
        assert len({item.item_id for item in items}) == len(items)
        assert all(0 <= item.seed < TRAIN_SEED_RANGE for item in items)


def test_a_small_seed_range_is_used_up_exactly_once() -> None:
    settings = CurriculumSettings(seed_range=5)
    with Curriculum([spec(COUNT)], seed=0, settings=settings) as curriculum:
        assert sorted(item.seed for item in curriculum.next_batch(5)) == [0, 1, 2, 3, 4]
        with pytest.raises(CurriculumError, match="seed_range"):
            curriculum.next_batch(1)


def test_same_seed_and_rewards_give_the_same_items(two_envs: list[EnvSpec]) -> None:
    settings = QUICK.model_copy(update={"reweight": 0.8})
    with Curriculum(two_envs, seed=11, settings=settings) as a:
        first = fingerprint(run(a, 10, 24, coin))
        stats_a = a.stats()
    # another argument order and another instance: still the same draws
    with Curriculum(list(reversed(two_envs)), seed=11, settings=settings) as b:
        assert fingerprint(run(b, 10, 24, coin)) == first
        assert b.stats() == stats_a
    assert len({d for _, _, d in first}) > 1
    with Curriculum(two_envs, seed=12, settings=settings) as c:
        assert fingerprint(run(c, 10, 24, coin)) != first
    # the same seed fed other rewards moves differently
    with Curriculum(two_envs, seed=11, settings=settings) as d:
        assert fingerprint(run(d, 10, 24, always(1.0))) != first


def test_resume_from_a_json_state_continues_identically(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=7, settings=QUICK) as a:
        run(a, 6, 16, coin)
        in_flight = a.next_batch(8)  # drawn before the checkpoint, rewarded after it
        state = json.loads(json.dumps(a.state_dict()))
        assert state["format"] == STATE_FORMAT and len(state["pending"]) == 8
        a.update(in_flight, [coin(item) for item in in_flight])
        after_a = fingerprint(run(a, 6, 16, coin))
        stats_a = a.stats()
    with Curriculum(two_envs, seed=999, settings=QUICK) as b:
        b.load_state_dict(state)
        b.update([item.item_id for item in in_flight], [coin(item) for item in in_flight])
        assert fingerprint(run(b, 6, 16, coin)) == after_a
        assert b.stats() == stats_a
        assert b.seed == 7


def test_a_state_from_other_environments_is_refused(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=0) as a:
        state = a.state_dict()
    with Curriculum([spec(COUNT)], seed=0) as b:
        with pytest.raises(CurriculumError, match="arithmetic_expression"):
            b.load_state_dict(state)
        with pytest.raises(CurriculumError, match="format"):
            b.load_state_dict({"format": "something else"})


# -- rewards -------------------------------------------------------------------------------------------


def test_update_ignores_and_counts_what_it_cannot_use() -> None:
    settings = CurriculumSettings(max_pending=6)
    with Curriculum([spec(COUNT)], seed=0, settings=settings) as curriculum:
        batch = curriculum.next_batch(8)  # the first two expire (max_pending 6)
        assert curriculum.stats()["expired"] == 2 and curriculum.stats()["pending"] == 6
        used = curriculum.update(
            [batch[0], "no-such-item", f"{COUNT}:1:12345", batch[2], batch[2], batch[2], batch[3], batch[4]],
            [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, float("nan"), None],
        )
        assert used == 3  # batch[2]'s group of three; batch[3] and batch[4] had no valid reward
        assert curriculum.update([batch[2], {"item_id": batch[5].item_id}], [1.0, 0.0]) == 1
        stats = curriculum.stats()
        assert stats["ignored_late"] == 2  # batch[0] (expired) and batch[2] (already rewarded)
        assert stats["ignored_unknown"] == 2
        assert stats["invalid_rewards"] == 2
        assert stats["rewarded"] == 4 and stats["samples"] == 4 and stats["pending"] == 2
        assert stats["envs"][COUNT]["pass_rates"] == {"1": 0.5}
        with pytest.raises(ValueError, match="one reward per item"):
            curriculum.update(batch[:2], [1.0])


def test_reward_function_scores_in_the_sandbox_and_feeds_back() -> None:
    settings = CurriculumSettings(window=4, min_samples=4)
    with Curriculum([spec(COUNT)], seed=0, settings=settings) as curriculum:
        reward = curriculum.reward_function()
        items = curriculum.next_batch(8)
        assert all(item.solution is not None for item in items)
        rows = [item.row() for item in items]
        columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
        completions = [f"Easy. <answer>{item.solution}</answer>" for item in items]
        completions[-1] = "no idea"
        scores = reward(prompts=[row["prompt"] for row in rows], completions=completions, **columns)
        assert scores == [1.0] * 7 + [0.0]
        assert curriculum.stats()["rewarded"] == 8 and curriculum.level(COUNT) == 2


# -- iteration -----------------------------------------------------------------------------------------


def test_iterating_yields_rows_with_a_prompt(two_envs: list[EnvSpec]) -> None:
    with Curriculum(two_envs, seed=0, settings=CurriculumSettings(prefetch=4)) as curriculum:
        rows = list(islice(iter(curriculum), 10))
        assert len({row["item_id"] for row in rows}) == 10
        row = rows[0]
        assert set(row) == {
            "prompt",
            "item_id",
            "env_id",
            "code_sha256",
            "seed",
            "difficulty",
            "instance_json",
        }
        assert row["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert row["prompt"][1]["role"] == "user" and json.loads(row["instance_json"])
        assert curriculum.update(rows, [1.0] * 10) == 10
        assert curriculum.stats()["issued"] == 12  # three prefetches of four
    text = CurriculumSettings(prompt_format="text")
    with Curriculum(two_envs, seed=0, settings=text) as curriculum:
        prompt = next(iter(curriculum))["prompt"]
        assert isinstance(prompt, str) and prompt.endswith(SYSTEM_PROMPT)


# -- broken and hostile environments -------------------------------------------------------------------


def test_broken_and_hostile_modules_are_dropped_or_capped(caplog: pytest.LogCaptureFixture) -> None:
    envs = [
        spec(COUNT),
        spec("syntax_error", "bad"),  # does not import
        spec("raise_at_max", "bad"),  # generate raises at level 5 only
        spec("sleep_import", "hostile"),  # never finishes importing
        spec("segfault", "hostile"),  # generate kills the worker
    ]
    caplog.set_level(logging.WARNING, logger="resyn.curriculum")
    with Curriculum(envs, seed=0, start={"raise_at_max": 5}, sandbox=FAST_SANDBOX) as curriculum:
        assert set(curriculum.dropped) == {"syntax_error", "sleep_import"}
        items = [item for _ in range(4) for item in curriculum.next_batch(24)]
        assert len(items) == 96
        assert {item.env_id for item in items} == {COUNT, "raise_at_max"}
        assert set(curriculum.dropped) == {"syntax_error", "sleep_import", "segfault"}
        stats = curriculum.stats()
        raise_at_max = stats["envs"]["raise_at_max"]
        assert raise_at_max["levels"] == [1, 4] and raise_at_max["level"] == 4
        assert raise_at_max["render_failures"] >= CurriculumSettings().max_render_failures
        assert 5 not in {item.difficulty for item in items if item.env_id == "raise_at_max"}
        assert stats["render_failures"] >= 2 * CurriculumSettings().max_render_failures
        assert stats["envs"]["segfault"]["probability"] == 0.0
        assert "does not load" in curriculum.dropped["syntax_error"]
        assert "fails to render at level 1" in curriculum.dropped["segfault"]
        # capped and dropped environments stay so across a checkpoint
        state = curriculum.state_dict()
    assert any("dropped environment segfault" in r.getMessage() for r in caplog.records)
    with Curriculum(envs, seed=0, start={"raise_at_max": 5}, sandbox=FAST_SANDBOX) as again:
        again.load_state_dict(state)
        assert set(again.dropped) == {"syntax_error", "sleep_import", "segfault"}
        assert again.level("raise_at_max") == 4 and again.stats()["envs"]["raise_at_max"]["levels"] == [1, 4]


def test_no_loadable_environment_is_a_clear_error() -> None:
    with pytest.raises(CurriculumError, match=r"no environment left.*syntax_error.*does not load"):
        Curriculum([spec("syntax_error", "bad"), spec("two_envs", "bad")], sandbox=FAST_SANDBOX)


def test_running_out_of_environments_mid_stream_is_a_clear_error() -> None:
    with (
        Curriculum([spec("segfault", "hostile")], sandbox=FAST_SANDBOX) as curriculum,
        pytest.raises(CurriculumError, match=r"no environment left.*segfault"),
    ):
        curriculum.next_batch(4)


def test_bad_arguments_are_refused_before_anything_runs(two_envs: list[EnvSpec]) -> None:
    with pytest.raises(CurriculumError, match="nope"):
        Curriculum(two_envs, weights={"nope": 1.0})
    with pytest.raises(CurriculumError, match="sum to 0"):
        Curriculum(two_envs, weights={COUNT: 0.0, ARITH: 0.0})
    with pytest.raises(CurriculumError, match="finite"):
        Curriculum(two_envs, weights={COUNT: float("inf")})
    with pytest.raises(CurriculumError, match="more than once"):
        Curriculum([spec(COUNT), spec(COUNT)])
    with pytest.raises(CurriculumError, match="at least one"):
        Curriculum([])
    with pytest.raises(ValidationError, match="lower_below"):
        CurriculumSettings(lower_below=0.8, raise_above=0.8)


# -- construction from stored environments -------------------------------------------------------------


def test_from_export_reads_the_manifest_and_modules(tmp_path: Path) -> None:
    from resyn.export.model import ExportedEnv, ExportManifest

    source = GOOD / f"{COUNT}.py"
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "count-1234.py").write_text(source.read_text())
    exported = ExportedEnv(
        env_id="count-1234",
        name=COUNT,
        keyword="divisibility",
        code_sha256=spec(COUNT).code_sha256,
        max_difficulty=5,
        has_solution=True,
        module="envs/count-1234.py",
    )
    manifest = ExportManifest(
        format="jsonl",
        resyn_version=resyn.__version__,
        python_version="3.11",
        command="test",
        catalog=None,
        seed=0,
        settings={},
        environments=[exported],
        splits={},
        rows_per_env={},
        files={},
    )
    (tmp_path / "manifest.json").write_text(manifest.model_dump_json())
    with Curriculum.from_export(tmp_path, seed=1) as curriculum:
        items = curriculum.next_batch(4)
        assert {(i.env_id, i.code_sha256) for i in items} == {("count-1234", exported.code_sha256)}
    with pytest.raises(CurriculumError, match="not an export directory"):
        Curriculum.from_export(tmp_path / "missing")


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The small test catalog, its run-a graph coloring environment being count_divisible (run-b's
    accepted environment is a module that does not load)."""
    from tests.test_catalog import build_small_catalog

    path = tmp_path / "catalog.duckdb"
    code = (GOOD / f"{COUNT}.py").read_text()
    return path, build_small_catalog(path, code_for={"graph coloring": (COUNT, code)})


def test_from_catalog_starts_at_the_most_learnable_calibrated_level(
    catalog: tuple[Path, dict[str, Any]],
) -> None:
    from resyn.catalog import Catalog
    from resyn.catalog.records import CalibrationLevel, CalibrationRecord

    path, ids = catalog
    env_id = ids["coloring"]
    rates = {1: 1.0, 2: 0.875, 3: 0.5, 4: 0.125, 5: 0.0}
    levels = [
        CalibrationLevel(
            difficulty=d, attempts=8, correct=int(8 * p), pass_rate=p, learnability=4 * p * (1 - p)
        )
        for d, p in rates.items()
    ]
    calibration = CalibrationRecord(
        calibration_id="cal-1",
        env_id=env_id,
        run_id=None,
        solver_model="replay/solver",
        instances_per_level=2,
        attempts_per_instance=4,
        status="accepted",
        levels=levels,
        learnability=0.5,
        any_verified=True,
    )
    with Catalog.open(path) as opened:
        opened.add_calibration(calibration, [])
    with Curriculum.from_catalog(path, [env_id]) as curriculum:
        assert curriculum.env_ids == [env_id] and curriculum.level(env_id) == 3
        assert {item.difficulty for item in curriculum.next_batch(4)} == {3}
    with Curriculum.from_catalog(path, [env_id], start={env_id: 5}) as curriculum:
        assert curriculum.level(env_id) == 5
    with Curriculum.from_catalog(path, [env_id], start_from_calibration=False) as curriculum:
        assert curriculum.level(env_id) == 1


def test_from_mix_takes_weights_and_ranges(tmp_path: Path, catalog: tuple[Path, dict[str, Any]]) -> None:
    pytest.importorskip("resyn.export.select")
    path, ids = catalog
    mix = tmp_path / "mix.json"
    entries = [
        {"env": [ids["coloring"]], "weight": 2.0, "difficulty": [2, 4]},
        {"where": "run_id = 'run-b'", "weight": 1.0},
    ]
    mix.write_text(json.dumps({"total": 100, "entries": entries}))
    with Curriculum.from_mix(mix, path, settings=QUICK) as curriculum:
        assert set(curriculum.dropped) == {ids["coloring_b"]}  # its module does not load
        stats = curriculum.stats()["envs"]
        assert stats[ids["coloring"]]["weight"] == 2.0 and stats[ids["coloring_b"]]["weight"] == 1.0
        assert stats[ids["coloring"]]["levels"] == [2, 4] and curriculum.level(ids["coloring"]) == 2
        run(curriculum, 8, 16, always(1.0))
        assert curriculum.level(ids["coloring"]) == 4


# -- lifecycle and processes ---------------------------------------------------------------------------

_TWIN = """
import hashlib, json, sys
from resyn.curriculum import Curriculum, CurriculumSettings
from resyn.reward import EnvSpec

specs = [EnvSpec.from_file(p) for p in sys.argv[1:]]
with Curriculum(specs, seed=5, settings=CurriculumSettings(window=8, min_samples=8)) as c:
    out = []
    for _ in range(6):
        batch = c.next_batch(16)
        out += [(i.item_id, i.question) for i in batch]
        c.update(batch, [float(hashlib.sha256(i.question.encode()).digest()[0] < 128) for i in batch])
print(hashlib.sha256(json.dumps([out, c.stats()]).encode()).hexdigest())
"""


def test_draws_do_not_depend_on_the_process_hash_seed() -> None:
    paths = [str(GOOD / f"{name}.py") for name in (COUNT, ARITH, "sort_numbers")]
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _TWIN, *paths], env=env, capture_output=True, text=True, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_a_closed_curriculum_refuses_to_draw_but_keeps_its_state() -> None:
    curriculum = Curriculum([spec(COUNT)], seed=0)
    batch = curriculum.next_batch(2)
    curriculum.close()
    with pytest.raises(CurriculumError, match="closed"):
        curriculum.next_batch(1)
    assert curriculum.update(batch, [1.0, 1.0]) == 2
    assert curriculum.state_dict()["counters"]["rewarded"] == 2
