"""The reasoning-gym adapter: module sources, the sandbox round trip, and entry reconstruction.

Skipped without the optional extra (``pip install 'resyn[reasoning-gym]'``). reasoning-gym is a
trusted library, so some tests call it in-process; the wrapped modules also go through the sandbox.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("reasoning_gym")

from resyn.adapters import AdapterError
from resyn.adapters import reasoning_gym as rg
from resyn.env import instance_rng
from resyn.sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.reasoning_gym

# Importing reasoning-gym in a fresh worker takes 3-8 s (matplotlib rebuilds its font cache in the
# worker's empty HOME every time), over the default 10 s load deadline on a busy machine.
CONFIG = SandboxConfig(load_timeout_s=60)

# chain_sum: tuples in metadata (typed copy); graph_color: no gold answer, integer dict keys;
# dice: plain JSON metadata (exact copy).
SANDBOX_TASKS = ["chain_sum", "graph_color", "dice"]


def _env(task: str) -> rg.ReasoningGymTask:
    """The wrapper class defined by adapter_source, instantiated in-process."""
    namespace: dict[str, Any] = {}
    exec(compile(rg.adapter_source(task), f"rg_{task}.py", "exec"), namespace)
    classes = [
        value
        for value in namespace.values()
        if isinstance(value, type)
        and issubclass(value, rg.ReasoningGymTask)
        and value is not rg.ReasoningGymTask
    ]
    assert len(classes) == 1
    return classes[0]()


def _roundtrip(instance: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(instance, allow_nan=False))
    return result


# -- task list and module sources ------------------------------------------------------------------------
def test_task_names_are_sorted_and_exclude_composite() -> None:
    names = rg.task_names()
    assert names == sorted(names)
    assert "chain_sum" in names and "composite" not in names
    assert len(names) > 50


def test_unknown_task_raises_with_a_suggestion() -> None:
    with pytest.raises(AdapterError, match=r"unknown reasoning-gym task 'chain_sun'.*--list-rg.*'chain_sum'"):
        rg.adapter_source("chain_sun")
    with pytest.raises(AdapterError, match="--list-rg"):
        rg.adapter_source("no_such_thing_at_all")


def test_adapter_source_defines_one_named_subclass() -> None:
    source = rg.adapter_source("rg:chain_sum")
    assert source == rg.adapter_source("chain_sum")
    compile(source, "rg_chain_sum.py", "exec")
    assert 'task = "chain_sum"' in source
    assert 'name = "rg_chain_sum"' in source
    env = _env("chain_sum")
    assert env.name == "rg_chain_sum"
    assert env.max_difficulty == rg.level_count("chain_sum") > 1


def test_levels_stop_at_the_first_invalid_curriculum_level() -> None:
    # caesar_cipher's level 3 asks for a rotation outside [1, 25]; knight_swap's lowest level
    # already asks for fewer nodes than it accepts, so it falls back to the defaults.
    assert 1 <= rg.level_count("caesar_cipher") < rg._curriculum_levels("caesar_cipher")
    assert rg.level_count("knight_swap") == 1
    env = _env("knight_swap")
    instance = env.generate(instance_rng(0, 1), 1)
    assert instance["rg_config"]["min_nodes"] >= 6
    assert rg.level_count("acre") == 1  # no curriculum


def test_without_the_extra_import_works_and_calls_say_how_to_install() -> None:
    script = (
        "import sys; sys.modules['reasoning_gym'] = None\n"  # makes `import reasoning_gym` fail
        "import resyn.adapters.reasoning_gym as m\n"
        "for call in (m.task_names, lambda: m.adapter_source('chain_sum')):\n"
        "    try:\n"
        "        call()\n"
        "    except m.AdapterError as exc:\n"
        "        print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    hint = "reasoning-gym is not installed: pip install 'resyn[reasoning-gym]'"
    assert result.stdout.splitlines() == [hint, hint]


# -- the sandbox round trip --------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=SANDBOX_TASKS)
def loaded(request: pytest.FixtureRequest) -> Any:
    task = request.param
    with Sandbox(rg.adapter_source(task), filename=f"rg_{task}.py", config=CONFIG) as sandbox:
        load = sandbox.load()
        assert load.ok, load.error
        yield task, sandbox, load


def test_sandbox_gold_scores_one_and_wrong_answers_less(loaded: Any) -> None:
    task, sandbox, load = loaded
    assert load.name == f"rg_{task}"
    top = load.max_difficulty
    keys = [(seed, 1) for seed in range(3)] + [(seed, top) for seed in range(2)]
    samples = sandbox.sample(keys)
    assert all(s.ok for s in samples), [s.error for s in samples if not s.ok]
    instances = [s.value["instance"] for s in samples]
    items: list[tuple[int, str]] = []
    for index, sample in enumerate(samples):
        assert sample.value["question"] == instances[index]["question"]
        if sample.value["solution"] is not None:
            items.append((index, sample.value["solution"]))
        items += [(index, ""), (index, "definitely not the answer"), (index, "0")]
    scores = sandbox.verify(instances, items, check_mutation=True)
    assert all(r.ok for r in scores), [r.error for r in scores if not r.ok]
    for (index, answer), result in zip(items, scores, strict=True):
        assert isinstance(result.value, float), result.value  # no mutation report
        if answer == samples[index].value["solution"]:
            assert result.value == 1.0, (task, answer)
        else:
            assert result.value < 1.0, (task, answer)


def test_sandbox_same_seed_gives_the_same_instance(loaded: Any) -> None:
    task, sandbox, _load = loaded
    keys = [(7, 1), (7, 1), (8, 1)]
    first = [r.value for r in sandbox.generate(keys)]
    assert first[0] == first[1] and first[0] != first[2]
    # and in another worker with another PYTHONHASHSEED
    with Sandbox(rg.adapter_source(task), filename=f"rg_{task}.py", config=CONFIG, hash_seed=12345) as other:
        assert [r.value for r in other.generate(keys[:1])] == first[:1]


# -- entries, copies and caches (in-process) -----------------------------------------------------------------
def test_verify_matches_score_answer_on_the_original_entry() -> None:
    import reasoning_gym

    for task in ("chain_sum", "graph_color", "advanced_geometry", "dice"):
        env = _env(task)
        instance = _roundtrip(env.generate(instance_rng(3, 1), 1))
        dataset = reasoning_gym.create_dataset(
            task, seed=instance["rg_seed"], size=1, **_config_args(instance)
        )
        entry = dataset[0]
        assert dataset.config == rg._config(task, 1, instance["rg_seed"])
        assert entry["question"] == instance["question"]
        answers = [env.solution(instance) or "", "wrong", "", "1"]
        for answer in answers:
            assert env.verify(instance, answer) == pytest.approx(float(dataset.score_answer(answer, entry)))


def _config_args(instance: dict[str, Any]) -> dict[str, Any]:
    args = dict(instance["rg_config"])
    args.pop("seed", None)
    args.pop("size", None)
    return args


def test_entry_modes_exact_typed_and_regenerated() -> None:
    exact = _roundtrip(_env("dice").generate(instance_rng(0, 1), 1))
    assert exact["rg_exact"] is True and "rg_typed" not in exact
    typed = _roundtrip(_env("graph_color").generate(instance_rng(0, 1), 1))
    assert typed["rg_exact"] is False and "rg_typed" in typed
    # Without a typed copy (metadata with numpy values or objects, e.g. some codeio items) verify
    # regenerates the item from (task, level, rg_seed).
    regen = copy.deepcopy(typed)
    del regen["rg_typed"]
    fresh = _env("graph_color")
    colouring = _valid_colouring(typed)
    assert fresh.verify(typed, colouring) == 1.0
    assert fresh.verify(regen, colouring) == 1.0
    assert (0, typed["rg_seed"]) not in fresh._regenerated.data
    assert fresh._regenerated.get((1, typed["rg_seed"]))[0]["question"] == typed["question"]
    # a regenerated item that differs from the instance (a task that is not reproducible): the
    # instance's plain copy is used instead
    tampered = copy.deepcopy(regen)
    tampered["question"] = "something else"
    assert fresh.verify(tampered, colouring) == 1.0
    chain = _env("chain_sum")
    instance = _roundtrip(chain.generate(instance_rng(0, 1), 1))
    gold = chain.solution(instance)
    assert gold is not None and "rg_typed" in instance
    del instance["rg_typed"]
    assert chain.verify(instance, gold) == 1.0  # regenerated, consistent
    instance["answer"] = str(int(gold) + 1)
    assert chain.verify(instance, str(int(gold) + 1)) == 1.0  # inconsistent: the copy wins
    assert chain.verify(instance, gold) < 1.0


def _valid_colouring(instance: dict[str, Any]) -> str:
    """A proper colouring of a graph_color instance by greedy search (the task has no gold)."""
    metadata = instance["metadata"]
    edges = [tuple(edge) for edge in metadata["puzzle"]["edges"]]
    colours: dict[int, int] = {}
    for vertex in metadata["puzzle"]["vertices"]:
        used = {colours.get(b if a == vertex else a) for a, b in edges if vertex in (a, b)}
        colours[vertex] = next(c for c in range(1, 100) if c not in used)
    return json.dumps({str(v): c for v, c in colours.items()})


def test_verify_never_raises_and_never_modifies() -> None:
    env = _env("graph_color")
    instance = _roundtrip(env.generate(instance_rng(1, 1), 1))
    before = copy.deepcopy(instance)
    for answer in ["", "{", "null", "x" * 10_000, '{"0": 1}', "\x00"]:
        score = env.verify(instance, answer)
        assert isinstance(score, float) and 0.0 <= score <= 1.0
    assert instance == before
    broken: list[dict[str, Any]] = [
        {},
        {**instance, "level": 99},
        {**instance, "level": "1"},
        {**instance, "rg_seed": "x"},
        {**instance, "rg_task": "other"},
        {**instance, "rg_typed": {"metadata": {"$dict": 5}}},
    ]
    for bad in broken:
        assert env.verify(bad, "anything") == 0.0


def _reference_entry(env: rg.ReasoningGymTask, instance: dict[str, Any], level: int) -> dict[str, Any]:
    """The entry as verify built it before entries were cached (a deep copy, patched, on every
    call): what the cached path must give score_answer, identical type for type."""
    plain = {
        "question": instance["question"],
        "answer": instance.get("answer"),
        "metadata": instance.get("metadata", {}),
    }
    if instance.get("rg_exact") is True:
        return copy.deepcopy(plain)
    typed = instance.get("rg_typed")
    if isinstance(typed, dict):
        entry = copy.deepcopy(plain)
        for key, patch in typed.items():
            entry[key] = rg._apply(entry.get(key), patch)
        return entry
    original = env._item(env._build(level, instance["rg_seed"]))
    if rg._json_safe({key: original.get(key) for key in plain})[0] != plain:
        return copy.deepcopy(plain)
    return original


def _shape(value: Any) -> Any:
    """``value`` spelled out type for type, in iteration order (dict keys, sets) and float bits: two
    values with the same shape cannot be told apart by a score_answer (a copy would re-order sets)."""
    kind = type(value)
    if kind is dict:
        return ("dict", [(_shape(key), _shape(item)) for key, item in value.items()])
    if kind in (list, tuple, set, frozenset):
        return (kind.__name__, [_shape(item) for item in value])
    if kind is float:
        return ("float", value.hex())
    return (kind.__name__, value)


class _Recorder:
    """Stands in for a dataset's score_answer: records the shape of each entry it is given, then
    (optionally) vandalises it the way a careless score_answer could, in place and type-changing."""

    def __init__(self, score: Any, vandalise: bool = False) -> None:
        self.score = score
        self.vandalise = vandalise
        self.entries: list[Any] = []

    def __call__(self, answer: str, entry: dict[str, Any]) -> float:
        self.entries.append(_shape(entry))
        result = float(self.score(answer, entry))
        if self.vandalise:
            metadata = entry["metadata"]
            for key in list(metadata)[:1]:
                metadata[key] = metadata.pop(key)  # same value, key order changed
            for key, value in metadata.items():
                if type(value) is int:
                    metadata[key] = float(value)  # equal, other type
                elif isinstance(value, list):
                    value.append("junk")
            entry["answer"] = "vandalised"
            entry.pop("question")
        return result


# exact (dice), typed with tuples (chain_sum, sudoku), integer dict keys (graph_color), list items
# patched (course_schedule), regenerated (knights_knaves: its metadata is not encodable)
ENTRY_TASKS = ["dice", "chain_sum", "sudoku", "graph_color", "course_schedule", "knights_knaves"]


@pytest.mark.parametrize("vandalise", [False, True])
def test_cached_entries_are_identical_fresh_copies(vandalise: bool) -> None:
    for task in ENTRY_TASKS:
        env = _env(task)
        instance = env.generate(instance_rng(2, 1), 1)
        before = copy.deepcopy(instance)
        reference = _reference_entry(env, instance, env._rg_level(1))
        scorer = env._scorer(env._rg_level(1))
        expected = float(scorer.score_answer(env.solution(instance) or "", copy.deepcopy(reference)))
        recorder = scorer.score_answer = _Recorder(scorer.score_answer, vandalise)
        # a GRPO group: one instance verified many times, in-process and after JSON round trips
        variants = [instance, _roundtrip(instance), _roundtrip(instance)]
        scores = [env.verify(variant, env.solution(variant) or "") for variant in variants for _ in range(4)]
        assert scores == [min(1.0, max(0.0, expected))] * len(scores), task
        assert len(recorder.entries) == len(scores)
        cacheable = "rg_typed" in instance or instance["rg_exact"]
        assert recorder.entries == [_shape(reference)] * len(scores), task
        assert instance == before
        # one entry per content (in-process or after JSON round trips), none for regenerated items
        assert len(env._entries.data) == (1 if cacheable else 0), task


def test_an_instance_entry_is_built_once_per_content(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env("chain_sum")
    instance = _roundtrip(env.generate(instance_rng(4, 1), 1))
    gold = env.solution(instance)
    assert gold is not None and "rg_typed" in instance
    builds: list[dict[str, Any]] = []
    originals = {name: getattr(rg, name) for name in ("_built_entry", "_first_entry")}
    for name, build in originals.items():

        def counting(plain: dict[str, Any], typed: Any, build: Any = build) -> Any:
            builds.append(plain)
            return build(plain, typed)

        monkeypatch.setattr(rg, name, counting)
    for _ in range(8):
        assert env.verify(instance, gold) == 1.0
    assert env.verify(_roundtrip(instance), gold) == 1.0
    assert len(builds) == 1 and len(env._entries.data) == 1
    # the caller changes the instance in place: its entry is built again, and verify follows it
    instance["metadata"]["difficulty"]["num_terms"] = [9, 9]
    assert env.verify(instance, gold) == 1.0
    assert len(builds) == 2
    instance["answer"] = str(int(gold) + 1)
    assert env.verify(instance, gold) < 1.0
    assert env.verify(instance, str(int(gold) + 1)) == 1.0
    assert len(builds) == 3


def test_entries_with_sets_are_checked_before_they_are_cached() -> None:
    env = _env("chain_sum")
    base = env.generate(instance_rng(5, 1), 1)
    elements: list[Any] = [*range(0, 64, 8), "a", "b", (1, 2)]
    # a set restored by the typed patch, and (in an instance built in-process) a set in the metadata
    typed = copy.deepcopy(base)
    typed["metadata"]["s"] = sorted(map(str, elements))
    typed["rg_typed"] = {"metadata": {"$keys": {"s": {"$value": rg._encode(set(elements))}}}}
    plain_set = copy.deepcopy(base)
    plain_set["metadata"]["s"] = frozenset(elements)
    plain_set["rg_exact"] = True
    for instance in (typed, plain_set):
        reference = _reference_entry(env, instance, 1)
        scorer = env._scorer(1)
        recorder = scorer.score_answer = _Recorder(scorer.score_answer, vandalise=True)
        for _ in range(4):
            env.verify(instance, "1")
        assert recorder.entries == [_shape(reference)] * 4
        del scorer.score_answer
    assert len(env._entries.data) == 2


def test_identical_tells_types_orders_and_float_bits_apart() -> None:
    base = {"a": [1, (2, 3)], "b": {"c": 1.5}}
    assert rg._identical(base, copy.deepcopy(base))
    assert not rg._identical(base, {"b": {"c": 1.5}, "a": [1, (2, 3)]})  # key order
    assert not rg._identical(base, {"a": [1, [2, 3]], "b": {"c": 1.5}})  # tuple vs list
    assert not rg._identical({"x": 1}, {"x": 1.0}) and not rg._identical({"x": 1}, {"x": True})
    assert not rg._identical([0.0], [-0.0]) and rg._identical([float("nan")], [float("nan")])
    first, second = set(), set()
    for value in (8, 0):
        first.add(value)
    for value in (0, 8):
        second.add(value)
    assert first == second and list(first) != list(second)
    assert not rg._identical(first, second)  # equal sets, other iteration order
    assert not rg._identical([object()], [object()])
    # no snapshot when marshal's copy would differ, or cannot be made: those entries are rebuilt
    assert rg._snapshot({"x": [object()]}) == b""
    assert rg._snapshot({"x": {(1, 2): frozenset({3})}}) != b""


def test_lru_evicts_by_count_and_by_weight() -> None:
    lru = rg._LRU(3, 100, lambda key, value: len(value))
    for key in "abc":
        lru.put(key, "x" * 30)
    assert list(lru.data) == ["a", "b", "c"] and lru.total == 90
    assert lru.get("a") == "x" * 30  # now the most recent
    lru.put("d", "x" * 20)  # 110 > 100: the least recent ("b") goes
    assert list(lru.data) == ["c", "a", "d"] and lru.total == 80
    lru.put("a", "x" * 5)
    assert lru.total == 55
    lru.put("e", "y")  # a fourth: the least recent ("c") goes
    assert list(lru.data) == ["d", "a", "e"]
    assert lru.total == 26


def test_generation_is_deterministic_and_depends_on_seed_and_level() -> None:
    env = _env("basic_arithmetic")
    a = env.generate(instance_rng(5, 2), 2)
    assert _env("basic_arithmetic").generate(instance_rng(5, 2), 2) == a
    assert env.generate(instance_rng(6, 2), 2) != a
    assert env.generate(instance_rng(5, 3), 3)["rg_config"] != a["rg_config"]
    assert a["level"] == 2 and a["rg_task"] == "basic_arithmetic"


@pytest.mark.parametrize("task", sorted(rg.RESEEDABLE))
def test_reseeded_prototypes_match_fresh_datasets(task: str) -> None:
    import reasoning_gym

    env = _env(task)
    for seed in (0, 1, 2**31 - 1):
        instance = env.generate(instance_rng(seed, 1), 1)
        # (arc_agi's configuration nests a dataclass, which rg_config records as a plain dict)
        fresh = reasoning_gym.create_dataset(task, **vars(rg._config(task, 1, instance["rg_seed"])))
        assert fresh[0]["question"] == instance["question"]
        assert rg._json_safe(fresh[0]["answer"])[0] == instance["answer"]


def test_typed_encoding_restores_types() -> None:
    value = {
        "t": (1, (2, 3), [4, (5,)]),
        "s": {"b", "a", "c"},
        "f": frozenset({1, 2}),
        "k": {1: "one", (2, 3): "pair", None: 0},
        "n": [float("nan"), float("inf"), -0.0],
        "lookalike": {"$tuple": [1, 2]},
        "plain": {"a": [1, "x", None, True, 1.5]},
    }
    encoded = rg._encode(value)
    decoded = rg._decode(json.loads(json.dumps(encoded, allow_nan=False)))
    assert decoded["t"] == value["t"] and type(decoded["t"][1]) is tuple
    assert decoded["s"] == value["s"] and decoded["f"] == value["f"] and type(decoded["f"]) is frozenset
    assert decoded["k"] == value["k"]
    assert decoded["n"][0] != decoded["n"][0] and decoded["n"][1] == float("inf")
    assert decoded["lookalike"] == {"$tuple": [1, 2]} and decoded["plain"] == value["plain"]
    with pytest.raises(rg._NotEncodable):
        rg._encode({"x": object()})
    numpy = pytest.importorskip("numpy")
    with pytest.raises(rg._NotEncodable):
        rg._encode([numpy.float64(0.5)])


def test_patches_restore_only_the_inexact_parts() -> None:
    value = {
        "plain": ["a" * 50, "b" * 50],
        "grid": [[1, 2], (3, 4)],
        "difficulty": {"range": (1, 5), "n": 3},
        "keys": {1: "one"},
        "x": float("inf"),
    }
    plain = json.loads(json.dumps(rg._json_safe(value)[0], allow_nan=False))
    patch = json.loads(json.dumps(rg._patch(value), allow_nan=False))
    assert "a" * 50 not in json.dumps(patch)  # exact parts are not repeated
    restored = rg._apply(plain, patch)
    assert restored == value and type(restored["grid"][1]) is tuple
    assert type(restored["difficulty"]["range"]) is tuple and plain["difficulty"]["range"] == [1, 5]
    assert rg._patch({"a": [1, "x"], "b": None}) is None
    with pytest.raises(ValueError):
        rg._apply(plain, {"$bogus": 1})


def test_json_safe_copies_are_plain_and_process_independent() -> None:
    class Thing:
        pass

    value = {"s": {"b", "a"}, 3: (1, 2), "o": Thing(), "c": 1 + 2j}
    safe, exact = rg._json_safe(value)
    assert not exact
    assert safe["s"] == ["a", "b"] and safe["3"] == [1, 2] and safe["c"] == [1.0, 2.0]
    assert " at 0x" not in safe["o"]
    json.dumps(safe, allow_nan=False)
    assert rg._json_safe({"a": [1, "x", None]}) == ({"a": [1, "x", None]}, True)
