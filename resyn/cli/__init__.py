"""The ``resyn`` command: a thin layer that parses arguments, calls the API and prints.

Exit status: 0 success/accepted, 1 rejected, 2 usage or environment error, 3 a synthesis run
stopped at its budget (``--budget-usd``/``--max-calls``; rerun with a larger one), 130 interrupted. Errors are one line
on stderr that names the fix; tracebacks only with ``RESYN_DEBUG=1``. One module per command
group, imported when its command runs (``resyn.cli.app._COMMAND_MODULES``).
"""

from __future__ import annotations

import os
import sys

import click

from resyn.cli.app import cli, fail
from resyn.errors import ResynError
from resyn.sandbox import SandboxUnavailable

__all__ = ["cli", "main"]


def main() -> None:
    """Entry point: turn every expected failure into a one-line message and an exit status."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message())
    except click.exceptions.Abort:
        fail("interrupted", 130)
    except (ResynError, SandboxUnavailable) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("RESYN_DEBUG"):
            raise
        fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with RESYN_DEBUG=1 and report the traceback)"
        )
