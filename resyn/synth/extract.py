"""Getting the environment module out of a writing model's reply.

Models rarely reply with exactly the one fenced block the prompt asks for: they reason first
(``<think>`` blocks, sometimes with draft code), explain before and after the code, show a usage
snippet, write a draft and then the final version, forget the fence, or run out of tokens inside
the block. :func:`extract_module` picks the module the model meant, and when there is none says
what was wrong with the *form* of the reply (``Extraction.feedback``), in words meant for the
``revise`` prompt. Whether the code is correct is the check suite's business: a module with a
syntax error is still returned, so that the ``syntax`` check can point at the line.

The choice, in order:

1. reasoning (``<think>…</think>``, also ``<thinking>``) is dropped, fences inside it included;
2. of the fenced blocks (```` ```python ````, ```` ```py ````, bare ```` ``` ````, ``~~~``), the
   last one that defines a subclass of ``Environment`` (found with :mod:`ast`, or a regex when the
   block does not parse); other blocks (usage snippets, shell commands) are ignored;
3. with no fence at all, the text from the first line that starts a Python statement, without
   trailing prose that stops it from parsing;
4. an answer that ended inside a block (finish reason ``stop``) counts the rest of the text as the
   block. Cut at the token limit (``length``), only a complete closed block before the cut counts:
   anything else is reported as ``truncated``, since a module cut in the middle is not worth
   checking.
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from resyn import _ast

__all__ = ["Extraction", "Problem", "extract_module"]

Problem = Literal["truncated", "no_code", "no_environment", "refusal"]

#: Finish reasons that mean the provider stopped the answer for policy reasons.
REFUSAL_REASONS = frozenset({"refusal", "content_filter"})
#: Info strings of a fenced block that mark it as Python (first word, lowercased).
PYTHON_INFO = frozenset({"", "python", "py", "python3", "py3"})
#: How many later closing fences are tried when a block's first closing fence leaves it unparsable
#: (a bare ``` inside a string of the module closed the block too early).
MAX_CLOSE_CANDIDATES = 20
#: How many times trailing prose is cut off an unfenced module that does not parse (each cut goes to
#: the line where parsing failed, so one cut per paragraph of prose that is not separated by code).
MAX_TRIM_ATTEMPTS = 20

_OPEN_FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*")
_BARE_FENCE = re.compile(r"[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*")
_THINK_TAG = re.compile(r"<(/?)(?:think|thinking)>", re.IGNORECASE)
_THINK_AT_START = re.compile(r"[ \t]*<(?:think|thinking)>", re.IGNORECASE)
_PYTHON_START = re.compile(r"(?:from |import |class |def |@|#|\"\"\"|''')")
_ENV_CLASS = re.compile(r"^class[ \t]+\w+[ \t]*\([^)\n]*\bEnvironment\b", re.MULTILINE)
_PYTHON_LINE = re.compile(r"^(?:from|import|class|def)[ \t]", re.MULTILINE)

_FORMAT = (
    "Reply with exactly one ```python fenced code block containing the complete module, and nothing "
    "after its closing fence."
)
_FEEDBACK_TRUNCATED = (
    "Your previous reply was cut off at the output token limit before the module was complete, so "
    "nothing could be checked. Write a shorter complete module: fewer helper functions, short "
    "comments, no explanation outside the code block. " + _FORMAT
)
_FEEDBACK_TRUNCATED_THINKING = (
    "Your previous reply was cut off at the output token limit while you were still reasoning, "
    "before any module was written. Reason more briefly and leave room for the module. " + _FORMAT
)
_FEEDBACK_REFUSAL = (
    "Your previous reply was stopped as a refusal or by a content filter (finish reason: {reason}). "
    "The task is a harmless programming task: a Python module that generates puzzle instances and "
    "checks answers. " + _FORMAT
)
_FEEDBACK_EMPTY = "Your previous reply was empty. " + _FORMAT
_FEEDBACK_THINKING_ONLY = (
    "Your previous reply ended inside its reasoning (a <think> block that was never closed), so it "
    "contained no module. " + _FORMAT
)
_FEEDBACK_NO_CODE = "Your previous reply contained no Python code. " + _FORMAT
_FEEDBACK_NO_ENVIRONMENT = (
    "The code in your previous reply ({where}) defines no subclass of resyn.Environment. The module "
    "must define exactly one class that subclasses Environment, imported with "
    "`from resyn import Environment`, with the attributes name and max_difficulty and the methods "
    "generate, question and verify (solution is optional). " + _FORMAT
)


class Extraction(BaseModel):
    """The module found in a reply, or why there is none.

    Exactly one of ``code`` and ``problem`` is None: a module, or the reason there is none (code
    without an Environment subclass is not a module the checks could judge).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    code: str | None
    """The module's source, ending with exactly one newline."""

    problem: Problem | None
    """``truncated`` (cut at the token limit), ``no_code``, ``no_environment``, ``refusal``."""

    feedback: str | None
    """What was wrong with the form of the reply, for the ``revise`` prompt; None on success."""

    blocks: int
    """Fenced code blocks seen outside the reasoning (an unclosed one included)."""

    @property
    def ok(self) -> bool:
        return self.problem is None


def extract_module(text: str, finish_reason: str = "stop") -> Extraction:
    """The environment module in a model's reply ``text`` that ended with ``finish_reason``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    if finish_reason in REFUSAL_REASONS:
        return _failure("refusal", _FEEDBACK_REFUSAL.format(reason=finish_reason), 0)
    visible, thinking_open = _drop_reasoning(text)
    blocks = _fenced_blocks(visible)
    closed = [b for b in blocks if b.closed and _defines_environment(b.content)]
    if finish_reason == "length":
        if closed:
            return _success(closed[-1].content, len(blocks))
        feedback = _FEEDBACK_TRUNCATED_THINKING if thinking_open else _FEEDBACK_TRUNCATED
        return _failure("truncated", feedback, len(blocks))
    # The reply ended on its own: an unclosed last block is complete up to the end of the text.
    candidates = [(b, _trim_trailing_prose(b.content) if not b.closed else b.content) for b in blocks]
    with_environment = [code for _, code in candidates if _defines_environment(code)]
    if with_environment:
        return _success(with_environment[-1], len(blocks))
    # A bare fence may hold anything (an answer format, a shell command): it counts as code only
    # if it looks like Python.
    python = any(
        code.strip() and block.info in PYTHON_INFO and (block.info or _looks_like_python(code))
        for block, code in candidates
    )
    if python:
        where = f"{len(blocks)} code block{'s' if len(blocks) != 1 else ''}"
        return _failure("no_environment", _FEEDBACK_NO_ENVIRONMENT.format(where=where), len(blocks))
    if not blocks:
        bare = _bare_module(visible)
        if bare is not None:
            if _defines_environment(bare):
                return _success(bare, 0)
            if _looks_like_python(bare):
                feedback = _FEEDBACK_NO_ENVIRONMENT.format(where="written without a code fence")
                return _failure("no_environment", feedback, 0)
    if not visible.strip():
        feedback = _FEEDBACK_THINKING_ONLY if thinking_open else _FEEDBACK_EMPTY
        return _failure("no_code", feedback, len(blocks))
    return _failure("no_code", _FEEDBACK_NO_CODE, len(blocks))


def _success(code: str, blocks: int) -> Extraction:
    return Extraction(code=_finish(code), problem=None, feedback=None, blocks=blocks)


def _failure(problem: Problem, feedback: str, blocks: int) -> Extraction:
    return Extraction(code=None, problem=problem, feedback=feedback, blocks=blocks)


def _finish(code: str) -> str:
    """No leading blank lines, no trailing whitespace, exactly one final newline; tabs untouched."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", code).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------------
# Reasoning
# ---------------------------------------------------------------------------------------------------


def _drop_reasoning(text: str) -> tuple[str, bool]:
    """The text without reasoning blocks, and whether it ended inside one.

    A reasoning block opens with ``<think>`` at the start of a line outside any fenced block (so a
    module whose strings mention the tag is left alone) and ends at the matching ``</think>``;
    fences inside it are part of the reasoning. A ``</think>`` before any opening tag ends a block
    the chat template opened in the prompt: everything before it is reasoning.
    """
    first = _THINK_TAG.search(text)
    if first is None:
        return text, False
    if first.group(1):
        text = text[first.end() :]
    kept: list[str] = []
    fence: tuple[str, int] | None = None
    depth = 0
    lines = text.split("\n")
    lines.reverse()  # a stack: the rest of a line after </think> is pushed back and read again
    while lines:
        line = lines.pop()
        if depth == 0:
            if fence is not None:
                if _closes(line, fence):
                    fence = None
                kept.append(line)
                continue
            opened = _OPEN_FENCE.fullmatch(line)
            if opened:
                fence = (opened["fence"][0], len(opened["fence"]))
                kept.append(line)
                continue
            if not _THINK_AT_START.match(line):
                kept.append(line)
                continue
        for tag in _THINK_TAG.finditer(line):
            depth = depth - 1 if tag.group(1) else depth + 1
            if depth <= 0:
                depth = 0
                rest = line[tag.end() :]
                if rest.strip():
                    lines.append(rest)
                break
    return "\n".join(kept), depth > 0


# ---------------------------------------------------------------------------------------------------
# Fenced blocks
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    content: str
    closed: bool
    info: str  # the first word of the info string, lowercased ("" for a bare fence)


def _closes(line: str, fence: tuple[str, int]) -> bool:
    bare = _BARE_FENCE.fullmatch(line)
    return bare is not None and bare["fence"][0] == fence[0] and len(bare["fence"]) >= fence[1]


def _fenced_blocks(text: str) -> list[_Block]:
    lines = text.split("\n")
    bare = [j for j, line in enumerate(lines) if _BARE_FENCE.fullmatch(line)]
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opened = _OPEN_FENCE.fullmatch(lines[i])
        if opened is None:
            i += 1
            continue
        fence = (opened["fence"][0], len(opened["fence"]))
        indent = len(opened["indent"])
        words = opened["info"].split()
        info = words[0].lower() if words else ""
        closes = []
        for j in bare[bisect.bisect_right(bare, i) :]:
            if _closes(lines[j], fence):
                closes.append(j)
                if len(closes) == MAX_CLOSE_CANDIDATES:
                    break
        if not closes:
            blocks.append(_Block(_dedent(lines[i + 1 :], indent), closed=False, info=info))
            break
        end = closes[0]
        if _parse(_dedent(lines[i + 1 : end], indent)) is None:
            # A bare fence inside one of the module's strings (a question showing an answer
            # format) closes the block early; a later closing fence that makes the block a whole
            # module is the real end.
            for later in closes[1:]:
                content = _dedent(lines[i + 1 : later], indent)
                if _parse(content) is not None and _defines_environment(content):
                    end = later
                    break
        blocks.append(_Block(_dedent(lines[i + 1 : end], indent), closed=True, info=info))
        i = end + 1
    return blocks


def _dedent(lines: list[str], indent: int) -> str:
    """Remove the fence's own indentation (a block inside a markdown list item) from each line."""
    if indent == 0:
        return "\n".join(lines)
    out = []
    for line in lines:
        strip = 0
        while strip < indent and strip < len(line) and line[strip] in " \t":
            strip += 1
        out.append(line[strip:])
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------
# Python
# ---------------------------------------------------------------------------------------------------


def _parse(code: str) -> ast.Module | None:
    tree = _parse_or_error_line(code)
    return tree if isinstance(tree, ast.Module) else None


@lru_cache(maxsize=64)
def _parse_or_error_line(code: str) -> ast.Module | int:
    """The module's AST, or the (1-based) line where parsing failed (0 if unknown)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "\d" in a string: not our business
            return _ast.parse(code)
    except SyntaxError as exc:
        return exc.lineno or 0
    except (ValueError, RecursionError, MemoryError):
        return 0


def _is_environment_base(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Environment") or (
        isinstance(node, ast.Attribute) and node.attr == "Environment"
    )


def _defines_environment(code: str) -> bool:
    """A top-level class with ``Environment`` among its bases (by regex when the code does not parse,
    so that a module with a syntax error is still recognised and its error reported by the checks)."""
    tree = _parse(code)
    if tree is None:
        return _ENV_CLASS.search(code) is not None
    return any(
        isinstance(node, ast.ClassDef) and any(_is_environment_base(b) for b in node.bases)
        for node in tree.body
    )


def _looks_like_python(code: str) -> bool:
    tree = _parse(code)
    if tree is None:
        return _PYTHON_LINE.search(code) is not None
    return any(
        isinstance(node, ast.Import | ast.ImportFrom | ast.ClassDef | ast.FunctionDef) for node in tree.body
    )


def _bare_module(text: str) -> str | None:
    """The code of a reply without fences: from the first line that starts a Python statement."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if _PYTHON_START.match(line)), None)
    if start is None:
        return None
    return _trim_trailing_prose("\n".join(lines[start:]))


def _trim_trailing_prose(code: str) -> str:
    """``code`` without the trailing lines that keep it from parsing (an explanation after the
    module), if dropping them leaves a module with an Environment subclass; else ``code``.

    The parser's error line says where the prose starts: the code is cut before the last line at
    column 0 (prose is not indented) up to that line, and parsed again.
    """
    lines = code.rstrip().split("\n")
    end = len(lines)
    for _ in range(MAX_TRIM_ATTEMPTS):
        prefix = "\n".join(lines[:end])
        tree = _parse_or_error_line(prefix)
        if isinstance(tree, ast.Module):
            return prefix if end < len(lines) and _defines_environment(prefix) else code
        error = min(max(tree, 1), end) - 1  # 0-based index of the line the parser stopped at
        cut = next((i for i in range(error, 0, -1) if lines[i][:1] not in ("", " ", "\t")), 0)
        if cut == 0:
            return code
        end = cut
    return code
