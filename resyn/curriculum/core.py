"""The curriculum itself: drawing, rendering, rewards, levels, weights and checkpoints (see
:mod:`resyn.curriculum` for how it decides)."""

from __future__ import annotations

import bisect
import collections
import importlib
import json
import logging
import math
import random
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resyn.curriculum.models import (
    STATE_FORMAT,
    CurriculumError,
    CurriculumItem,
    CurriculumSettings,
)
from resyn.curriculum.seeds import SeedPermutation
from resyn.export.model import MANIFEST_NAME, ExportManifest, chat_messages
from resyn.export.render import Draw, Rendered, Renderer
from resyn.reward.models import EnvSpec
from resyn.sandbox.config import SandboxConfig
from resyn.sandbox.session import LoadResult

__all__ = ["Curriculum", "CurriculumReward"]

log = logging.getLogger("resyn.curriculum")

_MAX_LEVELS = 1000
"""A module claiming more levels than this is treated as not reporting a usable range."""


_ENV_COUNTERS = ("issued", "rewarded", "samples", "render_failures", "moves_up", "moves_down")


@dataclass
class _Env:
    """What a curriculum tracks of one environment."""

    spec: EnvSpec
    weight: float
    low: int
    high: int
    level: int
    seeds: SeedPermutation
    cap: int | None = None
    """Highest level left after render failures (``None``: no cap)."""
    fresh: int = 0
    """Rewards at the current level since arriving there."""
    drawn: int = 0
    """Seeds drawn so far: the next draw uses ``seeds(drawn)``."""
    windows: dict[int, collections.deque[bool]] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    """Consecutive render failures per level."""
    issued: int = 0
    rewarded: int = 0
    samples: int = 0
    render_failures: int = 0
    moves_up: int = 0
    moves_down: int = 0
    dropped: str | None = None

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _ENV_COUNTERS}

    @property
    def top(self) -> int:
        return self.high if self.cap is None else min(self.high, self.cap)

    def window(self, level: int, size: int) -> collections.deque[bool]:
        found = self.windows.get(level)
        if found is None:
            found = self.windows[level] = collections.deque(maxlen=size)
        return found


@dataclass(frozen=True)
class _Pending:
    env_id: str
    seed: int
    difficulty: int


_COUNTERS = (
    "issued",
    "rewarded",
    "samples",
    "ignored_unknown",
    "ignored_late",
    "invalid_rewards",
    "render_failures",
    "expired",
)


class Curriculum:
    """Draws rendered instances from environments at adaptive levels and weights; see the module
    documentation. Use as a context manager (or call :meth:`close`) to stop its sandbox workers.

    ``weights`` (default 1 each) and ``levels`` (inclusive ``(low, high)``, clipped to the
    environment's levels) are per environment id; ``start`` sets starting levels (default: the
    bottom of each range). Methods may be called from several threads; determinism then needs
    the calls in the same order.
    """

    def __init__(
        self,
        envs: Iterable[EnvSpec],
        *,
        seed: int = 0,
        settings: CurriculumSettings | None = None,
        weights: Mapping[str, float] | None = None,
        levels: Mapping[str, tuple[int, int]] | None = None,
        start: Mapping[str, int] | None = None,
        sandbox: SandboxConfig | None = None,
        render_workers: int = 2,
    ) -> None:
        specs = list(envs)
        self.settings = settings or CurriculumSettings()
        self.seed = int(seed)
        ids = [spec.env_id for spec in specs]
        if not specs:
            raise CurriculumError("a curriculum needs at least one environment")
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise CurriculumError(f"environment ids given more than once: {', '.join(repeated)}")
        for name, mapping in (("weights", weights), ("levels", levels), ("start", start)):
            unknown = sorted(set(mapping or {}) - set(ids))
            if unknown:
                raise CurriculumError(
                    f"{name} names environments that are not in the curriculum: {', '.join(unknown)}"
                )
        weights = dict(weights or {})
        for env_id, weight in weights.items():
            if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
                raise CurriculumError(f"the weight of {env_id} must be a finite number >= 0, not {weight!r}")
        if not sum(weights.get(i, 1.0) for i in ids) > 0:
            raise CurriculumError("the weights sum to 0: give at least one environment a positive weight")

        self._lock = threading.RLock()
        self._closed = False
        self._rng = random.Random(self.seed)
        self._counters: collections.Counter[str] = collections.Counter()
        self._pending: collections.OrderedDict[str, _Pending] = collections.OrderedDict()
        self._renderer = Renderer(specs, workers=render_workers, config=sandbox)
        self._finalizer = weakref.finalize(self, self._renderer.close)
        self._envs: dict[str, _Env] = {}
        try:
            self._setup(specs, weights, levels or {}, start or {})
        except BaseException:
            self.close()
            raise

    def _setup(
        self,
        specs: list[EnvSpec],
        weights: Mapping[str, float],
        levels: Mapping[str, tuple[int, int]],
        start: Mapping[str, int],
    ) -> None:
        # Environments are kept sorted by id: the draw order never depends on argument order.
        ordered = sorted(specs, key=lambda s: s.env_id)
        loaded = self._renderer.load([spec.env_id for spec in ordered])
        for spec, result in zip(ordered, loaded, strict=True):
            top = _max_difficulty(spec, result)
            low, high = levels.get(spec.env_id, (1, top or 1))
            high = max(1, min(int(high), top or 1))
            low = max(1, min(int(low), high))
            level = min(max(int(start.get(spec.env_id, low)), low), high)
            env = _Env(
                spec=spec,
                weight=float(weights.get(spec.env_id, 1.0)),
                low=low,
                high=high,
                level=level,
                seeds=self._seed_stream(spec.env_id),
            )
            self._envs[spec.env_id] = env
            if not result.ok:
                self._drop(env, f"does not load: {result.error}")
            elif top is None:
                self._drop(env, f"reports no usable max_difficulty ({result.max_difficulty!r})")
        self._live()  # raises when nothing loaded

    # -- construction from stored environments -------------------------------------------------
    @classmethod
    def from_catalog(
        cls,
        path: str | Path,
        env_ids: Sequence[str] | None = None,
        *,
        status: str | None = "accepted",
        start_from_calibration: bool = True,
        **kwargs: Any,
    ) -> Curriculum:
        """The environments ``env_ids`` (ids or unique prefixes; default: every environment with
        ``status``, ``None`` for all) of a catalog, opened read-only once, here. With
        ``start_from_calibration``, an environment without an explicit ``start`` level begins
        at the level of its latest solver calibration with the most learnability."""
        from resyn.catalog import Catalog

        settings = kwargs.get("settings") or CurriculumSettings()
        with Catalog.open(path, read_only=True) as catalog:
            records = catalog.environments(env_ids, status=status)
            calibrated: dict[str, int] = {}
            if start_from_calibration:
                for record in records:
                    history = catalog.calibrations(record.env_id)
                    level = _calibrated_start(history[-1].levels, settings) if history else None
                    if level is not None:
                        calibrated[record.env_id] = level
        if not records:
            raise CurriculumError(f"the catalog {path} has no environment with status {status!r}")
        specs = [EnvSpec.from_record(record) for record in records]
        kwargs["start"] = {**calibrated, **dict(kwargs.get("start") or {})}
        return cls(specs, **kwargs)

    @classmethod
    def from_export(cls, directory: str | Path, **kwargs: Any) -> Curriculum:
        """The environments of an export directory (its ``manifest.json`` and ``envs/``)."""
        directory = Path(directory)
        try:
            manifest = ExportManifest.model_validate_json(
                (directory / MANIFEST_NAME).read_text(encoding="utf-8")
            )
        except OSError as exc:
            raise CurriculumError(
                f"{directory} is not an export directory: cannot read {MANIFEST_NAME} ({exc})"
            ) from None
        specs = [
            EnvSpec(
                env_id=env.env_id,
                code=(directory / env.module).read_text(encoding="utf-8"),
                code_sha256=env.code_sha256,
                max_difficulty=env.max_difficulty,
                filename=Path(env.module).name,
            )
            for env in manifest.environments
        ]
        return cls(specs, **kwargs)

    @classmethod
    def from_mix(
        cls,
        mix: str | Path,
        catalog: str | Path,
        *,
        status: str | None = "accepted",
        **kwargs: Any,
    ) -> Curriculum:
        """The environments a mix file (:mod:`resyn.export.mix`) selects from a catalog, with its
        weights and difficulty ranges: an entry's weight is shared evenly by its environments (as
        an export apportions rows), an environment in several entries adds their shares and gets
        the smallest range covering theirs. The mix's ``total`` does not matter here. Other
        keyword arguments go to :meth:`from_catalog` (explicit ``weights``/``levels`` win)."""
        from resyn.catalog import Catalog
        from resyn.export.mix import load_mix
        from resyn.export.select import select_for_mix

        loaded = load_mix(mix)
        with Catalog.open(catalog, read_only=True) as opened:
            groups = select_for_mix(opened, loaded, status)
        weights: dict[str, float] = {}
        levels: dict[str, tuple[int, int]] = {}
        for entry, records in zip(loaded.entries, groups, strict=True):
            for record in records:
                weights[record.env_id] = weights.get(record.env_id, 0.0) + entry.weight / len(records)
                low, high = entry.difficulty or (1, record.max_difficulty)
                if record.env_id in levels:
                    low, high = min(low, levels[record.env_id][0]), max(high, levels[record.env_id][1])
                levels[record.env_id] = (low, high)
        kwargs["weights"] = {**weights, **dict(kwargs.get("weights") or {})}
        kwargs["levels"] = {**levels, **dict(kwargs.get("levels") or {})}
        return cls.from_catalog(catalog, sorted(weights), status=status, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Curriculum:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the sandbox workers; a closed curriculum refuses to draw (rewards, stats and
        checkpoints still work)."""
        self._closed = True
        self._finalizer()

    def __repr__(self) -> str:
        live = sum(1 for env in self._envs.values() if env.dropped is None)
        return f"Curriculum({live} of {len(self._envs)} environments, seed {self.seed})"

    @property
    def env_ids(self) -> list[str]:
        """The environments not dropped, sorted."""
        return [env_id for env_id, env in self._envs.items() if env.dropped is None]

    @property
    def dropped(self) -> dict[str, str]:
        """Dropped environments and why."""
        return {env_id: env.dropped for env_id, env in self._envs.items() if env.dropped is not None}

    def level(self, env_id: str) -> int:
        """The current level of an environment."""
        return self._envs[env_id].level

    # -- drawing -------------------------------------------------------------------------------
    def next_batch(self, n: int) -> list[CurriculumItem]:
        """``n`` rendered items. Items that fail to render are replaced by new draws (and
        counted); raises :class:`CurriculumError` only when no environment is left."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            if self._closed:
                raise CurriculumError(
                    "the curriculum is closed: build a new one (load_state_dict resumes it)"
                )
            items: list[CurriculumItem] = []
            while len(items) < n:
                draws = self._draw(n - len(items))
                for rendered in self._renderer.render(draws):
                    item = self._accept(rendered)
                    if item is not None:
                        items.append(item)
            return items

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Rows (see :meth:`CurriculumItem.row`) forever, ``prefetch`` rendered at a time."""
        while True:
            for item in self.next_batch(self.settings.prefetch):
                yield item.row(self.settings.prompt_format)

    def torch_dataset(self) -> Any:
        """This curriculum as a ``torch.utils.data.IterableDataset`` (torch is imported here, not
        before), for a ``DataLoader`` with ``num_workers=0``: the rewards must reach this
        process's curriculum, so it cannot be copied into loader workers."""
        data = importlib.import_module("torch.utils.data")
        curriculum = self

        class _Dataset(data.IterableDataset):  # type: ignore[misc,name-defined]
            def __iter__(self) -> Iterator[dict[str, Any]]:
                return iter(curriculum)

        return _Dataset()

    def probabilities(self) -> dict[str, float]:
        """The probability each live environment has of being drawn next."""
        with self._lock:
            envs = self._live()
            return dict(zip((e.spec.env_id for e in envs), self._weights(envs), strict=True))

    def _live(self) -> list[_Env]:
        envs = [env for env in self._envs.values() if env.dropped is None and env.weight > 0]
        if not envs:
            reasons = "; ".join(f"{env_id} {why}" for env_id, why in self.dropped.items())
            raise CurriculumError(
                "no environment left to draw from"
                + (f" (dropped: {reasons})" if reasons else "")
                + ": fix or replace the environments"
            )
        return envs

    def _weights(self, envs: list[_Env]) -> list[float]:
        settings = self.settings
        base = [env.weight for env in envs]
        total = sum(base)
        uniform = [w / total for w in base]
        if settings.reweight == 0:
            return uniform
        learnable = [
            w * max(settings.learnability_floor, self._learnability(env) ** (1 / settings.temperature))
            for w, env in zip(base, envs, strict=True)
        ]
        mass = sum(learnable)
        return [
            (1 - settings.reweight) * u + settings.reweight * (x / mass)
            for u, x in zip(uniform, learnable, strict=True)
        ]

    def _learnability(self, env: _Env) -> float:
        window = env.windows.get(env.level, ())
        p = (sum(window) + 1) / (len(window) + 2)
        return 4 * p * (1 - p)

    def _draw(self, count: int) -> list[Draw]:
        envs = self._live()
        cumulative: list[float] = []
        running = 0.0
        for weight in self._weights(envs):
            running += weight
            cumulative.append(running)
        draws: list[Draw] = []
        for _ in range(count):
            index = min(bisect.bisect_right(cumulative, self._rng.random() * running), len(envs) - 1)
            env = envs[index]
            if env.drawn >= env.seeds.size:
                raise CurriculumError(
                    f"{env.spec.env_id} used every seed of seed_range {self.settings.seed_range}: raise it"
                )
            draws.append(Draw(env.spec.env_id, env.seeds(env.drawn), env.level))
            env.drawn += 1
        return draws

    def _accept(self, rendered: Rendered) -> CurriculumItem | None:
        draw = rendered.draw
        env = self._envs[draw.env_id]
        if rendered.error is not None:
            self._counters["render_failures"] += 1
            env.render_failures += 1
            if env.dropped is None and rendered.error.startswith("load: "):
                self._drop(env, f"does not load: {rendered.error[6:]}")
                return None
            failures = env.failures[draw.difficulty] = env.failures.get(draw.difficulty, 0) + 1
            if env.dropped is None and failures >= self.settings.max_render_failures:
                self._cap(env, draw.difficulty, rendered.error)
            return None
        env.failures.pop(draw.difficulty, None)
        item_id = f"{draw.env_id}:{draw.difficulty}:{draw.seed}"
        self._pending[item_id] = _Pending(draw.env_id, draw.seed, draw.difficulty)
        while len(self._pending) > self.settings.max_pending:
            self._pending.popitem(last=False)
            self._counters["expired"] += 1
        self._counters["issued"] += 1
        env.issued += 1
        return CurriculumItem(
            item_id=item_id,
            env_id=draw.env_id,
            code_sha256=env.spec.code_sha256,
            seed=draw.seed,
            difficulty=draw.difficulty,
            question=rendered.question,
            instance_json=rendered.instance_json,
            solution=rendered.solution,
            messages=chat_messages(rendered.question),
        )

    def _cap(self, env: _Env, level: int, error: str) -> None:
        if level <= env.low:
            self._drop(env, f"fails to render at level {level} ({error[:200]})")
            return
        env.cap = level - 1 if env.cap is None else min(env.cap, level - 1)
        log.warning(
            "curriculum: %s failed to render %d times in a row at level %d (%s); levels above %d are no longer drawn",
            env.spec.env_id,
            self.settings.max_render_failures,
            level,
            error[:200],
            env.cap,
        )
        if env.level > env.top:
            self._move(env, env.top)

    def _drop(self, env: _Env, reason: str) -> None:
        env.dropped = reason
        log.warning("curriculum: dropped environment %s: it %s", env.spec.env_id, reason[:300])

    # -- rewards -------------------------------------------------------------------------------
    def update(
        self,
        items: Sequence[CurriculumItem | str | Mapping[str, Any]],
        rewards: Sequence[float | None],
    ) -> int:
        """Feed rewards back: one per item (items, their ids, or rows with ``item_id``). An item
        may appear several times in one call (a GRPO group): each reward is a sample. An item is
        closed by the call that rewards it; rewards for unknown or already rewarded items, and
        rewards that are not finite numbers, are ignored and counted. Returns the samples used."""
        if len(items) != len(rewards):
            raise ValueError(f"{len(items)} items but {len(rewards)} rewards: give one reward per item")
        threshold = self.settings.success_threshold - 1e-9
        with self._lock:
            groups: dict[str, list[bool]] = {}
            for item, reward in zip(items, rewards, strict=True):
                item_id = _item_id(item)
                if item_id is None or (item_id not in groups and item_id not in self._pending):
                    self._counters["ignored_late" if self._was_issued(item_id) else "ignored_unknown"] += 1
                    continue
                passes = groups.setdefault(item_id, [])
                if (
                    isinstance(reward, bool)
                    or not isinstance(reward, int | float)
                    or not math.isfinite(reward)
                ):
                    self._counters["invalid_rewards"] += 1
                    continue
                passes.append(reward >= threshold)
            used = 0
            for item_id, passes in groups.items():
                pending = self._pending.pop(item_id)
                env = self._envs[pending.env_id]
                env.rewarded += 1
                self._counters["rewarded"] += 1
                self._record(env, pending.difficulty, passes)
                used += len(passes)
            self._counters["samples"] += used
            return used

    def _was_issued(self, item_id: str | None) -> bool:
        """Whether an id names an item this curriculum drew (seeds are a permutation of draw
        positions, so no memory of closed items is needed)."""
        head, _, seed = (item_id or "").rpartition(":")
        env = self._envs.get(head.rpartition(":")[0])
        if env is None or not seed.isdigit() or int(seed) >= env.seeds.size:
            return False
        return env.seeds.index(int(seed)) < env.drawn

    def _record(self, env: _Env, level: int, passes: list[bool]) -> None:
        window = env.window(level, self.settings.window)
        window.extend(passes)
        env.samples += len(passes)
        if level != env.level or env.dropped is not None:
            return  # a reward for a level the environment has left still informs that level
        env.fresh += len(passes)
        settings = self.settings
        if env.fresh < settings.min_samples:
            return
        rate = sum(window) / len(window)
        if rate >= settings.raise_above and env.level < env.top:
            env.moves_up += 1
            self._move(env, min(env.top, env.level + settings.step))
        elif rate <= settings.lower_below and env.level > env.low:
            env.moves_down += 1
            self._move(env, max(env.low, env.level - settings.step))

    def _move(self, env: _Env, level: int) -> None:
        env.level = level
        env.fresh = 0

    def reward_function(self, scorer: Any = None) -> CurriculumReward:
        """A TRL-style reward function (``prompts``, ``completions``, dataset columns as
        ``**kwargs`` → floats) that scores with ``scorer`` (default: a
        :class:`~resyn.reward.RewardScorer` of this curriculum's environments, closed with it)
        and feeds the scores back to this curriculum."""
        if scorer is None:
            from resyn.reward import RewardScorer

            scorer = RewardScorer([env.spec for env in self._envs.values()])
            weakref.finalize(self, scorer.close)
        return CurriculumReward(self, scorer)

    # -- reporting and checkpoints ---------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters, and per environment its level and range, the recent pass rate and
        learnability at that level, its draw probability and its own counters (JSON-safe)."""
        with self._lock:
            live = [env for env in self._envs.values() if env.dropped is None and env.weight > 0]
            probabilities = (
                dict(zip((e.spec.env_id for e in live), self._weights(live), strict=True)) if live else {}
            )
            envs: dict[str, Any] = {}
            for env_id, env in self._envs.items():
                window = env.windows.get(env.level, ())
                envs[env_id] = {
                    "level": env.level,
                    "levels": [env.low, env.top],
                    "pass_rate": sum(window) / len(window) if window else None,
                    "window": len(window),
                    "learnability": self._learnability(env),
                    "probability": probabilities.get(env_id, 0.0),
                    "weight": env.weight,
                    **env.counters(),
                    "pass_rates": {
                        str(level): sum(w) / len(w) for level, w in sorted(env.windows.items()) if w
                    },
                    "dropped": env.dropped,
                }
            return {
                **{name: self._counters[name] for name in _COUNTERS},
                "pending": len(self._pending),
                "envs": envs,
            }

    def state_dict(self) -> dict[str, Any]:
        """Everything that decides future draws, as JSON-safe data; rendered text is not kept
        (items are re-rendered from their seeds)."""
        with self._lock:
            version, internal, gauss = self._rng.getstate()
            return {
                "format": STATE_FORMAT,
                "seed": self.seed,
                "rng": [version, list(internal), gauss],
                "counters": {name: self._counters[name] for name in _COUNTERS},
                "pending": [
                    [item_id, p.env_id, p.seed, p.difficulty] for item_id, p in self._pending.items()
                ],
                "envs": {
                    env_id: {
                        "code_sha256": env.spec.code_sha256,
                        "level": env.level,
                        "cap": env.cap,
                        "fresh": env.fresh,
                        "drawn": env.drawn,
                        "windows": {
                            str(level): [int(x) for x in w] for level, w in sorted(env.windows.items())
                        },
                        "failures": {str(level): n for level, n in sorted(env.failures.items())},
                        **env.counters(),
                        "dropped": env.dropped,
                    }
                    for env_id, env in self._envs.items()
                },
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` (also after a JSON round trip). The curriculum must hold
        the same environments (ids and code); its settings, weights and ranges are its own."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise CurriculumError(f"not a curriculum state of format {STATE_FORMAT!r}")
        saved: Mapping[str, Any] = state["envs"]
        mine = {env_id: env.spec.code_sha256 for env_id, env in self._envs.items()}
        theirs = {env_id: data["code_sha256"] for env_id, data in saved.items()}
        if mine != theirs:
            differ = sorted(
                set(mine) ^ set(theirs) | {i for i in set(mine) & set(theirs) if mine[i] != theirs[i]}
            )
            raise CurriculumError(
                f"the state was saved with other environments (differing: {', '.join(differ)}): "
                "build the curriculum from the environments it was saved with"
            )
        with self._lock:
            self.seed = int(state["seed"])
            version, internal, gauss = state["rng"]
            self._rng.setstate((int(version), tuple(int(x) for x in internal), gauss))
            self._counters = collections.Counter({k: int(v) for k, v in state["counters"].items()})
            self._pending = collections.OrderedDict(
                (str(item_id), _Pending(str(env_id), int(seed), int(level)))
                for item_id, env_id, seed, level in state["pending"]
            )
            for env_id, env in self._envs.items():
                data = saved[env_id]
                env.seeds = self._seed_stream(env_id)
                env.cap = None if data["cap"] is None else int(data["cap"])
                env.level = min(max(int(data["level"]), env.low), env.top)
                env.fresh = int(data["fresh"])
                env.drawn = int(data["drawn"])
                env.windows = {
                    int(level): collections.deque((bool(x) for x in values), maxlen=self.settings.window)
                    for level, values in data["windows"].items()
                }
                env.failures = {int(level): int(n) for level, n in data["failures"].items()}
                for name in _ENV_COUNTERS:
                    setattr(env, name, int(data[name]))
                env.dropped = None if data["dropped"] is None else str(data["dropped"])

    def _seed_stream(self, env_id: str) -> SeedPermutation:
        key = json.dumps([self.seed, env_id])
        return SeedPermutation(key, self.settings.seed_range)


class CurriculumReward:
    """Scores completions and feeds the scores to a curriculum, with TRL's reward-function
    signature: ``f(prompts=..., completions=..., item_id=[...], env_id=[...], ...)``."""

    def __init__(self, curriculum: Curriculum, scorer: Any) -> None:
        self.curriculum = curriculum
        self.scorer = scorer
        self.__name__ = "resyn_curriculum_reward"

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] = (),
        *,
        item_id: Sequence[str] = (),
        env_id: Sequence[str] = (),
        code_sha256: Sequence[str] = (),
        instance_json: Sequence[str] = (),
        **kwargs: Any,
    ) -> list[float]:
        batch = [
            {"env_id": e, "completion": c, "code_sha256": h, "instance_json": i}
            for c, e, h, i in zip(completions, env_id, code_sha256, instance_json, strict=True)
        ]
        scores: list[float] = list(self.scorer.score(batch))
        self.curriculum.update(list(item_id), scores)
        return scores


def _item_id(item: object) -> str | None:
    if isinstance(item, CurriculumItem):
        return item.item_id
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        value = item.get("item_id")
        return value if isinstance(value, str) else None
    return None


def _max_difficulty(spec: EnvSpec, loaded: LoadResult) -> int | None:
    """The module's own level count when it loads and reports a sane one, else the spec's."""
    value = loaded.max_difficulty
    if loaded.ok and isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_LEVELS:
        return value
    return spec.max_difficulty


def _calibrated_start(levels: Sequence[Any], settings: CurriculumSettings) -> int | None:
    """The calibrated level with the most learnability (lowest on ties); when no level has any,
    the highest level the solver mostly passed, else the lowest measured level."""
    measured = [(lv.difficulty, lv.pass_rate) for lv in levels if lv.pass_rate is not None]
    if not measured:
        return None
    best = max(measured, key=lambda m: (4 * m[1] * (1 - m[1]), -m[0]))
    if 4 * best[1] * (1 - best[1]) > 0:
        return int(best[0])
    passed = [level for level, rate in measured if rate >= settings.raise_above]
    return int(max(passed)) if passed else int(min(level for level, _ in measured))
