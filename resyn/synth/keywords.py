"""Seed keywords from the command line and keyword files, validated before any work starts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from resyn.errors import ResynError

MAX_KEYWORD_CHARS = 200


def normalize_keyword(keyword: str) -> str:
    """The form used to detect duplicates: lower case, single spaces."""
    return " ".join(keyword.lower().split())


def read_keyword_file(path: Path) -> list[tuple[str, str]]:
    """``(keyword, where)`` pairs from a file: one keyword per line; blank lines and ``#`` comments
    are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResynError(
            f"keyword file {path} does not exist: give a text file with one keyword per line"
        ) from None
    except IsADirectoryError:
        raise ResynError(
            f"keyword file {path} is a directory: give a text file with one keyword per line"
        ) from None
    except UnicodeDecodeError:
        raise ResynError(f"keyword file {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise ResynError(
            f"keyword file {path} cannot be read ({exc.strerror}): check its permissions"
        ) from None
    pairs = [
        (line.strip(), f"{path}:{number}")
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not pairs:
        raise ResynError(f"keyword file {path} has no keywords: put one keyword per line")
    return pairs


def collect_keywords(arguments: Iterable[str], files: Iterable[Path]) -> list[str]:
    """Keywords from arguments then files, in order. Blank, over-long, multi-line and duplicate
    keywords are errors naming where they came from: a batch job should not silently run fewer or
    other tasks than its input says."""
    pairs = [(keyword, f"argument {index}") for index, keyword in enumerate(arguments, 1)]
    for path in files:
        pairs.extend(read_keyword_file(path))
    seen: dict[str, str] = {}
    keywords: list[str] = []
    for keyword, where in pairs:
        if not keyword.strip():
            raise ResynError(f"{where}: blank keyword; remove it or write a task idea")
        if any(ch in keyword for ch in "\r\n\x00"):
            raise ResynError(f"{where}: a keyword must be one line")
        if len(keyword) > MAX_KEYWORD_CHARS:
            raise ResynError(f"{where}: keyword longer than {MAX_KEYWORD_CHARS} characters; shorten it")
        key = normalize_keyword(keyword)
        if key in seen:
            raise ResynError(f"{where}: duplicate keyword {keyword.strip()!r} (also {seen[key]}); remove one")
        seen[key] = where
        keywords.append(keyword.strip())
    return keywords
