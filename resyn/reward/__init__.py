"""Reward scoring for RL trainers: completions against environments, in sandboxed workers.

:class:`RewardScorer` is the one scoring core every trainer integration builds on (exports,
the reward server). Items are :class:`ScoreItem` (or plain dicts of the same keys); scores are
floats in [0, 1] that never raise, with a counted :data:`REASONS` entry for every 0.0 that is not
the policy's fault. See :mod:`resyn.reward.scorer` for the guarantees and their reasons.
"""

from resyn.reward.models import (
    REASONS,
    EnvSpec,
    Reason,
    RewardConfig,
    ScoreItem,
    ScoreResult,
    completion_text,
)
from resyn.reward.scorer import RewardScorer

__all__ = [
    "REASONS",
    "EnvSpec",
    "Reason",
    "RewardConfig",
    "RewardScorer",
    "ScoreItem",
    "ScoreResult",
    "completion_text",
]
