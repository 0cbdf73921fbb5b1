"""The LLM provider layer: ``provider/model`` strings to async models that answer ``LLMRequest``s.

```python
from resyn.llm import LLMRequest, MemoryRecorder, get_model

recorder = MemoryRecorder()
model = get_model("openai/gpt-4o-mini", recorder=recorder)     # or anthropic/…, replay/<path>
response = await model.generate(LLMRequest.build("2+2?", system="Be brief.", template="demo", max_tokens=50))
verdict = (await judge.generate(LLMRequest.build(..., output=Verdict, purpose="judge"))).output(Verdict)
```

Half-price batch jobs: ``with_batching(model, BatchSettings(...))`` sends an ``openai/…`` or
``anthropic/…`` model's calls through the provider's batch API, callers unchanged.

Modules: ``models`` (request, response, settings, call record), ``registry`` (model strings),
``openai_provider``/``anthropic_provider``/``replay`` (the models), ``batch`` (batch APIs), ``base``
(concurrency, retries, recording), ``retry`` (what is retried), ``structured`` (parsing), ``pricing``
(cost table), ``recording`` (recorders), ``guard`` (how tests stay offline), ``errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from resyn.llm.base import Model
from resyn.llm.batch import BatchedModel, BatchSettings, with_batching
from resyn.llm.errors import LLMError, ProviderError, ReplayMissError, StructuredOutputError
from resyn.llm.models import CallRecord, FinishReason, LLMRequest, LLMResponse, LLMSettings, Message
from resyn.llm.pricing import Price, estimate_cost, register_price
from resyn.llm.recording import JsonlRecorder, MemoryRecorder, NullRecorder, Recorder, TeeRecorder
from resyn.llm.registry import get_model, parse_model_string
from resyn.llm.replay import ReplayModel, TranscriptEntry, write_transcript

if TYPE_CHECKING:
    from resyn.llm.anthropic_provider import AnthropicModel
    from resyn.llm.openai_provider import OpenAIModel

#: The provider SDKs take ~2 s to import; commands that never call a model should not pay for it.
_LAZY = {"AnthropicModel": "resyn.llm.anthropic_provider", "OpenAIModel": "resyn.llm.openai_provider"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'resyn.llm' has no attribute {name!r}")


__all__ = [
    "AnthropicModel",
    "BatchSettings",
    "BatchedModel",
    "CallRecord",
    "FinishReason",
    "JsonlRecorder",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "LLMSettings",
    "MemoryRecorder",
    "Message",
    "Model",
    "NullRecorder",
    "OpenAIModel",
    "Price",
    "ProviderError",
    "Recorder",
    "ReplayMissError",
    "ReplayModel",
    "StructuredOutputError",
    "TeeRecorder",
    "TranscriptEntry",
    "estimate_cost",
    "get_model",
    "parse_model_string",
    "register_price",
    "with_batching",
    "write_transcript",
]
