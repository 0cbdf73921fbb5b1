"""Tests for resyn.grading: answer extraction and the verifier toolkit."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from typing import Any

import pytest

from resyn import grading
from resyn.grading import (
    extract_answer,
    match_answer,
    match_number,
    normalize,
    numbers_close,
    numbers_in,
    parse_grid,
    parse_int_grid,
    parse_int_list,
    parse_list,
    parse_number,
    safe_arithmetic,
    sympy_equivalent,
)

# --------------------------------------------------------------------------------------------------
# extract_answer
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<answer>42</answer>", "42"),
        ("<answer> 1 </answer> then <answer>\n 2 \n</answer>", "2"),
        ("<ANSWER>yes</Answer>", "yes"),
        ("<answer></answer>", ""),
        ("<answer>\\boxed{7}</answer>", "7"),
        ("<answer>\\boxed{1} and \\boxed{2}</answer>", "\\boxed{1} and \\boxed{2}"),
        # complete pair preferred over a trailing open tag; open tag alone is the stop-sequence case
        ("<answer>1</answer> <answer>2", "1"),
        ("blah <answer> 5", "5"),
        ("the result is \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{ 2 }", "2"),
        ("\\boxed{\\boxed{3}}", "\\boxed{3}"),
        ("\\boxed {4}", "4"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("}} \\boxed{a{b}c}", "a{b}c"),
        ("\\boxed{3} but later \\boxed{4", "3"),
        ("\\fbox{9}", "9"),
        # answer tags beat boxes, boxes beat final-answer lines
        ("<answer>A</answer> \\boxed{B}", "A"),
        ("\\boxed{B}\nFinal answer: C", "B"),
        ("Final answer: 12", "12"),
        ("work\n**Final Answer:** **42**.", "42"),
        ("**Final Answer**: x = 3", "x = 3"),
        ("So the final answer is 7.\nThanks!", "7"),
        ("Final answer: 1\nmore\nfinal answer = 2", "2"),
        ("Final Answer: The final answer is $5$.", "$5$"),
        ("**Final Answer:**\n\n  17  \n", "17"),
        ("nothing here", None),
        ("", None),
        ("final answer:", None),
    ],
)
def test_extract_answer(completion: str, expected: str | None) -> None:
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<think>maybe <answer>1</answer></think><answer>2</answer>", "2"),
        ("<think>\\boxed{1}</think> so \\boxed{2}", "2"),
        ("<think>only boxed in thoughts \\boxed{1}</think> no answer", None),
        ("<THINK>x</Think> Final answer: 3", "3"),
        # template opened <think> in the prompt: everything before the first </think> is reasoning
        ("I guess <answer>1</answer> hmm </think> <answer>2</answer>", "2"),
        ("I guess \\boxed{1} </think> no answer", None),
        # unclosed thinking: the model never finished, nothing after <think> counts
        ("<think> still thinking <answer>1</answer>", None),
        ("<answer>0</answer><think> still thinking <answer>1</answer>", "0"),
        # nested blocks are counted
        ("<think>a<think>b</think>c <answer>1</answer></think><answer>2</answer>", "2"),
        # several blocks interleaved with text
        ("<think>a</think>part <think>b</think> \\boxed{5}", "5"),
    ],
)
def test_extract_answer_drops_reasoning(completion: str, expected: str | None) -> None:
    assert extract_answer(completion) == expected


# Pieces that meet every branch near the fast path of extract_answer: tags in any case, partial
# tags, stray "<", boxes, "final answer" lines, and whitespace that str.strip() removes.
_PIECES = [
    "<answer>",
    "</answer>",
    "<ANSWER>",
    "</Answer>",
    "<think>",
    "</think>",
    "<THINK>",
    "<answer",
    "answer>",
    "</answer",
    "<",
    ">",
    "/",
    "\\boxed{",
    "\\boxed {",
    "\\fbox{",
    "{",
    "}",
    "\\{",
    "final answer: ",
    "Final Answer is ",
    "**",
    ".",
    " ",
    "  ",
    "\n",
    "\t",
    "\r",
    "\u00a0",
    "\u2003",
    "x",
    "42",
    "-3.5",
    "\u0131",
    "\u212a",
    "\u00e9",
    "a<b",
    "",
]


def _generated(rng: random.Random) -> str:
    if rng.random() < 0.5:  # shaped like a model's completion: most take the fast path
        pad = [rng.choice(_PIECES[16:]) for _ in range(rng.randint(0, 4))]
        inner = "".join(rng.choice(_PIECES[13:]) for _ in range(rng.randint(0, 4)))
        return (
            "".join(pad) + "<answer>" + inner + "</answer>" + "".join(rng.choice(_PIECES) for _ in range(2))
        )
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))


def test_extract_answer_fast_path_agrees_with_the_general_path() -> None:
    # extract_answer skips the regexes when the only "<" of a text are one "<answer>" and a later
    # "</answer>"; on every generated text it must give what the general path gives.
    rng = random.Random(20261122)
    fast = 0
    for _ in range(30_000):
        text = _generated(rng)
        assert extract_answer(text) == grading._extract_general(text), repr(text)
        fast += text.count("<") == 2 and 0 <= text.find("<answer>") < text.find("</answer>")
    assert fast > 5_000  # the fast path was exercised, not only the general one


def test_extract_answer_non_str() -> None:
    assert extract_answer(None) is None  # type: ignore[arg-type]
    assert extract_answer(42) is None  # type: ignore[arg-type]
    assert extract_answer(b"<answer>1</answer>") is None  # type: ignore[arg-type]


def test_extract_answer_boxed_window() -> None:
    # A box far from the end (beyond MAX_BOXED_SCAN) is not searched; a near one is.
    far = "\\boxed{1}" + "x" * (grading.MAX_BOXED_SCAN + 10)
    assert extract_answer(far) is None
    assert extract_answer("x" * (grading.MAX_BOXED_SCAN + 10) + "\\boxed{2}") == "2"


# --------------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello   World \n", "hello world"),
        ("$42$", "42"),
        ("$$x^2$$", "x^2"),
        ("\\(x\\)", "x"),
        ("\\[ y \\]", "y"),
        ("\\text{Paris}", "paris"),
        ("$\\text{ Paris }$.", "paris"),
        ("\\textbf{yes}", "yes"),
        ("\\boxed{7}", "7"),
        ("**Bold**", "bold"),
        ("`code`", "code"),
        ("```x```", "x"),
        ('"quoted"', "quoted"),
        ("'single'", "single"),
        ("“curly”", "curly"),
        ("Yes.", "yes"),
        ("wait...", "wait..."),
        ("**$\\text{Nested}$**.", "nested"),
        # wrappers only when the delimiter is not also inside
        ('"a" or "b"', '"a" or "b"'),
        ("\\text{a} + \\text{b}", "\\text{a} + \\text{b}"),
        ("$1$ and $2$", "$1$ and $2$"),
        ("", ""),
        ("$", "$"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_non_str_and_long() -> None:
    assert normalize(None) == ""  # type: ignore[arg-type]
    long = "$" + "A" * (grading.MAX_UNWRAP_CHARS + 1) + "$"
    assert normalize(long) == long.lower()  # only collapsed and lowercased beyond the cap


# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", Fraction(42)),
        ("  -7 ", Fraction(-7)),
        ("+3", Fraction(3)),
        ("\u22125", Fraction(-5)),
        ("1,234", Fraction(1234)),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("0.1", Fraction(1, 10)),
        (".5", Fraction(1, 2)),
        ("3.", Fraction(3)),
        ("-0.25", Fraction(-1, 4)),
        ("1.5e3", Fraction(1500)),
        ("2E-2", Fraction(1, 50)),
        ("3/4", Fraction(3, 4)),
        ("-3/4", Fraction(-3, 4)),
        ("3 / -4", Fraction(-3, 4)),
        ("1.5/3", Fraction(1, 2)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("\\dfrac{1}{3}", Fraction(1, 3)),
        ("-\\frac{1}{2}", Fraction(-1, 2)),
        ("\\frac{-6}{4}", Fraction(-3, 2)),
        ("$12$", Fraction(12)),
        ("$\\frac{1}{2}$", Fraction(1, 2)),
    ],
)
def test_parse_number(text: str, expected: Fraction) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "1,23",
        "1234,567",
        "12,34,567",
        "50%",
        "inf",
        "-inf",
        "nan",
        "NaN",
        "1e",
        "1e99999",
        "3/0",
        "\\frac{1}{0}",
        "1/2/3",
        "1 1/2",
        "x",
        "12 apples",
        "1_000",
        "0x10",
        "١٢",  # non-ASCII digits
        "1" * (grading.MAX_NUMBER_CHARS + 1),
    ],
)
def test_parse_number_rejects(text: str) -> None:
    assert parse_number(text) is None


def test_parse_number_non_str() -> None:
    assert parse_number(3) is None  # type: ignore[arg-type]


def test_numbers_close() -> None:
    assert numbers_close(1, 1)
    assert numbers_close(1.0, Fraction(1))
    assert numbers_close(1, 1 + 1e-9)
    assert not numbers_close(1, 1.001)
    assert numbers_close(0, 1e-10)
    assert not numbers_close(0, 1e-8)
    assert numbers_close(0, 1e-8, abs_tol=1e-6)
    assert numbers_close(100, 101, rel_tol=0.05)
    assert numbers_close(10**400, 10**400 + 1)  # exact arithmetic: no float overflow
    assert not numbers_close(float("nan"), float("nan"))
    assert numbers_close(float("inf"), float("inf"))
    assert not numbers_close(float("inf"), 1e308)
    assert numbers_close(1, 1, rel_tol=float("nan"), abs_tol=float("nan"))  # equal is always close
    assert not numbers_close(1, 2, rel_tol=float("nan"), abs_tol=float("nan"))
    assert not numbers_close("1", 1)  # type: ignore[arg-type]


def test_match_number() -> None:
    assert match_number("42", 42)
    assert match_number(" $1,234.5$ ", 1234.5)
    assert match_number("0.5", "1/2")
    assert match_number("\\frac{1}{3}", Fraction(1, 3))
    assert match_number("0.333333333", "1/3")
    assert match_number("**42**", 42)
    assert match_number("\\text{42}", "42.0")
    assert not match_number("0.33", "1/3")
    assert not match_number("x", 1)
    assert not match_number("1", "x")
    assert not match_number("1", None)  # type: ignore[arg-type]
    assert not match_number("1", float("nan"))


# --------------------------------------------------------------------------------------------------
# Lists and grids
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2, 3]", ["1", "2", "3"]),
        ("(1, 2, 3)", ["1", "2", "3"]),
        ("{1, 2}", ["1", "2"]),
        ("1, 2, 3", ["1", "2", "3"]),
        ("1 2  3", ["1", "2", "3"]),
        ("1;2; 3", ["1", "2", "3"]),
        ("1\n2\n\n3\n", ["1", "2", "3"]),
        ("42", ["42"]),
        ("[]", []),
        ("( )", []),
        ("[1, 2, 3,]", ["1", "2", "3"]),
        ('["a", "b"]', ["a", "b"]),
        ("['x', 'y']", ["x", "y"]),
        ('["a, b", "c"]', ["a, b", "c"]),
        ("New York, Paris", ["New York", "Paris"]),
        ("don't, can't", ["don't", "can't"]),
        ("(1, 2), (3, 4)", ["(1, 2)", "(3, 4)"]),
        ("1,\n2,\n3", ["1", "2", "3"]),
    ],
)
def test_parse_list(text: str, expected: list[str]) -> None:
    assert parse_list(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "[1, [2, 3]]", "[[1, 2]]", "1,,2", "[1, 2", "1, 2]", "(1, 2]", "a, b\nc, d", ", 1"],
)
def test_parse_list_rejects(text: str) -> None:
    assert parse_list(text) is None


def test_parse_list_item_cap() -> None:
    assert parse_list(",".join(["1"] * grading.MAX_LIST_ITEMS)) is not None
    assert parse_list(",".join(["1"] * (grading.MAX_LIST_ITEMS + 1))) is None
    assert parse_list("1 " * (grading.MAX_LIST_CHARS // 2 + 1)) is None


def test_parse_int_list() -> None:
    assert parse_int_list("[+3, -3, 0, 007]") == [3, -3, 0, 7]
    assert parse_int_list("1 2 3") == [1, 2, 3]
    assert parse_int_list("[]") == []
    assert parse_int_list("[1.5, 2]") is None
    assert parse_int_list("[1.0, 2]") is None
    assert parse_int_list("[1e3]") is None
    assert parse_int_list("[1, two]") is None
    assert parse_int_list("[1, 2") is None
    assert parse_int_list("-" + "9" * grading.MAX_INT_DIGITS) == [-int("9" * grading.MAX_INT_DIGITS)]
    assert parse_int_list("9" * (grading.MAX_INT_DIGITS + 1)) is None
    assert parse_int_list(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[1, 2], [3, 4]]", [["1", "2"], ["3", "4"]]),
        ("[[1,2] [3,4]]", [["1", "2"], ["3", "4"]]),
        ("((1, 2), (3, 4))", [["1", "2"], ["3", "4"]]),
        ('[["a", "b"], ["c", "d"]]', [["a", "b"], ["c", "d"]]),
        ("[\n  [\n    1,\n    2\n  ],\n  [\n    3,\n    4\n  ]\n]", [["1", "2"], ["3", "4"]]),
        ("1 2\n3 4", [["1", "2"], ["3", "4"]]),
        ("1, 2\n3, 4", [["1", "2"], ["3", "4"]]),
        ("[1, 2]\n[3, 4]", [["1", "2"], ["3", "4"]]),
        ("#.#\n.#.", [["#", ".", "#"], [".", "#", "."]]),
        ("```\n#.\n.#\n```", [["#", "."], [".", "#"]]),
        ("1 2; 3 4", [["1", "2"], ["3", "4"]]),
        ("#.#/.#./#.#", [["#", ".", "#"], [".", "#", "."], ["#", ".", "#"]]),
        ("[1, 2, 3]", [["1", "2", "3"]]),
        ("ab", [["a", "b"]]),
        ("1 2 3\n4 5", [["1", "2", "3"], ["4", "5"]]),  # ragged rows are kept
        ("12 3\n4", [["12", "3"], ["4"]]),  # whitespace mode applies to every row
    ],
)
def test_parse_grid(text: str, expected: list[list[str]]) -> None:
    assert parse_grid(text) == expected


@pytest.mark.parametrize("text", ["", "  \n ", "[[]]", "[[1, 2], [3, 4]", "[[1, 2], 3]", "[[1, [2]]]"])
def test_parse_grid_rejects(text: str) -> None:
    assert parse_grid(text) is None


def test_parse_grid_caps() -> None:
    side = 400  # 160_000 cells > MAX_GRID_CELLS
    assert parse_grid("\n".join(["." * side] * side)) is None
    assert parse_grid("x" * (grading.MAX_GRID_CHARS + 1)) is None


def test_parse_int_grid() -> None:
    assert parse_int_grid("[[1, -2], [3, 4]]") == [[1, -2], [3, 4]]
    assert parse_int_grid("123\n456") == [[1, 2, 3], [4, 5, 6]]
    assert parse_int_grid("10 20\n30 40") == [[10, 20], [30, 40]]
    assert parse_int_grid("53..7\n6..19") is None
    assert parse_int_grid("[[1.5]]") is None
    assert parse_int_grid("") is None


# --------------------------------------------------------------------------------------------------
# safe_arithmetic / numbers_in
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 + 2 * 3", Fraction(7)),
        ("(1 + 2) * 3", Fraction(9)),
        ("10 - 4 - 3", Fraction(3)),
        ("7 / 2", Fraction(7, 2)),
        ("8 / 4 / 2", Fraction(1)),
        ("-(-3)", Fraction(3)),
        ("-2 + +5", Fraction(3)),
        ("0.1 + 0.2", Fraction(3, 10)),
        ("2 ** 10", Fraction(1024)),
        ("2 ^ 10", Fraction(1024)),
        ("-2 ** 2", Fraction(-4)),
        ("2 ** -2", Fraction(1, 4)),
        ("3 × 4 ÷ 6", Fraction(2)),
        ("5 − 2", Fraction(3)),
        (" (25 - 5) * 4 ", Fraction(80)),
        ("(1000000) ** 10", Fraction(10**60)),
    ],
)
def test_safe_arithmetic(expr: str, expected: Fraction) -> None:
    assert safe_arithmetic(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "1 / 0",
        "5 / (2 - 2)",
        "0 ** -1",
        "2 ** 11",
        "2 ** 1000",
        "10 ** 7 ** 2",
        "9 ** 9 ** 9",
        "(1000001) ** 2",
        "2 ** 0.5",
        "2 ** (1/2)",
        "__import__('os').system('true')",
        "().__class__",
        "abs(-1)",
        "x",
        "2 x 3",
        "1e3",
        "True",
        "1 // 2",
        "7 % 3",
        "05",
        "1 + ",
        "(1 + 2",
        "1 + 2 = 3",
        "[1]",
        "1 < 2",
    ],
)
def test_safe_arithmetic_rejects(expr: str) -> None:
    assert safe_arithmetic(expr) is None


def test_safe_arithmetic_length_cap() -> None:
    expr = "+".join(["1"] * 150)  # 299 characters
    assert safe_arithmetic(expr) is None
    assert safe_arithmetic(expr, max_len=400) == 150
    assert safe_arithmetic("1+" * grading.MAX_ARITH_CHARS + "1", max_len=10**9) is None


def test_numbers_in() -> None:
    assert numbers_in("(25 - 5) * 4") == [25, 5, 4]
    assert numbers_in("-3 + 5") == [3, 5]
    assert numbers_in("2^3") == [2, 3]
    assert numbers_in("100 / 4 × 3") == [100, 4, 3]
    assert numbers_in("1 / 0") == [1, 0]
    assert numbers_in("2.5 * 2") is None
    assert numbers_in("1.0 + 1") is None
    assert numbers_in("__import__('os')") is None
    assert numbers_in("x + 1") is None
    assert numbers_in("(1 + 2") is None
    assert numbers_in("") is None


# --------------------------------------------------------------------------------------------------
# sympy_equivalent
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2*x+2", "2*(x+1)"),
        ("x^2", "x**2"),
        ("2x", "x*2"),
        ("2(x+1)", "2x + 2"),
        ("\\frac{1}{2}x", "x/2"),
        ("$\\frac{x}{\\frac{1}{2}}$", "2x"),
        ("\\sqrt{8}", "2\\sqrt{2}"),
        ("x \\cdot y", "y*x"),
        ("sin(x)^2 + cos(x)^2", "1"),
        ("E^(I*pi)", "-1"),
        ("e^2", "exp(2)"),
        ("0.5", "1/2"),
        ("ln(x^2)", "log(x**2)"),
    ],
)
def test_sympy_equivalent_true(a: str, b: str) -> None:
    assert sympy_equivalent(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("x+1", "x+2"),
        ("x", "y"),
        ("1, 2", "1, 2"),  # tuples are not expressions
        ("x = 1", "x = 1"),
        ("", "0"),
    ],
)
def test_sympy_equivalent_false(a: str, b: str) -> None:
    assert not sympy_equivalent(a, b)


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('true')",
        "__import__(os)",
        "().__class__",
        "x.__class__",
        "(1).real",
        "x.subs(x, 1)",
        "eval(chr(49))",  # resolves to symbols, never to builtins
        "lambda x: x",
        "x if x else x",
        "Symbol(x)",
        "Integer(1)",
        "breakpoint()",
        "verylongname",
        "[x for x in (1, 2)]",
        "9^9^9^9",
        "x^(10^10)",
        "exp(100000000*log(10))",
        "2^(x + 10^9)",
        "1" * (grading.MAX_SYMPY_CHARS + 1),
        "\\unknowncommand{x}",
    ],
)
def test_sympy_equivalent_rejects_payloads(payload: str) -> None:
    assert not sympy_equivalent(payload, "1")
    assert not sympy_equivalent("1", payload)


def test_sympy_names_are_sandboxed() -> None:
    # Builtins are not in the evaluation namespace: these are undefined sympy functions, so an
    # expression equals itself (the real builtins would raise on a Symbol and give False).
    assert sympy_equivalent("open(x)", "open(x)")
    assert sympy_equivalent("len(x) + 1", "1 + len(x)")
    assert sympy_equivalent("abs(x)", "Abs(x)")


def test_sympy_equivalent_bad_timeout() -> None:
    assert not sympy_equivalent("x", "x", timeout=0)
    assert not sympy_equivalent("x", "x", timeout=float("nan"))
    assert not sympy_equivalent(None, "x")  # type: ignore[arg-type]


def test_sympy_equivalent_times_out() -> None:
    # Equivalent, but not provable within a microsecond: the timeout path answers False.
    assert not sympy_equivalent("sin(x)^2 + cos(x)^2 + (x+1)^3", "1 + x^3 + 3x^2 + 3x + 1", timeout=1e-6)
    assert sympy_equivalent("sin(x)^2 + cos(x)^2 + (x+1)^3", "1 + x^3 + 3x^2 + 3x + 1")


def test_sympy_timer_and_handler_restored() -> None:
    def outer(signum: int, frame: Any) -> None:
        raise AssertionError("the outer timer should not fire during this test")

    previous = signal.signal(signal.SIGALRM, outer)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        assert sympy_equivalent("x^2", "x**2")
        assert not sympy_equivalent("sin(x)^2 + cos(x)^2", "1", timeout=1e-6)
        assert signal.getsignal(signal.SIGALRM) is outer
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90.0 < remaining <= 100.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_time_limit_never_postpones_outer_deadline() -> None:
    fired: list[bool] = []

    def outer(signum: int, frame: Any) -> None:
        fired.append(True)

    def busy() -> bool:
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            pass
        return True

    previous = signal.signal(signal.SIGALRM, outer)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        start = time.monotonic()
        assert grading._with_time_limit(busy, 10.0) is False
        assert time.monotonic() - start < 2.0
        deadline = time.monotonic() + 2.0
        while not fired and time.monotonic() < deadline:
            time.sleep(0.001)
        assert fired == [True]
        assert signal.getsignal(signal.SIGALRM) is outer
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_sympy_equivalent_in_thread() -> None:
    results: list[bool] = []
    before = signal.getsignal(signal.SIGALRM)
    worker = threading.Thread(target=lambda: results.append(sympy_equivalent("2x+2", "2(x+1)")))
    worker.start()
    worker.join(60)
    assert results == [True]
    assert signal.getsignal(signal.SIGALRM) is before


def test_import_does_not_load_sympy() -> None:
    code = "import sys, resyn.grading; assert 'sympy' not in sys.modules, 'sympy imported eagerly'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------------------------------
# match_answer
# --------------------------------------------------------------------------------------------------


def test_match_answer_cascade() -> None:
    assert match_answer("Paris", "paris.") == 1.0  # normalized text
    assert match_answer("$\\text{Yes}$", "yes") == 1.0
    assert match_answer("0.5", "1/2") == 1.0  # numbers
    assert match_answer("$\\frac{1}{2}$", "0.5") == 1.0
    assert match_answer("1,000", "1000") == 1.0
    assert match_answer("3.0000001", "3") == 1.0
    assert match_answer("3.1", "3") == 0.0
    assert match_answer("3.1", "3", rel_tol=0.1) == 1.0
    assert match_answer("2x+2", "2(x+1)") == 0.0  # symbolic is opt-in
    assert match_answer("2x+2", "2(x+1)", symbolic=True) == 1.0
    assert match_answer("3", "4", symbolic=True) == 0.0
    assert match_answer("London", "Paris", symbolic=True) == 0.0
    assert match_answer(None, "1") == 0.0  # type: ignore[arg-type]
    assert match_answer("1", 1) == 1.0  # type: ignore[arg-type]
    assert match_answer("1", None) == 0.0  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Totality on hostile input
# --------------------------------------------------------------------------------------------------

HOSTILE = {
    "open_parens": "(" * 1_000_000,
    "digits": "9" * 1_000_000,
    "unicode_junk": "\u202e\ud800\x00\uffff日本語🙂\u2028" * 50_000,
    "control_chars": "".join(chr(i) for i in range(32)) * 30_000,
    "nested_brackets": "[" * 10_000 + "]" * 10_000,
    "unbalanced_nested": "[" * 10_000 + "1",
    "boxed_braces": "\\boxed" + "{" * 1_000_000,
    "many_boxes": "\\boxed{" * 140_000,
    "think_tags": "<think>" * 150_000,
    "answer_tags": "<answer>" * 150_000 + "</answer>",
    "lt_spaces": "<" + " " * 1_000_000,
    "final_answer": "final answer " * 80_000,
    "quotes": ' "\\"' * 250_000,
    "commas": "1," * 500_000,
    "text_wrappers": "\\text{" * 100_000 + "}" * 100_000,
    "minus_chain": "-" * 1_000_000 + "1",
    "power_chain": "9**" * 300_000 + "9",
    "dollars": "$" * 1_000_000,
    "frac": "\\frac{" * 100_000,
    "nested_grid": "[[" + "1," * 300_000 + "1]]",
    "empty": "",
    "nul": "\x00",
}

PUBLIC: dict[str, tuple[Any, type | tuple[type, ...]]] = {
    "extract_answer": (extract_answer, (str, type(None))),
    "normalize": (normalize, str),
    "parse_number": (parse_number, (Fraction, type(None))),
    "match_number": (lambda s: match_number(s, "1"), bool),
    "match_number_expected": (lambda s: match_number("1", s), bool),
    "parse_list": (parse_list, (list, type(None))),
    "parse_int_list": (parse_int_list, (list, type(None))),
    "parse_grid": (parse_grid, (list, type(None))),
    "parse_int_grid": (parse_int_grid, (list, type(None))),
    "safe_arithmetic": (safe_arithmetic, (Fraction, type(None))),
    "safe_arithmetic_long": (lambda s: safe_arithmetic(s, max_len=10**9), (Fraction, type(None))),
    "numbers_in": (numbers_in, (list, type(None))),
    "sympy_equivalent": (lambda s: sympy_equivalent(s, "x"), bool),
    "sympy_equivalent_expected": (lambda s: sympy_equivalent("x", s), bool),
    "match_answer": (lambda s: match_answer(s, "1", symbolic=True), float),
    "match_answer_expected": (lambda s: match_answer("1", s, symbolic=True), float),
}


@pytest.mark.parametrize("func_name", sorted(PUBLIC))
def test_never_raises_on_hostile_input(func_name: str) -> None:
    func, result_type = PUBLIC[func_name]
    for name, text in HOSTILE.items():
        result = func(text)
        assert isinstance(result, result_type), (func_name, name, type(result))


@pytest.mark.parametrize("func_name", sorted(PUBLIC))
def test_never_raises_on_non_str(func_name: str) -> None:
    func, result_type = PUBLIC[func_name]
    for value in (None, 0, 1.5, b"bytes", ["a"], {"a": 1}, object()):
        assert isinstance(func(value), result_type), (func_name, value)


def test_numbers_close_never_raises() -> None:
    for a in (0, -1, 10**1000, 1e308, float("inf"), float("nan"), Fraction(1, 3), None, "x"):
        for b in (0, 10**1000, float("-inf"), Fraction(-1, 7)):
            assert isinstance(numbers_close(a, b), bool)  # type: ignore[arg-type]
