"""Rendering instances: ``(environment, seed, difficulty)`` → question, instance JSON and reference
answer, by the environment's own code in the sandbox.

A :class:`Renderer` keeps one sandboxed worker per environment for its lifetime and renders the
environments of a request in parallel, each environment's draws in batches. Workers are started
from the renderer's own long-lived threads: a sandbox worker dies with the thread that spawned
it (bubblewrap's ``--die-with-parent`` is a per-thread signal), so starting them from short-lived
pool threads would restart them on every call.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from resyn.reward.models import EnvSpec
from resyn.sandbox.config import SandboxConfig
from resyn.sandbox.isolation import Isolation, probe
from resyn.sandbox.session import LoadResult, Sandbox

__all__ = ["Draw", "Rendered", "Renderer"]


class Draw(NamedTuple):
    env_id: str
    seed: int
    difficulty: int


class Rendered(NamedTuple):
    """A rendered instance, or (``error`` set) why it could not be rendered."""

    draw: Draw
    question: str = ""
    instance_json: str = ""
    solution: str | None = None
    error: str | None = None


class Renderer:
    """Renders draws of a fixed set of environments; use as a context manager (or call
    :meth:`close`) so its workers stop."""

    def __init__(
        self,
        envs: Sequence[EnvSpec],
        *,
        workers: int = 2,
        config: SandboxConfig | None = None,
        isolation: Isolation | None = None,
        batch_size: int = 64,
    ) -> None:
        self.envs = {spec.env_id: spec for spec in envs}
        self.config = config or SandboxConfig()
        self.isolation = isolation or probe(self.config.unsafe_no_sandbox)
        self.batch_size = batch_size
        self._sandboxes: dict[str, Sandbox] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="resyn-render")

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            sandboxes, self._sandboxes = list(self._sandboxes.values()), {}
        for sandbox in sandboxes:
            sandbox.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def load(self, env_ids: Sequence[str]) -> list[LoadResult]:
        """Import each module in its worker (in parallel, from the renderer's own threads) and
        report what it defines; a module that fails to load says why."""
        futures = [self._pool.submit(self._load, env_id) for env_id in env_ids]
        return [future.result() for future in futures]

    def _load(self, env_id: str) -> LoadResult:
        return self._sandbox(env_id).load()

    def render(self, draws: Sequence[Draw]) -> list[Rendered]:
        """Render every draw; results are in the order of ``draws``. Never raises for anything
        the environment code does: a failed item carries its error."""
        by_env: dict[str, list[int]] = defaultdict(list)
        for position, draw in enumerate(draws):
            by_env[draw.env_id].append(position)
        results: list[Rendered | None] = [None] * len(draws)
        futures = [
            self._pool.submit(self._render_env, env_id, [draws[i] for i in positions])
            for env_id, positions in by_env.items()
        ]
        for future, positions in zip(futures, by_env.values(), strict=True):
            for position, rendered in zip(positions, future.result(), strict=True):
                results[position] = rendered
        return [r for r in results if r is not None]

    def _sandbox(self, env_id: str) -> Sandbox:
        with self._lock:
            sandbox = self._sandboxes.get(env_id)
            if sandbox is None:
                spec = self.envs[env_id]
                sandbox = Sandbox(
                    spec.code, filename=spec.filename, config=self.config, isolation=self.isolation
                )
                self._sandboxes[env_id] = sandbox
            return sandbox

    def _render_env(self, env_id: str, draws: list[Draw]) -> list[Rendered]:
        if env_id not in self.envs:
            return [Rendered(d, error=f"unknown environment {env_id}") for d in draws]
        sandbox = self._sandbox(env_id)
        loaded = sandbox.load()
        if not loaded.ok:
            return [Rendered(d, error=f"load: {loaded.error}") for d in draws]
        results = sandbox.sample([(d.seed, d.difficulty) for d in draws], batch_size=self.batch_size)
        out: list[Rendered] = []
        for draw, result in zip(draws, results, strict=True):
            if not result.ok:
                out.append(Rendered(draw, error=result.error))
                continue
            value = result.value
            out.append(
                Rendered(
                    draw,
                    question=value["question"],
                    instance_json=json.dumps(value["instance"], separators=(",", ":"), ensure_ascii=False),
                    solution=value.get("solution"),
                )
            )
        return out
