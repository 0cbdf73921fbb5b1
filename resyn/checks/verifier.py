"""Checks of the verifier: it accepts the gold, behaves (a float in [0, 1], no exceptions, no
mutation), and gives no reward to cheap or wrong answers — judged statistically, so that a
correct verifier of a task with many valid answers is not rejected for accepting a valid one."""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from resyn.checks import probes
from resyn.checks.config import CheckConfig
from resyn.checks.report import CheckResult, Evidence, clip
from resyn.checks.sampling import Sample
from resyn.sandbox import ItemResult, Sandbox

GOLD_FAMILIES = ("cross_answers", "constant_answer", "shotgun", "mutations", "numeric_perturbation")
CHECK_ORDER = ("gold", "hygiene", "junk", *GOLD_FAMILIES, "long_answers")


@dataclass(frozen=True, slots=True)
class Probe:
    family: str
    kind: str
    sample: int  # index into the samples list
    answer: str


@dataclass(frozen=True, slots=True)
class Outcome:
    probe: Probe
    result: ItemResult
    score: float | None  # None when verify failed or returned something that is not a number
    problem: str | None  # why the result is unusable, for hygiene
    mutated: bool


def _outcome(probe: Probe, result: ItemResult) -> Outcome:
    if not result.ok:
        return Outcome(probe, result, None, result.error, False)
    value: Any = result.value
    mutated = False
    if isinstance(value, dict) and "mutated" in value:
        mutated, value = bool(value["mutated"]), value.get("score")
    if isinstance(value, dict):
        kind = value.get("type", "?")
        hint = " (return float(...), not a bool)" if kind == "bool" else ""
        return Outcome(
            probe,
            result,
            None,
            f"verify returned {clip(str(value.get('invalid_score')), 80)} of type {kind}, not a float{hint}",
            mutated,
        )
    if not isinstance(value, int | float):
        return Outcome(probe, result, None, f"verify returned {type(value).__name__}", mutated)
    if not 0.0 <= value <= 1.0:
        return Outcome(probe, result, None, f"verify returned {value:g}, outside [0, 1]", mutated)
    return Outcome(probe, result, float(value), None, mutated)


def run_gold(sandbox: Sandbox, samples: list[Sample]) -> list[Outcome]:
    plan = [Probe("gold", "gold", i, s.gold) for i, s in enumerate(samples) if s.ok and s.gold is not None]
    return _run(sandbox, samples, plan, check_mutation=True)


def run_probes(
    sandbox: Sandbox, samples: list[Sample], probe_indices: list[int], accepted_gold: set[int],
    config: CheckConfig, rng: random.Random,
) -> list[Outcome]:  # fmt: skip
    """Build and run every negative probe. Gold-derived probes use only instances whose gold the
    verifier accepts: perturbing a gold it rejects would prove nothing."""
    plan: list[Probe] = []
    by_level: dict[int, list[int]] = defaultdict(list)
    for index in probe_indices:
        by_level[samples[index].difficulty].append(index)
    for level_indices in by_level.values():
        with_gold = [i for i in level_indices if i in accepted_gold]
        golds = [samples[i].gold or "" for i in with_gold]
        mode = Counter(g.strip() for g in golds).most_common(1)[0][0] if golds else None
        for index in level_indices:
            for junk in probes.JUNK_ANSWERS:
                plan.append(Probe("junk", junk, index, junk))
            if index not in accepted_gold:
                continue
            gold = samples[index].gold or ""
            others = [g for g in golds if g.strip() != gold.strip()]
            rng.shuffle(others)
            for other in others[:3]:
                plan.append(Probe("cross_answers", "other_gold", index, other))
            if mode is not None and mode != gold.strip():
                plan.append(Probe("constant_answer", f"level_{samples[index].difficulty}", index, mode))
            elif mode is not None:
                plan.append(Probe("constant_answer_self", f"level_{samples[index].difficulty}", index, mode))
            plan += [Probe("shotgun", k, index, a) for k, a in probes.shotgun(gold, others, rng)]
            plan += [Probe("mutations", k, index, a) for k, a in probes.mutations(gold, rng)]
            plan += [
                Probe("numeric_perturbation", k, index, a) for k, a in probes.numeric_perturbations(gold)
            ]
    outcomes = _run(sandbox, samples, plan, check_mutation=True)
    # Very long answers go last and alone, with their own deadline, on a few instances.
    # The same three strings serve every instance: building them is the costly part (GIL-bound).
    long = probes.long_answers(config.long_answer_chars, rng)
    long_plan = [
        Probe("long_answers", kind, index, answer)
        for index in probe_indices[:: max(1, len(probe_indices) // 4)][:4]
        for kind, answer in long
    ]
    outcomes += _run(
        sandbox,
        samples,
        long_plan,
        check_mutation=False,
        batch_size=4,
        timeout_s=config.long_answer_timeout_s,
    )
    return outcomes


def _run(
    sandbox: Sandbox, samples: list[Sample], plan: list[Probe], *, check_mutation: bool,
    batch_size: int = 256, timeout_s: float | None = None,
) -> list[Outcome]:  # fmt: skip
    if not plan:
        return []
    instances = [s.instance for s in samples]
    results = sandbox.verify(
        instances,
        [(p.sample, p.answer) for p in plan],
        check_mutation=check_mutation,
        batch_size=batch_size,
        timeout_s=timeout_s,
    )
    return [_outcome(p, r) for p, r in zip(plan, results, strict=True)]


def _evidence(samples: list[Sample], outcome: Outcome, detail: str) -> Evidence:
    sample = samples[outcome.probe.sample]
    return sample.evidence(
        detail,
        answer=clip(outcome.probe.answer, 300),
        score=outcome.score,
        traceback=outcome.result.traceback,
        line=outcome.result.line,
    )


def _accepted(outcome: Outcome, config: CheckConfig) -> bool:
    return outcome.score is not None and outcome.score >= config.accept_score


def evaluate(samples: list[Sample], outcomes: list[Outcome], config: CheckConfig) -> list[CheckResult]:
    family: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        family[outcome.probe.family].append(outcome)
    results = [
        _gold(samples, family["gold"]),
        _hygiene(samples, outcomes),
        _constant(samples, family["junk"], config, "junk", "a junk answer"),
        _rate(
            samples,
            family["cross_answers"],
            config.max_cross_acceptance,
            config,
            "cross_answers",
            "another instance's gold answer",
        ),
        _constant(
            samples,
            family["constant_answer"] + family["constant_answer_self"],
            config,
            "constant_answer",
            "the most common gold answer at a level, submitted for every instance",
        ),
        _rate(
            samples,
            family["shotgun"],
            config.max_shotgun_acceptance,
            config,
            "shotgun",
            "an answer listing the gold among other candidates",
        ),
        _mutations(samples, family["mutations"], config),
        _per_kind(
            samples,
            family["numeric_perturbation"],
            config.max_numeric_acceptance,
            config,
            "numeric_perturbation",
            "a numerically perturbed gold",
        ),
        _long(samples, family["long_answers"], config),
    ]
    return results


def _skip(name: str, why: str) -> CheckResult:
    return CheckResult(name=name, status="skip", summary=why)


def _gold(samples: list[Sample], outcomes: list[Outcome]) -> CheckResult:
    if not outcomes:
        why = (
            "solution() returns None: gold-based probes are skipped; a solver must show the task is solvable"
        )
        return CheckResult(name="gold", status="warn", summary=why)
    missed = [o for o in outcomes if o.score is None or o.score < 1.0 - 1e-9]
    metrics = {"golds": float(len(outcomes)), "rejected": float(len(missed))}
    if missed:
        evidence = [
            _evidence(
                samples,
                o,
                f"the gold answer from solution() scored {o.score if o.score is not None else o.problem}",
            )
            for o in missed[:3]
        ]
        return CheckResult(
            name="gold",
            status="fail",
            metrics=metrics,
            evidence=evidence,
            summary=f"verify() rejects {len(missed)} of {len(outcomes)} gold answers from solution()",
        )
    return CheckResult(
        name="gold",
        status="pass",
        metrics=metrics,
        summary=f"verify() scores every one of {len(outcomes)} gold answers 1.0",
    )


def _hygiene(samples: list[Sample], outcomes: list[Outcome]) -> CheckResult:
    bad = [o for o in outcomes if (o.problem is not None and not _long_timeout(o)) or o.mutated]
    metrics = {"calls": float(len(outcomes)), "problems": float(len(bad))}
    if not bad:
        return CheckResult(
            name="hygiene",
            status="pass",
            metrics=metrics,
            summary=f"{len(outcomes)} verify calls returned floats in [0, 1] without raising",
        )
    evidence: list[Evidence] = []
    seen: set[str] = set()
    for outcome in bad:
        detail = "verify() modified the instance it was given" if outcome.mutated else (outcome.problem or "")
        key = detail[:50]
        if key in seen:
            continue
        seen.add(key)
        if detail.startswith("exception"):
            detail = "verify() raised on a malformed answer (it must return 0.0 instead): " + detail
        evidence.append(_evidence(samples, outcome, detail))
    return CheckResult(
        name="hygiene",
        status="fail",
        metrics=metrics,
        evidence=evidence[:3],
        summary=f"{len(bad)} of {len(outcomes)} verify calls misbehaved: {evidence[0].detail[:160]}",
    )


def _long_timeout(outcome: Outcome) -> bool:
    return outcome.probe.family == "long_answers" and outcome.result.kind == "timeout"


def _constant(
    samples: list[Sample], outcomes: list[Outcome], config: CheckConfig, name: str, what: str
) -> CheckResult:
    """Mean score of each constant answer over instances (per level for the gold-mode probe)."""
    if not outcomes:
        return _skip(name, "no gold answers to probe with")
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.probe.kind].append(outcome)
    means = {kind: statistics.fmean(o.score or 0.0 for o in group) for kind, group in groups.items()}
    worst = max(means, key=lambda k: means[k])
    metrics = {"worst_mean_score": round(means[worst], 3), "constants": float(len(means))}
    if means[worst] > config.max_constant_score:
        group = groups[worst]
        example = next((o for o in group if _accepted(o, config)), group[0])
        return CheckResult(
            name=name,
            status="fail",
            metrics=metrics,
            summary=f"{what} ({clip(example.probe.answer, 40)!r}) earns a mean score of {means[worst]:.2f} "
            f"(allowed ≤ {config.max_constant_score}): the answer space is too small or verify() is too lenient",
            evidence=[
                _evidence(
                    samples,
                    example,
                    f"constant answer scored on {sum(_accepted(o, config) for o in group)}"
                    f" of {len(group)} instances",
                )
            ],
        )
    return CheckResult(
        name=name,
        status="pass",
        metrics=metrics,
        summary=f"no constant earns reward (worst mean {means[worst]:.2f})",
    )


def _rate(
    samples: list[Sample], outcomes: list[Outcome], limit: float, config: CheckConfig, name: str, what: str
) -> CheckResult:
    if not outcomes:
        return _skip(name, "no gold answers to probe with")
    accepted = [o for o in outcomes if _accepted(o, config)]
    rate = len(accepted) / len(outcomes)
    metrics = {"trials": float(len(outcomes)), "acceptance": round(rate, 3)}
    if rate > limit:
        kinds = Counter(o.probe.kind for o in accepted)
        return CheckResult(
            name=name,
            status="fail",
            metrics=metrics,
            summary=f"verify() accepts {what} in {rate:.0%} of {len(outcomes)} trials (allowed ≤ {limit:.0%}); "
            f"accepted kinds: {', '.join(f'{k} ×{n}' for k, n in kinds.most_common(4))}",
            evidence=[_evidence(samples, o, f"{o.probe.kind} accepted") for o in accepted[:3]],
        )
    return CheckResult(
        name=name,
        status="pass",
        metrics=metrics,
        summary=f"{what} accepted in {rate:.0%} of {len(outcomes)} trials",
    )


def _per_kind(
    samples: list[Sample], outcomes: list[Outcome], limit: float, config: CheckConfig, name: str, what: str
) -> CheckResult:
    if not outcomes:
        return _skip(
            name, "no numeric gold answers" if name == "numeric_perturbation" else "nothing to probe"
        )
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.probe.kind].append(outcome)
    metrics: dict[str, float] = {}
    failing: list[tuple[str, float, list[Outcome]]] = []
    for kind, group in sorted(groups.items()):
        rate = sum(_accepted(o, config) for o in group) / len(group)
        metrics[f"{kind}_acceptance"] = round(rate, 3)
        if len(group) >= min(config.min_kind_trials, len(outcomes)) and rate > limit:
            failing.append((kind, rate, group))
    if failing:
        kind, rate, group = max(failing, key=lambda f: f[1])
        return CheckResult(
            name=name,
            status="fail",
            metrics=metrics,
            summary=f"verify() accepts {what} ({kind}) in {rate:.0%} of {len(group)} trials (allowed ≤ {limit:.0%})",
            evidence=[
                _evidence(samples, o, f"{o.probe.kind} accepted") for o in group if _accepted(o, config)
            ][:3],
        )
    return CheckResult(name=name, status="pass", metrics=metrics, summary=f"{what} is rejected")


def _mutations(samples: list[Sample], outcomes: list[Outcome], config: CheckConfig) -> CheckResult:
    pooled = _rate(
        samples,
        outcomes,
        config.max_mutation_acceptance,
        config,
        "mutations",
        "a format-preserving mutation of the gold",
    )
    if pooled.status != "pass":
        return pooled
    per_kind = _per_kind(
        samples, outcomes, config.max_mutation_kind_acceptance, config, "mutations", "a mutation of the gold"
    )
    if per_kind.status == "fail":
        return per_kind.model_copy(
            update={"summary": per_kind.summary + ": it ignores that part of the answer"}
        )
    return pooled.model_copy(update={"metrics": {**pooled.metrics, **per_kind.metrics}})


def _long(samples: list[Sample], outcomes: list[Outcome], config: CheckConfig) -> CheckResult:
    if not outcomes:
        return _skip("long_answers", "no instances")
    timeouts = [o for o in outcomes if _long_timeout(o)]
    accepted = [o for o in outcomes if _accepted(o, config)]
    if timeouts or accepted:
        bad = timeouts or accepted
        detail = (
            f"verify() did not finish within {config.long_answer_timeout_s:g} s"
            if timeouts
            else "verify() accepted it"
        )
        return CheckResult(
            name="long_answers",
            status="fail",
            summary=f"a {config.long_answer_chars}-character answer ({bad[0].probe.kind}): {detail}",
            evidence=[_evidence(samples, o, f"{o.probe.kind}: {detail}") for o in bad[:2]],
        )
    slowest = max(o.result.seconds for o in outcomes)
    return CheckResult(
        name="long_answers",
        status="pass",
        metrics={"slowest_s": round(slowest, 4)},
        summary=f"very long answers scored 0 (slowest {slowest * 1000:.0f} ms)",
    )


_LABEL = r"(?:answer|solution|result|output)\W{0,20}"
_STRUCTURED = re.compile(r"[\s,;|]")


def leak(samples: list[Sample], config: CheckConfig) -> CheckResult:
    """Does the question give its own gold away, beyond what chance explains?"""
    with_gold = [s for s in samples if s.ok and s.gold and s.gold.strip()]
    if len(with_gold) < 4:
        return _skip("leak", "too few gold answers")
    by_level: dict[int, list[Sample]] = defaultdict(list)
    for sample in with_gold:
        by_level[sample.difficulty].append(sample)
    own = cross = labelled = cross_trials = 0
    examples: list[Sample] = []
    labelled_examples: list[Sample] = []
    for group in by_level.values():
        for position, sample in enumerate(group):
            gold = (sample.gold or "").strip()
            pattern = probes.whole_token_pattern(gold)
            if pattern is None:
                continue
            if pattern.search(sample.question):
                own += 1
                examples.append(sample)
                if re.search(
                    _LABEL + r"(?<![A-Za-z0-9_.])" + re.escape(gold), sample.question, re.IGNORECASE
                ):
                    labelled += 1
                    labelled_examples.append(sample)
            other = next(
                (o for o in group[position + 1 :] + group[:position] if (o.gold or "").strip() != gold), None
            )
            if other is not None:
                other_pattern = probes.whole_token_pattern(other.gold or "")
                cross_trials += 1
                cross += bool(other_pattern and other_pattern.search(sample.question))
    n = len(with_gold)
    own_rate, cross_rate = own / n, (cross / cross_trials if cross_trials else 0.0)
    labelled_rate = labelled / n
    metrics = {
        "own_gold_in_question": round(own_rate, 3),
        "other_gold_in_question": round(cross_rate, 3),
        "labelled": round(labelled_rate, 3),
    }
    if labelled_rate > config.max_labelled_leak:
        return CheckResult(
            name="leak",
            status="fail",
            metrics=metrics,
            summary=f"the question states its own answer after a word like 'answer' in "
            f"{labelled_rate:.0%} of instances",
            evidence=[s.evidence("gold answer appears in the question") for s in labelled_examples[:2]],
        )
    if own_rate - cross_rate >= config.leak_min_excess:
        # A single short token (a name, a colour, a number) in its own question is what selection
        # and retrieval tasks look like; a structured or long gold found verbatim is a leak.
        structured = sum(bool(_STRUCTURED.search((s.gold or "").strip())) for s in with_gold) * 2 > n
        long_golds = (
            statistics.median(len((s.gold or "").strip()) for s in with_gold) >= config.leak_min_gold_chars
        )
        status = "fail" if structured or long_golds else "warn"
        return CheckResult(
            name="leak",
            status=status,
            metrics=metrics,
            summary=f"the gold answer appears verbatim in its own question in {own_rate:.0%} of instances "
            f"(another instance's gold: {cross_rate:.0%})"
            + (
                ""
                if status == "fail"
                else "; single short answers, so only a warning (selection tasks quote their answer)"
            ),
            evidence=[s.evidence("gold answer appears in the question") for s in examples[:2]],
        )
    return CheckResult(
        name="leak",
        status="pass",
        metrics=metrics,
        summary=f"gold in its own question {own_rate:.0%} vs chance {cross_rate:.0%}",
    )
