"""Online curricula: draw instances for a trainer, take its rewards back, and keep every
environment at a difficulty where the policy's recent pass rate says something.

>>> with Curriculum.from_catalog("runs/catalog.duckdb", seed=0) as curriculum:   # doctest: +SKIP
...     for step in range(steps):
...         batch = curriculum.next_batch(64)                 # rendered in the sandbox
...         rewards = rollout_and_score(batch)                # floats in [0, 1], one per item
...         curriculum.update(batch, rewards)

How it decides (every number is a :class:`CurriculumSettings` field):

* **Levels.** Each environment has a current level inside its range (``levels``, default
  ``1..max_difficulty``). A reward counts as a pass when it is at least ``success_threshold``;
  the last ``window`` passes/fails of every (environment, level) are kept. Once ``min_samples``
  rewards have come back at the current level since the environment arrived there, it moves up
  ``step`` levels when the window's pass rate is at least ``raise_above`` and down when it is at
  most ``lower_below``: GRPO-style trainers learn nothing from groups that all pass or all fail.
* **Weights.** Environments are drawn with probability ``(1 - reweight) * base + reweight *
  learnable``, where ``base`` is the normalised base weights and ``learnable`` the base weights
  times ``max(learnability_floor, (4 p (1 - p)) ** (1 / temperature))``, normalised, with ``p``
  the current level's pass rate smoothed towards 1/2 (``(passes + 1) / (n + 2)``, so an
  unmeasured level counts as fully learnable). The floor keeps every environment with a positive
  base weight in the draw.
* **Seeds.** The k-th draw of an environment gets seed ``π(k)``, a keyed permutation (a Feistel
  network on sha256 round keys of the curriculum seed and the environment id) of
  ``[0, seed_range)``: seeds never repeat within an environment, whatever level they are drawn
  at, and stay below ``2**40``, where exports keep their held-out splits
  (:mod:`resyn.export.plan`). Distinct seeds can still give equal instances when an environment
  has few of them at a level.
* **Determinism.** Environment and level choices come from one ``random.Random(seed)`` and the
  state above; nothing depends on time, thread timing or the hash order of strings. The same
  seed, environments and sequence of calls (batch sizes, and the rewards fed between them) give
  the same items, also across :meth:`Curriculum.state_dict` / :meth:`Curriculum.load_state_dict`.
  What cannot be reproduced is the sandbox itself failing differently (a worker that misses a
  deadline on an overloaded machine).
* **Failures never reach the trainer.** Environments are loaded in the sandbox when the
  curriculum is built: one that fails to load (or reports no usable ``max_difficulty``) is
  dropped with a warning. An item that fails to render is skipped, counted and replaced; after
  ``max_render_failures`` consecutive failures at one level the environment's range is capped
  below that level, or the environment is dropped when it is at the bottom of its range. Only
  when no environment is left does :class:`CurriculumError` say so.

A curriculum is also an iterable dataset: iterating it yields dict rows with a ``prompt`` (chat
messages, or text with ``prompt_format="text"``) and the columns a reward function needs
(``item_id``, ``env_id``, ``code_sha256``, ``seed``, ``difficulty``, ``instance_json``), forever.
:meth:`Curriculum.reward_function` scores completions with :class:`~resyn.reward.RewardScorer`
and feeds the scores back, with TRL's reward-function signature.
"""

from __future__ import annotations

from resyn.curriculum.core import Curriculum, CurriculumReward
from resyn.curriculum.models import (
    STATE_FORMAT,
    TRAIN_SEED_RANGE,
    CurriculumError,
    CurriculumItem,
    CurriculumSettings,
)
from resyn.curriculum.seeds import SeedPermutation

__all__ = [
    "STATE_FORMAT",
    "TRAIN_SEED_RANGE",
    "Curriculum",
    "CurriculumError",
    "CurriculumItem",
    "CurriculumReward",
    "CurriculumSettings",
    "SeedPermutation",
]
