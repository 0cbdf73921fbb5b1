"""Example environment: the value of an integer arithmetic expression (exactly one correct answer).

The pattern for tasks with a single numeric answer: ``generate`` stores what is needed to render
the question and to check the answer, ``verify`` parses the answer strictly (one integer, nothing
else) and compares it with the stored value.
"""

from __future__ import annotations

import random
import re
from typing import Any

from resyn import Environment

#: Longer answers are rejected before parsing, so that huge inputs cost nothing.
MAX_ANSWER_CHARS = 100
_INTEGER = re.compile(r"[+-]?\d+")


def parse_int(text: str) -> int | None:
    """The answer as one integer (surrounding whitespace allowed), or ``None`` if it is not one."""
    text = text.strip()
    if len(text) > MAX_ANSWER_CHARS or _INTEGER.fullmatch(text) is None:
        return None
    return int(text)


def random_expression(rng: random.Random, leaves: int, max_operand: int) -> tuple[str, int]:
    """A random expression over ``leaves`` operands in ``2..max_operand``, and its value."""
    if leaves == 1:
        operand = rng.randint(2, max_operand)
        return str(operand), operand
    split = rng.randint(1, leaves - 1)
    left_text, left = random_expression(rng, split, max_operand)
    right_text, right = random_expression(rng, leaves - split, max_operand)
    if split > 1:
        left_text = f"({left_text})"
    if leaves - split > 1:
        right_text = f"({right_text})"
    operator = rng.choice("+-*")
    if operator == "+":
        value = left + right
    elif operator == "-":
        value = left - right
    else:
        value = left * right
    return f"{left_text} {operator} {right_text}", value


class Arithmetic(Environment):
    """Evaluate an integer arithmetic expression with +, - and * and explicit parentheses.
    Difficulty raises the number of operands (2 at level 1, 6 at level 5) and their size."""

    name = "arithmetic"
    max_difficulty = 5

    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        while True:
            expression, value = random_expression(rng, difficulty + 1, 10 + 10 * difficulty)
            if value != 0:  # -0 == 0 would make a negated answer correct
                return {"expression": expression, "value": value}

    def question(self, instance: dict[str, Any]) -> str:
        return (
            f"Compute the value of the following expression:\n\n{instance['expression']}\n\n"
            "Give the result as a single integer written with digits (with a leading minus sign "
            "if it is negative), and nothing else."
        )

    def verify(self, instance: dict[str, Any], answer: str) -> float:
        value = parse_int(answer)
        return 1.0 if value is not None and value == instance["value"] else 0.0

    def solution(self, instance: dict[str, Any]) -> str | None:
        return str(instance["value"])
