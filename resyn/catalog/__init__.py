"""The environment catalog: one DuckDB file with every run, task, candidate, check report, judge
verdict and LLM call of the synthesis loop, and the environments it accepted.

The synthesis loop writes it through :class:`Catalog` (opened as the writer); ``resyn catalog``
and ``resyn check <env-id>`` read it (opened read-only). The rows are the pydantic models of
:mod:`resyn.catalog.records`; the schema and its versions are in :mod:`resyn.catalog.migrations`.
"""

from resyn.catalog.errors import CatalogError
from resyn.catalog.queries import CatalogStats, EnvironmentSummary, Funnel, SqlResult
from resyn.catalog.records import (
    CandidateRecord,
    EnvironmentRecord,
    Lineage,
    RunRecord,
    TaskRecord,
    VerdictRecord,
    env_id_for,
)
from resyn.catalog.store import Catalog, StoredCall, default_catalog_path

__all__ = [
    "CandidateRecord",
    "Catalog",
    "CatalogError",
    "CatalogStats",
    "EnvironmentRecord",
    "EnvironmentSummary",
    "Funnel",
    "Lineage",
    "RunRecord",
    "SqlResult",
    "StoredCall",
    "TaskRecord",
    "VerdictRecord",
    "default_catalog_path",
    "env_id_for",
]
