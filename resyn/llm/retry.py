"""Retries of transport faults, and only of those.

SDK clients are built with ``max_retries=0``; one attempt is one HTTP request. A provider turns a
fault worth retrying into ``TransientFault`` — a 429 (honouring ``retry-after-ms`` / ``Retry-After``
up to ``LLMSettings.max_retry_after_s``), a 5xx, a timeout, a refused or dropped connection — and
anything else into an ``LLMError`` that is raised at once: a 400/401/403/404, an unreadable body, a
structured answer that breaks its schema are not cured by asking again. The budget is bounded in
both attempts (``max_attempts``) and time (``max_retry_time_s``: no retry whose back-off would end
past it); when it runs out the call fails with a transient ``ProviderError`` naming the last fault.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from resyn.llm.errors import LLMError, ProviderError
from resyn.llm.models import LLMSettings

R = TypeVar("R")


class TransientFault(Exception):
    """One attempt failed in a way a later attempt may not: the caller retries it."""

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """The delay a server asked for: ``retry-after-ms`` (milliseconds), else ``Retry-After`` as
    seconds or an HTTP date. ``None`` when absent or unreadable; never negative."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
        if name == "retry-after":
            try:
                when = parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError, IndexError):
                return None
            return max(0.0, when - (time.time() if now is None else now))
    return None


def backoff_seconds(settings: LLMSettings, retry_state: RetryCallState) -> float:
    """How long to wait before the next attempt: the server's ``Retry-After`` (capped), else an
    exponential back-off with jitter."""
    outcome = retry_state.outcome
    fault = outcome.exception() if outcome is not None else None
    if isinstance(fault, TransientFault) and fault.retry_after is not None:
        return min(fault.retry_after, settings.max_retry_after_s)
    exponent = max(0, retry_state.attempt_number - 1)
    base = min(settings.backoff_max_s, settings.backoff_initial_s * 2.0**exponent)
    return min(settings.backoff_max_s, base + random.uniform(0, settings.backoff_initial_s))


class _StopBeforeDeadline(stop_base):
    """Stop when the coming back-off (tenacity computes the wait before asking the stop) would end
    past the time budget."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return (retry_state.seconds_since_start or 0.0) + retry_state.upcoming_sleep >= self.budget_s


async def call_with_retries(
    attempt: Callable[[], Awaitable[R]], settings: LLMSettings, *, label: str
) -> tuple[R, int]:
    """Run ``attempt`` until it succeeds, raises something other than ``TransientFault``, or the
    budget runs out. Returns the result and the number of attempts; errors carry ``attempts``."""
    attempts = 0
    start = time.monotonic()

    async def once() -> R:
        nonlocal attempts
        attempts += 1
        return await attempt()

    def wait(retry_state: RetryCallState) -> float:
        return backoff_seconds(settings, retry_state)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(TransientFault),
        stop=stop_after_attempt(settings.max_attempts) | _StopBeforeDeadline(settings.max_retry_time_s),
        wait=wait,
        reraise=True,
    )
    try:
        result: R = await retrying(once)
    except TransientFault as fault:
        elapsed = time.monotonic() - start
        raise ProviderError(
            f"{label}: {fault}; gave up after {attempts} attempt{'s' if attempts != 1 else ''} in "
            f"{elapsed:.1f} s: retry later, or raise max_attempts/max_retry_time_s",
            status_code=fault.status_code,
            transient=True,
            attempts=attempts,
        ) from fault
    except LLMError as error:
        error.attempts = attempts
        raise
    return result, attempts
