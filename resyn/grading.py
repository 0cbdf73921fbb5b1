"""Answer extraction for the harness, and a grading toolkit for environment authors.

Two audiences use this module:

* **The harness** calls :func:`extract_answer` on a model completion and hands the result to the
  environment's ``verify``. Extraction drops reasoning blocks, then prefers the last
  ``<answer>…</answer>``, then the last ``\\boxed{…}``, then a trailing "final answer:" line.
* **Environment authors** (often an LLM) call the remaining functions inside ``verify`` so that they
  never have to write their own fragile parsing, and never need ``eval``: number parsing and
  tolerant comparison, text normalisation, list and grid parsing, a safe arithmetic evaluator for
  countdown-style tasks, and symbolic equivalence through sympy.

Everything here runs on untrusted model output, so every public function is **total**: on any
``str`` input it returns a value of its declared type (``None``/``False``/``0.0`` for "no") and never
raises. Non-``str`` input is treated the same way (``None``/``False``/``0.0``/``""``) rather than
raising, because LLM-written verifiers pass the wrong types more often than one would hope.

Every function is also bounded on huge inputs: the scanners are linear (no regex with nested or
adjacent overlapping quantifiers), and inputs that cannot be a sensible answer are rejected by
length before any real work. The caps are the ``MAX_*`` module constants below; callers that need
different limits should pre-process the text themselves rather than rely on unbounded parsing.

This module is imported in the sandbox worker, whose start-up time matters, so it imports only the
standard library at import time. sympy (about a second to import) is loaded on the first call to
:func:`sympy_equivalent` only.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

__all__ = [
    "MAX_ARITH_BASE",
    "MAX_ARITH_CHARS",
    "MAX_ARITH_EXPONENT",
    "MAX_BOXED_SCAN",
    "MAX_COMPLETION_CHARS",
    "MAX_GRID_CELLS",
    "MAX_GRID_CHARS",
    "MAX_INT_DIGITS",
    "MAX_LIST_CHARS",
    "MAX_LIST_ITEMS",
    "MAX_NUMBER_CHARS",
    "MAX_SCI_EXPONENT",
    "MAX_SYMPY_CHARS",
    "MAX_SYMPY_DIGITS",
    "MAX_SYMPY_IDENTIFIER",
    "MAX_UNWRAP_CHARS",
    "extract_answer",
    "match_answer",
    "match_number",
    "normalize",
    "numbers_close",
    "numbers_in",
    "parse_grid",
    "parse_int_grid",
    "parse_int_list",
    "parse_list",
    "parse_number",
    "safe_arithmetic",
    "sympy_equivalent",
]

# ---------------------------------------------------------------------------------------------------
# Caps. Each bounds the work done on one call; inputs beyond a cap give the "no" answer.
# ---------------------------------------------------------------------------------------------------

#: :func:`extract_answer` returns None for longer completions (about a million tokens).
MAX_COMPLETION_CHARS = 4_000_000
#: :func:`extract_answer` looks for ``\\boxed{…}`` only in this many trailing characters: brace
#: matching is a Python-level scan, and an answer box is near the end of a completion.
MAX_BOXED_SCAN = 100_000
#: :func:`normalize` only strips wrappers (``$…$``, ``\\text{…}``…) from texts up to this length;
#: longer texts are only whitespace-collapsed and lowercased. Answers are short; this keeps
#: adversarial nesting from costing many linear passes.
MAX_UNWRAP_CHARS = 10_000
#: :func:`parse_number` returns None for longer strings.
MAX_NUMBER_CHARS = 200
#: Largest ``|exponent|`` accepted in scientific notation (``1e1000``); ``1e999999999`` would
#: otherwise build a billion-digit integer.
MAX_SCI_EXPONENT = 1000
#: Largest number of digits accepted for one integer by the ``*_int_*`` parsers (Python refuses to
#: convert strings of more than 4300 digits anyway).
MAX_INT_DIGITS = 1000
#: :func:`parse_list` returns None for longer inputs.
MAX_LIST_CHARS = 200_000
#: :func:`parse_list` returns None for lists with more items.
MAX_LIST_ITEMS = 10_000
#: :func:`parse_grid` returns None for longer inputs.
MAX_GRID_CHARS = 200_000
#: :func:`parse_grid` returns None for grids with more cells in total.
MAX_GRID_CELLS = 100_000
#: Hard cap on :func:`safe_arithmetic`'s ``max_len`` (and on :func:`numbers_in`'s input): deeper
#: expressions exhaust the parser's and the walker's recursion.
MAX_ARITH_CHARS = 10_000
#: :func:`safe_arithmetic` accepts ``a ** n`` only for integer ``|n| <= MAX_ARITH_EXPONENT`` ...
MAX_ARITH_EXPONENT = 10
#: ... and only when numerator and denominator of ``a`` are at most this large.
MAX_ARITH_BASE = 10**6
#: :func:`sympy_equivalent` returns False for longer inputs.
MAX_SYMPY_CHARS = 300
#: Longest identifier :func:`sympy_equivalent` accepts that is not a known function or constant.
MAX_SYMPY_IDENTIFIER = 8
#: :func:`sympy_equivalent` rejects expressions whose (conservatively estimated) evaluation could
#: produce integers with more digits than this: a single huge ``int`` power is computed in C and
#: cannot be interrupted by the timeout.
MAX_SYMPY_DIGITS = 10_000


class _Lazy:
    """A regex compiled on first use: compiling all of them costs milliseconds of worker start-up."""

    __slots__ = ("_compiled", "_flags", "_pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def rx(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._pattern, self._flags)
        return self._compiled

    def finditer(self, text: str, pos: int = 0) -> Iterator[re.Match[str]]:
        return self.rx.finditer(text, pos)

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.rx.search(text, pos)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self.rx.fullmatch(text)

    def findall(self, text: str) -> list[Any]:
        return self.rx.findall(text)

    def sub(self, repl: str | Callable[[re.Match[str]], str], text: str) -> str:
        return self.rx.sub(repl, text)


def _is_str(value: object) -> bool:
    # Not an isinstance() in place: the annotations say str, but callers are untrusted code and
    # mypy would call the check unreachable.
    return isinstance(value, str)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Fraction)


class _Reject(Exception):
    """Internal: the input is outside what a parser accepts."""


# ---------------------------------------------------------------------------------------------------
# Answer extraction
# ---------------------------------------------------------------------------------------------------

# Exact tags only: a tolerant form such as ``<\s*/?\s*think\s*>`` backtracks quadratically on a
# ``<`` followed by a long run of spaces.
_THINK_TAG = _Lazy(r"<(/?)think>", re.IGNORECASE)
_ANSWER_TAG = _Lazy(r"<(/?)answer>", re.IGNORECASE)
# ``\\.`` swallows escaped braces (``\{``) so they do not count as structure. The boxed alternative
# comes first so that ``\b`` of ``\boxed`` is not consumed as an escape.
_BOXED_TOKEN = _Lazy(r"\\(?:boxed|fbox)[ \t\r\n]*\{|\\.|[{}]", re.DOTALL)
_FINAL_ANSWER = _Lazy(r"final[ \t]+answer[ \t]*(?:\*\*[ \t]*)?(?::|\bis\b[ \t]*:?|=)", re.IGNORECASE)


def extract_answer(completion: str) -> str | None:
    """The answer in a model completion, or None if it gives none.

    Reasoning is dropped first: every ``<think>…</think>`` block (tags case-insensitive, nesting
    counted); a leading section closed by ``</think>`` without an opening tag (chat templates that
    put ``<think>`` in the prompt); and everything after a ``<think>`` that is never closed (the
    model did not finish thinking, so nothing after it is an answer). Then, in order:

    1. the content of the last complete ``<answer>…</answer>`` (tags case-insensitive). If there is
       no complete pair but an ``<answer>`` is left open, the text after the last one (generation
       stopped on the ``</answer>`` stop sequence). The content is stripped, and a content that is
       exactly one ``\\boxed{…}`` is unwrapped. An empty tag gives ``""``, not None;
    2. the content of the last ``\\boxed{…}`` (or ``\\fbox{…}``) with balanced braces ("last" = the
       one whose closing brace comes last, so for nested boxes the outer one), stripped. Only boxes
       starting in the last :data:`MAX_BOXED_SCAN` characters are considered;
    3. the last line containing ``final answer:`` / ``**Final Answer:**`` / ``final answer is`` /
       ``final answer =`` (case-insensitive), returning what follows the last such phrase on the
       line, stripped of markdown bold and a trailing period. If nothing follows, the next
       non-empty line is the answer.

    Returns None for non-str input and for completions longer than :data:`MAX_COMPLETION_CHARS`.
    """
    try:
        # The common case, without a regex: the only ``<`` of the text are those of one lowercase
        # ``<answer>`` and a later ``</answer>``. Every think or answer tag starts with a ``<``, so
        # there is nothing to strip and this pair is the last complete one (the same result as
        # the general path below, checked against it in tests/test_grading.py).
        if type(completion) is str and completion.count("<") == 2 and len(completion) <= MAX_COMPLETION_CHARS:
            close = completion.find("</answer>")
            opened = completion.find("<answer>")
            if 0 <= opened < close:
                content = completion[opened + 8 : close].strip()
                if not content.startswith(("\\boxed", "\\fbox")):
                    return content
        return _extract_general(completion)
    except Exception:  # last line of defence: extraction must be total
        return None


def _extract_general(completion: str) -> str | None:
    """:func:`extract_answer` without its fast path (raises on what it catches)."""
    if not isinstance(completion, str) or len(completion) > MAX_COMPLETION_CHARS:
        return None
    text = _strip_think(completion)
    tagged = _last_answer_tag(text)
    if tagged is not None:
        return tagged
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed
    return _final_answer_line(text)


def _strip_think(text: str) -> str:
    pieces: list[str] = []
    depth = 0
    seen_open = False
    keep_from = 0
    for m in _THINK_TAG.finditer(text):
        if m.group(1):  # </think>
            if depth > 0:
                depth -= 1
                if depth == 0:
                    keep_from = m.end()
            elif not seen_open:
                # The template opened the block in the prompt: all so far was reasoning.
                pieces.clear()
                keep_from = m.end()
            else:
                pieces.append(text[keep_from : m.start()])
                keep_from = m.end()
        else:
            if depth == 0:
                pieces.append(text[keep_from : m.start()])
            depth += 1
            seen_open = True
    if depth == 0:
        pieces.append(text[keep_from:])
    return "".join(pieces)


def _last_answer_tag(text: str) -> str | None:
    tags = list(_ANSWER_TAG.finditer(text))
    content: str | None = None
    for i in range(len(tags) - 1, -1, -1):
        if tags[i].group(1):  # the last closing tag ...
            for j in range(i - 1, -1, -1):
                if not tags[j].group(1):  # ... and the last opening tag before it
                    content = text[tags[j].end() : tags[i].start()]
                    break
            break
    if content is None and tags and not tags[-1].group(1):
        content = text[tags[-1].end() :]
    if content is None:
        return None
    content = content.strip()
    inner = _whole_boxed(content)
    return inner if inner is not None else content


def _boxed_spans(text: str) -> tuple[int, int] | None:
    """(start, end) of the content of the boxed group whose closing brace comes last."""
    window = max(0, len(text) - MAX_BOXED_SCAN)
    first = text.find("\\boxed", window)
    fbox = text.find("\\fbox", window)
    if first < 0 or 0 <= fbox < first:
        first = fbox
    if first < 0:
        return None
    best: tuple[int, int] | None = None
    stack: list[int] = []  # content start for boxed groups, -1 for plain braces
    for m in _BOXED_TOKEN.finditer(text, first):
        tok = m.group()
        if tok == "}":
            if stack:
                start = stack.pop()
                if start >= 0:
                    best = (start, m.start())
        elif tok == "{":
            stack.append(-1)
        elif tok.endswith("{") and tok.startswith(("\\boxed", "\\fbox")):
            stack.append(m.end())
    return best


def _last_boxed(text: str) -> str | None:
    span = _boxed_spans(text)
    return None if span is None else text[span[0] : span[1]].strip()


def _whole_boxed(text: str) -> str | None:
    """The content if ``text`` is exactly one ``\\boxed{…}`` group, else None."""
    if not text.startswith(("\\boxed", "\\fbox")) or not text.endswith("}"):
        return None
    span = _boxed_spans(text)
    if span is None or span[1] != len(text) - 1:
        return None
    # The group must also open at the very start (not a later box ending at the end).
    head = text[: span[0]]
    if head.rstrip(" \t\r\n{") not in ("\\boxed", "\\fbox"):
        return None
    return text[span[0] : span[1]].strip()


def _clean_final(rest: str) -> str:
    prev = None
    s = rest.strip()
    while s != prev:
        prev = s
        if s.startswith("**"):
            s = s[2:].strip()
        if s.endswith("**"):
            s = s[:-2].strip()
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1].strip()
    return s


def _final_answer_line(text: str) -> str | None:
    if _FINAL_ANSWER.search(text) is None:  # spares splitting a long text into lines
        return None
    lines = text.splitlines()
    for idx in range(len(lines) - 1, -1, -1):
        last = None
        for m in _FINAL_ANSWER.finditer(lines[idx]):
            last = m
        if last is None:
            continue
        answer = _clean_final(lines[idx][last.end() :])
        if answer:
            return answer
        for following in lines[idx + 1 :]:
            answer = _clean_final(following)
            if answer:
                return answer
    return None


# ---------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------

_BRACE_WRAPPERS = ("\\text", "\\textbf", "\\textit", "\\mathrm", "\\mathbf", "\\boxed", "\\fbox")
_PAIRED = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))
_QUOTE_PAIRS = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"))
_BRACE_TOKEN = _Lazy(r"\\.|[{}]", re.DOTALL)


def _matching_brace(s: str, open_idx: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_idx`` (escapes skipped), or -1."""
    depth = 0
    for m in _BRACE_TOKEN.finditer(s, open_idx):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def _unwrap_once(s: str) -> str:
    s = s.strip()
    for left, right in _PAIRED:
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            inner = s[len(left) : -len(right)]
            if left not in inner and right not in inner:
                return inner
    if len(s) >= 2 and s[0] == "`" and s[-1] == "`":
        return s.strip("`")
    for left, right in _QUOTE_PAIRS:
        if len(s) >= 2 and s[0] == left and s[-1] == right:
            inner = s[1:-1]
            if left not in inner and right not in inner:
                return inner
    if s.endswith("}"):
        for name in _BRACE_WRAPPERS:
            if s.startswith(name):
                rest = s[len(name) :].lstrip()
                if rest.startswith("{"):
                    open_idx = len(s) - len(rest)
                    if _matching_brace(s, open_idx) == len(s) - 1:
                        return s[open_idx + 1 : -1]
    if s.endswith(".") and not s.endswith(".."):
        return s[:-1]
    return s


def _unwrap(s: str) -> str:
    """Strip answer wrappers (math delimiters, ``\\text{}``, markdown, quotes, final period)."""
    if len(s) > MAX_UNWRAP_CHARS:
        return s.strip()
    # Each pass removes one layer and shortens the string, so this terminates; the bound only
    # keeps a pathological onion of wrappers from costing one linear pass per layer.
    for _ in range(64):
        out = _unwrap_once(s).strip()
        if out == s:
            break
        s = out
    return s


def normalize(text: str) -> str:
    """The forgiving textual form used to compare answers.

    Strips, collapses whitespace runs (any Unicode whitespace) to single spaces, lowercases, and
    then repeatedly removes surrounding wrappers: ``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``,
    ``\\text{…}`` (also ``\\textbf``, ``\\textit``, ``\\mathrm``, ``\\mathbf``, ``\\boxed``,
    ``\\fbox``; only when the brace closing the wrapper is the last character), markdown ``**…**``
    and backticks, matching straight or curly quotes, and a single trailing period (not ``...``).
    A paired wrapper is only removed when its delimiter does not also occur inside, so
    ``"a" or "b"`` keeps its quotes. Wrappers are only stripped for texts up to
    :data:`MAX_UNWRAP_CHARS`. Non-str input gives ``""``.
    """
    try:
        if not _is_str(text):
            return ""
        return _unwrap(" ".join(text.split()).lower())
    except Exception:  # last line of defence
        return ""


# ---------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------

# Thousands separators only in the strict form (1-3 leading digits, then groups of exactly 3), so
# "1,23" and "1234,567" are rejected rather than read as 123 or 1234567.
_INT_PART = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_PLAIN_NUMBER = _Lazy(rf"(?P<mant>[+-]?(?:{_INT_PART}(?:\.[0-9]*)?|\.[0-9]+))(?:[eE](?P<exp>[+-]?[0-9]+))?")
_LATEX_FRAC = _Lazy(r"(?P<sign>[+-]?)\\[dt]?frac[ \t]*\{(?P<num>[^{}]*)\}[ \t]*\{(?P<den>[^{}]*)\}")


def _parse_plain(s: str) -> Fraction | None:
    m = _PLAIN_NUMBER.fullmatch(s.strip())
    if m is None:
        return None
    exp = m.group("exp")
    if exp is not None and abs(int(exp)) > MAX_SCI_EXPONENT:
        return None
    mant = m.group("mant").replace(",", "")
    value = Fraction(mant)
    if exp is not None:
        e = int(exp)
        value = value * 10**e if e >= 0 else value / 10**-e
    return value


def _divide(num: Fraction | None, den: Fraction | None) -> Fraction | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def parse_number(text: str) -> Fraction | None:
    """The exact value of a number written as text, or None.

    Accepts integers with optional sign (``-12``, ``+3``; thousands separators only in the strict
    ``1,234,567`` form, so ``1,23`` is None), decimals (``0.5``, ``.5``, ``3.``), scientific notation
    (``1.5e3``, ``|exponent| <= MAX_SCI_EXPONENT``), simple fractions ``3/4``, ``-3/4``, ``1.5/2``,
    ``3 / -4``, and LaTeX ``\\frac{3}{4}``, ``\\dfrac``, ``\\tfrac`` (optionally signed outside or
    inside). Surrounding whitespace and ``$`` characters are tolerated; the Unicode minus ``−`` is
    read as ``-``. Everything else is None: percentages (``50%``), ``inf``/``nan``, units, words,
    mixed numbers (``1 1/2``), zero denominators, strings longer than :data:`MAX_NUMBER_CHARS`.
    Decimals are exact (``0.1`` is ``Fraction(1, 10)``).
    """
    try:
        if not isinstance(text, str) or len(text) > MAX_NUMBER_CHARS:
            return None
        s = text.strip().strip("$").strip().replace("\u2212", "-")
        if not s:
            return None
        m = _LATEX_FRAC.fullmatch(s)
        if m is not None:
            value = _divide(_parse_plain(m.group("num")), _parse_plain(m.group("den")))
            if value is not None and m.group("sign") == "-":
                value = -value
            return value
        if s.count("/") == 1:
            num, den = s.split("/")
            return _divide(_parse_plain(num), _parse_plain(den))
        return _parse_plain(s)
    except Exception:  # last line of defence
        return None


def _parse_number_loose(text: str) -> Fraction | None:
    value = parse_number(text)
    if value is None and isinstance(text, str) and len(text) <= MAX_UNWRAP_CHARS:
        value = parse_number(normalize(text))
    return value


def numbers_close(
    a: float | Fraction | int, b: float | Fraction | int, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9
) -> bool:
    """True if ``|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol)``, computed exactly.

    Like :func:`math.isclose`, but the arithmetic is done on exact fractions, so huge or very
    precise values do not overflow or round. NaN is close to nothing; an infinity only to the same
    infinity. Non-numeric arguments give False.
    """
    try:
        if not (_is_number(a) and _is_number(b)):
            return False
        if (isinstance(a, float) and not math.isfinite(a)) or (isinstance(b, float) and not math.isfinite(b)):
            return bool(a == b)
        fa, fb = Fraction(a), Fraction(b)
        if fa == fb:
            return True
        diff = abs(fa - fb)
        return diff <= Fraction(abs_tol) or diff <= Fraction(rel_tol) * max(abs(fa), abs(fb))
    except Exception:  # e.g. a NaN tolerance
        return False


def match_number(
    answer: str,
    expected: int | float | Fraction | str,
    *,
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-9,
) -> bool:
    """True if ``answer`` parses as a number close to ``expected`` (see :func:`numbers_close`).

    ``answer`` (and ``expected`` when it is a string) go through :func:`parse_number`, retried on
    the :func:`normalize`-d text so that ``**42**`` or ``\\text{42}`` also parse. False if either
    does not parse.
    """
    try:
        got = _parse_number_loose(answer)
        if got is None:
            return False
        want: int | float | Fraction | None
        if isinstance(expected, str):
            want = _parse_number_loose(expected)
        elif _is_number(expected):
            want = expected
        else:
            return False
        return want is not None and numbers_close(got, want, rel_tol=rel_tol, abs_tol=abs_tol)
    except Exception:  # last line of defence
        return False


# ---------------------------------------------------------------------------------------------------
# Lists and grids
# ---------------------------------------------------------------------------------------------------

_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_LIST_INTERESTING = _Lazy(r"""[()\[\]{}"',;\s]""")
_QUOTE_OPENERS = frozenset(" \t\r\n\f\v,;([{")
_INT_TEXT = _Lazy(r"[+-]?[0-9]+")


class _Scan:
    """Top-level structure of a list body: separator positions outside quotes and brackets."""

    __slots__ = ("commas", "has_square", "newlines", "semis", "spaces")

    def __init__(self) -> None:
        self.commas: list[int] = []
        self.semis: list[int] = []
        self.newlines: list[int] = []
        self.spaces: list[int] = []
        self.has_square = False


def _closing_quote(s: str, i: int) -> int:
    q = s[i]
    j = i + 1
    n = len(s)
    while j < n:
        k = s.find(q, j)
        if k < 0:
            return -1
        # Count the backslashes before it: an odd number escapes the quote.
        b = k - 1
        while b > i and s[b] == "\\":
            b -= 1
        if (k - 1 - b) % 2 == 0:
            return k
        j = k + 1
    return -1


def _scan(s: str) -> _Scan | None:
    """Separator positions at bracket depth 0, or None if brackets are unbalanced.

    A quote opens a quoted (opaque) region only at the start of an item (after start, whitespace,
    a separator or an opening bracket), so apostrophes inside words (``don't``) are plain text.
    An unterminated quote is plain text too.
    """
    out = _Scan()
    stack: list[str] = []
    pos = 0
    n = len(s)
    while pos < n:
        m = _LIST_INTERESTING.search(s, pos)
        if m is None:
            break
        i = m.start()
        c = s[i]
        pos = i + 1
        if c in "\"'":
            if i == 0 or s[i - 1] in _QUOTE_OPENERS:
                j = _closing_quote(s, i)
                if j >= 0:
                    pos = j + 1
            continue
        if c in _CLOSERS:
            if not stack and c == "[":
                out.has_square = True
            stack.append(_CLOSERS[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                return None
            if not stack and c == "]":
                out.has_square = True
        elif not stack:
            if c == ",":
                out.commas.append(i)
            elif c == ";":
                out.semis.append(i)
            elif c == "\n":
                out.newlines.append(i)
                out.spaces.append(i)
            else:
                out.spaces.append(i)
    return None if stack else out


def _outer_group(s: str) -> str | None:
    """The inside of ``s`` if all of ``s`` is one bracket group ``(…)``, ``[…]`` or ``{…}``."""
    if len(s) < 2 or s[0] not in _CLOSERS or s[-1] != _CLOSERS[s[0]]:
        return None
    scan = _scan(s[1:-1])
    # The inside must be balanced on its own, else the first bracket closes early: "(1),(2)".
    return s[1:-1] if scan is not None else None


def _split_at(s: str, cuts: list[int]) -> list[str]:
    parts = []
    start = 0
    for c in cuts:
        parts.append(s[start:c])
        start = c + 1
    parts.append(s[start:])
    return parts


def _unquote(item: str) -> str:
    item = item.strip()
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'":
        return item[1:-1]
    return item


def _split_items(body: str, *, allow_square: bool) -> list[str] | None:
    scan = _scan(body)
    if scan is None or (scan.has_square and not allow_square):
        return None
    if scan.commas or scan.semis:
        cuts = scan.commas or scan.semis
        parts = [p.strip() for p in _split_at(body, cuts)]
        if parts and not parts[-1]:
            parts.pop()  # trailing separator: [1, 2, 3,]
        # A flat item spanning lines means the text was a grid, not a list.
        if any(not p or ("\n" in p and not allow_square) for p in parts):
            return None
    elif scan.newlines:
        parts = [p.strip() for p in _split_at(body, scan.newlines)]
        parts = [p for p in parts if p]
    else:
        parts = [p for p in _split_at(body, scan.spaces) if p.strip()]
    if len(parts) > MAX_LIST_ITEMS:
        return None
    return parts


def parse_list(text: str) -> list[str] | None:
    """A flat list of item strings, or None.

    Accepted forms: ``[1, 2, 3]``, ``(1, 2, 3)``, ``{1, 2, 3}``, ``1, 2, 3``, ``1;2;3``,
    newline-separated items, ``1 2 3``. The outer bracket pair (one level) is optional. The
    separator is the first present of: comma, semicolon, newline, whitespace, counted only outside
    quotes and brackets, so ``(1, 2), (3, 4)`` is two items and ``"a, b", c`` is two items.
    Items are stripped of whitespace and of one pair of matching surrounding quotes (escapes inside
    are kept as written). A trailing comma/semicolon is allowed; other empty items make the list
    None, as do items spanning lines in comma/semicolon mode, nested square brackets (not flat),
    unbalanced brackets, more than :data:`MAX_LIST_ITEMS` items or more than :data:`MAX_LIST_CHARS`
    characters. Empty or blank input is None; ``[]`` and ``()`` are ``[]``.
    """
    try:
        if not isinstance(text, str) or len(text) > MAX_LIST_CHARS:
            return None
        s = text.strip()
        if not s:
            return None
        inner = _outer_group(s)
        body = s if inner is None else inner
        if not body.strip():
            return [] if inner is not None else None
        parts = _split_items(body, allow_square=False)
        if parts is None:
            return None
        return [_unquote(p) for p in parts]
    except Exception:  # last line of defence
        return None


def _to_int(item: str) -> int | None:
    item = item.strip().replace("\u2212", "-")
    if len(item.lstrip("+-")) > MAX_INT_DIGITS or _INT_TEXT.fullmatch(item) is None:
        return None
    return int(item)


def _ints(items: list[str]) -> list[int] | None:
    out = []
    for item in items:
        value = _to_int(item)
        if value is None:
            return None
        out.append(value)
    return out


def parse_int_list(text: str) -> list[int] | None:
    """:func:`parse_list`, then every item as a plain integer (``+3``, ``-3``, ``007``), or None.

    Items like ``1.5``, ``1.0``, ``1e3`` or with more than :data:`MAX_INT_DIGITS` digits make the
    whole result None.
    """
    try:
        items = parse_list(text)
        return None if items is None else _ints(items)
    except Exception:  # last line of defence
        return None


_FENCE = _Lazy(r"```[A-Za-z0-9_+-]*")


def _strip_fences(s: str) -> str:
    lines = s.splitlines()
    while lines and _FENCE.fullmatch(lines[0].strip()):
        lines.pop(0)
    while lines and _FENCE.fullmatch(lines[-1].strip()):
        lines.pop()
    return "\n".join(lines).strip()


def _grid_rows(s: str) -> list[str] | None:
    """Row texts: the groups of a nested list, or lines, or ``;``/``/``-separated parts."""
    inner = _outer_group(s)
    if inner is not None and inner.lstrip()[:1] in ("[", "("):
        groups = _split_items(inner, allow_square=True)
        if groups is None or any(g[:1] not in ("[", "(") for g in groups):
            return None
        return groups
    lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
    if len(lines) == 1:
        line = lines[0]
        if ";" in line:
            lines = [part.strip() for part in line.split(";")]
        elif "/" in line and not any(c in line for c in ",[("):
            lines = [part.strip() for part in line.split("/")]
    return lines


def parse_grid(text: str) -> list[list[str]] | None:
    """A 2-D grid of cell strings, or None.

    Rows come from, in this order of precedence:

    * a nested list ``[[1, 2], [3, 4]]`` / ``((1, 2), (3, 4))`` (rows are the bracket groups inside
      the outer brackets);
    * otherwise lines (blank lines and surrounding markdown code fences are ignored); a row may
      itself be bracketed, so ``[1, 2]`` on each line works;
    * otherwise, for a single line, parts separated by ``;`` or, if there is none, by ``/``
      (``#.#/.#./#.#``). A single line without either is a one-row grid.

    Cells: if any row contains a comma or a bracket, every row is parsed with :func:`parse_list`;
    else if any row contains inner whitespace, every row is split on whitespace; else every row is
    split into single characters (``#.#`` → ``["#", ".", "#"]``; note that this makes ``12`` two
    cells). Every row must have at least one cell, otherwise the result is None.

    Rows may have different lengths: check the shape you expect. None for more than
    :data:`MAX_GRID_CHARS` characters or :data:`MAX_GRID_CELLS` cells.
    """
    try:
        if not isinstance(text, str) or len(text) > MAX_GRID_CHARS:
            return None
        s = _strip_fences(text.strip())
        if not s:
            return None
        rows = _grid_rows(s)
        if not rows or any(not r for r in rows):
            return None
        grid: list[list[str]] = []
        cells = 0
        if any("," in r or r[0] in "[(" for r in rows):
            for r in rows:
                items = parse_list(r)
                if not items:
                    return None
                grid.append(items)
                cells += len(items)
                if cells > MAX_GRID_CELLS:
                    return None
        elif any(len(r.split()) > 1 for r in rows):
            for r in rows:
                grid.append(r.split())
                cells += len(grid[-1])
                if cells > MAX_GRID_CELLS:
                    return None
        else:
            if sum(len(r) for r in rows) > MAX_GRID_CELLS:
                return None
            grid = [list(r) for r in rows]
        return grid
    except Exception:  # last line of defence
        return None


def parse_int_grid(text: str) -> list[list[int]] | None:
    """:func:`parse_grid`, then every cell as a plain integer (as in :func:`parse_int_list`)."""
    try:
        grid = parse_grid(text)
        if grid is None:
            return None
        out = []
        for row in grid:
            values = _ints(row)
            if values is None:
                return None
            out.append(values)
        return out
    except Exception:  # last line of defence
        return None


# ---------------------------------------------------------------------------------------------------
# Safe arithmetic (countdown-style verifiers)
# ---------------------------------------------------------------------------------------------------

_ARITH_CHARS = frozenset("0123456789.+-*/() \t\r\n")
_ARITH_TRANSLATE = str.maketrans({"×": "*", "÷": "/", "\u2212": "-", "^": "**", "·": "*"})


def _arith_tree(expr: str, max_len: int) -> tuple[str, ast.expr] | None:
    if not isinstance(expr, str) or len(expr) > min(max_len, MAX_ARITH_CHARS):
        return None
    s = expr.translate(_ARITH_TRANSLATE).strip()
    # A character whitelist before parsing: no names, strings, attributes or calls can even reach
    # the parser, so the AST walk below only has to police operators.
    if not s or not _ARITH_CHARS.issuperset(s):
        return None
    return s, ast.parse(s, mode="eval").body


def _arith_eval(node: ast.expr, src: str) -> Fraction:
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _Reject
        if isinstance(v, int):
            return Fraction(v)
        # The literal's own text, so 0.1 is exactly 1/10 rather than the nearest double.
        seg = ast.get_source_segment(src, node)
        return Fraction(seg if seg is not None else repr(v))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        x = _arith_eval(node.operand, src)
        return -x if isinstance(node.op, ast.USub) else x
    if isinstance(node, ast.BinOp):
        left = _arith_eval(node.left, src)
        right = _arith_eval(node.right, src)
        op = node.op
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            if right == 0:
                raise _Reject
            return left / right
        if isinstance(op, ast.Pow):
            if right.denominator != 1 or abs(right.numerator) > MAX_ARITH_EXPONENT:
                raise _Reject
            if max(abs(left.numerator), left.denominator) > MAX_ARITH_BASE:
                raise _Reject
            if left == 0 and right < 0:
                raise _Reject
            return left**right.numerator
    raise _Reject


def safe_arithmetic(expr: str, *, max_len: int = 200) -> Fraction | None:
    """The exact value of an arithmetic expression, evaluated without ``eval``; None if invalid.

    Allowed: integer and decimal literals (no exponent notation, no leading zeros such as ``05``),
    ``+ - * /``, unary ``-``/``+``, parentheses, ``×`` and ``·`` for ``*``, ``÷`` for ``/``, ``−``
    for ``-``, and powers ``**``/``^`` with an integer exponent ``|n| <= MAX_ARITH_EXPONENT`` and a
    base whose numerator and denominator are at most :data:`MAX_ARITH_BASE`. Note that ``^`` is a
    power here, and the letter ``x`` is *not* multiplication. Anything else is None: names, calls,
    ``//``, ``%``, ``=`` (split off "``= 24``" yourself), division by zero, over-long input
    (``len(expr) > min(max_len, MAX_ARITH_CHARS)``).
    """
    try:
        parsed = _arith_tree(expr, max_len)
        if parsed is None:
            return None
        src, node = parsed
        return _arith_eval(node, src)
    except Exception:  # _Reject, SyntaxError, RecursionError, MemoryError from deep nesting ...
        return None


def _collect_ints(node: ast.expr, out: list[int]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            raise _Reject
        out.append(node.value)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _collect_ints(node.operand, out)
    elif isinstance(node, ast.BinOp) and isinstance(
        node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow
    ):
        _collect_ints(node.left, out)
        _collect_ints(node.right, out)
    else:
        raise _Reject


def numbers_in(expr: str) -> list[int] | None:
    """The integer literals of an arithmetic expression in source order, or None.

    Uses the grammar of :func:`safe_arithmetic` (with ``max_len`` = :data:`MAX_ARITH_CHARS`), so a
    countdown verifier can check both the value and that only the given numbers were used.
    Signs are operators, not part of literals: ``-3 + 5`` gives ``[3, 5]``. An exponent counts as a
    literal (``2^3`` gives ``[2, 3]``). None if the expression does not parse or contains a
    non-integer literal (``2.5``, ``1.0``). The expression is not evaluated: ``1/0`` gives
    ``[1, 0]``.
    """
    try:
        parsed = _arith_tree(expr, MAX_ARITH_CHARS)
        if parsed is None:
            return None
        out: list[int] = []
        _collect_ints(parsed[1], out)
        return out
    except Exception:  # _Reject, SyntaxError, RecursionError ...
        return None


# ---------------------------------------------------------------------------------------------------
# Symbolic equivalence (sympy, loaded lazily)
# ---------------------------------------------------------------------------------------------------

# Names a user may write, mapped to sympy attribute names. ``e`` is Euler's number, as in the
# answers models write.
_SYMPY_FUNCTIONS = {
    "sqrt": "sqrt",
    "cbrt": "cbrt",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "cot": "cot",
    "sec": "sec",
    "csc": "csc",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "log": "log",
    "ln": "log",
    "exp": "exp",
    "Abs": "Abs",
    "abs": "Abs",
    "pi": "pi",
    "E": "E",
    "e": "E",
    "I": "I",
}
# Names the parser's own transformations emit (auto_symbol, auto_number, split_symbols,
# evaluate=False). They must resolve, but a user may not write them.
_SYMPY_INTERNAL = ("Symbol", "Function", "Number", "Integer", "Float", "Rational", "Add", "Mul", "Pow")
_SYMPY_CHARS = _Lazy(r"[0-9A-Za-z \t\r\n+\-*/^().,]*")
_IDENTIFIER = _Lazy(r"[A-Za-z][A-Za-z0-9]*")
_ATTRIBUTE = _Lazy(r"[A-Za-z)][ \t\r\n]*\.|\.[ \t\r\n]*[A-Za-z(]")
_LATEX_FRAC_INNER = _Lazy(r"\\[dt]?frac[ \t]*\{([^{}]*)\}[ \t]*\{([^{}]*)\}")
_LATEX_COMMAND = _Lazy(r"\\([A-Za-z]+)")
_LATEX_DROP = ("\\left", "\\right", "\\,", "\\!", "\\;", "\\ ")
_LATEX_OPS = {"cdot": "*", "times": "*", "div": "/"}

_sympy_namespace: dict[str, Any] | None = None


class _SympyTimeout(BaseException):
    """Raised by the SIGALRM handler.

    A BaseException so that sympy's internal ``except Exception`` blocks cannot swallow it.
    """


def _sympy_prepare(text: str) -> str | None:
    """Turn LaTeX-ish input into parser input, or None if it fails the whitelist."""
    if not isinstance(text, str) or len(text) > MAX_SYMPY_CHARS:
        return None
    s = _unwrap(" ".join(text.split()))
    for drop in _LATEX_DROP:
        s = s.replace(drop, " ")
    for _ in range(MAX_SYMPY_CHARS):
        out = _LATEX_FRAC_INNER.sub(r"((\1)/(\2))", s)
        if out == s:
            break
        s = out

    def command(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _LATEX_OPS:
            return _LATEX_OPS[name]
        if name in _SYMPY_FUNCTIONS:
            return " " + name
        return m.group()  # unknown command: left in place, so the whitelist rejects it

    s = _LATEX_COMMAND.sub(command, s)
    s = s.replace("{", "(").replace("}", ")").replace("^", "**").strip()
    if not s or len(s) > 2 * MAX_SYMPY_CHARS or _SYMPY_CHARS.fullmatch(s) is None:
        return None
    if "__" in s or _ATTRIBUTE.search(s):
        return None
    for ident in _IDENTIFIER.findall(s):
        if ident in _SYMPY_FUNCTIONS:
            continue
        if len(ident) > MAX_SYMPY_IDENTIFIER or keyword.iskeyword(ident) or ident in _SYMPY_INTERNAL:
            return None
    return s


def _namespace() -> dict[str, Any]:
    global _sympy_namespace
    if _sympy_namespace is None:
        import sympy
        import sympy.parsing.sympy_parser  # imported here, not under the timer

        ns: dict[str, Any] = {name: getattr(sympy, attr) for name, attr in _SYMPY_FUNCTIONS.items()}
        for name in _SYMPY_INTERNAL:
            ns[name] = getattr(sympy, name)
        # Without this key eval() would insert the real builtins (eval, open, chr, ...).
        ns["__builtins__"] = {}
        _sympy_namespace = ns
    return dict(_sympy_namespace)


def _abs_bound(e: Any, sympy: Any) -> float:
    """A conservative bound on |value| of a sympy expression; symbols count as 10.

    Float overflow raises OverflowError, which the caller turns into "not equivalent": an
    expression too big to bound is too big to evaluate.
    """
    if e.is_Rational:
        return float(max(abs(int(e.p)), abs(int(e.q))))
    if e.is_Float:
        return abs(float(e))
    if e.is_Atom:
        return 10.0
    if e.is_Pow:
        return float(max(_abs_bound(e.base, sympy), 2.0) ** _abs_bound(e.exp, sympy))
    if isinstance(e, sympy.exp):
        return math.exp(_abs_bound(e.args[0], sympy))
    if e.is_Mul:
        out = 1.0
        for a in e.args:
            out *= _abs_bound(a, sympy)
        return out
    return sum(_abs_bound(a, sympy) for a in e.args) + 10.0


def _digit_cost(e: Any, sympy: Any) -> float:
    """A conservative bound on the digits of the integers that evaluating ``e`` can create."""
    if e.is_Rational:
        return (int(e.p).bit_length() + int(e.q).bit_length()) * 0.30103 + 2
    if e.is_Float:
        f = abs(float(e))
        return 20.0 + (abs(math.log10(f)) if f > 0 else 0.0)
    if e.is_Atom:
        return 1.0
    if e.is_Pow:
        return _digit_cost(e.base, sympy) * max(1.0, _abs_bound(e.exp, sympy)) + _digit_cost(e.exp, sympy)
    if isinstance(e, sympy.exp):  # exp(n*log(10)) evaluates to 10**n
        arg = e.args[0]
        return max(1.0, _abs_bound(arg, sympy)) + _digit_cost(arg, sympy)
    return 1.0 + sum(_digit_cost(a, sympy) for a in e.args)


def _sympy_parse(s: str, *, evaluate: bool) -> Any:
    from sympy.parsing.sympy_parser import (
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    transformations = (*standard_transformations, implicit_multiplication_application)
    return parse_expr(
        s, local_dict={}, global_dict=_namespace(), transformations=transformations, evaluate=evaluate
    )


def _sympy_small(s: str, sympy: Any) -> bool:
    expr = _sympy_parse(s, evaluate=False)
    if not isinstance(expr, sympy.Basic):  # e.g. a tuple from "1, 2"
        return False
    cost = _digit_cost(expr, sympy)
    return math.isfinite(cost) and cost <= MAX_SYMPY_DIGITS


def _sympy_check(a: str, b: str) -> bool:
    import sympy

    if not (_sympy_small(a, sympy) and _sympy_small(b, sympy)):
        return False
    ea = _sympy_parse(a, evaluate=True)
    eb = _sympy_parse(b, evaluate=True)
    if not (isinstance(ea, sympy.Expr) and isinstance(eb, sympy.Expr)):
        return False
    diff = ea - eb
    if diff == 0:
        return True
    simplified = sympy.simplify(diff)
    if simplified == 0:
        return True
    return bool(simplified.equals(0) is True)


def _with_time_limit(fn: Callable[[], bool], timeout: float) -> bool:
    """Run ``fn`` with a SIGALRM deadline when possible; a timeout gives False.

    Only the main thread may install signal handlers; elsewhere (and on platforms without
    ``setitimer``) ``fn`` runs without an in-process limit and the sandbox's parent-side deadline is
    the backstop. A timer that was already armed (the worker's own deadline) is restored with its
    remaining time, and never postponed: our deadline is the earlier of the two.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()
    armed = [True]

    def on_alarm(signum: int, frame: object) -> None:
        if armed[0]:
            armed[0] = False  # raise at most once, and never after we disarmed
            raise _SympyTimeout

    clock = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = 0.0, 0.0
    try:
        old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, 0)
        limit = timeout if old_delay <= 0 else min(timeout, old_delay)
        try:
            signal.setitimer(signal.ITIMER_REAL, limit)
            return fn()
        except _SympyTimeout:
            return False
        finally:
            armed[0] = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        if old_delay > 0:
            remaining = old_delay - (time.monotonic() - clock)
            # An outer deadline that passed while we ran fires right away under its own handler.
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 1e-6), old_interval)


def sympy_equivalent(answer: str, expected: str, *, timeout: float = 2.0) -> bool:
    """True if sympy can show that ``answer`` and ``expected`` are mathematically equal.

    Input handling: surrounding ``$``/``\\(…\\)`` wrappers are removed; ``\\frac{a}{b}`` (also
    ``\\dfrac``/``\\tfrac``, nested) becomes ``((a)/(b))``; ``\\cdot``/``\\times`` become ``*``,
    ``\\div`` ``/``; ``\\left``/``\\right`` are dropped; ``\\sqrt``, ``\\sin``, ``\\pi``… lose their
    backslash; braces become parentheses; ``^`` is a power; implicit multiplication (``2x``,
    ``2(x+1)``, ``sin x``) is understood. ``e`` is Euler's number and ``I`` the imaginary unit.

    Safety: sympy's parser calls ``eval``, so the text must first pass a whitelist: at most
    :data:`MAX_SYMPY_CHARS` characters of ASCII letters, digits, whitespace and ``+-*/^().,``; no
    ``__``; a ``.`` only as a decimal point (no attribute access); identifiers either known
    functions/constants (sqrt, cbrt, sin, cos, tan, cot, sec, csc, asin/arcsin, acos/arccos,
    atan/arctan, sinh, cosh, tanh, log, ln, exp, Abs/abs, pi, E/e, I) or at most
    :data:`MAX_SYMPY_IDENTIFIER` characters and not a Python keyword; evaluation sees only those
    names (no builtins), every other name becomes a symbol. Expressions whose evaluation could build
    integers of more than :data:`MAX_SYMPY_DIGITS` digits (``9^9^9``) are rejected up front,
    because a huge integer power runs in C and no timeout can interrupt it.

    Equivalence is ``simplify(a - b) == 0``, falling back to ``equals(0)``. In the main thread the
    whole check runs under a ``SIGALRM`` timer of ``timeout`` seconds (the previous handler and
    timer are restored afterwards); in other threads there is no in-process limit. sympy is
    imported on first use, outside the timer. Rejection, timeout or any error gives False, and so
    does a non-positive or non-finite ``timeout``.
    """
    try:
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            return False
        a = _sympy_prepare(answer)
        b = _sympy_prepare(expected)
        if a is None or b is None:
            return False
        _namespace()  # import sympy before the clock starts
        return _with_time_limit(lambda: _sympy_check(a, b), float(timeout))
    except _SympyTimeout:  # fired between fn returning and the disarm
        return False
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------------
# The cascade
# ---------------------------------------------------------------------------------------------------


def match_answer(
    answer: str,
    expected: str,
    *,
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-9,
    symbolic: bool = False,
) -> float:
    """Score ``answer`` against ``expected``: 1.0 or 0.0.

    1.0 if the :func:`normalize`-d texts are equal; otherwise, if both parse as numbers (see
    :func:`match_number`), 1.0 exactly when they are :func:`numbers_close` (two numbers that are not
    close score 0.0 without trying sympy); otherwise, if ``symbolic``, 1.0 when
    :func:`sympy_equivalent`; else 0.0. Non-str input scores 0.0, except that a numeric
    ``expected`` is compared as a number.
    """
    try:
        if not _is_str(answer):
            return 0.0
        if not _is_str(expected):
            if _is_number(expected):
                return 1.0 if match_number(answer, expected, rel_tol=rel_tol, abs_tol=abs_tol) else 0.0
            return 0.0
        if normalize(answer) == normalize(expected):
            return 1.0
        got = _parse_number_loose(answer)
        want = _parse_number_loose(expected)
        if got is not None and want is not None:
            return 1.0 if numbers_close(got, want, rel_tol=rel_tol, abs_tol=abs_tol) else 0.0
        if symbolic and sympy_equivalent(answer, expected):
            return 1.0
        return 0.0
    except Exception:  # last line of defence
        return 0.0
