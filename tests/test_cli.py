"""The command line: exit statuses, one-line errors, JSON output. Runs the real `resyn` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GOOD

ROOT = Path(__file__).parents[1]


def resyn(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resyn", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("check", "does/not/exist.py"), "no such file"),
        (("check", "resyn"), "is a directory"),
        (("check", "pyproject.toml"), "not a Python file"),
        (("check", "example:nope"), "unknown example"),
        (("check",), "no environment given"),
        (("check", "--seeds", "2", "example:arithmetic"), "--seeds"),
        (("sample", "example:arithmetic", "--difficulty", "99"), "above this environment's max_difficulty"),
        (("frobnicate",), "No such command"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(resyn(*args), fragment)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.py"
    path.write_bytes(b"# \xe9t\xe9\n")
    assert_one_line_error(resyn("check", str(path)), "not UTF-8")


@pytest.mark.slow
def test_check_accepts_a_good_module_and_prints_a_table() -> None:
    result = resyn("check", str(GOOD[0]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ACCEPTED" in result.stdout and "determinism" in result.stdout and "shotgun" in result.stdout


@pytest.mark.slow
def test_check_rejects_with_evidence_and_json(tmp_path: Path) -> None:
    module = tmp_path / "lenient.py"
    module.write_text(
        "import random\nfrom resyn import Environment\n\n"
        "class Lenient(Environment):\n"
        "    name = 'lenient'\n    max_difficulty = 3\n"
        "    def generate(self, rng, difficulty):\n        return {'n': rng.randint(1, 10 ** (2 * difficulty))}\n"
        "    def question(self, instance):\n        return f\"What is {instance['n']} + 1?\"\n"
        "    def verify(self, instance, answer):\n        return 1.0 if answer.strip() else 0.0\n"
        "    def solution(self, instance):\n        return str(instance['n'] + 1)\n"
    )
    human = resyn("check", str(module))
    assert human.returncode == 1 and "REJECTED" in human.stdout and "junk evidence" in human.stdout
    document = json.loads(resyn("check", "--json", str(module)).stdout)
    assert document["accepted"] is False
    junk = next(c for c in document["checks"] if c["name"] == "junk")
    assert junk["status"] == "fail" and junk["evidence"][0]["answer"] is not None


def test_syntax_error_is_a_rejection_pointing_at_the_line(tmp_path: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text("from resyn import Environment\n\nclass X(Environment:\n    pass\n")
    result = resyn("check", "--json", str(module))
    assert result.returncode == 1
    syntax = json.loads(result.stdout)["checks"][0]
    assert syntax["name"] == "syntax" and syntax["status"] == "fail" and syntax["evidence"][0]["line"] == 3


def test_sample_prints_instances_as_json() -> None:
    result = resyn("sample", "example:arithmetic", "-n", "2", "--difficulty", "2", "--seed", "5", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [row["seed"] for row in document["instances"]] == [5, 6]
    assert all(row["question"] and row["solution"] for row in document["instances"])
    again = json.loads(
        resyn("sample", "example:arithmetic", "-n", "2", "--difficulty", "2", "--seed", "5", "--json").stdout
    )
    assert again == document


def test_bench_reports_all_three_paths() -> None:
    result = resyn("bench", "example:arithmetic", "--calls", "2000", "--batch", "64", "--json")
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    for key in (
        "direct_calls_per_s",
        "sandboxed_batched_calls_per_s",
        "sandboxed_unbatched_calls_per_s",
        "cold_start_s",
    ):
        assert numbers[key] > 0
    assert numbers["errors_in_first_1000"] == 0
    # Batching must pay off: one message per 64 calls beats one message per call.
    assert numbers["sandboxed_batched_calls_per_s"] > numbers["sandboxed_unbatched_calls_per_s"]


@pytest.mark.slow
def test_examples_are_accepted() -> None:
    result = resyn("check", "--examples")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 environments accepted" in result.stdout


def test_reasoning_gym_tasks_are_listed_and_unknown_ones_suggested() -> None:
    pytest.importorskip("reasoning_gym")
    listing = resyn("check", "--list-rg")
    assert listing.returncode == 0 and "rg:chain_sum" in listing.stdout.splitlines()
    assert_one_line_error(resyn("check", "rg:chain_sun"), "did you mean 'chain_sum'")
