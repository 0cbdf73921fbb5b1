"""Turning a structured answer into the requested object, or a ``StructuredOutputError``."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from resyn.llm.errors import StructuredOutputError
from resyn.llm.models import FinishReason, LLMRequest

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and clip, for error messages that must stay one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse_structured(request: LLMRequest, text: str, finish_reason: FinishReason, decoded: Any = None) -> Any:
    """The answer as ``request.output_model`` (or the decoded object for a bare JSON schema).
    ``decoded`` is an object the provider already decoded (Anthropic's tool input); otherwise
    ``text`` is parsed as JSON (a Markdown code fence around it is tolerated)."""
    where = f"structured answer to template '{request.template}'"
    truncated = " (the answer was cut at max_tokens: raise it)" if finish_reason == "length" else ""
    if decoded is None:
        match = _FENCE.match(text)
        try:
            decoded = json.loads(match.group(1) if match else text)
        except json.JSONDecodeError as error:
            raise StructuredOutputError(
                f"{where} is not JSON ({error.msg} at char {error.pos}){truncated}: {one_line(text, 120)!r}",
                raw=text,
            ) from None
    if not isinstance(decoded, dict):
        raise StructuredOutputError(f"{where} is not a JSON object{truncated}", raw=text)
    if request.output_model is not None:
        try:
            return request.output_model.model_validate(decoded)
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in first["loc"]) or "(root)"
            more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
            raise StructuredOutputError(
                f"{where} does not match {request.output_model.__name__}: {location}: "
                f"{one_line(first['msg'], 120)}{more}{truncated}",
                raw=text,
            ) from None
    schema = request.output_schema or {}
    missing = [key for key in schema.get("required", []) if key not in decoded]
    if missing:
        raise StructuredOutputError(f"{where} lacks required keys {missing}{truncated}", raw=text)
    return decoded
