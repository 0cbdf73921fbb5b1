"""From a ``provider/model`` string to a model object.

``openai/<model>`` (OpenAI or any OpenAI-compatible server), ``anthropic/<model>``, and
``replay/<path>`` (a recorded transcript). Everything after the first ``/`` is the model name or
path, so ``openai/meta-llama/Llama-3.1-8B-Instruct`` and ``replay//abs/run.jsonl`` work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from resyn.errors import ResynError
from resyn.llm.base import Model
from resyn.llm.models import LLMSettings
from resyn.llm.recording import Recorder
from resyn.llm.replay import ReplayModel

if TYPE_CHECKING:
    from resyn.llm.anthropic_provider import AnthropicModel
    from resyn.llm.openai_provider import OpenAIModel

PROVIDERS = ("openai", "anthropic", "replay")
_USAGE = "use openai/<model>, anthropic/<model> or replay/<path>"


def parse_model_string(spec: str) -> tuple[str, str]:
    """``"openai/gpt-4o"`` → ``("openai", "gpt-4o")``; ``ResynError`` naming the fix otherwise."""
    provider, slash, name = spec.partition("/")
    if not slash or not provider or not name.strip() or spec != spec.strip() or "\n" in spec:
        raise ResynError(f"malformed model {spec!r}: {_USAGE}")
    if provider not in PROVIDERS:
        raise ResynError(f"unknown provider {provider!r} in {spec!r}: {_USAGE}")
    return provider, name


def get_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    settings: LLMSettings | None = None,
    recorder: Recorder | None = None,
) -> Model:
    """The model behind ``spec``. Needs no key and makes no request: the SDK client is built on the
    first ``generate``. ``base_url`` (``--base-url``) points ``openai/…`` or ``anthropic/…`` at another
    server; ``api_key`` overrides the key variable."""
    provider, name = parse_model_string(spec)
    if provider == "replay":
        if base_url is not None or api_key is not None:
            raise ResynError(f"{spec} answers from a file: drop --base-url and the API key")
        return ReplayModel(name, settings=settings, recorder=recorder)
    # Imported here: each SDK costs ~1 s to import, and a run may use only one (or only replay).
    cls: type[OpenAIModel] | type[AnthropicModel]
    if provider == "openai":
        from resyn.llm.openai_provider import OpenAIModel as cls
    else:
        from resyn.llm.anthropic_provider import AnthropicModel as cls
    return cls(name, base_url=base_url, api_key=api_key, settings=settings, recorder=recorder)
