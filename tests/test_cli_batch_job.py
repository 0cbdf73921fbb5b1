"""The batch-job options of ``resyn synthesize`` and ``resyn calibrate`` as the real command
(``python -m resyn`` subprocesses) against the loopback fake provider, scripted by
``tests/synth_helpers.py``: limits that stop a run and a larger one that finishes it, spend per
environment, ``--reuse-calls``, ``--propose`` with progress lines, calibration and its ranking, and
the one-line errors of options that cannot work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from resyn.catalog import Catalog
from tests.llm_servers import FakeOpenAI
from tests.synth_helpers import (
    JUDGE,
    PROPOSE,
    REFUSAL,
    REVISE,
    WRITE,
    PricedOpenAI,
    ScriptedModel,
    good,
    verdict,
)
from tests.test_batch_job import always_right, calibration_solver
from tests.test_cli import assert_one_line_error
from tests.test_cli_synthesize import environ, ok, resyn, tree

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("offline")]

#: The exit status of a run stopped at --budget-usd or --max-calls (resyn.cli.synthesize).
EXIT_STOPPED = 3


def synthesize(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, dict[str, object], str]:
    """``resyn synthesize ARGS --json``: exit status, the summary document and stderr."""
    result = resyn("synthesize", *args, "--json", cwd=cwd, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def statuses(document: dict[str, object]) -> list[str]:
    tasks = document["tasks"]
    assert isinstance(tasks, list)
    return [str(task["status"]) for task in tasks]


# -- budgets -------------------------------------------------------------------------------------------
def test_max_calls_stops_with_status_3_and_a_larger_limit_finishes(server: FakeOpenAI, cwd: Path) -> None:
    keywords = ["first idea", "second idea", "third idea"]
    scripted = ScriptedModel(server, {(k, kind): [REFUSAL] for k in keywords for kind in (WRITE, REVISE)})
    catalog = cwd / "c.duckdb"
    common = ["--catalog", str(catalog), "--run", "r"]
    status, document, stderr = synthesize(
        *keywords, "--model", "openai/m", "--base-url", server.base_url, *common,
        "--concurrency", "1", "--max-rounds", "2", "--max-calls", "3", cwd=cwd,
    )  # fmt: skip

    assert status == EXIT_STOPPED, stderr
    assert document["status"] == "stopped" and statuses(document) == ["rejected", "pending", "pending"]
    assert len(server.received) == 3
    assert "stopped: limit of 3 calls reached" in stderr
    config = json.loads((cwd / "r" / "config.json").read_text())
    assert config["settings"]["max_calls"] == 3
    with Catalog.open(catalog, read_only=True) as opened:
        run = opened.get_run("r")
        assert run is not None and run.status == "stopped"
        second = next(t for t in opened.tasks("r") if t.keyword == "second idea")
        finished, unfinished = opened.candidates(second.task_id)
        assert finished.outcome == "no_code" and unfinished.outcome is None

    # the README's way: the run's name and a larger limit (the other settings are the run's own)
    status, document, stderr = synthesize(*common, "--max-calls", "10", cwd=cwd)
    assert status == 0, stderr
    assert document["status"] == "finished" and statuses(document) == ["rejected"] * 3
    assert [scripted.count(k) for k in keywords] == [2, 2, 2] and scripted.problems == []
    with Catalog.open(catalog, read_only=True) as opened:
        assert [c.candidate_id for c in opened.candidates(second.task_id)] == [
            finished.candidate_id,
            unfinished.candidate_id,
        ]
        run = opened.get_run("r")
        assert run is not None and run.status == "finished"


def test_budget_usd_stops_and_the_summary_gives_spend_per_environment(tmp_path: Path, cwd: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": {"input": 1000.0, "output": 1000.0}}))  # $0.018 a call
    with PricedOpenAI() as server:
        scripted = ScriptedModel(
            server,
            {
                ("base conversion", WRITE): [good("base")],
                ("base conversion", JUDGE): [verdict()],
                ("second idea", WRITE): [REFUSAL],
            },
        )
        result = resyn(
            "synthesize", "base conversion", "second idea", "--model", "openai/m", "--base-url",
            server.base_url, "--catalog", "c.duckdb", "--run", "r", "--seeds", "20", "--concurrency", "1",
            "--budget-usd", "0.03", cwd=cwd, env=environ(RESYN_PRICES=str(prices)),
        )  # fmt: skip
        assert scripted.problems == [] and scripted.count("second idea") == 0
    assert result.returncode == EXIT_STOPPED, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "cost $0.0360 ($0.0360 per accepted environment)" in result.stdout, result.stdout
    assert "run stopped at its limit" in result.stdout and "--budget-usd" in result.stdout
    assert "budget of $0.03 reached" in result.stderr


def test_budget_usd_needs_a_price_for_every_model(tmp_path: Path, cwd: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": {"input": 1.0, "output": 1.0}}))
    before = tree(tmp_path)
    for args, fragment in (
        (["--model", "openai/unpriced"], "--budget-usd needs a price for openai/unpriced"),
        (["--model", "openai/m", "--judge-model", "openai/other"], "needs a price for openai/other"),
        (["--model", "openai/m", "--solver-model", "openai/s"], "needs a price for openai/s"),
    ):
        result = resyn(
            "synthesize", "kw", *args, "--base-url", "http://127.0.0.1:9/v1", "--judge-base-url",
            "http://127.0.0.1:9/v1", "--budget-usd", "5", "--catalog", "c.duckdb",
            cwd=cwd, env=environ(RESYN_PRICES=str(prices)),
        )  # fmt: skip
        assert_one_line_error(result, fragment)
        assert "RESYN_PRICES" in result.stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--budget-usd", "0"], "--budget-usd"),
        (["--budget-usd", "-1"], "--budget-usd"),
        (["--max-calls", "0"], "--max-calls"),
        (["--rpm", "0"], "--rpm"),
        (["--propose", "0"], "--propose"),
        (["--propose", "201"], "--propose"),
    ],
    ids=["budget 0", "budget negative", "max-calls 0", "rpm 0", "propose 0", "propose 201"],
)
def test_limits_out_of_range_are_one_line_errors(
    tmp_path: Path, cwd: Path, args: list[str], fragment: str
) -> None:
    before = tree(tmp_path)
    result = resyn("synthesize", "kw", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", *args,
                   "--catalog", "c.duckdb", cwd=cwd)  # fmt: skip
    assert_one_line_error(result, fragment)
    assert tree(tmp_path) == before


def test_batch_api_with_a_replay_model_is_a_one_line_error(tmp_path: Path, cwd: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("")
    before = tree(tmp_path)
    result = resyn("synthesize", "kw", "--model", f"replay/{transcript}", "--batch-api", "--catalog", "c.duckdb",
                   cwd=cwd)  # fmt: skip
    assert_one_line_error(result, "has no batch API")
    assert "drop --batch-api" in result.stderr
    assert tree(tmp_path) == before


# -- --reuse-calls -------------------------------------------------------------------------------------
def test_reuse_calls_in_a_new_run_sends_nothing_for_unchanged_steps(server: FakeOpenAI, cwd: Path) -> None:
    keyword = "base conversion"
    scripted = ScriptedModel(
        server,
        {(keyword, WRITE): [REFUSAL], (keyword, REVISE): [good("base")], (keyword, JUDGE): [verdict()]},
    )
    common = ["--model", "openai/m", "--base-url", server.base_url, "--catalog", "c.duckdb", "--seeds", "20"]
    status, first, stderr = synthesize(keyword, *common, "--run", "first", cwd=cwd)
    assert status == 0 and statuses(first) == ["accepted"], stderr
    received = len(server.received)
    assert received == 3

    status, second, stderr = synthesize(keyword, *common, "--run", "second", "--reuse-calls", cwd=cwd)
    assert status == 0, stderr
    assert len(server.received) == received and scripted.problems == []  # write and revise reused
    assert statuses(second) == ["rejected"]  # its module is the first run's environment
    stats = second["stats"]
    assert isinstance(stats, dict) and stats["calls"] == 2 and stats["cost_usd"] == 0
    calls = [json.loads(line) for line in (cwd / "second" / "calls.jsonl").read_text().splitlines()]
    originals = {c["tags"]["call_id"]: c for c in
                 map(json.loads, (cwd / "first" / "calls.jsonl").read_text().splitlines())}  # fmt: skip
    assert [c["template"] for c in calls] == ["write", "revise"]
    for call in calls:
        source = originals[call["tags"]["reused_from"]]
        assert (call["attempts"], call["cost_usd"], call["text"]) == (0, 0.0, source["text"])
        assert call["template"] == source["template"] and call["tags"]["run_id"] == "second"


# -- --propose, --rpm and progress ---------------------------------------------------------------------
def test_propose_run_prints_progress_lines(server: FakeOpenAI, cwd: Path) -> None:
    ideas = [
        {"keyword": "run length encoding", "description": "Write the run-length encoding of a string."},
        {"keyword": "tower of hanoi moves", "description": "List the moves that solve a Tower of Hanoi."},
    ]
    scripted = ScriptedModel(server, {("strings", PROPOSE): [{"ideas": ideas}]})
    for idea in ideas:
        scripted.add(f"{idea['keyword']}: {idea['description']}", WRITE, REFUSAL)
    result = resyn(
        "synthesize", "strings", "--propose", "2", "--rpm", "600", "--model", "openai/m", "--base-url",
        server.base_url, "--catalog", "c.duckdb", "--run", "r", "--max-rounds", "1", "--concurrency", "1",
        cwd=cwd,
    )  # fmt: skip
    out = ok(result)
    assert scripted.problems == [] and scripted.count("strings", PROPOSE) == 1
    progress = [line for line in result.stderr.splitlines() if line.startswith("progress: ")]
    assert [re.match(r"progress: (\d+/\d+) done, ", line) is not None for line in progress] == [True] * 3
    assert [line.split()[1] for line in progress] == ["0/2", "1/2", "2/2"], result.stderr
    assert "seed 'strings': 2 task(s) proposed" in result.stderr
    assert "run length encoding" in out and "tower of hanoi moves" in out
    config = json.loads((cwd / "r" / "config.json").read_text())
    assert config["settings"]["propose"] == 2 and config["settings"]["max_requests_per_minute"] == 600
    assert config["seeds"] == ["strings"]


# -- calibration ---------------------------------------------------------------------------------------
def test_calibrate_reruns_calibration_and_list_ranks_by_learnability(server: FakeOpenAI, cwd: Path) -> None:
    keywords = {"base conversion": "base", "0/1 knapsack": "knapsack"}
    scripted = ScriptedModel(
        server,
        {key: steps for k, g in keywords.items() for key, steps in
         (((k, WRITE), [good(g)]), ((k, JUDGE), [verdict()]))},
    )  # fmt: skip
    scripted.solver = calibration_solver  # base conversion: p = 0.5 everywhere; knapsack: [1, .5, 0, 0, 0]
    catalog = "c.duckdb"
    solver = ["--solver-model", "openai/solver", "--solver-base-url", server.base_url,
              "--solver-instances", "1", "--solver-attempts", "2"]  # fmt: skip
    status, document, stderr = synthesize(
        *keywords, "--model", "openai/m", "--base-url", server.base_url, "--catalog", catalog, "--run", "r",
        "--seeds", "20", *solver, cwd=cwd,
    )  # fmt: skip
    assert status == 0 and statuses(document) == ["accepted", "accepted"], stderr
    assert "solver pass rates by level 1:0.50, 2:0.50" in stderr
    env_ids = {t["keyword"]: t["env_id"] for t in document["tasks"]}  # type: ignore[attr-defined]

    def ranked() -> list[tuple[str, str, float | None]]:
        rows = json.loads(ok(resyn("catalog", "list", "--sort", "learnability", "--json", "--catalog", catalog,
                                   cwd=cwd)))  # fmt: skip
        return [(row["env_id"], row["status"], row["learnability"]) for row in rows]

    assert ranked() == [
        (env_ids["base conversion"], "accepted", pytest.approx(1.0)),
        (env_ids["0/1 knapsack"], "accepted", pytest.approx(0.2)),
    ]

    scripted.solver = always_right
    out = ok(resyn("calibrate", env_ids["base conversion"], *solver, "--catalog", catalog, cwd=cwd))
    assert f"{env_ids['base conversion']}  too_easy  pass rates by level: 1.00 1.00 1.00 1.00 1.00" in out
    assert ranked() == [
        (env_ids["0/1 knapsack"], "accepted", pytest.approx(0.2)),
        (env_ids["base conversion"], "too_easy", pytest.approx(0.0)),
    ]
    listing = ok(resyn("catalog", "list", "--status", "accepted", "--catalog", catalog, cwd=cwd))
    assert env_ids["0/1 knapsack"] in listing and env_ids["base conversion"] not in listing
    assert scripted.problems == []

    before = tree(cwd)
    unknown = resyn("calibrate", "nosuch-12345678", *solver, "--catalog", catalog, cwd=cwd)
    assert_one_line_error(unknown, "nosuch-12345678")
    missing = resyn("calibrate", env_ids["base conversion"], *solver, "--catalog", "none.duckdb", cwd=cwd)
    assert_one_line_error(missing, "no catalog at none.duckdb")
    no_solver = resyn("calibrate", env_ids["base conversion"], "--catalog", catalog, cwd=cwd)
    assert_one_line_error(no_solver, "--solver-model is required")
    assert tree(cwd) == before
    assert scripted.count(kind="solve") == 2 * 10 + 10
