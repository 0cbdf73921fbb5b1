"""Negative probe answers: cheap or wrong answers a policy could try, built from the gold answers.

Pure functions of their inputs and an explicit ``random.Random``, so a check run is reproducible.
"""

from __future__ import annotations

import random
import re
import string
from fractions import Fraction

#: Constant answers that must not earn reward on any reasonable task.
JUNK_ANSWERS = (
    "", " ", "\n", "0", "1", "-1", "2", "0.5", "-0", "yes", "no", "true", "false", "None", "null",
    "[]", "{}", "()", "a", "A", "x", "?", "answer", "a b c", "1 2 3", "0 1", "\\boxed{}",
    "<answer></answer>", "lorem ipsum dolor sit amet", "NaN", "inf", "1e309", "I don't know",
    "' OR 1=1 --", "{{answer}}", "\x00", "ÿ☃𝔘",
)  # fmt: skip

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?$")
_FRACTION = re.compile(r"^[+-]?\d+\s*/\s*\d+$")
_SEPARATED = re.compile(r"(\s*[,;]\s*|\s+)")


def parse_numeric(text: str) -> Fraction | None:
    """The gold as an exact number when it is a plain integer, decimal or fraction."""
    text = text.strip()
    if len(text) > 60:
        return None
    try:
        if _NUMBER.match(text):
            value = Fraction(text)
            # '5e334' is a hex digit string in base-conversion tasks, not a number to perturb;
            # anything beyond float range cannot be written back in the gold's style either.
            return value if abs(value) < 1e300 else None
        if _FRACTION.match(text):
            num, den = text.split("/")
            return Fraction(int(num), int(den)) if int(den) else None
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def _format_like(value: Fraction, gold: str) -> str:
    """Write a perturbed number in the gold's style (integer, fraction or decimal)."""
    if "/" in gold and value.denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    if value.denominator == 1 and "." not in gold and "e" not in gold.lower():
        return str(value.numerator)
    return f"{float(value):.10g}"


def numeric_perturbations(gold: str) -> list[tuple[str, str]]:
    """``(kind, answer)`` pairs for a numeric gold: off by one, ±5 %, ×10, negated."""
    value = parse_numeric(gold)
    if value is None:
        return []
    candidates: list[tuple[str, Fraction]] = []
    # ±1 only for golds written as integers: for '238005395092.0' (3 significant figures asked)
    # an off-by-one is within the task's own tolerance.
    if value.denominator == 1 and "." not in gold and "e" not in gold.lower():
        candidates += [("plus_one", value + 1), ("minus_one", value - 1)]
    if value != 0:
        candidates += [
            ("plus_5_percent", value * Fraction(105, 100)),
            ("minus_5_percent", value * Fraction(95, 100)),
            ("times_10", value * 10),
            ("negated", -value),
        ]
    out: list[tuple[str, str]] = []
    for kind, perturbed in candidates:
        text = _format_like(perturbed, gold)
        if perturbed != value and parse_numeric(text) != value:
            out.append((kind, text))
    return out


def mutations(gold: str, rng: random.Random) -> list[tuple[str, str]]:
    """``(kind, answer)`` pairs: format-preserving edits of the gold that are usually wrong."""
    out: list[tuple[str, str]] = []
    digits = [i for i, c in enumerate(gold) if c.isdigit()]
    if digits:
        i = rng.choice(digits)
        new = rng.choice([d for d in string.digits if d != gold[i]])
        out.append(("digit_changed", gold[:i] + new + gold[i + 1 :]))
    bits = [i for i, c in enumerate(gold) if c in "01"]
    if bits and set(gold.replace(" ", "").replace(",", "")) <= set("01[]") and len(bits) >= 2:
        i = rng.choice(bits)
        out.append(("bit_flipped", gold[:i] + ("1" if gold[i] == "0" else "0") + gold[i + 1 :]))
    letters = [i for i, c in enumerate(gold) if c.isascii() and c.isalpha()]
    if letters:
        i = rng.choice(letters)
        pool = string.ascii_uppercase if gold[i].isupper() else string.ascii_lowercase
        new = rng.choice([c for c in pool if c != gold[i]])
        out.append(("letter_changed", gold[:i] + new + gold[i + 1 :]))
    parts = _SEPARATED.split(gold.strip())
    items, separators = parts[0::2], parts[1::2]
    if len(items) >= 2 and all(items):
        # One random pair of distinct items, never all pairs: a gold may hold 10^5 items, and
        # enumerating pairs of an untrusted module's gold exhausted the host's memory. Swapping
        # whole "key=value" items only reorders a mapping, which a verifier rightly accepts.
        if not all(("=" in item or ":" in item) for item in items):
            for _ in range(32):
                a, b = rng.randrange(len(items)), rng.randrange(len(items))
                if items[a] != items[b]:
                    swapped = list(items)
                    swapped[a], swapped[b] = swapped[b], swapped[a]
                    out.append(("items_swapped", _join(swapped, separators)))
                    break
        # Dropping an item is wrong for lists, sets and mappings alike; duplicating one is not
        # (a verifier that parses "A=1, A=1, B=2" into a mapping is right to accept it).
        drop = rng.randrange(len(items))
        out.append(("item_dropped", _join(items[:drop] + items[drop + 1 :], separators)))
    stripped = gold.strip()
    return [(kind, text) for kind, text in out if text.strip() != stripped]


def _join(items: list[str], separators: list[str]) -> str:
    text = items[0] if items else ""
    for index, item in enumerate(items[1:]):
        text += (separators[index] if index < len(separators) else " ") + item
    return text


def shotgun(gold: str, others: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """``(kind, answer)`` pairs listing the gold among other candidates."""
    out: list[tuple[str, str]] = []
    pool = [o for o in dict.fromkeys(others) if o.strip() != gold.strip()][:8]
    if len(pool) >= 2:
        candidates = [*pool, gold]
        rng.shuffle(candidates)
        for kind, separator in (("comma", ", "), ("space", " "), ("newline", "\n"), ("or", " or ")):
            out.append((f"list_{kind}", separator.join(candidates)))
        out.append(("gold_last", " ".join(pool) + " " + gold))
    value = parse_numeric(gold)
    if value is not None and value.denominator == 1:
        around = [str(value.numerator + k) for k in range(-3, 4)]
        out.append(("numeric_range", ", ".join(around)))
    return out


def long_answers(length: int, rng: random.Random) -> list[tuple[str, str]]:
    """Very long answers: random text, a giant integer (``int()`` refuses > 4300 digits) and deep
    brackets (recursive parsers overflow)."""
    alphabet = string.ascii_letters + string.digits + "     ,.;()[]"
    return [
        ("random_text", "".join(rng.choices(alphabet, k=length))),  # 3.5× faster than a choice per char
        ("huge_integer", "9" * length),
        ("deep_brackets", "[" * (length // 2) + "]" * (length // 2)),
    ]


def whole_token_pattern(text: str) -> re.Pattern[str] | None:
    """A regex finding ``text`` as a whole token (not inside a longer number or word)."""
    text = text.strip()
    if not text or len(text) > 500:
        return None
    return re.compile(r"(?<![A-Za-z0-9_.])" + re.escape(text) + r"(?![A-Za-z0-9_]|\.\d)")
