"""Batch-job features of the synthesis loop through its API (``resyn.synth.run.synthesize``):
``--propose`` and near-duplicates, solver calibration, budgets, ``--reuse-calls``, ``--rpm``, a 429
storm and ``--batch-api``. The model's side (writer, judge, proposer and solver) is scripted by
``tests/synth_helpers.py`` behind the loopback fake provider; extraction, the sandboxed checks,
similarity, calibration's sandboxed verification and the catalog run for real."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from resyn.catalog import Catalog, StoredCall, TaskRecord
from resyn.checks import CheckReport, run_checks
from resyn.llm import BatchSettings, get_model
from resyn.llm import base as llm_base
from resyn.llm.pricing import find_price
from resyn.sandbox import SandboxConfig
from resyn.synth import loop, prompts
from resyn.synth.calibration import CalibrationSettings, calibrate_environments
from resyn.synth.guards import Budget, BudgetExhausted, GuardedModel
from resyn.synth.judge import check_lines
from resyn.synth.run import RunProgress, RunSummary, synthesize
from tests.llm_servers import FakeOpenAI, Reply
from tests.synth_helpers import (
    JUDGE,
    PROPOSE,
    QUICK_CHECKS,
    REFUSAL,
    REVISE,
    SOLVE,
    WRITE,
    PricedOpenAI,
    ScriptedModel,
    Step,
    fake_models,
    fenced,
    good,
    settings,
    verdict,
)
from tests.test_synthesize import assert_consistent

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("offline")]


# -- helpers -----------------------------------------------------------------------------------------
SOLVER = "openai/solver"


def run(
    catalog: Catalog,
    server: FakeOpenAI,
    keywords: list[str],
    run_settings: Any,
    *,
    run_id: str = "r",
    resumed: bool = False,
    log: list[str] | None = None,
    **llm: Any,
) -> RunSummary:
    """``synthesize`` with the writer and judge on ``server`` (FAST transport settings)."""
    models = fake_models(server, catalog, run_id, **llm)
    return synthesize(
        keywords,
        catalog=catalog,
        run_id=run_id,
        settings=run_settings,
        resumed=resumed,
        writer=models["writer"],
        judge_model=models["judge_model"],
        log=(log.append if log is not None else lambda line: None),
    )


def tasks(catalog: Catalog, run_id: str = "r") -> dict[str, TaskRecord]:
    return {task.keyword: task for task in catalog.tasks(run_id)}


def calls(catalog: Catalog, run_id: str, template: str | None = None) -> list[StoredCall]:
    return [c for c in catalog.calls(run_id=run_id) if template is None or c.call.template == template]


def calibration(server: FakeOpenAI, *, instances: int = 1, attempts: int = 2) -> CalibrationSettings:
    """The solver on the fake server: ``instances`` per level, ``attempts`` each."""
    return CalibrationSettings(
        solver_model=SOLVER,
        solver_base_url=server.base_url,
        instances_per_level=instances,
        attempts_per_instance=attempts,
    )


def module(key: str) -> str:
    """The code of a hand-written answer (``tests/synth_helpers.GOOD``)."""
    text = good(key)
    return text[text.index("```python\n") + 10 : text.rindex("```")]


def renamed_base_conversion() -> str:
    """The base conversion module with every name changed: the same environment in disguise."""
    code = module("base")
    for old, new in (("BaseConversion", "RadixRewrite"), ('"base_conversion"', '"radix_rewrite"'),
                     ("to_base", "in_radix"), ("DIGITS", "SYMBOLS"), ("MAX_ANSWER_CHARS", "LIMIT"),
                     ("value", "number"), ("source", "origin"), ("target", "goal")):  # fmt: skip
        code = code.replace(old, new)
    return code


def without_solution(code: str) -> str:
    """``code`` with its ``solution`` method dropped (the last method of the hand-written modules)."""
    cut = code.index("\n    def solution(")
    assert "\n    def " not in code[cut + 1 :], "solution() must be the last method"
    return code[:cut] + "\n"


# -- solvers: answers computed from the question text (the module's code never runs here) --------------
_DIGITS = "0123456789ABCDEF"
_BASE_QUESTION = re.compile(
    r"The number (\w+) is written in base (\d+) .*?Write the same number in base (\d+)\.", re.S
)
_KNAPSACK_QUESTION = re.compile(r"Items as \(weight, value\): (.*)\. Capacity (\d+)\.")


def base_conversion(question: str) -> tuple[int, str] | None:
    """``(level, right answer)`` of a base conversion question; level 1 has 3 digits, +2 a level."""
    found = _BASE_QUESTION.search(question)
    if found is None:
        return None
    written, source, target = found.group(1), int(found.group(2)), int(found.group(3))
    value, digits = int(written, source), []
    while value:
        value, digit = divmod(value, target)
        digits.append(_DIGITS[digit])
    return (len(written) - 1) // 2, "".join(reversed(digits)) or "0"


def knapsack(question: str) -> tuple[int, str] | None:
    """``(level, right answer)`` of a knapsack question; level 1 has 5 items, +2 a level."""
    found = _KNAPSACK_QUESTION.search(question)
    if found is None:
        return None
    items = [(int(w), int(v)) for w, v in re.findall(r"\((\d+), (\d+)\)", found.group(1))]
    best = [0] * (int(found.group(2)) + 1)
    for weight, value in items:
        for room in range(len(best) - 1, weight - 1, -1):
            best[room] = max(best[room], best[room - weight] + value)
    return (len(items) - 3) // 2, str(best[-1])


def tagged(text: str) -> str:
    return f"Let me work it out step by step.\n<answer>{text}</answer>"


def right_answer(question: str) -> str:
    solved = base_conversion(question) or knapsack(question)
    assert solved is not None, question
    return solved[1]


def always_right(question: str, n: int) -> Step:
    return tagged(right_answer(question))


def always_wrong(question: str, n: int) -> Step:
    return tagged("0")  # no base conversion, knapsack or Josephus answer here is 0


def half_right(question: str, n: int) -> Step:
    """Right on the first of each pair of attempts at a question: pass rate 0.5 exactly."""
    return tagged(right_answer(question) if n % 2 == 0 else right_answer(question) + "1")


# -- 1. --propose --------------------------------------------------------------------------------------
LCS = {"keyword": "longest common subsequence",
       "description": "Two random strings of letters; give the length of their longest common subsequence. "
                      "Longer strings at higher levels."}  # fmt: skip
LCS_AGAIN = {"keyword": "longest common subsequence of two strings",
             "description": "Find how long the longest common subsequence of two given strings is."}  # fmt: skip
BASE_AGAIN = {"keyword": "base conversion",
              "description": "Convert an integer written in one base into another base."}  # fmt: skip
RLE = {"keyword": "run length encoding",
       "description": "A random string with runs of repeated letters; write its run-length encoding. "
                      "More and longer runs at higher levels."}  # fmt: skip
HANOI = {"keyword": "tower of hanoi moves",
         "description": "Give the minimal sequence of moves that solves a Tower of Hanoi with n disks."}  # fmt: skip
CAESAR = {"keyword": "caesar cipher decoding",
          "description": "Decode a sentence shifted by an unknown Caesar shift, given a known word in it."}  # fmt: skip


def brief(idea: dict[str, str]) -> str:
    """The keyword a task from ``idea`` is written under (``TaskRecord.prompt_keyword``)."""
    return f"{idea['keyword']}: {idea['description']}"


def test_propose_screens_duplicates_and_briefs_the_writer(server: FakeOpenAI, catalog: Catalog) -> None:
    # The catalog already has a base conversion environment (another run).
    scripted = ScriptedModel(
        server, {("base conversion", WRITE): [good("base")], ("base conversion", JUDGE): [verdict()]}
    )
    run(catalog, server, ["base conversion"], settings(), run_id="before")
    (base_env,) = catalog.list_environments()

    scripted.add("strings", PROPOSE, {"ideas": [LCS, LCS_AGAIN, BASE_AGAIN, RLE]})
    scripted.add("graphs", PROPOSE, *[server.server_error(500)] * 4)  # FAST: 4 attempts, all 500s
    scripted.add("ciphers", PROPOSE, {"ideas": [{"keyword": "caesar cipher"}]})  # no description
    for idea in (LCS, RLE):
        scripted.add(brief(idea), WRITE, REFUSAL)
    log: list[str] = []
    first = run(catalog, server, ["strings", "graphs", "ciphers"], settings(propose=4, max_rounds=1), log=log)

    assert first.status == "finished" and scripted.problems == []
    proposals = {p.keyword: p for p in catalog.proposals("r")}
    assert set(proposals) == {LCS["keyword"], LCS_AGAIN["keyword"], BASE_AGAIN["keyword"], RLE["keyword"]}
    assert {p.seed_keyword for p in proposals.values()} == {"strings"}
    (propose_call,) = [c for c in calls(catalog, "r", "propose") if c.call.tags["keyword"] == "strings"]
    assert {p.call_id for p in proposals.values()} == {propose_call.call_id}
    assert proposals[LCS_AGAIN["keyword"]].duplicate_of == LCS["keyword"]
    assert proposals[BASE_AGAIN["keyword"]].duplicate_of == f"env:{base_env.env_id}"
    assert proposals[LCS["keyword"]].duplicate_of is None and proposals[RLE["keyword"]].duplicate_of is None
    duplicates = {d.subject: d for d in catalog.duplicates("r")}
    assert set(duplicates) == {LCS_AGAIN["keyword"], BASE_AGAIN["keyword"]}
    assert all(d.kind == "proposal" and d.similarity >= 0.55 for d in duplicates.values())
    assert duplicates[LCS_AGAIN["keyword"]].duplicate_of == LCS["keyword"]
    assert duplicates[BASE_AGAIN["keyword"]].duplicate_of == f"env:{base_env.env_id}"
    assert duplicates[BASE_AGAIN["keyword"]].detail["seed"] == "strings"

    # kept ideas (only) became tasks, each written with its description
    by_keyword = tasks(catalog)
    assert set(by_keyword) == {LCS["keyword"], RLE["keyword"]}
    for idea in (LCS, RLE):
        task = by_keyword[idea["keyword"]]
        assert task.brief == idea["description"] and task.status == "rejected"
        (body,) = scripted.bodies(brief(idea), WRITE)
        assert idea["description"] in body["messages"][-1]["content"]
    # the failed proposals were logged and the run went on
    assert any("seed 'graphs': proposing failed" in line and "500" in line for line in log), log
    assert any("seed 'ciphers': proposing failed" in line for line in log), log
    assert scripted.count("graphs", PROPOSE) == 4 and scripted.count("ciphers", PROPOSE) == 1
    (failed_call,) = [c for c in calls(catalog, "r", "propose") if c.call.tags.get("keyword") == "ciphers"]
    assert failed_call.call.error_type == "StructuredOutputError"
    config = json.loads((catalog.path.parent / "r" / "config.json").read_text())
    assert config["seeds"] == ["strings"] and sorted(config["keywords"]) == sorted(by_keyword)

    # a rerun by name only: "strings" is not proposed again; the failed seeds are
    scripted.add("graphs", PROPOSE, {"ideas": [HANOI, {**LCS, "description": LCS["description"]}]})
    scripted.add("ciphers", PROPOSE, {"ideas": [CAESAR]})
    for idea in (HANOI, CAESAR):
        scripted.add(brief(idea), WRITE, REFUSAL)
    second = run(catalog, server, [], settings(propose=4, max_rounds=1), resumed=True)

    assert second.status == "finished" and scripted.problems == []
    assert scripted.count("strings", PROPOSE) == 1
    assert scripted.count("graphs", PROPOSE) == 5 and scripted.count("ciphers", PROPOSE) == 2
    assert set(tasks(catalog)) == {LCS["keyword"], RLE["keyword"], HANOI["keyword"], CAESAR["keyword"]}
    # the repeated idea duplicates the run's own task
    again = [p for p in catalog.proposals("r") if p.seed_keyword == "graphs" and p.keyword == LCS["keyword"]]
    assert [p.duplicate_of for p in again] == [LCS["keyword"]]
    assert scripted.count(brief(LCS), WRITE) == 1  # finished tasks are not written again
    assert_consistent(catalog)


# -- 2. near-duplicate environments --------------------------------------------------------------------
def test_a_renamed_module_is_a_duplicate_found_before_the_judge(server: FakeOpenAI, catalog: Catalog) -> None:
    scripted = ScriptedModel(
        server,
        {
            ("base conversion", WRITE): [good("base")],
            ("base conversion", JUDGE): [verdict()],
            ("radix rewriting", WRITE): [fenced(renamed_base_conversion())],
        },
    )
    summary = run(catalog, server, ["base conversion", "radix rewriting"], settings(concurrency=1))

    assert summary.status == "finished" and scripted.problems == []
    by_keyword = tasks(catalog)
    base_env = by_keyword["base conversion"].env_id
    assert base_env is not None and base_env.startswith("base_conversion-")
    radix = by_keyword["radix rewriting"]
    assert (radix.status, radix.rounds, radix.env_id) == ("rejected", 1, None)
    assert radix.reason is not None and base_env in radix.reason and "near-duplicate" in radix.reason
    (candidate,) = catalog.candidates(radix.task_id)
    assert candidate.outcome == "duplicate" and candidate.passed_checks and not candidate.passed_judge
    assert candidate.env_name == "radix_rewrite"
    (duplicate,) = catalog.duplicates("r")
    assert (duplicate.kind, duplicate.subject, duplicate.duplicate_of) == (
        "environment",
        candidate.candidate_id,
        base_env,
    )
    assert duplicate.similarity >= 0.6 and duplicate.detail
    assert scripted.count("radix rewriting", JUDGE) == 0  # not paid for: found before judging
    assert scripted.count("radix rewriting", REVISE) == 0  # nor revised: it would be the same task
    assert [e.env_id for e in catalog.list_environments()] == [base_env]
    assert summary.stats.outcomes.get("duplicate") == 1
    assert_consistent(catalog)


# -- 3. calibration ------------------------------------------------------------------------------------
def calibration_solver(question: str, n: int) -> Step:
    """Base conversion: half right at every level. Knapsack: right at level 1, half at level 2,
    wrong above. Josephus: always wrong. Arithmetic: never in the answer format."""
    if base_conversion(question) is not None:
        return half_right(question, n)
    if (solved := knapsack(question)) is not None:
        level, right = solved
        return tagged(right if level == 1 or (level == 2 and n % 2 == 0) else right + "1")
    if "stand in a circle" in question:
        return always_wrong(question, n)
    return "I would say it is about 12, give or take."


def test_calibration_sets_status_pass_rates_and_learnability(server: FakeOpenAI, catalog: Catalog) -> None:
    arithmetic = (Path(loop.__file__).parents[1] / "examples" / "arithmetic.py").read_text()
    keywords = {"base conversion": good("base"), "0/1 knapsack": good("knapsack"),
                "the Josephus problem": good("josephus"), "arithmetic": fenced(arithmetic)}  # fmt: skip
    script: dict[tuple[str, str], list[Step]] = {}
    for keyword, written in keywords.items():
        script[(keyword, WRITE)] = [written]
        script[(keyword, JUDGE)] = [verdict()]
    scripted = ScriptedModel(server, script)
    scripted.solver = calibration_solver
    run_settings = settings(calibration=calibration(server))
    summary = run(catalog, server, list(keywords), run_settings)

    assert summary.status == "finished" and scripted.problems == []
    by_keyword = tasks(catalog)
    assert all(t.status == "accepted" for t in by_keyword.values())  # an unproven one did not stop the run
    env = {k: catalog.environment(t.env_id or "") for k, t in by_keyword.items()}
    expected = {
        "base conversion": ("accepted", [0.5] * 5),
        "0/1 knapsack": ("accepted", [1.0, 0.5, 0.0, 0.0, 0.0]),
        "the Josephus problem": ("too_hard", None),
        "arithmetic": ("unproven", [0.0] * 5),
    }
    for keyword, (status, rates) in expected.items():
        (record,) = catalog.calibrations(env[keyword].env_id)
        assert record.status == env[keyword].status == status, keyword
        assert record.run_id == "r" and record.solver_model == SOLVER
        levels = record.levels
        assert [level.difficulty for level in levels] == list(range(1, env[keyword].max_difficulty + 1))
        if rates is not None:
            assert [level.pass_rate for level in levels] == rates, keyword
        assert all(level.pass_rate == 0 for level in levels) or status != "too_hard"
        for level in levels:
            assert level.learnability == pytest.approx(4 * level.pass_rate * (1 - level.pass_rate))
            assert (level.attempts, level.failed_calls) == (2, 0)
        assert record.learnability == pytest.approx(
            sum(level.learnability or 0 for level in levels) / len(levels)
        )
        attempts = catalog.solver_attempts(record.calibration_id)
        assert len(attempts) == 2 * len(levels)  # raw attempts, each with its call
        solve_calls = {c.call_id: c for c in catalog.calls(run_id="r") if c.call.template == "solve"}
        assert all(a.call_id in solve_calls for a in attempts)
        assert {solve_calls[a.call_id].call.tags["calibration_id"] for a in attempts} == {
            record.calibration_id
        }
        if keyword == "arithmetic":
            assert all(a.answer is None and a.error == "no answer in the expected format" for a in attempts)
        else:
            assert all(a.answer is not None and a.score in (0.0, 1.0) for a in attempts)
    assert catalog.calibrations(env["base conversion"].env_id)[0].learnability == pytest.approx(1.0)
    assert catalog.calibrations(env["0/1 knapsack"].env_id)[0].learnability == pytest.approx(0.2)
    assert scripted.count(kind=SOLVE) == 4 * 10
    assert summary.stats.environments_by_status == {"accepted": 2, "too_hard": 1, "unproven": 1}

    ranked = [e.env_id for e in catalog.list_environments(sort="learnability")]
    assert ranked[:2] == [env["base conversion"].env_id, env["0/1 knapsack"].env_id]
    accepted = {e.keyword for e in catalog.list_environments(status="accepted")}
    assert accepted == {"base conversion", "0/1 knapsack"}

    # recalibrated against a solver that is always right: too easy; the status and ranking follow
    scripted.solver = always_right
    knapsack_id = env["0/1 knapsack"].env_id
    (record,) = calibrate_environments(
        catalog, [knapsack_id], calibration(server), sandbox_config=SandboxConfig()
    )
    assert record.status == "too_easy" and record.run_id is None
    assert [level.pass_rate for level in record.levels] == [1.0] * 5 and record.learnability == 0
    assert catalog.environment(knapsack_id).status == "too_easy"
    assert [c.status for c in catalog.calibrations(knapsack_id)] == ["accepted", "too_easy"]
    ranked = [e.env_id for e in catalog.list_environments(sort="learnability")]
    assert ranked[0] == env["base conversion"].env_id and ranked.index(knapsack_id) > 0
    assert scripted.problems == []


def test_an_environment_without_gold_answers_needs_a_verified_attempt(
    server: FakeOpenAI, catalog: Catalog
) -> None:
    keyword = "base conversion without gold"
    scripted = ScriptedModel(
        server,
        {(keyword, WRITE): [fenced(without_solution(module("base")))], (keyword, JUDGE): [verdict()]},
    )
    summary = run(catalog, server, [keyword], settings())  # no solver: nothing shows it solvable
    assert summary.status == "finished" and scripted.problems == []
    env_id = tasks(catalog)[keyword].env_id
    assert env_id is not None
    env = catalog.environment(env_id)
    assert (env.has_solution, env.status) == (False, "unproven") and catalog.calibrations(env_id) == []
    assert all(sample["gold"] is None for sample in env.samples)

    scripted.solver = always_wrong  # no attempt verifies: still unproven, not too hard
    (wrong,) = calibrate_environments(catalog, [env_id], calibration(server), sandbox_config=SandboxConfig())
    assert (wrong.status, wrong.any_verified) == ("unproven", False)
    assert all(level.pass_rate == 0 for level in wrong.levels)
    assert catalog.environment(env_id).status == "unproven"

    scripted.solver = half_right  # some attempts verify: the task is shown solvable
    (some,) = calibrate_environments(catalog, [env_id], calibration(server), sandbox_config=SandboxConfig())
    assert (some.status, some.any_verified) == ("accepted", True)
    assert [level.pass_rate for level in some.levels] == [0.5] * 5
    assert catalog.environment(env_id).status == "accepted"
    assert scripted.problems == []


# -- 4. budgets ----------------------------------------------------------------------------------------
def test_max_calls_stops_and_a_larger_limit_finishes_without_redoing_work(
    server: FakeOpenAI, catalog: Catalog
) -> None:
    keywords = ["first idea", "second idea", "third idea"]
    scripted = ScriptedModel(server, {(k, kind): [REFUSAL] for k in keywords for kind in (WRITE, REVISE)})
    log: list[str] = []
    first = run(catalog, server, keywords, settings(concurrency=1, max_rounds=2, max_calls=3), log=log)

    assert first.status == "stopped" and catalog.get_run("r").status == "stopped"  # type: ignore[union-attr]
    assert len(server.received) == 3 and first.stats.calls == 3
    assert [t.status for t in first.tasks] == ["rejected", "pending", "pending"]
    second_task = tasks(catalog)["second idea"]
    finished, in_progress = catalog.candidates(second_task.task_id)
    assert finished.outcome == "no_code" and (in_progress.outcome, in_progress.code) == (None, None)
    assert catalog.candidates(tasks(catalog)["third idea"].task_id) == []
    assert any("stopped: limit of 3 calls reached" in line for line in log), log
    assert_consistent(catalog)

    resumed = run(
        catalog, server, keywords, settings(concurrency=1, max_rounds=2, max_calls=10), resumed=True
    )
    assert resumed.status == "finished" and scripted.problems == []
    assert [t.status for t in resumed.tasks] == ["rejected"] * 3
    assert [scripted.count(k) for k in keywords] == [2, 2, 2]  # nothing asked twice
    assert [c.candidate_id for c in catalog.candidates(second_task.task_id)] == [
        finished.candidate_id,
        in_progress.candidate_id,
    ]
    assert resumed.stats.calls == 6
    # a third session at the same limit it reached does nothing
    assert run(catalog, server, keywords, settings(max_calls=6), resumed=True).status == "finished"
    assert len(server.received) == 6
    assert_consistent(catalog)


def test_budget_usd_stops_once_spent_and_reports_spend_per_environment(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"m": {"input": 1000.0, "output": 1000.0}}))  # 18 tokens: $0.018 a call
    monkeypatch.setenv("RESYN_PRICES", str(prices))
    with PricedOpenAI() as server:
        scripted = ScriptedModel(
            server,
            {
                ("base conversion", WRITE): [good("base")],
                ("base conversion", JUDGE): [verdict()],
                ("second idea", WRITE): [REFUSAL],
            },
        )
        summary = run(
            catalog, server, ["base conversion", "second idea"], settings(concurrency=1, budget_usd=0.03)
        )
        assert scripted.problems == []
    assert summary.status == "stopped"
    assert [t.status for t in summary.tasks] == ["accepted", "pending"]
    assert scripted.count("second idea") == 0  # $0.036 spent ≥ $0.03: no further call started
    assert summary.stats.cost_usd == pytest.approx(0.036)
    assert summary.stats.cost_per_environment_usd == pytest.approx(0.036)
    assert all(c.call.cost_usd == pytest.approx(0.018) for c in calls(catalog, "r"))


def test_budget_guard_units() -> None:
    """Reused answers cost no request; the limit is reached at the limit, not past it."""
    budget = Budget(max_usd=None, max_calls=2)
    assert budget.exhausted() is None
    budget.calls = 2
    with pytest.raises(BudgetExhausted, match="limit of 2 calls reached"):
        budget.admit()
    priced = Budget(max_usd=1.0, max_calls=None, spent_usd=0.999)
    priced.admit()
    priced.spent_usd = 1.0
    with pytest.raises(BudgetExhausted, match=r"budget of \$1 reached"):
        priced.admit()


# -- 5. --reuse-calls ----------------------------------------------------------------------------------
def _stable_timing(code: str, **kwargs: Any) -> CheckReport:
    """The checks, with the timing check's measurements taken out of its summary (see
    ``test_the_judge_prompt_does_not_depend_on_measured_timings``)."""
    report = run_checks(code, **kwargs)
    checks = [c.model_copy(update={"summary": "timed"}) if c.name == "timing" else c for c in report.checks]
    return report.model_copy(update={"checks": checks})


def test_reuse_calls_answers_unchanged_steps_from_the_call_log(
    server: FakeOpenAI, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "run_checks", _stable_timing)
    keyword = "base conversion"
    scripted = ScriptedModel(
        server,
        {
            (keyword, WRITE): [good("base")],
            (keyword, JUDGE): [verdict(False, "Rejected: use knapsack instead."), verdict()],
            (keyword, REVISE): [good("knapsack")],
        },
    )
    scripted.solver = half_right
    run_settings = settings(calibration=calibration(server))
    first = run(catalog, server, [keyword], run_settings, run_id="first")
    assert first.status == "finished" and scripted.problems == []
    env_id = tasks(catalog, "first")[keyword].env_id
    assert env_id is not None and env_id.startswith("knapsack-")
    received = len(server.received)
    assert received == 4 + 10  # write, judge, revise, judge; 5 levels x 2 solver attempts

    # a new run in the same catalog: every step is unchanged, so nothing reaches the provider
    second = run(catalog, server, [keyword], run_settings.model_copy(update={"reuse_calls": True}),
                 run_id="second")  # fmt: skip
    assert second.status == "finished" and scripted.problems == []
    assert len(server.received) == received
    original = {c.call_id: c for c in calls(catalog, "first")}
    reused = calls(catalog, "second")
    assert [c.call.template for c in reused] == ["write", "judge", "revise"]
    for stored in reused:
        source = original[stored.call.tags["reused_from"]]
        assert source.call.template == stored.call.template and source.call.text == stored.call.text
        assert (stored.call.cost_usd, stored.call.attempts, stored.call.prompt_sha256) == (
            0.0, 0, source.call.prompt_sha256)  # fmt: skip
    assert second.stats.cost_usd == 0 and second.stats.calls == 3
    # the revision is the environment the first run accepted: a duplicate now, not judged again
    task = tasks(catalog, "second")[keyword]
    assert task.status == "rejected" and env_id in (task.reason or "")
    assert [c.outcome for c in catalog.candidates(task.task_id)] == ["judge_rejected", "duplicate"]

    # calibration asks each question twice: the i-th identical request reuses the i-th answer
    solver = GuardedModel(
        get_model(SOLVER, base_url=server.base_url, recorder=catalog),
        budget=None,
        reuse=catalog.reusable_calls,
    )
    (again,) = calibrate_environments(
        catalog, [env_id], calibration(server), sandbox_config=SandboxConfig(), solver=solver
    )
    assert len(server.received) == received
    (before, _) = catalog.calibrations(env_id)
    assert [level.pass_rate for level in again.levels] == [level.pass_rate for level in before.levels]
    assert [level.pass_rate for level in again.levels] == [0.5] * 5  # not the first answer twice
    by_id = {c.call_id: c for c in catalog.calls()}
    new = [by_id[a.call_id or ""] for a in catalog.solver_attempts(again.calibration_id)]
    old = [by_id[a.call_id or ""] for a in catalog.solver_attempts(before.calibration_id)]
    assert all(c.call.attempts == 0 and c.call.cost_usd == 0 for c in new)
    for question in {prompt_of(c) for c in old}:
        sources = sorted(c.call.tags["reused_from"] for c in new if prompt_of(c) == question)
        assert sources == sorted(c.call_id for c in old if prompt_of(c) == question)
        assert len(set(sources)) == 2


def prompt_of(stored: StoredCall) -> str:
    return str(stored.call.request["messages"][-1]["content"])


def test_reused_answers_do_not_count_against_max_calls_in_any_session(
    server: FakeOpenAI, catalog: Catalog
) -> None:
    scripted = ScriptedModel(
        server, {(k, kind): [REFUSAL] for k in ("alpha", "beta") for kind in (WRITE, REVISE)}
    )
    run(catalog, server, ["alpha"], settings(max_rounds=2), run_id="first")
    assert len(server.received) == 2

    reusing = settings(concurrency=1, max_rounds=2, reuse_calls=True)
    stopped = run(catalog, server, ["alpha", "beta"], reusing.model_copy(update={"max_calls": 1}),
                  run_id="second")  # fmt: skip
    assert stopped.status == "stopped" and [t.status for t in stopped.tasks] == ["rejected", "pending"]
    assert len(server.received) == 3  # alpha's two calls were reused; beta's write was the one request
    assert [c.call.attempts for c in calls(catalog, "second")] == [0, 0, 1]

    # the next session counts one request made, not three calls recorded
    finished = run(catalog, server, ["alpha", "beta"], reusing.model_copy(update={"max_calls": 2}),
                   run_id="second", resumed=True)  # fmt: skip
    assert finished.status == "finished" and [t.status for t in finished.tasks] == ["rejected", "rejected"]
    assert len(server.received) == 4 and scripted.problems == []


def test_the_judge_prompt_does_not_depend_on_measured_timings() -> None:
    """--reuse-calls can only reuse a judge call whose prompt is the same on a rerun."""
    report = run_checks(module("base"), filename="base.py", label="base", config=QUICK_CHECKS)
    timing = next(c for c in report.checks if c.name == "timing")
    slower = report.model_copy(
        update={
            "checks": [
                c.model_copy(update={"summary": "p95 generate 0.3 ms, verify 0.05 ms"}) if c is timing else c
                for c in report.checks
            ]
        }
    )
    digests = {
        prompts.request(
            "judge",
            {"keyword": "k", "code": module("base"), "samples": [], "checks": check_lines(r)},
            max_tokens=100,
            purpose="judge",
        ).prompt_sha256()
        for r in (report, slower)
    }
    assert len(digests) == 1


# -- 6. --rpm ------------------------------------------------------------------------------------------
def test_request_pace_allows_per_minute_starts_per_window() -> None:
    window, per_window, count = 0.5, 3, 9
    pace = llm_base.RequestPace(per_window, window_s=window)
    starts: list[float] = []

    async def start() -> None:
        await pace.wait()
        starts.append(time.monotonic())  # no await in between: the pace's own start time, give or take µs

    async def main() -> float:
        began = time.monotonic()
        await asyncio.gather(*(start() for _ in range(count)))
        return began

    began = asyncio.run(main())
    assert len(starts) == count
    starts.sort()
    slack = 0.01  # time between the pace taking its clock and the test taking its own
    for i, at in enumerate(starts):
        assert sum(1 for other in starts if at <= other < at + window - slack) <= per_window, (i, starts)
    # the 7th start waited for two windows to pass
    assert starts[2 * per_window] - began >= 2 * window


def test_a_run_with_max_requests_per_minute_paces_its_models(
    server: FakeOpenAI, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    paces: list[Any] = []

    class ShortPace(llm_base.RequestPace):
        """The pace the models build, with a half-second window (a minute is too long for a test)."""

        def __init__(self, per_minute: int) -> None:
            super().__init__(per_minute, window_s=0.5)
            self.waits = 0
            paces.append(self)

        async def wait(self) -> None:
            self.waits += 1
            await super().wait()

    monkeypatch.setattr(llm_base, "RequestPace", ShortPace)
    keywords = ["first idea", "second idea"]
    scripted = ScriptedModel(server, {(k, kind): [REFUSAL] for k in keywords for kind in (WRITE, REVISE)})
    run_settings = settings(base_url=server.base_url, max_rounds=2, max_requests_per_minute=1)
    summary = synthesize(keywords, catalog=catalog, run_id="r", settings=run_settings, resumed=False)

    assert summary.status == "finished" and scripted.problems == []
    assert [t.status for t in summary.tasks] == ["rejected", "rejected"]
    assert [p.per_minute for p in paces] == [1]  # the writer's (the judge was never asked)
    assert paces[0].waits == len(server.received) == 4


# -- 7. a 429 storm ------------------------------------------------------------------------------------
def test_a_429_storm_is_absorbed_and_nothing_is_lost(server: FakeOpenAI, catalog: Catalog) -> None:
    keywords = {"base conversion": "base", "0/1 knapsack": "knapsack"}
    scripted = ScriptedModel(
        server,
        {key: steps for k, g in keywords.items() for key, steps in
         (((k, WRITE), [good(g)]), ((k, JUDGE), [verdict()]))},
    )  # fmt: skip
    arrivals: Counter[str] = Counter()

    def storm(body: dict[str, Any]) -> Reply:
        """429 (Retry-After: 0) to the first three attempts of every request: 3 in 4 answers."""
        key = json.dumps(body.get("messages"), sort_keys=True)
        arrivals[key] += 1
        if arrivals[key] <= 3:
            return server.rate_limited("0")
        return scripted(body)

    server.responder = storm
    summary = run(catalog, server, list(keywords), settings(), max_attempts=5)

    assert summary.status == "finished" and scripted.problems == []
    assert all(t.status == "accepted" and t.rounds == 1 for t in summary.tasks)
    recorded = calls(catalog, "r")
    assert len(recorded) == 4 and all((c.call.attempts, c.call.error) == (4, None) for c in recorded)
    assert len(server.received) == 16 and summary.stats.failed_calls == 0
    assert_consistent(catalog)


# -- 8. --batch-api ------------------------------------------------------------------------------------
FAST_BATCHES = BatchSettings(collect_window_s=0.05, poll_interval_s=0.05, max_poll_interval_s=0.2)


def test_batch_api_run_is_accepted_at_half_price(server: FakeOpenAI, catalog: Catalog) -> None:
    scripted = ScriptedModel(
        server, {("base conversion", WRITE): [good("base")], ("base conversion", JUDGE): [verdict()]}
    )
    summary = run(catalog, server, ["base conversion"], settings(batch_api=True, batch=FAST_BATCHES))

    assert summary.status == "finished" and scripted.problems == []
    assert tasks(catalog)["base conversion"].status == "accepted"
    assert server.received_on("/v1/chat/completions") == []  # no direct call
    assert len(server.batches) == 2  # the write, then the judge
    recorded = calls(catalog, "r")
    assert [c.call.template for c in recorded] == ["write", "judge"]
    price = find_price("gpt-4o-mini-2024-07-18")
    assert price is not None
    for stored, batch in zip(recorded, server.batches.values(), strict=True):
        call = stored.call
        assert call.tags["batch_id"] == batch.id and call.attempts == 1
        assert call.tokens_in is not None and call.tokens_out is not None
        assert call.cost_usd == pytest.approx(0.5 * price.cost(call.tokens_in, call.tokens_out))
    assert_consistent(catalog)


def test_batch_api_with_a_replay_model_is_refused_before_anything_is_written(
    tmp_path: Path, catalog: Catalog
) -> None:
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("")
    from resyn.errors import ResynError

    with pytest.raises(ResynError, match=r"--batch-api: replay/.* has no batch API"):
        synthesize(["kw"], catalog=catalog, run_id="r", resumed=False,
                   settings=settings(f"replay/{transcript}", batch_api=True))  # fmt: skip
    assert catalog.get_run("r") is None and not (catalog.path.parent / "r").exists()


# -- 9. progress ---------------------------------------------------------------------------------------
def test_progress_reports_each_finished_keyword(server: FakeOpenAI, catalog: Catalog) -> None:
    keywords = ["first idea", "second idea", "third idea"]
    scripted = ScriptedModel(server, {(k, WRITE): [REFUSAL] for k in keywords})
    seen: list[tuple[int, int, int, int]] = []

    def on_progress(progress: RunProgress) -> None:
        seen.append((progress.done, progress.total, progress.accepted, progress.in_flight))

    models = fake_models(server, catalog, "r")
    summary = synthesize(keywords, catalog=catalog, run_id="r", settings=settings(concurrency=1, max_rounds=1),
                         resumed=False, on_progress=on_progress, **models)  # fmt: skip
    assert summary.status == "finished" and scripted.problems == []
    assert seen == [(0, 3, 0, 1), (1, 3, 0, 0), (1, 3, 0, 1), (2, 3, 0, 0), (2, 3, 0, 1), (3, 3, 0, 0)]
