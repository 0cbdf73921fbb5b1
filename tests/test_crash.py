"""kill -9 in the middle of ``resyn synthesize``, then the same command again.

A real ``python -m resyn synthesize`` process (sandboxed checks and all) runs six keywords at
concurrency 2 against a fake OpenAI server in this process, which writes a good module per keyword
(the bundled base-conversion module under a name of its own) and accepts it, after a fixed latency.
The process group is SIGKILLed at a chosen point; then the catalog must open cleanly and hold every
environment accepted before the kill, complete, and the same command must finish the run without
asking again for anything that was already stored:

* between steps: once one keyword is accepted and calls for others are in flight;
* during the judge call of one keyword (the server holds that call until the kill): the rerun
  judges the same candidate again without a new write request and without rerunning its checks;
* during the check suite of one keyword (its module is made slow to check): the rerun runs the
  checks of the same candidate without a new write request.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resyn.catalog import Catalog
from resyn.catalog.records import CandidateRecord
from tests.llm_servers import CREDENTIAL_VARIABLES, NOWHERE, FakeOpenAI, Reply

pytestmark = pytest.mark.slow

KEYWORDS = [f"K{i}" for i in range(1, 7)]
RUN = "crash"
LATENCY_S = 1.0
"""Per call: with ~1.5 s of checks per keyword, the first session runs for several seconds."""
HOLD_S = 600.0
"""A held judge call answers only after this long (the client is killed long before)."""
SLOW_SPIN = 100_000
"""Loop length added to ``generate`` of the slow-to-check module: its check suite takes ~7 s
alone, longer on a busy machine."""
STORE_S = 2.0
"""Time the client gets to store a module it was sent before the kill (it takes ~50 ms)."""


def _load_fake_provider() -> ModuleType:
    """``benchmarks/fake_provider.py`` (not a package): its fake writer's modules are distinct per
    keyword, so resyn's near-duplicate filter keeps all six."""
    path = Path(__file__).parents[1] / "benchmarks" / "fake_provider.py"
    spec = importlib.util.spec_from_file_location("resyn_benchmarks_fake_provider", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fake_provider = _load_fake_provider()
env_name: Callable[[str], str] = fake_provider.env_name_for
classify: Callable[[dict[str, Any]], tuple[str, str]] = fake_provider.classify
VERDICT: str = fake_provider.verdict_answer()


def write_answer(keyword: str, *, slow: bool = False) -> str:
    """The fake writer's module for ``keyword``; ``slow`` adds a busy loop to ``generate`` that
    keeps it well within the timing check but makes the suite take several seconds."""
    text: str = fake_provider.write_answer(keyword)
    if slow:
        text = text.replace(
            "        digits = 1 + 2 * difficulty\n",
            f"        digits = 1 + 2 * difficulty\n        _spin = sum(i * i for i in range({SLOW_SPIN}))\n",
        )
        assert "_spin" in text
    return text


class Script:
    """The fake's responder: a good module per keyword, an accepting verdict. ``hold_judge``: the
    first judge call for that keyword is answered only after ``HOLD_S``; ``slow_module``: that
    keyword's module is slow to check."""

    def __init__(self, server: FakeOpenAI, *, hold_judge: str | None = None, slow_module: str | None = None):
        self.server = server
        self.hold_judge = hold_judge
        self.slow_module = slow_module
        self.calls: list[tuple[str, str, float]] = []
        """(kind, keyword, arrival time) of every request."""
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        kind, keyword = classify(body)
        with self.lock:
            held = kind == "judge" and keyword == self.hold_judge and self.count(kind, keyword) == 0
            self.calls.append((kind, keyword, time.monotonic()))
        if kind == "judge":
            return Reply(body=self.server.answer(VERDICT), delay_s=HOLD_S if held else 0.0)
        return Reply(body=self.server.answer(write_answer(keyword, slow=keyword == self.slow_module)))

    def count(self, kind: str | None = None, keyword: str | None = None) -> int:
        return sum(1 for k, w, _ in self.calls if kind in (None, k) and keyword in (None, w))

    def counts(self) -> Counter[tuple[str, str]]:
        with self.lock:
            return Counter((kind, keyword) for kind, keyword, _ in self.calls)


@pytest.fixture
def server() -> Any:
    with FakeOpenAI() as fake:
        fake.latency_s = LATENCY_S
        yield fake


def child_env() -> dict[str, str]:
    """The environment of the ``resyn`` process: no key, no real endpoint, offline guard on."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    env.pop("PYTEST_CURRENT_TEST", None)  # offline through RESYN_LLM_OFFLINE alone, as a user would
    env.update(
        OPENAI_BASE_URL=NOWHERE + "/v1",
        ANTHROPIC_BASE_URL=NOWHERE,
        RESYN_LLM_OFFLINE="1",
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


def command(server: FakeOpenAI, catalog: Path) -> list[str]:
    return [
        sys.executable, "-m", "resyn", "synthesize", *KEYWORDS,
        "--model", "openai/m", "--base-url", server.base_url,
        "--catalog", str(catalog), "--run", RUN, "--concurrency", "2", "--json",
    ]  # fmt: skip


def descendants(root: int) -> set[int]:
    """Pids of ``root``'s process tree (sandbox workers included: they are in sessions of their own)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return tree


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def start_and_kill(tmp_path: Path, server: FakeOpenAI, when: Callable[[], bool]) -> set[int]:
    """Run the command until ``when()`` holds, then SIGKILL its process group; assert that the
    sandbox workers (in sessions of their own) died with it. Returns the pids the run had."""
    out = (tmp_path / "first.out").open("w")
    proc = subprocess.Popen(
        command(server, tmp_path / "c.duckdb"),
        cwd=tmp_path,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not when():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the kill point:\n{(tmp_path / 'first.out').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"kill point not reached in 180 s:\n{(tmp_path / 'first.out').read_text()}")
            time.sleep(0.02)
        tree = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        out.close()
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in tree if alive(pid)], "processes of the killed run outlived it"
    return tree


def log_text(tmp_path: Path) -> str:
    log = tmp_path / RUN / "log.txt"
    return log.read_text() if log.exists() else ""


def accepted_in_log(tmp_path: Path) -> set[str]:
    return set(re.findall(r"'(K\d)': accepted as ", log_text(tmp_path)))


class Snapshot:
    """What the catalog held right after the kill."""

    def __init__(self, catalog: Catalog) -> None:
        self.tasks = {t.keyword: t for t in catalog.tasks(RUN)}
        self.candidates: dict[str, list[CandidateRecord]] = {
            k: catalog.candidates(t.task_id) for k, t in self.tasks.items()
        }
        self.accepted = {k for k, t in self.tasks.items() if t.status == "accepted"}
        self.written = {k for k, cands in self.candidates.items() if any(c.code for c in cands)}
        # A verdict stored before the kill is reused by the rerun, not asked for again.
        self.judged = {
            k
            for k, cands in self.candidates.items()
            if k not in self.accepted
            and any(v.verdict for c in cands for v in catalog.verdicts(c.candidate_id))
        }
        self.report_times = {
            c.candidate_id: catalog.sql(
                f"SELECT created_at FROM check_reports WHERE candidate_id = '{c.candidate_id}'"
            ).rows
            for cands in self.candidates.values()
            for c in cands
        }


def assert_environment_complete(catalog: Catalog, keyword: str) -> None:
    """The task is accepted and its environment row is whole: code, hash, lineage back to calls."""
    task = next(t for t in catalog.tasks(RUN) if t.keyword == keyword)
    assert task.status == "accepted" and task.env_id, task
    env = catalog.environment(task.env_id)
    assert env.keyword == keyword and env.name == env_name(keyword)
    assert f'name = "{env_name(keyword)}"' in env.code and "def verify" in env.code
    assert env.code_sha256 == hashlib.sha256(env.code.encode()).hexdigest()
    candidate = catalog.candidate(env.candidate_id)
    assert candidate is not None and candidate.outcome == "accepted" and candidate.code == env.code
    assert env.lineage.candidate_ids == [c.candidate_id for c in catalog.candidates(task.task_id)]
    assert env.lineage.candidate_ids[-1] == env.candidate_id
    calls = catalog.calls(call_ids=env.lineage.call_ids)
    assert len(calls) == len(env.lineage.call_ids) >= 2
    assert candidate.write_call_id in env.lineage.call_ids
    assert {c.call.template for c in calls} >= {"write", "judge"}
    assert catalog.verdicts(env.candidate_id)[-1].accept is True


def inspect_after_kill(tmp_path: Path) -> Snapshot:
    """The killed run's catalog opens read-only and as a writer, and every environment accepted
    before the kill (per the log, written after the commit) is in it, complete."""
    path = tmp_path / "c.duckdb"
    with Catalog.open(path, read_only=True) as reader:
        assert {t.keyword for t in reader.tasks(RUN)} == set(KEYWORDS)
    with Catalog.open(path) as catalog:
        run = catalog.get_run(RUN)
        assert run is not None and run.status == "running"  # killed: no chance to say otherwise
        snapshot = Snapshot(catalog)
        assert accepted_in_log(tmp_path) <= snapshot.accepted
        assert snapshot.accepted, "the kill came before any acceptance"
        for keyword in snapshot.accepted:
            assert_environment_complete(catalog, keyword)
        assert len(catalog.list_environments(run_id=RUN)) == len(snapshot.accepted)
    with Catalog.open(path, read_only=True) as reader:
        assert reader.stats(RUN).environments == len(snapshot.accepted)
    return snapshot


def rerun_and_verify(tmp_path: Path, server: FakeOpenAI, script: Script, before: Snapshot) -> Catalog:
    """The same command again: it finishes every keyword, asks nothing again for what was stored,
    and leaves six complete environments. Returns the catalog, open read-only."""
    counts_before = script.counts()
    done = subprocess.run(
        command(server, tmp_path / "c.duckdb"),
        cwd=tmp_path,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "finished"
    assert {t["keyword"]: t["status"] for t in summary["tasks"]} == dict.fromkeys(KEYWORDS, "accepted")
    assert f"resumed; {len(before.accepted)} already finished" in done.stderr

    new = script.counts() - counts_before
    for keyword in before.accepted:
        assert not [k for k in new if k[1] == keyword], f"{keyword} was finished, yet asked again: {new}"
    for keyword in before.written:
        assert new[("write", keyword)] == 0, f"{keyword}'s module was stored, yet written again"
    for keyword in set(KEYWORDS) - before.written:
        assert new[("write", keyword)] == 1
    for keyword in before.judged:
        assert new[("judge", keyword)] == 0, f"{keyword}'s verdict was stored, yet asked again"
    expected_judge_calls = len(KEYWORDS) - len(before.accepted) - len(before.judged)
    assert sum(n for (kind, _), n in new.items() if kind == "judge") == expected_judge_calls

    path = tmp_path / "c.duckdb"
    catalog = Catalog.open(path, read_only=True)
    try:
        after = Snapshot(catalog)
        assert after.accepted == set(KEYWORDS)
        for keyword in KEYWORDS:
            assert_environment_complete(catalog, keyword)
            ids_before = [c.candidate_id for c in before.candidates[keyword]]
            ids_after = [c.candidate_id for c in after.candidates[keyword]]
            # An interrupted round is continued, not started over: one candidate per keyword.
            assert len(ids_after) == 1 and ids_after[: len(ids_before)] == ids_before, keyword
        environments = catalog.list_environments(run_id=RUN)
        assert len(environments) == 6
        assert sorted(e.name for e in environments) == sorted(env_name(k) for k in KEYWORDS)
        stats = catalog.stats(RUN)
        assert stats.environments == 6 and stats.tasks == {"accepted": 6}
        run = catalog.get_run(RUN)
        assert run is not None and run.status == "finished"
    except BaseException:
        catalog.close()
        raise
    cli_stats = subprocess.run(
        [sys.executable, "-m", "resyn", "catalog", "stats", "--catalog", str(path), "--json"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli_stats.returncode == 0, cli_stats.stderr
    assert json.loads(cli_stats.stdout)["environments"] == 6
    human = subprocess.run(
        [sys.executable, "-m", "resyn", "catalog", "stats", "--catalog", str(path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert human.returncode == 0 and "6 environments" in human.stdout, human.stdout + human.stderr
    return catalog


def test_kill_between_steps_then_rerun_finishes_without_redoing_work(
    tmp_path: Path, server: FakeOpenAI
) -> None:
    script = Script(server)
    server.responder = script

    def one_accepted_and_calls_in_flight() -> bool:
        return bool(accepted_in_log(tmp_path)) and server.in_flight > 0

    start_and_kill(tmp_path, server, one_accepted_and_calls_in_flight)
    before = inspect_after_kill(tmp_path)
    assert len(before.accepted) < len(KEYWORDS)
    rerun_and_verify(tmp_path, server, script, before).close()


def test_kill_during_judge_call_continues_the_same_candidate(tmp_path: Path, server: FakeOpenAI) -> None:
    script = Script(server, hold_judge="K3")
    server.responder = script
    start_and_kill(tmp_path, server, lambda: script.count("judge", "K3") > 0)

    before = inspect_after_kill(tmp_path)
    assert before.tasks["K3"].status == "pending"
    [held] = before.candidates["K3"]
    assert held.code is not None and held.outcome is None
    assert before.report_times[held.candidate_id], "K3's check report was stored before its judge call"
    assert script.count("write", "K3") == 1

    with rerun_and_verify(tmp_path, server, script, before) as catalog:
        assert script.count("write", "K3") == 1  # no new write request for the interrupted candidate
        assert script.count("judge", "K3") == 2  # the held call, then the one that answered
        task = next(t for t in catalog.tasks(RUN) if t.keyword == "K3")
        assert catalog.environment(task.env_id or "").candidate_id == held.candidate_id
        # Its checks were not run again: the stored report is the one from before the kill.
        assert Snapshot(catalog).report_times[held.candidate_id] == before.report_times[held.candidate_id]
        assert log_text(tmp_path).count("'K3' round 1: checks passed") == 2  # once per session


def test_kill_during_checks_continues_the_same_candidate(tmp_path: Path, server: FakeOpenAI) -> None:
    script = Script(server, slow_module="K3")
    server.responder = script

    def k3_checks_under_way() -> bool:
        with script.lock:
            arrived = [at for kind, keyword, at in script.calls if (kind, keyword) == ("write", "K3")]
        # Answered LATENCY_S after arrival; the code is stored at once, then ~7 s of checks.
        return bool(arrived) and time.monotonic() > arrived[0] + LATENCY_S + STORE_S

    tree = start_and_kill(tmp_path, server, k3_checks_under_way)
    assert tree, "no sandbox worker was running at the kill"
    before = inspect_after_kill(tmp_path)
    [interrupted] = before.candidates["K3"]
    assert interrupted.code is not None and "_spin" in interrupted.code, "killed before the code was stored"
    assert not before.report_times[interrupted.candidate_id], "killed after K3's checks had finished"
    assert script.count("judge", "K3") == 0

    with rerun_and_verify(tmp_path, server, script, before) as catalog:
        assert script.count("write", "K3") == 1
        assert script.count("judge", "K3") == 1
        task = next(t for t in catalog.tasks(RUN) if t.keyword == "K3")
        assert catalog.environment(task.env_id or "").candidate_id == interrupted.candidate_id
        assert catalog.check_report(interrupted.candidate_id) is not None
