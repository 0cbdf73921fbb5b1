"""The catalog's one exception type.

Every catalog failure a user can meet (a wrong path, a file held by a running synthesis, a schema
from a newer resyn, bad SQL) is a :class:`CatalogError`: a one-line message that names the fix,
shown by the CLI as ``error: …`` with exit status 2, like every other :class:`ResynError`.
"""

from __future__ import annotations

from resyn.errors import ResynError


class CatalogError(ResynError):
    """A catalog problem the user can fix; the message is one line and says how."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: DuckDB appends caret diagrams and hints below it.

    A ``Did you mean …`` hint is kept, since it is the useful part of a misspelled table name.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    hints = [line for line in lines[1:] if line.startswith(("Did you mean", "Candidate bindings"))]
    return " ".join([lines[0], *hints])
