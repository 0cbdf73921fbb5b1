"""``resyn prompts list`` and ``resyn prompts render``: the synthesis loop's prompt templates.

``render`` prints exactly the text a model would receive, so a template edit can be read (and
diffed) before it costs a single call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from resyn.cli.app import cli, console, err_console
from resyn.synth import prompts as templates

#: ``max_tokens`` of the request whose sha256 ``render --json`` reports: the loop's default for
#: writing a module, so that the hash of a write or revise prompt matches the loop's request.
DEFAULT_MAX_TOKENS = 16_000


def _parse_vars(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs: VALUE as JSON when it parses as JSON (``n=5``, ``samples=[…]``), else as
    text; ``KEY=@path`` reads the value from a file (JSON for ``.json``, else text)."""
    variables: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. --var keyword=sudoku)", ctx, param)
        if key in variables:
            raise click.BadParameter(f"{key!r} is given twice", ctx, param)
        variables[key] = _read_file(value[1:], ctx, param) if value.startswith("@") else _json_or_text(value)
    return variables


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _read_file(name: str, ctx: click.Context, param: click.Parameter) -> Any:
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise click.BadParameter(f"cannot read {name} ({reason})", ctx, param) from None
    if path.suffix.lower() != ".json":
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{name} is not valid JSON ({exc})", ctx, param) from None


@cli.group(name="prompts")
def prompts_group() -> None:
    """The synthesis loop's prompt templates (prompts/, or $RESYN_PROMPTS_DIR)."""


@prompts_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_command(as_json: bool) -> None:
    """List the templates with the variables each needs."""
    infos = templates.list_prompts()
    if as_json:
        click.echo(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
        return
    err_console.print(f"[dim]templates in {escape(str(templates.prompts_dir()))}[/]")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("name")
    table.add_column("variables")
    table.add_column("description", overflow="fold")
    for info in infos:
        table.add_row(info.name, escape(", ".join(info.variables) or "-"), escape(info.description))
    console.print(table)


@prompts_group.command(name="render")
@click.argument("name")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_vars,
    help="A template variable; VALUE is JSON if it parses as JSON, else text; KEY=@FILE reads it "
    "from a file (JSON if .json). Repeatable.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1, None),
    default=DEFAULT_MAX_TOKENS,
    show_default=True,
    help="max_tokens of the request whose sha256 --json reports.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def render_command(name: str, variables: dict[str, Any], max_tokens: int, as_json: bool) -> None:
    """Print the system and user messages of template NAME exactly as they would be sent.

    With --json, also the template's sha256 and the sha256 of the request (the key of replay
    transcripts; for judge and propose the loop's request also carries an output schema, so its
    hash differs).
    """
    rendered = templates.render(name, variables)
    if as_json:
        request = rendered.to_request(max_tokens=max_tokens, purpose=None)
        document = {
            **rendered.model_dump(mode="json"),
            "max_tokens": max_tokens,
            "request_sha256": request.prompt_sha256(),
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    # click.echo, not rich: the text must come out byte for byte (rich would eat "[bold]"-like text).
    err_console.print(f"[dim]prompt {escape(name)}, template sha256 {rendered.template_sha256}[/]")
    click.echo("===== system =====")
    click.echo(rendered.system)
    click.echo("===== user =====")
    click.echo(rendered.user)
