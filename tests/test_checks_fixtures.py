"""The check suite against fixture modules that stand in for LLM-written environments.

Good fixtures (including multi-solution verifiers) must be accepted; every bad fixture carries
one realistic defect, named on its first line as ``# expect: <check>``, and must be rejected by
exactly that check (other checks may also fail when the defect has several symptoms).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resyn.checks import CHECK_NAMES, run_checks
from tests.conftest import BAD, EXAMPLES, GOOD, fixture_id

_EXPECT = re.compile(r"^# expect: (\w+)")


def expected_check(path: Path) -> str:
    match = _EXPECT.match(path.read_text().splitlines()[0])
    assert match, f"{path.name} must start with '# expect: <check>'"
    assert match.group(1) in CHECK_NAMES, f"{path.name}: unknown check {match.group(1)!r}"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.parametrize("path", GOOD + EXAMPLES, ids=fixture_id)
def test_good_modules_are_accepted(path: Path) -> None:
    report = run_checks(path.read_text(), filename=path.name)
    assert report.accepted, report.feedback()
    assert report.env_name and report.max_difficulty and report.max_difficulty >= 3


@pytest.mark.slow
@pytest.mark.parametrize("path", BAD, ids=fixture_id)
def test_bad_modules_are_rejected_by_the_named_check(path: Path) -> None:
    expected = expected_check(path)
    report = run_checks(path.read_text(), filename=path.name)
    failed = {c.name for c in report.failures}
    assert not report.accepted
    assert expected in failed, f"expected {expected} to fail; failed: {sorted(failed)}\n{report.feedback()}"
    check = next(c for c in report.checks if c.name == expected)
    assert check.evidence, f"{expected} failed without evidence"
    assert report.feedback().count("##") >= 1


def test_fixture_counts_meet_the_bar() -> None:
    assert len(GOOD) >= 8 and len(BAD) >= 15
    assert {expected_check(p) for p in BAD} >= {
        "syntax",
        "imports",
        "structure",
        "global_random",
        "determinism",
        "json_roundtrip",
        "reliability",
        "diversity",
        "difficulty",
        "gold",
        "junk",
        "shotgun",
        "hygiene",
        "leak",
        "constant_answer",
    }


def test_report_is_json_and_feedback_names_evidence() -> None:
    path = next(p for p in BAD if expected_check(p) == "gold")
    report = run_checks(path.read_text(), filename=path.name)
    document = report.model_dump(mode="json")
    assert document["accepted"] is False and len(document["checks"]) == len(CHECK_NAMES)
    feedback = report.feedback()
    assert "## gold" in feedback and "seed=" in feedback and "gold:" in feedback
