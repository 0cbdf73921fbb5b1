"""``resyn catalog list|show|sql|stats`` and catalog ids in ``resyn check``/``resyn sample``, run
as the real command against a catalog built through the API. The accepted environment's code is a
good fixture module: it runs only in the sandbox, never in this process."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.test_catalog import build_small_catalog
from tests.test_cli import assert_one_line_error

ROOT = Path(__file__).parents[1]
MODULE = FIXTURES / "good" / "sort_numbers.py"


def resyn(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "RESYN_CATALOG"} | {"COLUMNS": "200"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "resyn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=600,
    )


def env_name(module: Path) -> str:
    """The ``name`` class attribute of the module's environment, read from its syntax tree (the
    module is untrusted: it is never imported here)."""
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "name" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            return node.value.value
    raise AssertionError(f"no name in {module}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("cli") / "catalog.duckdb"
    ids = build_small_catalog(path, code_for={"graph coloring": (env_name(MODULE), MODULE.read_text())})
    return path, ids


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


# -- list -------------------------------------------------------------------------------------------
def test_list(built: tuple[Path, dict[str, Any]]) -> None:
    path, ids = built
    human = ok(resyn("catalog", "list", "--catalog", str(path)))
    assert ids["coloring"] in human and ids["coloring_b"] in human and "2 environments" in human
    assert "Sort a list of distinct integers" not in human  # the fixture's code is not the description
    listing = json.loads(ok(resyn("catalog", "list", "--json", "--catalog", str(path))))
    assert [e["env_id"] for e in listing] == [ids["coloring"], ids["coloring_b"]]
    assert (
        listing[0]["rounds"] == 2
        and listing[0]["run_id"] == "run-a"
        and listing[0]["keyword"] == "graph coloring"
    )
    only_b = json.loads(ok(resyn("catalog", "list", "--run", "run-b", "--json", "--catalog", str(path))))
    assert [e["env_id"] for e in only_b] == [ids["coloring_b"]]
    none = resyn("catalog", "list", "--keyword", "sudoku", "--catalog", str(path))
    assert ok(none) == "" and "no environments match" in none.stderr
    # RESYN_CATALOG stands in for --catalog
    assert ids["coloring"] in ok(resyn("catalog", "list", env={"RESYN_CATALOG": str(path)}))


# -- show -------------------------------------------------------------------------------------------
def test_show(built: tuple[Path, dict[str, Any]]) -> None:
    path, ids = built
    env_id = ids["coloring"]
    human = ok(resyn("catalog", "show", env_id[:-3], "--catalog", str(path)))  # a unique prefix
    for fragment in (
        env_id,
        "keyword: graph coloring",
        "levels: 1..5",
        "run: run-a",
        "correctness 5",
        "largest_relative_change=2.5",
        "run-a:graph coloring#1",
        "checks_failed",
        "junk: accepted junk",
        "revise",
        "gpt-test-2025",
        "$0.0100",
        "100/200",
    ):
        assert fragment in human, fragment
    assert "class SortNumbers" not in human
    assert "class SortNumbers(Environment):" in ok(
        resyn("catalog", "show", env_id, "--code", "--catalog", str(path))
    )

    document = json.loads(ok(resyn("catalog", "show", env_id, "--json", "--catalog", str(path))))
    assert document["environment"]["env_id"] == env_id and "code" not in document["environment"]
    assert [r["outcome"] for r in document["rounds"]] == ["checks_failed", "accepted"]
    assert [c["template"] for c in document["calls"]] == ["write", "revise", "judge"]
    assert document["calls"][2]["cost_usd"] is None
    with_code = json.loads(ok(resyn("catalog", "show", env_id, "--json", "--code", "--catalog", str(path))))
    assert with_code["environment"]["code"] == MODULE.read_text()


# -- sql --------------------------------------------------------------------------------------------
def test_sql(built: tuple[Path, dict[str, Any]]) -> None:
    path, _ = built
    query = "SELECT keyword, status, rounds FROM tasks WHERE run_id = 'run-a' ORDER BY position"
    human = ok(resyn("catalog", "sql", query, "--catalog", str(path)))
    assert "graph coloring" in human and "rejected" in human and "3 rows" in human
    document = json.loads(ok(resyn("catalog", "sql", query, "--json", "--catalog", str(path))))
    assert document["columns"] == ["keyword", "status", "rounds"]
    assert document["rows"] == [
        ["graph coloring", "accepted", 2],
        ["sudoku", "rejected", 2],
        ["anagrams", "error", 1],
    ]
    assert document["truncated"] is False
    stamped = json.loads(
        ok(
            resyn(
                "catalog",
                "sql",
                "SELECT created_at FROM runs ORDER BY run_id",
                "--json",
                "--catalog",
                str(path),
            )
        )
    )
    assert stamped["rows"][0] == ["2025-03-01T12:00:00.123456+00:00"]


# -- stats ------------------------------------------------------------------------------------------
def test_stats(built: tuple[Path, dict[str, Any]]) -> None:
    path, _ = built
    human = ok(resyn("catalog", "stats", "--catalog", str(path)))
    for fragment in (
        "2 runs",
        "candidate funnel",
        "passed checks",
        "junk",
        "shotgun",
        "$0.5800",
        "1 calls of unknown cost",
    ):
        assert fragment in human, fragment
    whole = json.loads(ok(resyn("catalog", "stats", "--json", "--catalog", str(path))))
    assert whole["funnel"]["written"] == 6 and whole["failed_checks"] == {"junk": 2, "shotgun": 1}
    run_b = json.loads(ok(resyn("catalog", "stats", "--run", "run-b", "--json", "--catalog", str(path))))
    assert (
        run_b["run_id"] == "run-b" and run_b["environments"] == 1 and run_b["cost_usd"] == pytest.approx(0.04)
    )


# -- errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("catalog", "show", "graph_colouring-12345678"), "no environment 'graph_colouring-12345678'"),
        (("catalog", "sql", "SELEC 1"), "SQL error: Parser Error"),
        (("catalog", "sql", "DELETE FROM environments"), "DELETE statements are not allowed"),
        (("catalog", "sql", "SELECT 1; SELECT 2"), "2 statements given"),
        (("catalog", "list", "--run", "run-c"), "no run 'run-c'"),
        (("catalog", "stats", "--run", "run_a"), "did you mean 'run-a'"),
        (("check", "sort_numbers-00000000"), "no environment 'sort_numbers-00000000'"),
    ],
)
def test_errors_are_one_line(
    built: tuple[Path, dict[str, Any]], args: tuple[str, ...], fragment: str
) -> None:
    path, _ = built
    assert_one_line_error(resyn(*args, "--catalog", str(path)), fragment)


@pytest.mark.parametrize(
    "args",
    [("catalog", "list"), ("catalog", "show", "x"), ("catalog", "sql", "SELECT 1"), ("catalog", "stats")],
)
def test_a_missing_or_foreign_catalog(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert_one_line_error(
        resyn(*args, cwd=tmp_path), "no catalog at runs/catalog.duckdb: run `resyn synthesize`"
    )
    assert not (tmp_path / "runs").exists()  # readers create nothing
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 50)
    assert_one_line_error(resyn(*args, "--catalog", str(text)), "is not a resyn catalog: pass --catalog")


def test_check_and_sample_of_a_missing_catalog(tmp_path: Path) -> None:
    assert_one_line_error(
        resyn("sample", "sort_numbers-12345678", "--catalog", str(tmp_path / "none.duckdb")), "no catalog at"
    )
    # a path that is not an id keeps its old message
    assert_one_line_error(resyn("check", "does/not/exist.py"), "no such file")


# -- catalog ids in check and sample ----------------------------------------------------------------
@pytest.mark.slow
def test_check_an_environment_from_the_catalog(built: tuple[Path, dict[str, Any]]) -> None:
    path, ids = built
    env_id = ids["coloring"]
    result = resyn("check", env_id, "--catalog", str(path), "--seeds", "8", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["accepted"] is True and report["label"] == env_id and report["env_name"] == "sort_numbers"


def test_sample_an_environment_from_the_catalog(built: tuple[Path, dict[str, Any]]) -> None:
    path, ids = built
    env_id = ids["coloring"]
    result = resyn("sample", env_id, "-n", "2", "--json", env={"RESYN_CATALOG": str(path)})
    document = json.loads(ok(result))
    assert document["label"] == env_id and document["env"] == "sort_numbers"
    assert [row["seed"] for row in document["instances"]] == [0, 1] and all(
        r["ok"] for r in document["instances"]
    )
    by_prefix = json.loads(
        ok(resyn("sample", f"catalog:{env_id[:-4]}", "-n", "2", "--json", "--catalog", str(path)))
    )
    assert by_prefix["instances"] == document["instances"]
