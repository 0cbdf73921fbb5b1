"""Adapters that expose third-party task libraries as resyn environments.

Each adapter turns a task of another library into the source text of an environment module (see
:mod:`resyn.env`), so that it goes through the same sandbox and check suite as a synthesized one.
Third-party imports stay inside the adapter functions: importing this package never needs an
optional extra.
"""

from __future__ import annotations

__all__ = ["AdapterError"]


class AdapterError(Exception):
    """An adapter cannot be used as asked (extra not installed, unknown task, ...).

    The message is meant for the user as is: it says what went wrong and what to do.
    """
