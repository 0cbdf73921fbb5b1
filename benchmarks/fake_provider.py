"""A loopback fake of the OpenAI Chat Completions API that plays a perfect writer and judge.

Every ``write`` (or ``revise``) request gets the bundled base-conversion module
(``resyn/demo/answers/base_conversion.write.md``, which passes every check) with its environment
name made distinct per keyword; every ``judge`` request gets the bundled accepting verdict. Each
answer waits a fixed ``latency_s`` first, standing in for a real model's generation time. Requests
are recorded (kind, keyword, arrival and answer times), so a caller can count calls per keyword.

Nothing here is part of resyn, and it needs no pytest: it serves the synthesis benchmark
(``benchmarks/synthesis_throughput.py``) in a thread, the crash test, and can run on its own:

    .venv/bin/python benchmarks/fake_provider.py --latency 2 --port-file /tmp/port
    # then: RESYN_LLM_OFFLINE=1 resyn synthesize K1 K2 --model openai/fake --base-url http://127.0.0.1:PORT/v1

It listens on 127.0.0.1 only, and as a process it stops by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ANSWERS = Path(__file__).resolve().parents[1] / "resyn" / "demo" / "answers"
GOOD_WRITE = (ANSWERS / "base_conversion.write.md").read_text(encoding="utf-8")
ACCEPT_VERDICT: dict[str, Any] = json.loads((ANSWERS / "base_conversion.verdict.json").read_text())
_NAME_LINE = 'name = "base_conversion"'
assert _NAME_LINE in GOOD_WRITE, "the bundled answer changed: update benchmarks/fake_provider.py"

_WRITE_KEYWORD = re.compile(r"^Write an environment for this keyword: (.+)$", re.MULTILINE)
_KEYWORD_LINE = re.compile(r"^Keyword: (.+)$", re.MULTILINE)  # judge and revise prompts
_QUESTION_LINE = "            f\"The number {written} is written in base {instance['source']} \"\n"
_FLAVOUR_AT = "\n\nclass BaseConversion(Environment):"
assert _QUESTION_LINE in GOOD_WRITE and _FLAVOUR_AT in GOOD_WRITE, "update benchmarks/fake_provider.py"
# Syllables of the made-up words.
_ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
           "gr", "st", "pl", "tr", "kl", "br", "sn"]  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u", "ou", "ia"]
_CODAS = ["x", "k", "n", "m", "r", "s", "t", "l", "sh"]


def env_name_for(keyword: str) -> str:
    """The environment name the fake writer gives ``keyword``'s module (a valid, distinct name)."""
    return "base_conversion_" + (re.sub(r"[^a-z0-9]+", "_", keyword.lower()).strip("_") or "x")


def _pseudo_words(keyword: str, count: int) -> list[str]:
    """Made-up words, the same for the same keyword in every process. Each has a letter beyond
    ``f``, so none can be read as a base-16 answer (the ``leak`` check)."""
    rng = random.Random(hashlib.sha256(keyword.encode()).digest())
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))
        word += rng.choice(_CODAS)
        if word not in words and re.search("[g-z]", word):
            words.append(word)
    return words


def write_answer(keyword: str) -> str:
    """The writer's answer for ``keyword``: the good module under a name of its own, made distinct
    enough for resyn's near-duplicate filter (``resyn.synth.similarity``), which would otherwise
    keep only the first keyword's copy: every question opens with a sentence of made-up words of
    this keyword (a question template of its own), and the module carries an unused helper that
    lists made-up attribute names (code shingles of its own). The checks' work is unchanged."""
    words = _pseudo_words(keyword, 130)
    story, attributes = " ".join(words[:30]).capitalize() + ".", words[30:]
    helper = (
        "\n\ndef _inventory(record: Any) -> list[Any]:\n"
        '    """Never called: it only makes this module\'s code its own."""\n'
        "    return [\n" + "".join(f"        record.{name},\n" for name in attributes) + "    ]\n"
    )
    return (
        GOOD_WRITE.replace(_NAME_LINE, f'name = "{env_name_for(keyword)}"')
        .replace(_QUESTION_LINE, f'            "{story}\\n"\n' + _QUESTION_LINE)
        .replace(_FLAVOUR_AT, helper + _FLAVOUR_AT)
    )


def verdict_answer() -> str:
    return json.dumps(ACCEPT_VERDICT)


def classify(body: dict[str, Any]) -> tuple[str, str]:
    """``(kind, keyword)`` of a chat completion request resyn sent: kind is ``write``, ``revise``,
    ``judge`` or ``other``."""
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
    if "response_format" in body:
        found = _KEYWORD_LINE.search(text)
        return "judge", found.group(1).strip() if found else ""
    found = _WRITE_KEYWORD.search(text)
    if found:
        return "write", found.group(1).strip()
    found = _KEYWORD_LINE.search(text)
    if found:
        return "revise", found.group(1).strip()
    return "other", ""


def completion(text: str, model: str) -> dict[str, Any]:
    """A Chat Completions response body holding ``text``."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 800, "total_tokens": 1800},
    }


@dataclass
class Request:
    """One request as the fake saw it (times are ``time.monotonic()``)."""

    kind: str
    keyword: str
    arrived: float
    answered: float | None = None


#: Decides the answer text of a request from ``(kind, keyword, body)``; may block (the crash
#: test holds a judge call until the client is killed) and may return ``None`` to drop the
#: connection without an answer.
Responder = Callable[[str, str, dict[str, Any]], "str | None"]


def default_responder(kind: str, keyword: str, body: dict[str, Any]) -> str | None:
    return verdict_answer() if kind == "judge" else write_answer(keyword)


class FakeProvider:
    """The fake server in a background thread: ``with FakeProvider(latency_s=2) as fake: fake.base_url``."""

    def __init__(self, *, latency_s: float = 0.0, port: int = 0, responder: Responder | None = None) -> None:
        self.latency_s = latency_s
        self.responder: Responder = responder or default_responder
        self.requests: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                server._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            # The default backlog of 5 drops SYNs when 32 clients connect at once, and the kernel
            # retries them only after a second: that would show up as fake latency.
            request_queue_size = 256

        self._httpd = Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``--base-url``."""
        return self.url + "/v1"

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, kind: str | None = None, keyword: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (kind is None or r.kind == kind) and (keyword is None or r.keyword == keyword)
            )

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        try:
            body = json.loads(handler.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = {}
        kind, keyword = classify(body)
        record = Request(kind, keyword, time.monotonic())
        with self.lock:
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if handler.path != "/v1/chat/completions":
                self._send(handler, 404, {"error": {"type": "not_found", "message": handler.path}})
                return
            if self.latency_s:
                self.stopping.wait(self.latency_s)
            text = self.responder(kind, keyword, body)
            if text is None or self.stopping.is_set():
                handler.close_connection = True
                return
            self._send(handler, 200, completion(text, str(body.get("model", "fake"))))
            record.answered = time.monotonic()
        except OSError:
            pass  # the client went away
        finally:
            with self.lock:
                self.in_flight -= 1

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here once listening")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop by itself after this long")
    args = parser.parse_args()
    fake = FakeProvider(latency_s=args.latency, port=args.port).start()
    print(f"fake OpenAI-compatible server at {fake.base_url} (latency {args.latency:g} s)", flush=True)
    if args.port_file:
        args.port_file.write_text(f"{fake.base_url.split(':')[-1].split('/')[0]}\n")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait(args.max_seconds)
    fake.stop()
    counts: dict[str, int] = {}
    for r in fake.requests:
        counts[r.kind] = counts.get(r.kind, 0) + 1
    print(json.dumps({"requests": counts, "max_in_flight": fake.max_in_flight}), flush=True)


if __name__ == "__main__":
    main()
