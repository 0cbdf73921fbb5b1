"""What readers ask of the catalog: environment listings, one environment by id, aggregate
statistics, and free SQL that cannot change anything.

These are plain functions of a DuckDB connection, so :class:`resyn.catalog.Catalog` can run them on
a read-only connection (``resyn catalog …``) or on its writer connection (a synthesis run that
reports on itself) alike. Their results are pydantic models: the CLI prints them as tables or as
JSON, and other code gets validated values.
"""

from __future__ import annotations

import difflib
import math
import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from resyn.catalog.diversity import Diversity, compute_diversity
from resyn.catalog.errors import CatalogError, first_line
from resyn.catalog.migrations import rollback
from resyn.catalog.records import EnvironmentRecord
from resyn.catalog.rows import decode, decode_many, from_db_time

SQL_ROW_LIMIT = 10_000
"""Rows returned by :func:`run_sql` at most: a terminal or a JSON consumer has no use for more,
and ``LIMIT``/aggregates get the rest."""

ENV_JSON_FIELDS = ("check_metrics", "judge_scores", "lineage", "samples", "fingerprint")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


SORTS = {
    "created": " ORDER BY e.created_at, e.env_id",
    "learnability": " ORDER BY latest.learnability DESC NULLS LAST, e.created_at, e.env_id",
    "name": " ORDER BY name, e.env_id",
}
"""``resyn catalog list --sort``: the orders an environment listing can take."""


class EnvironmentSummary(_Model):
    """One line of ``resyn catalog list``: an environment without its code."""

    env_id: str
    name: str
    keyword: str
    max_difficulty: int
    has_solution: bool
    run_id: str
    rounds: int
    """Rounds the task took to reach this environment (1 = accepted as first written)."""
    created_at: datetime
    description: str | None
    """The first line of the environment's docstring."""
    status: str = "accepted"
    """``accepted`` (training material), or ``too_easy``, ``too_hard``, ``unproven``."""
    learnability: float | None = None
    """Mean ``4 p (1 - p)`` over levels from the latest calibration; ``None`` if never calibrated."""
    solver_model: str | None = None
    """The solver of that calibration."""


class SqlResult(_Model):
    """The rows of a read-only query, at most ``limit`` of them."""

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    """More rows matched than ``limit``; only the first ``limit`` are here."""
    limit: int = SQL_ROW_LIMIT


class Funnel(_Model):
    """How many candidates (module versions) got how far, in pipeline order."""

    written: int
    """Candidates created: one per round of a task."""
    extracted: int
    """A module could be extracted from the LLM's answer."""
    passed_static: int
    passed_checks: int
    passed_judge: int
    accepted: int


class CatalogStats(_Model):
    """Where a catalog (or one run of it) spent its effort and what came out."""

    run_id: str | None
    """The run these numbers are restricted to; ``None`` for the whole catalog."""
    runs: int
    environments: int
    tasks: dict[str, int]
    """Tasks (keywords) by status: pending, accepted, rejected, error."""
    funnel: Funnel
    outcomes: dict[str, int]
    """Candidates by outcome (``in_progress`` for rounds without one)."""
    failed_checks: dict[str, int]
    """Per check, the number of candidates it failed; most frequent first."""
    judge_rejected: int
    """Candidates the judge said no to."""
    judge_errors: int
    """Candidates for which the judge failed to give a valid verdict."""
    calls: int
    failed_calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    """Sum of the known costs."""
    calls_without_cost: int
    """Calls whose cost is unknown (a model without a price): ``cost_usd`` undercounts them."""
    cost_per_environment_usd: float | None
    """``cost_usd`` divided by ``environments``; ``None`` without environments."""
    mean_rounds_to_acceptance: float | None = Field(None)
    """Mean rounds of the accepted tasks; ``None`` without any."""
    environments_by_status: dict[str, int] = Field(default_factory=dict)
    """Environments by status: accepted (training material), too_easy, too_hard, unproven."""
    diversity: Diversity | None = None
    """Families and pairwise similarity of the environments (``stats(diversity=True)``)."""


# -- environments ---------------------------------------------------------------------------------
def list_environments(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str | None = None,
    keyword: str | None = None,
    limit: int | None = None,
    status: str | None = None,
    sort: str = "created",
) -> list[EnvironmentSummary]:
    """Environments, oldest first (or by ``sort``: ``learnability``, highest first, from each
    environment's latest calibration); ``keyword`` matches a case-insensitive substring."""
    if sort not in SORTS:
        raise CatalogError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if run_id is not None:
        where.append("e.run_id = ?")
        params.append(run_id)
    if keyword is not None:
        where.append("contains(lower(keyword), lower(?))")
        params.append(keyword)
    sql = (
        "WITH latest AS (SELECT env_id, arg_max(learnability, created_at) AS learnability, "
        "arg_max(solver_model, created_at) AS solver_model FROM calibrations GROUP BY env_id) "
        "SELECT e.env_id, name, keyword, max_difficulty, has_solution, e.run_id, status, "
        "latest.learnability, latest.solver_model, "
        "coalesce(json_array_length(lineage, '$.candidate_ids'), 1)::INTEGER AS rounds, e.created_at, "
        "nullif(trim(split_part(trim(coalesce(description, '')), chr(10), 1)), '') AS description "
        "FROM environments e LEFT JOIN latest USING (env_id)"
        + (" WHERE " + " AND ".join(where) if where else "")
        + SORTS[sort]
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    cursor = conn.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return decode_many(EnvironmentSummary, columns, cursor.fetchall())


def get_environment(conn: duckdb.DuckDBPyConnection, env_id: str, label: str) -> EnvironmentRecord:
    """The environment ``env_id``, or the only one whose id starts with it.

    An unknown id is a :class:`CatalogError` that suggests the closest id: ids are long and typed
    by hand from a listing.
    """
    cursor = conn.execute("SELECT * FROM environments WHERE env_id = ?", [env_id])
    columns = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    if row is None:
        matches = (
            []
            if not env_id
            else conn.execute(
                "SELECT env_id FROM environments WHERE starts_with(env_id, ?) ORDER BY env_id LIMIT 6",
                [env_id],
            ).fetchall()
        )
        if len(matches) > 1:
            shown = ", ".join(m[0] for m in matches[:5]) + (", …" if len(matches) > 5 else "")
            raise CatalogError(
                f"{env_id!r} is the start of several environment ids ({shown}): give more of the id"
            )
        if not matches:
            # DuckDB ranks every id by similarity in one scan and difflib picks among the best
            # few: a miss costs milliseconds, not a Python loop over 10,000 ids.
            nearest = conn.execute(
                "SELECT env_id FROM environments ORDER BY jaro_winkler_similarity(env_id, ?) DESC LIMIT 20",
                [env_id],
            ).fetchall()
            close = difflib.get_close_matches(env_id, [r[0] for r in nearest], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CatalogError(
                f"no environment {env_id!r} in catalog {label}{hint}: run `resyn catalog list` to see the ids"
            )
        cursor = conn.execute("SELECT * FROM environments WHERE env_id = ?", [matches[0][0]])
        row = cursor.fetchone()
        assert row is not None
    return decode(EnvironmentRecord, columns, row, ENV_JSON_FIELDS)


def environments_with_status(conn: duckdb.DuckDBPyConnection, status: str | None) -> list[EnvironmentRecord]:
    """Every environment with ``status`` (``None``: all), whole, in creation order: one query,
    not a listing followed by a lookup per environment."""
    query = "SELECT * FROM environments" + (" WHERE status = ?" if status is not None else "")
    cursor = conn.execute(query + " ORDER BY created_at, env_id", [status] if status is not None else [])
    columns = [d[0] for d in cursor.description]
    return decode_many(EnvironmentRecord, columns, cursor.fetchall(), ENV_JSON_FIELDS)


# -- free SQL -------------------------------------------------------------------------------------
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?", re.IGNORECASE)

_ALLOWED = "one read-only statement: SELECT, WITH …, FROM …, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN"


def check_read_only(conn: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse anything but a single query statement, using DuckDB's own parser.

    DuckDB parses ``DESCRIBE``, ``SHOW`` and ``SUMMARIZE`` as SELECTs. ``EXPLAIN ANALYZE`` runs
    its statement, so the statement after ``EXPLAIN`` is checked too. ``PRAGMA``, ``CALL``
    (``CHECKPOINT`` is one), ``SET``, ``COPY``, ``ATTACH``, ``INSTALL``/``LOAD`` and every write
    are refused even on a read-only connection: they act outside the database file.
    """
    try:
        statements = conn.extract_statements(query)
    except duckdb.Error as exc:
        raise CatalogError(f"SQL error: {first_line(exc)}") from None
    if not statements:
        raise CatalogError(f"SQL error: the query is empty: give {_ALLOWED}")
    if len(statements) > 1:
        raise CatalogError(f"SQL error: {len(statements)} statements given: give {_ALLOWED}")
    statement = statements[0]
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN.sub("", statement.query, count=1)
        if inner != statement.query:
            check_read_only(conn, inner)
            return
    elif statement.type == duckdb.StatementType.SELECT:
        return
    raise CatalogError(
        f"SQL error: {statement.type.name} statements are not allowed on the catalog: give {_ALLOWED}"
    )


def run_sql(conn: duckdb.DuckDBPyConnection, query: str, limit: int = SQL_ROW_LIMIT) -> SqlResult:
    """Run one read-only query in a transaction that is always rolled back.

    The statement check is the first guard; the rollback is the second: even a statement the
    check let through by mistake cannot leave a change in the catalog.
    """
    check_read_only(conn, query)
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            cursor = conn.execute(query)
            columns = [d[0] for d in cursor.description] if cursor.description else []
            fetched = cursor.fetchmany(limit + 1) if columns else []
        finally:
            rollback(conn)
    except duckdb.Error as exc:
        raise CatalogError(f"SQL error: {first_line(exc)}") from None
    rows = [
        [from_db_time(v) if isinstance(v, datetime) and v.tzinfo is None else v for v in row]
        for row in fetched[:limit]
    ]
    return SqlResult(columns=columns, rows=rows, truncated=len(fetched) > limit, limit=limit)


def jsonable(value: Any) -> Any:
    """A value from a SQL row as JSON-ready data: times as ISO text, decimals as floats, blobs as
    hex, non-finite floats as ``null`` (strict JSON has no ``NaN``), anything else as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


# -- statistics -----------------------------------------------------------------------------------
def compute_stats(
    conn: duckdb.DuckDBPyConnection, run_id: str | None = None, *, diversity: bool = False
) -> CatalogStats:
    """The numbers of ``resyn catalog stats``: a handful of aggregate queries, each one scan.

    A call belongs to a run through its ``run_id`` tag; calls recorded without one count only in
    whole-catalog statistics.
    """
    run = "($run::VARCHAR IS NULL OR run_id = $run)"
    p: dict[str, Any] = {"run": run_id}

    def one(sql: str) -> tuple[Any, ...]:
        row = conn.execute(sql, p).fetchone()
        assert row is not None
        return row

    def counts(sql: str) -> dict[str, int]:
        return {str(key): int(count) for key, count in conn.execute(sql, p).fetchall()}

    (runs,) = one(f"SELECT count(*) FROM runs WHERE {run}")
    (environments,) = one(f"SELECT count(*) FROM environments WHERE {run}")
    tasks = counts(f"SELECT status, count(*) FROM tasks WHERE {run} GROUP BY status ORDER BY status")
    written, extracted, passed_static, passed_checks, passed_judge, accepted, rejected, judge_errors = one(
        "SELECT count(*), count(*) FILTER (extracted), count(*) FILTER (passed_static), "
        "count(*) FILTER (passed_checks), count(*) FILTER (passed_judge), "
        "count(*) FILTER (outcome = 'accepted'), count(*) FILTER (outcome = 'judge_rejected'), "
        f"count(*) FILTER (outcome = 'judge_error') FROM candidates WHERE {run}"
    )
    outcomes = counts(
        "SELECT coalesce(outcome, 'in_progress') AS o, count(*) FROM candidates "
        f"WHERE {run} GROUP BY o ORDER BY count(*) DESC, o"
    )
    failed_checks = counts(
        "SELECT r.check_name, count(DISTINCT r.candidate_id) AS n FROM check_results r "
        "LEFT JOIN candidates c ON c.candidate_id = r.candidate_id "
        "WHERE r.status = 'fail' AND ($run::VARCHAR IS NULL OR c.run_id = $run) "
        "GROUP BY r.check_name ORDER BY n DESC, r.check_name"
    )
    calls, failed_calls, tokens_in, tokens_out, cost, without_cost = one(
        "SELECT count(*), count(*) FILTER (error IS NOT NULL), coalesce(sum(tokens_in), 0), "
        "coalesce(sum(tokens_out), 0), coalesce(sum(cost_usd), 0), count(*) FILTER (cost_usd IS NULL) "
        f"FROM llm_calls WHERE {run}"
    )
    (mean_rounds,) = one(f"SELECT avg(rounds) FROM tasks WHERE status = 'accepted' AND {run}")
    cost = float(cost)
    return CatalogStats(
        run_id=run_id,
        runs=runs,
        environments=environments,
        tasks=tasks,
        funnel=Funnel(
            written=written,
            extracted=extracted,
            passed_static=passed_static,
            passed_checks=passed_checks,
            passed_judge=passed_judge,
            accepted=accepted,
        ),
        outcomes=outcomes,
        failed_checks=failed_checks,
        judge_rejected=rejected,
        judge_errors=judge_errors,
        calls=calls,
        failed_calls=failed_calls,
        tokens_in=int(tokens_in),
        tokens_out=int(tokens_out),
        cost_usd=cost,
        calls_without_cost=without_cost,
        cost_per_environment_usd=cost / environments if environments else None,
        mean_rounds_to_acceptance=float(mean_rounds) if mean_rounds is not None else None,
        environments_by_status=dict(
            conn.execute(
                f"SELECT status, count(*) FROM environments WHERE {run} GROUP BY status ORDER BY 2 DESC", p
            ).fetchall()
        ),
        diversity=compute_diversity(conn, run_id) if diversity else None,
    )
