"""openai/<model> through the real openai SDK against the loopback fake server (tests/llm_servers.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from resyn.errors import ResynError
from resyn.llm import (
    LLMRequest,
    LLMSettings,
    MemoryRecorder,
    OpenAIModel,
    ProviderError,
    StructuredOutputError,
    get_model,
)
from tests.llm_servers import FakeOpenAI, Reply, offline_llm_env

FAST = LLMSettings(
    timeout_s=0.5, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, max_retry_time_s=10
)


class Verdict(BaseModel):
    score: float
    reason: str


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    offline_llm_env(monkeypatch)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def model(server: FakeOpenAI, recorder: MemoryRecorder | None = None, **settings: float) -> OpenAIModel:
    built = get_model(
        "openai/gpt-4o-mini",
        base_url=server.base_url,
        settings=FAST.model_copy(update=settings),
        recorder=recorder,
    )
    assert isinstance(built, OpenAIModel)
    return built


def ask(text: str = "What is 2+2?", **kwargs: object) -> LLMRequest:
    fields: dict[str, object] = {"template": "demo", "max_tokens": 64, "system": "Be brief."} | kwargs
    return LLMRequest.build(text, **fields)  # type: ignore[arg-type]


def test_plain_text_answer_and_record(server: FakeOpenAI) -> None:
    server.push(Reply(body=server.answer("4", prompt_tokens=20, completion_tokens=3)))
    recorder = MemoryRecorder()
    request = ask(purpose="solver", temperature=0.2, tags={"run": "r1"})
    response = asyncio.run(model(server, recorder).generate(request))

    assert response.text == "4"
    assert response.finish_reason == "stop" and response.raw_finish_reason == "stop"
    assert (response.tokens_in, response.tokens_out) == (20, 3)
    assert response.model == "gpt-4o-mini-2024-07-18" and response.requested_model == "openai/gpt-4o-mini"
    assert response.attempts == 1 and response.latency_s > 0
    assert response.raw["choices"][0]["message"]["content"] == "4"
    assert response.cost_usd == pytest.approx((20 * 0.15 + 3 * 0.60) / 1e6)

    (sent,) = server.received
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer resyn-local"  # local server: a dummy key is fine
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert sent.body["max_tokens"] == 64 and sent.body["temperature"] == 0.2
    assert "response_format" not in sent.body

    (call,) = recorder.calls
    assert call.template == "demo" and call.purpose == "solver" and call.tags == {"run": "r1"}
    assert call.prompt_sha256 == request.prompt_sha256() and len(call.prompt_sha256) == 64
    assert call.requested_model == "openai/gpt-4o-mini" and call.resolved_model == "gpt-4o-mini-2024-07-18"
    assert (call.tokens_in, call.tokens_out, call.attempts) == (20, 3, 1)
    assert call.cost_usd == response.cost_usd and call.finish_reason == "stop"
    assert call.error is None and call.text == "4"
    assert call.request["messages"][1]["content"] == "What is 2+2?"
    assert call.response == response.raw


def test_structured_output_uses_json_schema(server: FakeOpenAI) -> None:
    server.push(Reply(body=server.answer(json.dumps({"score": 0.5, "reason": "half right"}))))
    response = asyncio.run(model(server).generate(ask(output=Verdict, purpose="judge")))
    verdict = response.output(Verdict)
    assert verdict == Verdict(score=0.5, reason="half right")
    fmt = server.received[0].body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Verdict"
    assert fmt["json_schema"]["schema"] == Verdict.model_json_schema()


def test_structured_output_from_a_bare_json_schema(server: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    server.push(Reply(body=server.answer('{"n": 4}')), Reply(body=server.answer('{"m": 4}')))
    openai_model = model(server)
    assert asyncio.run(openai_model.generate(ask(output=schema))).parsed == {"n": 4}
    with pytest.raises(StructuredOutputError, match="lacks required keys"):
        asyncio.run(openai_model.generate(ask(output=schema)))


def test_malformed_structured_answer_raises_with_raw_text(server: FakeOpenAI) -> None:
    server.push(
        Reply(body=server.answer('{"score": "high", "reason": "x"}')),
        Reply(body=server.answer("Sure! The score is 0.5")),
    )
    recorder = MemoryRecorder()
    openai_model = model(server, recorder)
    with pytest.raises(StructuredOutputError, match=r"does not match Verdict: score") as schema_error:
        asyncio.run(openai_model.generate(ask(output=Verdict)))
    assert schema_error.value.raw == '{"score": "high", "reason": "x"}'
    assert "\n" not in str(schema_error.value)
    with pytest.raises(StructuredOutputError, match="is not JSON") as json_error:
        asyncio.run(openai_model.generate(ask(output=Verdict)))
    assert json_error.value.raw == "Sure! The score is 0.5"
    assert len(server.received) == 2  # never retried
    assert [c.error_type for c in recorder.calls] == ["StructuredOutputError"] * 2
    assert all(c.tokens_in == 11 and c.cost_usd is not None and c.text for c in recorder.calls)


def test_truncated_answer_is_reported_not_raised(server: FakeOpenAI) -> None:
    server.push(server.truncated("The answer is"))
    response = asyncio.run(model(server).generate(ask()))
    assert response.finish_reason == "length" and response.raw_finish_reason == "length"
    assert response.text == "The answer is"


def test_429_honours_retry_after(server: FakeOpenAI) -> None:
    server.push(server.rate_limited("0.4"), server.rate_limited("300", header="retry-after-ms"))
    recorder = MemoryRecorder()
    response = asyncio.run(model(server, recorder).generate(ask()))
    assert response.text == "ok" and response.attempts == 3
    first, second, third = (r.at for r in server.received)
    assert second - first >= 0.35  # Retry-After: 0.4 s (our own back-off would be ~0.01-0.05 s)
    assert third - second >= 0.25  # retry-after-ms: 300
    assert recorder.calls[0].attempts == 3 and recorder.calls[0].error is None


def test_retry_after_is_capped(server: FakeOpenAI) -> None:
    server.push(server.rate_limited("3600"))
    response = asyncio.run(model(server, max_retry_after_s=0.05).generate(ask()))
    assert response.attempts == 2


@pytest.mark.parametrize("fault", ["server_error", "slow", "dropped"])
def test_transport_faults_are_retried(server: FakeOpenAI, fault: str) -> None:
    reply = {"server_error": server.server_error(503), "slow": server.slow(3.0), "dropped": server.dropped()}
    server.push(reply[fault])
    response = asyncio.run(model(server).generate(ask()))
    assert response.text == "ok" and response.attempts == 2 and len(server.received) == 2


def test_attempts_are_bounded_then_a_clear_error(server: FakeOpenAI) -> None:
    server.push(*(server.server_error() for _ in range(5)))
    recorder = MemoryRecorder()
    with pytest.raises(ProviderError) as caught:
        asyncio.run(model(server, recorder).generate(ask()))
    error = caught.value
    assert error.transient and error.status_code == 500 and error.attempts == 3
    assert "HTTP 500" in str(error) and "gave up after 3 attempts" in str(error)
    assert len(server.received) == 3
    (call,) = recorder.calls
    assert call.error_type == "ProviderError" and call.attempts == 3 and call.tokens_in is None
    assert call.cost_usd is None and call.response is None


def test_retry_time_budget_is_bounded(server: FakeOpenAI) -> None:
    # first retry after 0.6 s fits the 1 s budget, a second one (ending at >= 1.2 s) does not
    server.push(*(server.rate_limited("0.6") for _ in range(5)))
    with pytest.raises(ProviderError, match="gave up after 2 attempts"):
        asyncio.run(model(server, max_attempts=10, max_retry_time_s=1.0).generate(ask()))
    assert len(server.received) == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(server: FakeOpenAI, status: int) -> None:
    server.push(server.client_error(status, "nope"))
    recorder = MemoryRecorder()
    with pytest.raises(ProviderError) as caught:
        asyncio.run(model(server, recorder).generate(ask()))
    assert caught.value.status_code == status and not caught.value.transient
    assert caught.value.attempts == 1 and len(server.received) == 1
    assert f"HTTP {status}" in str(caught.value)
    assert recorder.calls[0].error is not None and recorder.calls[0].attempts == 1


def test_unreadable_body_is_a_clear_error(server: FakeOpenAI) -> None:
    server.push(server.malformed_json())
    with pytest.raises(ProviderError, match="unreadable response"):
        asyncio.run(model(server).generate(ask()))
    assert len(server.received) == 1


def test_concurrency_is_bounded(server: FakeOpenAI) -> None:
    server.push(*(server.slow(0.1, f"a{i}") for i in range(10)))
    openai_model = model(server, max_concurrency=2, timeout_s=5)

    async def many() -> list[str]:
        responses = await asyncio.gather(*(openai_model.generate(ask(f"q{i}")) for i in range(10)))
        return [r.text for r in responses]

    assert sorted(asyncio.run(many())) == sorted(f"a{i}" for i in range(10))
    assert server.max_in_flight == 2


def test_model_works_across_event_loops(server: FakeOpenAI) -> None:
    openai_model = model(server)
    assert asyncio.run(openai_model.generate(ask())).text == "ok"
    assert asyncio.run(openai_model.generate(ask())).text == "ok"


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    recorder = MemoryRecorder()
    lazy = get_model("openai/gpt-4o", recorder=recorder)  # constructing needs no key
    with pytest.raises(ResynError, match=r"^OPENAI_API_KEY is not set: export it, or use --base-url"):
        asyncio.run(lazy.generate(ask()))
    assert recorder.calls[0].attempts == 0 and recorder.calls[0].error_type == "ResynError"


def test_official_endpoint_is_refused_while_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    lazy = get_model("openai/gpt-4o", api_key="sk-test")
    with pytest.raises(ResynError, match=r"refusing to call openai/gpt-4o at https://api\.openai\.com"):
        asyncio.run(lazy.generate(ask()))


def test_environment_base_url_and_key_are_honoured(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert asyncio.run(get_model("openai/local-llama").generate(ask())).text == "ok"
    assert server.received[0].headers["authorization"] == "Bearer sk-from-env"
    assert server.received[0].body["model"] == "local-llama"
