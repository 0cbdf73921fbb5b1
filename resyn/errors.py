"""The one exception type users see: a one-line message that names the fix."""

from __future__ import annotations


class ResynError(Exception):
    """A usage or environment problem (exit status 2). The message is shown as is, one line."""

    exit_code = 2
