"""Estimated cost of a call, from a table of list prices in USD per million tokens.

The built-in table covers a handful of current OpenAI and Anthropic models (list prices at the
time of writing; check them against the providers' pages). A model is looked up by the name the
response gives (``gpt-4o-2024-08-06``), then by the requested one; an entry also covers its dated
snapshots (``claude-sonnet-4`` covers ``claude-sonnet-4-20250514``, ``-latest`` too). An unknown
model costs ``None``: an unpriced local model is not an error.

Extending or overriding the table, either way:

- ``RESYN_PRICES=/path/prices.json`` (or ``.toml``) — a file mapping a model name to its input and
  output price per million tokens, read on first use::

      {"my-finetune": {"input": 0.5, "output": 1.5}, "gpt-4o": {"input": 2.0, "output": 8.0}}

  or in TOML::

      [my-finetune]
      input = 0.5
      output = 1.5

- ``resyn.llm.register_price("my-finetune", input_per_mtok=0.5, output_per_mtok=1.5)`` in code.

Registered prices win over the file, which wins over the built-in table.

A call answered through a provider's batch API (``resyn.llm.batch``) costs the table's price times
``batch_discount(provider)``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from resyn.errors import ResynError

PRICES_ENV = "RESYN_PRICES"


class Price(BaseModel):
    """List price of one model in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    input: float = Field(ge=0)
    """USD per million prompt tokens."""

    output: float = Field(ge=0)
    """USD per million generated tokens."""

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input + tokens_out * self.output) / 1_000_000


BUILTIN_PRICES: dict[str, Price] = {
    name: Price(input=i, output=o)
    for name, (i, o) in {
        "gpt-5": (1.25, 10.0),
        "gpt-5-mini": (0.25, 2.0),
        "gpt-5-nano": (0.05, 0.40),
        "gpt-4.1": (2.0, 8.0),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-4o": (2.50, 10.0),
        "gpt-4o-mini": (0.15, 0.60),
        "o3": (2.0, 8.0),
        "o4-mini": (1.10, 4.40),
        "claude-opus-4-1": (15.0, 75.0),
        "claude-opus-4": (15.0, 75.0),
        "claude-sonnet-4-5": (3.0, 15.0),
        "claude-sonnet-4": (3.0, 15.0),
        "claude-haiku-4-5": (1.0, 5.0),
        "claude-3-5-haiku": (0.80, 4.0),
    }.items()
}

#: Price factor of a request answered through a provider's batch API rather than a direct call.
#: OpenAI: "Batch API ... 50% cost discount compared to synchronous APIs"
#: (https://platform.openai.com/docs/guides/batch). Anthropic: "Message Batches API ... reducing
#: costs by 50%", all usage "charged at 50% of the standard API prices"
#: (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing).
BATCH_DISCOUNT: dict[str, float] = {"openai": 0.5, "anthropic": 0.5}

_registered: dict[str, Price] = {}
_file_cache: dict[str, dict[str, Price]] = {}
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def register_price(model: str, *, input_per_mtok: float, output_per_mtok: float) -> None:
    """Price ``model`` (a bare model name, as the provider reports it) for this process."""
    _registered[model] = Price(input=input_per_mtok, output=output_per_mtok)


def _load_file(path: str) -> dict[str, Price]:
    if path in _file_cache:
        return _file_cache[path]
    fix = f'{PRICES_ENV}={path}: make it a JSON or TOML map of model → {{"input": USD/Mtok, "output": USD/Mtok}}'
    try:
        text = Path(path).read_text()
        data: Any = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
    except OSError as error:
        raise ResynError(f"{PRICES_ENV}={path} cannot be read ({error.strerror}): fix or unset it") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ResynError(f"{fix} (parse error: {error})") from None
    if not isinstance(data, dict):
        raise ResynError(fix)
    try:
        prices = {str(name): Price.model_validate(entry) for name, entry in data.items()}
    except ValidationError:
        raise ResynError(fix) from None
    _file_cache[path] = prices
    return prices


def price_table() -> dict[str, Price]:
    """The effective table: built-in, then the ``RESYN_PRICES`` file, then ``register_price``."""
    table = dict(BUILTIN_PRICES)
    path = os.environ.get(PRICES_ENV)
    if path:
        table.update(_load_file(path))
    table.update(_registered)
    return table


def find_price(*models: str | None) -> Price | None:
    """The price of the first of ``models`` (bare names) the table knows, snapshots included."""
    table = price_table()
    for model in models:
        if not model:
            continue
        for name in (model, _SNAPSHOT.sub("", model)):
            if name in table:
                return table[name]
    return None


def estimate_cost(tokens_in: int | None, tokens_out: int | None, *models: str | None) -> float | None:
    """USD for a call, or ``None`` when a token count is missing or no model has a price."""
    if tokens_in is None or tokens_out is None:
        return None
    price = find_price(*models)
    return None if price is None else price.cost(tokens_in, tokens_out)


def batch_discount(provider: str) -> float:
    """What a batched request costs as a fraction of the same direct call (1.0 for a provider without
    a known batch price: better to overestimate a cost than to hide it)."""
    return BATCH_DISCOUNT.get(provider, 1.0)
