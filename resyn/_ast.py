"""``ast.parse`` behind one lock, for code that parses on several threads.

CPython 3.11 before 3.11.8 can fail ``ast.parse`` with "SystemError: AST constructor recursion depth
mismatch" when two threads parse at once (gh-106905). resyn parses untrusted modules on the check
threads and on the event loop's thread, so every such parse goes through here.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, one thread at a time."""
    with _LOCK:
        return ast.parse(source, filename=filename)
