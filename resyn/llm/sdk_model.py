"""What the OpenAI and Anthropic models share: where calls go, which key they use, and a lazily
built SDK client (constructing a model never needs a key; the first call does)."""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from resyn.errors import ResynError
from resyn.llm.base import Model
from resyn.llm.errors import ProviderError
from resyn.llm.guard import check_endpoint
from resyn.llm.models import LLMSettings
from resyn.llm.recording import Recorder
from resyn.llm.retry import TransientFault, retry_after_seconds
from resyn.llm.structured import one_line

#: Sent to non-official (local, OpenAI/Anthropic-compatible) endpoints that need no real key.
LOCAL_DUMMY_KEY = "resyn-local"

ClientT = TypeVar("ClientT")


class SDKModel(Model, Generic[ClientT]):
    """A model served through an official SDK client. Subclasses name their environment
    variables and official URL, and build the client."""

    key_variable: ClassVar[str]
    url_variable: ClassVar[str]
    official_url: ClassVar[str]
    missing_key_hint: ClassVar[str] = "use --base-url for a local server"
    status_fixes: ClassVar[dict[int, str]] = {}
    """HTTP status → the fix to name in the error (bad key, unknown model, …)."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: LLMSettings | None = None,
        recorder: Recorder | None = None,
    ):
        super().__init__(name, settings=settings, recorder=recorder)
        self.base_url = base_url
        self.api_key = api_key
        self._client: ClientT | None = None

    @property
    def endpoint(self) -> str:
        """The base URL calls go to: the argument, else the URL variable, else the official one."""
        return self.base_url or os.environ.get(self.url_variable) or self.official_url

    def is_official(self) -> bool:
        return self.endpoint.rstrip("/").startswith(self.official_url)

    def _new_loop(self) -> None:
        self._client = None

    def _prepare(self) -> None:
        if self._client is not None:
            return
        key = self.api_key or os.environ.get(self.key_variable)
        if not key:
            if self.is_official():
                raise ResynError(f"{self.key_variable} is not set: export it, or {self.missing_key_hint}")
            key = LOCAL_DUMMY_KEY
        check_endpoint(self.endpoint, self.spec)
        self._client = self._build_client(key, self.endpoint)

    @property
    def client(self) -> ClientT:
        assert self._client is not None, "_prepare() builds the client before any call"
        return self._client

    @abstractmethod
    def _build_client(self, key: str, endpoint: str) -> ClientT: ...

    def status_fault(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> TransientFault | ProviderError:
        """What an HTTP error status means: 429, 408 and 5xx (Anthropic's 529 overloaded too) are
        transient (``Retry-After`` honoured); any other status is a ``ProviderError`` naming the fix.
        Also classifies the error of one line of a batch, whose status is that of its request."""
        if status == 429:
            return TransientFault(
                "HTTP 429 rate limited", status_code=429, retry_after=retry_after_seconds(headers)
            )
        if status >= 500 or status == 408:
            return TransientFault(f"HTTP {status} server error", status_code=status)
        fix = self.status_fixes.get(status, "the provider refused the request")
        return ProviderError(
            f"{self.spec}: HTTP {status} {one_line(message, 200)}: {fix}", status_code=status
        )

    async def aclose(self) -> None:
        if self._client is not None:
            client: Any = self._client
            await client.close()
            self._client = None
