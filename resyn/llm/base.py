"""What every model has in common: bounded concurrency, transport retries, structured parsing,
cost estimation and a ``CallRecord`` for every call. A provider implements one HTTP attempt."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from resyn.llm.errors import LLMError
from resyn.llm.models import CallRecord, FinishReason, LLMRequest, LLMResponse, LLMSettings
from resyn.llm.pricing import estimate_cost
from resyn.llm.recording import NullRecorder, Recorder
from resyn.llm.retry import call_with_retries
from resyn.llm.structured import parse_structured


@dataclass(frozen=True)
class Completion:
    """What one successful attempt produced, before structured parsing."""

    text: str
    finish_reason: FinishReason
    raw_finish_reason: str | None
    tokens_in: int | None
    tokens_out: int | None
    model: str
    raw: dict[str, Any]
    decoded: Any = None
    """A structured answer the provider already decoded (Anthropic's tool input)."""


class RequestPace:
    """At most ``per_minute`` request starts in any 60-second window (a sliding window)."""

    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._starts: deque[float] = deque()

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            while self._starts and now - self._starts[0] >= self.window_s:
                self._starts.popleft()
            if len(self._starts) < self.per_minute:
                self._starts.append(now)
                return
            await asyncio.sleep(self.window_s - (now - self._starts[0]) + 0.001)


class Model(ABC):
    """A model behind a ``provider/model`` string. ``await model.generate(request)``.

    SDK clients are built on first use (so constructing a model needs no key) and rebuilt when used
    from another event loop; at most ``settings.max_concurrency`` calls are in flight at once."""

    provider: ClassVar[str]

    def __init__(self, name: str, *, settings: LLMSettings | None = None, recorder: Recorder | None = None):
        self.name = name
        self.settings = settings or LLMSettings()
        self.recorder: Recorder = recorder or NullRecorder()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._pace: RequestPace | None = None

    @property
    def spec(self) -> str:
        """The ``provider/model`` string."""
        return f"{self.provider}/{self.name}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._semaphore is None:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
            self._new_loop()
        return self._semaphore

    def _new_loop(self) -> None:
        """Drop state bound to a previous event loop (SDK clients)."""
        return None

    @abstractmethod
    async def _attempt(self, request: LLMRequest) -> Completion:
        """One HTTP request: raise ``TransientFault`` for a fault worth retrying, ``LLMError`` else."""

    def _prepare(self) -> None:
        """Checks before the first request (keys, endpoint): raise ``ResynError`` to fail the call."""
        return None

    def check_ready(self) -> None:
        """Raise the one-line ``ResynError`` now if no call could even be attempted (a missing key,
        an unreadable transcript), so a batch job fails before it starts rather than on every call."""
        self._prepare()

    async def _complete(self, request: LLMRequest) -> tuple[Completion, int]:
        self._prepare()
        return await call_with_retries(lambda: self._paced_attempt(request), self.settings, label=self.spec)

    async def _paced_attempt(self, request: LLMRequest) -> Completion:
        if self.settings.max_requests_per_minute is not None:
            if self._pace is None:
                self._pace = RequestPace(self.settings.max_requests_per_minute)
            await self._pace.wait()
        return await self._attempt(request)

    def _cost(self, completion: Completion) -> float | None:
        return estimate_cost(completion.tokens_in, completion.tokens_out, completion.model, self.name)

    async def aclose(self) -> None:
        """Close the SDK client, if one was built."""
        return None

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request``. Raises ``LLMError`` (``ProviderError``, ``StructuredOutputError``,
        ``ReplayMissError``) or ``ResynError`` (no key); every outcome is recorded first."""
        async with self._slots():
            started_at = datetime.now(UTC)
            start = time.monotonic()
            completion: Completion | None = None
            attempts = 0
            try:
                completion, attempts = await self._complete(request)
                parsed = (
                    parse_structured(request, completion.text, completion.finish_reason, completion.decoded)
                    if request.structured
                    else None
                )
            except (Exception, asyncio.CancelledError) as error:
                if isinstance(error, LLMError):
                    attempts = max(attempts, error.attempts)
                    error.attempts = attempts
                self._record(request, started_at, time.monotonic() - start, completion, attempts, error)
                raise
            latency = time.monotonic() - start
            cost = self._cost(completion)
            self._record(request, started_at, latency, completion, attempts, None, cost)
            return LLMResponse(
                text=completion.text,
                parsed=parsed,
                finish_reason=completion.finish_reason,
                raw_finish_reason=completion.raw_finish_reason,
                tokens_in=completion.tokens_in,
                tokens_out=completion.tokens_out,
                model=completion.model,
                requested_model=self.spec,
                latency_s=latency,
                attempts=attempts,
                prompt_sha256=request.prompt_sha256(),
                cost_usd=cost,
                raw=completion.raw,
            )

    def _record(
        self,
        request: LLMRequest,
        started_at: datetime,
        latency: float,
        completion: Completion | None,
        attempts: int,
        error: BaseException | None,
        cost: float | None = None,
    ) -> None:
        if completion is not None and cost is None:
            cost = self._cost(completion)
        self.recorder.record(
            CallRecord(
                started_at=started_at,
                template=request.template,
                prompt_sha256=request.prompt_sha256(),
                requested_model=self.spec,
                resolved_model=completion.model if completion else None,
                purpose=request.purpose,
                tokens_in=completion.tokens_in if completion else None,
                tokens_out=completion.tokens_out if completion else None,
                latency_s=latency,
                finish_reason=completion.finish_reason if completion else None,
                raw_finish_reason=completion.raw_finish_reason if completion else None,
                cost_usd=cost,
                attempts=attempts,
                text=completion.text if completion else None,
                # A cancelled call (Ctrl-C, a run stopping) has an empty message: name it.
                error=(str(error) or type(error).__name__) if error is not None else None,
                error_type=type(error).__name__ if error is not None else None,
                tags=request.tags,
                request=request.model_dump(mode="json"),
                response=completion.raw if completion else None,
            )
        )
