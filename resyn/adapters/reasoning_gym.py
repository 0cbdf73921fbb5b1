"""reasoning-gym tasks as resyn environments (``resyn check rg:<task>``).

`reasoning-gym <https://github.com/open-thought/reasoning-gym>`_ registers ~100 procedural
datasets. Each is wrapped as one :class:`ReasoningGymTask` subclass whose source text
:func:`adapter_source` produces; that text is what the sandbox loads, like any synthesized module::

    from resyn.adapters.reasoning_gym import adapter_source
    with Sandbox(adapter_source("chain_sum"), filename="rg_chain_sum.py") as sandbox: ...

Mapping:

* **difficulty** ``d`` is the task's curriculum at global level ``d - 1``
  (``curriculum.set_global_level(d - 1)`` then ``generate_configuration()`` with reasoning-gym's
  default context, whose ranges are inclusive: level ``d`` samples sizes from the lowest level's up
  to level ``d``'s). ``max_difficulty`` is the number of levels whose configuration validates;
  a task without a curriculum, or whose lowest level already fails validation, has one level that
  uses the configuration defaults.
* **an instance** is item 0 of ``create_dataset(task, seed=rg_seed, size=1, **config)``, where
  ``rg_seed`` is drawn from the harness's rng and ``config`` is the level's configuration (recorded,
  JSON-safe, as ``rg_config``): the instance can be reproduced with reasoning-gym alone. Its
  ``metadata`` is a JSON-safe copy; ``rg_exact`` says whether that copy (and the answer) equal the
  originals. When they do not, ``rg_typed`` holds a patch of just the inexact parts (tuples, sets,
  non-string dict keys, non-finite floats) that restores them exactly; for anything else (numpy
  values, objects) :meth:`verify` regenerates the entry from ``(task, level, rg_seed)`` rather than
  trusting the copy. Either way ``score_answer`` sees what reasoning-gym produced.
* **verify** is the dataset's ``score_answer(answer, entry)``, clamped to ``[0, 1]``; any exception
  scores 0.0. **solution** is the item's ``answer`` (``None`` for tasks that have none).

reasoning-gym is imported lazily (when a task class is instantiated, i.e. when the sandbox loads
the module, so the ~3 s import is paid within the load deadline rather than by the first item).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import difflib
import enum
import functools
import json
import marshal
import math
import random
import re
import textwrap
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

from resyn.adapters import AdapterError
from resyn.env import NAME_PATTERN, Environment

__all__ = [
    "AdapterError",
    "ReasoningGymTask",
    "adapter_source",
    "level_count",
    "reasoning_gym_version",
    "task_names",
]

#: Registered names that are not tasks: ``composite`` mixes other datasets and needs a config.
EXCLUDED = frozenset({"composite"})

#: Tasks whose dataset construction is expensive but depends only on the configuration, never on the
#: seed (n_queens enumerates every solution of the board, word_ladder builds word graphs, arc_agi,
#: figlet_font and group_anagrams load data files): one dataset per level is built and re-seeded by a
#: shallow copy instead of being rebuilt per seed. Each was read to make sure its ``__init__`` does not
#: use the seed and its ``__getitem__`` (``Random(self.seed + idx)``) does not modify shared state;
#: ``tests/test_reasoning_gym_adapter.py`` checks that re-seeded copies give the same items as fresh
#: datasets. (Not codeio: its data lives in a class attribute that each construction overwrites.)
RESEEDABLE = frozenset({"arc_agi", "figlet_font", "group_anagrams", "n_queens", "word_ladder"})

_INSTALL_HINT = "reasoning-gym is not installed: pip install 'resyn[reasoning-gym]'"
_SEED_BOUND = 2**31  # numpy's legacy seeding wants < 2**32; reasoning-gym adds item indices
_CACHE_SIZE = 1024
#: The per-environment cache of rebuilt entries (see :meth:`ReasoningGymTask._entry`): at most this
#: many entries and bytes of marshal text (keys and snapshots); an entry above _ENTRY_MAX_BYTES is
#: rebuilt on every call instead.
_ENTRY_CACHE_SIZE = 4096
_ENTRY_CACHE_BYTES = 64 * 2**20
_ENTRY_MAX_BYTES = 2**20
_ENTRY_KEYS = frozenset({"question", "answer", "metadata"})
_MAX_DEPTH = 60
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


# -- the library ------------------------------------------------------------------------------------
def _rg() -> Any:
    """The imported ``reasoning_gym`` package, or AdapterError when the extra is missing."""
    try:
        import reasoning_gym
    except ImportError as exc:
        raise AdapterError(_INSTALL_HINT) from exc
    return reasoning_gym


def _registry() -> tuple[dict[str, Any], dict[str, Any]]:
    """reasoning-gym's ``(DATASETS, CURRICULA)`` registries: name -> (dataset class, config class)
    and name -> curriculum class."""
    _rg()
    from reasoning_gym import factory

    return factory.DATASETS, factory.CURRICULA


def reasoning_gym_version() -> str:
    """The installed distribution's version (``reasoning_gym.__version__`` lags behind it)."""
    from importlib import metadata

    try:
        return metadata.version("reasoning-gym")
    except metadata.PackageNotFoundError:
        return str(getattr(_rg(), "__version__", "unknown"))


def task_names() -> list[str]:
    """Sorted names of the registered reasoning-gym tasks (AdapterError if it is not installed)."""
    datasets, _curricula = _registry()
    return sorted(name for name in datasets if name not in EXCLUDED)


def _check_task(task: str) -> str:
    names = task_names()
    if task in names:
        return task
    message = (
        f"unknown reasoning-gym task {task!r}: run `resyn check --list-rg` to list the {len(names)} tasks"
    )
    close = difflib.get_close_matches(task, names, n=3, cutoff=0.6)
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    raise AdapterError(message)


def _config(task: str, level: int, seed: int) -> Any:
    """The dataset configuration of ``task`` at difficulty ``level`` (1-based) with ``seed``.

    ``level`` 0 means "no curriculum": the configuration class's defaults."""
    datasets, curricula = _registry()
    _dataset_cls, config_cls = datasets[task]
    if level == 0 or task not in curricula:
        config = config_cls(seed=seed, size=1)
    else:
        curriculum = curricula[task]()
        curriculum.set_global_level(level - 1)
        config = curriculum.generate_configuration(defaults={"seed": seed, "size": 1})
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def _curriculum_levels(task: str) -> int:
    """Levels of the task's curriculum: the longest attribute level list (0 without curriculum)."""
    _datasets, curricula = _registry()
    if task not in curricula:
        return 0
    attributes = curricula[task]().attributes.values()
    return max((len(attribute.levels) for attribute in attributes), default=0)


@functools.cache
def _valid_levels(task: str) -> int:
    """How many leading curriculum levels of ``task`` have a configuration that validates."""
    valid = 0
    for level in range(1, _curriculum_levels(task) + 1):
        try:
            _config(task, level, 0)
        except Exception:  # reasoning-gym validates with assert and ValueError alike
            break
        valid = level
    return valid


def level_count(task: str) -> int:
    """``max_difficulty`` of the wrapped task: the number of leading curriculum levels whose
    configuration validates, or 1 (configuration defaults) when there are none."""
    return max(_valid_levels(_check_task(task)), 1)


# -- JSON-safe copies ----------------------------------------------------------------------------------
def _json_safe(value: Any, depth: int = 0) -> tuple[Any, bool]:
    """A plain-JSON copy of ``value`` and whether it is exact (equal, type for type, to the original).

    Conservative: any tuple, set, non-string dict key, numpy value, dataclass or other object makes
    the copy inexact, so :meth:`ReasoningGymTask.verify` regenerates the original instead. Sets are
    sorted and memory addresses dropped, so the copy does not depend on the process."""
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value, True
    if kind is int:
        return value, True
    if kind is float:
        if math.isfinite(value):
            return value, True
        return repr(value), False
    if depth >= _MAX_DEPTH:
        return _text(value), False
    if kind is list or kind is tuple:
        items = [_json_safe(item, depth + 1) for item in value]
        return [item for item, _ in items], kind is list and all(exact for _, exact in items)
    if kind is dict:
        out: dict[str, Any] = {}
        exact = True
        for key, item in value.items():
            if type(key) is not str:
                exact = False
            safe, item_exact = _json_safe(item, depth + 1)
            out[key if type(key) is str else _key_text(key)] = safe
            exact = exact and item_exact
        return out, exact and len(out) == len(value)
    return _convert_other(value, depth), False


def _convert_other(value: Any, depth: int) -> Any:
    """Best-effort plain-JSON form of a value that is not JSON already (always inexact)."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return int(value)
    if isinstance(value, float) and not isinstance(value, enum.Enum):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, enum.Enum):
        return _json_safe(value.value, depth + 1)[0]
    if isinstance(value, set | frozenset):
        items = [_json_safe(item, depth + 1)[0] for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, dict):
        return _json_safe(dict(value), depth + 1)[0]
    if isinstance(value, list | tuple):
        return [_json_safe(item, depth + 1)[0] for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return _json_safe(fields, depth + 1)[0]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, complex):
        return [_json_safe(value.real)[0], _json_safe(value.imag)[0]]
    module = type(value).__module__ or ""
    if module.split(".")[0] == "numpy" and callable(getattr(value, "tolist", None)):
        return _json_safe(value.tolist(), depth + 1)[0]
    return _text(value)


def _text(value: Any) -> str:
    try:
        text = str(value)
    except Exception:  # exotic __str__
        text = f"<{type(value).__name__}>"
    return _ADDRESS.sub("", text)


def _key_text(key: Any) -> str:
    safe = _json_safe(key, _MAX_DEPTH - 1)[0]
    return safe if isinstance(safe, str) else json.dumps(safe, sort_keys=True)


# -- lossless typed copies -----------------------------------------------------------------------------
#: Tags of the typed encoding (the contents of a patch's ``$value``): a JSON object with exactly one
#: of these keys stands for the value.
_TAGS = frozenset({"$tuple", "$set", "$frozenset", "$dict", "$float"})


class _NotEncodable(Exception):
    """The value holds something the typed encoding cannot restore exactly (numpy, objects...)."""


def _encode(value: Any, depth: int = 0) -> Any:
    """A JSON value from which :func:`_decode` rebuilds ``value`` exactly, type for type.

    Covers what reasoning-gym metadata holds besides plain JSON: tuples, sets, non-string dict keys
    and non-finite floats. Anything else raises _NotEncodable (the entry is regenerated instead)."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if depth >= _MAX_DEPTH:
        raise _NotEncodable("too deep")
    if kind is list:
        return [_encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"$tuple": [_encode(item, depth + 1) for item in value]}
    if kind is set or kind is frozenset:
        items = sorted((_encode(item, depth + 1) for item in value), key=_sort_key)
        return {"$set" if kind is set else "$frozenset": items}
    if kind is dict:
        if all(type(key) is str for key in value) and not (len(value) == 1 and set(value) <= _TAGS):
            return {key: _encode(item, depth + 1) for key, item in value.items()}
        return {"$dict": [[_encode(key, depth + 1), _encode(item, depth + 1)] for key, item in value.items()]}
    raise _NotEncodable(f"{kind.__module__}.{kind.__qualname__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and set(value) <= _TAGS:
        ((tag, inner),) = value.items()
        if tag == "$float":
            return float(inner)
        if tag == "$dict":
            return {_decode(key): _decode(item) for key, item in inner}
        items = [_decode(item) for item in inner]
        return {"$tuple": tuple, "$set": set, "$frozenset": frozenset}[tag](items)
    return {key: _decode(item) for key, item in value.items()}


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _patch(value: Any, depth: int = 0) -> Any:
    """What turns the plain copy of ``value`` (:func:`_json_safe`) back into ``value``: None when the
    copy is exact, else ``{"$keys": {key: patch}}`` / ``{"$items": [[index, patch], ...]}`` for the
    inexact parts of a dict or list, or ``{"$value": <typed encoding>}`` for a whole value.

    Only the inexact parts are stored, so an instance does not carry its metadata twice (n_queens
    lists hundreds of solutions in plain strings next to one tuple)."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return None
    if kind is float:
        return None if math.isfinite(value) else {"$value": _encode(value)}
    if depth >= _MAX_DEPTH:
        raise _NotEncodable("too deep")
    if kind is list:
        items = [[index, patch] for index, item in enumerate(value) if (patch := _patch(item, depth + 1))]
        return {"$items": items} if items else None
    if kind is dict and all(type(key) is str for key in value):
        keys = {key: patch for key, item in value.items() if (patch := _patch(item, depth + 1))}
        return {"$keys": keys} if keys else None
    return {"$value": _encode(value, depth)}


def _apply(plain: Any, patch: Any) -> Any:
    """The original value from its plain copy and :func:`_patch` (``plain`` is not modified)."""
    if not isinstance(patch, dict) or len(patch) != 1:
        raise ValueError("malformed patch")
    ((tag, inner),) = patch.items()
    if tag == "$value":
        return _decode(inner)
    if tag == "$items" and isinstance(plain, list):
        items = list(plain)
        for index, item_patch in inner:
            items[index] = _apply(items[index], item_patch)
        return items
    if tag == "$keys" and isinstance(plain, dict):
        keys = dict(plain)
        for key, key_patch in inner.items():
            keys[key] = _apply(keys[key], key_patch)
        return keys
    raise ValueError(f"malformed patch {tag!r}")


# -- the environment -----------------------------------------------------------------------------------
class _LRU:
    """A small least-recently-used cache of at most ``size`` values and ``budget`` total weight.

    Safe to share between threads in the sense that a race loses a cached value, never raises."""

    def __init__(self, size: int, budget: int = 0, weight: Callable[[Any, Any], int] | None = None) -> None:
        self.size = size
        self.budget = budget  # 0: no weight limit
        self.weight = weight
        self.total = 0
        self.data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.data.get(key)
        if value is not None:
            with contextlib.suppress(KeyError):
                self.data.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        weight = self.weight
        with contextlib.suppress(KeyError):
            if weight is not None:
                old = self.data.get(key)
                self.total += weight(key, value) - (0 if old is None else weight(key, old))
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size or (self.budget and self.total > self.budget and self.data):
                old_key, old_value = self.data.popitem(last=False)
                if weight is not None:
                    self.total -= weight(old_key, old_value)


class ReasoningGymTask(Environment):
    """Base class of the reasoning-gym wrappers: a subclass sets ``task``, ``name`` and
    ``max_difficulty`` (see :func:`adapter_source`, which writes such subclasses)."""

    #: The reasoning-gym dataset name.
    task: ClassVar[str] = ""

    def __init__(self) -> None:
        if not self.task:
            raise TypeError(f"{type(self).__name__} does not set `task`")
        datasets, curricula = _registry()  # import reasoning-gym now, within the load deadline
        if self.task not in datasets:
            raise AdapterError(f"unknown reasoning-gym task {self.task!r}")
        self._dataset_cls: Any = datasets[self.task][0]
        # Level 0 = configuration defaults, for tasks without a (usable) curriculum.
        self._curriculum = self.task in curricula and _valid_levels(self.task) > 0
        self._scorers: dict[int, Any] = {}  # level -> a dataset of that level (seed 0)
        # (level, seed) -> (original item, its JSON-safe copy), for verify
        self._regenerated = _LRU(_CACHE_SIZE)
        # marshal text of an instance's entry fields -> marshal snapshot of its entry (b"": rebuild it)
        self._entries = _LRU(_ENTRY_CACHE_SIZE, _ENTRY_CACHE_BYTES, _entry_weight)

    # -- building ------------------------------------------------------------------------------------
    def _rg_level(self, difficulty: Any) -> int:
        if type(difficulty) is not int or not 1 <= difficulty <= self.max_difficulty:
            raise ValueError(f"difficulty must be an int in 1..{self.max_difficulty}, got {difficulty!r}")
        return difficulty if self._curriculum else 0

    def _scorer(self, level: int) -> Any:
        """A dataset of ``level``: its configuration, not its seed, matters to ``score_answer``.
        For RESEEDABLE tasks it is also the prototype that :meth:`_build` re-seeds."""
        scorer = self._scorers.get(level)
        if scorer is None:
            scorer = self._scorers[level] = self._dataset_cls(config=_config(self.task, level, 0))
        return scorer

    def _build(self, level: int, seed: int) -> Any:
        """The size-1 dataset of ``(level, seed)``, built afresh (no cache: a task whose items
        drift within one process must be caught by the determinism check, not hidden by a cache)."""
        if self.task in RESEEDABLE:
            prototype = self._scorer(level)
            dataset = copy.copy(prototype)
            dataset.config = dataclasses.replace(prototype.config, seed=seed)
            dataset.seed = seed
            return dataset
        return self._dataset_cls(config=_config(self.task, level, seed))

    def _original(self, level: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Item 0 of the ``(level, seed)`` dataset, regenerated, and the JSON-safe copy of its entry
        fields (cached; callers must not modify them)."""
        key = (level, seed)
        cached: tuple[dict[str, Any], dict[str, Any]] | None = self._regenerated.get(key)
        if cached is None:
            item = self._item(self._build(level, seed))
            safe: dict[str, Any] = _json_safe({field: item.get(field) for field in _PLAIN_FIELDS})[0]
            cached = (item, safe)
            self._regenerated.put(key, cached)
        return cached

    @staticmethod
    def _item(dataset: Any) -> dict[str, Any]:
        item = dataset[0]
        if not isinstance(item, dict):
            raise TypeError(f"reasoning-gym returned a {type(item).__name__} item, not a dict")
        if not isinstance(item.get("question"), str):
            raise TypeError(
                f"reasoning-gym returned a {type(item.get('question')).__name__} question, not str"
            )
        return item

    # -- the Environment contract ----------------------------------------------------------------------
    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        level = self._rg_level(difficulty)
        seed = rng.randrange(_SEED_BOUND)
        dataset = self._build(level, seed)
        item = self._item(dataset)
        answer, answer_exact = _json_safe(item.get("answer"))
        metadata, metadata_exact = _json_safe(item.get("metadata", {}))
        exact = answer_exact and metadata_exact and "metadata" in item and set(item) <= _ENTRY_KEYS
        instance: dict[str, Any] = {
            "question": item["question"],
            "answer": answer,
            "metadata": metadata,
            "level": difficulty,
            "rg_task": self.task,
            "rg_seed": seed,
            "rg_config": _json_safe(_fields(dataset.config))[0],
            "rg_exact": exact,
        }
        if not exact:
            # Otherwise (numpy values, objects) verify regenerates the item from (task, level, rg_seed).
            with contextlib.suppress(_NotEncodable):
                patches = {key: _patch(value) for key, value in item.items() if key != "question"}
                instance["rg_typed"] = {key: patch for key, patch in patches.items() if patch is not None}
        return instance

    def question(self, instance: dict[str, Any]) -> str:
        return str(instance["question"])

    def solution(self, instance: dict[str, Any]) -> str | None:
        answer = instance.get("answer")
        if answer is None:
            return None
        if isinstance(answer, str):
            return answer
        return json.dumps(answer) if isinstance(answer, list | dict) else str(answer)

    def verify(self, instance: dict[str, Any], answer: str) -> float:
        try:
            level = self._rg_level(instance["level"])
            seed = instance["rg_seed"]
            if type(seed) is not int or instance.get("rg_task", self.task) != self.task:
                return 0.0
            entry = self._entry(instance, level, seed)
            score = float(self._scorer(level).score_answer(answer, entry))
        except Exception:  # a verifier never raises: anything malformed scores 0
            return 0.0
        if not math.isfinite(score):
            return 0.0
        return min(1.0, max(0.0, score))

    def _entry(self, instance: dict[str, Any], level: int, seed: int) -> dict[str, Any]:
        """The entry ``score_answer`` sees, always a fresh object (a ``score_answer`` that modifies
        its entry changes neither the instance nor a cache):

        * the instance's own copy when it is exact (``rg_exact``);
        * else the copy patched by ``rg_typed``, which restores tuples, sets and non-string keys;
        * else the item regenerated from ``(task, level, rg_seed)``, unless its JSON-safe copy differs
          from the instance's (a task that is not reproducible, e.g. codeio, whose code snippets may
          draw unseeded random numbers): then the plain copy, best effort.

        The first two are cached by content, since a GRPO group verifies one instance many times:
        the key is the marshal text of the fields the entry is made of, the value a marshal snapshot
        of the entry built as above, and each call gets ``marshal.loads`` of it: a fresh copy, type
        for type, at C speed (``copy.deepcopy`` and the patching were most of the cost of
        :meth:`verify`). A snapshot is used only if its copy is identical to the entry it was taken
        from (types, key and set order, see :func:`_identical`); otherwise, or for values marshal
        cannot write, the entry is rebuilt on every call. (The key does not record which containers
        of an instance are one object under two names; instances from JSON and from
        :meth:`generate` have no such sharing.)
        """
        plain = {
            "question": instance["question"],
            "answer": instance.get("answer"),
            "metadata": instance.get("metadata", {}),
        }
        exact = instance.get("rg_exact") is True
        typed = None if exact else instance.get("rg_typed")
        if not exact and not isinstance(typed, dict):
            return self._regenerated_entry(plain, level, seed)
        try:
            # version 2: no reference flags, so the text depends on the content alone, not on how many
            # references its objects have (which version 3 and up record)
            key = marshal.dumps((plain["question"], plain["answer"], plain["metadata"], exact, typed), 2)
        except Exception:  # not marshal-able (an instance that did not come from JSON): no cache
            return _built_entry(plain, typed)
        snapshot: bytes | None = self._entries.get(key)
        if snapshot:
            entry: dict[str, Any] = marshal.loads(snapshot)
            return entry
        if snapshot is not None:  # b"": no usable snapshot
            return _built_entry(plain, typed)
        entry, snapshot = _first_entry(plain, typed)
        self._entries.put(key, snapshot)
        return entry

    def _regenerated_entry(self, plain: dict[str, Any], level: int, seed: int) -> dict[str, Any]:
        original, safe = self._original(level, seed)
        if safe != plain:
            return copy.deepcopy(plain)
        return copy.deepcopy(original)


_PLAIN_FIELDS = ("question", "answer", "metadata")


def _built_entry(plain: dict[str, Any], typed: dict[str, Any] | None) -> dict[str, Any]:
    """A fresh entry from the plain fields, patched by ``rg_typed`` unless it is None (exact)."""
    entry: dict[str, Any] = copy.deepcopy(plain)
    if typed is not None:
        for key, patch in typed.items():
            entry[key] = _apply(entry.get(key), patch)
    return entry


def _first_entry(plain: dict[str, Any], typed: dict[str, Any] | None) -> tuple[dict[str, Any], bytes]:
    """The entry :func:`_built_entry` makes and its :func:`_snapshot`, made faster when neither the
    plain fields nor the patch hold a set: then marshal's copies are identical to the original
    (marshal writes only values of exact built-in types, keeps dict order, float bits and shared
    containers; only a set's iteration order can change, as it is rebuilt element by element), so
    the plain fields are copied by marshal rather than ``copy.deepcopy``, and the snapshot is not
    compared with the entry."""
    try:
        json.dumps(plain)  # TypeError for a set or frozenset anywhere (and for other objects)
        set_free = typed is None or not any(tag in json.dumps(typed) for tag in ('"$set"', '"$frozenset"'))
    except Exception:  # TypeError, ValueError (circular), RecursionError
        set_free = False
    if set_free:
        with contextlib.suppress(Exception):  # ValueError: not marshal-able, too deep
            entry: dict[str, Any] = marshal.loads(marshal.dumps(plain))
            if typed is not None:
                for key, patch in typed.items():
                    entry[key] = _apply(entry.get(key), patch)
            return entry, _snapshot(entry, check=False)
    entry = _built_entry(plain, typed)
    return entry, _snapshot(entry, check=True)


def _snapshot(entry: dict[str, Any], check: bool = True) -> bytes:
    """Marshal text whose ``marshal.loads`` is identical to ``entry``, or b"" when there is none
    (a value marshal cannot write, an entry above _ENTRY_MAX_BYTES, a copy that differs: ``check``
    compares it with :func:`_identical`, needed only where the entry may hold a set)."""
    try:
        snapshot = marshal.dumps(entry)
        if len(snapshot) <= _ENTRY_MAX_BYTES and (not check or _identical(marshal.loads(snapshot), entry)):
            return snapshot
    except Exception:  # ValueError (not marshal-able, too deep), RecursionError
        pass
    return b""


def _identical(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are equal type for type, in dict key order and set iteration order, and
    floats bit for bit: a ``score_answer`` cannot tell one from the other."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return len(a) == len(b) and all(
            _identical(key_a, key_b) and _identical(a[key_a], b[key_b])
            for key_a, key_b in zip(a, b, strict=True)
        )
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    if kind is float:
        return bool(a.hex() == b.hex())
    if kind is str or kind is int or kind is bool or a is None:
        return bool(a == b)
    return False


def _entry_weight(key: bytes, snapshot: bytes) -> int:
    return len(key) + len(snapshot) + 200  # the bytes and roughly the objects around them


def _fields(config: Any) -> dict[str, Any]:
    """A configuration dataclass's fields (shallow: nested values are converted by _json_safe)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
    return dict(vars(config))


# -- module source ------------------------------------------------------------------------------------
def _class_name(task: str) -> str:
    return "Rg" + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", task) if part)


def _env_name(task: str) -> str:
    name = "rg_" + re.sub(r"[^a-z0-9_]+", "_", task.lower()).strip("_")
    name = name[:64]
    if not NAME_PATTERN.match(name):
        raise AdapterError(f"cannot derive an environment name from reasoning-gym task {task!r}")
    return name


def _summary(task: str) -> str:
    """First paragraph of the dataset class's docstring, one line."""
    datasets, _curricula = _registry()
    doc = datasets[task][0].__doc__ or ""
    first = doc.strip().split("\n\n")[0]
    return " ".join(first.split())[:300]


def adapter_source(task: str) -> str:
    """Source text of a module defining the wrapper of reasoning-gym task ``task``.

    Accepts ``rg:<task>`` as well. Raises AdapterError for an unknown task (with close matches) or
    when reasoning-gym is not installed."""
    if task.startswith("rg:"):
        task = task[3:]
    task = _check_task(task)
    levels = level_count(task)
    summary = _summary(task) or f"The reasoning-gym task {task}."
    curriculum_levels = _curriculum_levels(task)
    valid = _valid_levels(task)
    if curriculum_levels == 0:
        level_note = "No curriculum: one difficulty level with reasoning-gym's default configuration."
    elif valid == 0:
        level_note = (
            "The lowest level of its curriculum does not validate, so there is one difficulty level "
            "with reasoning-gym's default configuration."
        )
    elif valid < curriculum_levels:
        level_note = (
            f"Difficulty d is curriculum level d - 1; only the first {valid} of its {curriculum_levels} "
            "levels have a configuration that validates."
        )
    else:
        level_note = f"Difficulty d is curriculum level d - 1 (of {curriculum_levels})."
    body = textwrap.fill(
        f"reasoning-gym {reasoning_gym_version()} task {task!r}, wrapped by resyn.adapters.reasoning_gym. "
        + level_note,
        width=96,
        break_on_hyphens=False,
        initial_indent="    ",
        subsequent_indent="    ",
    )
    doc = f"{summary}\n\n{body}\n    "
    return (
        f'"""reasoning-gym task {task!r} as a resyn environment (generated by resyn.adapters.reasoning_gym)."""\n'
        "\n"
        "from resyn.adapters.reasoning_gym import ReasoningGymTask\n"
        "\n"
        "\n"
        f"class {_class_name(task)}(ReasoningGymTask):\n"
        f"    {_docstring_literal(doc)}\n"
        "\n"
        f"    task = {json.dumps(task)}\n"
        f"    name = {json.dumps(_env_name(task))}\n"
        f"    max_difficulty = {levels}\n"
    )


def _docstring_literal(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{text}"""'
