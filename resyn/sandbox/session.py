"""The sandbox API the rest of resyn uses: one environment module, a few workers, batched calls.

>>> with Sandbox(source) as sandbox:                       # doctest: +SKIP
...     sandbox.load().name
...     [r.value for r in sandbox.generate([(0, 1), (1, 1)])]
...     sandbox.verify([instance], [(0, "42"), (0, "41")])

Calls never raise for anything the module does: every item comes back as an :class:`ItemResult`,
failed ones with an ``error`` that starts with its kind (``timeout``, ``crashed``, ``oversize``,
``protocol``, ``exception``, ``invalid``). A batch that kills its worker is not lost: results that
arrived before the failure are kept, the rest are retried one by one in a fresh worker to find the
item responsible, and batching resumes after it.
"""

from __future__ import annotations

import contextlib
import operator
import queue
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, cast

from pydantic import BaseModel, ConfigDict

from resyn.sandbox.config import SandboxConfig
from resyn.sandbox.isolation import Isolation, probe
from resyn.sandbox.process import WorkerFailure, WorkerProcess

# Failures that kill the worker (as opposed to an exception inside one item).
_WORKER_KINDS = ("timeout", "crashed", "oversize", "protocol")


class ItemResult(NamedTuple):
    """Outcome of one item of a batch. A named tuple, not a pydantic model or frozen dataclass:
    reward scoring creates hundreds of thousands per second and construction cost dominates."""

    ok: bool
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    traceback: str | None = None
    line: int | None = None

    @property
    def kind(self) -> str | None:
        return None if self.error is None else self.error.split(":", 1)[0]


class LoadResult(BaseModel):
    """What importing the module in a worker found. Values come from untrusted code: the check
    suite validates them; this model only records them."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    error: str | None = None
    traceback: str | None = None
    line: int | None = None
    class_name: str | None = None
    name: Any = None
    max_difficulty: Any = None
    doc: str = ""
    has_solution: bool = False


def _failed(kind: str, message: str) -> ItemResult:
    return ItemResult(False, error=f"{kind}: {message}")


_new = tuple.__new__


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_FLOAT_ONLY = frozenset({float})
#: What a call returns per item; a bare float only from :meth:`Sandbox.score_values`.
_Result = ItemResult | float


def _score_from_wire(entry: Any) -> _Result:
    """:func:`_from_wire` for a ``score`` reply, where a bare float is an ok score."""
    return entry if type(entry) is float else _from_wire(entry)


def _from_wire(entry: Any) -> ItemResult:
    """Turn one ``[status, value, seconds]`` entry of a worker reply into an ItemResult."""
    if type(entry) is not list or len(entry) != 3 or type(entry[2]) is not float:
        return _failed("protocol", "malformed item result")
    status, value, seconds = entry
    if status == 1:
        # tuple.__new__ directly: half the cost of the named tuple's generated __new__, and this
        # runs once per item of every batch.
        result: ItemResult = _new(ItemResult, (True, value, None, seconds, None, None))
        return result
    if not isinstance(value, dict):
        return _failed("protocol", "malformed item error")
    kind = str(value.get("error", "exception"))
    line = value.get("line")
    return ItemResult(
        False,
        error=f"{kind}: {str(value.get('message', ''))[:2000]}",
        seconds=float(seconds),
        traceback=str(value["traceback"])[:4000] if value.get("traceback") else None,
        line=line if isinstance(line, int) else None,
    )


class Sandbox:
    """Runs one environment module in ``workers`` sandboxed processes.

    ``hash_seed`` fixes PYTHONHASHSEED of the workers (random by default); the determinism check
    starts two sandboxes with different seeds. A Sandbox is meant to be driven by one thread at a
    time; it uses its own threads to keep several workers busy.
    """

    def __init__(
        self,
        source: str,
        *,
        filename: str = "environment.py",
        config: SandboxConfig | None = None,
        workers: int = 1,
        hash_seed: int | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.source = source
        self.filename = filename
        self.config = config or SandboxConfig()
        self.isolation = isolation or probe(self.config.unsafe_no_sandbox)
        self.hash_seed = hash_seed if hash_seed is not None else random.SystemRandom().randrange(1, 2**32 - 1)
        self._slots: list[WorkerProcess | None] = [None] * max(1, workers)
        self._load: LoadResult | None = None
        self._lock = threading.Lock()
        self.spawned = 0  # workers started so far (respawns included), for metrics and tests
        self.seccomp_active: bool | None = None

    @property
    def tier(self) -> str:
        return self.isolation.tier

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for index, worker in enumerate(self._slots):
            if worker is not None:
                worker.close()
                self._slots[index] = None

    def load(self) -> LoadResult:
        """Import the module (in the first worker) and report what it defines."""
        if self._load is None:
            with contextlib.suppress(_LoadFailed):
                self._worker(0)
        assert self._load is not None
        return self._load

    def _worker(self, slot: int) -> WorkerProcess:
        """The live worker in ``slot``, started and loaded if needed; raises _LoadFailed."""
        worker = self._slots[slot]
        if worker is not None and worker.alive:
            return worker
        if worker is not None:
            worker.close()
            self._slots[slot] = None
        if self._load is not None and not self._load.ok:
            raise _LoadFailed(self._load)
        try:
            worker = WorkerProcess(self.isolation, self.config, self.hash_seed)
        except WorkerFailure as failure:
            result = LoadResult(ok=False, error=f"{failure.kind}: worker failed to start: {failure.message}")
            with self._lock:
                self._load = self._load or result
            raise _LoadFailed(result) from None
        with self._lock:
            self.spawned += 1
        self.seccomp_active = worker.seccomp_active
        try:
            reply = worker.request(
                "load",
                {"source": self.source, "filename": self.filename},
                first_deadline_s=self.config.load_timeout_s,
                progress_deadline_s=self.config.load_timeout_s,
            )
        except WorkerFailure as failure:
            worker.close()
            result = LoadResult(
                ok=False, error=f"{failure.kind}: while importing the module: {failure.message}"
            )
            with self._lock:
                self._load = self._load or result
            raise _LoadFailed(result) from None
        result = _load_result(reply)
        with self._lock:
            if self._load is None:
                self._load = result
        if not result.ok:
            worker.close()
            raise _LoadFailed(result)
        self._slots[slot] = worker
        return worker

    # -- operations --------------------------------------------------------------------------------
    def generate(
        self, keys: Sequence[tuple[int, int]], *, batch_size: int = 64, timeout_s: float | None = None
    ) -> list[ItemResult]:
        """Instances for ``(seed, difficulty)`` pairs (values are JSON round-tripped dicts)."""
        items = [[int(s), int(d)] for s, d in keys]
        return self._batched("generate", items, lambda chunk: {"items": chunk}, batch_size, timeout_s)

    def sample(
        self, keys: Sequence[tuple[int, int]], *, batch_size: int = 32, timeout_s: float | None = None
    ) -> list[ItemResult]:
        """Generate, render and solve in one call; values are dicts with ``instance``,
        ``question``, ``solution``, ``t_generate`` and JSON round-trip diagnostics."""
        items = [[int(s), int(d)] for s, d in keys]
        return self._batched("sample", items, lambda chunk: {"items": chunk}, batch_size, timeout_s)

    def questions(
        self, instances: Sequence[dict[str, Any]], *, batch_size: int = 64, timeout_s: float | None = None
    ) -> list[ItemResult]:
        return self._batched(
            "question", list(instances), lambda chunk: {"instances": chunk}, batch_size, timeout_s
        )

    def verify(
        self,
        instances: Sequence[dict[str, Any]],
        items: Sequence[tuple[int, str]],
        *,
        check_mutation: bool = False,
        batch_size: int = 128,
        timeout_s: float | None = None,
    ) -> list[ItemResult]:
        """Scores for ``(instance_index, answer)`` pairs. Values are the raw scores (numbers, or
        ``{"invalid_score": ...}`` for non-numbers; with ``check_mutation``, ``{"score", "mutated"}``
        when verify changed the instance). Each chunk carries only the instances it uses.

        The default batch of 128 keeps a request and its reply within one 64 KiB pipe buffer for
        typical answers; measured on 2 cores, larger batches were slower (docs/benchmarks.md)."""

        def payload(chunk: list[Any]) -> dict[str, Any]:
            local, index = _local_instances(instances, chunk)
            items = [[i, item[1]] for i, item in zip(index, chunk, strict=True)]
            return {"instances": local, "items": items, "check_mutation": check_mutation}

        wire = [[int(i), a] for i, a in items]
        return self._batched("verify", wire, payload, batch_size, timeout_s)

    def score(
        self,
        instances: Sequence[dict[str, Any] | str],
        items: Sequence[tuple[int, str]],
        *,
        batch_size: int = 128,
        timeout_s: float | None = None,
    ) -> list[ItemResult]:
        """Scores for ``(instance_index, completion)`` pairs: like :meth:`verify`, but the worker
        extracts each answer from the whole completion (:func:`resyn.grading.extract_answer`), and
        an instance may be the JSON text of an object, which the worker parses. An item whose
        instance is not a JSON object fails with kind ``invalid_item``, one without an answer with
        ``no_answer``; equal answers to one instance are verified once per batch. Moving this work
        into the workers is what keeps the parent's per-item cost small and independent of the
        length of completions (reward scoring, :mod:`resyn.reward`)."""

        wire = [(int(i), c) for i, c in items]
        scores = self.score_values(instances, wire, batch_size=batch_size, timeout_s=timeout_s)
        return [r if isinstance(r, ItemResult) else ItemResult(True, r) for r in scores]

    def score_values(
        self,
        instances: Sequence[dict[str, Any] | str],
        items: Sequence[tuple[int, str]],
        *,
        batch_size: int = 128,
        timeout_s: float | None = None,
    ) -> list[float | ItemResult]:
        """:meth:`score` for the reward scorer's hot path: an item that verify scored with a
        finite float is that float (no :class:`ItemResult`, no seconds); every other item is its
        ItemResult (``ok`` ones for scores that are not floats, which the caller judges). Instance
        indices must be ints."""

        def payload(chunk: list[Any]) -> dict[str, Any]:
            # The items as two flat lists: cheaper to encode and decode than a list of pairs.
            # Built with map() and dicts, without a Python-level loop per item.
            wanted = list(map(_FIRST, chunk))
            used = list(dict.fromkeys(wanted))
            local = list(map(instances.__getitem__, used))
            if len(used) == len(wanted):  # each instance once: item k uses local instance k
                wanted = list(range(len(wanted)))
            else:
                wanted = list(map(dict(zip(used, range(len(used)), strict=True)).__getitem__, wanted))
            return {"instances": local, "index": wanted, "texts": list(map(_SECOND, chunk))}

        return self._run_batched("score", list(items), payload, batch_size, timeout_s, bare_floats=True)

    def time_verify(self, instances: Sequence[dict[str, Any]], items: Sequence[tuple[int, str]]) -> float:
        """Seconds the worker spends calling verify directly in a loop for ``items`` (no IPC, no
        per-call bookkeeping): the in-process baseline for benchmarks. Raises WorkerFailure."""
        worker = self._worker(0)
        reply = worker.request(
            "time_verify",
            {"instances": list(instances), "items": [[int(i), a] for i, a in items]},
            first_deadline_s=self.config.call_overhead_s + self.config.item_timeout_s * max(1, len(items)),
            progress_deadline_s=self.config.item_timeout_s,
        )
        seconds = reply.get("seconds")
        if not isinstance(seconds, int | float):
            raise WorkerFailure("protocol", f"time_verify failed: {str(reply)[:200]}")
        return float(seconds)

    # -- batching with failure isolation -------------------------------------------------------------
    def _batched(
        self,
        op: str,
        items: list[Any],
        make_payload: Callable[[list[Any]], dict[str, Any]],
        batch_size: int,
        timeout_s: float | None,
    ) -> list[ItemResult]:
        # Without bare_floats, every result is an ItemResult (a bare number is a protocol error).
        return cast(list[ItemResult], self._run_batched(op, items, make_payload, batch_size, timeout_s))

    def _run_batched(
        self,
        op: str,
        items: list[Any],
        make_payload: Callable[[list[Any]], dict[str, Any]],
        batch_size: int,
        timeout_s: float | None,
        *,
        bare_floats: bool = False,
    ) -> list[_Result]:
        results: list[_Result | None] = [None] * len(items)
        chunks = [
            list(range(i, min(i + batch_size, len(items)))) for i in range(0, len(items), max(1, batch_size))
        ]
        timeout = timeout_s if timeout_s is not None else self.config.item_timeout_s
        budget = _FailureBudget(self.config.worker_failures_per_call)
        if len(self._slots) == 1 or len(chunks) <= 1:
            for chunk in chunks:
                self._run_chunk(0, op, items, chunk, make_payload, timeout, results, budget, bare_floats)
        else:
            free: queue.Queue[int] = queue.Queue()
            for slot in range(len(self._slots)):
                free.put(slot)

            def run(chunk: list[int]) -> None:
                slot = free.get()
                try:
                    self._run_chunk(
                        slot, op, items, chunk, make_payload, timeout, results, budget, bare_floats
                    )
                finally:
                    free.put(slot)

            with ThreadPoolExecutor(len(self._slots)) as pool:
                for future in [pool.submit(run, chunk) for chunk in chunks]:
                    future.result()
        return [r if r is not None else _failed("protocol", "no result") for r in results]

    def _run_chunk(
        self,
        slot: int,
        op: str,
        items: list[Any],
        chunk: list[int],
        make_payload: Callable[[list[Any]], dict[str, Any]],
        timeout: float,
        results: list[_Result | None],
        budget: _FailureBudget,
        bare_floats: bool,
    ) -> None:
        pending = chunk
        while pending:
            if budget.exhausted():
                _fill(results, pending, budget.not_run())
                return
            failure = self._attempt(slot, op, items, pending, make_payload, timeout, results, bare_floats)
            if failure is None:
                return
            if isinstance(failure, _LoadFailed):
                _fill(results, pending, failure.error())
                return
            budget.spend(failure)
            remaining = [i for i in pending if results[i] is None]
            pending = []
            # Find the item responsible: run the unfinished items one at a time until one fails,
            # then resume batching after it.
            for position, index in enumerate(remaining):
                if budget.exhausted():
                    _fill(results, remaining[position:], budget.not_run())
                    return
                single = self._attempt(slot, op, items, [index], make_payload, timeout, results, bare_floats)
                if single is None:
                    continue
                if isinstance(single, _LoadFailed):
                    _fill(results, remaining[position:], single.error())
                    return
                results[index] = _failed(single.kind, single.message)
                budget.spend(single)
                pending = remaining[position + 1 :]
                break

    def _attempt(
        self,
        slot: int,
        op: str,
        items: list[Any],
        indices: list[int],
        make_payload: Callable[[list[Any]], dict[str, Any]],
        timeout: float,
        results: list[_Result | None],
        bare_floats: bool,
    ) -> WorkerFailure | _LoadFailed | None:
        """One request for ``indices`` (ascending); fills ``results`` with what arrives. Returns
        the failure. With ``bare_floats`` (the ``score`` op), an entry that is a bare JSON float
        is an ok score and kept as that float."""
        try:
            worker = self._worker(slot)
        except _LoadFailed as failed:
            return failed
        first = indices[0]
        contiguous = indices[-1] - first + 1 == len(indices)

        def on_results(start: int, entries: list[Any]) -> None:
            if contiguous:  # the usual case: slices, and no Python-level loop for all-float frames
                low = first + start
                if bare_floats and set(map(type, entries)) <= _FLOAT_ONLY:
                    results[low : low + len(entries)] = entries
                else:
                    results[low : low + len(entries)] = map(
                        _score_from_wire if bare_floats else _from_wire, entries
                    )
                return
            decode = _score_from_wire if bare_floats else _from_wire
            for offset, entry in enumerate(entries):
                results[indices[start + offset]] = decode(entry)

        payload = make_payload(
            items[first : first + len(indices)] if contiguous else [items[i] for i in indices]
        )
        try:
            reply = worker.request(
                op,
                payload,
                first_deadline_s=self.config.call_overhead_s + timeout,
                progress_deadline_s=self.config.call_overhead_s + timeout,
                on_results=on_results,
                expected_items=len(indices),
            )
        except WorkerFailure as failure:
            return failure
        if reply.get("ok") is False:  # the worker rejected the whole request
            message = f"{reply.get('error', 'exception')}: {reply.get('message', '')}"
            for index in indices:
                if results[index] is None:
                    results[index] = _failed(*_split(message))
        return None


class _FailureBudget:
    """Worker-killing failures allowed in one call, across all its chunks and threads. Each costs a
    deadline and a respawn; a module that hangs on most items must not cost that per item."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.spent = 0
        self.last: WorkerFailure | None = None
        self._lock = threading.Lock()

    def spend(self, failure: WorkerFailure) -> None:
        with self._lock:
            self.spent += 1
            self.last = failure

    def exhausted(self) -> bool:
        return self.spent >= self.allowed

    def not_run(self) -> tuple[str, str]:
        last = self.last
        kind, message = (last.kind, last.message) if last else ("timeout", "worker failures")
        return kind, f"not run: {self.spent} earlier items of this call failed the same way ({message})"


class _LoadFailed(Exception):
    def __init__(self, result: LoadResult) -> None:
        super().__init__(result.error)
        self.result = result

    def error(self) -> tuple[str, str]:
        return _split(self.result.error or "invalid: module did not load")


def _local_instances(instances: Sequence[Any], chunk: list[Any]) -> tuple[list[Any], list[int]]:
    """The instances a chunk of ``[instance_index, ...]`` items uses (each once), and each item's
    index into that list: a request carries only its own instances."""
    remap: dict[int, int] = {}
    local: list[Any] = []
    for item in chunk:
        if item[0] not in remap:
            remap[item[0]] = len(local)
            local.append(instances[item[0]])
    return local, [remap[item[0]] for item in chunk]


def _fill(results: list[_Result | None], indices: list[int], error: tuple[str, str]) -> None:
    for index in indices:
        if results[index] is None:
            results[index] = _failed(*error)


def _split(error: str) -> tuple[str, str]:
    kind, _, message = error.partition(": ")
    return kind, message


def _load_result(reply: dict[str, Any]) -> LoadResult:
    if reply.get("ok") is True:
        return LoadResult(
            ok=True,
            class_name=str(reply.get("class_name"))[:200],
            name=reply.get("name"),
            max_difficulty=reply.get("max_difficulty"),
            doc=str(reply.get("doc", ""))[:4000],
            has_solution=bool(reply.get("has_solution")),
        )
    line = reply.get("line")
    return LoadResult(
        ok=False,
        error=f"{reply.get('error', 'exception')}: {str(reply.get('message', ''))[:2000]}",
        traceback=str(reply["traceback"])[:4000] if reply.get("traceback") else None,
        line=line if isinstance(line, int) else None,
    )
