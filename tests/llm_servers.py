"""FIXTURES STANDING IN FOR THE OUTSIDE WORLD: fake model providers on 127.0.0.1.

``FakeOpenAI`` speaks just enough of the OpenAI Chat Completions API (``POST /v1/chat/completions``)
and ``FakeAnthropic`` of the Anthropic Messages API (``POST /v1/messages``) for the real ``openai`` and
``anthropic`` SDKs to talk to them. Each serves scripted ``Reply``s from a queue (a plain answer once
the queue is empty), records every request it received with its arrival time, counts requests in
flight, and can inject faults: a 429 with ``Retry-After``, a 5xx, a reply slower than the client's
timeout, a malformed JSON body, a dropped connection, a truncated or schema-breaking answer.

Both also speak their provider's batch API — ``FakeOpenAI`` the Batch API (``POST /v1/files``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``,
``GET /v1/files/{id}/content``), ``FakeAnthropic`` Message Batches (``POST /v1/messages/batches``,
``GET /v1/messages/batches/{id}``, ``…/results``, ``…/cancel``). A batch stays in progress until it
has been polled ``batch_polls`` times and ``batch_delay_s`` have passed; then each of its lines is
answered by the same queue / responder / default as a direct call, in line order, and the results
are written in reverse order (the providers promise no order: results are matched by
``custom_id``). Faults: ``batch_outcome`` (``"expired"``; OpenAI also ``"failed"``) ends every
batch that way; a ``Reply`` with ``batch_result="expired"``/``"canceled"`` ends its line that way;
a ``dropped()`` reply leaves its line out of the results; an error reply becomes an errored line;
``fault(route, *replies)`` answers the next requests to a batch endpoint (``upload``, ``create``,
``poll``, ``download``, ``cancel``) with those replies instead (a 500, a 429, a dropped connection).

Nothing here is part of resyn. Every LLM test module calls ``offline_llm_env`` from an autouse
fixture to keep the real providers out of reach (see ``resyn.llm.guard``).
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

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
    batch_result: str | None = None
    """In a batch only: ``"expired"`` or ``"canceled"`` ends the line that way instead of answering."""


@dataclass
class Received:
    """A request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    """``time.monotonic()`` on arrival."""


@dataclass
class FakeBatch:
    """A batch as the fake server holds it."""

    id: str
    lines: list[dict[str, Any]]
    """The submitted lines: OpenAI ``{custom_id, method, url, body}``, Anthropic
    ``{custom_id, params}``."""
    created: float = field(default_factory=time.monotonic)
    polls: int = 0
    cancelled: bool = False
    ended: bool = False
    status: str = "in_progress"
    results: list[dict[str, Any]] = field(default_factory=list)
    """Result lines once ended (OpenAI: the output file; Anthropic: the results file)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """OpenAI's error file lines once ended."""

    @property
    def custom_ids(self) -> list[str]:
        return [line["custom_id"] for line in self.lines]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The request bodies of the lines, in order."""
        return [line.get("body", line.get("params", {})) for line in self.lines]


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
        self.batches: dict[str, FakeBatch] = {}
        """Every batch created, by id, in creation order."""
        self.batch_polls = 1
        """A batch ends on its ``batch_polls``-th poll (and not before ``batch_delay_s``)."""
        self.batch_delay_s = 0.0
        self.batch_outcome: str | None = None
        """``"expired"`` (OpenAI also ``"failed"``): how every batch ends instead of answering."""
        self.route_faults: dict[str, deque[Reply]] = {}
        self._ids = itertools.count(1)
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

    def fault(self, route: str, *replies: Reply) -> None:
        """Answer the next requests to a batch endpoint (``upload``, ``create``, ``poll``,
        ``download``, ``cancel``) with ``replies`` instead of serving them."""
        self.route_faults.setdefault(route, deque()).extend(replies)

    def expired_line(self) -> Reply:
        return Reply(batch_result="expired")

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

    def received_on(self, path: str) -> list[Received]:
        """The requests whose path (without query) is ``path``."""
        return [r for r in self.received if urlsplit(r.path).path == path]

    @property
    def batch(self) -> FakeBatch:
        """The only batch created (a test that expects exactly one)."""
        (only,) = self.batches.values()
        return only

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

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        """The answer to a model request (direct or a batch line): the queue, else the responder,
        else the default. Called with the lock held."""
        if self.replies:
            return self.replies.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.default_reply(body)

    def _decode(self, raw: bytes, content_type: str) -> dict[str, Any]:
        if content_type.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"content-type: {content_type}\r\n\r\n".encode() + raw
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = payload.decode()
            return fields
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return {"_unparsed": raw.decode(errors="replace")}

    def _route(self, method: str, path: str) -> tuple[str, str] | None:
        """``(route, id)`` of a batch endpoint, ``None`` for anything else."""
        return None

    def _batch_endpoint(self, route: str, batch_id: str, body: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def _advance(self, batch: FakeBatch) -> None:
        """Count a poll; end the batch once it has been polled and waited for enough."""
        batch.polls += 1
        if batch.ended:
            return
        due = batch.polls >= self.batch_polls and time.monotonic() - batch.created >= self.batch_delay_s
        if batch.cancelled or due:
            batch.ended = True
            self._finish(batch)

    def _finish(self, batch: FakeBatch) -> None:
        raise NotImplementedError

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        route = self._route(handler.command, urlsplit(handler.path).path)
        body = self._decode(raw, handler.headers.get("content-type") or "")
        with self._lock:
            self.received.append(
                Received(
                    handler.path, {k.lower(): v for k, v in handler.headers.items()}, body, time.monotonic()
                )
            )
            if route is not None:
                faults = self.route_faults.get(route[0])
                reply = faults.popleft() if faults else self._batch_endpoint(route[0], route[1], body)
            else:
                reply = self._next_reply(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if route is None and handler.path != self.path:
                reply = Reply(status=404, body=self.error_body("not_found_error", f"no route {handler.path}"))
            if reply.delay_s or self.latency_s:
                self._stopping.wait(reply.delay_s + self.latency_s)
            if reply.drop:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            handler.send_response(reply.status)
            handler.send_header("content-type", reply.headers.get("content-type", "application/json"))
            handler.send_header("content-length", str(len(payload)))
            for name, value in reply.headers.items():
                if name.lower() != "content-type":
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

            def do_GET(self) -> None:
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

    # -- the Batch API ---------------------------------------------------------------------------
    files: dict[str, bytes]

    def __init__(self) -> None:
        super().__init__()
        self.files = {}
        """Uploaded input files and written output/error files, by id."""

    def _route(self, method: str, path: str) -> tuple[str, str] | None:
        if method == "POST" and path == "/v1/files":
            return "upload", ""
        if method == "POST" and path == "/v1/batches":
            return "create", ""
        if match := re.fullmatch(r"/v1/batches/([^/]+)", path):
            return ("poll", match[1]) if method == "GET" else None
        if match := re.fullmatch(r"/v1/batches/([^/]+)/cancel", path):
            return ("cancel", match[1]) if method == "POST" else None
        if match := re.fullmatch(r"/v1/files/([^/]+)/content", path):
            return ("download", match[1]) if method == "GET" else None
        return None

    def _batch_endpoint(self, route: str, batch_id: str, body: dict[str, Any]) -> Reply:
        if route == "upload":
            file_id = self._new_id("file-")
            content = str(body.get("file", ""))
            self.files[file_id] = content.encode()
            return Reply(body=self._file(file_id, str(body.get("purpose")), len(content)))
        if route == "create":
            data = self.files.get(str(body.get("input_file_id")))
            if data is None:
                return self.client_error(400, "no such input file")
            lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
            batch = FakeBatch(id=self._new_id("batch_"), lines=lines)
            self.batches[batch.id] = batch
            return Reply(body=self._batch(batch, body))
        if route == "download":
            if batch_id not in self.files:
                return self.client_error(404, f"no file {batch_id}")
            return Reply(body=self.files[batch_id], headers={"content-type": "application/octet-stream"})
        batch = self.batches.get(batch_id)
        if batch is None:
            return self.client_error(404, f"no batch {batch_id}")
        if route == "cancel":
            batch.cancelled = True
            if not batch.ended:
                batch.status = "cancelling"
        else:
            self._advance(batch)
        return Reply(body=self._batch(batch))

    def _finish(self, batch: FakeBatch) -> None:
        if batch.cancelled:
            batch.status = "cancelled"
            return
        if self.batch_outcome == "failed":
            batch.status = "failed"
            return
        for line in batch.lines:
            custom_id = line["custom_id"]
            reply = Reply(batch_result="expired") if self.batch_outcome == "expired" else None
            reply = reply or self._next_reply(line["body"])
            if reply.drop:
                continue
            if reply.batch_result is not None:
                code = "batch_expired" if reply.batch_result == "expired" else "batch_cancelled"
                error = {"code": code, "message": f"This request was not executed ({reply.batch_result})."}
                batch.errors.append(
                    {"id": "batch_req_x", "custom_id": custom_id, "response": None, "error": error}
                )
                continue
            ok = reply.status == 200 and isinstance(reply.body, dict)
            status = reply.status if not isinstance(reply.body, bytes) else 500
            response = {
                "status_code": status,
                "request_id": "req_fake",
                "body": reply.body
                if isinstance(reply.body, dict)
                else self.error_body("api_error", "bad body"),
            }
            entry = {"id": "batch_req_x", "custom_id": custom_id, "response": response, "error": None}
            (batch.results if ok else batch.errors).insert(0, entry)
        batch.status = "expired" if self.batch_outcome == "expired" else "completed"

    def _file(self, file_id: str, purpose: str, size: int) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": 1_700_000_000,
            "filename": "batch.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _batch(self, batch: FakeBatch, create: dict[str, Any] | None = None) -> dict[str, Any]:
        files: dict[str, str | None] = {"output_file_id": None, "error_file_id": None}
        if batch.ended:
            for key, lines in (("output_file_id", batch.results), ("error_file_id", batch.errors)):
                if lines:
                    file_id = f"file-{key[:3]}-{batch.id}"
                    self.files[file_id] = "".join(json.dumps(line) + "\n" for line in lines).encode()
                    files[key] = file_id
        errors = None
        if batch.status == "failed":
            message = "fake failure: the input file is invalid"
            errors = {"object": "list", "data": [{"code": "invalid_file", "message": message, "line": None}]}
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": errors,
            "input_file_id": "file-in",
            "completion_window": "24h",
            "status": batch.status,
            "created_at": 1_700_000_000,
            "metadata": (create or {}).get("metadata"),
            "request_counts": {
                "total": len(batch.lines),
                "completed": len(batch.results),
                "failed": len(batch.errors),
            },
            **files,
        }


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

    # -- Message Batches -------------------------------------------------------------------------
    def _route(self, method: str, path: str) -> tuple[str, str] | None:
        if method == "POST" and path == "/v1/messages/batches":
            return "create", ""
        if match := re.fullmatch(r"/v1/messages/batches/([^/]+)", path):
            return ("poll", match[1]) if method == "GET" else None
        if match := re.fullmatch(r"/v1/messages/batches/([^/]+)/results", path):
            return ("download", match[1]) if method == "GET" else None
        if match := re.fullmatch(r"/v1/messages/batches/([^/]+)/cancel", path):
            return ("cancel", match[1]) if method == "POST" else None
        return None

    def _batch_endpoint(self, route: str, batch_id: str, body: dict[str, Any]) -> Reply:
        if route == "create":
            batch = FakeBatch(id=self._new_id("msgbatch_"), lines=list(body.get("requests", [])))
            self.batches[batch.id] = batch
            return Reply(body=self._batch(batch))
        batch = self.batches.get(batch_id)
        if batch is None:
            return self.client_error(404, f"no batch {batch_id}")
        if route == "download":
            if not batch.ended:
                return self.client_error(400, "the batch has not ended")
            payload = "".join(json.dumps(line) + "\n" for line in batch.results).encode()
            return Reply(body=payload, headers={"content-type": "application/binary"})
        if route == "cancel":
            batch.cancelled = True
        else:
            self._advance(batch)
        return Reply(body=self._batch(batch))

    def _finish(self, batch: FakeBatch) -> None:
        for line in batch.lines:
            if batch.cancelled:
                reply = Reply(batch_result="canceled")
            elif self.batch_outcome == "expired":
                reply = Reply(batch_result="expired")
            else:
                reply = self._next_reply(line["params"])
            if reply.drop:
                continue
            result: dict[str, Any]
            if reply.batch_result is not None:
                result = {"type": reply.batch_result}
            elif reply.status == 200 and isinstance(reply.body, dict):
                result = {"type": "succeeded", "message": reply.body}
            else:
                error = (
                    reply.body if isinstance(reply.body, dict) else self.error_body("api_error", "bad body")
                )
                result = {"type": "errored", "error": error}
            batch.results.insert(0, {"custom_id": line["custom_id"], "result": result})
        batch.status = "ended"

    def _batch(self, batch: FakeBatch) -> dict[str, Any]:
        created = datetime(2025, 1, 1, tzinfo=UTC)
        counts = {"processing": 0 if batch.ended else len(batch.lines)}
        for kind in ("succeeded", "errored", "canceled", "expired"):
            counts[kind] = sum(1 for line in batch.results if line["result"]["type"] == kind)
        status = "ended" if batch.ended else "canceling" if batch.cancelled else "in_progress"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": created.isoformat(),
            "expires_at": (created + timedelta(days=1)).isoformat(),
            "ended_at": created.isoformat() if batch.ended else None,
            "archived_at": None,
            "cancel_initiated_at": created.isoformat() if batch.cancelled else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if batch.ended else None,
        }
