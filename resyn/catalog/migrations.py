"""The catalog's schema as an ordered list of versioned migrations.

A catalog outlives the resyn that wrote it: runs are resumed and catalogs are shared. So the schema
is never edited in place; a change is a new :class:`Migration` appended to :data:`MIGRATIONS`, and
every writer applies the pending ones when it opens a catalog, all in one transaction (DuckDB's DDL
is transactional, so a failed upgrade leaves the catalog exactly as it was). The applied versions
are recorded in :data:`META_TABLE`; its presence is also what marks a DuckDB file as a resyn catalog.

Conventions of the schema:

* columns carry the field names of :mod:`resyn.catalog.records` (and of ``CallRecord`` and
  ``CheckReport``), so ``resyn catalog sql`` reads like the Python API;
* timestamps are ``TIMESTAMP`` in UTC (not ``TIMESTAMPTZ``, whose conversion to Python needs
  ``pytz``, which resyn does not depend on);
* nested values (configs, tags, requests, metrics, evidence, lineage) are ``JSON``;
* no foreign keys: DuckDB forbids updating a row that a foreign key references, and the synthesis
  loop updates tasks and candidates as rounds finish. Ids are indexed instead.

Indexes: every table's primary key is an ART index (point look-ups by id, upserts), and the columns
that join a child to its parent (``run_id``, ``task_id``, ``candidate_id``) are indexed for the
lineage of one environment. Aggregates (``stats``, ``list``) scan columns, which DuckDB's columnar
storage and min-max zonemaps keep at a few milliseconds for 10,000 environments.
"""

from __future__ import annotations

import contextlib
from importlib import metadata

import duckdb
from pydantic import BaseModel, ConfigDict

from resyn.catalog.errors import CatalogError, first_line
from resyn.catalog.records import utcnow
from resyn.catalog.rows import to_db_time

META_TABLE = "resyn_migrations"


class Migration(BaseModel):
    """One schema change: its version (1, 2, …), what it does, and its SQL statements."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = (
    """CREATE TABLE runs (
        run_id        VARCHAR PRIMARY KEY,
        created_at    TIMESTAMP NOT NULL,
        config        JSON NOT NULL,
        resyn_version VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,
        finished_at   TIMESTAMP
    )""",
    """CREATE TABLE tasks (
        task_id    VARCHAR PRIMARY KEY,
        run_id     VARCHAR NOT NULL,
        keyword    VARCHAR NOT NULL,
        position   INTEGER NOT NULL,
        status     VARCHAR NOT NULL,
        rounds     INTEGER NOT NULL,
        reason     VARCHAR,
        env_id     VARCHAR,
        updated_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX tasks_run_id ON tasks (run_id)",
    """CREATE TABLE llm_calls (
        call_id           VARCHAR PRIMARY KEY,
        run_id            VARCHAR,
        task_id           VARCHAR,
        candidate_id      VARCHAR,
        started_at        TIMESTAMP NOT NULL,
        template          VARCHAR NOT NULL,
        prompt_sha256     VARCHAR NOT NULL,
        requested_model   VARCHAR NOT NULL,
        resolved_model    VARCHAR,
        purpose           VARCHAR,
        tokens_in         BIGINT,
        tokens_out        BIGINT,
        latency_s         DOUBLE NOT NULL,
        finish_reason     VARCHAR,
        raw_finish_reason VARCHAR,
        cost_usd          DOUBLE,
        attempts          INTEGER NOT NULL,
        text              VARCHAR,
        error             VARCHAR,
        error_type        VARCHAR,
        tags              JSON NOT NULL,
        request           JSON NOT NULL,
        response          JSON
    )""",
    "CREATE INDEX llm_calls_run_id ON llm_calls (run_id)",
    "CREATE INDEX llm_calls_task_id ON llm_calls (task_id)",
    "CREATE INDEX llm_calls_candidate_id ON llm_calls (candidate_id)",
    """CREATE TABLE candidates (
        candidate_id  VARCHAR PRIMARY KEY,
        task_id       VARCHAR NOT NULL,
        run_id        VARCHAR NOT NULL,
        keyword       VARCHAR NOT NULL,
        round         INTEGER NOT NULL,
        parent_id     VARCHAR,
        write_call_id VARCHAR,
        code          VARCHAR,
        code_sha256   VARCHAR,
        env_name      VARCHAR,
        extracted     BOOLEAN NOT NULL,
        passed_static BOOLEAN NOT NULL,
        passed_checks BOOLEAN NOT NULL,
        passed_judge  BOOLEAN NOT NULL,
        outcome       VARCHAR,
        reason        VARCHAR,
        feedback      VARCHAR,
        created_at    TIMESTAMP NOT NULL,
        finished_at   TIMESTAMP
    )""",
    "CREATE INDEX candidates_task_id ON candidates (task_id)",
    "CREATE INDEX candidates_run_id ON candidates (run_id)",
    """CREATE TABLE check_reports (
        candidate_id   VARCHAR PRIMARY KEY,
        label          VARCHAR NOT NULL,
        code_sha256    VARCHAR NOT NULL,
        env_name       VARCHAR,
        description    VARCHAR,
        max_difficulty INTEGER,
        has_solution   BOOLEAN,
        isolation      VARCHAR NOT NULL,
        accepted       BOOLEAN NOT NULL,
        seconds        DOUBLE NOT NULL,
        created_at     TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE check_results (
        candidate_id VARCHAR NOT NULL,
        position     INTEGER NOT NULL,
        check_name   VARCHAR NOT NULL,
        status       VARCHAR NOT NULL,
        summary      VARCHAR NOT NULL,
        metrics      JSON NOT NULL,
        evidence     JSON NOT NULL,
        PRIMARY KEY (candidate_id, position)
    )""",
    "CREATE INDEX check_results_candidate_id ON check_results (candidate_id)",
    """CREATE TABLE verdicts (
        verdict_id   VARCHAR PRIMARY KEY,
        candidate_id VARCHAR NOT NULL,
        call_id      VARCHAR,
        accept       BOOLEAN,
        feedback     VARCHAR,
        scores       JSON NOT NULL,
        error        VARCHAR,
        created_at   TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX verdicts_candidate_id ON verdicts (candidate_id)",
    """CREATE TABLE environments (
        env_id         VARCHAR PRIMARY KEY,
        name           VARCHAR NOT NULL,
        keyword        VARCHAR NOT NULL,
        description    VARCHAR,
        code           VARCHAR NOT NULL,
        code_sha256    VARCHAR NOT NULL,
        max_difficulty INTEGER NOT NULL,
        has_solution   BOOLEAN NOT NULL,
        run_id         VARCHAR NOT NULL,
        task_id        VARCHAR NOT NULL,
        candidate_id   VARCHAR NOT NULL,
        check_metrics  JSON NOT NULL,
        judge_scores   JSON NOT NULL,
        lineage        JSON NOT NULL,
        created_at     TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX environments_run_id ON environments (run_id)",
    "CREATE INDEX environments_keyword ON environments (keyword)",
)

_V2 = (
    "ALTER TABLE environments ADD COLUMN status VARCHAR DEFAULT 'accepted'",
    "ALTER TABLE environments ADD COLUMN samples JSON DEFAULT '[]'",
    "ALTER TABLE environments ADD COLUMN fingerprint JSON",
    "ALTER TABLE verdicts ADD COLUMN verdict JSON",
    """CREATE TABLE proposals (
        proposal_id   VARCHAR PRIMARY KEY,
        run_id        VARCHAR NOT NULL,
        seed_keyword  VARCHAR NOT NULL,
        keyword       VARCHAR NOT NULL,
        description   VARCHAR NOT NULL,
        call_id       VARCHAR,
        duplicate_of  VARCHAR,
        similarity    DOUBLE,
        created_at    TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX proposals_run_id ON proposals (run_id)",
    """CREATE TABLE duplicates (
        duplicate_id  VARCHAR PRIMARY KEY,
        run_id        VARCHAR,
        kind          VARCHAR NOT NULL,
        subject       VARCHAR NOT NULL,
        duplicate_of  VARCHAR NOT NULL,
        similarity    DOUBLE NOT NULL,
        detail        JSON NOT NULL,
        created_at    TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX duplicates_run_id ON duplicates (run_id)",
    """CREATE TABLE calibrations (
        calibration_id        VARCHAR PRIMARY KEY,
        env_id                VARCHAR NOT NULL,
        run_id                VARCHAR,
        solver_model          VARCHAR NOT NULL,
        instances_per_level   INTEGER NOT NULL,
        attempts_per_instance INTEGER NOT NULL,
        status                VARCHAR NOT NULL,
        levels                JSON NOT NULL,
        learnability          DOUBLE NOT NULL,
        any_verified          BOOLEAN NOT NULL,
        created_at            TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX calibrations_env_id ON calibrations (env_id)",
    """CREATE TABLE solver_attempts (
        attempt_id     VARCHAR PRIMARY KEY,
        calibration_id VARCHAR NOT NULL,
        env_id         VARCHAR NOT NULL,
        seed           INTEGER NOT NULL,
        difficulty     INTEGER NOT NULL,
        call_id        VARCHAR,
        answer         VARCHAR,
        score          DOUBLE,
        error          VARCHAR,
        created_at     TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX solver_attempts_calibration_id ON solver_attempts (calibration_id)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="runs, tasks, llm_calls, candidates, check reports, verdicts, environments",
        statements=_V1,
    ),
    Migration(
        version=2,
        description="environment status, samples and fingerprints; proposals, duplicates, calibrations",
        statements=_V2,
    ),
    Migration(
        version=3,
        description="task briefs (the description of a proposed task idea)",
        statements=("ALTER TABLE tasks ADD COLUMN brief VARCHAR",),
    ),
    Migration(
        version=4,
        description="check reports keep the sampled questions shown to the judge",
        statements=("ALTER TABLE check_reports ADD COLUMN samples JSON DEFAULT '[]'",),
    ),
)
"""Every migration, oldest first. Append only: a released migration is never edited."""


def latest_version() -> int:
    return MIGRATIONS[-1].version if MIGRATIONS else 0


def has_meta_table(conn: duckdb.DuckDBPyConnection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?",
        [META_TABLE],
    ).fetchone()
    return bool(row and row[0])


def user_table_count(conn: duckdb.DuckDBPyConnection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0


def schema_version(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The highest applied migration; ``None`` when the file has no resyn meta table."""
    if not has_meta_table(conn):
        return None
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {META_TABLE}").fetchone()
    return int(row[0]) if row else 0


def check_version(version: int, label: str) -> None:
    """Refuse a catalog written by a newer resyn: its schema may mean things this code gets wrong."""
    if version > latest_version():
        raise CatalogError(
            f"catalog {label} was written by a newer resyn (schema v{version}, "
            f"this resyn knows v{latest_version()}): upgrade resyn"
        )


def migrate(conn: duckdb.DuckDBPyConnection, label: str) -> int:
    """Bring the catalog on ``conn`` to the latest schema; returns the number of migrations applied.

    Either every pending migration is applied or none is (one transaction). A DuckDB database that
    already holds tables but no meta table belongs to something else: it is refused, not adopted.
    """
    version = schema_version(conn)
    if version is None and user_table_count(conn) > 0:
        raise not_a_catalog(label)
    current = version or 0
    check_version(current, label)
    pending = [m for m in MIGRATIONS if m.version > current]
    if not pending:
        return 0
    conn.execute("BEGIN TRANSACTION")
    migration = pending[0]
    try:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} ("
            "version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, "
            "applied_at TIMESTAMP NOT NULL, resyn_version VARCHAR NOT NULL)"
        )
        for migration in pending:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {META_TABLE} VALUES (?, ?, ?, ?)",
                [migration.version, migration.description, to_db_time(utcnow()), _resyn_version()],
            )
        conn.execute("COMMIT")
    except BaseException as exc:
        rollback(conn)
        if isinstance(exc, duckdb.Error):
            raise CatalogError(
                f"cannot upgrade catalog {label} to schema v{migration.version} ({first_line(exc)}): "
                "it is unchanged; report this as a resyn bug"
            ) from None
        raise
    return len(pending)


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is open. DuckDB ends a transaction itself on some errors, and a
    second failure here must not hide the first."""
    with contextlib.suppress(duckdb.Error):
        conn.execute("ROLLBACK")


def not_a_catalog(label: str) -> CatalogError:
    return CatalogError(
        f"{label} is not a resyn catalog: pass --catalog with a resyn catalog path, or a new file name"
    )


def _resyn_version() -> str:
    try:
        return metadata.version("resyn")
    except metadata.PackageNotFoundError:
        return "unknown"
