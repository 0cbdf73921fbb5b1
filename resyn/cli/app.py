"""The ``resyn`` click group and what every command shares: consoles, one-line failures, options."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape

from resyn.sandbox import SandboxConfig
from resyn.sources import EnvSource

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

unsafe_option = click.option(
    "--unsafe-no-sandbox",
    is_flag=True,
    envvar="RESYN_UNSAFE_NO_SANDBOX",
    help="Run modules without namespace isolation or seccomp. Only for code you trust.",
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def sandbox_config(unsafe: bool, source: EnvSource | None = None) -> SandboxConfig:
    config = SandboxConfig(unsafe_no_sandbox=unsafe)
    if source is not None and source.trusted_adapter:
        # Importing reasoning-gym in a fresh worker takes 3-12 s (matplotlib rebuilds its font
        # cache in the worker's empty HOME); the 10 s default is for LLM-written modules.
        config = config.model_copy(update={"load_timeout_s": 60.0})
    return config


# Command name -> the module that registers it (with ``@cli.command``). Modules are imported when
# their command runs, not at start-up: most pull in the catalog, the LLM clients or the sandbox,
# and `resyn export` should not pay for `resyn synthesize`'s imports.
_COMMAND_MODULES = {
    "bench": "resyn.cli.check",
    "calibrate": "resyn.cli.calibrate",
    "catalog": "resyn.cli.catalog",
    "check": "resyn.cli.check",
    "demo": "resyn.cli.synthesize",
    "export": "resyn.cli.export",
    "prompts": "resyn.cli.prompts",
    "report": "resyn.cli.report",
    "sample": "resyn.cli.check",
    "serve": "resyn.cli.serve",
    "synthesize": "resyn.cli.synthesize",
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (see ``_COMMAND_MODULES``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMAND_MODULES:
            importlib.import_module(_COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="resyn")
@click.option("-v", "--verbose", is_flag=True, help="Log what the sandbox and checks do.")
def cli(verbose: bool) -> None:
    """resyn: synthesize verifiable RL reasoning environments and check them in a sandbox."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")
