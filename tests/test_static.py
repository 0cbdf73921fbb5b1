"""Static checks: precise, line-numbered findings without running the module."""

from __future__ import annotations

import textwrap

import pytest

from resyn.checks.config import CheckConfig
from resyn.checks.static import run_static

BASE = """
import random
from resyn import Environment

class Task(Environment):
    name = "task"
    max_difficulty = 3

    def generate(self, rng, difficulty):
        return {"n": rng.randint(1, 10)}

    def question(self, instance):
        return "What is n?"

    def verify(self, instance, answer):
        return 0.0
"""


def statuses(source: str) -> dict[str, str]:
    return {r.name: r.status for r in run_static(textwrap.dedent(source), "m.py", CheckConfig())}


def findings(source: str, name: str) -> list[str]:
    result = next(r for r in run_static(textwrap.dedent(source), "m.py", CheckConfig()) if r.name == name)
    return [e.detail for e in result.evidence]


def test_clean_module_passes() -> None:
    assert set(statuses(BASE).values()) == {"pass"}


def test_syntax_error_points_at_line_and_skips_the_rest() -> None:
    results = run_static("x = (\n", "m.py", CheckConfig())
    assert results[0].name == "syntax" and results[0].status == "fail"
    assert results[0].evidence[0].line == 1
    assert all(r.status == "skip" for r in results[1:])


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("import os", "import os: not allowed"),
        ("import numpy as np", "import numpy: not allowed"),
        ("from subprocess import run", "import subprocess: not allowed"),
        ("import resyn.sandbox", "import resyn.sandbox: environments may import only"),
        ("from resyn import Sandbox", "only Environment and grading"),
        ("x = eval('1+1')", "eval is not allowed"),
        ("x = ().__class__.__base__.__subclasses__()", "attribute .__subclasses__ is not allowed"),
        ("f = open('/etc/passwd')", "open is not allowed"),
        ("from . import sibling", "relative imports"),
    ],
)
def test_forbidden_imports_and_names(snippet: str, message: str) -> None:
    details = findings(BASE + "\n" + snippet + "\n", "imports")
    assert any(message in d for d in details), details


def test_allowed_imports() -> None:
    source = (
        BASE
        + "\nimport math, itertools, fractions, re, collections.abc\nimport sympy\nfrom resyn import grading\n"
    )
    assert statuses(source)["imports"] == "pass"


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("x = random.randint(1, 5)", "random.randint() uses the global generator"),
        ("from random import choice", "from random import choice"),
        ("r = random.Random()", "without a seed"),
        ("random.seed(4)", "random.seed()"),
    ],
)
def test_global_randomness(snippet: str, message: str) -> None:
    details = findings(BASE + "\n" + snippet + "\n", "global_random")
    assert any(message in d for d in details), details


def test_seeded_random_and_rng_methods_are_fine() -> None:
    assert statuses(BASE + "\nR = random.Random(5)\n")["global_random"] == "pass"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('name = "task"', 'name = "Bad Name"'), "must match"),
        (('name = "task"', "name = NAME"), "string literal"),
        (("max_difficulty = 3", "max_difficulty = 0"), "between 1 and"),
        (("max_difficulty = 3", "max_difficulty = 3.5"), "integer literal"),
        (
            ("def verify(self, instance, answer):", "def check(self, instance, answer):"),
            "does not define verify()",
        ),
        (("def question(self, instance):", "def question(self):"), "question() must take 1 argument"),
        (("class Task(Environment):", "class Task:"), "found 0"),
    ],
)
def test_structure_problems(change: tuple[str, str], message: str) -> None:
    details = findings(BASE.replace(*change), "structure")
    assert any(message in d for d in details), details


def test_two_environment_classes() -> None:
    source = BASE + "\nclass Other(Environment):\n    name = 'other'\n"
    assert any("found 2" in d for d in findings(source, "structure"))


def test_members_from_a_helper_base_class_count() -> None:
    source = BASE.replace(
        "class Task(Environment):", "class Base:\n    max_difficulty = 3\n\nclass Task(Base, Environment):"
    )
    assert statuses(source)["structure"] == "pass"
