"""The provider-independent parts of resyn.llm: model strings, requests and hashes, replay
transcripts, recording, pricing, Retry-After parsing and the offline guard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from resyn.errors import ResynError
from resyn.llm import (
    JsonlRecorder,
    LLMRequest,
    MemoryRecorder,
    Message,
    OpenAIModel,
    ReplayMissError,
    ReplayModel,
    StructuredOutputError,
    TeeRecorder,
    TranscriptEntry,
    estimate_cost,
    get_model,
    parse_model_string,
    register_price,
    write_transcript,
)
from resyn.llm.guard import check_endpoint
from resyn.llm.pricing import find_price
from resyn.llm.retry import retry_after_seconds
from tests.llm_servers import FakeOpenAI, Reply, offline_llm_env


class Verdict(BaseModel):
    score: float


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    offline_llm_env(monkeypatch)


def ask(text: str = "What is 2+2?", **kwargs: object) -> LLMRequest:
    fields: dict[str, object] = {"template": "demo", "max_tokens": 64} | kwargs
    return LLMRequest.build(text, **fields)  # type: ignore[arg-type]


# -- model strings ------------------------------------------------------------------------------


def test_model_strings() -> None:
    assert parse_model_string("openai/gpt-4o") == ("openai", "gpt-4o")
    assert parse_model_string("openai/meta-llama/Llama-3.1-8B") == ("openai", "meta-llama/Llama-3.1-8B")
    assert parse_model_string("replay//abs/run.jsonl") == ("replay", "/abs/run.jsonl")
    assert isinstance(get_model("openai/gpt-4o"), OpenAIModel)  # no key needed to construct
    assert get_model("anthropic/claude-sonnet-4").spec == "anthropic/claude-sonnet-4"
    assert isinstance(get_model("replay/runs/x.jsonl"), ReplayModel)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "foo/bar",
            "unknown provider 'foo' in 'foo/bar': use openai/<model>, anthropic/<model> or replay/<path>",
        ),
        ("gpt-4o", "malformed model 'gpt-4o': use openai/<model>"),
        ("openai/", "malformed model 'openai/'"),
        ("/gpt-4o", "malformed model '/gpt-4o'"),
        (" openai/gpt-4o", "malformed model"),
    ],
)
def test_malformed_model_strings(spec: str, message: str) -> None:
    with pytest.raises(ResynError) as caught:
        get_model(spec)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_replay_takes_no_base_url() -> None:
    with pytest.raises(ResynError, match="drop --base-url"):
        get_model("replay/x.jsonl", base_url="http://127.0.0.1:1")


# -- requests -------------------------------------------------------------------------------------


def test_request_validation() -> None:
    with pytest.raises(ValidationError, match="last message must be a user message"):
        LLMRequest(messages=(Message(role="assistant", content="hi"),), template="t", max_tokens=1)
    with pytest.raises(ValidationError, match="system message may only come first"):
        LLMRequest(
            messages=(Message(role="user", content="a"), Message(role="system", content="b")),
            template="t",
            max_tokens=1,
        )
    with pytest.raises(ValidationError):
        ask(max_tokens=0)
    with pytest.raises(ValidationError):
        ask(purpose="Not A Label")


def test_prompt_hash_covers_prompt_and_parameters_only() -> None:
    base = ask()
    assert base.prompt_sha256() == ask(template="other", purpose="judge", tags={"run": "x"}).prompt_sha256()
    variants = [ask("What is 3+3?"), ask(max_tokens=65), ask(temperature=0.0), ask(output=Verdict)]
    assert len({base.prompt_sha256(), *(v.prompt_sha256() for v in variants)}) == 5
    structured = ask(output=Verdict)
    assert structured.output_schema == Verdict.model_json_schema() and structured.output_name == "Verdict"
    dumped = structured.model_dump(mode="json")
    assert "output_model" not in dumped and dumped["output_schema"]["title"] == "Verdict"


# -- replay -----------------------------------------------------------------------------------


def test_replay_answers_recorded_requests_and_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    judged = ask("grade it", output=Verdict, template="judge")
    write_transcript(
        path,
        [
            TranscriptEntry.for_request(
                ask(), "4", tokens_in=5, tokens_out=1, resolved_model="gpt-4o-2024-08-06"
            ),
            TranscriptEntry.for_request(ask(), "four"),
            TranscriptEntry.for_request(judged, '{"score": 1}'),
            TranscriptEntry.for_request(ask("failed"), "x", error="HTTP 500"),
        ],
    )
    recorder = MemoryRecorder()
    replay = get_model(f"replay/{path}", recorder=recorder)

    async def run() -> list[str]:
        return [(await replay.generate(ask(template="t2"))).text for _ in range(3)]

    assert asyncio.run(run()) == ["4", "four", "4"]  # in file order, then starting over
    first = recorder.calls[0]
    assert first.requested_model == f"replay/{path}" and first.resolved_model == "gpt-4o-2024-08-06"
    assert (first.tokens_in, first.cost_usd, first.attempts) == (5, 0.0, 0)
    assert asyncio.run(replay.generate(judged)).output(Verdict) == Verdict(score=1)

    with pytest.raises(
        ReplayMissError, match=r"no recorded answer for template 'solve' \(prompt sha256 [0-9a-f]{16}"
    ):
        asyncio.run(replay.generate(ask("something new", template="solve")))
    with pytest.raises(ReplayMissError):
        asyncio.run(replay.generate(ask("failed")))  # a failed call is not an answer
    assert recorder.calls[-1].error_type == "ReplayMissError"


def test_replay_structured_answer_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    request = ask(output=Verdict)
    write_transcript(path, [TranscriptEntry.for_request(request, '{"score": "x"}')])
    with pytest.raises(StructuredOutputError) as caught:
        asyncio.run(get_model(f"replay/{path}").generate(request))
    assert caught.value.raw == '{"score": "x"}'


def test_replay_bad_transcripts(tmp_path: Path) -> None:
    with pytest.raises(ResynError, match="cannot be read"):
        asyncio.run(get_model(f"replay/{tmp_path / 'missing.jsonl'}").generate(ask()))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no hash"}\n')
    with pytest.raises(ResynError, match="line 1 is not a transcript entry"):
        asyncio.run(get_model(f"replay/{bad}").generate(ask()))


def test_replay_match_lines_answer_by_template_and_tags(tmp_path: Path) -> None:
    """Hand-written lines name a template and tags instead of a hash; a hash line still wins."""
    path = tmp_path / "hand.jsonl"
    exact = ask("exact", template="write", tags={"keyword": "sudoku", "round": "1"})
    path.write_text(
        "\n".join(
            json.dumps(line)
            for line in [
                {"match": {"template": "write", "tags": {"keyword": "sudoku"}}, "text": "by match 1"},
                {"match": {"template": "write", "tags": {"keyword": "sudoku"}}, "text": "by match 2"},
                {"prompt_sha256": exact.prompt_sha256(), "text": "by hash"},
            ]
        )
    )
    replay = get_model(f"replay/{path}")

    async def run() -> list[str]:
        asks = [
            ask("anything", template="write", tags={"keyword": "sudoku", "round": "2", "call_id": "a"}),
            exact,
            ask("else", template="write", tags={"keyword": "sudoku"}),
        ]
        return [(await replay.generate(request)).text for request in asks]

    assert asyncio.run(run()) == ["by match 1", "by hash", "by match 2"]
    with pytest.raises(ReplayMissError):  # other tags, other template: no answer
        asyncio.run(replay.generate(ask("x", template="write", tags={"keyword": "chess"})))
    with pytest.raises(ReplayMissError):
        asyncio.run(replay.generate(ask("x", template="judge", tags={"keyword": "sudoku"})))
    both = tmp_path / "both.jsonl"
    both.write_text(json.dumps({"prompt_sha256": "ab", "match": {"template": "t"}, "text": "x"}) + "\n")
    with pytest.raises(ResynError, match="line 1 is not a transcript entry"):
        asyncio.run(get_model(f"replay/{both}").generate(ask()))


def test_recorded_run_replays_offline(tmp_path: Path) -> None:
    """A JsonlRecorder file of a real (here: fake-server) run is a replay transcript as it stands."""
    log = tmp_path / "calls.jsonl"
    memory = MemoryRecorder()
    with FakeOpenAI() as server:
        server.push(*(Reply(body=server.answer(f"answer {i}")) for i in range(3)))
        live = get_model(
            "openai/gpt-4o-mini", base_url=server.base_url, recorder=TeeRecorder(JsonlRecorder(log), memory)
        )

        async def run() -> list[str]:
            return [(await live.generate(ask(f"q{i}"))).text for i in range(3)]

        answers = asyncio.run(run())
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 3 and lines[0]["request"]["messages"][0]["content"] == "q0"
    assert [c.text for c in memory.calls] == answers
    replay = get_model(f"replay/{log}")

    async def again() -> list[str]:
        return [(await replay.generate(ask(f"q{i}"))).text for i in range(3)]

    assert asyncio.run(again()) == answers


# -- pricing ------------------------------------------------------------------------------------


def test_pricing_table_snapshots_and_unknown_models() -> None:
    assert find_price("claude-sonnet-4-20250514") == find_price("claude-sonnet-4")
    assert find_price("gpt-4o-mini-2024-07-18") == find_price("gpt-4o-mini") != find_price("gpt-4o")
    assert estimate_cost(1_000_000, 1_000_000, "gpt-4o") == pytest.approx(12.5)
    assert estimate_cost(10, 10, "llama-3.1-8b-instruct") is None  # unknown model: no cost, no error
    assert estimate_cost(None, 10, "gpt-4o") is None
    assert estimate_cost(10, 10, "served-name", "gpt-4o") is not None  # falls back to the requested name


def test_pricing_extensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[my-finetune]\ninput = 1.0\noutput = 2.0\n\n[gpt-4o]\ninput = 0.0\noutput = 0.0\n")
    monkeypatch.setenv("RESYN_PRICES", str(prices))
    assert estimate_cost(1_000_000, 1_000_000, "my-finetune") == pytest.approx(3.0)
    assert estimate_cost(1_000_000, 1_000_000, "gpt-4o") == 0.0
    register_price("my-local-model", input_per_mtok=0.5, output_per_mtok=0.5)
    assert estimate_cost(2_000_000, 0, "my-local-model") == pytest.approx(1.0)
    broken = tmp_path / "broken.json"
    broken.write_text('{"m": {"input": "cheap"}}')
    monkeypatch.setenv("RESYN_PRICES", str(broken))
    with pytest.raises(ResynError, match=r"RESYN_PRICES=.*make it a JSON or TOML map"):
        estimate_cost(1, 1, "m")


# -- retry-after and the guard ------------------------------------------------------------------


def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_guard_refuses_real_endpoints_offline() -> None:
    check_endpoint("http://127.0.0.1:8000/v1", "openai/x")
    check_endpoint("http://localhost:11434/v1", "openai/x")
    for url in ("https://api.openai.com/v1", "https://api.anthropic.com", "http://10.0.0.5:8000"):
        with pytest.raises(ResynError, match="refusing to call"):
            check_endpoint(url, "openai/x")


def test_jsonl_recorder_ends_a_line_torn_by_a_kill(tmp_path: Path) -> None:
    """A run killed mid-append leaves a line without its newline; the next session's records must
    not be glued onto it."""
    log = tmp_path / "calls.jsonl"
    log.write_text('{"prompt_sha256": "a", "text": "x"}\n{"prompt_sha25')
    recorder = JsonlRecorder(log)
    memory = MemoryRecorder()
    replay = get_model(f"replay/{tmp_path / 'none.jsonl'}", recorder=TeeRecorder(recorder, memory))
    with pytest.raises(ResynError):
        asyncio.run(replay.generate(ask()))
    lines = log.read_text().splitlines()
    assert lines[1] == '{"prompt_sha25' and json.loads(lines[2])["error_type"] == "ResynError"
