"""``openai/<model>``: the Chat Completions API through the official ``openai`` SDK.

Works with OpenAI itself and with any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM
Studio, …): ``base_url`` (``--base-url``) overrides ``OPENAI_BASE_URL``, which overrides the official
endpoint. ``OPENAI_API_KEY`` is required for the official endpoint only; a local server gets a dummy
key. Structured output uses ``response_format={"type": "json_schema", ...}``. Token limits are sent as
``max_completion_tokens`` to the official endpoint and as ``max_tokens`` (which every compatible
server understands) elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from resyn.llm.base import Completion
from resyn.llm.errors import ProviderError
from resyn.llm.models import FinishReason, LLMRequest
from resyn.llm.retry import TransientFault
from resyn.llm.sdk_model import SDKModel
from resyn.llm.structured import one_line

OFFICIAL_URL = "https://api.openai.com/v1"

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}

_STATUS_FIX = {
    400: "the request was rejected: check the model's parameters (max_tokens, temperature, schema)",
    401: "the key was refused: check OPENAI_API_KEY",
    403: "the key may not use this model: check its permissions",
    404: "not found: check the model name and the base URL",
    413: "the prompt is too large: shorten it",
    422: "the request was rejected: check the model's parameters",
}


class OpenAIModel(SDKModel[AsyncOpenAI]):
    status_fixes = _STATUS_FIX
    provider = "openai"
    key_variable = "OPENAI_API_KEY"
    url_variable = "OPENAI_BASE_URL"
    official_url = OFFICIAL_URL

    def _build_client(self, key: str, endpoint: str) -> AsyncOpenAI:
        return AsyncOpenAI(api_key=key, base_url=endpoint, max_retries=0, timeout=self.settings.timeout_s)

    def request_body(self, request: LLMRequest) -> dict[str, Any]:
        """The JSON body of ``POST /chat/completions`` for ``request``: what a call sends, and the
        ``body`` of the request's line in a Batch API input file (``resyn.llm.batch``). The SDK
        sends these keyword arguments of ``chat.completions.create`` as they are."""
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        body["max_completion_tokens" if self.is_official() else "max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.output_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.output_schema},
            }
        return body

    async def _attempt(self, request: LLMRequest) -> Completion:
        self._prepare()
        with self.translate_faults():
            response: ChatCompletion = await self.client.chat.completions.create(**self.request_body(request))
        return self.parse_response(request, response)

    @contextmanager
    def translate_faults(self) -> Iterator[None]:
        """Turn the SDK's exceptions into a ``TransientFault`` (worth retrying) or a ``ProviderError``
        (not): one classification for a chat call and for the Batch API's file and batch requests."""
        try:
            yield
        except openai.APITimeoutError as error:
            raise TransientFault(f"no answer within {self.settings.timeout_s:g} s") from error
        except openai.APIConnectionError as error:
            cause = error.__cause__ or error
            raise TransientFault(f"connection failed ({one_line(str(cause), 120)})") from error
        except openai.APIStatusError as error:
            raise self.status_fault(error.status_code, error.message, error.response.headers) from error
        except (openai.APIResponseValidationError, json.JSONDecodeError) as error:
            raise ProviderError(
                f"{self.spec}: unreadable response from {self.endpoint} ({one_line(str(error), 120)}): "
                "check that the base URL is an OpenAI-compatible server"
            ) from error

    def completion_from_body(self, request: LLMRequest, body: object) -> Completion:
        """A completion from the JSON body of a chat completion (a batch output line's
        ``response.body``), built the way the SDK builds a response, then read by ``parse_response``."""
        if not isinstance(body, dict):
            raise ProviderError(
                f"{self.spec}: a batch result body is not a JSON object: "
                "check that the base URL is an OpenAI-compatible server"
            )
        return self.parse_response(request, ChatCompletion.construct(**body))

    def parse_response(self, request: LLMRequest, response: ChatCompletion) -> Completion:
        """The ``Completion`` in a chat completion, for a call and for a batch result alike."""
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise ProviderError(
                f"{self.spec}: response without choices from {self.endpoint}: "
                "check that the base URL is an OpenAI-compatible server"
            )
        raw = response.to_dict(mode="json", warnings=False)
        choice = response.choices[0]
        raw_reason = choice.finish_reason
        finish: FinishReason = _FINISH.get(raw_reason, "other") if raw_reason else "other"
        text = choice.message.content
        if text is None and choice.message.refusal:
            text, finish = choice.message.refusal, "refusal"
        usage = response.usage
        return Completion(
            text=text or "",
            finish_reason=finish,
            raw_finish_reason=raw_reason,
            tokens_in=usage.prompt_tokens if usage else None,
            tokens_out=usage.completion_tokens if usage else None,
            model=response.model or self.name,
            raw=raw,
        )
