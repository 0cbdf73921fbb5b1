"""Extraction of the module from a writing model's reply: a table of the shapes real replies take."""

from __future__ import annotations

import ast
import random
import time
from dataclasses import dataclass

import pytest

from resyn.checks.config import CheckConfig
from resyn.checks.static import run_static
from resyn.synth.extract import Extraction, extract_module

MODULE = '''"""Sum of a list of integers."""

import random

from resyn import Environment, grading


class ListSum(Environment):
    """Add up a list of integers; difficulty makes the list longer."""

    name = "list_sum"
    max_difficulty = 3

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        return {"numbers": [rng.randint(1, 99) for _ in range(3 * difficulty)]}

    def question(self, instance: dict) -> str:
        return "Add up: " + " ".join(map(str, instance["numbers"]))

    def verify(self, instance: dict, answer: str) -> float:
        return 1.0 if grading.match_number(answer, sum(instance["numbers"])) else 0.0
'''

DRAFT = MODULE.replace('name = "list_sum"', 'name = "draft_sum"')
USAGE = "env = ListSum()\nprint(env.question(env.sample(0, 1)))\n"
NO_ENVIRONMENT = "def add(numbers):\n    return sum(numbers)\n"
SYNTAX_ERROR = MODULE.replace(
    "    def question(self, instance: dict) -> str:", "    def question(self, instance: dict) -> str"
)
TABS = MODULE.replace("    ", "\t")
# The question shows the answer format in its own fenced block: the bare fences inside the string
# must not end the module's block.
FENCED_STRING = MODULE.replace(
    '        return "Add up: " + " ".join(map(str, instance["numbers"]))',
    '        return """Add up the numbers. Answer like this:\n```\n42\n```\n"""',
)


def fence(code: str, info: str = "python") -> str:
    return f"```{info}\n{code}```"


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    finish: str = "stop"
    problem: str | None = None
    code: str | None = MODULE
    blocks: int | None = None
    feedback: str | None = None  # a fragment the feedback must contain


CASES = [
    Case("only a fence", fence(MODULE), blocks=1),
    Case(
        "prose before and after",
        "Here is the environment you asked for.\n\n" + fence(MODULE) + "\n\nThe verifier compares sums.",
        blocks=1,
    ),
    Case("py info string", fence(MODULE, "py"), blocks=1),
    Case("Python info string with extras", fence(MODULE, "Python title=env.py"), blocks=1),
    Case("bare fence", fence(MODULE, ""), blocks=1),
    Case("tilde fence", f"~~~python\n{MODULE}~~~\n", blocks=1),
    Case("four-backtick fence", f"````python\n{MODULE}````\n", blocks=1),
    Case(
        "draft then final version: the last wins",
        "First attempt:\n" + fence(DRAFT) + "\nWait, the name is wrong. Final version:\n" + fence(MODULE),
        blocks=2,
    ),
    Case("module then usage snippet", fence(MODULE) + "\n\nUsage:\n" + fence(USAGE), blocks=2),
    Case("usage snippet then module", "Usage:\n" + fence(USAGE) + "\nModule:\n" + fence(MODULE), blocks=2),
    Case(
        "shell and json blocks around the module",
        fence("pip install resyn\n", "bash") + "\n" + fence(MODULE) + "\n" + fence('{"n": 3}\n', "json"),
        blocks=3,
    ),
    Case("no fence", MODULE),
    Case("no fence after prose", "Sure! Here is the module.\n\n" + MODULE),
    Case(
        "no fence with trailing prose",
        "Here it is:\n" + MODULE + "\nThis environment sums numbers.\nIt scales with difficulty.\n",
    ),
    Case(
        "no fence with a long explanation after",
        MODULE + "\nExplanation:\n\n" + "".join(f"- point {i}: the verifier is sound.\n" for i in range(200)),
    ),
    Case("unclosed fence, stop", "Here:\n```python\n" + MODULE, blocks=1),
    Case(
        "unclosed fence with trailing prose, stop",
        "```python\n" + MODULE + "\nThat is the whole module.\n",
        blocks=1,
    ),
    Case(
        "truncated inside the only block",
        "```python\n" + MODULE[:300],
        finish="length",
        problem="truncated",
        code=None,
        blocks=1,
        feedback="token limit",
    ),
    Case(
        "truncated without any fence",
        MODULE[:400],
        finish="length",
        problem="truncated",
        code=None,
        blocks=0,
        feedback="shorter complete module",
    ),
    Case(
        "truncated after a complete block",
        fence(MODULE) + "\n\nLet me also show an improved version:\n```python\n" + DRAFT[:200],
        finish="length",
        blocks=2,
    ),
    Case(
        "truncated while thinking",
        "<think>\nThe user wants a list-sum environment. Let me think about the difficulty levels",
        finish="length",
        problem="truncated",
        code=None,
        blocks=0,
        feedback="still reasoning",
    ),
    Case(
        "thinking with draft code is ignored",
        "<think>\nDraft:\n" + fence(DRAFT) + "\nHmm, rename it.\n</think>\n\n" + fence(MODULE),
        blocks=1,
    ),
    Case(
        "thinking tag opened by the chat template",
        "Let me draft:\n" + fence(DRAFT) + "\n</think>\n" + fence(MODULE),
        blocks=1,
    ),
    Case(
        "thinking with code and no answer",
        "<think>\n" + fence(MODULE) + "\n</think>\n\nI am done.",
        problem="no_code",
        code=None,
        blocks=0,
    ),
    Case(
        "thinking never closed",
        "<think>\nDraft:\n" + fence(MODULE),
        problem="no_code",
        code=None,
        blocks=0,
        feedback="never closed",
    ),
    Case(
        "THINKING tags, upper case",
        "<THINKING>plan: sum a list</THINKING>\n" + fence(MODULE),
        blocks=1,
    ),
    Case(
        "think tags inside the module are code",
        fence(MODULE.replace('"Add up: "', '"<think>\\n</think>\\nAdd up: "')),
        code=MODULE.replace('"Add up: "', '"<think>\\n</think>\\nAdd up: "'),
        blocks=1,
    ),
    Case("Windows line endings", fence(MODULE).replace("\n", "\r\n") + "\r\n", blocks=1),
    Case("tabs are kept", fence(TABS), code=TABS, blocks=1),
    Case("trailing blank lines are trimmed", fence(MODULE + "\n\n\n   \n"), blocks=1),
    Case("bare fences inside a string of the module", fence(FENCED_STRING), code=FENCED_STRING, blocks=1),
    Case(
        "fence indented in a list item",
        "1. The module:\n\n   ```python\n"
        + "".join(f"   {line}\n" if line else "\n" for line in MODULE.splitlines())
        + "   ```\n",
        blocks=1,
    ),
    Case("module with a syntax error is still returned", fence(SYNTAX_ERROR), code=SYNTAX_ERROR, blocks=1),
    Case("unfenced module with a syntax error", SYNTAX_ERROR, code=SYNTAX_ERROR),
    Case("empty answer", "", problem="no_code", code=None, blocks=0, feedback="empty"),
    Case("whitespace answer", "  \n\n ", problem="no_code", code=None, blocks=0, feedback="empty"),
    Case(
        "prose only",
        "I'd suggest a list-sum task: generate numbers and ask for the total.",
        problem="no_code",
        code=None,
        blocks=0,
        feedback="no Python code",
    ),
    Case("only a json block", fence('{"n": 3}\n', "json"), problem="no_code", code=None, blocks=1),
    Case(
        "refusal",
        "I can't help with that.",
        finish="refusal",
        problem="refusal",
        code=None,
        feedback="finish reason: refusal",
    ),
    Case("content filter", fence(MODULE), finish="content_filter", problem="refusal", code=None),
    Case(
        "code without an Environment class",
        fence(NO_ENVIRONMENT),
        problem="no_environment",
        code=None,
        blocks=1,
        feedback="from resyn import Environment",
    ),
    Case(
        "bare block of Python without an Environment class",
        fence(NO_ENVIRONMENT, ""),
        problem="no_environment",
        code=None,
        blocks=1,
    ),
    Case(
        "unfenced code without an Environment class",
        "Here:\n\n" + NO_ENVIRONMENT,
        problem="no_environment",
        code=None,
        blocks=0,
        feedback="without a code fence",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_extraction(case: Case) -> None:
    got = extract_module(case.text, case.finish)
    assert isinstance(got, Extraction)
    assert got.problem == case.problem, got.feedback
    assert got.code == case.code
    assert got.ok is (case.problem is None)
    assert (got.code is None) is (got.problem is not None)  # exactly one of the two
    assert (got.feedback is None) is (got.problem is None)
    if case.blocks is not None:
        assert got.blocks == case.blocks
    if case.feedback is not None:
        assert got.feedback is not None and case.feedback in got.feedback
    if got.code is not None:
        assert got.code.endswith("\n") and not got.code.endswith("\n\n") and "\r" not in got.code


def test_a_module_with_a_syntax_error_reaches_the_checks_with_its_line() -> None:
    got = extract_module("Here you go:\n" + fence(SYNTAX_ERROR) + "\nEnjoy!")
    assert got.code is not None
    syntax = run_static(got.code, "env.py", CheckConfig())[0]
    expected_line = SYNTAX_ERROR.splitlines().index("    def question(self, instance: dict) -> str") + 1
    assert syntax.name == "syntax" and syntax.status == "fail" and syntax.evidence[0].line == expected_line


def test_extracted_modules_parse() -> None:
    for case in CASES:
        got = extract_module(case.text, case.finish)
        if got.code is not None and case.code not in (SYNTAX_ERROR,):
            ast.parse(got.code)


def test_feedback_is_about_the_form_and_asks_for_the_format() -> None:
    for text, finish in (
        ("", "stop"),
        ("```python\nimport random\n", "length"),
        (fence(NO_ENVIRONMENT), "stop"),
    ):
        feedback = extract_module(text, finish).feedback
        assert feedback is not None and "exactly one ```python fenced code block" in feedback


def test_never_raises_on_random_mixtures() -> None:
    pieces = [
        "```python\n", "```\n", "~~~\n", "````py\n", "<think>\n", "</think>\n", "<think>", "\r\n", "\t",
        "Some prose.\n", "    return 1.0\n", "class X(Environment):\n", MODULE, MODULE[:150], USAGE, "\n",
        "from resyn import Environment\n", '"""\n', "(", "\x00", "\ufeff",
    ]  # fmt: skip
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for finish in ("stop", "length", "other"):
            got = extract_module(text, finish)
            assert (got.code is None) is (got.problem is not None)
            assert got.code is None or (got.code.endswith("\n") and "\r" not in got.code)


def test_huge_replies_are_handled_quickly() -> None:
    prose = ("This is a long explanation of the task without any code. " * 20 + "\n") * 1000  # ~1 MB
    fences = "```\nnot python at all\n" * 2000  # many bare fences, never a module
    broken = "from resyn import Environment\nclass X(Environment):\n" + "    x = (\n" * 3000
    began = time.perf_counter()
    assert extract_module(prose).problem == "no_code"
    assert extract_module(fences).problem in ("no_code", "no_environment")
    assert extract_module(broken).code is not None  # a syntax error, for the checks to report
    assert extract_module(fence(MODULE) + "\n" + prose, "length").code == MODULE
    assert time.perf_counter() - began < 5
