"""Provider batch APIs behind the ordinary ``Model`` interface: the same calls at half the price,
answered within the providers' 24-hour batch window instead of seconds.

A batch job over hundreds of keywords does not need its answers in seconds, and OpenAI's Batch API
and Anthropic's Message Batches charge half the direct price. ``BatchedModel`` wraps an
``OpenAIModel`` or an ``AnthropicModel``; ``await batched.generate(request)`` behaves like any
model's — the caller (the synthesis loop) does not change — but the request travels in a batch:

1. **collect** — the request waits in a queue, which is submitted as one batch once
   ``max_batch_size`` requests wait or ``collect_window_s`` after the first of them arrived, so the
   concurrent write and judge calls of a round go out together;
2. **submit** — each request is one line whose body is the wrapped model's ``request_body(request)``,
   the very body a direct call sends (OpenAI: a JSONL file uploaded with ``purpose="batch"``, then
   ``batches.create``; Anthropic: ``messages.batches.create(requests=[{custom_id, params}])``);
3. **poll** — after ``poll_interval_s``, then at intervals doubling up to ``max_poll_interval_s``,
   for at most ``max_wait_s`` (then the batch is cancelled and its requests fail, transient);
4. **resolve** — each result is read by the wrapped model's own response parser (finish reasons,
   tokens, Anthropic's forced tool), then ``Model.generate`` parses structured output and records
   the call as it records any: one ``CallRecord`` per request through the wrapped model's recorder,
   ``attempts=1``, the latency from enqueueing to the result, the cost at the batch price
   (``pricing.batch_discount``) and the batch id in the tags (``batch_id``).

Failures never leave a caller waiting. A line that errored fails its request with a
``ProviderError`` classified like the same HTTP error of a direct call (4xx: not transient; 429 and
5xx: transient); an expired or cancelled line, or a request without a line, fails transient (retry
it). A batch that fails as a whole (OpenAI ``failed``) fails every request with the provider's
reason; an expired or cancelled OpenAI batch still delivers the results it has. Transport faults
while uploading, creating, polling or downloading are retried like a direct call's
(``resyn.llm.retry``, the wrapped model's ``LLMSettings``). A cancelled caller (Ctrl-C) leaves the
queue if its request was not submitted yet; once every caller of a submitted batch is gone, the
batch is cancelled at the provider (best effort).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from resyn.errors import ResynError
from resyn.llm.base import Completion, Model
from resyn.llm.errors import LLMError, ProviderError
from resyn.llm.models import LLMRequest
from resyn.llm.pricing import batch_discount
from resyn.llm.recording import Recorder
from resyn.llm.retry import TransientFault, call_with_retries
from resyn.llm.structured import one_line

if TYPE_CHECKING:
    from resyn.llm.anthropic_provider import AnthropicModel
    from resyn.llm.openai_provider import OpenAIModel

log = logging.getLogger(__name__)

R = TypeVar("R")

BATCH_TAG = "batch_id"
"""The call record tag naming the provider's batch a request travelled in."""

#: The batch a call of the current task travelled in: set by ``BatchedModel._complete``, read by its
#: ``_record`` (both run in the caller's task, so concurrent calls never see each other's).
_current_batch: contextvars.ContextVar[str | None] = contextvars.ContextVar("resyn_batch_id", default=None)

#: A batched model's own concurrency bound: none. Requests only wait in the queue; the HTTP requests
#: of the batch protocol are bounded by the wrapped model's ``max_concurrency``.
_UNBOUNDED = 1 << 30

#: OpenAI's batch input lines are requests to this endpoint (the chat path of the wrapped model).
OPENAI_BATCH_ENDPOINT: Final = "/v1/chat/completions"

#: The HTTP status an Anthropic error type stands for (https://docs.anthropic.com/en/api/errors), so
#: an ``errored`` batch result is classified like the same error of a direct call.
ANTHROPIC_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class BatchSettings(BaseModel):
    """How requests are gathered into batches and how long a batch is waited for."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    collect_window_s: float = Field(2.0, ge=0)
    """A batch is submitted this long after the first request waiting for it arrived (unless it
    filled up before): long enough for the concurrent calls of a round to join it."""

    max_batch_size: int = Field(1000, ge=1, le=50_000)
    """A batch is submitted as soon as this many requests wait (OpenAI takes 50,000 lines at most)."""

    poll_interval_s: float = Field(10.0, gt=0)
    """The first poll comes this long after submission; the interval then doubles."""

    max_poll_interval_s: float = Field(120.0, gt=0)
    """Largest interval between polls."""

    max_wait_s: float = Field(86_400.0, gt=0)
    """A batch not ended this long after submission is cancelled and its requests fail (transient).
    Both providers promise an answer within 24 h, the default."""

    @model_validator(mode="after")
    def _check(self) -> BatchSettings:
        if self.max_poll_interval_s < self.poll_interval_s:
            raise ValueError("max_poll_interval_s must be at least poll_interval_s")
        return self


@dataclass(eq=False)
class _Waiter:
    """A request waiting for its batch's result."""

    request: LLMRequest
    custom_id: str
    future: asyncio.Future[Completion]
    batch: _Batch | None = None


@dataclass(eq=False)
class _Batch:
    """The requests submitted together, and the task that submits, polls and resolves them."""

    waiters: list[_Waiter]
    id: str | None = None
    """The provider's batch id, once created."""
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class BatchStatus:
    """One poll of a batch, in provider-independent words."""

    ended: bool
    """No more results will come."""
    status: str
    """The provider's word (``in_progress``, ``completed``, ``expired``, ``ended``, …)."""
    failure: str | None = None
    """Why the whole batch failed, when it did (its requests then have no results)."""
    raw: Any = field(default=None, repr=False)
    """The provider's batch object (where its results are)."""


Outcome = Completion | ProviderError


class BatchBackend(ABC):
    """One provider's batch protocol. Every method is a few SDK calls, each one retried like a
    direct call (``call``): the wrapped model's fault classification, retry budget, concurrency
    bound and client."""

    def __init__(self, model: OpenAIModel | AnthropicModel) -> None:
        self.model = model

    async def call(self, what: str, op: Callable[[], Awaitable[R]]) -> R:
        """``op()`` (one SDK call) with the wrapped model's transport retries; ``what`` names it."""
        model = self.model

        async def attempt() -> R:
            async with model._slots():  # also rebuilds the client when the event loop changed
                model._prepare()
                with model.translate_faults():
                    return await op()

        result, _ = await call_with_retries(attempt, model.settings, label=f"{model.spec} {what}")
        return result

    def line_failure(self, batch_id: str, fault: TransientFault | ProviderError) -> ProviderError:
        """The error of one request whose line failed, classified as the direct call's would be."""
        if isinstance(fault, TransientFault):
            return ProviderError(
                f"{self.model.spec}: {fault} for this request in batch {batch_id}: retry it",
                status_code=fault.status_code,
                transient=True,
                attempts=1,
            )
        return ProviderError(f"{fault} (batch {batch_id})", status_code=fault.status_code, attempts=1)

    def unfinished(self, batch_id: str, why: str) -> ProviderError:
        """The error of a request the batch ended without answering: retrying it may succeed."""
        return ProviderError(
            f"{self.model.spec}: batch {batch_id}: {why}: retry it", transient=True, attempts=1
        )

    @abstractmethod
    async def submit(self, lines: list[tuple[str, LLMRequest]]) -> str:
        """Create a batch of ``(custom_id, request)`` lines; return its id."""

    @abstractmethod
    async def poll(self, batch_id: str) -> BatchStatus: ...

    @abstractmethod
    async def results(
        self, batch_id: str, status: BatchStatus, requests: Mapping[str, LLMRequest]
    ) -> dict[str, Outcome]:
        """The outcome of each line the ended batch has a result for, by custom id."""

    @abstractmethod
    async def cancel(self, batch_id: str) -> None: ...


class OpenAIBatches(BatchBackend):
    """OpenAI's Batch API: a JSONL file of ``{custom_id, method, url, body}`` lines uploaded with
    ``purpose="batch"``, a batch over it (``completion_window="24h"``), polled until ``completed``,
    ``failed``, ``expired`` or ``cancelled``; results are lines ``{custom_id, response: {status_code,
    body}, error}`` in the output file (successes) and the error file (the rest)."""

    model: OpenAIModel
    _TERMINAL: ClassVar[frozenset[str]] = frozenset({"completed", "failed", "expired", "cancelled"})

    async def submit(self, lines: list[tuple[str, LLMRequest]]) -> str:
        model = self.model
        content = "".join(
            json.dumps(
                {
                    "custom_id": custom_id,
                    "method": "POST",
                    "url": OPENAI_BATCH_ENDPOINT,
                    "body": model.request_body(request),
                },
                ensure_ascii=False,
            )
            + "\n"
            for custom_id, request in lines
        ).encode()
        try:
            upload = await self.call(
                "batch upload",
                lambda: model.client.files.create(
                    file=("resyn-batch.jsonl", content, "application/jsonl"), purpose="batch"
                ),
            )
        except ProviderError as error:
            if error.status_code == 404:
                raise ProviderError(
                    f"{model.spec}: {model.endpoint} has no Batch API (HTTP 404 on POST /files): "
                    "drop --batch-api for this server",
                    status_code=404,
                    attempts=error.attempts,
                ) from error
            raise
        batch = await self.call(
            "batch create",
            lambda: model.client.batches.create(
                input_file_id=upload.id,
                endpoint=OPENAI_BATCH_ENDPOINT,
                completion_window="24h",
                metadata={"created_by": "resyn", "requests": str(len(lines))},
            ),
        )
        return batch.id

    async def poll(self, batch_id: str) -> BatchStatus:
        batch = await self.call("batch poll", lambda: self.model.client.batches.retrieve(batch_id))
        failure = None
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors and batch.errors.data else []
            failure = "; ".join(
                (f"line {e.line}: " if e.line is not None else "") + f"{e.code or 'error'}: {e.message or ''}"
                for e in errors
            )
            failure = one_line(failure or "no reason given", 300)
        return BatchStatus(
            ended=batch.status in self._TERMINAL, status=batch.status, failure=failure, raw=batch
        )

    async def results(
        self, batch_id: str, status: BatchStatus, requests: Mapping[str, LLMRequest]
    ) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        for file_id in (status.raw.output_file_id, status.raw.error_file_id):
            if not file_id:
                continue
            content = await self.call("batch download", self._download(file_id))
            for number, text in enumerate(content.splitlines(), 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ProviderError(
                        f"{self.model.spec}: batch {batch_id}: line {number} of file {file_id} is not JSON "
                        f"({error.msg}): check that the base URL is an OpenAI-compatible server"
                    ) from None
                custom_id = line.get("custom_id") if isinstance(line, dict) else None
                if isinstance(custom_id, str) and custom_id in requests:
                    outcomes[custom_id] = self._outcome(batch_id, requests[custom_id], line)
        return outcomes

    def _download(self, file_id: str) -> Callable[[], Awaitable[bytes]]:
        async def download() -> bytes:
            return (await self.model.client.files.content(file_id)).content

        return download

    def _outcome(self, batch_id: str, request: LLMRequest, line: dict[str, Any]) -> Outcome:
        response = line.get("response")
        if isinstance(response, dict) and isinstance(response.get("status_code"), int):
            status: int = response["status_code"]
            body = response.get("body")
            if status == 200:
                try:
                    return self.model.completion_from_body(request, body)
                except ProviderError as error:
                    return self.line_failure(batch_id, error)
            error_body = body.get("error") if isinstance(body, dict) else None
            said = error_body.get("message") if isinstance(error_body, dict) else None
            return self.line_failure(batch_id, self.model.status_fault(status, str(said or "no message")))
        detail: dict[str, Any] = line["error"] if isinstance(line.get("error"), dict) else {}
        code, message = str(detail.get("code") or "error"), str(detail.get("message") or "no message")
        if code in ("batch_expired", "batch_cancelled"):
            return self.unfinished(batch_id, f"{code}: {one_line(message, 200)}")
        return ProviderError(
            f"{self.model.spec}: batch {batch_id}: {code}: {one_line(message, 200)}", attempts=1
        )

    async def cancel(self, batch_id: str) -> None:
        await self.call("batch cancel", lambda: self.model.client.batches.cancel(batch_id))


class AnthropicBatches(BatchBackend):
    """Anthropic's Message Batches: ``messages.batches.create(requests=[{custom_id, params}])``,
    polled until ``processing_status == "ended"``; ``results(id)`` streams lines ``{custom_id,
    result: {type: succeeded|errored|canceled|expired, message|error}}``."""

    model: AnthropicModel

    async def submit(self, lines: list[tuple[str, LLMRequest]]) -> str:
        model = self.model
        # The params are the JSON body of messages.create as request_body builds it; the SDK posts
        # them as they are (they are not its typed keyword arguments, hence the cast).
        requests = cast(
            Any,
            [{"custom_id": custom_id, "params": model.request_body(request)} for custom_id, request in lines],
        )
        batch = await self.call(
            "batch create", lambda: model.client.messages.batches.create(requests=requests)
        )
        return batch.id

    async def poll(self, batch_id: str) -> BatchStatus:
        batch = await self.call("batch poll", lambda: self.model.client.messages.batches.retrieve(batch_id))
        return BatchStatus(
            ended=batch.processing_status == "ended", status=batch.processing_status, raw=batch
        )

    async def results(
        self, batch_id: str, status: BatchStatus, requests: Mapping[str, LLMRequest]
    ) -> dict[str, Outcome]:
        model = self.model

        async def download() -> dict[str, Outcome]:
            outcomes: dict[str, Outcome] = {}
            decoder = await model.client.messages.batches.results(batch_id)
            try:
                async for line in decoder:
                    if line.custom_id in requests:
                        outcomes[line.custom_id] = self._outcome(
                            batch_id, requests[line.custom_id], line.result
                        )
            except json.JSONDecodeError as error:
                raise ProviderError(
                    f"{model.spec}: batch {batch_id}: a results line is not JSON ({error.msg}): "
                    "check that the base URL is an Anthropic-compatible server"
                ) from None
            except (LLMError, TransientFault):
                raise
            except Exception as error:
                # The body is read after the SDK returned, so a connection lost mid-stream surfaces as
                # the HTTP library's own error rather than an SDK one: worth another download.
                raise TransientFault(f"results download broke off ({one_line(str(error), 120)})") from error
            finally:
                await decoder.close()
            return outcomes

        return await self.call("batch results", download)

    def _outcome(self, batch_id: str, request: LLMRequest, result: Any) -> Outcome:
        if result.type == "succeeded":
            try:
                return self.model.parse_response(request, result.message)
            except ProviderError as error:
                return self.line_failure(batch_id, error)
        if result.type == "errored":
            body = result.error.to_dict() if result.error is not None else {}
            detail = body["error"] if isinstance(body.get("error"), dict) else {}
            status = ANTHROPIC_ERROR_STATUS.get(str(detail.get("type")), 500)
            message = str(detail.get("message") or "no message")
            return self.line_failure(batch_id, self.model.status_fault(status, message))
        return self.unfinished(batch_id, f"the request was {result.type} before it was processed")

    async def cancel(self, batch_id: str) -> None:
        await self.call("batch cancel", lambda: self.model.client.messages.batches.cancel(batch_id))


def batch_backend(model: Model) -> BatchBackend:
    """The batch protocol of ``model``'s provider; ``ResynError`` for a model that has none."""
    if isinstance(model, BatchedModel):
        raise ResynError(f"{model.spec} is already batched")
    if model.provider == "openai":
        from resyn.llm.openai_provider import OpenAIModel

        if isinstance(model, OpenAIModel):
            return OpenAIBatches(model)
    if model.provider == "anthropic":
        from resyn.llm.anthropic_provider import AnthropicModel

        if isinstance(model, AnthropicModel):
            return AnthropicBatches(model)
    if model.provider == "replay":
        raise ResynError(f"{model.spec} answers from a transcript and cannot be batched: drop --batch-api")
    raise ResynError(
        f"{model.spec} cannot be batched: only openai/<model> and anthropic/<model> have a batch API"
    )


class BatchedModel(Model):
    """``model``'s calls through its provider's batch API (see the module docstring). Its ``spec``,
    recorder, key and transport settings are the wrapped model's (``inner``); its ``provider`` is
    ``"batch"``. It bounds no concurrency of its own: a waiting request costs a future, and the
    HTTP requests of the batch protocol share the wrapped model's ``max_concurrency``. ``aclose()``
    cancels its batches and closes the wrapped model."""

    provider: ClassVar[str] = "batch"

    def __init__(self, model: Model, settings: BatchSettings | None = None) -> None:
        self.inner = model
        self.backend = batch_backend(model)
        self.batch_settings = settings or BatchSettings()
        super().__init__(
            model.name,
            settings=model.settings.model_copy(update={"max_concurrency": _UNBOUNDED}),
            recorder=model.recorder,
        )
        self._pending: list[_Waiter] = []
        self._timer: asyncio.TimerHandle | None = None
        self._batches: set[_Batch] = set()
        self._ids = itertools.count(1)

    @property
    def spec(self) -> str:
        return self.inner.spec

    @property
    def recorder(self) -> Recorder:
        """The wrapped model's recorder: a batched call is recorded where a direct one would be."""
        return self.inner.recorder

    @recorder.setter
    def recorder(self, recorder: Recorder) -> None:
        self.inner.recorder = recorder

    def _new_loop(self) -> None:
        # Futures, timers and tasks belong to the loop that made them: start afresh on a new one.
        self._pending = []
        self._timer = None
        self._batches = set()

    def _prepare(self) -> None:
        self.inner._prepare()

    async def _attempt(self, request: LLMRequest) -> Completion:
        raise NotImplementedError("a batched request is never sent on its own")

    def _cost(self, completion: Completion) -> float | None:
        cost = self.inner._cost(completion)
        return None if cost is None else cost * batch_discount(self.inner.provider)

    async def _complete(self, request: LLMRequest) -> tuple[Completion, int]:
        _current_batch.set(None)
        self._prepare()  # a missing key fails the call now, not after the collect window
        waiter = self._enqueue(request)
        try:
            completion = await waiter.future
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            if waiter.batch is not None:
                _current_batch.set(waiter.batch.id)
        return completion, 1

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
        batch_id = _current_batch.get()
        if batch_id is not None:
            request = request.model_copy(update={"tags": {**request.tags, BATCH_TAG: batch_id}})
        super()._record(request, started_at, latency, completion, attempts, error, cost)

    # -- the queue -------------------------------------------------------------------------------
    def _enqueue(self, request: LLMRequest) -> _Waiter:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(request, f"resyn-{next(self._ids):06d}", loop.create_future())
        self._pending.append(waiter)
        if len(self._pending) >= self.batch_settings.max_batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.batch_settings.collect_window_s, self._flush)
        return waiter

    def _flush(self) -> None:
        """Submit the waiting requests as one batch (in a task of its own)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters = [w for w in self._pending if not w.future.done()]
        self._pending = []
        if not waiters:
            return
        batch = _Batch(waiters)
        for waiter in waiters:
            waiter.batch = batch
        batch.task = asyncio.get_running_loop().create_task(self._run(batch))
        self._batches.add(batch)
        batch.task.add_done_callback(lambda _: self._batches.discard(batch))

    def _abandon(self, waiter: _Waiter) -> None:
        """The caller of ``waiter`` was cancelled: leave the queue, or cancel a batch nobody awaits."""
        batch = waiter.batch
        if batch is None:
            if waiter in self._pending:
                self._pending.remove(waiter)
            if not self._pending and self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif all(w.future.cancelled() for w in batch.waiters) and batch.task is not None:
            batch.task.cancel()

    # -- one batch -------------------------------------------------------------------------------
    async def _run(self, batch: _Batch) -> None:
        """Submit, poll, resolve every waiter of ``batch``: with a result or an error, never neither."""
        try:
            batch.id = await self.backend.submit([(w.custom_id, w.request) for w in batch.waiters])
            log.info("%s: submitted batch %s with %d requests", self.spec, batch.id, len(batch.waiters))
            status = await self._wait(batch.id)
            log.info("%s: batch %s ended: %s", self.spec, batch.id, status.status)
            if status.failure is not None:
                self._fail(batch, f"{self.spec}: batch {batch.id} {status.status}: {status.failure}")
                return
            requests = {w.custom_id: w.request for w in batch.waiters}
            outcomes = await self.backend.results(batch.id, status, requests)
            for waiter in batch.waiters:
                if waiter.future.done():
                    continue
                outcome = outcomes.get(waiter.custom_id) or self.backend.unfinished(
                    batch.id, f"ended ({status.status}) without a result for this request"
                )
                if isinstance(outcome, Completion):
                    waiter.future.set_result(outcome)
                else:
                    waiter.future.set_exception(outcome)
        except asyncio.CancelledError:
            where = f"batch {batch.id}" if batch.id else "a batch not yet submitted"
            self._fail(
                batch, f"{self.spec}: {where} was abandoned (the model was closed): retry", transient=True
            )
            if batch.id is not None:
                await self._cancel_remote(batch.id)
            raise
        except ResynError as error:
            transient = isinstance(error, ProviderError) and error.transient
            status_code = error.status_code if isinstance(error, ProviderError) else None
            self._fail(batch, str(error), transient=transient, status_code=status_code)
        except Exception as error:  # an SDK surprise must fail the callers, not leave them waiting
            log.exception("%s: batch %s broke", self.spec, batch.id)
            self._fail(
                batch, f"{self.spec}: batch {batch.id}: {type(error).__name__}: {one_line(str(error), 200)}"
            )

    async def _wait(self, batch_id: str) -> BatchStatus:
        """Poll until the batch ends, backing off; cancel it and fail after ``max_wait_s``."""
        settings = self.batch_settings
        deadline = time.monotonic() + settings.max_wait_s
        interval = settings.poll_interval_s
        while True:
            await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))
            status = await self.backend.poll(batch_id)
            if status.ended:
                return status
            if time.monotonic() >= deadline:
                await self._cancel_remote(batch_id)
                raise ProviderError(
                    f"{self.spec}: batch {batch_id} still {status.status} after {settings.max_wait_s:g} s: "
                    "cancelled it; retry later, or raise max_wait_s",
                    transient=True,
                    attempts=1,
                )
            interval = min(interval * 2, settings.max_poll_interval_s)

    async def _cancel_remote(self, batch_id: str) -> None:
        """Ask the provider to cancel a batch nobody waits for. Best effort: a failure is logged, and
        a second cancellation (the event loop shutting down) interrupts it."""
        try:
            async with asyncio.timeout(self.inner.settings.timeout_s):
                await self.backend.cancel(batch_id)
            log.info("%s: cancelled batch %s", self.spec, batch_id)
        except Exception as error:
            log.warning("%s: could not cancel batch %s: %s", self.spec, batch_id, one_line(str(error), 200))

    def _fail(
        self, batch: _Batch, message: str, *, transient: bool = False, status_code: int | None = None
    ) -> None:
        """Fail every unresolved waiter of ``batch``, each with an error of its own."""
        attempts = 1 if batch.id is not None else 0
        for waiter in batch.waiters:
            if not waiter.future.done():
                waiter.future.set_exception(
                    ProviderError(message, status_code=status_code, transient=transient, attempts=attempts)
                )

    async def aclose(self) -> None:
        """Fail the requests still queued, cancel the batches in flight (at the provider too), then
        close the wrapped model."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self._pending:
            if not waiter.future.done():
                waiter.future.set_exception(
                    ProviderError(
                        f"{self.spec}: closed before the batch was submitted: retry", transient=True
                    )
                )
        self._pending = []
        tasks = [b.task for b in self._batches if b.task is not None and not b.task.done()]
        if tasks and self._loop is asyncio.get_running_loop():
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.inner.aclose()


def with_batching(model: Model, settings: BatchSettings | None = None) -> BatchedModel:
    """``model`` with its calls sent through its provider's batch API (``--batch-api``);
    ``ResynError`` for a model without one (``replay/…``)."""
    return BatchedModel(model, settings)
