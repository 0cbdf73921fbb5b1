"""Checks of the instance generator: reliability, determinism, JSON safety, diversity, and a
difficulty knob that changes something."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter, defaultdict
from typing import Any

from resyn.checks.config import CheckConfig
from resyn.checks.report import CheckResult, Evidence, clip
from resyn.checks.sampling import Sample

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _is_json_error(sample: Sample) -> bool:
    return (sample.result.error or "").startswith("invalid: instance is not JSON-serializable")


def reliability(samples: list[Sample]) -> CheckResult:
    failed = [s for s in samples if not s.ok and not _is_json_error(s)]
    metrics = {"instances": float(len(samples)), "failures": float(len(failed))}
    if failed:
        kinds = Counter((s.result.kind or "error") for s in failed)
        levels = sorted({s.difficulty for s in failed})
        summary = (
            f"{len(failed)} of {len(samples)} instances failed to generate/render/solve "
            f"({', '.join(f'{n} {k}' for k, n in kinds.most_common())}) at difficulty {levels}"
        )
        return CheckResult(
            name="reliability",
            status="fail",
            summary=summary,
            metrics=metrics,
            evidence=_spread([s.failure_evidence() for s in failed], failed),
        )
    return CheckResult(
        name="reliability", status="pass", summary=f"{len(samples)} instances without error", metrics=metrics
    )


def _spread(evidence: list[Evidence], samples: list[Sample], limit: int = 3) -> list[Evidence]:
    """Prefer evidence from different difficulty levels and error messages."""
    chosen: list[Evidence] = []
    seen: set[tuple[int, str]] = set()
    for ev, sample in zip(evidence, samples, strict=True):
        key = (sample.difficulty, (ev.detail or "")[:60])
        if key not in seen:
            seen.add(key)
            chosen.append(ev)
        if len(chosen) == limit:
            break
    return chosen or evidence[:limit]


def json_roundtrip(samples: list[Sample], gold_scores: dict[int, float], config: CheckConfig) -> CheckResult:
    """``gold_scores`` maps sample index → score of the gold on the round-tripped instance."""
    evidence: list[Evidence] = []
    unserializable = [s for s in samples if _is_json_error(s)]
    evidence += [s.failure_evidence() for s in unserializable[:2]]
    oversized = [s for s in samples if s.ok and len(json.dumps(s.instance)) > config.max_item_chars]
    evidence += [
        s.evidence(f"instance JSON is larger than {config.max_item_chars} characters") for s in oversized[:1]
    ]
    changed = 0
    for index, sample in enumerate(samples):
        if not sample.ok or sample.value.get("roundtrip_equal", True):
            continue
        if sample.value.get("question_roundtrip_differs"):
            changed += 1
            evidence.append(
                sample.evidence(
                    "question() renders differently after a JSON round trip of the instance "
                    f"(tuples become lists, int keys become strings): {clip(str(sample.value.get('question_roundtrip')), 200)!r}"
                )
            )
        original = sample.value.get("gold_score_original")
        after = gold_scores.get(index)
        if isinstance(original, int | float) and after is not None and abs(original - after) > 1e-9:
            changed += 1
            evidence.append(
                sample.evidence(
                    f"verify() scores the gold {original:g} on the generated instance but {after:g} on the same "
                    "instance after a JSON round trip (tuples become lists, int dict keys become strings)",
                    answer=sample.gold,
                )
            )
    metrics = {"not_serializable": float(len(unserializable)), "behaviour_changed": float(changed)}
    if evidence:
        summary = (
            f"{len(unserializable)} instance(s) are not JSON-serializable"
            if unserializable
            else evidence[0].detail.split(":")[0]
        )
        return CheckResult(
            name="json_roundtrip", status="fail", summary=summary, metrics=metrics, evidence=evidence[:3]
        )
    return CheckResult(
        name="json_roundtrip", status="pass", summary="instances survive a JSON round trip", metrics=metrics
    )


def determinism(
    first_fresh: list[Sample], fresh: list[Sample], first_again: list[Sample], again: list[Sample]
) -> CheckResult:
    """``fresh``: keys regenerated in worker B (another PYTHONHASHSEED); ``again``: keys generated
    once more in worker A (state kept between calls). ``first_*``: the sweep's samples of the
    same keys, in the same order."""
    evidence: list[Evidence] = []
    compared = 0
    comparisons = (
        ("a second fresh process with another PYTHONHASHSEED", first_fresh, fresh),
        ("the same process on a second call", first_again, again),
    )
    for label, firsts, others in comparisons:
        for a, b in zip(firsts, others, strict=True):
            if not (a.ok and b.ok):
                continue
            compared += 1
            ja, jb = _canonical(a), _canonical(b)
            if ja != jb or a.question != b.question:
                what = "instance" if ja != jb else "question"
                left, right = (ja, jb) if ja != jb else (a.question, b.question)
                evidence.append(
                    a.evidence(f"{what} differs in {label}: {clip(_first_difference(left, right), 300)}")
                )
                break
    metrics = {"compared": float(compared)}
    if evidence:
        return CheckResult(
            name="determinism",
            status="fail",
            summary="the same (seed, difficulty) gives different instances: draw all randomness from rng, "
            "and do not depend on set/dict order of strings, time, or state kept between calls",
            metrics=metrics,
            evidence=evidence,
        )
    if compared == 0:
        return CheckResult(name="determinism", status="skip", summary="no instances to compare")
    return CheckResult(
        name="determinism",
        status="pass",
        summary=f"{compared} regenerated instances identical",
        metrics=metrics,
    )


def _canonical(sample: Sample) -> str:
    return json.dumps(sample.instance, sort_keys=True)


def _first_difference(a: str, b: str) -> str:
    index = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, index - 40)
    return f"…{a[start : index + 60]}… vs …{b[start : index + 60]}…"


def diversity(samples: list[Sample], config: CheckConfig) -> CheckResult:
    by_level: dict[int, list[str]] = defaultdict(list)
    for sample in samples:
        if sample.ok:
            by_level[sample.difficulty].append(sample.question)
    metrics: dict[str, float] = {}
    evidence: list[Evidence] = []
    for level, questions in sorted(by_level.items()):
        ratio = len(set(questions)) / len(questions)
        metrics[f"distinct_ratio_level_{level}"] = round(ratio, 3)
        if ratio < config.min_distinct_ratio:
            text, count = Counter(questions).most_common(1)[0]
            evidence.append(
                Evidence(
                    detail=f"difficulty {level}: only {len(set(questions))} distinct questions among {len(questions)} "
                    f"seeds; the most common one appears {count} times",
                    difficulty=level,
                    question=clip(text),
                )
            )
    if evidence:
        return CheckResult(
            name="diversity",
            status="fail",
            summary=f"too few distinct questions (need ≥ {config.min_distinct_ratio:.0%} per level)",
            metrics=metrics,
            evidence=evidence[:3],
        )
    lowest = min(metrics.values()) if metrics else 0.0
    return CheckResult(
        name="diversity",
        status="pass",
        summary=f"≥ {lowest:.0%} distinct questions at every level",
        metrics=metrics,
    )


def _features(sample: Sample) -> dict[str, float]:
    text = json.dumps(sample.instance, sort_keys=True)
    numbers = [float(x) for x in _NUMBER.findall(text)[:10_000]]
    magnitude = statistics.fmean(math.log10(1 + abs(x)) for x in numbers) if numbers else 0.0
    return {
        "question_chars": float(len(sample.question)),
        "instance_chars": float(len(text)),
        "numbers_in_instance": float(len(numbers)),
        "number_magnitude": magnitude,
        "gold_chars": float(len(sample.gold or "")),
        "distinct_question_tokens": float(len(set(sample.question.split()))),
        # Same size, different content (more blanks in a puzzle grid, fewer givens):
        "question_digits": float(sum(c.isdigit() for c in sample.question)),
        "question_letters": float(sum(c.isalpha() for c in sample.question)),
        "question_symbols": float(sum(not c.isalnum() and not c.isspace() for c in sample.question)),
    }


def _numeric_fields(value: Any, path: str, out: dict[str, list[float]], budget: list[int]) -> None:
    """Numeric leaves of an instance by path (list positions folded into ``[]``), at most
    ``budget[0]`` of them: a level may change a stored parameter (a minimum number of moves,
    a search depth) without changing any size."""
    if budget[0] <= 0:
        return
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        budget[0] -= 1
        out.setdefault(path, []).append(float(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _numeric_fields(item, f"{path}.{key}", out, budget)
    elif isinstance(value, list):
        for item in value:
            _numeric_fields(item, f"{path}[]", out, budget)


def _per_sample(sample: Sample) -> dict[str, float]:
    """Every measured property of one instance: the fixed features and the mean of each numeric
    field, leaving out fields that merely echo the level (``{"difficulty": 3}`` must not count as
    the level changing anything)."""
    values = _features(sample)
    fields: dict[str, list[float]] = {}
    _numeric_fields(sample.instance, "instance", fields, [2000])
    for path, numbers in fields.items():
        if not all(v == sample.difficulty for v in numbers):
            values[f"field {path}"] = statistics.fmean(numbers)
    return values


def _effect(low: list[float], high: list[float]) -> tuple[float, float]:
    """Relative change of the mean, and the change in pooled standard deviations (noise-aware:
    a random field's mean wanders by several percent between two samples of 100)."""
    a, b = statistics.fmean(low), statistics.fmean(high)
    relative = abs(b - a) / max(abs(a), abs(b), 1e-9)
    spread = math.sqrt((statistics.pvariance(low) + statistics.pvariance(high)) / 2)
    standardized = abs(b - a) / spread if spread > 0 else (math.inf if a != b else 0.0)
    return relative, standardized


def difficulty(samples: list[Sample], max_difficulty: int, config: CheckConfig) -> CheckResult:
    if max_difficulty < 2:
        return CheckResult(
            name="difficulty",
            status="warn",
            summary="a single difficulty level: curricula and calibration cannot use this environment",
        )
    low = [_per_sample(s) for s in samples if s.ok and s.difficulty == 1]
    high = [_per_sample(s) for s in samples if s.ok and s.difficulty == max_difficulty]
    if not low or not high:
        return CheckResult(
            name="difficulty", status="skip", summary="no instances at the lowest or highest level"
        )
    metrics: dict[str, float] = {}
    best, best_effect = "", 0.0
    shared = set.intersection(*(set(f) for f in low + high))
    for key in sorted(shared):
        relative, standardized = _effect([f[key] for f in low], [f[key] for f in high])
        if not key.startswith("field "):
            metrics[f"{key}_level_1"] = round(statistics.fmean(f[key] for f in low), 3)
            metrics[f"{key}_level_{max_difficulty}"] = round(statistics.fmean(f[key] for f in high), 3)
        if standardized >= config.min_difficulty_z and relative > best_effect:
            best, best_effect = key, relative
    metrics["largest_relative_change"] = round(best_effect, 3)
    if best_effect < config.min_difficulty_effect:
        return CheckResult(
            name="difficulty",
            status="fail",
            metrics=metrics,
            summary=f"difficulty 1 and {max_difficulty} are indistinguishable: no measured property changes by "
            f"≥ {config.min_difficulty_effect:.0%} (largest: {best or 'none'} {best_effect:.1%}); make higher "
            "levels larger or harder",
            evidence=[
                Evidence(
                    detail=f"mean {k}: level 1 {metrics[f'{k}_level_1']}, level {max_difficulty} "
                    f"{metrics[f'{k}_level_{max_difficulty}']}"
                )
                for k in ("question_chars", "instance_chars")
            ],
        )
    return CheckResult(
        name="difficulty",
        status="pass",
        metrics=metrics,
        summary=f"levels differ ({best} changes by {best_effect:.0%} from 1 to {max_difficulty})",
    )
