"""How diverse a catalog is: families of related environments and the distribution of pairwise
similarity, from the fingerprints stored with each environment (``resyn.synth.similarity``).

Exact answers need every pair, which a 10,000-environment catalog cannot afford on every ``resyn
catalog stats``; so the figures come from a deterministic sample (the same environments every
time: ordered by the md5 of their id), and say so.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError

from resyn.synth.similarity import EnvFingerprint, families, pairwise_summary

#: Environments further apart than this are in different families. Lower than the duplicate
#: threshold (0.6): a family is a set of related tasks (variants of one puzzle), not copies.
FAMILY_THRESHOLD = 0.4

#: Environments whose fingerprints are compared by default.
DEFAULT_SAMPLE = 150


class Diversity(BaseModel):
    """The diversity part of ``resyn catalog stats``."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    environments: int
    """Environments with a fingerprint (in the run, or the whole catalog)."""
    compared: int
    """How many of them the figures below come from."""
    sampled: bool
    families: int
    """Groups of related environments (single-link at ``family_threshold``) among those compared."""
    largest_family: int
    family_threshold: float
    pairwise: dict[str, float | int]
    """Pairwise similarity: count, mean, p50, p90, max."""
    duplicates_skipped: dict[str, int]
    """Near-duplicates recorded and skipped, by kind (proposal, environment)."""


def compute_diversity(
    conn: duckdb.DuckDBPyConnection, run_id: str | None = None, sample: int = DEFAULT_SAMPLE
) -> Diversity:
    params: dict[str, Any] = {"run": run_id}
    where = "fingerprint IS NOT NULL AND ($run::VARCHAR IS NULL OR run_id = $run)"
    row = conn.execute(f"SELECT count(*) FROM environments WHERE {where}", params).fetchone()
    total = int(row[0]) if row else 0
    rows = conn.execute(
        f"SELECT env_id, fingerprint FROM environments WHERE {where} ORDER BY md5(env_id) LIMIT $n",
        params | {"n": sample},
    ).fetchall()
    prints: list[tuple[str, EnvFingerprint]] = []
    for env_id, stored in rows:
        try:
            data = json.loads(stored) if isinstance(stored, str) else stored
            prints.append((env_id, EnvFingerprint.model_validate(data)))
        except (ValidationError, ValueError):
            continue  # a fingerprint of an older signature version: not comparable
    groups = families(prints, FAMILY_THRESHOLD)
    duplicates = dict(
        conn.execute(
            "SELECT kind, count(*) FROM duplicates WHERE ($run::VARCHAR IS NULL OR run_id = $run) GROUP BY kind",
            params,
        ).fetchall()
    )
    return Diversity(
        environments=total,
        compared=len(prints),
        sampled=total > len(prints),
        families=len(groups),
        largest_family=max((len(g) for g in groups), default=0),
        family_threshold=FAMILY_THRESHOLD,
        pairwise=pairwise_summary([f for _, f in prints], sample_limit=1_000),
        duplicates_skipped={str(k): int(v) for k, v in duplicates.items()},
    )
