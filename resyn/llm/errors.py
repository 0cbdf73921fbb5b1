"""Errors of the LLM layer. All are ``ResynError``s: one line that names the fix, so a command that
fails on a model call prints something actionable. Callers branch on the subclass."""

from __future__ import annotations

from resyn.errors import ResynError


class LLMError(ResynError):
    """A model call failed. ``attempts`` is how many HTTP requests were made (0: none)."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


class ProviderError(LLMError):
    """The provider refused the request (a 4xx other than 429: bad request, bad key, unknown model),
    answered something unreadable, or transport faults outlasted the retry budget (``transient``)."""

    def __init__(
        self, message: str, *, status_code: int | None = None, transient: bool = False, attempts: int = 0
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.status_code = status_code
        self.transient = transient


class StructuredOutputError(LLMError):
    """The model answered, but not with a valid instance of the requested schema. ``raw`` is the
    answer's text (the tool input as JSON for Anthropic) so a caller can show it or retry once."""

    def __init__(self, message: str, *, raw: str, attempts: int = 0) -> None:
        super().__init__(message, attempts=attempts)
        self.raw = raw


class ReplayMissError(LLMError):
    """A ``replay/<path>`` model was asked something its transcript does not contain."""
