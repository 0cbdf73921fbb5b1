"""Batched calls (resyn.llm.batch) through the real openai and anthropic SDKs against the batch
endpoints of the loopback fake servers (tests/llm_servers.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from resyn.errors import ResynError
from resyn.llm import (
    AnthropicModel,
    LLMRequest,
    LLMResponse,
    LLMSettings,
    MemoryRecorder,
    Model,
    OpenAIModel,
    ProviderError,
    get_model,
)
from resyn.llm.batch import BATCH_TAG, BatchedModel, BatchSettings, with_batching
from resyn.llm.pricing import batch_discount
from tests.llm_servers import FakeAnthropic, FakeOpenAI, FakeServer, Reply, offline_llm_env

FAST = LLMSettings(
    timeout_s=2, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, max_retry_time_s=10
)
QUICK = BatchSettings(collect_window_s=0.05, poll_interval_s=0.01, max_poll_interval_s=0.02, max_wait_s=10)
PROVIDERS = ["openai", "anthropic"]


class Verdict(BaseModel):
    score: float
    reason: str


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    offline_llm_env(monkeypatch)


@pytest.fixture(params=PROVIDERS)
def server(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    with FakeOpenAI() if request.param == "openai" else FakeAnthropic() as fake:
        yield fake


def direct(server: FakeServer, recorder: MemoryRecorder | None = None, **settings: Any) -> Model:
    """The unbatched model for ``server``'s provider."""
    spec = "openai/gpt-4o-mini" if isinstance(server, FakeOpenAI) else "anthropic/claude-sonnet-4"
    built = get_model(
        spec, base_url=server.base_url, settings=FAST.model_copy(update=settings), recorder=recorder
    )
    assert isinstance(built, OpenAIModel | AnthropicModel)
    return built


def batched(server: FakeServer, recorder: MemoryRecorder | None = None, **batch: Any) -> BatchedModel:
    return with_batching(direct(server, recorder), QUICK.model_copy(update=batch))


def ask(text: str = "What is 2+2?", **kwargs: object) -> LLMRequest:
    fields: dict[str, object] = {"template": "demo", "max_tokens": 64, "system": "Be brief."} | kwargs
    return LLMRequest.build(text, **fields)  # type: ignore[arg-type]


def chat_path(server: FakeServer) -> str:
    return "/v1/chat/completions" if isinstance(server, FakeOpenAI) else "/v1/messages"


def last_user(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def echo(server: FakeServer) -> None:
    """Answer each request (direct or batched) with ``echo <its question>``."""
    server.responder = lambda body: Reply(body=server.answer(f"echo {last_user(body)}"))


def verdict_reply(server: FakeServer, verdict: dict[str, Any]) -> Reply:
    if isinstance(server, FakeAnthropic):
        return server.tool_answer("Verdict", verdict)
    return Reply(body=server.answer(json.dumps(verdict)))


async def generate_all(model: Model, requests: list[LLMRequest]) -> list[LLMResponse | BaseException]:
    try:
        return await asyncio.gather(*(model.generate(r) for r in requests), return_exceptions=True)
    finally:
        await model.aclose()


def canonical(bodies: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(body, sort_keys=True) for body in bodies)


# -- collecting and submitting ------------------------------------------------------------------


def test_concurrent_calls_become_one_batch_with_the_direct_bodies(server: FakeServer) -> None:
    echo(server)
    requests = [
        ask("q0"),
        ask("q1", temperature=0.3, purpose="writer"),
        ask("q2", system=None, max_tokens=7),
        ask("q3", output={"type": "object", "properties": {"n": {"type": "integer"}}}),
        ask("q4", output=Verdict, temperature=0.0),
    ]
    model = batched(server)
    responses = asyncio.run(generate_all(model, requests[:3]))
    assert [r.text for r in responses if isinstance(r, LLMResponse)] == ["echo q0", "echo q1", "echo q2"]

    # nothing went to the direct endpoint; one batch carried the three requests
    assert server.received_on(chat_path(server)) == []
    batch = server.batch
    assert len(batch.lines) == 3 and len(set(batch.custom_ids)) == 3

    # every line's body is what a direct call of the same request sends, structured ones included
    server.batches.clear()
    server.responder = None
    asyncio.run(generate_all(batched(server), requests))
    for request in requests:
        asyncio.run(generate_all(direct(server), [request]))
    direct_bodies = [r.body for r in server.received_on(chat_path(server))]
    assert canonical(server.batch.bodies) == canonical(direct_bodies)
    if isinstance(server, FakeOpenAI):
        assert {(line["method"], line["url"]) for line in server.batch.lines} == {("POST", chat_path(server))}
        (upload,) = server.received_on("/v1/files")[1:]
        assert upload.body["purpose"] == "batch"
        (create,) = server.received_on("/v1/batches")[1:]
        assert create.body["endpoint"] == "/v1/chat/completions" and create.body["completion_window"] == "24h"


def test_results_are_matched_by_custom_id(server: FakeServer) -> None:
    echo(server)  # the fake writes results in reverse order
    requests = [ask(f"q{i}") for i in range(6)]
    responses = asyncio.run(generate_all(batched(server), requests))
    assert [r.text for r in responses if isinstance(r, LLMResponse)] == [f"echo q{i}" for i in range(6)]


def test_max_batch_size_splits_batches(server: FakeServer) -> None:
    echo(server)
    responses = asyncio.run(generate_all(batched(server, max_batch_size=3), [ask(f"q{i}") for i in range(7)]))
    assert all(isinstance(r, LLMResponse) for r in responses)
    assert sorted(len(b.lines) for b in server.batches.values()) == [1, 3, 3]


def test_requests_arriving_after_the_window_go_in_a_later_batch(server: FakeServer) -> None:
    model = batched(server, collect_window_s=0.05)

    async def staggered() -> None:
        first = asyncio.ensure_future(model.generate(ask("early")))
        await asyncio.sleep(0.3)
        await asyncio.gather(first, model.generate(ask("late")))
        await model.aclose()

    asyncio.run(staggered())
    assert [len(b.lines) for b in server.batches.values()] == [1, 1]


# -- parsing, recording, pricing ----------------------------------------------------------------


def test_structured_output_through_a_batch(server: FakeServer) -> None:
    server.push(verdict_reply(server, {"score": 0.5, "reason": "half right"}))
    (response,) = asyncio.run(generate_all(batched(server), [ask(output=Verdict, purpose="judge")]))
    assert isinstance(response, LLMResponse)
    assert response.output(Verdict) == Verdict(score=0.5, reason="half right")
    assert response.finish_reason == "stop"
    if isinstance(server, FakeAnthropic):  # the forced tool call is the answer, as for a direct call
        assert response.raw_finish_reason == "tool_use"
        assert server.batch.bodies[0]["tool_choice"] == {"type": "tool", "name": "Verdict"}
    else:
        assert server.batch.bodies[0]["response_format"]["json_schema"]["name"] == "Verdict"


def test_a_schema_breaking_answer_fails_like_a_direct_call(server: FakeServer) -> None:
    server.push(verdict_reply(server, {"score": "high", "reason": "x"}))
    recorder = MemoryRecorder()
    (error,) = asyncio.run(generate_all(batched(server, recorder), [ask(output=Verdict)]))
    assert type(error).__name__ == "StructuredOutputError" and "does not match Verdict" in str(error)
    (call,) = recorder.calls
    assert call.error_type == "StructuredOutputError" and call.tags[BATCH_TAG] == server.batch.id
    assert call.cost_usd is not None and call.text


def test_batched_calls_cost_half_and_are_recorded_like_direct_ones(server: FakeServer) -> None:
    reply = (
        server.answer("4", prompt_tokens=2000, completion_tokens=300)
        if isinstance(server, FakeOpenAI)
        else server.answer("4", input_tokens=2000, output_tokens=300)
    )
    server.responder = lambda body: Reply(body=reply)
    request = ask(purpose="solver", tags={"run": "r1"}, temperature=0.2)
    direct_recorder, batch_recorder = MemoryRecorder(), MemoryRecorder()
    (plain,) = asyncio.run(generate_all(direct(server, direct_recorder), [request]))
    (cheap,) = asyncio.run(generate_all(batched(server, batch_recorder, collect_window_s=0.1), [request]))
    assert isinstance(plain, LLMResponse) and isinstance(cheap, LLMResponse)

    assert plain.cost_usd is not None and cheap.cost_usd == pytest.approx(plain.cost_usd * 0.5)
    assert batch_discount("openai") == batch_discount("anthropic") == 0.5
    assert cheap.attempts == 1 and cheap.latency_s >= 0.1  # enqueued to result: the window included
    differ = {"latency_s", "cost_usd"}
    assert cheap.model_dump(exclude=differ) == plain.model_dump(exclude=differ)

    (direct_call,), (batch_call,) = direct_recorder.calls, batch_recorder.calls
    assert batch_call.tags == {"run": "r1", BATCH_TAG: server.batch.id}
    assert batch_call.attempts == 1 and batch_call.cost_usd == cheap.cost_usd
    assert batch_call.latency_s == cheap.latency_s and batch_call.error is None
    varies = {"started_at", "latency_s", "cost_usd", "tags", "request"}
    assert batch_call.model_dump(exclude=varies) == direct_call.model_dump(exclude=varies)
    assert batch_call.request == direct_call.request | {"tags": batch_call.tags}


def test_the_recorder_is_the_wrapped_models(server: FakeServer) -> None:
    inner = direct(server)
    model = with_batching(inner, QUICK)
    recorder = MemoryRecorder()
    model.recorder = recorder
    assert inner.recorder is recorder and model.spec == inner.spec
    asyncio.run(generate_all(model, [ask()]))
    assert len(recorder.calls) == 1


# -- failures -----------------------------------------------------------------------------------


def test_per_line_failures(server: FakeServer) -> None:
    replies = {
        "ok": Reply(body=server.answer("fine")),
        "bad": server.client_error(400, "max_tokens is too large"),
        "busy": server.server_error(529 if isinstance(server, FakeAnthropic) else 500),
        "expired": server.expired_line(),
        "canceled": Reply(batch_result="canceled"),
        "missing": server.dropped(),
    }
    server.responder = lambda body: replies[last_user(body)]
    recorder = MemoryRecorder()
    results = asyncio.run(generate_all(batched(server, recorder), [ask(name) for name in replies]))
    outcomes = dict(zip(replies, results, strict=True))
    batch_id = server.batch.id
    assert isinstance(outcomes["ok"], LLMResponse) and outcomes["ok"].text == "fine"

    bad = outcomes["bad"]
    assert isinstance(bad, ProviderError) and not bad.transient and bad.status_code == 400
    assert "HTTP 400 max_tokens is too large" in str(bad) and batch_id in str(bad)
    for name in ("busy", "expired", "canceled", "missing"):
        error = outcomes[name]
        assert isinstance(error, ProviderError) and error.transient, name
        assert batch_id in str(error) and "\n" not in str(error) and "retry" in str(error)
    assert "without a result" in str(outcomes["missing"])
    assert "expired" in str(outcomes["expired"]) and "cancel" in str(outcomes["canceled"])

    assert len(recorder.calls) == 6
    assert all(c.attempts == 1 and c.tags[BATCH_TAG] == batch_id for c in recorder.calls)
    assert sorted(c.error_type or "" for c in recorder.calls) == [""] + ["ProviderError"] * 5


def test_a_whole_batch_expiring_fails_every_request_transient(server: FakeServer) -> None:
    server.batch_outcome = "expired"
    errors = asyncio.run(generate_all(batched(server), [ask(f"q{i}") for i in range(3)]))
    assert len(server.received_on(chat_path(server))) == 0
    for error in errors:
        assert isinstance(error, ProviderError) and error.transient
        assert "expired" in str(error) and server.batch.id in str(error) and "\n" not in str(error)


def test_a_failed_openai_batch_fails_every_request_with_its_reason() -> None:
    with FakeOpenAI() as server:
        server.batch_outcome = "failed"
        errors = asyncio.run(generate_all(batched(server), [ask("q0"), ask("q1")]))
        for error in errors:
            assert isinstance(error, ProviderError) and not error.transient
            assert str(error) == (
                f"openai/gpt-4o-mini: batch {server.batch.id} failed: "
                "invalid_file: fake failure: the input file is invalid"
            )


def test_transport_faults_of_the_batch_protocol_are_retried(server: FakeServer) -> None:
    echo(server)
    server.batch_polls = 2
    if isinstance(server, FakeOpenAI):
        server.fault("upload", server.dropped())
    server.fault("create", server.server_error(503))
    server.fault("poll", server.server_error(500), server.rate_limited("0.01"))  # 3 attempts at most
    server.fault("download", server.server_error(502))
    responses = asyncio.run(generate_all(batched(server), [ask("q0"), ask("q1")]))
    assert [r.text for r in responses if isinstance(r, LLMResponse)] == ["echo q0", "echo q1"]
    assert len(server.batches) == 1  # a create that failed created nothing
    prefix = "/v1/batches/" if isinstance(server, FakeOpenAI) else "/v1/messages/batches/"
    # two faults, then two polls; Anthropic's results() retrieves the batch before each download
    assert len(server.received_on(prefix + server.batch.id)) == (4 if isinstance(server, FakeOpenAI) else 6)


def test_polling_faults_beyond_the_retry_budget_fail_the_requests(server: FakeServer) -> None:
    server.fault("poll", *(server.server_error(500) for _ in range(5)))
    recorder = MemoryRecorder()
    errors = asyncio.run(generate_all(batched(server, recorder), [ask("q0"), ask("q1")]))
    for error in errors:
        assert isinstance(error, ProviderError) and error.transient and error.status_code == 500
        assert "batch poll: HTTP 500 server error; gave up after 3 attempts" in str(error)
    assert [c.attempts for c in recorder.calls] == [1, 1]


def test_a_client_error_creating_the_batch_fails_every_request(server: FakeServer) -> None:
    server.fault("create", server.client_error(400, "too many requests in one batch"))
    errors = asyncio.run(generate_all(batched(server), [ask("q0"), ask("q1")]))
    for error in errors:
        assert isinstance(error, ProviderError) and not error.transient and error.status_code == 400
        assert "HTTP 400" in str(error) and "too many requests in one batch" in str(error)
    assert server.batches == {}


def test_a_server_without_a_batch_api_is_named() -> None:
    with FakeOpenAI() as server:
        server.fault("upload", server.client_error(404, "Not Found"))
        (error,) = asyncio.run(generate_all(batched(server), [ask()]))
        assert isinstance(error, ProviderError)
        assert f"{server.base_url} has no Batch API" in str(error) and "drop --batch-api" in str(error)


def test_a_batch_that_outlasts_max_wait_is_cancelled_and_fails(server: FakeServer) -> None:
    server.batch_polls = 10**6
    (error,) = asyncio.run(generate_all(batched(server, max_wait_s=0.2), [ask()]))
    assert isinstance(error, ProviderError) and error.transient
    assert "still in_progress after 0.2 s" in str(error) and "max_wait_s" in str(error)
    assert server.batch.cancelled


# -- cancellation -------------------------------------------------------------------------------


async def until(condition: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_cancelling_every_waiter_cancels_the_batch(server: FakeServer) -> None:
    server.batch_polls = 10**6
    recorder = MemoryRecorder()
    model = batched(server, recorder)

    async def cancel_after_submission() -> None:
        tasks = [asyncio.ensure_future(model.generate(ask(f"q{i}"))) for i in range(2)]
        await until(lambda: server.batches and server.batch.polls >= 2)
        tasks[0].cancel()
        await asyncio.sleep(0.05)
        assert not server.batch.cancelled  # one waiter is left
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await until(lambda: server.batch.cancelled)
        await model.aclose()

    asyncio.run(cancel_after_submission())
    assert server.batch.cancelled
    assert [c.error_type for c in recorder.calls] == ["CancelledError", "CancelledError"]


def test_a_waiter_cancelled_before_submission_leaves_the_queue(server: FakeServer) -> None:
    echo(server)
    model = batched(server, collect_window_s=0.2)

    async def cancel_one() -> list[LLMResponse | BaseException]:
        tasks = [asyncio.ensure_future(model.generate(ask(f"q{i}"))) for i in range(3)]
        await asyncio.sleep(0.02)
        tasks[1].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        alone = asyncio.ensure_future(model.generate(ask("alone")))
        await asyncio.sleep(0.02)
        alone.cancel()  # the only request waiting: no batch at all
        await asyncio.sleep(0.3)
        await model.aclose()
        return results

    results = asyncio.run(cancel_one())
    assert isinstance(results[1], asyncio.CancelledError)
    assert [r.text for r in results if isinstance(r, LLMResponse)] == ["echo q0", "echo q2"]
    assert [last_user(body) for body in server.batch.bodies] == ["q0", "q2"]


def test_closing_the_model_fails_its_waiters_and_cancels_its_batches(server: FakeServer) -> None:
    server.batch_polls = 10**6
    model = batched(server)

    async def close_midway() -> BaseException | LLMResponse:
        task = asyncio.ensure_future(model.generate(ask()))
        await until(lambda: bool(server.batches) and server.batch.polls >= 1)  # the model knows its id
        await model.aclose()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        return outcome

    error = asyncio.run(close_midway())
    assert isinstance(error, ProviderError) and error.transient and "abandoned" in str(error)
    assert server.batch.cancelled


# -- set-up -------------------------------------------------------------------------------------


def test_replay_and_batched_models_cannot_be_batched(tmp_path: Any) -> None:
    with pytest.raises(ResynError, match=r"^replay/.+ answers from a transcript and cannot be batched"):
        with_batching(get_model(f"replay/{tmp_path}/t.jsonl"))
    twice = with_batching(get_model("openai/gpt-4o-mini"))
    with pytest.raises(ResynError, match="already batched"):
        with_batching(twice)


def test_check_ready_is_the_wrapped_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    model = with_batching(get_model("anthropic/claude-sonnet-4"))
    with pytest.raises(ResynError, match=r"^ANTHROPIC_API_KEY is not set"):
        model.check_ready()


def test_aclose_closes_the_wrapped_model(server: FakeServer) -> None:
    inner = direct(server)
    model = with_batching(inner, QUICK)

    async def use_and_close() -> None:
        await model.generate(ask())
        assert inner._client is not None  # type: ignore[attr-defined]
        await model.aclose()
        assert inner._client is None  # type: ignore[attr-defined]

    asyncio.run(use_and_close())


def test_batch_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="max_poll_interval_s"):
        BatchSettings(poll_interval_s=30, max_poll_interval_s=10)
    with pytest.raises(ValidationError):
        BatchSettings(max_batch_size=0)
    assert BatchSettings().max_wait_s == 24 * 3600
