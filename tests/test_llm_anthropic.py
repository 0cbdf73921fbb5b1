"""anthropic/<model> through the real anthropic SDK against the loopback fake server
(tests/llm_servers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from resyn.errors import ResynError
from resyn.llm import (
    AnthropicModel,
    LLMRequest,
    LLMSettings,
    MemoryRecorder,
    ProviderError,
    StructuredOutputError,
    get_model,
)
from tests.llm_servers import FakeAnthropic, Reply, offline_llm_env

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
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def model(server: FakeAnthropic, recorder: MemoryRecorder | None = None, **settings: float) -> AnthropicModel:
    built = get_model(
        "anthropic/claude-sonnet-4",
        base_url=server.base_url,
        api_key="sk-ant-test",
        settings=FAST.model_copy(update=settings),
        recorder=recorder,
    )
    assert isinstance(built, AnthropicModel)
    return built


def ask(text: str = "What is 2+2?", **kwargs: object) -> LLMRequest:
    fields: dict[str, object] = {"template": "demo", "max_tokens": 64, "system": "Be brief."} | kwargs
    return LLMRequest.build(text, **fields)  # type: ignore[arg-type]


def sent_key(headers: dict[str, str]) -> str:
    """The key as the SDK sent it (``x-api-key``, or ``authorization: Bearer`` in newer SDKs)."""
    return headers.get("x-api-key") or headers.get("authorization", "")


def test_plain_text_answer_and_record(server: FakeAnthropic) -> None:
    server.push(Reply(body=server.answer("4", input_tokens=1000, output_tokens=100)))
    recorder = MemoryRecorder()
    response = asyncio.run(model(server, recorder).generate(ask(purpose="writer")))
    assert response.text == "4"
    assert response.finish_reason == "stop" and response.raw_finish_reason == "end_turn"
    assert (response.tokens_in, response.tokens_out) == (1000, 100)
    assert response.model == "claude-sonnet-4-20250514"
    assert response.cost_usd == pytest.approx((1000 * 3 + 100 * 15) / 1e6)

    (sent,) = server.received
    assert sent.path == "/v1/messages" and "sk-ant-test" in sent_key(sent.headers)
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert sent.body["max_tokens"] == 64 and sent.body["model"] == "claude-sonnet-4"
    assert "tools" not in sent.body and "temperature" not in sent.body

    (call,) = recorder.calls
    assert call.purpose == "writer" and call.resolved_model == "claude-sonnet-4-20250514"
    assert call.cost_usd == response.cost_usd and call.attempts == 1


def test_temperature_is_sent_when_set(server: FakeAnthropic) -> None:
    asyncio.run(model(server).generate(ask(temperature=0.7)))
    assert server.received[0].body["temperature"] == 0.7


def test_structured_output_forces_a_single_tool(server: FakeAnthropic) -> None:
    server.push(server.tool_answer("Verdict", {"score": 1.0, "reason": "correct"}))
    response = asyncio.run(model(server).generate(ask(output=Verdict, purpose="judge")))
    assert response.output(Verdict) == Verdict(score=1.0, reason="correct")
    assert response.finish_reason == "stop" and response.raw_finish_reason == "tool_use"
    body = server.received[0].body
    (tool,) = body["tools"]
    assert tool["name"] == "Verdict" and tool["input_schema"] == Verdict.model_json_schema()
    assert body["tool_choice"] == {"type": "tool", "name": "Verdict"}


def test_malformed_structured_answer_raises_with_raw_text(server: FakeAnthropic) -> None:
    server.push(
        server.tool_answer("Verdict", {"score": "high"}),
        Reply(body=server.answer("I refuse to use tools.")),
    )
    recorder = MemoryRecorder()
    anthropic_model = model(server, recorder)
    with pytest.raises(StructuredOutputError, match="does not match Verdict") as caught:
        asyncio.run(anthropic_model.generate(ask(output=Verdict)))
    assert caught.value.raw == '{"score": "high"}'
    with pytest.raises(StructuredOutputError, match="is not JSON") as no_tool:
        asyncio.run(anthropic_model.generate(ask(output=Verdict)))
    assert no_tool.value.raw == "I refuse to use tools."
    assert len(server.received) == 2
    assert [c.error_type for c in recorder.calls] == ["StructuredOutputError"] * 2


def test_truncated_answer_is_reported_not_raised(server: FakeAnthropic) -> None:
    server.push(server.truncated("The answer is"))
    response = asyncio.run(model(server).generate(ask()))
    assert response.finish_reason == "length" and response.raw_finish_reason == "max_tokens"


def test_429_with_retry_after_then_overloaded(server: FakeAnthropic) -> None:
    server.push(server.rate_limited("0.3"), server.server_error(529))
    response = asyncio.run(model(server).generate(ask()))
    assert response.attempts == 3
    first, second, _ = (r.at for r in server.received)
    assert second - first >= 0.25


@pytest.mark.parametrize("fault", ["slow", "dropped"])
def test_transport_faults_are_retried(server: FakeAnthropic, fault: str) -> None:
    server.push(server.slow(3.0) if fault == "slow" else server.dropped())
    response = asyncio.run(model(server).generate(ask()))
    assert response.text == "ok" and response.attempts == 2


def test_attempts_are_bounded(server: FakeAnthropic) -> None:
    server.push(*(server.dropped() for _ in range(5)))
    with pytest.raises(ProviderError, match=r"connection failed.*gave up after 3 attempts") as caught:
        asyncio.run(model(server).generate(ask()))
    assert caught.value.transient and len(server.received) == 3


@pytest.mark.parametrize("status", [400, 401])
def test_client_errors_are_not_retried(server: FakeAnthropic, status: int) -> None:
    server.push(server.client_error(status, "invalid x-api-key"))
    with pytest.raises(ProviderError, match=f"HTTP {status} invalid x-api-key") as caught:
        asyncio.run(model(server).generate(ask()))
    assert caught.value.attempts == 1 and len(server.received) == 1


def test_unreadable_body_is_a_clear_error(server: FakeAnthropic) -> None:
    server.push(server.malformed_json())
    with pytest.raises(ProviderError, match="unreadable response"):
        asyncio.run(model(server).generate(ask()))


def test_concurrency_is_bounded(server: FakeAnthropic) -> None:
    server.push(*(server.slow(0.1) for _ in range(10)))
    anthropic_model = model(server, max_concurrency=2, timeout_s=5)

    async def many() -> None:
        await asyncio.gather(*(anthropic_model.generate(ask(f"q{i}")) for i in range(10)))

    asyncio.run(many())
    assert server.max_in_flight == 2 and len(server.received) == 10


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    lazy = get_model("anthropic/claude-sonnet-4")
    with pytest.raises(ResynError, match=r"^ANTHROPIC_API_KEY is not set: export it"):
        asyncio.run(lazy.generate(ask()))


def test_environment_base_url_and_key_are_honoured(
    server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    assert asyncio.run(get_model("anthropic/claude-haiku-4-5").generate(ask())).text == "ok"
    assert "sk-ant-env" in sent_key(server.received[0].headers)
