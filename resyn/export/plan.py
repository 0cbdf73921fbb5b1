"""Planning an export: how many rows each (environment, split, level) gets, and which seeds.

Two properties matter to trainers and are decided here:

* **Reproducible.** Seeds come from a ``random.Random`` keyed by sha256 of
  ``(export seed, env id, split, level)``, so the same request gives the same rows, and adding an
  environment or a split does not change the rows of the others.
* **Splits never share an instance.** Each split draws seeds from its own range: ``train`` from
  ``[0, 2**40)``, the k-th other split from ``[k * 2**40, (k + 1) * 2**40)``. No export's train
  split ever uses a seed of a held-out range, whatever ``--seed`` it was made with. Distinct seeds
  can still produce the same instance (an environment with few instances at a level), so the
  exporter also drops rendered instances already seen in any split (:mod:`resyn.export.exporter`).
  ``--held-out-difficulty`` goes further: those levels appear only in the non-train splits.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from resyn.export.errors import ExportError
from resyn.export.mix import apportion
from resyn.export.render import Draw

__all__ = ["SEED_RANGE", "Allocation", "Bucket", "plan_buckets", "seed_base"]

SEED_RANGE = 2**40
"""Width of each split's seed range."""


@dataclass(frozen=True)
class Allocation:
    """Rows one environment gets (before the split), and the levels they come from."""

    env_id: str
    rows: int
    levels: tuple[int, ...]


@dataclass
class Bucket:
    """The rows of one (environment, split, level), and the seed stream that fills it."""

    env_id: str
    split: str
    level: int
    wanted: int
    base: int
    rng: random.Random
    used: set[int] = field(default_factory=set)

    def draw(self, count: int) -> list[Draw]:
        """``count`` more seeds, never one this bucket drew before."""
        draws: list[Draw] = []
        while len(draws) < count:
            seed = self.base + self.rng.randrange(SEED_RANGE)
            if seed not in self.used:
                self.used.add(seed)
                draws.append(Draw(self.env_id, seed, self.level))
        return draws


def seed_base(split: str, splits: list[str]) -> int:
    """Start of ``split``'s seed range: 0 for ``train``, then one range per other split."""
    if split == "train":
        return 0
    others = [name for name in splits if name != "train"]
    return (others.index(split) + 1) * SEED_RANGE


def plan_buckets(
    allocations: list[Allocation],
    splits: dict[str, float],
    seed: int,
    held_out: tuple[int, int] | None,
) -> list[Bucket]:
    """The buckets of an export: each allocation's rows split by fraction, then spread evenly
    over the split's levels."""
    names = list(splits)
    buckets: list[Bucket] = []
    for allocation in allocations:
        shares = apportion(allocation.rows, [splits[name] for name in names])
        for name, share in zip(names, shares, strict=True):
            levels = _split_levels(allocation, name, held_out)
            for level, count in zip(levels, apportion(share, [1.0] * len(levels)), strict=True):
                if count:
                    buckets.append(
                        Bucket(
                            allocation.env_id,
                            name,
                            level,
                            count,
                            seed_base(name, names),
                            random.Random(_stream(seed, allocation.env_id, name, level)),
                        )
                    )
    return buckets


def _split_levels(allocation: Allocation, split: str, held_out: tuple[int, int] | None) -> tuple[int, ...]:
    if held_out is None:
        return allocation.levels
    low, high = held_out
    if split == "train":
        levels = tuple(level for level in allocation.levels if not low <= level <= high)
    else:
        levels = tuple(level for level in allocation.levels if low <= level <= high)
    if not levels:
        side = "outside" if split == "train" else "inside"
        raise ExportError(
            f"{allocation.env_id} has no levels {side} --held-out-difficulty {low}-{high} for split "
            f"{split!r} (its levels: {', '.join(map(str, allocation.levels))}): choose another range"
        )
    return levels


def _stream(seed: int, env_id: str, split: str, level: int) -> int:
    digest = hashlib.sha256(f"resyn-export:{seed}:{env_id}:{split}:{level}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
