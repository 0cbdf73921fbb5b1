"""The catalog file: one DuckDB database that the synthesis loop writes and ``resyn catalog`` reads.

DuckDB allows one writing process per file (readers in other processes are locked out while it
writes), so a catalog is opened either as the **writer** — the synthesis run, which creates the file
and applies schema migrations — or as a **reader** that never writes. Every failure to open is a
one-line :class:`CatalogError` naming the fix, and a failed first open leaves no file behind.

Every write method is one transaction under one lock: the synthesis loop calls them from several
threads (LLM calls are recorded as they finish), and a crash (even ``kill -9``) between two calls
leaves the catalog at the last committed state: DuckDB's write-ahead log is replayed on the next
open. :meth:`Catalog.accept` writes an environment together with its candidate and task, so there
is never an environment whose task still says ``pending``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import duckdb
from pydantic import BaseModel, ConfigDict

from resyn.catalog import queries
from resyn.catalog.errors import CatalogError, first_line
from resyn.catalog.migrations import (
    check_version,
    latest_version,
    migrate,
    not_a_catalog,
    rollback,
    schema_version,
)
from resyn.catalog.records import (
    CalibrationRecord,
    CandidateRecord,
    DuplicateRecord,
    EnvironmentRecord,
    ProposalRecord,
    RunRecord,
    RunStatus,
    SolverAttempt,
    TaskRecord,
    TaskStatus,
    VerdictRecord,
    utcnow,
)
from resyn.catalog.rows import M, decode, decode_many, decode_value, encode, insert_sql, to_db_time
from resyn.checks.report import CheckReport, CheckResult
from resyn.llm.models import CallRecord

logger = logging.getLogger(__name__)

DEFAULT_CATALOG = Path("runs") / "catalog.duckdb"
CATALOG_ENV_VAR = "RESYN_CATALOG"

_CALL_JSON = ("tags", "request", "response")
_RESULT_JSON = ("metrics", "evidence")
_RUN_JSON = ("config",)
_VERDICT_JSON = ("scores", "verdict")
_CALL_IDS = ("call_id", "run_id", "task_id", "candidate_id")


def default_catalog_path() -> Path:
    """``$RESYN_CATALOG`` if set, else ``runs/catalog.duckdb`` in the current directory."""
    value = os.environ.get(CATALOG_ENV_VAR)
    return Path(value) if value else DEFAULT_CATALOG


class StoredCall(BaseModel):
    """A recorded LLM call with the ids that place it in a run (from its tags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    run_id: str | None
    task_id: str | None
    candidate_id: str | None
    call: CallRecord


class Catalog:
    """A resyn catalog opened for writing (the synthesis loop) or reading (everything else).

    Use :meth:`open`, preferably as a context manager. It implements the
    :class:`resyn.llm.recording.Recorder` protocol, so it can be handed to a model as its recorder.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path, *, read_only: bool) -> None:
        self._conn: duckdb.DuckDBPyConnection | None = conn
        self._path = path
        self._read_only = read_only
        self._lock = threading.RLock()

    # -- opening and closing ----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> Catalog:
        """Open the catalog at ``path``.

        A writer creates the file (and its directory) when missing and brings its schema up to date;
        a reader opens the file with DuckDB's ``read_only`` and never writes.
        """
        path = Path(path)
        if read_only:
            return cls(_open_reader(path), path, read_only=True)
        return cls(_open_writer(path), path, read_only=False)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def schema_version(self) -> int:
        with self._reading() as conn:
            return schema_version(conn) or 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self._read_only else "writer"
        return f"Catalog({str(self._path)!r}, {mode}{', closed' if self._conn is None else ''})"

    # -- plumbing ---------------------------------------------------------------------------------
    def _live(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise CatalogError(f"catalog {self._path} is closed: open it again with Catalog.open")
        return self._conn

    @contextlib.contextmanager
    def _reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            conn = self._live()
            try:
                yield conn
            except duckdb.Error as exc:
                raise CatalogError(f"cannot read catalog {self._path}: {first_line(exc)}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction: committed when the block ends, rolled back if anything raises."""
        if self._read_only:
            raise CatalogError(f"catalog {self._path} is open read-only: open it without read_only to write")
        with self._lock:
            conn = self._live()
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                rollback(conn)
                if isinstance(exc, duckdb.Error):
                    raise CatalogError(f"cannot write catalog {self._path}: {first_line(exc)}") from None
                raise

    def _select(
        self, model: type[M], sql: str, params: Sequence[Any], json_fields: Sequence[str] = ()
    ) -> list[M]:
        with self._reading() as conn:
            cursor = conn.execute(sql, list(params))
            columns = [d[0] for d in cursor.description]
            return decode_many(model, columns, cursor.fetchall(), json_fields)

    @staticmethod
    def _insert(
        conn: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any], verb: str = "INSERT"
    ) -> None:
        conn.execute(insert_sql(table, list(row), verb), list(row.values()))

    # -- LLM calls (the Recorder protocol) ----------------------------------------------------------
    def record(self, call: CallRecord) -> None:
        """Store one LLM call. Never raises: losing a record must not stop a synthesis run."""
        try:
            self._record(call)
        except Exception as exc:
            logger.warning("catalog %s: could not record a %s call (%s)", self._path, call.template, exc)

    def _record(self, call: CallRecord) -> None:
        row = encode(call, _CALL_JSON)
        with self._transaction() as conn:
            call_id = call.tags.get("call_id") or uuid.uuid4().hex
            if conn.execute("SELECT 1 FROM llm_calls WHERE call_id = ?", [call_id]).fetchone():
                # Keep both: dropping a call would undercount cost. Its tags keep the given id.
                logger.warning(
                    "catalog %s: call id %s recorded twice; storing it under a new id", self._path, call_id
                )
                call_id = uuid.uuid4().hex
            ids = {
                "call_id": call_id,
                "run_id": call.tags.get("run_id"),
                "task_id": call.tags.get("task_id"),
                "candidate_id": call.tags.get("candidate_id"),
            }
            self._insert(conn, "llm_calls", ids | row)

    def calls(
        self,
        *,
        run_id: str | None = None,
        task_id: str | None = None,
        call_ids: Sequence[str] | None = None,
    ) -> list[StoredCall]:
        """Recorded calls in start order, filtered by run, task, or explicit ids (all that apply)."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("run_id", run_id), ("task_id", task_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if call_ids is not None:
            where.append("list_contains(?, call_id)")
            params.append(list(call_ids))
        sql = "SELECT * FROM llm_calls" + (" WHERE " + " AND ".join(where) if where else "")
        with self._reading() as conn:
            cursor = conn.execute(sql + " ORDER BY started_at, call_id", params)
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        stored = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            stored.append(
                StoredCall(
                    **{key: values[key] for key in _CALL_IDS},
                    call=decode(CallRecord, columns, row, _CALL_JSON),
                )
            )
        return stored

    def reusable_calls(self, requested_model: str, prompt_sha256: str) -> list[CallRecord]:
        """Successful calls of ``requested_model`` for this exact prompt, oldest first, that were
        answered by the model (not themselves reused): what ``--reuse-calls`` answers from."""
        with self._reading() as conn:
            cursor = conn.execute(
                "SELECT * EXCLUDE (call_id, run_id, task_id, candidate_id) FROM llm_calls "
                "WHERE requested_model = ? AND prompt_sha256 = ? AND error IS NULL AND text IS NOT NULL "
                "AND json_extract_string(tags, '$.reused_from') IS NULL ORDER BY started_at",
                [requested_model, prompt_sha256],
            )
            columns = [d[0] for d in cursor.description]
            return decode_many(CallRecord, columns, cursor.fetchall(), _CALL_JSON)

    def call_ids(self, *, run_id: str | None = None, task_id: str | None = None) -> list[str]:
        """Ids of the recorded calls in start order (for a lineage), without loading their bodies."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("run_id", run_id), ("task_id", task_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT call_id FROM llm_calls" + (" WHERE " + " AND ".join(where) if where else "")
        with self._reading() as conn:
            return [row[0] for row in conn.execute(sql + " ORDER BY started_at, call_id", params).fetchall()]

    # -- runs -------------------------------------------------------------------------------------
    def upsert_run(self, run: RunRecord) -> None:
        """Insert the run, or replace every column of the run with the same id."""
        with self._transaction() as conn:
            self._insert(conn, "runs", encode(run, _RUN_JSON), "INSERT OR REPLACE")

    def get_run(self, run_id: str) -> RunRecord | None:
        found = self._select(RunRecord, "SELECT * FROM runs WHERE run_id = ?", [run_id], _RUN_JSON)
        return found[0] if found else None

    def runs(self) -> list[RunRecord]:
        return self._select(RunRecord, "SELECT * FROM runs ORDER BY created_at, run_id", [], _RUN_JSON)

    def set_run_status(self, run_id: str, status: RunStatus, finished_at: datetime | None = None) -> None:
        _require_literal(status, RunStatus, "run status")
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
                [status, to_db_time(finished_at) if finished_at else None, run_id],
            ).fetchone()
            if not changed or not changed[0]:
                raise CatalogError(f"no run {run_id!r} in catalog {self._path}: add it with upsert_run first")

    # -- tasks ------------------------------------------------------------------------------------
    def add_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Insert tasks; a task id already present keeps its row (a resumed run re-adds its tasks)."""
        if not tasks:
            return
        rows = [encode(task) for task in tasks]
        with self._transaction() as conn:
            conn.executemany(
                insert_sql("tasks", list(rows[0]), "INSERT OR IGNORE"), [list(r.values()) for r in rows]
            )

    def tasks(self, run_id: str) -> list[TaskRecord]:
        return self._select(
            TaskRecord, "SELECT * FROM tasks WHERE run_id = ? ORDER BY position, task_id", [run_id]
        )

    def update_task(
        self, task_id: str, *, status: TaskStatus, rounds: int, reason: str | None, env_id: str | None = None
    ) -> None:
        _require_literal(status, TaskStatus, "task status")
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE tasks SET status = ?, rounds = ?, reason = ?, env_id = ?, updated_at = ? WHERE task_id = ?",
                [status, rounds, reason, env_id, to_db_time(utcnow()), task_id],
            ).fetchone()
            if not changed or not changed[0]:
                raise CatalogError(
                    f"no task {task_id!r} in catalog {self._path}: add it with add_tasks first"
                )

    # -- candidates -------------------------------------------------------------------------------
    def add_candidate(self, candidate: CandidateRecord) -> None:
        with self._transaction() as conn:
            self._insert(conn, "candidates", encode(candidate))

    def update_candidate(self, candidate: CandidateRecord) -> None:
        """Replace the candidate's row with these values (inserted if it is missing)."""
        with self._transaction() as conn:
            self._put_candidate(conn, candidate)

    def candidates(self, task_id: str) -> list[CandidateRecord]:
        return self._select(
            CandidateRecord,
            "SELECT * FROM candidates WHERE task_id = ? ORDER BY round, created_at",
            [task_id],
        )

    def candidate(self, candidate_id: str) -> CandidateRecord | None:
        found = self._select(
            CandidateRecord, "SELECT * FROM candidates WHERE candidate_id = ?", [candidate_id]
        )
        return found[0] if found else None

    def _put_candidate(self, conn: duckdb.DuckDBPyConnection, candidate: CandidateRecord) -> None:
        self._insert(conn, "candidates", encode(candidate), "INSERT OR REPLACE")

    def _put_task(self, conn: duckdb.DuckDBPyConnection, task: TaskRecord) -> None:
        self._insert(conn, "tasks", encode(task), "INSERT OR REPLACE")

    # -- check reports ----------------------------------------------------------------------------
    def add_check_report(self, candidate_id: str, report: CheckReport) -> None:
        """Store the report of the candidate's check run (replacing an earlier one): a summary row
        and one row per check, in the report's order."""
        summary = encode(report.model_copy(update={"checks": []}), ("samples",))
        summary.pop("checks")
        with self._transaction() as conn:
            conn.execute("DELETE FROM check_results WHERE candidate_id = ?", [candidate_id])
            self._insert(
                conn,
                "check_reports",
                {"candidate_id": candidate_id, **summary, "created_at": to_db_time(utcnow())},
                "INSERT OR REPLACE",
            )
            rows = []
            for position, result in enumerate(report.checks):
                row = encode(result, _RESULT_JSON)
                rows.append(
                    {"candidate_id": candidate_id, "position": position, "check_name": row.pop("name")} | row
                )
            if rows:
                conn.executemany(insert_sql("check_results", list(rows[0])), [list(r.values()) for r in rows])

    def check_report(self, candidate_id: str) -> CheckReport | None:
        with self._reading() as conn:
            cursor = conn.execute("SELECT * FROM check_reports WHERE candidate_id = ?", [candidate_id])
            columns = [d[0] for d in cursor.description]
            row = cursor.fetchone()
            if row is None:
                return None
            cursor = conn.execute(
                "SELECT check_name AS name, * EXCLUDE (check_name) FROM check_results "
                "WHERE candidate_id = ? ORDER BY position",
                [candidate_id],
            )
            result_columns = [d[0] for d in cursor.description]
            checks = [decode(CheckResult, result_columns, r, _RESULT_JSON) for r in cursor.fetchall()]
        data = {
            name: decode_value(value, is_json=name == "samples")
            for name, value in zip(columns, row, strict=True)
            if name in CheckReport.model_fields
        }
        return CheckReport.model_validate({**data, "checks": checks})

    # -- verdicts ---------------------------------------------------------------------------------
    def add_verdict(self, verdict: VerdictRecord) -> None:
        with self._transaction() as conn:
            self._insert(conn, "verdicts", encode(verdict, _VERDICT_JSON))

    def verdicts(self, candidate_id: str) -> list[VerdictRecord]:
        return self._select(
            VerdictRecord,
            "SELECT * FROM verdicts WHERE candidate_id = ? ORDER BY created_at, verdict_id",
            [candidate_id],
            _VERDICT_JSON,
        )

    # -- proposals and duplicates -------------------------------------------------------------------
    def add_proposals(self, proposals: Sequence[ProposalRecord]) -> None:
        """Store the ideas of one ``propose`` call together (kept and duplicate ones alike)."""
        if not proposals:
            return
        with self._transaction() as conn:
            rows = [encode(p) for p in proposals]
            conn.executemany(insert_sql("proposals", list(rows[0])), [list(r.values()) for r in rows])

    def proposals(self, run_id: str) -> list[ProposalRecord]:
        return self._select(
            ProposalRecord,
            "SELECT * FROM proposals WHERE run_id = ? ORDER BY created_at, proposal_id",
            [run_id],
        )

    def add_duplicate(self, duplicate: DuplicateRecord) -> None:
        with self._transaction() as conn:
            self._insert(conn, "duplicates", encode(duplicate, ("detail",)))

    def duplicates(self, run_id: str | None = None) -> list[DuplicateRecord]:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        return self._select(
            DuplicateRecord, f"SELECT * FROM duplicates {where} ORDER BY created_at", params, ("detail",)
        )

    # -- calibrations -----------------------------------------------------------------------------
    def add_calibration(self, calibration: CalibrationRecord, attempts: Sequence[SolverAttempt]) -> None:
        """Store a calibration with its raw attempts and set the environment's status, in one
        transaction: an environment's status always matches its latest calibration."""
        with self._transaction() as conn:
            self._put_calibration(conn, calibration, attempts)

    def _put_calibration(
        self,
        conn: duckdb.DuckDBPyConnection,
        calibration: CalibrationRecord,
        attempts: Sequence[SolverAttempt],
    ) -> None:
        self._insert(conn, "calibrations", encode(calibration, ("levels",)))
        if attempts:
            rows = [encode(a) for a in attempts]
            conn.executemany(insert_sql("solver_attempts", list(rows[0])), [list(r.values()) for r in rows])
        conn.execute(
            "UPDATE environments SET status = ? WHERE env_id = ?", [calibration.status, calibration.env_id]
        )

    def calibrations(self, env_id: str) -> list[CalibrationRecord]:
        """The environment's calibrations, oldest first."""
        return self._select(
            CalibrationRecord,
            "SELECT * FROM calibrations WHERE env_id = ? ORDER BY created_at, calibration_id",
            [env_id],
            ("levels",),
        )

    def solver_attempts(self, calibration_id: str) -> list[SolverAttempt]:
        return self._select(
            SolverAttempt,
            "SELECT * FROM solver_attempts WHERE calibration_id = ? ORDER BY difficulty, seed, attempt_id",
            [calibration_id],
        )

    def fingerprints(self) -> list[tuple[str, dict[str, Any]]]:
        """``(env_id, fingerprint)`` of every environment that has one (for duplicate detection)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT env_id, fingerprint FROM environments WHERE fingerprint IS NOT NULL ORDER BY created_at"
            ).fetchall()
        return [(env_id, decode_value(value, is_json=True)) for env_id, value in rows]

    # -- environments -----------------------------------------------------------------------------
    def accept(
        self,
        env: EnvironmentRecord,
        candidate: CandidateRecord,
        task: TaskRecord,
        calibration: tuple[CalibrationRecord, Sequence[SolverAttempt]] | None = None,
    ) -> str:
        """Record an acceptance in one transaction: the environment, the candidate's final row and
        the task's final row. The same code accepted again (same ``env_id``) keeps the first
        environment row; the candidate and task rows are written either way. Returns the env id."""
        with self._transaction() as conn:
            exists = conn.execute("SELECT 1 FROM environments WHERE env_id = ?", [env.env_id]).fetchone()
            if not exists:
                self._insert(conn, "environments", encode(env, queries.ENV_JSON_FIELDS))
            self._put_candidate(conn, candidate)
            self._put_task(conn, task)
            if calibration is not None:
                self._put_calibration(conn, *calibration)
        return env.env_id

    def list_environments(
        self,
        *,
        run_id: str | None = None,
        keyword: str | None = None,
        limit: int | None = None,
        status: str | None = None,
        sort: str = "created",
    ) -> list[queries.EnvironmentSummary]:
        with self._reading() as conn:
            return queries.list_environments(
                conn, run_id=run_id, keyword=keyword, limit=limit, status=status, sort=sort
            )

    def environment(self, env_id: str) -> EnvironmentRecord:
        """The environment with this id or unique id prefix; :class:`CatalogError` otherwise."""
        with self._reading() as conn:
            return queries.get_environment(conn, env_id, str(self._path))

    def environments(
        self, env_ids: Sequence[str] | None = None, *, status: str | None = "accepted"
    ) -> list[EnvironmentRecord]:
        """Whole environments: those of ``env_ids`` (ids or unique prefixes, any status), or
        every one with ``status`` (``None``: all) when no ids are given."""
        if env_ids is not None:
            return [self.environment(env_id) for env_id in env_ids]
        with self._reading() as conn:
            return queries.environments_with_status(conn, status)

    # -- reading at large -------------------------------------------------------------------------
    def sql(self, query: str, *, limit: int = queries.SQL_ROW_LIMIT) -> queries.SqlResult:
        """Run one read-only SQL statement (see :func:`resyn.catalog.queries.check_read_only`).

        It runs on a cursor of its own — a separate DuckDB connection — inside a transaction that
        is rolled back, so it neither sees nor disturbs a write in progress on this catalog.
        """
        with self._lock:
            cursor = self._live().cursor()
        try:
            return queries.run_sql(cursor, query, limit)
        finally:
            cursor.close()

    def stats(self, run_id: str | None = None, *, diversity: bool = False) -> queries.CatalogStats:
        """Aggregates of the catalog or one run; ``diversity`` adds families and pairwise
        similarity from a sample of fingerprints (tens of milliseconds more)."""
        with self._reading() as conn:
            return queries.compute_stats(conn, run_id, diversity=diversity)


# -- opening ----------------------------------------------------------------------------------------
_PID = re.compile(r"\(PID (\d+)\)")
_OPEN_FILE = re.compile(r'Cannot open file "[^"]*": (.+)$')


def _connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with DuckDB's open failures turned into one-line CatalogErrors."""
    label = str(path)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.ConnectionException as exc:
        if "different configuration" not in str(exc):
            raise CatalogError(f"cannot open catalog {label}: {first_line(exc)}") from None
        if read_only:
            # This process holds the catalog as the writer: DuckDB lets it share that instance
            # (one instance per file per process). The Catalog stays a reader all the same.
            return duckdb.connect(str(path))
        raise CatalogError(
            f"catalog {label} is open read-only in this process: close that Catalog before writing to it"
        ) from None
    except duckdb.Error as exc:
        message = first_line(exc)
        if "not a valid DuckDB database file" in message:
            raise not_a_catalog(label) from None
        if "Could not set lock" in message or "Conflicting lock" in message:
            match = _PID.search(str(exc))
            pid = f"pid {match.group(1)}" if match else "pid unknown"
            # DuckDB adds that read-only opening would work when the holder is itself a reader.
            holder = (
                "a `resyn catalog` command"
                if "read-only mode" in str(exc)
                else "a running `resyn synthesize`"
            )
            raise CatalogError(
                f"catalog {label} is in use by another process ({pid}, probably {holder}): "
                "wait for it to finish, or query a copy of the file"
            ) from None
        if read_only and "database does not exist" in message:
            raise _missing(label) from None
        opened = _OPEN_FILE.search(message)
        if opened and not read_only:
            raise _unwritable(label, opened.group(1)) from None
        if "version" in message.lower():
            raise CatalogError(
                f"catalog {label} was written by an incompatible DuckDB ({message}): upgrade resyn"
            ) from None
        raise CatalogError(f"cannot open catalog {label}: {message}") from None


def _missing(label: str) -> CatalogError:
    return CatalogError(
        f"no catalog at {label}: run `resyn synthesize` (or `resyn demo`) first, or pass --catalog"
    )


def _unwritable(label: str, reason: str) -> CatalogError:
    return CatalogError(
        f"cannot write catalog {label} ({reason.strip().lower()}): pass --catalog with a writable path"
    )


def _open_reader(path: Path) -> duckdb.DuckDBPyConnection:
    label = str(path)
    if not path.exists():
        raise _missing(label)
    if path.is_dir():
        raise not_a_catalog(label)
    conn = _connect(path, read_only=True)
    try:
        version = schema_version(conn)
        if version is None:
            raise not_a_catalog(label)
        check_version(version, label)
        if version < latest_version():
            raise CatalogError(
                f"catalog {label} has schema v{version}, older than this resyn's v{latest_version()}: "
                "open it once with a writing command (e.g. `resyn synthesize`) to upgrade it"
            )
    except BaseException:
        conn.close()
        raise
    return conn


def _open_writer(path: Path) -> duckdb.DuckDBPyConnection:
    label = str(path)
    if path.is_dir():
        raise CatalogError(f"{label} is a directory: pass --catalog with the path of a catalog file")
    created_dirs = _make_parents(path)
    existed = path.exists()
    try:
        conn = _connect(path, read_only=False)
    except BaseException:
        _remove_dirs(created_dirs)
        raise
    try:
        migrate(conn, label)
    except BaseException:
        conn.close()
        if not existed:
            # Nothing half-written: a catalog that never opened leaves no file behind.
            for leftover in (path, path.with_name(path.name + ".wal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            _remove_dirs(created_dirs)
        raise
    return conn


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parent directories; returns them, deepest first, for clean-up."""
    missing = []
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_dirs(missing)
        raise _unwritable(str(path), exc.strerror or type(exc).__name__) from None
    return missing


def _remove_dirs(dirs: list[Path]) -> None:
    for directory in dirs:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _require_literal(value: str, literal: Any, what: str) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
