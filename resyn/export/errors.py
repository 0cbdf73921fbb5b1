"""The one error type of exports."""

from __future__ import annotations

__all__ = ["ExportError"]


class ExportError(ValueError):
    """An export that cannot be made as asked; the message is one line and names the fix.
    Nothing has been written when it is raised (an existing ``--out`` is left as it was)."""
