"""``anthropic/<model>``: the Messages API through the official ``anthropic`` SDK.

``base_url`` overrides ``ANTHROPIC_BASE_URL``, which overrides the official endpoint;
``ANTHROPIC_API_KEY`` is required for the official endpoint (a compatible proxy on another URL gets
a dummy key). The key is always passed explicitly, so the SDK never goes looking for profiles on
disk. Structured output is a single tool whose ``input_schema`` is the schema, forced with
``tool_choice``; its input is the answer. ``temperature`` travels in the request body (the SDK no
longer lists it) and only when the request sets one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
from anthropic import AsyncAnthropic
from anthropic.types import Message

from resyn.llm.base import Completion
from resyn.llm.errors import ProviderError
from resyn.llm.models import FinishReason, LLMRequest
from resyn.llm.retry import TransientFault
from resyn.llm.sdk_model import SDKModel
from resyn.llm.structured import one_line

OFFICIAL_URL = "https://api.anthropic.com"

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_use",
    "refusal": "refusal",
}

_STATUS_FIX = {
    400: "the request was rejected: check the model's parameters (max_tokens, temperature, schema)",
    401: "the key was refused: check ANTHROPIC_API_KEY",
    403: "the key may not use this model: check its permissions",
    404: "not found: check the model name and the base URL",
    413: "the prompt is too large: shorten it",
}


class AnthropicModel(SDKModel[AsyncAnthropic]):
    status_fixes = _STATUS_FIX
    provider = "anthropic"
    key_variable = "ANTHROPIC_API_KEY"
    url_variable = "ANTHROPIC_BASE_URL"
    official_url = OFFICIAL_URL
    missing_key_hint = "use --base-url for a compatible local server"

    def _build_client(self, key: str, endpoint: str) -> AsyncAnthropic:
        return AsyncAnthropic(api_key=key, base_url=endpoint, max_retries=0, timeout=self.settings.timeout_s)

    def request_body(self, request: LLMRequest) -> dict[str, Any]:
        """The JSON body of ``POST /v1/messages`` for ``request``: what a call sends, and the
        ``params`` of the request in a Message Batch (``resyn.llm.batch``)."""
        body: dict[str, Any] = {
            "model": self.name,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.conversation],
        }
        if request.system is not None:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.output_schema is not None:
            name = request.schema_name
            body["tools"] = [
                {
                    "name": name,
                    "description": "Give your answer by calling this tool; its input is the answer.",
                    "input_schema": request.output_schema,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": name}
        return body

    def create_arguments(self, request: LLMRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` that send ``request_body(request)``: the SDK
        no longer lists ``temperature``, so it travels in ``extra_body``, which the SDK merges into
        the body."""
        arguments = self.request_body(request)
        if "temperature" in arguments:
            arguments["extra_body"] = {"temperature": arguments.pop("temperature")}
        return arguments

    async def _attempt(self, request: LLMRequest) -> Completion:
        self._prepare()
        with self.translate_faults():
            response: Message = await self.client.messages.create(**self.create_arguments(request))
        return self.parse_response(request, response)

    @contextmanager
    def translate_faults(self) -> Iterator[None]:
        """Turn the SDK's exceptions into a ``TransientFault`` (worth retrying) or a ``ProviderError``
        (not): one classification for a message call and for the Message Batches requests."""
        try:
            yield
        except anthropic.APITimeoutError as error:
            raise TransientFault(f"no answer within {self.settings.timeout_s:g} s") from error
        except anthropic.APIConnectionError as error:
            cause = error.__cause__ or error
            raise TransientFault(f"connection failed ({one_line(str(cause), 120)})") from error
        except anthropic.APIStatusError as error:
            message = error.api_message or error.message
            raise self.status_fault(error.status_code, message, error.response.headers) from error
        except (anthropic.APIResponseValidationError, json.JSONDecodeError) as error:
            raise ProviderError(
                f"{self.spec}: unreadable response from {self.endpoint} ({one_line(str(error), 120)}): "
                "check that the base URL is an Anthropic-compatible server"
            ) from error

    def parse_response(self, request: LLMRequest, response: Message) -> Completion:
        """The ``Completion`` in a message, for a call and for a batch's ``succeeded`` result alike:
        the forced tool's input is the structured answer."""
        if not isinstance(response, Message):
            raise ProviderError(
                f"{self.spec}: response is not a message from {self.endpoint}: "
                "check that the base URL is an Anthropic-compatible server"
            )
        texts: list[str] = []
        decoded: Any = None
        for block in response.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use" and request.structured and block.name == request.schema_name:
                decoded = block.input
        raw_reason = response.stop_reason
        finish: FinishReason = _FINISH.get(raw_reason, "other") if raw_reason else "other"
        if decoded is not None:
            text = json.dumps(decoded, ensure_ascii=False)
            if finish == "tool_use":
                finish = "stop"  # the forced tool call is the structured answer
        else:
            text = "".join(texts)  # no tool call: for a structured request the text is parsed instead
        usage = response.usage
        tokens_in = (
            usage.input_tokens
            + (usage.cache_creation_input_tokens or 0)
            + (usage.cache_read_input_tokens or 0)
        )
        return Completion(
            text=text,
            finish_reason=finish,
            raw_finish_reason=raw_reason,
            tokens_in=tokens_in,
            tokens_out=usage.output_tokens,
            model=response.model or self.name,
            raw=response.to_dict(mode="json", warnings=False),
            decoded=decoded,
        )
