"""The validated objects at the boundary of the LLM layer: what a caller asks (``LLMRequest``), what
it gets back (``LLMResponse``), how calls are made (``LLMSettings``) and what is recorded about
every call (``CallRecord``)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T", bound=BaseModel)

Role = Literal["system", "user", "assistant"]

FinishReason = Literal["stop", "length", "tool_use", "content_filter", "refusal", "other"]
"""Why generation ended, the same words for every provider: ``stop`` a natural end (for a
structured request: the schema was answered), ``length`` the token limit (``max_tokens``, the
context window), ``tool_use`` a tool call that was not the structured answer, ``content_filter``,
``refusal``, ``other`` anything else (the provider's word is kept in ``raw_finish_reason``)."""

_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    role: Role
    """``system`` (only as the first message), ``user`` or ``assistant``."""

    content: str
    """The rendered text of the turn."""


class LLMRequest(BaseModel):
    """One model call, independent of the provider: the rendered messages, the sampling parameters
    and, for structured output, the schema the answer must follow."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    messages: tuple[Message, ...] = Field(min_length=1)
    """The conversation: an optional system message first, ending with a user message."""

    template: str = Field(min_length=1)
    """Name of the prompt template the messages were rendered from (for records and errors)."""

    max_tokens: int = Field(ge=1)
    """Upper bound on generated tokens; an answer cut here has finish reason ``length``."""

    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature; ``None`` leaves the provider's default (some models accept no other)."""

    output_model: type[BaseModel] | None = Field(None, exclude=True)
    """Pydantic model the answer must validate against; fills ``output_schema`` and
    ``output_name``, and ``LLMResponse.parsed`` is an instance of it. Not serialized."""

    output_schema: dict[str, Any] | None = None
    """JSON schema (an object schema) of a structured answer; ``LLMResponse.parsed`` is then the
    decoded JSON object. Derived from ``output_model`` when that is given."""

    output_name: str | None = None
    """Name of the structured answer (OpenAI's json_schema name, Anthropic's tool name)."""

    purpose: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")
    """What the call is for in the loop, e.g. ``writer``, ``judge`` or ``solver``; recorded."""

    tags: dict[str, str] = Field(default_factory=dict)
    """Free labels copied into the call record (run id, environment name); not part of the hash."""

    @model_validator(mode="before")
    @classmethod
    def _derive_schema(cls, data: Any) -> Any:
        if isinstance(data, dict):
            output_model = data.get("output_model")
            if isinstance(output_model, type) and issubclass(output_model, BaseModel):
                data = dict(data)
                if data.get("output_schema") is None:
                    data["output_schema"] = output_model.model_json_schema()
                if data.get("output_name") is None:
                    data["output_name"] = output_model.__name__
        return data

    @model_validator(mode="after")
    def _check(self) -> LLMRequest:
        if any(m.role == "system" for m in self.messages[1:]):
            raise ValueError("a system message may only come first")
        if self.messages[-1].role != "user":
            raise ValueError("the last message must be a user message")
        if self.output_schema is not None and self.output_schema.get("type", "object") != "object":
            raise ValueError("output_schema must describe a JSON object")
        if self.output_name is not None and not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", self.output_name):
            raise ValueError("output_name must be 1-64 of a-z, A-Z, 0-9, _ and -")
        return self

    @classmethod
    def build(
        cls,
        user: str,
        *,
        template: str,
        max_tokens: int,
        system: str | None = None,
        temperature: float | None = None,
        output: type[BaseModel] | dict[str, Any] | None = None,
        purpose: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> LLMRequest:
        """A system + user request; ``output`` is a pydantic model class or a JSON object schema."""
        messages = ([Message(role="system", content=system)] if system is not None else []) + [
            Message(role="user", content=user)
        ]
        fields: dict[str, Any] = {}
        if isinstance(output, dict):
            fields = {"output_schema": output, "output_name": "output"}
        elif output is not None:
            fields = {"output_model": output}
        return cls(
            messages=tuple(messages),
            template=template,
            max_tokens=max_tokens,
            temperature=temperature,
            purpose=purpose,
            tags=tags or {},
            **fields,
        )

    @property
    def system(self) -> str | None:
        return self.messages[0].content if self.messages[0].role == "system" else None

    @property
    def conversation(self) -> tuple[Message, ...]:
        """The messages after the system message."""
        return self.messages[1:] if self.system is not None else self.messages

    @property
    def structured(self) -> bool:
        return self.output_schema is not None

    @property
    def schema_name(self) -> str:
        return _NAME.sub("_", self.output_name or "output")[:64] or "output"

    def hashed_content(self) -> dict[str, Any]:
        """What ``prompt_sha256`` covers: the rendered messages and every parameter that changes the
        answer. The template name, purpose and tags are labels and are left out."""
        return {
            "messages": [m.model_dump(mode="json") for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "output_schema": self.output_schema,
            "output_name": self.output_name if self.structured else None,
        }

    def prompt_sha256(self) -> str:
        """sha256 of the canonical JSON of ``hashed_content()``: the key of replay transcripts."""
        return hashlib.sha256(canonical_json(self.hashed_content()).encode()).hexdigest()


class LLMResponse(BaseModel):
    """A model's answer with everything known about how it was produced."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    text: str
    """The answer's text; for a structured answer the JSON text of the object."""

    parsed: Any = None
    """For a structured request: an ``output_model`` instance, or the decoded JSON object."""

    finish_reason: FinishReason
    """Why generation ended, normalised across providers."""

    raw_finish_reason: str | None
    """The provider's own word (OpenAI ``finish_reason``, Anthropic ``stop_reason``)."""

    tokens_in: int | None
    """Prompt tokens billed (Anthropic: including cache reads and writes); ``None`` if not reported."""

    tokens_out: int | None
    """Generated tokens billed; ``None`` if not reported."""

    model: str
    """The model that answered, as the response names it (e.g. with a date suffix)."""

    requested_model: str
    """The ``provider/model`` string the call was made with."""

    latency_s: float
    """Wall time of the call, retries and back-off included."""

    attempts: int
    """HTTP requests made (1 unless transport faults were retried; 0 for replay)."""

    prompt_sha256: str
    """``LLMRequest.prompt_sha256()`` of the request."""

    cost_usd: float | None
    """Estimated cost from the price table; ``None`` for a model without a price."""

    raw: dict[str, Any]
    """The provider's response body as JSON."""

    def output(self, model: type[T]) -> T:
        """The structured answer as ``model``; ``TypeError`` if the request asked for another."""
        if not isinstance(self.parsed, model):
            raise TypeError(f"response holds {type(self.parsed).__name__}, not {model.__name__}")
        return self.parsed


class LLMSettings(BaseModel):
    """How calls to one model are made: concurrency, deadline and the transport retry budget."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_concurrency: int = Field(8, ge=1)
    """Calls to this model in flight at once (an ``asyncio.Semaphore``); the rest wait."""

    timeout_s: float = Field(300.0, gt=0)
    """Deadline of one HTTP request (connect, each read, write); a timeout is retried."""

    max_attempts: int = Field(6, ge=1)
    """HTTP requests per call at most, the first included; transport faults only are retried."""

    max_retry_time_s: float = Field(600.0, gt=0)
    """No retry starts after this much time since the first request of the call."""

    backoff_initial_s: float = Field(1.0, ge=0)
    """First back-off after a fault without ``Retry-After``; doubles each time, with jitter."""

    backoff_max_s: float = Field(30.0, ge=0)
    """Largest back-off without ``Retry-After``."""

    max_retry_after_s: float = Field(120.0, ge=0)
    """A server's ``Retry-After`` / ``retry-after-ms`` is honoured up to this many seconds."""

    max_requests_per_minute: int | None = Field(None, ge=1)
    """Requests started in any 60 s window at most (the provider's RPM limit), retries included;
    ``None``: no cap. Staying under it avoids 429 storms instead of backing off from them."""


class CallRecord(BaseModel):
    """Everything about one model call, successful or not, as handed to a ``Recorder``. A JSONL file
    of these is also a replay transcript (see ``resyn.llm.replay``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    started_at: datetime
    """When the call started (UTC)."""

    template: str
    """The request's template name."""

    prompt_sha256: str
    """sha256 of the rendered prompt and parameters (``LLMRequest.prompt_sha256()``)."""

    requested_model: str
    """The ``provider/model`` string the call was made with."""

    resolved_model: str | None = None
    """The model the response names; ``None`` when there was no response."""

    purpose: str | None = None
    """The request's purpose label (writer, judge, solver, …)."""

    tokens_in: int | None = None
    tokens_out: int | None = None

    latency_s: float
    """Wall time including retries and back-off."""

    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None

    cost_usd: float | None = None
    """Estimated from the price table; ``None`` for an unknown model or when nothing was billed."""

    attempts: int
    """HTTP requests made."""

    text: str | None = None
    """The answer's text, when there was an answer (also when it failed to parse)."""

    error: str | None = None
    """The error message of a failed call; ``None`` on success."""

    error_type: str | None = None
    """The error's class name (``ProviderError``, ``StructuredOutputError``, …)."""

    tags: dict[str, str] = Field(default_factory=dict)
    """The request's tags."""

    request: dict[str, Any]
    """The full request (``LLMRequest`` as JSON)."""

    response: dict[str, Any] | None = None
    """The provider's raw response body as JSON, when there was one."""
