"""The synthesis loop end to end through its API (``resyn.synth.run.synthesize``): the bundled demo
transcript, the real ``openai`` and ``anthropic`` SDKs against the loopback fake providers with
injected faults, hostile modules from the model, fatal provider errors, interruption and resume,
and concurrency. The model's side is scripted (``tests/synth_helpers.py``); extraction, the
sandboxed checks, judge parsing and the catalog run for real."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resyn.catalog import Catalog, StoredCall, TaskRecord
from resyn.checks import CheckConfig, CheckReport, run_checks
from resyn.demo import KEYWORDS, TRANSCRIPT, demo_settings, transcript_text
from resyn.llm import Model
from resyn.sandbox import SandboxConfig
from resyn.synth import loop
from resyn.synth.loop import RunAborted, SynthesisSettings
from resyn.synth.run import RunSummary, run_dir_for, synthesize
from tests.llm_servers import FakeAnthropic, FakeOpenAI, Reply
from tests.synth_helpers import (
    BAD_VERDICT,
    JUDGE,
    REFUSAL,
    REVISE,
    WRITE,
    ScriptedModel,
    Truncated,
    answer,
    fake_models,
    fenced,
    good,
    settings,
    verdict,
)

pytestmark = pytest.mark.usefixtures("offline")


# -- helpers -----------------------------------------------------------------------------------------
def run(
    catalog: Catalog,
    keywords: list[str],
    run_settings: SynthesisSettings,
    *,
    run_id: str = "r",
    resumed: bool = False,
    models: dict[str, Model] | None = None,
) -> RunSummary:
    return synthesize(
        keywords,
        catalog=catalog,
        run_id=run_id,
        settings=run_settings,
        resumed=resumed,
        writer=(models or {}).get("writer"),
        judge_model=(models or {}).get("judge_model"),
    )


def tasks(catalog: Catalog, run_id: str = "r") -> dict[str, TaskRecord]:
    return {task.keyword: task for task in catalog.tasks(run_id)}


def run_status(catalog: Catalog, run_id: str = "r") -> str:
    record = catalog.get_run(run_id)
    assert record is not None
    return record.status


def calls_of(catalog: Catalog, task: TaskRecord, template: str | None = None) -> list[StoredCall]:
    return [c for c in catalog.calls(task_id=task.task_id) if template is None or c.call.template == template]


def prompt(stored: StoredCall) -> str:
    """The user message of a recorded request."""
    return str(stored.call.request["messages"][-1]["content"])


def assert_consistent(catalog: Catalog, run_id: str = "r") -> None:
    """What must hold of any run's rows, whatever happened to it."""
    for task in catalog.tasks(run_id):
        rounds = catalog.candidates(task.task_id)
        assert [c.round for c in rounds] == list(range(1, len(rounds) + 1)), task.keyword
        for candidate in rounds:
            assert candidate.run_id == run_id and candidate.keyword == task.keyword
            if candidate.code is not None:
                assert candidate.extracted and candidate.code_sha256 is not None
        if task.status in ("accepted", "rejected"):
            assert all(c.outcome is not None for c in rounds), task.keyword
            assert task.rounds == len(rounds), task.keyword
        if task.status == "accepted":
            assert task.env_id is not None and task.reason is None
            env = catalog.environment(task.env_id)
            last = rounds[-1]
            assert last.outcome == "accepted" and last.passed_judge and last.passed_checks
            assert (env.task_id, env.candidate_id, env.code) == (task.task_id, last.candidate_id, last.code)
            assert env.lineage.candidate_ids == [c.candidate_id for c in rounds]
            assert env.lineage.call_ids == catalog.call_ids(task_id=task.task_id)
            assert all(c.outcome != "accepted" for c in rounds[:-1])
        else:
            assert task.env_id is None and all(c.outcome != "accepted" for c in rounds)
    stats = catalog.stats(run_id)
    accepted = sum(t.status == "accepted" for t in catalog.tasks(run_id))
    assert stats.funnel.accepted == accepted == stats.environments


# -- 1. the demo -------------------------------------------------------------------------------------
def test_demo_transcript_is_built_from_the_script_and_answers() -> None:
    assert transcript_text() == TRANSCRIPT.read_text(encoding="utf-8"), (
        "resyn/demo/transcript.jsonl is stale: rewrite it from resyn.demo.transcript_text()"
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Catalog, RunSummary]]:
    """The demo run through the API, once for the module (default check thresholds)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Catalog.open(path) as opened:
        summary = synthesize(
            list(KEYWORDS), catalog=opened, run_id="demo", settings=demo_settings(), resumed=False
        )
        yield opened, summary


def test_demo_outcomes(demo: tuple[Catalog, RunSummary]) -> None:
    catalog, summary = demo
    assert summary.status == "finished" and run_status(catalog, "demo") == "finished"
    assert demo_settings().checks == CheckConfig()  # this test runs the default thresholds
    by_keyword = tasks(catalog, "demo")
    assert {k: (t.status, t.rounds) for k, t in by_keyword.items()} == {
        "base conversion": ("accepted", 1),
        "the Josephus problem": ("accepted", 2),
        "0/1 knapsack": ("accepted", 2),
        "proving the Riemann hypothesis": ("rejected", 3),
    }
    outcomes = {
        k: [(c.outcome, c.reason) for c in catalog.candidates(t.task_id)] for k, t in by_keyword.items()
    }
    assert [o for o, _ in outcomes["the Josephus problem"]] == ["checks_failed", "accepted"]
    assert "shotgun" in str(outcomes["the Josephus problem"][0][1])
    assert [o for o, _ in outcomes["0/1 knapsack"]] == ["judge_rejected", "accepted"]
    riemann = outcomes["proving the Riemann hypothesis"]
    assert [o for o, _ in riemann] == ["no_code", "no_code", "checks_failed"]
    assert riemann[0][1] == "no module in the answer: no_code"  # a refusal in prose
    assert riemann[1][1] == "no module in the answer: truncated"
    assert by_keyword["proving the Riemann hypothesis"].reason == riemann[2][1]

    # base conversion: one malformed verdict, then a valid one; both calls recorded
    base = by_keyword["base conversion"]
    judge_calls = calls_of(catalog, base, "judge")
    assert len(judge_calls) == 2
    assert judge_calls[0].call.error_type == "StructuredOutputError" and judge_calls[1].call.error is None
    (candidate,) = catalog.candidates(base.task_id)
    (stored_verdict,) = catalog.verdicts(candidate.candidate_id)
    assert stored_verdict.accept is True and stored_verdict.call_id == judge_calls[1].call_id
    assert stored_verdict.scores["faithfulness"] == 5


def test_demo_revise_prompts_carry_the_evidence(demo: tuple[Catalog, RunSummary]) -> None:
    catalog, _ = demo
    by_keyword = tasks(catalog, "demo")

    josephus = by_keyword["the Josephus problem"]
    first, second = catalog.candidates(josephus.task_id)
    (revise,) = calls_of(catalog, josephus, "revise")
    assert first.feedback is not None and "## shotgun" in first.feedback and "answer tried:" in first.feedback
    text = prompt(revise)
    assert first.feedback in text and first.code is not None and first.code.rstrip() in text
    assert revise.call.tags["candidate_id"] == second.candidate_id and second.parent_id == first.candidate_id

    knapsack = by_keyword["0/1 knapsack"]
    first, second = catalog.candidates(knapsack.task_id)
    (revise,) = calls_of(catalog, knapsack, "revise")
    judge_feedback = json.loads(answer("knapsack.verdict-1.json"))["feedback"]
    assert first.feedback is not None and judge_feedback in first.feedback
    assert judge_feedback in prompt(revise) and "self_contained 2/5" in prompt(revise)
    assert second.parent_id == first.candidate_id

    riemann = by_keyword["proving the Riemann hypothesis"]
    second_round, third_round = (prompt(c) for c in calls_of(catalog, riemann, "revise"))
    assert "contained no Python code" in second_round
    assert "cut off at the output token limit" in third_round
    assert "Your previous reply contained no usable module." in third_round  # no parent code to show
    assert all(c.parent_id is None for c in catalog.candidates(riemann.task_id))


def test_demo_funnel_and_lineage(demo: tuple[Catalog, RunSummary]) -> None:
    catalog, summary = demo
    stats = summary.stats
    assert stats.funnel.model_dump() == {
        "written": 8,
        "extracted": 6,
        "passed_static": 6,
        "passed_checks": 4,
        "passed_judge": 3,
        "accepted": 3,
    }
    assert stats.tasks == {"accepted": 3, "rejected": 1}
    assert stats.outcomes == {"accepted": 3, "checks_failed": 2, "no_code": 2, "judge_rejected": 1}
    assert stats.failed_checks == {"long_answers": 2, "diversity": 1, "numeric_perturbation": 1, "shotgun": 1}
    assert (stats.calls, stats.failed_calls, stats.judge_rejected, stats.judge_errors) == (13, 1, 1, 0)
    assert stats.mean_rounds_to_acceptance == pytest.approx(5 / 3)

    environments = catalog.list_environments(run_id="demo")
    assert sorted(e.keyword for e in environments) == [
        "0/1 knapsack",
        "base conversion",
        "the Josephus problem",
    ]
    for summary_row in environments:
        env = catalog.environment(summary_row.env_id)
        task = tasks(catalog, "demo")[env.keyword]
        rounds = catalog.candidates(task.task_id)
        all_calls = catalog.calls(task_id=task.task_id)
        assert env.lineage.call_ids == [c.call_id for c in all_calls] and all_calls
        assert env.lineage.candidate_ids == [c.candidate_id for c in rounds]
        # every call of a round is tagged with it; every module comes from a recorded write call
        assert {c.candidate_id for c in all_calls} == set(env.lineage.candidate_ids)
        for candidate in rounds:
            assert candidate.write_call_id in env.lineage.call_ids
        for parent, child in itertools.pairwise(rounds):
            assert child.parent_id == parent.candidate_id
    assert_consistent(catalog, "demo")

    run_dir = Path(summary.run_dir)
    assert run_dir == run_dir_for(catalog.path, "demo")
    assert json.loads((run_dir / "config.json").read_text())["keywords"] == list(KEYWORDS)
    assert len((run_dir / "calls.jsonl").read_text().splitlines()) == 13
    assert "accepted as base_conversion-" in (run_dir / "log.txt").read_text()


# -- 2. the OpenAI SDK against the fake server -------------------------------------------------------
def test_transport_faults_are_retried_inside_a_call(server: FakeOpenAI, catalog: Catalog) -> None:
    scripted = ScriptedModel(
        server,
        {
            ("base conversion", WRITE): [server.rate_limited("0.3"), server.server_error(500), good("base")],
            ("base conversion", JUDGE): [server.slow(10.0, "too late"), verdict()],
        },
    )
    summary = run(
        catalog, ["base conversion"], settings(), models=fake_models(server, catalog, "r", timeout_s=2.0)
    )

    assert summary.status == "finished" and scripted.problems == []
    task = tasks(catalog)["base conversion"]
    assert (task.status, task.rounds) == ("accepted", 1)
    (write,) = calls_of(catalog, task, "write")
    (judged,) = calls_of(catalog, task, "judge")
    assert (write.call.attempts, write.call.error) == (3, None)
    assert (judged.call.attempts, judged.call.error) == (2, None)
    assert scripted.count("base conversion", WRITE) == 3 and scripted.count("base conversion", JUDGE) == 2
    first, second = (r.at for r in server.received[:2])
    assert second - first >= 0.25  # the 429's Retry-After was honoured
    assert summary.stats.failed_calls == 0
    assert_consistent(catalog)


def test_an_unreadable_body_errors_the_task_and_a_rerun_continues_it(
    server: FakeOpenAI, catalog: Catalog
) -> None:
    """An unreadable body is not retried within the call (resyn/llm/retry.py): the round ends in
    ``error``, the task too, and rerunning the same run continues the same round."""
    scripted = ScriptedModel(server, {("base conversion", WRITE): [server.malformed_json()]})
    first = run(catalog, ["base conversion"], settings(), models=fake_models(server, catalog, "r"))
    task = tasks(catalog)["base conversion"]
    assert first.status == "finished" and task.status == "error" and task.rounds == 0
    assert "unreadable response" in (task.reason or "")
    (candidate,) = catalog.candidates(task.task_id)
    assert candidate.outcome == "error" and candidate.code is None

    scripted.add("base conversion", WRITE, good("base"))
    scripted.add("base conversion", JUDGE, verdict())
    second = run(
        catalog, ["base conversion"], settings(), resumed=True, models=fake_models(server, catalog, "r")
    )
    task = tasks(catalog)["base conversion"]
    assert second.status == "finished" and (task.status, task.rounds) == ("accepted", 1)
    (again,) = catalog.candidates(task.task_id)
    assert again.candidate_id == candidate.candidate_id and again.outcome == "accepted"
    assert scripted.count("base conversion", WRITE) == 2 and scripted.problems == []
    assert_consistent(catalog)


def test_a_truncated_module_is_a_no_code_round_then_revised(server: FakeOpenAI, catalog: Catalog) -> None:
    module = good("base")
    scripted = ScriptedModel(
        server,
        {
            ("base conversion", WRITE): [Truncated(module[: len(module) // 2])],
            ("base conversion", REVISE): [module],
            ("base conversion", JUDGE): [verdict()],
        },
    )
    run(catalog, ["base conversion"], settings(), models=fake_models(server, catalog, "r"))

    assert scripted.problems == []
    task = tasks(catalog)["base conversion"]
    assert (task.status, task.rounds) == ("accepted", 2)
    first, second = catalog.candidates(task.task_id)
    assert (first.outcome, first.reason, first.code) == (
        "no_code",
        "no module in the answer: truncated",
        None,
    )
    assert catalog.check_report(first.candidate_id) is None  # nothing to check
    (write_body,) = scripted.bodies("base conversion", WRITE)
    assert write_body["max_tokens"] == settings().write_max_tokens
    (revise_body,) = scripted.bodies("base conversion", REVISE)
    assert first.feedback is not None and first.feedback in revise_body["messages"][-1]["content"]
    assert "cut off at the output token limit" in first.feedback
    (write,) = calls_of(catalog, task, "write")
    assert write.call.finish_reason == "length" and write.call.raw_finish_reason == "length"
    assert second.outcome == "accepted"
    assert_consistent(catalog)


def test_a_judge_that_breaks_the_schema_twice_is_rejudged_on_rerun(
    server: FakeOpenAI, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_runs: list[str] = []

    def counted(code: str, **kwargs: Any) -> CheckReport:
        check_runs.append(code)
        return run_checks(code, **kwargs)

    monkeypatch.setattr(loop, "run_checks", counted)
    scripted = ScriptedModel(
        server,
        {
            ("base conversion", WRITE): [good("base")],
            ("base conversion", JUDGE): [BAD_VERDICT, "The module looks fine to me."],
        },
    )
    first = run(catalog, ["base conversion"], settings(), models=fake_models(server, catalog, "r"))
    task = tasks(catalog)["base conversion"]
    assert first.status == "finished" and task.status == "error" and "judge failed" in (task.reason or "")
    (candidate,) = catalog.candidates(task.task_id)
    assert candidate.outcome == "judge_error" and candidate.passed_checks and not candidate.passed_judge
    (failed,) = catalog.verdicts(candidate.candidate_id)
    assert failed.accept is None and "malformed verdict twice" in (failed.error or "")
    assert first.stats.judge_errors == 1 and len(check_runs) == 1

    scripted.add("base conversion", JUDGE, verdict())
    second = run(
        catalog, ["base conversion"], settings(), resumed=True, models=fake_models(server, catalog, "r")
    )
    task = tasks(catalog)["base conversion"]
    assert second.status == "finished" and (task.status, task.rounds) == ("accepted", 1)
    (again,) = catalog.candidates(task.task_id)
    assert again.candidate_id == candidate.candidate_id and again.outcome == "accepted"
    # the same module was judged again: no new write, no new check run
    assert scripted.count("base conversion", WRITE) == 1 and scripted.count("base conversion", JUDGE) == 3
    assert len(check_runs) == 1
    assert [v.accept for v in catalog.verdicts(candidate.candidate_id)] == [None, True]
    assert scripted.problems == []
    assert_consistent(catalog)


# -- 3. the Anthropic SDK ----------------------------------------------------------------------------
def test_anthropic_tool_use_verdict_and_one_schema_retry(
    anthropic_server: FakeAnthropic, catalog: Catalog
) -> None:
    server = anthropic_server
    scripted = ScriptedModel(
        server,
        {
            ("0/1 knapsack", WRITE): [server.server_error(529), good("knapsack")],
            ("0/1 knapsack", JUDGE): [BAD_VERDICT, verdict(feedback="A fair 0/1 knapsack.")],
        },
    )
    spec = "anthropic/claude-test"
    summary = run(
        catalog, ["0/1 knapsack"], settings(spec), models=fake_models(server, catalog, "r", spec=spec)
    )
    assert summary.status == "finished" and scripted.problems == []
    task = tasks(catalog)["0/1 knapsack"]
    assert (task.status, task.rounds) == ("accepted", 1)
    judge_body = scripted.bodies("0/1 knapsack", JUDGE)[0]
    assert [tool["name"] for tool in judge_body["tools"]] == ["Verdict"]
    assert judge_body["tool_choice"] == {"type": "tool", "name": "Verdict"}
    assert judge_body["system"] and all(m["role"] != "system" for m in judge_body["messages"])
    first, second = calls_of(catalog, task, "judge")
    assert first.call.error_type == "StructuredOutputError" and second.call.error is None
    (candidate,) = catalog.candidates(task.task_id)
    (stored,) = catalog.verdicts(candidate.candidate_id)
    assert stored.call_id == second.call_id and stored.feedback == "A fair 0/1 knapsack."
    (write,) = calls_of(catalog, task, "write")
    assert write.call.attempts == 2 and write.call.requested_model == spec
    assert_consistent(catalog)


# -- 4. hostile modules ------------------------------------------------------------------------------
SECRET = "sk-test-secret-4f1c9a"

STEAL_ENVIRON = '''
"""Pretends to be arithmetic; reads the process environment into its questions."""
import os
from resyn import Environment

class StealEnviron(Environment):
    """Pretends to be arithmetic."""
    name = "steal_environ"
    max_difficulty = 2

    def generate(self, rng, difficulty):
        loot = {k: v for k, v in os.environ.items()}
        for path in ("/proc/self/environ", "/proc/1/environ"):
            try:
                with open(path, "rb") as fh:
                    loot[path] = fh.read().decode("latin-1")
            except Exception as exc:
                loot[path] = repr(exc)
        return {"a": rng.randint(1, 9), "loot": loot}

    def question(self, instance):
        return f"What is {instance['a']} + 1? Context: {instance['loot']}"

    def verify(self, instance, answer):
        return 1.0 if answer.strip() == str(instance["a"] + 1) else 0.0

    def solution(self, instance):
        return str(instance["a"] + 1)
'''

STEAL_FILE = '''
"""Reads a secret file outside the sandbox and answers with it."""
from resyn import Environment

class StealFile(Environment):
    """Pretends to be a lookup task."""
    name = "steal_file"
    max_difficulty = 2

    def generate(self, rng, difficulty):
        try:
            with open(SECRET_PATH) as fh:
                loot = fh.read()
        except Exception as exc:
            loot = repr(exc)
        return {"loot": loot, "n": rng.randint(1, 100 * difficulty)}

    def question(self, instance):
        return f"Repeat this: {instance['loot']} {instance['n']}"

    def verify(self, instance, answer):
        return 1.0 if instance["loot"] in answer else 0.0

    def solution(self, instance):
        return instance["loot"]
'''

SPIN = '''
"""Never returns from generate."""
from resyn import Environment

class Spin(Environment):
    """Spins."""
    name = "spin"
    max_difficulty = 3

    def generate(self, rng, difficulty):
        while True:
            pass

    def question(self, instance):
        return "What is 1 + 1?"

    def verify(self, instance, answer):
        return 1.0 if answer.strip() == "2" else 0.0
'''


def _tight_sandbox(**fields: Any) -> SandboxConfig:
    """Deadlines short enough that a spinning module costs seconds, not a minute."""
    return SandboxConfig(
        **{
            "item_timeout_s": 1.0,
            "call_overhead_s": 1.0,
            "load_timeout_s": 5.0,
            "worker_failures_per_call": 1,
        }
        | fields
    )


def test_hostile_modules_are_failed_rounds_and_leak_nothing(
    server: FakeOpenAI, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("RESYN_HOSTILE_TOKEN", SECRET)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    monkeypatch.setattr(loop, "SandboxConfig", _tight_sandbox)
    hostile = {
        "stolen environment": STEAL_ENVIRON,
        "stolen file": f"SECRET_PATH = {str(secret_file)!r}\n" + STEAL_FILE,
        "spin forever": SPIN,
    }
    script: dict[tuple[str, str], list[Any]] = {}
    for keyword, code in hostile.items():
        script[(keyword, WRITE)] = [fenced(code)]
        script[(keyword, REVISE)] = [REFUSAL]
    script[("base conversion", WRITE)] = [good("base")]
    script[("base conversion", JUDGE)] = [verdict()]
    scripted = ScriptedModel(server, script)

    summary = run(
        catalog,
        [*hostile, "base conversion"],
        settings(max_rounds=2),
        models=fake_models(server, catalog, "r"),
    )

    assert summary.status == "finished" and scripted.problems == []
    by_keyword = tasks(catalog)
    assert by_keyword["base conversion"].status == "accepted"
    for keyword in hostile:
        task = by_keyword[keyword]
        assert (task.status, task.rounds) == ("rejected", 2), keyword
        first, second = catalog.candidates(task.task_id)
        assert first.outcome == "checks_failed" and second.outcome == "no_code", keyword
        # the evidence went back to the model in the revise prompt
        (revise_body,) = scripted.bodies(keyword, REVISE)
        assert first.feedback is not None and first.feedback in revise_body["messages"][-1]["content"]
    reports = {}
    for keyword in hostile:
        report = catalog.check_report(catalog.candidates(by_keyword[keyword].task_id)[0].candidate_id)
        assert report is not None and not report.accepted
        reports[keyword] = report
    # os and open are refused statically, and the modules still ran, in the sandbox only
    assert {"imports", "diversity"} <= {c.name for c in reports["stolen environment"].failures}
    assert "imports" in {c.name for c in reports["stolen file"].failures}
    assert "FileNotFoundError" in reports["stolen file"].model_dump_json()  # no such file in there
    assert "smoke" in {c.name for c in reports["spin forever"].failures}
    assert "timeout" in reports["spin forever"].feedback()

    # the secret is nowhere: not in any check result, candidate row, verdict or request body
    everything = catalog.sql(
        "SELECT * FROM check_results UNION ALL BY NAME SELECT * FROM candidates", limit=100_000
    )
    assert everything.rows and SECRET not in json.dumps(everything.rows, default=str)
    for task in catalog.tasks("r"):
        for candidate in catalog.candidates(task.task_id):
            assert SECRET not in candidate.model_dump_json()
            report = catalog.check_report(candidate.candidate_id)
            assert report is None or SECRET not in report.model_dump_json()
    assert all(SECRET not in json.dumps(body) for _, _, body in scripted.requests)
    stored_requests = [c.call.request for c in catalog.calls(run_id="r")]
    assert stored_requests and SECRET not in json.dumps(stored_requests)
    assert_consistent(catalog)


# -- 5. fatal provider faults ------------------------------------------------------------------------
def test_a_refused_key_aborts_the_run_and_a_rerun_continues(server: FakeOpenAI, catalog: Catalog) -> None:
    keywords = ["base conversion", "0/1 knapsack", "the Josephus problem"]
    scripted = ScriptedModel(
        server, {("base conversion", WRITE): [server.client_error(401, "Incorrect API key provided")]}
    )
    with pytest.raises(
        RunAborted,
        match=r"HTTP 401 .*Incorrect API key provided.*: the key was refused: check OPENAI_API_KEY",
    ):
        run(catalog, keywords, settings(concurrency=1), models=fake_models(server, catalog, "r"))

    run_record = catalog.get_run("r")
    assert run_record is not None and run_record.status == "failed" and run_record.finished_at is not None
    assert len(server.received) == 1  # one refusal stops the run: no task after task of 401s
    assert all(t.status == "pending" and t.rounds == 0 for t in catalog.tasks("r"))
    assert catalog.list_environments() == [] and catalog.stats("r").funnel.extracted == 0
    base = tasks(catalog)["base conversion"]
    (in_progress,) = catalog.candidates(base.task_id)
    assert in_progress.outcome is None and in_progress.code is None  # unfinished, not failed
    assert "aborted: " in (run_dir_for(catalog.path, "r") / "log.txt").read_text()

    # the key is fixed: the same run continues with the round it stopped in
    scripted.add("base conversion", WRITE, good("base"))
    scripted.add("base conversion", JUDGE, verdict())
    for keyword in keywords[1:]:
        scripted.add(keyword, WRITE, REFUSAL)
    summary = run(
        catalog,
        keywords,
        settings(concurrency=1, max_rounds=1),
        resumed=True,
        models=fake_models(server, catalog, "r"),
    )
    assert summary.status == "finished" and scripted.problems == []
    by_keyword = tasks(catalog)
    assert [by_keyword[k].status for k in keywords] == ["accepted", "rejected", "rejected"]
    (continued,) = catalog.candidates(base.task_id)
    assert continued.candidate_id == in_progress.candidate_id and continued.outcome == "accepted"
    assert_consistent(catalog)


# -- 6. interrupt and resume -------------------------------------------------------------------------
def test_an_interrupted_run_resumes_without_redoing_finished_keywords(
    server: FakeOpenAI, catalog: Catalog
) -> None:
    keywords = ["base conversion", "the Riemann hypothesis", "0/1 knapsack", "the Josephus problem"]

    def ctrl_c(body: dict[str, Any]) -> Reply:
        # Ctrl-C while the third keyword's module is being written; this answer never arrives.
        os.kill(os.getpid(), signal.SIGINT)
        return Reply(body=server.answer(good("knapsack")), delay_s=30)

    scripted = ScriptedModel(
        server,
        {
            ("base conversion", WRITE): [good("base")],
            ("base conversion", JUDGE): [verdict()],
            ("the Riemann hypothesis", WRITE): [REFUSAL],
            ("0/1 knapsack", WRITE): [ctrl_c],
        },
    )
    run_settings = settings(concurrency=1, max_rounds=1)
    first = run(catalog, keywords, run_settings, models=fake_models(server, catalog, "r"))

    assert first.status == "interrupted" and run_status(catalog) == "interrupted"
    assert [t.status for t in first.tasks] == ["accepted", "rejected", "pending", "pending"]
    knapsack = tasks(catalog)["0/1 knapsack"]
    (interrupted,) = catalog.candidates(knapsack.task_id)
    assert interrupted.outcome is None and interrupted.code is None
    assert catalog.candidates(tasks(catalog)["the Josephus problem"].task_id) == []
    assert_consistent(catalog)
    before = dict(scripted.calls)

    scripted.add("0/1 knapsack", WRITE, good("knapsack"))
    scripted.add("0/1 knapsack", JUDGE, verdict())
    scripted.add("the Josephus problem", WRITE, REFUSAL)
    second = run(catalog, keywords, run_settings, resumed=True, models=fake_models(server, catalog, "r"))

    assert second.status == "finished" and scripted.problems == []
    assert [t.status for t in second.tasks] == ["accepted", "rejected", "accepted", "rejected"]
    # finished keywords were not asked for again
    for keyword in ("base conversion", "the Riemann hypothesis"):
        assert scripted.count(keyword) == sum(n for (k, _), n in before.items() if k == keyword), keyword
    assert scripted.count("0/1 knapsack", WRITE) == 2 and scripted.count("the Josephus problem") == 1
    (continued,) = catalog.candidates(knapsack.task_id)
    assert continued.candidate_id == interrupted.candidate_id and continued.outcome == "accepted"
    assert run_status(catalog) == "finished"
    assert len(catalog.list_environments(run_id="r")) == 2
    assert_consistent(catalog)


# -- 7. concurrency ----------------------------------------------------------------------------------
@pytest.mark.parametrize("concurrency", [1, 3])
def test_keywords_in_flight_are_bounded_by_concurrency(
    server: FakeOpenAI, catalog: Catalog, concurrency: int
) -> None:
    """The models are the ones ``synthesize`` builds from the settings (``base_url``)."""
    keywords = [f"puzzle number {i}" for i in range(2 * concurrency + 1)]
    scripted = ScriptedModel(server, {(k, WRITE): [REFUSAL] for k in keywords})
    server.latency_s = 0.4
    run_settings = settings("openai/m", base_url=server.base_url, concurrency=concurrency, max_rounds=1)
    summary = run(catalog, keywords, run_settings)

    assert summary.status == "finished" and scripted.problems == []
    assert all(t.status == "rejected" for t in summary.tasks)
    assert scripted.count(kind=WRITE) == len(keywords)
    assert server.max_in_flight == concurrency
    assert summary.stats.calls == len(keywords)  # recorded by the models synthesize built
    assert len((run_dir_for(catalog.path, "r") / "calls.jsonl").read_text().splitlines()) == len(keywords)
