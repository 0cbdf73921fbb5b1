"""The catalog: schema migrations, record round trips, atomic acceptance, every open failure as a
one-line error, read-only SQL, statistics, a 10,000-environment catalog, and a writer killed with
SIGKILL. Everything runs on DuckDB files in tmp_path; no network, no sandbox."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from resyn.catalog import (
    CandidateRecord,
    Catalog,
    CatalogError,
    EnvironmentRecord,
    Lineage,
    RunRecord,
    TaskRecord,
    VerdictRecord,
    default_catalog_path,
    env_id_for,
)
from resyn.catalog import migrations as migrations_module
from resyn.catalog.migrations import META_TABLE, MIGRATIONS, Migration, latest_version
from resyn.checks.report import CheckReport, CheckResult, Evidence
from resyn.errors import ResynError
from resyn.llm.models import CallRecord
from resyn.llm.recording import Recorder
from resyn.sources import load_source

ROOT = Path(__file__).parents[1]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


# -- builders (also used by tests/test_cli_catalog.py) ----------------------------------------------
def make_run(run_id: str = "run-a", **kw: Any) -> RunRecord:
    return RunRecord(
        run_id=run_id, created_at=T0, config={"models": ["x/y"], "rounds": 3}, resyn_version="0.1.0", **kw
    )


def make_task(run_id: str, keyword: str, position: int, **kw: Any) -> TaskRecord:
    return TaskRecord(
        task_id=f"{run_id}:{keyword}", run_id=run_id, keyword=keyword, position=position, updated_at=T0, **kw
    )


def make_candidate(task: TaskRecord, round_: int, code: str | None = "x = 1\n", **kw: Any) -> CandidateRecord:
    sha = hashlib.sha256(code.encode()).hexdigest() if code is not None else None
    return CandidateRecord(
        candidate_id=f"{task.task_id}#{round_}",
        task_id=task.task_id,
        run_id=task.run_id,
        keyword=task.keyword,
        round=round_,
        parent_id=f"{task.task_id}#{round_ - 1}" if round_ > 1 else None,
        code=code,
        code_sha256=sha,
        extracted=code is not None,
        created_at=T0 + timedelta(minutes=round_),
        **kw,
    )


def make_call(
    template: str = "write",
    *,
    cost: float | None = 0.01,
    tokens: tuple[int, int] = (100, 200),
    error: str | None = None,
    **tags: str,
) -> CallRecord:
    return CallRecord(
        started_at=T0,
        template=template,
        prompt_sha256="p" * 64,
        requested_model="openai/gpt-test",
        resolved_model="gpt-test-2025",
        purpose="writer" if template != "judge" else "judge",
        tokens_in=tokens[0],
        tokens_out=tokens[1],
        latency_s=2.5,
        finish_reason="stop",
        raw_finish_reason="stop",
        cost_usd=cost,
        attempts=1,
        text="```python\nx = 1\n```",
        error=error,
        error_type="StructuredOutputError" if error else None,
        tags=dict(tags),
        request={"messages": [{"role": "user", "content": "write an environment"}], "max_tokens": 1000},
        response={"id": "resp-1", "choices": [{"message": {"content": "…"}}]},
    )


def make_report(*, accepted: bool, failing: tuple[str, ...] = ()) -> CheckReport:
    checks = [
        CheckResult(name="syntax", status="pass", summary="parses"),
        CheckResult(
            name="difficulty",
            status="pass",
            summary="levels differ",
            metrics={"largest_relative_change": float("inf"), "question_length_level_1": 41.5},
        ),
    ] + [
        CheckResult(
            name=name,
            status="fail",
            summary=f"{name} failed",
            metrics={"rate": 0.75},
            evidence=[
                Evidence(
                    detail="accepted junk",
                    seed=3,
                    difficulty=2,
                    question="Q?",
                    answer="0",
                    score=1.0,
                    line=12,
                )
            ],
        )
        for name in failing
    ]
    return CheckReport(
        label="candidate.py",
        code_sha256="c" * 64,
        env_name="graph_coloring",
        description="Colour a graph.\n\nWith k colours.",
        max_difficulty=5,
        has_solution=True,
        isolation="bwrap-root",
        accepted=accepted,
        seconds=12.25,
        checks=checks,
    )


def make_environment(
    candidate: CandidateRecord, name: str, *, call_ids: list[str] | None = None, hours: int = 1
) -> EnvironmentRecord:
    assert candidate.code is not None and candidate.code_sha256 is not None
    return EnvironmentRecord(
        env_id=env_id_for(name, candidate.code_sha256),
        name=name,
        keyword=candidate.keyword,
        description=f"{name.replace('_', ' ').capitalize()} puzzles.\nSecond line.",
        code=candidate.code,
        code_sha256=candidate.code_sha256,
        max_difficulty=5,
        has_solution=True,
        run_id=candidate.run_id,
        task_id=candidate.task_id,
        candidate_id=candidate.candidate_id,
        check_metrics={"difficulty": {"largest_relative_change": 2.5}},
        judge_scores={"correctness": 5, "difficulty": 4},
        lineage=Lineage(
            candidate_ids=[f"{candidate.task_id}#{r}" for r in range(1, candidate.round + 1)],
            call_ids=call_ids or [],
        ),
        created_at=T0 + timedelta(hours=hours),
    )


def accept_round(
    catalog: Catalog, task: TaskRecord, candidate: CandidateRecord, name: str, hours: int = 1
) -> str:
    """Record ``candidate`` as accepted the way the synthesis loop does."""
    env = make_environment(candidate, name, hours=hours)
    done = candidate.model_copy(
        update={
            "outcome": "accepted",
            "passed_static": True,
            "passed_checks": True,
            "passed_judge": True,
            "reason": "accepted",
        }
    )
    final = task.model_copy(update={"status": "accepted", "rounds": candidate.round, "env_id": env.env_id})
    return catalog.accept(env, done, final)


def build_small_catalog(path: Path, code_for: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Two runs: run-a with 3 keywords (accepted in round 2, rejected after 2 rounds, judge error),
    run-b with 1 keyword accepted in round 1. ``code_for`` maps keyword → (env name, code)."""
    code_for = code_for or {}
    ids: dict[str, Any] = {}
    with Catalog.open(path) as catalog:
        catalog.upsert_run(make_run("run-a", status="finished", finished_at=T0 + timedelta(hours=2)))
        catalog.upsert_run(make_run("run-b"))
        tasks = [make_task("run-a", kw, i) for i, kw in enumerate(["graph coloring", "sudoku", "anagrams"])]
        tasks.append(make_task("run-b", "graph coloring", 0))
        catalog.add_tasks(tasks)
        coloring, sudoku, anagrams, coloring_b = tasks

        # graph coloring: round 1 fails two checks, round 2 accepted.
        c1 = make_candidate(coloring, 1, "bad = 1\n")
        catalog.add_candidate(c1)
        catalog.record(
            make_call(
                call_id="call-1", run_id="run-a", task_id=coloring.task_id, candidate_id=c1.candidate_id
            )
        )
        catalog.add_check_report(c1.candidate_id, make_report(accepted=False, failing=("junk", "shotgun")))
        catalog.update_candidate(
            c1.model_copy(
                update={"passed_static": True, "outcome": "checks_failed", "reason": "junk: accepted junk"}
            )
        )
        name, code = code_for.get("graph coloring", ("graph_coloring", "good = 2\n"))
        c2 = make_candidate(coloring, 2, code)
        catalog.add_candidate(c2)
        catalog.record(
            make_call(
                "revise",
                call_id="call-2",
                run_id="run-a",
                task_id=coloring.task_id,
                candidate_id=c2.candidate_id,
            )
        )
        catalog.add_check_report(c2.candidate_id, make_report(accepted=True))
        catalog.record(
            make_call(
                "judge",
                cost=None,
                call_id="call-3",
                run_id="run-a",
                task_id=coloring.task_id,
                candidate_id=c2.candidate_id,
            )
        )
        catalog.add_verdict(
            VerdictRecord(
                verdict_id="v-1",
                candidate_id=c2.candidate_id,
                call_id="call-3",
                accept=True,
                scores={"correctness": 5},
                created_at=T0,
            )
        )
        ids["coloring"] = accept_round(catalog, coloring, c2, name)

        # sudoku: no code extracted, then junk fails again; rejected.
        s1 = make_candidate(sudoku, 1, None)
        catalog.add_candidate(s1.model_copy(update={"outcome": "no_code", "reason": "no code block"}))
        catalog.record(
            make_call(call_id="call-4", run_id="run-a", task_id=sudoku.task_id, candidate_id=s1.candidate_id)
        )
        s2 = make_candidate(sudoku, 2, "s = 2\n", passed_static=True, outcome="checks_failed", reason="junk")
        catalog.add_candidate(s2)
        catalog.add_check_report(s2.candidate_id, make_report(accepted=False, failing=("junk",)))
        catalog.update_task(sudoku.task_id, status="rejected", rounds=2, reason="junk: accepted junk")

        # anagrams: passes checks, the judge fails twice; the task errors.
        a1 = make_candidate(
            anagrams,
            1,
            "a = 1\n",
            passed_static=True,
            passed_checks=True,
            outcome="judge_error",
            reason="judge: malformed",
        )
        catalog.add_candidate(a1)
        catalog.add_check_report(a1.candidate_id, make_report(accepted=True))
        catalog.record(
            make_call(
                "judge",
                error="malformed",
                call_id="call-5",
                run_id="run-a",
                task_id=anagrams.task_id,
                candidate_id=a1.candidate_id,
            )
        )
        catalog.add_verdict(
            VerdictRecord(
                verdict_id="v-2",
                candidate_id=a1.candidate_id,
                call_id="call-5",
                accept=None,
                error="malformed twice",
            )
        )
        catalog.update_task(anagrams.task_id, status="error", rounds=1, reason="judge: malformed")

        # run-b: accepted in round 1 (another module, so another env id).
        b1 = make_candidate(coloring_b, 1, "other = 3\n")
        catalog.add_candidate(b1)
        catalog.record(
            make_call(
                call_id="call-6",
                cost=0.04,
                run_id="run-b",
                task_id=coloring_b.task_id,
                candidate_id=b1.candidate_id,
            )
        )
        ids["coloring_b"] = accept_round(catalog, coloring_b, b1, "graph_coloring", hours=2)
        # A call without run tags (e.g. a model probe): counted only catalog-wide.
        catalog.record(make_call("probe", cost=0.5))
    ids["tasks"] = tasks
    return ids


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.duckdb"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The catalog of :func:`build_small_catalog`, built once for the tests that only read it."""
    path = tmp_path_factory.mktemp("small") / "catalog.duckdb"
    return path, build_small_catalog(path)


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# -- migrations -------------------------------------------------------------------------------------
def test_a_new_catalog_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "catalog.duckdb"
    with Catalog.open(path) as catalog:
        assert catalog.schema_version == latest_version() == MIGRATIONS[-1].version
    for _ in range(2):  # reopening applies nothing
        with Catalog.open(path) as catalog:
            rows = catalog.sql(f"SELECT version, description FROM {META_TABLE} ORDER BY version").rows
            assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    conn = duckdb.connect(str(path))
    try:
        assert migrations_module.migrate(conn, str(path)) == 0
    finally:
        conn.close()


def test_the_schema_has_a_column_for_every_record_field(catalog_path: Path) -> None:
    expected = {
        "runs": RunRecord,
        "tasks": TaskRecord,
        "candidates": CandidateRecord,
        "verdicts": VerdictRecord,
        "environments": EnvironmentRecord,
        "llm_calls": CallRecord,
    }
    with Catalog.open(catalog_path) as catalog:
        for table, model in expected.items():
            columns = {r[0] for r in catalog.sql(f"DESCRIBE {table}").rows}
            assert set(model.model_fields) <= columns, (table, set(model.model_fields) - columns)
        report_columns = {r[0] for r in catalog.sql("DESCRIBE check_reports").rows}
        assert set(CheckReport.model_fields) - {"checks"} <= report_columns


def test_a_pending_migration_is_applied_on_open(catalog_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Catalog.open(catalog_path).close()
    extra = Migration(
        version=latest_version() + 1,
        description="a note column",
        statements=("ALTER TABLE runs ADD COLUMN note VARCHAR",),
    )
    monkeypatch.setattr(migrations_module, "MIGRATIONS", (*MIGRATIONS, extra))
    with pytest.raises(CatalogError, match="older than this resyn"):
        Catalog.open(catalog_path, read_only=True)  # readers never migrate
    with Catalog.open(catalog_path) as catalog:
        assert catalog.schema_version == extra.version
        assert "note" in {r[0] for r in catalog.sql("DESCRIBE runs").rows}


def test_a_failed_migration_changes_nothing(catalog_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Catalog.open(catalog_path).close()
    broken = Migration(
        version=latest_version() + 1,
        description="broken",
        statements=("CREATE TABLE half_done (x INTEGER)", "CREATE TABLE runs (x INTEGER)"),
    )
    monkeypatch.setattr(migrations_module, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(CatalogError, match="cannot upgrade catalog") as exc:
        Catalog.open(catalog_path)
    _one_line(exc)
    monkeypatch.undo()
    with Catalog.open(catalog_path, read_only=True) as catalog:
        assert catalog.schema_version == latest_version()
        tables = {r[0] for r in catalog.sql("SHOW TABLES").rows}
        assert "half_done" not in tables and "runs" in tables


def test_a_failed_first_open_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Migration(
        version=1, description="broken", statements=("CREATE TABLE t (x INTEGER)", "SELEC oops")
    )
    monkeypatch.setattr(migrations_module, "MIGRATIONS", (broken,))
    path = tmp_path / "new" / "dir" / "catalog.duckdb"
    with pytest.raises(CatalogError):
        Catalog.open(path)
    assert not (tmp_path / "new").exists()


# -- round trips ------------------------------------------------------------------------------------
def test_runs_and_tasks_round_trip(catalog_path: Path) -> None:
    with Catalog.open(catalog_path) as catalog:
        run = make_run()
        catalog.upsert_run(run)
        assert catalog.get_run("run-a") == run
        assert catalog.get_run("nope") is None
        catalog.set_run_status("run-a", "finished", finished_at=T0 + timedelta(hours=1))
        assert catalog.get_run("run-a") == run.model_copy(
            update={"status": "finished", "finished_at": T0 + timedelta(hours=1)}
        )
        with pytest.raises(CatalogError, match="no run"):
            catalog.set_run_status("nope", "failed")

        tasks = [make_task("run-a", kw, i) for i, kw in enumerate(["b", "a", "c"])]
        catalog.add_tasks(list(reversed(tasks)))
        assert catalog.tasks("run-a") == tasks  # ordered by position
        catalog.update_task(tasks[0].task_id, status="rejected", rounds=3, reason="junk")
        catalog.add_tasks([tasks[0]])  # a resumed run re-adds its tasks: existing rows are kept
        updated = catalog.tasks("run-a")[0]
        assert (updated.status, updated.rounds, updated.reason) == ("rejected", 3, "junk")
        assert updated.updated_at > tasks[0].updated_at
        with pytest.raises(CatalogError, match="no task"):
            catalog.update_task("nope", status="error", rounds=1, reason=None)


def test_candidates_reports_verdicts_and_calls_round_trip(catalog_path: Path) -> None:
    with Catalog.open(catalog_path) as catalog:
        task = make_task("run-a", "graph coloring", 0)
        catalog.add_tasks([task])
        second, first = (
            make_candidate(task, 2, "two = 2\n"),
            make_candidate(task, 1, None, feedback="no code"),
        )
        catalog.add_candidate(second)
        catalog.add_candidate(first)
        assert catalog.candidates(task.task_id) == [first, second]
        finished = second.model_copy(
            update={"outcome": "checks_failed", "reason": "junk", "passed_static": True, "finished_at": T0}
        )
        catalog.update_candidate(finished)
        assert catalog.candidates(task.task_id) == [first, finished]
        with pytest.raises(CatalogError, match="cannot write catalog"):
            catalog.add_candidate(first)  # a duplicate id is a bug, reported in one line

        report = make_report(accepted=False, failing=("junk",))
        catalog.add_check_report(second.candidate_id, report)
        assert catalog.check_report(second.candidate_id) == report
        rerun = make_report(accepted=True)
        catalog.add_check_report(second.candidate_id, rerun)  # replaces, no stale check rows
        assert catalog.check_report(second.candidate_id) == rerun
        assert catalog.check_report("nope") is None

        verdicts = [
            VerdictRecord(
                verdict_id="v1",
                candidate_id=second.candidate_id,
                call_id="c1",
                accept=None,
                error="malformed",
                created_at=T0,
            ),
            VerdictRecord(
                verdict_id="v2",
                candidate_id=second.candidate_id,
                call_id="c2",
                accept=True,
                feedback="fine",
                scores={"clarity": 4},
                created_at=T0 + timedelta(seconds=1),
            ),
        ]
        for verdict in reversed(verdicts):
            catalog.add_verdict(verdict)
        assert catalog.verdicts(second.candidate_id) == verdicts

        tagged = make_call(
            call_id="call-x", run_id="run-a", task_id=task.task_id, candidate_id=second.candidate_id
        )
        untagged = make_call("probe", cost=None, tokens=(0, 0))
        assert isinstance(catalog, Recorder)
        catalog.record(tagged)
        catalog.record(untagged)
        catalog.record(tagged)  # the same call id again: kept under a new id, never lost
        stored = catalog.calls(task_id=task.task_id)
        assert [s.call for s in stored] == [tagged, tagged]
        assert stored[0].call_id == "call-x" or stored[1].call_id == "call-x"
        assert {s.candidate_id for s in stored} == {second.candidate_id} and stored[0].run_id == "run-a"
        assert len(catalog.calls()) == 3 and len(catalog.call_ids(task_id=task.task_id)) == 2
        assert [s.call for s in catalog.calls(call_ids=["call-x"])] == [tagged]
        probe = next(s for s in catalog.calls() if s.call.template == "probe")
        assert probe.call == untagged and probe.run_id is None and len(probe.call_id) == 32


def test_record_never_raises(catalog_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    Catalog.open(catalog_path).close()
    with Catalog.open(catalog_path, read_only=True) as reader:
        reader.record(make_call())  # a reader cannot write: logged, not raised
    closed = Catalog.open(catalog_path)
    closed.close()
    closed.record(make_call())
    assert caplog.text.count("could not record") == 2


def test_record_from_many_threads(catalog_path: Path) -> None:
    with Catalog.open(catalog_path) as catalog:

        def worker(n: int) -> None:
            for i in range(10):
                catalog.record(make_call(call_id=f"t{n}-{i}", run_id="run-a"))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(catalog.call_ids(run_id="run-a")) == 60


# -- accept -----------------------------------------------------------------------------------------
def test_accept_writes_environment_candidate_and_task_together(catalog_path: Path) -> None:
    with Catalog.open(catalog_path) as catalog:
        task = make_task("run-a", "graph coloring", 0)
        catalog.add_tasks([task])
        candidate = make_candidate(task, 1, "code = 1\n")
        catalog.add_candidate(candidate)
        env_id = accept_round(catalog, task, candidate, "graph_coloring")
        env = catalog.environment(env_id)
        assert env == make_environment(candidate, "graph_coloring")
        assert catalog.environment(env_id[:-3]) == env  # a unique prefix is enough
        assert catalog.tasks("run-a")[0].status == "accepted" and catalog.tasks("run-a")[0].env_id == env_id
        assert catalog.candidates(task.task_id)[0].outcome == "accepted"


def test_accept_is_atomic(catalog_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Catalog.open(catalog_path) as catalog:
        task = make_task("run-a", "graph coloring", 0)
        catalog.add_tasks([task])
        candidate = make_candidate(task, 1, "code = 1\n")
        catalog.add_candidate(candidate)

        def crash(*args: Any) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(catalog, "_put_task", crash)  # fails after the environment and candidate
        with pytest.raises(RuntimeError, match="disk on fire"):
            accept_round(catalog, task, candidate, "graph_coloring")
        monkeypatch.undo()
        assert catalog.list_environments() == []
        assert catalog.candidates(task.task_id) == [candidate]
        assert catalog.tasks("run-a") == [task]
        # and the catalog still works afterwards (no transaction left open)
        env_id = accept_round(catalog, task, candidate, "graph_coloring")
        assert [e.env_id for e in catalog.list_environments()] == [env_id]


def test_accepting_the_same_code_again_keeps_the_first_environment(catalog_path: Path) -> None:
    with Catalog.open(catalog_path) as catalog:
        first_task, second_task = make_task("run-a", "colouring", 0), make_task("run-b", "coloring", 0)
        catalog.add_tasks([first_task, second_task])
        first, second = (
            make_candidate(first_task, 1, "same = 1\n"),
            make_candidate(second_task, 2, "same = 1\n"),
        )
        env_id = accept_round(catalog, first_task, first, "graph_coloring")
        assert accept_round(catalog, second_task, second, "graph_coloring") == env_id
        assert [e.env_id for e in catalog.list_environments()] == [env_id]
        assert catalog.environment(env_id).task_id == first_task.task_id
        again = catalog.tasks("run-b")[0]
        assert again.status == "accepted" and again.env_id == env_id and again.rounds == 2
        assert catalog.candidates(second_task.task_id)[0].outcome == "accepted"


def test_unknown_and_ambiguous_environment_ids(small: tuple[Path, dict[str, Any]]) -> None:
    catalog_path, _ = small
    with Catalog.open(catalog_path, read_only=True) as catalog:
        ids = sorted(e.env_id for e in catalog.list_environments())
        with pytest.raises(CatalogError, match="several environment ids") as exc:
            catalog.environment("graph_coloring-")
        _one_line(exc)
        typo = ids[0].replace("graph_coloring", "graph_colouring")
        with pytest.raises(CatalogError, match=f"did you mean '{ids[0]}'") as exc:
            catalog.environment(typo)
        assert "resyn catalog list" in _one_line(exc)
        with pytest.raises(CatalogError, match="no environment"):
            catalog.environment("")


# -- open failures ----------------------------------------------------------------------------------
def test_a_text_file_is_not_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 100)
    for read_only in (False, True):
        with pytest.raises(CatalogError, match="is not a resyn catalog: pass --catalog") as exc:
            Catalog.open(path, read_only=read_only)
        _one_line(exc)
    assert path.read_text() == "hello\n" * 100


def test_another_duckdb_database_is_not_a_catalog(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE sales (amount INTEGER)")
    conn.close()
    for read_only in (False, True):
        with pytest.raises(CatalogError, match="is not a resyn catalog"):
            Catalog.open(path, read_only=read_only)
    conn = duckdb.connect(str(path), read_only=True)
    assert [r[0] for r in conn.execute("SHOW TABLES").fetchall()] == ["sales"]  # untouched
    conn.close()
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(CatalogError, match="is not a resyn catalog"):
        Catalog.open(empty, read_only=True)
    Catalog.open(empty).close()  # an empty DuckDB database can become a catalog


def test_a_newer_schema_is_refused(catalog_path: Path) -> None:
    Catalog.open(catalog_path).close()
    conn = duckdb.connect(str(catalog_path))
    conn.execute(f"INSERT INTO {META_TABLE} VALUES (99, 'from the future', now()::TIMESTAMP, '9.9')")
    conn.close()
    for read_only in (False, True):
        with pytest.raises(CatalogError) as exc:
            Catalog.open(catalog_path, read_only=read_only)
        assert _one_line(exc) == (
            f"catalog {catalog_path} was written by a newer resyn (schema v99, this resyn knows "
            f"v{latest_version()}): upgrade resyn"
        )


def test_a_catalog_held_by_another_process(catalog_path: Path) -> None:
    Catalog.open(catalog_path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom resyn.catalog import Catalog\n"
            "c = Catalog.open(sys.argv[1])\nprint('open', flush=True)\ntime.sleep(120)",
            str(catalog_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for read_only in (False, True):
            with pytest.raises(CatalogError) as exc:
                Catalog.open(catalog_path, read_only=read_only)
            assert _one_line(exc) == (
                f"catalog {catalog_path} is in use by another process (pid {holder.pid}, probably a running "
                "`resyn synthesize`): wait for it to finish, or query a copy of the file"
            )
    finally:
        holder.kill()
        holder.wait()
    Catalog.open(catalog_path, read_only=True).close()  # the lock died with its holder


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_an_unwritable_location(tmp_path: Path, where: str) -> None:
    # Tests run as root, for whom chmod does not forbid anything: a path below a regular file, or
    # in /proc, cannot be created by anyone.
    if where == "under_a_file":
        (tmp_path / "file.txt").write_text("x")
        path = tmp_path / "file.txt" / "sub" / "catalog.duckdb"
    else:
        path = Path("/proc/resyn-no-such-dir/catalog.duckdb")
    with pytest.raises(CatalogError) as exc:
        Catalog.open(path)
    message = _one_line(exc)
    assert message.startswith(f"cannot write catalog {path} (") and message.endswith(
        "): pass --catalog with a writable path"
    )
    direct = Path("/proc/catalog.duckdb") if where == "proc" else tmp_path / "file.txt" / "catalog.duckdb"
    with pytest.raises(CatalogError, match=r"^cannot write catalog .*: pass --catalog with a writable path$"):
        Catalog.open(direct)


def test_readers_need_an_existing_catalog(tmp_path: Path) -> None:
    path = tmp_path / "missing.duckdb"
    with pytest.raises(CatalogError) as exc:
        Catalog.open(path, read_only=True)
    assert (
        _one_line(exc)
        == f"no catalog at {path}: run `resyn synthesize` (or `resyn demo`) first, or pass --catalog"
    )
    assert not path.exists()
    with pytest.raises(CatalogError, match="is not a resyn catalog"):
        Catalog.open(tmp_path, read_only=True)
    with pytest.raises(CatalogError, match="is a directory"):
        Catalog.open(tmp_path)
    assert issubclass(CatalogError, ResynError)


def test_a_reader_never_writes(small: tuple[Path, dict[str, Any]]) -> None:
    catalog_path, _ = small
    before = catalog_path.read_bytes()
    with Catalog.open(catalog_path, read_only=True) as catalog:
        assert catalog.read_only
        with pytest.raises(CatalogError, match="open read-only"):
            catalog.upsert_run(make_run("run-c"))
        catalog.list_environments()
        catalog.stats()
    assert catalog_path.read_bytes() == before
    with pytest.raises(CatalogError, match="is closed"):
        catalog.stats()


def test_a_reader_beside_this_process_s_writer(catalog_path: Path) -> None:
    # DuckDB keeps one database instance per file and process: a reader opened while this process
    # writes shares it, and still cannot write.
    with Catalog.open(catalog_path) as writer, Catalog.open(catalog_path, read_only=True) as reader:
        writer.upsert_run(make_run())
        assert reader.get_run("run-a") == make_run()
        with pytest.raises(CatalogError, match="open read-only"):
            reader.upsert_run(make_run("run-b"))
        with pytest.raises(CatalogError, match="DELETE statements are not allowed"):
            reader.sql("DELETE FROM runs")
        assert reader.sql("SELECT count(*) FROM runs").rows == [[1]]


def test_a_catalog_read_by_another_process(catalog_path: Path) -> None:
    Catalog.open(catalog_path).close()
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom resyn.catalog import Catalog\n"
            "c = Catalog.open(sys.argv[1], read_only=True)\nprint('open', flush=True)\ntime.sleep(120)",
            str(catalog_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        with pytest.raises(
            CatalogError, match=rf"in use by another process \(pid {reader.pid}, probably a `resyn catalog`"
        ):
            Catalog.open(catalog_path)
        with Catalog.open(catalog_path, read_only=True) as catalog:  # readers share the file
            assert catalog.stats().runs == 0
    finally:
        reader.kill()
        reader.wait()


def test_default_catalog_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RESYN_CATALOG", raising=False)
    assert default_catalog_path() == Path("runs/catalog.duckdb")
    monkeypatch.setenv("RESYN_CATALOG", str(tmp_path / "x.duckdb"))
    assert default_catalog_path() == tmp_path / "x.duckdb"


# -- SQL --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("INSERT INTO runs SELECT * FROM runs", "INSERT statements are not allowed"),
        ("DROP TABLE environments", "DROP statements are not allowed"),
        ("DELETE FROM environments", "DELETE statements are not allowed"),
        ("UPDATE tasks SET status = 'accepted'", "UPDATE statements are not allowed"),
        ("COPY environments TO '/tmp/resyn-leak.csv'", "COPY statements are not allowed"),
        ("ATTACH '/tmp/resyn-other.duckdb' AS other", "ATTACH statements are not allowed"),
        ("PRAGMA database_size", "PRAGMA statements are not allowed"),
        ("CHECKPOINT", "CALL statements are not allowed"),
        ("CREATE TABLE t AS SELECT 1", "CREATE statements are not allowed"),
        ("EXPLAIN ANALYZE DELETE FROM environments", "DELETE statements are not allowed"),
        ("SELECT 1; DROP TABLE runs", "2 statements given"),
        ("SELECT 1; SELECT 2", "2 statements given"),
        ("   ", "the query is empty"),
        ("SELEC * FROM runs", 'SQL error: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT nope FROM runs", 'Referenced column "nope" not found'),
        ("SELECT * FROM environment", 'Did you mean "environments"'),
    ],
)
def test_sql_is_read_only_and_errors_are_one_line(
    small: tuple[Path, dict[str, Any]], query: str, fragment: str
) -> None:
    catalog_path, _ = small
    for read_only in (True, False):
        with Catalog.open(catalog_path, read_only=read_only) as catalog:
            with pytest.raises(CatalogError) as exc:
                catalog.sql(query)
            message = _one_line(exc)
            assert message.startswith("SQL error: ") and fragment in message, message
    with Catalog.open(catalog_path, read_only=True) as catalog:
        counts = catalog.sql("SELECT (SELECT count(*) FROM environments), (SELECT count(*) FROM runs)").rows
        assert counts == [[2, 2]]
    assert not Path("/tmp/resyn-leak.csv").exists()


def test_sql_reads(catalog_path: Path) -> None:
    build_small_catalog(catalog_path)
    with Catalog.open(catalog_path) as catalog:
        result = catalog.sql(
            "WITH e AS (SELECT * FROM environments) SELECT run_id, count(*) AS n FROM e GROUP BY run_id ORDER BY run_id"
        )
        assert result.columns == ["run_id", "n"] and result.rows == [["run-a", 1], ["run-b", 1]]
        assert not result.truncated
        assert "env_id" in [r[0] for r in catalog.sql("DESCRIBE environments").rows]
        assert catalog.sql("EXPLAIN SELECT * FROM runs").rows
        assert catalog.sql("FROM runs SELECT created_at ORDER BY run_id").rows[0][0] == T0
        capped = catalog.sql("SELECT * FROM range(50)", limit=20)
        assert len(capped.rows) == 20 and capped.truncated
        # a query on the writer's own connection does not disturb a later write
        catalog.upsert_run(make_run("run-c"))
        assert catalog.sql("SELECT count(*) FROM runs").rows == [[3]]


# -- stats ------------------------------------------------------------------------------------------
def test_stats_of_a_small_catalog(small: tuple[Path, dict[str, Any]]) -> None:
    catalog_path, _ = small
    with Catalog.open(catalog_path, read_only=True) as catalog:
        whole = catalog.stats()
        run_a = catalog.stats("run-a")
    assert whole.runs == 2 and whole.environments == 2
    assert whole.tasks == {"accepted": 2, "error": 1, "rejected": 1}
    assert whole.funnel.model_dump() == {
        "written": 6,
        "extracted": 5,
        "passed_static": 5,
        "passed_checks": 3,
        "passed_judge": 2,
        "accepted": 2,
    }
    assert whole.outcomes == {"accepted": 2, "checks_failed": 2, "judge_error": 1, "no_code": 1}
    assert whole.failed_checks == {"junk": 2, "shotgun": 1}
    assert (whole.judge_rejected, whole.judge_errors) == (0, 1)
    assert (whole.calls, whole.failed_calls, whole.calls_without_cost) == (7, 1, 1)
    assert (whole.tokens_in, whole.tokens_out) == (700, 1400)
    assert whole.cost_usd == pytest.approx(0.01 * 4 + 0.04 + 0.5)
    assert whole.cost_per_environment_usd == pytest.approx((0.01 * 4 + 0.04 + 0.5) / 2)
    assert whole.mean_rounds_to_acceptance == pytest.approx(1.5)

    assert run_a.run_id == "run-a" and run_a.runs == 1 and run_a.environments == 1
    assert run_a.tasks == {"accepted": 1, "error": 1, "rejected": 1}
    assert run_a.funnel.written == 5 and run_a.funnel.accepted == 1
    assert run_a.failed_checks == {"junk": 2, "shotgun": 1}
    assert (run_a.calls, run_a.calls_without_cost) == (5, 1)
    assert run_a.cost_usd == pytest.approx(0.04)
    assert run_a.cost_per_environment_usd == pytest.approx(0.04)
    assert run_a.mean_rounds_to_acceptance == 2


def test_stats_of_an_empty_catalog(catalog_path: Path) -> None:
    with Catalog.open(catalog_path) as catalog:
        stats = catalog.stats()
    assert stats.runs == 0 and stats.funnel.written == 0 and stats.cost_usd == 0
    assert stats.cost_per_environment_usd is None and stats.mean_rounds_to_acceptance is None


def test_listing_filters(small: tuple[Path, dict[str, Any]]) -> None:
    catalog_path, ids = small
    with Catalog.open(catalog_path, read_only=True) as catalog:
        everything = catalog.list_environments()
        assert [e.env_id for e in everything] == [ids["coloring"], ids["coloring_b"]]
        first = everything[0]
        assert (first.rounds, first.run_id, first.keyword, first.max_difficulty) == (
            2,
            "run-a",
            "graph coloring",
            5,
        )
        assert first.description == "Graph coloring puzzles."
        assert [e.env_id for e in catalog.list_environments(run_id="run-b")] == [ids["coloring_b"]]
        assert len(catalog.list_environments(keyword="COLOR")) == 2
        assert catalog.list_environments(keyword="sudoku") == []
        assert len(catalog.list_environments(limit=1)) == 1


# -- a large catalog --------------------------------------------------------------------------------
def _generate(path: Path, n: int) -> None:
    """``n`` environments with 3 rounds each, 20 check rows per candidate and 4 calls per task,
    written in bulk with SQL (the API writes one transaction per row, too slow for a test)."""
    Catalog.open(path).close()
    conn = duckdb.connect(str(path))
    try:
        conn.execute(
            "INSERT INTO runs SELECT 'run' || i, TIMESTAMP '2025-01-01', '{}', '0.1', 'finished', NULL FROM range(10) t(i)"
        )
        conn.execute(
            "INSERT INTO tasks SELECT 't' || i, 'run' || (i % 10), 'keyword ' || i, i, 'accepted', 3, NULL, "
            f"'env_' || i || '-' || lpad(printf('%x', i), 8, '0'), TIMESTAMP '2025-01-01', NULL FROM range({n}) t(i)"
        )
        conn.execute(
            "INSERT INTO candidates SELECT 'c' || i || '_' || r, 't' || i, 'run' || (i % 10), 'keyword ' || i, r, NULL, NULL, "
            "repeat('x', 2000), NULL, 'env_' || i, true, true, r = 3, r = 3, "
            "CASE WHEN r = 3 THEN 'accepted' ELSE 'checks_failed' END, 'why', NULL, TIMESTAMP '2025-01-01', NULL "
            f"FROM range({n}) t(i), range(1, 4) s(r)"
        )
        conn.execute(
            "INSERT INTO check_results SELECT 'c' || i || '_' || r, p, 'check' || p, "
            "CASE WHEN p = r THEN 'fail' ELSE 'pass' END, 'summary', '{\"a\": 1.0}', '[]' "
            f"FROM range({n}) t(i), range(1, 4) s(r), range(20) q(p)"
        )
        conn.execute(
            "INSERT INTO llm_calls SELECT 'call' || i || '_' || r, 'run' || (i % 10), 't' || i, NULL, TIMESTAMP '2025-01-01', "
            "'write', 'sha', 'openai/x', 'x', 'writer', 1000, 2000, 3.5, 'stop', 'stop', "
            "CASE WHEN r = 2 THEN NULL ELSE 0.01 END, 1, NULL, NULL, NULL, '{}', '{}', NULL "
            f"FROM range({n}) t(i), range(1, 5) s(r)"
        )
        conn.execute(
            "INSERT INTO environments SELECT 'env_' || i || '-' || lpad(printf('%x', i), 8, '0'), 'env_' || i, "
            "'keyword ' || i, 'Docstring.\nMore.', repeat('x', 2000), lpad(printf('%x', i), 64, '0'), 1 + i % 5, "
            "i % 2 = 0, 'run' || (i % 10), 't' || i, 'c' || i || '_3', '{\"gold\": {\"x\": 1.0}}', '{\"q\": 4}', "
            '\'{"candidate_ids": ["a", "b", "c"], "call_ids": []}\', TIMESTAMP \'2025-01-01\' + i * INTERVAL 1 SECOND, '
            "CASE WHEN i % 7 = 0 THEN 'too_easy' ELSE 'accepted' END, '[]', NULL "
            f"FROM range({n}) t(i)"
        )
    finally:
        conn.close()


def test_a_catalog_of_ten_thousand_environments(tmp_path: Path) -> None:
    path = tmp_path / "big.duckdb"
    _generate(path, 10_000)
    with Catalog.open(path, read_only=True) as catalog:
        listing = catalog.list_environments()
        assert len(listing) == 10_000 and listing[0].env_id == "env_0-00000000" and listing[-1].rounds == 3
        assert len(catalog.list_environments(run_id="run3")) == 1_000
        assert [e.env_id for e in catalog.list_environments(keyword="keyword 9999")] == ["env_9999-0000270f"]
        stats = catalog.stats()
        assert (
            stats.environments == 10_000
            and stats.funnel.written == 30_000
            and stats.funnel.accepted == 10_000
        )
        assert stats.failed_checks == {"check1": 10_000, "check2": 10_000, "check3": 10_000}
        assert stats.calls == 40_000 and stats.calls_without_cost == 10_000
        assert stats.cost_per_environment_usd == pytest.approx(0.03)
        assert catalog.stats("run3").environments == 1_000
        every = catalog.sql("SELECT * EXCLUDE (code) FROM environments")
        assert len(every.rows) == 10_000 and not every.truncated
        capped = catalog.sql("SELECT candidate_id FROM candidates")
        assert capped.truncated and len(capped.rows) == 10_000
        assert catalog.environment("env_5000-00001388").name == "env_5000"
        with pytest.raises(CatalogError, match="did you mean 'env_5000-00001388'"):
            catalog.environment("emv_5000-00001388")


# -- crash safety -----------------------------------------------------------------------------------
_WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from resyn.catalog import Catalog, CandidateRecord, EnvironmentRecord, Lineage, RunRecord, TaskRecord, env_id_for

    catalog = Catalog.open(sys.argv[1])
    catalog.upsert_run(RunRecord(run_id="crash", config={}, resyn_version="0"))
    i = 0
    while True:
        code = f"value = {i}\\n" * 200
        sha = hashlib.sha256(code.encode()).hexdigest()
        task = TaskRecord(task_id=f"t{i}", run_id="crash", keyword=f"kw {i}", position=i)
        catalog.add_tasks([task])
        candidate = CandidateRecord(candidate_id=f"c{i}", task_id=task.task_id, run_id="crash", keyword=task.keyword, round=1, code=code, code_sha256=sha)
        catalog.add_candidate(candidate)
        env = EnvironmentRecord(
            env_id=env_id_for(f"env_{i}", sha), name=f"env_{i}", keyword=task.keyword, description="d", code=code,
            code_sha256=sha, max_difficulty=3, has_solution=True, run_id="crash", task_id=task.task_id,
            candidate_id=candidate.candidate_id, check_metrics={"gold": {"n": float(i)}}, judge_scores={"q": 4},
            lineage=Lineage(candidate_ids=[candidate.candidate_id], call_ids=[]),
        )
        catalog.accept(env, candidate.model_copy(update={"outcome": "accepted"}), task.model_copy(update={"status": "accepted", "rounds": 1, "env_id": env.env_id}))
        print(i, env.env_id, flush=True)
        i += 1
    """
)


def test_a_writer_killed_with_sigkill_leaves_a_clean_catalog(catalog_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(catalog_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdout is not None
    reported: list[tuple[int, str]] = []
    deadline = time.monotonic() + 120
    try:
        while len(reported) < 12 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            index, env_id = line.split()
            reported.append((int(index), env_id))
    finally:
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    reported += [(int(i), e) for i, e in (line.split() for line in rest.splitlines() if line.strip())]
    assert len(reported) >= 12, "the writer did not get going"
    with Catalog.open(catalog_path) as catalog:  # replays the write-ahead log
        listed = {e.env_id for e in catalog.list_environments()}
        tasks = {t.task_id: t for t in catalog.tasks("crash")}
        for index, env_id in reported:
            assert env_id in listed
            env = catalog.environment(env_id)
            assert env.code == f"value = {index}\n" * 200
            assert env.check_metrics == {"gold": {"n": float(index)}}
            assert tasks[f"t{index}"].status == "accepted" and tasks[f"t{index}"].env_id == env_id
            assert catalog.candidates(f"t{index}")[0].outcome == "accepted"
        # an acceptance is all or nothing: no environment without its accepted task
        orphans = catalog.sql(
            "SELECT count(*) FROM environments e JOIN tasks t USING (task_id) WHERE t.status <> 'accepted'"
        )
        assert orphans.rows == [[0]]


# -- sources: catalog ids ---------------------------------------------------------------------------
def test_load_source_resolves_catalog_ids(
    small: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, ids = small
    env_id = ids["coloring"]
    source = load_source(env_id, path)
    assert (source.label, source.source, source.filename) == (env_id, "good = 2\n", "graph_coloring.py")
    assert load_source(f"catalog:{env_id[:-2]}", path).label == env_id  # a prefix after catalog:
    monkeypatch.setenv("RESYN_CATALOG", str(path))
    assert load_source(env_id).source == "good = 2\n"
    with pytest.raises(CatalogError, match="no environment 'graph_coloring-00000000'"):
        load_source("graph_coloring-00000000", path)
    with pytest.raises(CatalogError, match="no catalog at"):
        load_source(env_id, tmp_path / "none.duckdb")
    # a file of that name still wins over the catalog
    monkeypatch.chdir(tmp_path)
    Path(env_id).write_text("# a module\n")
    with pytest.raises(ResynError, match="not a Python file"):
        load_source(env_id, path)
