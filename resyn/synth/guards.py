"""What stands between the synthesis loop and a provider: the run's budget and the response cache.

Both wrap a ``Model`` so that the loop, the judge and calibration need not know about them:

* ``Budget`` (``--budget-usd``, ``--max-calls``) counts what the run spent, across sessions, from
  the call records; once a limit is reached, no new call starts (``BudgetExhausted``). Calls already
  in flight finish and are paid for, so a run overshoots by at most those calls.
* ``--reuse-calls`` answers an identical request (same model, same rendered prompt, same
  parameters: the same ``prompt_sha256``) from the catalog's call log, so a rerun after a code change
  costs nothing for unchanged steps. The i-th identical request of a run reuses the i-th recorded
  answer: calibration asks the same question several times and must get several answers.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from resyn.errors import ResynError
from resyn.llm import LLMRequest, LLMResponse, Model
from resyn.llm.base import Completion
from resyn.llm.models import CallRecord
from resyn.llm.pricing import find_price


class BudgetExhausted(ResynError):
    """The run reached ``--budget-usd`` or ``--max-calls``: stop starting calls."""


class Budget:
    """Spend and calls of one run; also a ``Recorder`` so it sees every call as it is recorded."""

    def __init__(
        self, *, max_usd: float | None, max_calls: int | None, spent_usd: float = 0.0, calls: int = 0
    ) -> None:
        self.max_usd = max_usd
        self.max_calls = max_calls
        self.spent_usd = spent_usd
        self.calls = calls
        self._lock = threading.Lock()

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self.spent_usd += call.cost_usd or 0.0
            if call.attempts > 0:  # replayed and reused answers cost no request
                self.calls += 1

    def exhausted(self) -> str | None:
        """Why no further call may start, or ``None``."""
        if self.max_usd is not None and self.spent_usd >= self.max_usd:
            return f"budget of ${self.max_usd:g} reached (spent ${self.spent_usd:.4f})"
        if self.max_calls is not None and self.calls >= self.max_calls:
            return f"limit of {self.max_calls} calls reached"
        return None

    def admit(self) -> None:
        reason = self.exhausted()
        if reason is not None:
            raise BudgetExhausted(reason)


def require_prices(specs: list[str]) -> None:
    """``--budget-usd`` means nothing for a model without a price: say so before the run starts."""
    for spec in specs:
        provider, _, name = spec.partition("/")
        if provider != "replay" and find_price(name) is None:
            raise ResynError(
                f"--budget-usd needs a price for {spec}: add it to a RESYN_PRICES file "
                '(e.g. {"' + name + '": {"input": 1.0, "output": 4.0}} in USD per million tokens)'
            )


class GuardedModel(Model):
    """``inner`` behind the budget and, optionally, the response cache. Records are made by the
    inner model (a real call) or here (a reused answer), so every answer appears once in the log."""

    def __init__(
        self,
        inner: Model,
        *,
        budget: Budget | None,
        reuse: Callable[[str, str], list[CallRecord]] | None = None,
    ) -> None:
        super().__init__(inner.name, settings=inner.settings, recorder=inner.recorder)
        self.inner = inner
        self.provider = inner.provider  # type: ignore[misc]  # an instance attribute on purpose
        self.budget = budget
        self.reuse = reuse
        self._served: dict[str, int] = defaultdict(int)

    def check_ready(self) -> None:
        self.inner.check_ready()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _attempt(self, request: LLMRequest) -> Completion:
        raise NotImplementedError  # never called: generate delegates

    async def generate(self, request: LLMRequest) -> LLMResponse:
        if self.reuse is not None:
            digest = request.prompt_sha256()
            index = self._served[digest]
            self._served[digest] += 1
            recorded = self.reuse(self.inner.spec, digest)
            if index < len(recorded):
                return self._replayed(request, recorded[index])
        if self.budget is not None:
            self.budget.admit()
        return await self.inner.generate(request)

    def _replayed(self, request: LLMRequest, call: CallRecord) -> LLMResponse:
        from resyn.llm.structured import parse_structured

        text = call.text or ""
        finish = call.finish_reason or "stop"
        parsed = parse_structured(request, text, finish) if request.structured else None
        self.inner.recorder.record(
            CallRecord(
                started_at=datetime.now(UTC),
                template=request.template,
                prompt_sha256=request.prompt_sha256(),
                requested_model=self.inner.spec,
                resolved_model=call.resolved_model,
                purpose=request.purpose,
                tokens_in=call.tokens_in,
                tokens_out=call.tokens_out,
                latency_s=0.0,
                finish_reason=finish,
                raw_finish_reason=call.raw_finish_reason,
                cost_usd=0.0,
                attempts=0,
                text=text,
                tags=request.tags | {"reused_from": call.tags.get("call_id", "")},
                request=request.model_dump(mode="json"),
                response=call.response,
            )
        )
        return LLMResponse(
            text=text,
            parsed=parsed,
            finish_reason=finish,
            raw_finish_reason=call.raw_finish_reason,
            tokens_in=call.tokens_in,
            tokens_out=call.tokens_out,
            model=call.resolved_model or self.inner.name,
            requested_model=self.inner.spec,
            latency_s=0.0,
            attempts=0,
            prompt_sha256=request.prompt_sha256(),
            cost_usd=0.0,
            raw=call.response or {},
        )
