"""What the trainer formats have in common: the DuckDB types of a chat column, option parsing with
clear errors, and the names an export is published under."""

from __future__ import annotations

import re
from typing import Any

from resyn.export.errors import ExportError
from resyn.export.formats import ExportContext
from resyn.export.model import ExportRow

__all__ = ["CHAT", "choice", "export_name", "prompt_value"]

CHAT = "STRUCT(role VARCHAR, content VARCHAR)[]"
"""A chat list: what TRL, verl and datasets read as ``[{"role": ..., "content": ...}]``."""


def choice(ctx: ExportContext, key: str, allowed: tuple[str, ...]) -> str:
    """The value of option ``key`` (the first of ``allowed`` when absent); ``ExportError`` naming
    the allowed values for anything else."""
    value = ctx.options.get(key, allowed[0])
    if value not in allowed:
        raise ExportError(f"--option {key}={value!r}: expected one of {', '.join(allowed)}")
    return str(value)


_NOT_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def export_name(ctx: ExportContext, default_multi: str = "resyn_export") -> str:
    """The name an export is published under (a Python identifier): option ``name`` if given,
    ``resyn_<env name>`` for a one-environment export, else ``default_multi``."""
    given: Any = ctx.options.get("name")
    if given is None:
        names = sorted({env.name for env in ctx.environments})
        given = f"resyn_{names[0]}" if len(names) == 1 else default_multi
    name = _NOT_IDENT.sub("_", str(given)).strip("_").lower()
    if not name or name[0].isdigit():
        raise ExportError(f"--option name={given!r}: need a name that starts with a letter")
    return name


def prompt_value(row: ExportRow, system_prompt: str, prompt: str) -> list[dict[str, str]] | str:
    """The prompt column of a row: the chat list (``conversational``) or one string."""
    return row.messages(system_prompt) if prompt == "conversational" else row.prompt_text(system_prompt)
