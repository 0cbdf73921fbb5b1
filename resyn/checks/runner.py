"""Run the whole check suite on one module: static checks, then the sandboxed dynamic checks.

Order matters only for cost: a module that does not parse or load stops early; everything else
runs so the writing LLM gets all its failures at once.
"""

from __future__ import annotations

import hashlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from resyn.checks import generator, static, verifier
from resyn.checks.config import CheckConfig
from resyn.checks.report import CheckReport, CheckResult, Evidence, clip
from resyn.checks.sampling import Sample, draw
from resyn.env import NAME_PATTERN
from resyn.sandbox import LoadResult, Sandbox, SandboxConfig, probe

#: Every check the suite reports, in report order.
CHECK_NAMES = (
    "syntax", "structure", "imports", "global_random", "load", "smoke", "reliability", "determinism",
    "json_roundtrip", "diversity", "difficulty", "gold", "hygiene", "junk", "cross_answers",
    "constant_answer", "shotgun", "mutations", "numeric_perturbation", "long_answers", "leak", "timing",
)  # fmt: skip


def run_checks(
    source: str,
    *,
    filename: str = "environment.py",
    label: str | None = None,
    config: CheckConfig | None = None,
    sandbox_config: SandboxConfig | None = None,
    static_checks: bool = True,
) -> CheckReport:
    """Check one environment module and return the full report (never raises for module faults).

    ``static_checks=False`` is for trusted adapter sources (e.g. reasoning-gym tasks), whose
    imports are ours and legitimately outside the environment allow-list.
    """
    config = config or CheckConfig()
    sandbox_config = sandbox_config or SandboxConfig()
    isolation = probe(sandbox_config.unsafe_no_sandbox)  # raises SandboxUnavailable: a usage error
    started = time.perf_counter()
    results: dict[str, CheckResult] = {}
    if static_checks:
        for result in static.run_static(source, filename, config):
            results[result.name] = result
    load: LoadResult | None = None
    shown: list[dict[str, Any]] = []
    if results.get("syntax") is None or results["syntax"].status == "pass":
        load = _dynamic(source, filename, config, sandbox_config, results, shown)
    for check_name in CHECK_NAMES:
        if check_name not in results and (
            static_checks or check_name not in ("syntax", "structure", "imports", "global_random")
        ):
            results[check_name] = CheckResult(name=check_name, status="skip", summary=_skip_reason(results))
    checks = [results[c] for c in CHECK_NAMES if c in results]
    accepted = all(c.status != "fail" for c in checks) and load is not None and load.ok
    name = load.name if load and isinstance(load.name, str) else None
    levels = load.max_difficulty if load and type(load.max_difficulty) is int else None
    return CheckReport(
        label=label or filename,
        code_sha256=hashlib.sha256(source.encode()).hexdigest(),
        env_name=name,
        description=(load.doc.strip() or None) if load and load.ok else None,
        max_difficulty=levels,
        has_solution=load.has_solution if load and load.ok else None,
        isolation=isolation.describe(),
        accepted=accepted,
        seconds=round(time.perf_counter() - started, 3),
        checks=checks,
        samples=shown,
    )


def _skip_reason(results: dict[str, CheckResult]) -> str:
    for gate in ("syntax", "load", "smoke"):
        if gate in results and results[gate].status == "fail":
            return f"not run: {gate} failed"
    return "not run"


def _dynamic(
    source: str,
    filename: str,
    config: CheckConfig,
    sandbox_config: SandboxConfig,
    results: dict[str, CheckResult],
    shown: list[dict[str, Any]],
) -> LoadResult | None:
    hash_seed = random.SystemRandom().randrange(1, 2**31)
    with Sandbox(source, filename=filename, config=sandbox_config, hash_seed=hash_seed) as sandbox:
        load = sandbox.load()
        results["load"] = _load_check(load, config)
        if results["load"].status == "fail":
            return load
        assert type(load.max_difficulty) is int
        levels = list(range(1, load.max_difficulty + 1))

        # Smoke: the very first instance. Only it gates the rest; failures at other seeds and
        # levels are the sweep's (reliability) business, reported with all the other findings.
        smoke = draw(sandbox, [(0, levels[0])])
        results["smoke"] = _smoke_check(smoke)
        if results["smoke"].status == "fail":
            roundtrip = generator.json_roundtrip(smoke, {}, config)
            if roundtrip.status == "fail":  # a first instance that is not JSON is that check's finding too
                results["json_roundtrip"] = roundtrip
            return load

        # The second fresh worker (another PYTHONHASHSEED) starts in parallel with the main sweep.
        subset = [(seed, level) for level in levels for seed in range(config.determinism_seeds_per_level)]
        other_seed = hash_seed + 1 + random.SystemRandom().randrange(2**30)
        with ThreadPoolExecutor(1) as pool:
            # A future, not a bare thread: an error in the second sandbox surfaces here instead of
            # vanishing and silently leaving the cross-process comparison empty.
            pending = pool.submit(_draw_fresh, source, filename, sandbox_config, other_seed, subset)
            samples, cut_short = _sweep(sandbox, levels, config)
            # State kept between calls shows on any instance: one per level is enough here.
            again = draw(sandbox, [(0, level) for level in levels])
            fresh = pending.result()
        shown.extend(_shown_samples(samples, levels))
        by_key = {(s.seed, s.difficulty): s for s in samples}
        fresh = [f for f in fresh if (f.seed, f.difficulty) in by_key]
        again = [a for a in again if (a.seed, a.difficulty) in by_key]
        determinism = generator.determinism(
            [by_key[(f.seed, f.difficulty)] for f in fresh], fresh,
            [by_key[(a.seed, a.difficulty)] for a in again], again,
        )  # fmt: skip

        results["reliability"] = generator.reliability(samples)
        results["determinism"] = determinism
        results["diversity"] = generator.diversity(samples, config)
        results["difficulty"] = generator.difficulty(samples, load.max_difficulty, config)

        gold_outcomes = verifier.run_gold(sandbox, samples)
        gold_scores = {o.probe.sample: o.score for o in gold_outcomes if o.score is not None}
        results["json_roundtrip"] = generator.json_roundtrip(samples, gold_scores, config)
        accepted_gold = {i for i, score in gold_scores.items() if score >= 1.0 - 1e-9}
        probe_indices = [
            i for i, s in enumerate(samples) if s.seed < config.probe_instances_per_level and s.ok
        ]
        rng = random.Random(0)
        probe_outcomes = verifier.run_probes(sandbox, samples, probe_indices, accepted_gold, config, rng)
        outcomes = gold_outcomes + probe_outcomes
        for result in verifier.evaluate(samples, outcomes, config):
            results[result.name] = result
        results["leak"] = verifier.leak([samples[i] for i in probe_indices], config)
        results["timing"] = _timing(samples, outcomes, config, cut_short)
        return load


#: Seeds per level (lowest and highest) whose questions and golds the report keeps for the judge.
SHOWN_SEEDS = 2


def _shown_samples(samples: list[Sample], levels: list[int]) -> list[dict[str, Any]]:
    ends = {levels[0], levels[-1]}
    return [
        {
            "difficulty": s.difficulty,
            "seed": s.seed,
            "question": clip(s.question, 3000),
            "gold": clip(s.gold, 1000) if s.gold is not None else None,
        }
        for s in sorted(samples, key=lambda s: (s.difficulty, s.seed))
        if s.ok and s.seed < SHOWN_SEEDS and s.difficulty in ends
    ]


def _sweep(sandbox: Sandbox, levels: list[int], config: CheckConfig) -> tuple[list[Sample], str | None]:
    """Draw ``seeds_per_level`` instances per level, within a time budget.

    A pilot of a few seeds per level comes first; if it already shows generation is too slow,
    the sweep stops there (timing fails on the pilot's evidence) instead of spending minutes on
    a module that is rejected anyway. Otherwise the rest is drawn level by level until done or
    until the budget is spent.
    """
    pilot = min(config.pilot_seeds_per_level, config.seeds_per_level)
    samples = draw(sandbox, [(seed, level) for level in levels for seed in range(pilot)])
    if _p95([s.t_generate for s in samples if s.ok]) > config.max_generate_p95_s:
        return (
            samples,
            f"generation is too slow: the sweep stopped after the pilot of {pilot} seeds per level",
        )
    began = time.perf_counter()
    for position, level in enumerate(levels):
        samples += draw(sandbox, [(seed, level) for seed in range(pilot, config.seeds_per_level)])
        spent = time.perf_counter() - began
        if spent > config.sweep_budget_s and position + 1 < len(levels):
            return samples, (
                f"the sweep stopped after {spent:.0f} s (budget {config.sweep_budget_s:g} s) at level {level}"
            )
    return samples, None


def _draw_fresh(
    source: str, filename: str, sandbox_config: SandboxConfig, hash_seed: int, keys: list[tuple[int, int]]
) -> list[Sample]:
    with Sandbox(source, filename=filename, config=sandbox_config, hash_seed=hash_seed) as sandbox:
        return draw(sandbox, keys)


def _load_check(load: LoadResult, config: CheckConfig) -> CheckResult:
    if not load.ok:
        evidence = Evidence(detail=load.error or "import failed", traceback=load.traceback, line=load.line)
        return CheckResult(
            name="load", status="fail", summary=f"the module does not load: {load.error}", evidence=[evidence]
        )
    problems = []
    if not (isinstance(load.name, str) and NAME_PATTERN.match(load.name)):
        problems.append(f"name is {load.name!r}; it must be a string matching [a-z][a-z0-9_]*")
    if type(load.max_difficulty) is not int or not 1 <= load.max_difficulty <= config.max_levels:
        problems.append(
            f"max_difficulty is {load.max_difficulty!r}; it must be an int from 1 to {config.max_levels}"
        )
    if problems:
        return CheckResult(
            name="load", status="fail", summary=problems[0], evidence=[Evidence(detail=p) for p in problems]
        )
    return CheckResult(
        name="load",
        status="pass",
        summary=f"{load.class_name} ({load.name}) with {load.max_difficulty} level(s)",
    )


def _smoke_check(smoke: list[Sample]) -> CheckResult:
    broken = [s for s in smoke if not s.ok]
    if broken:
        return CheckResult(
            name="smoke",
            status="fail",
            summary=f"the first instance fails: {broken[0].result.error}",
            evidence=[s.failure_evidence() for s in broken],
        )
    empty = [s for s in smoke if not s.question.strip()]
    if empty:
        return CheckResult(
            name="smoke",
            status="fail",
            summary="question() returned an empty string",
            evidence=[empty[0].evidence("empty question")],
        )
    return CheckResult(name="smoke", status="pass", summary="the first instance generates and renders")


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _timing(
    samples: list[Sample], outcomes: list[verifier.Outcome], config: CheckConfig, cut_short: str | None
) -> CheckResult:
    generate_p95 = _p95([s.t_generate for s in samples if s.ok])
    verify_p95 = _p95(
        [o.result.seconds for o in outcomes if o.result.ok and o.probe.family != "long_answers"]
    )
    metrics = {"generate_p95_ms": round(generate_p95 * 1000, 3), "verify_p95_ms": round(verify_p95 * 1000, 3)}
    problems = []
    if generate_p95 > config.max_generate_p95_s:
        slow = max((s for s in samples if s.ok), key=lambda s: s.t_generate)
        problems.append(
            Evidence(
                detail=f"generate() p95 is {generate_p95:.2f} s (allowed ≤ "
                f"{config.max_generate_p95_s:g} s); slowest {slow.t_generate:.2f} s",
                seed=slow.seed,
                difficulty=slow.difficulty,
            )
        )
    if verify_p95 > config.max_verify_p95_s:
        problems.append(
            Evidence(
                detail=f"verify() p95 is {verify_p95 * 1000:.0f} ms (allowed ≤ "
                f"{config.max_verify_p95_s * 1000:.0f} ms)"
            )
        )
    note = f"; {cut_short}" if cut_short else ""
    if problems:
        return CheckResult(
            name="timing",
            status="fail",
            summary=problems[0].detail + note,
            metrics=metrics,
            evidence=problems,
        )
    return CheckResult(
        name="timing",
        status="warn" if cut_short else "pass",
        metrics=metrics,
        summary=f"p95 generate {generate_p95 * 1000:.1f} ms, verify {verify_p95 * 1000:.2f} ms{note}",
    )
