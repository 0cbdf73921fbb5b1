"""FIXTURES STANDING IN FOR THE OUTSIDE WORLD: fake model providers on 127.0.0.1.

``FakeOpenAI`` speaks just enough of the OpenAI Chat Completions API (``POST /v1/chat/completions``)
and ``FakeAnthropic`` of the Anthropic Messages API (``POST /v1/messages``) for the real ``openai`` and
``anthropic`` SDKs to talk to them. Each serves scripted ``Reply``s from a queue (a plain answer once
the queue is empty), records every request it received with its arrival time, counts requests in
flight, and can inject faults: a 429 with ``Retry-After``, a 5xx, a reply slower than the client's
timeout, a malformed JSON body, a dropped connection, a truncated or schema-breaking answer.

Nothing here is part of resyn. Every LLM test module calls ``offline_llm_env`` from an autouse
fixture to keep the real providers out of reach (see ``resyn.llm.guard``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CREDENTIAL_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_CUSTOM_HEADERS",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CUSTOM_HEADERS",
    "RESYN_PRICES",
)
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def offline_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key, no real host: every provider variable unset or pointed at a dead loopback port."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", NOWHERE + "/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", NOWHERE)
    monkeypatch.setenv("RESYN_LLM_OFFLINE", "1")


@dataclass
class Reply:
    """One scripted answer. ``body`` is JSON (a dict) or raw bytes; ``delay_s`` waits before
    answering; ``drop`` closes the connection without a response."""

    status: int = 200
    body: dict[str, Any] | bytes = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False


@dataclass
class Received:
    """A request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    """``time.monotonic()`` on arrival."""


class FakeServer:
    """Base of the fake providers: a ThreadingHTTPServer on 127.0.0.1, port 0, in a thread."""

    path = "/"

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        """Answers from the request body once the queue is empty (for concurrent callers, whose
        order a queue cannot predict)."""
        self.latency_s = 0.0
        """Added to every reply: a fixed per-call latency for benchmarks."""
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    # -- scripting ---------------------------------------------------------------------------
    def default_reply(self, body: dict[str, Any]) -> Reply:
        return Reply(body=self.answer("ok"))

    def answer(self, text: str, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def rate_limited(self, retry_after: str = "0.3", header: str = "retry-after") -> Reply:
        return Reply(
            status=429, body=self.error_body("rate_limit_error", "slow down"), headers={header: retry_after}
        )

    def server_error(self, status: int = 500) -> Reply:
        return Reply(status=status, body=self.error_body("api_error", "internal error"))

    def client_error(self, status: int, message: str = "bad request") -> Reply:
        return Reply(status=status, body=self.error_body("invalid_request_error", message))

    def slow(self, delay_s: float, text: str = "late") -> Reply:
        return Reply(body=self.answer(text), delay_s=delay_s)

    def malformed_json(self) -> Reply:
        return Reply(body=b'{"id": "x", "choices": [ {"trunc')

    def dropped(self) -> Reply:
        return Reply(drop=True)

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        return {"error": {"type": kind, "message": message}}

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.received]

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_unparsed": raw.decode(errors="replace")}
        with self._lock:
            self.received.append(
                Received(
                    handler.path, {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic()
                )
            )
            if self.replies:
                reply = self.replies.popleft()
            elif self.responder is not None:
                reply = self.responder(body)
            else:
                reply = self.default_reply(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if handler.path != self.path:
                reply = Reply(status=404, body=self.error_body("not_found_error", f"no route {handler.path}"))
            if reply.delay_s or self.latency_s:
                self._stopping.wait(reply.delay_s + self.latency_s)
            if reply.drop:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            handler.send_response(reply.status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up (timeout): nothing to answer
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                server._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


class FakeOpenAI(FakeServer):
    """An OpenAI-compatible Chat Completions endpoint. Use ``url + "/v1"`` as the base URL."""

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def answer(
        self,
        text: str | None,
        *,
        finish_reason: str = "stop",
        model: str = "gpt-4o-mini-2024-07-18",
        prompt_tokens: int = 11,
        completion_tokens: int = 7,
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def truncated(self, text: str = "The answer is") -> Reply:
        return Reply(body=self.answer(text, finish_reason="length"))


class FakeAnthropic(FakeServer):
    """An Anthropic-compatible Messages endpoint. Use ``url`` as the base URL."""

    path = "/v1/messages"

    @property
    def base_url(self) -> str:
        return self.url

    def error_body(self, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}

    def answer(
        self,
        text: str | None,
        *,
        stop_reason: str = "end_turn",
        tool: tuple[str, dict[str, Any]] | None = None,
        model: str = "claude-sonnet-4-20250514",
        input_tokens: int = 13,
        output_tokens: int = 5,
    ) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if text is not None:
            content.append({"type": "text", "text": text})
        if tool is not None:
            content.append({"type": "tool_use", "id": "toolu_fake", "name": tool[0], "input": tool[1]})
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }

    def tool_answer(self, name: str, data: dict[str, Any]) -> Reply:
        return Reply(body=self.answer(None, stop_reason="tool_use", tool=(name, data)))

    def truncated(self, text: str = "The answer is") -> Reply:
        return Reply(body=self.answer(text, stop_reason="max_tokens"))
