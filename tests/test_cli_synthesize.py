"""``resyn synthesize`` and ``resyn demo`` as the real command (``python -m resyn`` subprocesses)
against the loopback fake provider, scripted by ``tests/synth_helpers.py``. The subprocesses get
the offline environment: ``RESYN_LLM_OFFLINE=1``, no real key, provider URLs on a dead port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resyn.catalog import Catalog
from tests.llm_servers import FakeOpenAI, Reply
from tests.synth_helpers import JUDGE, REFUSAL, WRITE, ScriptedModel, good, verdict
from tests.test_cli import assert_one_line_error

ROOT = Path(__file__).parents[1]

pytestmark = pytest.mark.usefixtures("offline")


def environ(**changes: str | None) -> dict[str, str]:
    """The offline test environment (see ``offline_llm_env``) with ``changes``; ``None`` unsets."""
    env = dict(os.environ) | {"COLUMNS": "200", "RESYN_LLM_OFFLINE": "1"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def resyn(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resyn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or environ(),
        timeout=600,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root`` with its size and mtime: to prove nothing changed."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


# -- 8. the happy path -----------------------------------------------------------------------------
def test_synthesize_accepts_records_and_a_rerun_does_nothing_new(server: FakeOpenAI, cwd: Path) -> None:
    scripted = ScriptedModel(
        server, {("base conversion", WRITE): [good("base")], ("base conversion", JUDGE): [verdict()]}
    )
    catalog = cwd / "out" / "catalog.duckdb"
    args = ("synthesize", "base conversion", "--model", "openai/m", "--base-url", server.base_url,
            "--catalog", str(catalog), "--run", "r1", "--seeds", "20", "--json")  # fmt: skip
    document = json.loads(ok(resyn(*args, cwd=cwd)))

    assert scripted.problems == [] and len(server.received) == 2
    assert document["run_id"] == "r1" and document["status"] == "finished"
    (task,) = document["tasks"]
    assert (task["keyword"], task["status"], task["rounds"]) == ("base conversion", "accepted", 1)
    env_id = task["env_id"]
    assert env_id.startswith("base_conversion-")
    assert document["stats"]["funnel"]["accepted"] == 1 and document["stats"]["calls"] == 2
    run_dir = cwd / "out" / "r1"
    assert Path(document["run_dir"]) == run_dir and Path(document["catalog"]) == catalog
    config = json.loads((run_dir / "config.json").read_text())
    assert config["keywords"] == ["base conversion"] and config["settings"]["model"] == "openai/m"
    assert config["settings"]["base_url"] == server.base_url
    assert config["settings"]["checks"]["seeds_per_level"] == 20
    calls = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert [c["template"] for c in calls] == ["write", "judge"]
    assert f"accepted as {env_id}" in (run_dir / "log.txt").read_text()

    again = json.loads(ok(resyn(*args, cwd=cwd)))
    assert len(server.received) == 2  # nothing asked again
    assert again["status"] == "finished" and again["tasks"] == document["tasks"]
    assert again["stats"]["calls"] == 2 and again["stats"]["environments"] == 1
    assert "0 keyword(s) to do" in (run_dir / "log.txt").read_text()

    listing = ok(resyn("catalog", "list", "--catalog", str(catalog), cwd=cwd))
    assert env_id in listing and "base conversion" in listing
    (row,) = json.loads(ok(resyn("catalog", "list", "--catalog", str(catalog), "--json", cwd=cwd)))
    assert row["env_id"] == env_id and row["run_id"] == "r1"
    assert not (cwd / "runs").exists()  # everything went where --catalog said


def test_sigterm_interrupts_and_the_same_run_continues(server: FakeOpenAI, cwd: Path) -> None:
    """A batch scheduler's SIGTERM stops the run cleanly (exit 130, status interrupted); rerunning
    the same command continues with the unfinished keyword only."""
    running: dict[str, subprocess.Popen[str]] = {}

    def sigterm(body: dict[str, Any]) -> Reply:
        for _ in range(500):  # set as soon as Popen returns, long before the child's first request
            if "process" in running:
                break
            time.sleep(0.01)
        running["process"].send_signal(signal.SIGTERM)
        return Reply(body=server.answer(REFUSAL), delay_s=30)

    scripted = ScriptedModel(
        server,
        {("first idea", WRITE): [REFUSAL], ("second idea", WRITE): [sigterm, REFUSAL]},
    )
    catalog = cwd / "catalog.duckdb"
    args = [sys.executable, "-m", "resyn", "synthesize", "first idea", "second idea", "--model", "openai/m",
            "--base-url", server.base_url, "--catalog", str(catalog), "--run", "r", "--concurrency", "1",
            "--max-rounds", "1", "--json"]  # fmt: skip
    with subprocess.Popen(
        args, cwd=cwd, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        running["process"] = process
        stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    document = json.loads(stdout)
    assert document["status"] == "interrupted"
    assert [t["status"] for t in document["tasks"]] == ["rejected", "pending"]

    rerun = json.loads(ok(resyn(*args[3:], cwd=cwd)))
    assert rerun["status"] == "finished" and [t["status"] for t in rerun["tasks"]] == ["rejected", "rejected"]
    assert scripted.count("first idea") == 1 and scripted.count("second idea") == 2
    assert scripted.problems == []
    with Catalog.open(catalog, read_only=True) as opened:
        run = opened.get_run("r")
        assert run is not None and run.status == "finished"


# -- 9. bad input ------------------------------------------------------------------------------------
Case = Callable[[Path], list[str]]

_MODEL = ["--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"]


def _file(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / name
        path.write_bytes(content)
        return path

    return make


BAD_INPUT: list[tuple[str, Case, str]] = [
    ("unknown provider", lambda d: ["kw", "--model", "foo/bar"], "unknown provider 'foo' in 'foo/bar'"),
    ("malformed model", lambda d: ["kw", "--model", "gpt4"], "malformed model 'gpt4': use openai/<model>"),
    ("missing keyword file", lambda d: ["--keywords", str(d / "none.txt"), *_MODEL], "none.txt does not exist"),
    ("empty keyword file",
     lambda d: ["--keywords", str(_file("empty.txt", b"# only a comment\n\n")(d)), *_MODEL], "has no keywords"),
    ("unreadable keyword file", lambda d: ["--keywords", "/proc/self/mem", *_MODEL], "cannot be read"),
    ("directory as keyword file", lambda d: ["--keywords", str(d), *_MODEL], "is a directory"),
    ("blank keyword", lambda d: ["", *_MODEL], "argument 1: blank keyword"),
    ("duplicate keywords", lambda d: ["graph colouring", "Graph  Colouring", *_MODEL], "duplicate keyword"),
    ("catalog is a text file",
     lambda d: ["kw", *_MODEL, "--catalog", str(_file("notes.txt", b"not a database\n" * 50)(d))],
     "is not a resyn catalog"),
    ("catalog under /proc", lambda d: ["kw", *_MODEL, "--catalog", "/proc/resyn.duckdb"], "cannot write catalog"),
    ("catalog under a file",
     lambda d: ["kw", *_MODEL, "--catalog", str(_file("plain", b"x")(d) / "catalog.duckdb")],
     "cannot write catalog"),
    ("no keywords", lambda d: [*_MODEL], "no keywords: pass KEYWORD"),
    ("no model", lambda d: ["kw"], "--model is required for a new run"),
    ("bad run name", lambda d: ["kw", *_MODEL, "--run", "../escape"], "run name '../escape' is not usable"),
    ("replay file missing", lambda d: ["kw", "--model", f"replay/{d / 'none.jsonl'}"], "cannot be read"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "fragment"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, cwd: Path, make: Case, fragment: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    args = make(data)
    before = tree(tmp_path)
    assert_one_line_error(resyn("synthesize", *args, cwd=cwd), fragment)
    assert tree(tmp_path) == before


def test_a_missing_key_is_named_before_anything_is_written(cwd: Path) -> None:
    # No OPENAI_BASE_URL: the official endpoint, which needs OPENAI_API_KEY (the guard would refuse
    # a real request anyway).
    env = environ(OPENAI_BASE_URL=None, ANTHROPIC_BASE_URL=None)
    for model, variable in (
        ("openai/gpt-4o-mini", "OPENAI_API_KEY"),
        ("anthropic/claude-x", "ANTHROPIC_API_KEY"),
    ):
        assert variable not in env
        result = resyn("synthesize", "kw", "--model", model, "--catalog", "c.duckdb", cwd=cwd, env=env)
        assert_one_line_error(result, f"{variable} is not set: export it")
    assert list(cwd.iterdir()) == []


def test_a_catalog_held_by_another_writer(tmp_path: Path, cwd: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom resyn.catalog import Catalog\n"
         "c = Catalog.open(sys.argv[1])\nprint('ready', flush=True)\ntime.sleep(300)\n", str(path)],
        stdout=subprocess.PIPE, text=True, env=environ(),
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        before = tree(tmp_path)
        result = resyn("synthesize", "kw", *_MODEL, "--catalog", str(path), cwd=cwd)
        assert_one_line_error(result, f"is in use by another process (pid {holder.pid}")
        assert tree(tmp_path) == before
    finally:
        holder.kill()
        holder.wait()


def test_resuming_with_another_model_is_refused(server: FakeOpenAI, cwd: Path) -> None:
    scripted = ScriptedModel(server, {("idea", WRITE): [REFUSAL]})
    common = ["--base-url", server.base_url, "--catalog", "c.duckdb", "--run", "r", "--max-rounds", "1"]
    document = json.loads(ok(resyn("synthesize", "idea", "--model", "openai/m", *common, "--json", cwd=cwd)))
    assert [t["status"] for t in document["tasks"]] == ["rejected"]
    before = tree(cwd)
    result = resyn("synthesize", "idea", "--model", "openai/other", *common, cwd=cwd)
    assert_one_line_error(result, "run 'r' was started with a different model ('openai/m')")
    assert tree(cwd) == before and scripted.count() == 1
    # with no --model the run resumes with its own settings: nothing left to do
    resumed = json.loads(ok(resyn("synthesize", "--catalog", "c.duckdb", "--run", "r", "--json", cwd=cwd)))
    assert resumed["status"] == "finished" and scripted.count() == 1
    config = json.loads((cwd / "r" / "config.json").read_text())  # still the whole run's
    assert config["keywords"] == ["idea"] and config["settings"]["model"] == "openai/m"


# -- 10. the demo ------------------------------------------------------------------------------------
def test_demo_prints_the_summary(cwd: Path) -> None:
    catalog = cwd / "demo.duckdb"
    out = ok(resyn("demo", "--catalog", str(catalog), "--run", "d", cwd=cwd))
    rows = {
        keyword: line
        for line in out.splitlines()
        for keyword in (
            "base conversion",
            "the Josephus problem",
            "0/1 knapsack",
            "proving the Riemann hypothesis",
        )
        if line.strip().startswith(keyword)
    }
    assert len(rows) == 4, out
    outcomes = {keyword: line.split()[len(keyword.split()) + 1] for keyword, line in rows.items()}
    assert outcomes == {
        "base conversion": "accepted",
        "the Josephus problem": "accepted",
        "0/1 knapsack": "accepted",
        "proving the Riemann hypothesis": "rejected",
    }, out
    assert "→ accepted 3" in out and "passed checks 4" in out
    with Catalog.open(catalog, read_only=True) as opened:
        assert len(opened.list_environments(run_id="d")) == 3
