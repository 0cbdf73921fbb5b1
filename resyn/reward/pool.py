"""One environment's workers, shared by every thread and coroutine of the process that scores it.

A :class:`WorkerPool` has ``workers_per_env`` driver threads. Each owns one single-worker
:class:`~resyn.sandbox.Sandbox` for its whole life and takes batches of jobs from the pool's
queue; callers enqueue jobs and wait on their futures. Three reasons for this shape:

* **Concurrency without locking the sandbox.** A Sandbox is driven by one thread at a time; a
  driver is that thread. Trainer threads never touch a worker, so any number of them can score
  at once and a slow item never blocks a lock other callers wait on.
* **Batching across callers.** verl's reward loop and async TRL reward functions score one
  completion per call from many threads or tasks; a driver merges whatever jobs are queued into
  one message of up to ``batch_size`` items, which is where sandboxed throughput comes from.
* **Workers outlive the calls that start them.** bubblewrap's ``--die-with-parent`` is tied to
  the *thread* that spawned it (``PR_SET_PDEATHSIG``): a worker started from a short-lived thread
  (an executor's, ``asyncio.to_thread``'s) is killed when that thread exits. Drivers live as long
  as the pool, so workers started by them persist.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Literal

from resyn.reward.models import EnvSpec, RewardConfig
from resyn.sandbox import Isolation, ItemResult, Sandbox, SandboxUnavailable

log = logging.getLogger(__name__)

JobKind = Literal["verify", "generate", "load"]

#: Kinds of sandbox failure that kill the worker (and so cost a deadline and a respawn).
WORKER_KINDS = frozenset({"timeout", "crashed", "oversize", "protocol"})


#: One item's outcome: a bare float for a verify that gave a finite float score
#: (:meth:`~resyn.sandbox.Sandbox.score_values`), an ItemResult for anything else.
Result = ItemResult | float
_FLOAT_ONLY = frozenset({float})


def failed(kind: str, message: str) -> ItemResult:
    return ItemResult(False, error=f"{kind}: {message}")


class Ticket:
    """The worker-failure budget of one scoring call in one environment.

    The sandbox isolates the item that kills a worker (a timeout or a crash) by retrying the
    unfinished items of its batch one by one, and gives up on the batch after a few failures
    ("not run"). The pool re-runs such items while the call has budget left, so innocent items
    are not lost to a batch that held two culprits; once ``allowed`` culprits of one call are
    found, its remaining items fail at once with the last reason. Each culprit costs about two
    deadlines, so this bounds what a module that hangs on every answer costs a training step.
    """

    __slots__ = ("allowed", "last", "spent")

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.spent = 0
        self.last = "timeout"

    def exhausted(self) -> bool:
        return self.spent >= self.allowed

    def spend(self, kind: str) -> None:
        self.spent += 1
        self.last = kind


class Job:
    """Items of one call, for one worker message (possibly merged with other calls' jobs).

    ``verify``: ``payload`` is a list of ``(instance_index, completion)`` into ``instances``
    (objects, or JSON text the worker parses; the worker extracts the answers, see
    :meth:`~resyn.sandbox.Sandbox.score`);
    ``generate``: a list of ``(seed, difficulty)``; ``load``: empty (start and load a worker).
    """

    __slots__ = ("future", "instances", "kind", "payload", "ticket")

    def __init__(
        self,
        kind: JobKind,
        payload: list[Any],
        ticket: Ticket,
        instances: list[dict[str, Any] | str] | None = None,
    ) -> None:
        self.kind = kind
        self.payload = payload
        self.instances = instances if instances is not None else []
        self.ticket = ticket
        self.future: Future[list[Result]] = Future()

    @property
    def size(self) -> int:
        return max(1, len(self.payload))

    def fail(self, kind: str, message: str) -> None:
        if not self.future.done():
            self.future.set_result([failed(kind, message)] * self.size)


class WorkerPool:
    """The workers of one environment module (one code hash) in this process."""

    def __init__(
        self,
        spec: EnvSpec,
        config: RewardConfig,
        isolation: Callable[[], Isolation],
    ) -> None:
        self.spec = spec
        self.config = config
        self._isolation = isolation
        self._cond = threading.Condition()
        self._jobs: collections.deque[Job] = collections.deque()
        self._busy = 0
        self._stopping = False
        self._sandboxes: list[Sandbox | None] = [None] * config.workers_per_env
        self._load_failure: tuple[str, float] | None = None
        self._quarantine: tuple[float, str] | None = None  # (until, failure kind)
        self.max_difficulty: int | None = spec.max_difficulty
        self._drivers = [
            threading.Thread(
                target=self._drive,
                args=(slot,),
                name=f"resyn-reward-{spec.env_id}-{slot}",
                daemon=True,  # never keeps a trainer from exiting; close()/atexit stop workers
            )
            for slot in range(config.workers_per_env)
        ]
        for driver in self._drivers:
            driver.start()

    # -- callers' side ---------------------------------------------------------------------------
    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue jobs; each job's future receives its results (never an exception)."""
        with self._cond:
            if self._stopping:
                for job in jobs:
                    job.fail("closed", "the scorer was closed")
                return
            self._jobs.extend(jobs)
            self._cond.notify(len(jobs))

    def idle(self) -> bool:
        with self._cond:
            return not self._jobs and self._busy == 0

    def stop(self) -> None:
        """Stop taking jobs: queued ones fail as ``closed``, drivers finish what they run and
        close their workers."""
        with self._cond:
            self._stopping = True
            queued = list(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
        for job in queued:
            job.fail("closed", "the scorer was closed")

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the drivers to finish; then kill the workers of those still
        in a batch, so their calls fail fast instead of holding up shutdown."""
        deadline = time.monotonic() + timeout
        for driver in self._drivers:
            if driver is not threading.current_thread():
                driver.join(max(0.0, deadline - time.monotonic()))
        if any(driver.is_alive() for driver in self._drivers):
            for pid in self.worker_pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def worker_pids(self) -> list[int]:
        """Process-group ids of the live workers (for monitoring, and for tests that kill one)."""
        pids: list[int] = []
        for sandbox in list(self._sandboxes):
            # Sandbox has no public accessor for its worker processes; reading them is safe
            # (the driver replaces slots but never mutates a WorkerProcess's pid).
            for worker in list(sandbox._slots) if sandbox is not None else []:
                if worker is not None and worker.alive:
                    pids.append(worker.proc.pid)
        return pids

    # -- drivers ---------------------------------------------------------------------------------
    def _drive(self, slot: int) -> None:
        try:
            while True:
                batch = self._next_batch(slot)
                if batch is None:
                    return
                try:
                    outcomes = self._run(slot, batch)
                except Exception as exc:  # a bug here must not strand callers waiting on futures
                    log.exception("reward: internal error while scoring %s", self.spec.env_id)
                    self._discard(slot)
                    error = failed("internal_error", f"{type(exc).__name__}: {exc}")
                    outcomes = [(job, [error] * job.size) for job in batch]
                # Idle again before anyone sees the results, so that a caller that goes on to
                # another environment finds this pool evictable.
                with self._cond:
                    self._busy -= 1
                for job, results in outcomes:
                    if not job.future.done():
                        job.future.set_result(results)
        finally:
            self._discard(slot)

    def _next_batch(self, slot: int) -> list[Job] | None:
        """Wait for jobs and take a batch of one kind, up to ``batch_size`` items."""
        idle_s = self.config.worker_idle_s
        with self._cond:
            while not self._jobs and not self._stopping:
                if not self._cond.wait(idle_s) and self._sandboxes[slot] is not None:
                    # Idle too long: give the worker's memory back; the next batch respawns it.
                    self._cond.release()
                    try:
                        self._discard(slot)
                    finally:
                        self._cond.acquire()
            if self._stopping:
                return None
            first = self._jobs.popleft()
            batch = [first]
            total = first.size
            if first.kind != "load":  # one load per driver, so that each starts its own worker
                while (
                    self._jobs
                    and self._jobs[0].kind == first.kind
                    and total + self._jobs[0].size <= self.config.batch_size
                ):
                    job = self._jobs.popleft()
                    batch.append(job)
                    total += job.size
            self._busy += 1
            return batch

    def _discard(self, slot: int) -> None:
        sandbox = self._sandboxes[slot]
        self._sandboxes[slot] = None
        if sandbox is not None:
            sandbox.close()

    def _sandbox(self, slot: int) -> Sandbox | ItemResult:
        """This driver's loaded sandbox, or the failure to report for the batch."""
        failure = self._load_failure
        if failure is not None and time.monotonic() - failure[1] < self.config.load_retry_s:
            return failed("load_error", failure[0])
        sandbox = self._sandboxes[slot]
        if sandbox is not None and failure is None:
            return sandbox
        self._discard(slot)
        try:
            isolation = self._isolation()
        except SandboxUnavailable as exc:
            return failed("sandbox_unavailable", str(exc))
        sandbox = Sandbox(
            self.spec.code,
            filename=self.spec.filename,
            config=self.config.sandbox,
            workers=1,
            isolation=isolation,
        )
        load = sandbox.load()
        if not load.ok:
            sandbox.close()
            message = load.error or "the module did not load"
            if self._load_failure is None:
                log.warning("reward: %s does not load in the sandbox: %s", self.spec.env_id, message)
            self._load_failure = (message, time.monotonic())
            return failed("load_error", message)
        self._load_failure = None
        if type(load.max_difficulty) is int and self.max_difficulty is None:
            self.max_difficulty = load.max_difficulty
        self._sandboxes[slot] = sandbox
        return sandbox

    def _run(self, slot: int, batch: list[Job]) -> list[tuple[Job, list[Result]]]:
        """Run one batch; returns each job's results (the caller publishes them)."""
        outcomes: list[tuple[Job, list[Result]]] = []
        runnable: list[Job] = []
        quarantine = self._quarantine
        for job in batch:
            if job.ticket.exhausted():
                message = f"not run: {job.ticket.spent} items of this call already killed their worker"
                outcomes.append((job, [failed(job.ticket.last, message)] * job.size))
            elif quarantine is not None and time.monotonic() < quarantine[0] and job.kind != "load":
                message = (
                    "not run: the environment is quarantined after a call whose items kept killing workers"
                )
                outcomes.append((job, [failed(quarantine[1], message)] * job.size))
            else:
                runnable.append(job)
        if not runnable:
            return outcomes
        sandbox = self._sandbox(slot)
        if isinstance(sandbox, ItemResult):
            return outcomes + [(job, [sandbox] * job.size) for job in runnable]
        if runnable[0].kind == "load":
            return outcomes + [(job, [ItemResult(True, self.max_difficulty)]) for job in runnable]
        results = self._execute(sandbox, runnable)
        start = 0
        for job in runnable:
            outcomes.append((job, results[start : start + job.size]))
            start += job.size
        return outcomes

    def _execute(self, sandbox: Sandbox, jobs: list[Job]) -> list[Result]:
        """The jobs' items in one sandbox call, then their "not run" items again while their
        calls have budget: every round that ends early has found at least one culprit."""
        owners = [job for job in jobs for _ in range(job.size)]
        run: Callable[[list[int]], list[Result]]
        if jobs[0].kind == "generate":
            keys = [key for job in jobs for key in job.payload]

            def run(indices: list[int]) -> list[Result]:
                return list[Result](
                    sandbox.generate([keys[i] for i in indices], batch_size=max(1, len(indices)))
                )

        else:
            instances, items = _merge(jobs)

            def run(indices: list[int]) -> list[Result]:
                chosen = items if len(indices) == len(items) else [items[i] for i in indices]
                return sandbox.score_values(instances, chosen, batch_size=max(1, len(indices)))

        results: list[Result] = [failed("internal_error", "not run")] * len(owners)
        pending = list(range(len(owners)))
        while pending:
            got = run(pending)
            if len(pending) == len(owners) and set(map(type, got)) <= _FLOAT_ONLY:
                return got  # every item scored (a float each): nothing to retry
            again: list[int] = []
            culprits = 0
            for index, result in zip(pending, got, strict=True):
                results[index] = result
                if not isinstance(result, ItemResult):  # a score
                    continue
                error = result.error
                if error is None or result.kind not in WORKER_KINDS:
                    continue
                if "not run:" in error:
                    again.append(index)
                else:
                    owners[index].ticket.spend(result.kind or "timeout")
                    culprits += 1
            if culprits == 0:  # no progress is possible (a budget of 1 finds no culprit)
                break
            pending = [index for index in again if not owners[index].ticket.exhausted()]
        if any(job.ticket.exhausted() for job in jobs) and self.config.quarantine_s > 0:
            last = next(job.ticket.last for job in jobs if job.ticket.exhausted())
            self._quarantine = (time.monotonic() + self.config.quarantine_s, last)
            log.warning(
                "reward: %s keeps killing workers (%s); its items score 0 for %.0f s",
                self.spec.env_id,
                last,
                self.config.quarantine_s,
            )
        return results


def _merge(jobs: list[Job]) -> tuple[list[dict[str, Any] | str], list[tuple[int, str]]]:
    """One verify message for several jobs. Jobs of one call share their instance list, which is
    then passed as is (the sandbox sends a chunk only the instances it uses)."""
    if len(jobs) == 1:
        return jobs[0].instances, jobs[0].payload
    instances: list[dict[str, Any] | str] = []
    offsets: dict[int, int] = {}
    items: list[tuple[int, str]] = []
    for job in jobs:
        offset = offsets.get(id(job.instances))
        if offset is None:
            offset = offsets[id(job.instances)] = len(instances)
            instances.extend(job.instances)
        items.extend((index + offset, answer) for index, answer in job.payload)
    return instances, items
