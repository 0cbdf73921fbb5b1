"""The scoring core: completions in, floats in [0, 1] out, for any trainer.

>>> scorer = RewardScorer.from_catalog("runs/catalog.duckdb", ["josephus-e2ea4593"])   # doctest: +SKIP
>>> scorer.score([{"env_id": "josephus-e2ea4593", "instance_json": row["instance_json"],
...                "completion": "... <answer>7</answer>"}])                           # doctest: +SKIP
[1.0]

What it promises a trainer, and how:

* **It never raises.** Every way an item can fail (bad data, a completion that is not text, too
  long or has no answer, a module that does not load, hangs, crashes or returns nonsense)
  scores 0.0 and is counted under its reason (:data:`~resyn.reward.models.REASONS`,
  :meth:`RewardScorer.metrics`). Only ``KeyboardInterrupt``/``SystemExit`` pass through.
* **Untrusted code runs only in sandbox workers**, one :class:`~resyn.reward.pool.WorkerPool`
  per environment code hash, created on first use and reused. Calls are batched per
  environment, across concurrent callers too.
* **Threads, coroutines, processes.** :meth:`~RewardScorer.score` may be called from any number
  of threads at once and :meth:`~RewardScorer.ascore` from coroutines (neither uses signals in
  the caller; deadlines are enforced by the parent's poll on the worker's pipe). Each process
  has its own workers: a scorer forked into a child drops the parent's workers and starts its
  own, and a pickled scorer is only its configuration (environment sources and settings), so
  it rebuilds workers lazily wherever it is unpickled and never needs the catalog there.
* **Shutdown.** :meth:`~RewardScorer.close` (or ``with``) stops the workers; a scorer that is
  garbage-collected or still open at interpreter exit is closed by a finalizer.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import math
import operator
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from resyn.grading import extract_answer
from resyn.reward.models import (
    REASONS,
    EnvSpec,
    Reason,
    RewardConfig,
    ScoreItem,
    ScoreResult,
    completion_text,
)
from resyn.reward.pool import Job, Result, Ticket, WorkerPool
from resyn.sandbox import Isolation, ItemResult, probe

__all__ = ["RewardScorer"]

log = logging.getLogger(__name__)

#: Above this many items, ``ascore`` validates and extracts in a thread so that a large batch of
#: long completions does not stall the event loop.
_INLINE_PREPARE = 64

#: Items prepared between two sends of whole batches to the workers.
_SLICE = 256

# Shared results for the two common scores (named tuples are immutable).
_OK_ZERO = ScoreResult(0.0, "ok")
_OK_ONE = ScoreResult(1.0, "ok")
#: Float scores with a shared result (-0.0 == 0.0 finds _OK_ZERO; NaN finds nothing).
_OK_SCORES: dict[float, ScoreResult] = {0.0: _OK_ZERO, 1.0: _OK_ONE}
_FLOAT_ONLY = frozenset({float})
_NONE_OR_INT = frozenset({type(None), int})
_SCORE = operator.itemgetter(0)
_REASON = operator.itemgetter(1)

_VERIFY_KINDS: dict[str, Reason] = {
    "exception": "verify_error",
    "invalid": "verify_error",
    "timeout": "timeout",
    "crashed": "crashed",
    "oversize": "worker_error",
    "protocol": "worker_error",
    "load_error": "load_error",
    "sandbox_unavailable": "sandbox_unavailable",
    "closed": "closed",
    "internal_error": "internal_error",
    # Found by the worker, which checks the instance and extracts the answer (Sandbox.score).
    "invalid_item": "invalid_item",
    "no_answer": "no_answer",
}
#: Reasons that say the worker could not judge an item at all; the item's own defects, if it has
#: any, are reported instead (as when the parent checked them before sending).
_NOT_JUDGED: frozenset[Reason] = frozenset(
    {"load_error", "timeout", "crashed", "worker_error", "sandbox_unavailable", "closed", "internal_error"}
)
_NO_ANSWER = "no <answer>, \\boxed{} or 'final answer:' in the completion"
_GENERATE_KINDS: dict[str, Reason] = {
    **_VERIFY_KINDS,
    "exception": "generate_error",
    "invalid": "generate_error",
}


def _reason(result: ItemResult, kinds: dict[str, Reason], default: Reason) -> tuple[Reason, str]:
    error = result.error or ""
    kind, _, message = error.partition(": ")
    # The kind comes from the worker, i.e. from untrusted code: only known kinds are believed.
    return kinds.get(kind, default), (message or error)[:300]


class _State:
    """Everything of a scorer that belongs to one process: its pools, locks, counters and cache.
    Kept apart from the scorer object so that the finalizer and the after-fork hook can reach it
    without keeping the scorer alive."""

    def __init__(self, config: RewardConfig) -> None:
        self.config = config
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        # Called again in a forked child: the parent's workers (and its pipes to them) are not
        # ours to use or to kill, and a lock another thread held at fork time would never be
        # released here. Drop the references (no close) and start over.
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.pools: collections.OrderedDict[str, WorkerPool] = collections.OrderedDict()
        self.counts: collections.Counter[tuple[str, Reason]] = collections.Counter()
        self.cache: collections.OrderedDict[tuple[str, int, int], dict[str, Any]] = collections.OrderedDict()
        self._isolation: Isolation | None = None

    def isolation(self) -> Isolation:
        """The sandbox tier, probed once per process (raises SandboxUnavailable)."""
        if self._isolation is None:
            self._isolation = probe(self.config.sandbox.unsafe_no_sandbox)
        return self._isolation

    def submit(self, spec: EnvSpec, jobs: Sequence[Job]) -> None:
        evicted: list[WorkerPool] = []
        with self.lock:
            if self.closed:
                for job in jobs:
                    job.fail("closed", "the scorer was closed")
                return
            pool = self.pools.get(spec.code_sha256)
            if pool is None:
                pool = self.pools[spec.code_sha256] = WorkerPool(spec, self.config, self.isolation)
                evicted = self._evict(keep=spec.code_sha256)
            else:
                self.pools.move_to_end(spec.code_sha256)
            pool.submit(jobs)
        for old in evicted:
            old.stop()  # its drivers close their workers; nothing waits for them

    def _evict(self, keep: str) -> list[WorkerPool]:
        evicted: list[WorkerPool] = []
        excess = len(self.pools) - self.config.max_live_envs
        for key in list(self.pools):
            if excess <= 0:
                break
            if key != keep and self.pools[key].idle():
                evicted.append(self.pools.pop(key))
                excess -= 1
        return evicted

    def max_difficulty(self, spec: EnvSpec) -> int | None:
        if spec.max_difficulty is not None:
            return spec.max_difficulty
        with self.lock:
            pool = self.pools.get(spec.code_sha256)
        return pool.max_difficulty if pool is not None else None

    def cached(self, keys: Sequence[tuple[str, int, int]]) -> list[dict[str, Any] | None]:
        """Cached instances for ``keys`` (None where missing), under one lock acquisition."""
        with self.lock:
            found = [self.cache.get(key) for key in keys]
            for key, instance in zip(keys, found, strict=True):
                if instance is not None:
                    self.cache.move_to_end(key)
        return found

    def remember(self, entries: Sequence[tuple[tuple[str, int, int], dict[str, Any]]]) -> None:
        size = self.config.instance_cache_size
        if size <= 0 or not entries:
            return
        with self.lock:
            for key, instance in entries:
                self.cache[key] = instance
                self.cache.move_to_end(key)
            while len(self.cache) > size:
                self.cache.popitem(last=False)

    def count(self, counts: Mapping[tuple[str, Reason], int]) -> None:
        with self.lock:
            self.counts.update(counts)

    def shutdown(self) -> None:
        """Stop every pool of this process and wait (bounded) for their workers to end."""
        if os.getpid() != self.pid:  # a forked child never stops its parent's workers
            return
        with self.lock:
            self.closed = True
            pools = list(self.pools.values())
            self.pools.clear()
        for pool in pools:
            pool.stop()
        deadline = time.monotonic() + self.config.close_timeout_s
        for pool in pools:
            pool.join(max(0.0, deadline - time.monotonic()))


_STATES: weakref.WeakSet[_State] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for state in list(_STATES):
        state._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Group:
    """The items of one call for one environment: its distinct instances, its distinct
    ``(instance, answer)`` pairs with the slots each scores, and the jobs sent so far."""

    __slots__ = (
        "extra",
        "first",
        "index",
        "instances",
        "jobs",
        "keys",
        "missing",
        "pairs",
        "regen",
        "resolved",
        "sent",
        "spec",
        "ticket",
        "unresolved",
    )

    def __init__(self, spec: EnvSpec, failures: int) -> None:
        self.spec = spec
        # Objects, or (when scoring) the JSON text of an item's instance_json, parsed by the worker.
        self.instances: list[dict[str, Any] | str] = []
        self.index: dict[object, int] = {}
        # Items to regenerate: (seed, difficulty) -> their (slot, answer); keys not yet looked up
        # in the cache; keys the workers must generate; keys whose instance is known.
        self.regen: dict[tuple[int, int], list[tuple[int, str]]] = {}
        self.unresolved: list[tuple[int, int]] = []
        self.missing: list[tuple[int, int]] = []
        self.resolved: dict[tuple[int, int], int] = {}
        # Distinct (instance, completion) pairs in sending order, the slot of each pair's first
        # item, and (pair position, slot) for the items that repeat a pair.
        self.pairs: dict[tuple[int, str], int] = {}
        self.keys: list[tuple[int, str]] = []
        self.first: list[int] = []
        self.extra: list[tuple[int, int]] = []
        self.sent = 0
        self.jobs: list[Job] = []
        self.ticket = Ticket(failures)

    def add_instance(self, key: object, instance: dict[str, Any] | str) -> int:
        index = self.index.get(key)
        if index is None:
            # The list keeps every indexed object alive, so an id() used as key is never reused
            # by another object during the call.
            index = self.index[key] = len(self.instances)
            self.instances.append(instance)
        return index

    def add_regen(self, plan: _Plan, slot: int, key: tuple[int, int], answer: str, verify: bool) -> None:
        index = self.resolved.get(key)
        if index is not None:
            plan.instance_of[slot] = index
            if verify:
                self.add_pair(slot, index, answer)
            return
        waiting = self.regen.get(key)
        if waiting is None:
            self.regen[key] = [(slot, answer)]
            self.unresolved.append(key)
        else:
            waiting.append((slot, answer))

    def resolve_cached(self, state: _State, plan: _Plan, verify: bool) -> None:
        """Look the keys seen since the last call up in the cache (one lock for all)."""
        if not self.unresolved:
            return
        keys, self.unresolved = self.unresolved, []
        code = self.spec.code_sha256
        for key, instance in zip(keys, state.cached([(code, *key) for key in keys]), strict=True):
            if instance is None:
                self.missing.append(key)
            else:
                self.place(plan, key, instance, verify)

    def place(self, plan: _Plan, key: tuple[int, int], instance: dict[str, Any], verify: bool) -> None:
        index = self.resolved[key] = self.add_instance(("regen", *key), instance)
        for slot, answer in self.regen.pop(key, []):
            plan.instance_of[slot] = index
            if verify:
                self.add_pair(slot, index, answer)

    def add_pair(self, slot: int, index: int, completion: str) -> None:
        # A pure verifier (the contract; the determinism check enforces it) gives the same score
        # to the same answer on the same instance: GRPO groups often repeat short completions
        # (and the worker verifies equal answers of different completions once per batch).
        pair = (index, completion)
        position = self.pairs.get(pair)
        if position is None:
            self.pairs[pair] = len(self.first)
            self.keys.append(pair)
            self.first.append(slot)
        else:
            self.extra.append((position, slot))

    def flush(self, state: _State, config: RewardConfig, final: bool) -> None:
        """Send the pairs not sent yet: whole batches while items are still being prepared (so
        workers start before preparation ends), everything, spread over the workers, at the end."""
        pending = len(self.first) - self.sent
        if pending <= 0 or (not final and pending < config.batch_size):
            return
        keys = self.keys[self.sent :]
        if final:
            chunks = _chunks(keys, config.workers_per_env, config.batch_size)
        else:
            whole = len(keys) - len(keys) % config.batch_size
            keys = keys[:whole]
            chunks = [keys[i : i + config.batch_size] for i in range(0, whole, config.batch_size)]
        jobs = [Job("verify", chunk, self.ticket, self.instances) for chunk in chunks]
        self.sent += len(keys)
        self.jobs.extend(jobs)
        state.submit(self.spec, jobs)


class _Plan:
    """One call: per-slot results so far, and what is still to run per environment."""

    __slots__ = ("env_ids", "groups", "instance_of", "results")

    def __init__(self, size: int) -> None:
        self.results: list[ScoreResult | None] = [None] * size
        self.instance_of: list[int] = [-1] * size
        self.env_ids: list[str] = [""] * size
        self.groups: dict[str, _Group] = {}

    def fail(self, slot: int, reason: Reason, detail: str) -> None:
        self.results[slot] = ScoreResult(0.0, reason, detail)


class RewardScorer:
    """Scores completions against environments in sandboxed workers; see the module docstring.

    ``envs`` are the environments served (module source and id); :meth:`from_catalog` and
    :meth:`from_files` build them. Construction probes the sandbox and raises
    :class:`~resyn.sandbox.SandboxUnavailable` if this machine cannot isolate untrusted code —
    the one error raised, at set-up time, rather than a training run of zeros.
    """

    def __init__(self, envs: Iterable[EnvSpec], *, config: RewardConfig | None = None) -> None:
        self._setup(list(envs), config or RewardConfig())
        self._state.isolation()

    def _setup(self, envs: list[EnvSpec], config: RewardConfig) -> None:
        specs: dict[str, EnvSpec] = {}
        for spec in envs:
            if spec.env_id in specs:
                raise ValueError(f"environment {spec.env_id!r} is given twice: give each id once")
            specs[spec.env_id] = spec
        self._specs = specs
        self.config = config
        self._state = _State(config)
        _STATES.add(self._state)
        self._finalizer = weakref.finalize(self, self._state.shutdown)

    @classmethod
    def from_catalog(
        cls,
        path: str | Path,
        env_ids: Sequence[str] | None = None,
        *,
        status: str | None = "accepted",
        config: RewardConfig | None = None,
    ) -> RewardScorer:
        """The environments ``env_ids`` (default: every environment with ``status``; ``None``
        for all) of a catalog. The catalog is opened read-only once, here: scoring never touches
        it again, so a writer that holds it later (a running ``synthesize``) cannot block
        scoring, and many trainer processes can build scorers from one file at once."""
        from resyn.catalog import Catalog

        with Catalog.open(path, read_only=True) as catalog:
            records = catalog.environments(env_ids, status=status)
        specs = [EnvSpec.from_record(record) for record in records]
        return cls(specs, config=config)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], *, config: RewardConfig | None = None) -> RewardScorer:
        """Environment modules on disk, each under its file's stem as id."""
        return cls([EnvSpec.from_file(path) for path in paths], config=config)

    # -- pickling and lifecycle ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"envs": list(self._specs.values()), "config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # No probe here: unpickling happens in places (a trainer's worker start-up) that should
        # not spawn processes; the first call probes, and reports sandbox_unavailable if needed.
        self._setup(list(state["envs"]), state["config"])

    def __enter__(self) -> RewardScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else f"{len(self._state.pools)} live"
        return f"RewardScorer({len(self._specs)} environments, {state})"

    def close(self) -> None:
        """Stop every worker. Items still queued score 0.0 (``closed``), and so does every later
        call: a closed scorer never restarts workers behind its owner's back."""
        self._finalizer()

    @property
    def env_ids(self) -> list[str]:
        return list(self._specs)

    def environment(self, env_id: str) -> EnvSpec:
        """The environment served under ``env_id`` (KeyError if none)."""
        return self._specs[env_id]

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, items: Iterable[ScoreItem | Mapping[str, Any]]) -> list[float]:
        """Scores in [0, 1], one per item, in order. Never raises."""
        return list(map(_SCORE, self.score_detailed(items)))

    async def ascore(self, items: Iterable[ScoreItem | Mapping[str, Any]]) -> list[float]:
        """:meth:`score` for coroutines: waits without blocking the event loop."""
        return list(map(_SCORE, await self.ascore_detailed(items)))

    def score_detailed(self, items: Iterable[ScoreItem | Mapping[str, Any]]) -> list[ScoreResult]:
        """Like :meth:`score`, with each item's reason and failure detail."""
        listed = _listed(items)
        try:
            plan = _Plan(len(listed))
            for futures in self._steps(plan, listed, verify=True):
                concurrent.futures.wait(futures)
            return self._finish(plan)
        except Exception as exc:
            return self._internal_error(len(listed), exc)

    async def ascore_detailed(self, items: Iterable[ScoreItem | Mapping[str, Any]]) -> list[ScoreResult]:
        """Like :meth:`ascore`, with each item's reason and failure detail."""
        listed = _listed(items)
        try:
            plan = _Plan(len(listed))
            steps = self._steps(plan, listed, verify=True)
            while True:
                # Preparing and collecting are CPU work proportional to the call: for large calls
                # they run in a thread so that the event loop keeps serving other coroutines.
                if len(listed) > _INLINE_PREPARE:
                    futures = await asyncio.to_thread(next, steps, None)
                else:
                    futures = next(steps, None)
                if futures is None:
                    break
                await asyncio.gather(*(asyncio.wrap_future(future) for future in futures))
            return self._finish(plan)
        except Exception as exc:
            return self._internal_error(len(listed), exc)

    def instances(self, items: Iterable[ScoreItem | Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        """The instance each item would be scored against (given, or regenerated in the sandbox
        from ``(seed, difficulty)``), or None where there is none. For checking data and for
        tests; scoring does this itself. Completions are ignored."""
        listed = _listed(items)
        plan = _Plan(len(listed))
        try:
            for futures in self._steps(plan, listed, verify=False):
                concurrent.futures.wait(futures)
        except Exception as exc:
            self._internal_error(len(listed), exc)
            return [None] * len(listed)
        found: list[dict[str, Any] | None] = []
        for slot, index in enumerate(plan.instance_of):
            group = plan.groups.get(plan.env_ids[slot])
            instance = group.instances[index] if group is not None and index >= 0 else None
            found.append(instance if isinstance(instance, dict) else None)
        return found

    def warmup(self, env_ids: Iterable[str] | None = None) -> dict[str, str | None]:
        """Start and load every worker of these environments (default: all) now, so the first
        training step does not pay cold starts (~0.5 s per worker, more with sympy). Returns each
        environment's load error, or None when it loaded. Never raises."""
        chosen = [e for e in (self._specs if env_ids is None else env_ids) if e in self._specs]
        waiting: dict[str, list[Job]] = {}
        for env_id in chosen:
            ticket = Ticket(self.config.workers_per_env)
            jobs = [Job("load", [], ticket) for _ in range(self.config.workers_per_env)]
            waiting[env_id] = jobs
            try:
                self._state.submit(self._specs[env_id], jobs)
            except Exception as exc:
                log.exception("reward: internal error while warming up %s", env_id)
                for job in jobs:
                    job.fail("internal_error", str(exc))
        errors: dict[str, str | None] = {}
        for env_id, jobs in waiting.items():
            # Load jobs give ItemResults (a bare float only comes from verify jobs).
            results = [job.future.result()[0] for job in jobs]
            bad = next((r for r in results if not (isinstance(r, ItemResult) and r.ok)), None)
            errors[env_id] = None if bad is None else (_error_of(bad) or "failed")
        return errors

    # -- metrics ---------------------------------------------------------------------------------
    def metrics(self) -> dict[str, int]:
        """Items scored in this process so far, per reason (every reason listed, zeros included)."""
        totals: dict[str, int] = dict.fromkeys(REASONS, 0)
        with self._state.lock:
            for (_env, reason), count in self._state.counts.items():
                totals[reason] += count
        return totals

    def metrics_by_env(self) -> dict[str, dict[str, int]]:
        """:meth:`metrics` per environment id (items without a usable env id under ``""``), to find
        the environment that fails."""
        out: dict[str, dict[str, int]] = {}
        with self._state.lock:
            for (env_id, reason), count in self._state.counts.items():
                out.setdefault(env_id, dict.fromkeys(REASONS, 0))[reason] += count
        return out

    def worker_pids(self) -> dict[str, list[int]]:
        """Process-group ids of the live workers per environment id (of the environment that
        started the pool, when several ids share one module)."""
        with self._state.lock:
            pools = list(self._state.pools.values())
        return {pool.spec.env_id: pool.worker_pids() for pool in pools}

    # -- the pipeline ------------------------------------------------------------------------------
    def _steps(
        self, plan: _Plan, items: list[Any], *, verify: bool
    ) -> Generator[list[concurrent.futures.Future[Any]], None, None]:
        """One call, as phases separated by waits on worker futures (yielded), so that the sync
        and async entry points share it. Preparing items (validation, answer extraction) sends
        whole batches as they fill up: the workers run while the parent still prepares."""
        state = self._state
        config = self.config
        if state.closed:
            for slot in range(len(items)):
                plan.fail(slot, "closed", "the scorer was closed")
            return
        for start in range(0, len(items), _SLICE):
            stop = min(start + _SLICE, len(items))
            if verify:
                self._prepare_common(plan, items, start, stop)
            else:
                for slot in range(start, stop):
                    self._prepare_one(plan, slot, items[slot], verify)
            in_flight = False
            for group in plan.groups.values():
                group.resolve_cached(state, plan, verify)
                if verify:
                    group.flush(state, config, final=False)
                    in_flight = in_flight or bool(group.jobs)
            if in_flight:
                # Let a driver whose worker has answered take the GIL now rather than after the
                # interpreter's switch interval (5 ms): preparing is CPU-bound and would otherwise
                # hold the workers' replies up (the convoy effect).
                time.sleep(0)

        # Instances to regenerate that were not in the cache: the workers generate them.
        generating: list[tuple[_Group, list[tuple[int, int]], list[Job]]] = []
        for group in plan.groups.values():
            if group.missing:
                missing, group.missing = group.missing, []
                chunks = _chunks(missing, config.workers_per_env, config.batch_size)
                jobs = [Job("generate", chunk, group.ticket) for chunk in chunks]
                state.submit(group.spec, jobs)
                generating.append((group, missing, jobs))
        if generating:
            yield [job.future for _, _, jobs in generating for job in jobs]
        for group, missing, jobs in generating:
            results = [result for job in jobs for result in job.future.result()]
            fresh: list[tuple[tuple[str, int, int], dict[str, Any]]] = []
            for key, result in zip(missing, results, strict=True):
                value = result.value if isinstance(result, ItemResult) else result
                if isinstance(result, ItemResult) and result.ok and isinstance(value, dict):
                    fresh.append(((group.spec.code_sha256, *key), value))
                    group.place(plan, key, value, verify)
                    continue
                reason: Reason
                if not isinstance(result, ItemResult) or result.ok:
                    reason, detail = "generate_error", "generate() did not return an instance"
                else:
                    reason, detail = _reason(result, _GENERATE_KINDS, "generate_error")
                for slot, _answer in group.regen.pop(key, []):
                    plan.fail(slot, reason, detail)
            state.remember(fresh)
        if not verify:
            return

        for group in plan.groups.values():
            group.flush(state, config, final=True)
        futures = [job.future for group in plan.groups.values() for job in group.jobs]
        if futures:
            yield futures
        for group in plan.groups.values():
            outcomes = _outcomes(group, [result for job in group.jobs for result in job.future.result()])
            found = plan.results
            for slot, outcome in zip(group.first, outcomes, strict=True):
                found[slot] = outcome
            for position, slot in group.extra:
                found[slot] = outcomes[position]

    def _prepare_common(self, plan: _Plan, items: list[Any], start: int, stop: int) -> None:
        """:meth:`_prepare` for items to score, with the common shape handled inline: a plain
        dict of an environment already seen in this call, with ``instance_json`` text, a string
        completion that is neither blank nor too long, and no ``instance`` or ``code_sha256``
        (``seed``/``difficulty``, unused when an instance is given, must still be ints or None).
        Every other item, and any that fails a check, goes through :meth:`_prepare`, so each
        failure keeps its reason and detail; the outcome for an item is the same either way."""
        groups = plan.groups
        env_ids = plan.env_ids
        max_json = self.config.max_instance_json_chars
        max_chars = self.config.max_completion_chars
        for slot in range(start, stop):
            raw = items[slot]
            if type(raw) is dict:
                get: Callable[[str], Any] = raw.get
                env_id = get("env_id")
                raw_json = get("instance_json")
                text = get("completion")
                group = groups.get(env_id) if type(env_id) is str else None
                if (
                    group is not None
                    and type(raw_json) is str
                    and type(text) is str
                    and 0 < len(text) <= max_chars
                    and get("instance") is None
                    and get("code_sha256") is None
                    and type(get("seed")) in _NONE_OR_INT
                    and type(get("difficulty")) in _NONE_OR_INT
                    and not text.isspace()
                ):
                    index = group.index.get(raw_json)
                    if index is None and len(raw_json) <= max_json:
                        index = group.index[raw_json] = len(group.instances)
                        group.instances.append(raw_json)
                    if index is not None:
                        env_ids[slot] = env_id
                        group.add_pair(slot, index, text)
                        continue
            self._prepare_one(plan, slot, raw, True)

    def _prepare_one(self, plan: _Plan, slot: int, raw: Any, answers: bool) -> None:
        try:
            self._prepare(plan, slot, raw, answers)
        except Exception as exc:
            log.exception("reward: internal error while preparing an item")
            plan.fail(slot, "internal_error", f"{type(exc).__name__}: {exc}"[:300])

    def _prepare(self, plan: _Plan, slot: int, raw: Any, answers: bool) -> None:
        """Validate one item, extract its answer and file it under its environment; no worker is
        involved. Every failure found here is final for the item."""
        config = self.config
        # A plain dict whose values already have exactly the field types is read directly: for
        # such a dict, validating through ScoreItem gives the same values (extra="ignore") at
        # ~3 µs an item, a tenth of the budget of a trivial verifier. Anything else (other types
        # to coerce, an ``instance`` object whose keys must be checked) goes through pydantic.
        plain = False
        if type(raw) is dict:
            get: Callable[[str], Any] = raw.get
            env_id = get("env_id")
            completion = get("completion")
            instance = get("instance")
            instance_json = get("instance_json")
            seed = get("seed")
            difficulty = get("difficulty")
            code_sha256 = get("code_sha256")
            plain = (
                type(env_id) is str
                and instance is None
                and (instance_json is None or type(instance_json) is str)
                and (seed is None or type(seed) is int)
                and (difficulty is None or type(difficulty) is int)
                and (code_sha256 is None or type(code_sha256) is str)
            )
        if not plain:
            try:
                env_id, completion, instance, instance_json, seed, difficulty, code_sha256 = _fields(raw)
            except ValidationError as exc:
                plan.fail(slot, "invalid_item", _first_error(exc))
                return
        spec = self._specs.get(env_id)
        if spec is None:
            plan.fail(slot, "unknown_env", f"no environment {env_id[:100]!r} in this scorer")
            return
        plan.env_ids[slot] = env_id
        if code_sha256 is not None and not spec.matches(code_sha256):
            plan.fail(
                slot,
                "code_mismatch",
                f"item made by code {code_sha256[:12]!r}, environment is {spec.code_sha256[:12]}",
            )
            return
        group = plan.groups.get(env_id)
        if group is None:
            group = plan.groups[env_id] = _Group(spec, config.failures_per_call)

        # The instance: given as an object, as JSON text, or to regenerate.
        regen: tuple[int, int] | None = None
        index = -1
        if instance is not None:
            index = group.add_instance(("object", id(instance)), instance)
        elif instance_json is not None:
            raw_json = instance_json
            index = group.index.get(raw_json, -1)
            if index < 0:
                if len(raw_json) > config.max_instance_json_chars:
                    plan.fail(
                        slot, "invalid_item", f"instance_json of {len(raw_json)} characters is too large"
                    )
                    return
                if answers:
                    # The text goes to the worker as it is, which parses it (and reports an
                    # invalid_item if it is not an object): no json.loads + json.dumps here.
                    index = group.add_instance(raw_json, raw_json)
                else:
                    parsed = _parse_instance(raw_json)
                    if isinstance(parsed, str):
                        plan.fail(slot, "invalid_item", parsed)
                        return
                    index = group.add_instance(raw_json, parsed)
        elif seed is not None and difficulty is not None:
            top = self._state.max_difficulty(spec)
            if difficulty < 1 or (top is not None and difficulty > top):
                plan.fail(slot, "invalid_item", f"difficulty {difficulty} outside 1..{top or '?'}")
                return
            regen = (seed, difficulty)
        else:
            plan.fail(
                slot, "invalid_item", "no instance: give instance, instance_json, or seed and difficulty"
            )
            return

        answer = ""
        if answers:
            text = completion_text(completion)
            if text is None:
                plan.fail(slot, "not_text", f"completion is {type(completion).__name__}, not text")
                return
            if len(text) > config.max_completion_chars:
                plan.fail(slot, "too_long", f"{len(text)} characters > {config.max_completion_chars}")
                return
            if not text or text.isspace():
                plan.fail(slot, "empty", "the completion is blank")
                return
            # The worker extracts the answer (Sandbox.score): extraction is regex work over the
            # whole completion, which would otherwise hold this process's GIL for every item.
            answer = text
        if regen is not None:
            group.add_regen(plan, slot, regen, answer, answers)
            return
        plan.instance_of[slot] = index
        if answers:
            group.add_pair(slot, index, answer)

    def _finish(self, plan: _Plan) -> list[ScoreResult]:
        found = plan.results
        if None in found:  # cannot happen; never let it become an exception
            lost = ScoreResult(0.0, "internal_error", "item was not scored")
            found = [lost if result is None else result for result in found]
        out = cast(list[ScoreResult], found)
        # Counted without a Python-level loop per item.
        self._state.count(collections.Counter(zip(plan.env_ids, map(_REASON, out), strict=True)))
        return out

    def _internal_error(self, size: int, exc: Exception) -> list[ScoreResult]:
        log.error("reward: internal error; %d items score 0", size, exc_info=exc)
        self._state.count({("", "internal_error"): size})
        return [ScoreResult(0.0, "internal_error", f"{type(exc).__name__}: {exc}"[:300])] * size


_Fields = tuple[str, Any, dict[str, Any] | None, str | None, int | None, int | None, str | None]


def _fields(raw: Any) -> _Fields:
    """An item's fields, validated through :class:`ScoreItem`: ``env_id, completion, instance,
    instance_json, seed, difficulty, code_sha256``. Raises ValidationError. (Plain dicts of the
    exact field types are read directly by ``RewardScorer._prepare``.)"""
    item = raw if type(raw) is ScoreItem else ScoreItem.model_validate(raw)
    return (
        item.env_id,
        item.completion,
        item.instance,
        item.instance_json,
        item.seed,
        item.difficulty,
        item.code_sha256,
    )


def _parse_instance(text: str) -> dict[str, Any] | str:
    """The object an ``instance_json`` holds, or why it holds none."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return f"instance_json is not JSON: {str(exc)[:100]}"
    if not isinstance(parsed, dict):
        return "instance_json is not a JSON object"
    return parsed


def _own_defect(instance: dict[str, Any] | str, completion: str) -> ScoreResult | None:
    """What is wrong with an item itself, when its worker could not tell (it did not load, died
    or timed out): its instance text is not an object, or its completion has no answer. Checked
    in this process only on that rare path, so that such an item counts under the same reason
    whatever happens to the environment's workers."""
    if isinstance(instance, str):
        parsed = _parse_instance(instance)
        if isinstance(parsed, str):
            return ScoreResult(0.0, "invalid_item", parsed)
    if extract_answer(completion) is None:
        return ScoreResult(0.0, "no_answer", _NO_ANSWER)
    return None


def _listed(items: Iterable[Any]) -> list[Any]:
    try:
        return list(items)
    except Exception:
        log.error("reward: the items to score are not iterable (%s); nothing scored", type(items).__name__)
        return []


def _chunks(items: list[Any], workers: int, batch: int) -> list[list[Any]]:
    """Split so that every worker gets a share of a small call, and no message exceeds ``batch``."""
    size = max(1, min(batch, math.ceil(len(items) / workers)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _outcomes(group: _Group, results: list[Result]) -> list[ScoreResult]:
    """The outcome of each of a group's pairs from its workers' results."""
    if set(map(type, results)) <= _FLOAT_ONLY:
        # The hot path: every pair scored. Shared results for 0 and 1, without a Python-level
        # loop; other values (partial credit, or out of range) one by one.
        outcomes = list(map(_OK_SCORES.get, cast(list[float], results)))
        if None not in outcomes:
            return cast(list[ScoreResult], outcomes)
        return [_verify_outcome(r) if o is None else o for o, r in zip(outcomes, results, strict=True)]
    judged: list[ScoreResult] = []
    for (index, completion), result in zip(group.keys, results, strict=True):
        outcome = _verify_outcome(result)
        if outcome.reason in _NOT_JUDGED:
            outcome = _own_defect(group.instances[index], completion) or outcome
        judged.append(outcome)
    return judged


def _verify_outcome(result: Result) -> ScoreResult:
    if not isinstance(result, ItemResult) or result.ok:
        value = result if not isinstance(result, ItemResult) else result.value
        # The value comes from the worker: only a real number in [0, 1] is a score (NaN fails
        # both comparisons; a bool is not a score; a huge int compares without overflow).
        if (type(value) is float or type(value) is int) and 0 <= value <= 1:
            return _OK_ZERO if value == 0 else _OK_ONE if value == 1 else ScoreResult(float(value), "ok")
        return ScoreResult(0.0, "invalid_score", f"verify returned {str(value)[:100]}")
    reason, detail = _reason(result, _VERIFY_KINDS, "verify_error")
    return ScoreResult(0.0, reason, detail)


def _error_of(result: Result) -> str | None:
    return result.error if isinstance(result, ItemResult) else None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the item does not validate"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "item"
    return f"{where}: {first.get('msg', 'invalid')}"[:300]
