"""Every threshold of the check suite, with the reason it has the value it has."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CheckConfig(BaseModel):
    """Thresholds of the generator–verifier checks. Defaults are meant for admission of
    LLM-written environments into a training catalog; each says why."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    seeds_per_level: int = Field(100, ge=4)
    """Instances generated per difficulty level for reliability, diversity and difficulty
    statistics: enough that a 5% failure rate shows up and distinct-question ratios are stable."""

    pilot_seeds_per_level: int = Field(8, ge=1)
    """Seeds per level drawn first; if their p95 generation time is already over the limit the
    sweep stops there, so a slow generator is rejected in seconds rather than minutes."""

    sweep_budget_s: float = Field(60.0, gt=0)
    """Wall-time budget for the rest of the sweep; when spent, later levels are sampled no further
    (reported as a timing warning)."""

    probe_instances_per_level: int = Field(20, ge=2)
    """Instances per level that receive the negative probes; 20 per level gives ≥ 60 trials for
    each pooled rate, enough to tell 10% from 50%."""

    determinism_seeds_per_level: int = Field(4, ge=1)
    """Instances per level regenerated in a second fresh worker with another PYTHONHASHSEED."""

    max_levels: int = Field(20, ge=1)
    """Largest accepted ``max_difficulty``; more levels make calibration and curricula noisy."""

    accept_score: float = Field(0.99, gt=0, le=1)
    """A probe answer 'earns reward' when it scores at least this (partial credit below it still
    counts in the mean-score thresholds)."""

    min_distinct_ratio: float = Field(0.5, ge=0, le=1)
    """Distinct questions per level among ``seeds_per_level`` samples. Repeats waste RL compute and
    leak between train and test splits (reasoning-gym's seed-collision audit found tasks with up to
    98 identical items in 10k)."""

    min_difficulty_effect: float = Field(0.1, ge=0)
    """Smallest relative change, lowest vs highest level, in some measured property of the
    instances (question length, instance size, count or magnitude of numbers, gold length)."""

    min_difficulty_z: float = Field(0.6, ge=0)
    """...and that change must be at least this many pooled standard deviations, so that a random
    field whose mean wanders by chance (a few percent between two samples of 100) does not count.
    Properties compared: the fixed features and every numeric field of the instance (a level may
    change a stored parameter, such as a minimum number of moves, without changing any size)."""

    max_constant_score: float = Field(0.25, ge=0, le=1)
    """Mean score a single constant answer (junk, or the most common gold at a level) may earn.
    0.25 admits tasks with ≥ 5 roughly equally likely answers; yes/no and 4-way choices make
    noisy rewards that a policy can farm (reasoning-gym's CONTRIBUTING says the same)."""

    max_cross_acceptance: float = Field(0.1, ge=0, le=1)
    """Share of other instances' (different) gold answers accepted. A sound verifier checks this
    instance's constraints; an answer made for another instance rarely satisfies them."""

    max_shotgun_acceptance: float = Field(0.1, ge=0, le=1)
    """Share of answers that list the gold among several candidates and still earn reward: the
    classic substring/partial-credit hack named in the RLVR literature."""

    max_mutation_acceptance: float = Field(0.5, ge=0, le=1)
    """Pooled share of format-preserving mutations of the gold that are accepted. Deliberately
    lenient: a correct multi-solution verifier (graph colouring, SAT) accepts mutations that are
    themselves valid solutions. Above half, the verifier is not checking the content."""

    max_mutation_kind_acceptance: float = Field(0.9, ge=0, le=1)
    """Acceptance of any single mutation kind (with enough trials) above this means the verifier
    ignores that aspect of the answer (e.g. only reads the first item of a list)."""

    min_kind_trials: int = Field(10, ge=1)
    """Trials a probe kind needs before its own rate is judged."""

    max_numeric_acceptance: float = Field(0.2, ge=0, le=1)
    """Acceptance of a numeric perturbation of a numeric gold (±1, ±5%, ×10, negated): a tolerance
    that admits these rewards wrong answers."""

    long_answer_chars: int = Field(100_000, ge=1000)
    """Length of the very long probe answers (RLVR failure mode: answers that exhaust timeouts)."""

    long_answer_timeout_s: float = Field(2.0, gt=0)
    """Deadline for verifying one very long answer."""

    leak_min_excess: float = Field(0.5, ge=0, le=1)
    """A gold answer leaks when it appears as a whole token in its own question this much more
    often than another instance's gold appears in it (chance level)."""

    leak_min_gold_chars: int = Field(12, ge=1)
    """A gold that is one token shorter than this and appears in its question is only a warning:
    selection and retrieval tasks (the largest of these numbers, the name hidden in this text)
    legitimately quote their answer. Golds with several tokens, or longer ones, fail."""

    max_labelled_leak: float = Field(0.2, ge=0, le=1)
    """Share of questions where the gold follows a word like 'answer' or 'solution'."""

    max_generate_p95_s: float = Field(1.0, gt=0)
    """p95 seconds for one ``generate``: data pipelines make millions of instances."""

    max_verify_p95_s: float = Field(0.1, gt=0)
    """p95 seconds for one ``verify``: it sits in the RL reward loop."""

    max_item_chars: int = Field(200_000, ge=1000)
    """Largest JSON instance or question accepted; trainers keep instances in dataset rows."""
