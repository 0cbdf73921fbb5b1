"""Solver calibration: how often a solver model passes an environment, level by level.

The checks prove a verifier sound; they cannot say whether the task is worth training on. A task
the policy always solves gives no gradient, and one it never solves gives none either (RLVR's
advantage is zero when every sample of a group scores the same). So for each environment we sample
``k`` instances per level from held-out seeds, ask the solver ``n`` times each, verify the answers
in the sandbox, and store pass rates and learnability ``4 p (1 - p)`` per level with every raw
attempt.

The status that follows (``resyn.catalog.records.EnvStatus``):

* ``unproven``: no attempt passed and nothing shows the task solvable (no gold answer), or the
  solver never produced an answer in the expected format, or every call failed. An environment
  without ``solution()`` is accepted only once some attempt verified: the generator–verifier gap
  makes such environments the valuable ones, but only once something shows they can be solved;
* ``too_hard``: no attempt passed at any level, though gold answers verify;
* ``too_easy``: pass rate ≥ ``too_easy_pass_rate`` at every level;
* ``accepted``: anything in between.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from resyn.catalog import Catalog
from resyn.catalog.records import CalibrationLevel, CalibrationRecord, EnvStatus, SolverAttempt
from resyn.grading import extract_answer
from resyn.llm import LLMError, Model
from resyn.sandbox import Sandbox, SandboxConfig
from resyn.synth import prompts

T = TypeVar("T")

#: Calibration instances come from seeds the check suite never uses, so a solver is not measured on
#: the instances the judge saw.
HELD_OUT_SEED = 1_000_000
NO_ANSWER = "no answer in the expected format"


class CalibrationSettings(BaseModel):
    """How environments are calibrated (``--solver-model`` and friends)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    solver_model: str
    """The solver, ``provider/model`` (e.g. the policy you are about to train)."""
    solver_base_url: str | None = None
    instances_per_level: int = Field(2, ge=1, le=1000)
    """``k``: instances sampled per difficulty level."""
    attempts_per_instance: int = Field(4, ge=1, le=100)
    """``n``: solver answers per instance (sampled, so pass rates are estimated, not one-shot)."""
    max_tokens: int = Field(4096, ge=16)
    temperature: float | None = Field(None, ge=0, le=2)
    too_easy_pass_rate: float = Field(0.95, gt=0, le=1)


def classify(
    levels: list[CalibrationLevel], *, has_solution: bool, answered: bool, too_easy: float
) -> EnvStatus:
    """The status the pass rates imply (see the module docstring)."""
    rates = [level.pass_rate for level in levels if level.pass_rate is not None]
    if not rates or not answered:
        return "unproven"
    if all(rate == 0 for rate in rates):
        return "too_hard" if has_solution else "unproven"
    if all(rate >= too_easy for rate in rates):
        return "too_easy"
    return "accepted"


class PoolRunner(Protocol):
    """Runs blocking work (sandbox calls) off the event loop and awaits its result."""

    def __call__(self, fn: Callable[[], T]) -> Awaitable[T]: ...


def learnability(pass_rate: float | None) -> float | None:
    return None if pass_rate is None else 4 * pass_rate * (1 - pass_rate)


async def calibrate(
    *,
    env_id: str,
    code: str,
    max_difficulty: int,
    has_solution: bool,
    solver: Model,
    settings: CalibrationSettings,
    sandbox_config: SandboxConfig,
    run_id: str | None,
    in_pool: PoolRunner,
    tags: dict[str, str] | None = None,
) -> tuple[CalibrationRecord, list[SolverAttempt]]:
    """Calibrate one environment. ``in_pool`` runs blocking sandbox work off the event loop.
    Provider faults of single calls become failed attempts; faults that would fail every call
    (a bad key, a replay miss) propagate so the caller can stop."""
    calibration_id = uuid.uuid4().hex
    keys = [
        (HELD_OUT_SEED + index, level)
        for level in range(1, max_difficulty + 1)
        for index in range(settings.instances_per_level)
    ]
    drawn = await in_pool(lambda: _sample(code, keys, sandbox_config))
    tags = (tags or {}) | {"env_id": env_id, "calibration_id": calibration_id}
    if run_id:
        tags["run_id"] = run_id

    async def attempt(seed: int, level: int, question: str) -> tuple[str | None, str | None, str]:
        call_id = uuid.uuid4().hex
        request = prompts.request(
            "solve",
            {"question": question},
            max_tokens=settings.max_tokens,
            purpose="solver",
            tags=tags | {"call_id": call_id, "seed": str(seed), "difficulty": str(level)},
            temperature=settings.temperature,
        )
        try:
            response = await solver.generate(request)
        except LLMError as exc:
            if _is_fatal(exc):
                raise
            return None, f"{type(exc).__name__}: {exc}", call_id
        answer = extract_answer(response.text)
        return answer, None if answer is not None else NO_ANSWER, call_id

    jobs: list[tuple[int, int, int]] = []  # (index into drawn, seed, level)
    coroutines = []
    for index, ((seed, level), sample) in enumerate(zip(keys, drawn, strict=True)):
        if sample is None:
            continue
        for _ in range(settings.attempts_per_instance):
            jobs.append((index, seed, level))
            coroutines.append(attempt(seed, level, sample["question"]))
    outcomes = await asyncio.gather(*coroutines)

    instances = [sample["instance"] if sample else {} for sample in drawn]
    to_verify = [
        (i, (jobs[i][0], answer)) for i, (answer, _e, _c) in enumerate(outcomes) if answer is not None
    ]
    scores: dict[int, float | None] = {}
    if to_verify:
        results = await in_pool(
            lambda: _verify(code, instances, [item for _, item in to_verify], sandbox_config)
        )
        scores = dict(zip([i for i, _ in to_verify], results, strict=True))

    attempts: list[SolverAttempt] = []
    per_level: dict[int, list[SolverAttempt]] = defaultdict(list)
    failed_calls: dict[int, int] = defaultdict(int)
    for i, ((_index, seed, level), (answer, error, call_id)) in enumerate(zip(jobs, outcomes, strict=True)):
        score = scores.get(i)
        if answer is not None and score is None:
            error = "verify failed in the sandbox (crash or timeout): scored 0"
        if answer is None and error != NO_ANSWER:
            failed_calls[level] += 1  # the call itself failed: not an attempt of the solver
        record = SolverAttempt(
            attempt_id=uuid.uuid4().hex,
            calibration_id=calibration_id,
            env_id=env_id,
            seed=seed,
            difficulty=level,
            call_id=call_id,
            answer=answer,
            score=score if score is not None else (0.0 if answer is not None else None),
            error=error,
        )
        attempts.append(record)
        if answer is not None or error == NO_ANSWER:  # an answer without the format scores 0
            per_level[level].append(record)

    levels = []
    for level in range(1, max_difficulty + 1):
        made = per_level[level]
        correct = sum(1 for a in made if (a.score or 0.0) >= 1.0 - 1e-9)
        rate = correct / len(made) if made else None
        levels.append(
            CalibrationLevel(
                difficulty=level,
                attempts=len(made),
                correct=correct,
                failed_calls=failed_calls[level],
                pass_rate=rate,
                learnability=learnability(rate),
            )
        )
    answered = any(a.answer is not None for a in attempts)
    status = classify(
        levels, has_solution=has_solution, answered=answered, too_easy=settings.too_easy_pass_rate
    )
    known = [level.learnability for level in levels if level.learnability is not None]
    calibration = CalibrationRecord(
        calibration_id=calibration_id,
        env_id=env_id,
        run_id=run_id,
        solver_model=solver.spec,
        instances_per_level=settings.instances_per_level,
        attempts_per_instance=settings.attempts_per_instance,
        status=status,
        levels=levels,
        learnability=sum(known) / len(known) if known else 0.0,
        any_verified=any((a.score or 0.0) >= 1.0 - 1e-9 for a in attempts),
    )
    return calibration, attempts


def _is_fatal(exc: LLMError) -> bool:
    from resyn.llm import ProviderError, ReplayMissError

    return isinstance(exc, ReplayMissError) or (
        isinstance(exc, ProviderError) and not exc.transient and exc.status_code in (401, 403, 404)
    )


def _sample(code: str, keys: list[tuple[int, int]], config: SandboxConfig) -> list[dict[str, Any] | None]:
    with Sandbox(code, filename="calibrated.py", config=config) as sandbox:
        if not sandbox.load().ok:
            return [None] * len(keys)
        results = sandbox.sample(keys)
    return [r.value if r.ok and isinstance(r.value, dict) else None for r in results]


def _verify(
    code: str, instances: list[dict[str, Any]], items: list[tuple[int, str]], config: SandboxConfig
) -> list[float | None]:
    with Sandbox(code, filename="calibrated.py", config=config) as sandbox:
        if not sandbox.load().ok:
            return [None] * len(items)
        results = sandbox.verify(instances, items)
    return [
        float(r.value)
        if r.ok and isinstance(r.value, int | float) and not isinstance(r.value, bool)
        else None
        for r in results
    ]


def calibrate_environments(
    catalog: Catalog,
    env_ids: list[str],
    settings: CalibrationSettings,
    *,
    sandbox_config: SandboxConfig,
    concurrency: int = 8,
    log: Callable[[str], None] = lambda line: None,
    solver: Model | None = None,
) -> list[CalibrationRecord]:
    """Calibrate catalog environments again (``resyn calibrate``), e.g. against a newer policy. Each
    calibration and the environment's new status are stored in one transaction as it finishes."""
    from concurrent.futures import ThreadPoolExecutor

    from resyn.llm import LLMSettings, get_model
    from resyn.sandbox import probe

    probe(sandbox_config.unsafe_no_sandbox)
    environments = [catalog.environment(env_id) for env_id in env_ids]  # unknown ids fail before any call
    solver = solver or get_model(
        settings.solver_model,
        base_url=settings.solver_base_url,
        settings=LLMSettings(max_concurrency=concurrency),
        recorder=catalog,
    )
    solver.check_ready()
    pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="resyn-calibrate")

    async def in_pool(fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    async def run_all() -> list[CalibrationRecord]:
        done = []
        try:
            for env in environments:
                record, attempts = await calibrate(
                    env_id=env.env_id,
                    code=env.code,
                    max_difficulty=env.max_difficulty,
                    has_solution=env.has_solution,
                    solver=solver,
                    settings=settings,
                    sandbox_config=sandbox_config,
                    run_id=None,
                    in_pool=in_pool,
                )
                catalog.add_calibration(record, attempts)
                log(f"{env.env_id}: {record.status} (learnability {record.learnability:.2f})")
                done.append(record)
        finally:
            await solver.aclose()
        return done

    try:
        return asyncio.run(run_all())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
