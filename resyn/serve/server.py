"""The reward server: HTTP in front of one :class:`~resyn.reward.RewardScorer`.

Endpoints: ``POST /get_reward`` (OpenRLHF's remote reward contract), ``POST /score`` (plain
batches of items), ``GET /health``. Built on the standard library's ``ThreadingHTTPServer``
(HTTP/1.1, keep-alive) rather than a framework: the scorer is synchronous and thread-safe, and it
merges the items of concurrent callers into worker batches per environment, so one thread per
connection calling it is all the concurrency scoring needs, and the work per request (parse,
validate, score, answer) is the scorer's own.

What it guarantees, and how:

* **Bounded memory.** At most ``max_queue`` scoring requests and ``max_queue_bytes`` of their
  bodies are admitted at once; admission is decided from ``Content-Length`` *before* the body is
  read, and a refused request gets 503 with ``Retry-After``. Bodies over ``max_body_bytes`` get
  413. Connections beyond ``max_connections`` get 503 and are closed.
* **Bounded waits.** A request not scored within ``request_timeout_s`` gets 504 (its items still
  end by the scorer's per-item deadlines, and hold their admission until they do, so a timeout
  never lets more work in than the bound). Idle or stalled connections close after
  ``idle_timeout_s``.
* **A request never fails for one bad row.** Items or labels that do not validate score 0 with a
  counted reason; only a body that is not the endpoint's JSON shape is a 400.
* **Clean shutdown** (:meth:`RewardServer.stop`): stop accepting, let requests in flight finish
  for ``drain_timeout_s``, answer the rest 503, close idle connections, close the scorer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

import resyn
from resyn.reward import RewardScorer, ScoreResult
from resyn.sandbox import probe
from resyn.serve.labels import LabelError, first_error, parse_label
from resyn.serve.models import (
    ErrorResponse,
    HealthResponse,
    OpenRLHFRequest,
    OpenRLHFResponse,
    RequestCounts,
    ScoreRequest,
    ScoreResponse,
    ServeConfig,
)

__all__ = ["RewardServer", "split_response"]

log = logging.getLogger(__name__)

#: Reasons that are the policy's doing (a wrong or unparseable answer), not the pipeline's.
_POLICY_REASONS = frozenset({"ok", "not_text", "empty", "too_long", "no_answer"})

#: Characters of the prompt's end looked for in a query that does not start with its prompt.
_PROMPT_TAIL = 64

#: A refused request's body is read and dropped up to this size (so the client, still sending,
#: reads our answer instead of a reset connection); beyond it the connection is closed.
_DISCARD_LIMIT = 8 << 20

_M = TypeVar("_M", bound=BaseModel)

_ROUTES: dict[str, str] = {"/get_reward": "POST", "/score": "POST", "/health": "GET"}


def split_response(query: str, prompt: str | None) -> tuple[str, bool]:
    """The response part of an OpenRLHF query (prompt + response), and whether the query did
    *not* start with the prompt.

    OpenRLHF builds queries by decoding prompt and response tokens, which can differ from the
    prompt text (a BOS token, whitespace). Then the response starts after the first occurrence
    of the prompt's last 64 characters; failing that, the whole query is scored (the answer is
    the response's last ``<answer>``, which comes after anything the prompt holds)."""
    if prompt is None or query.startswith(prompt):
        return query[len(prompt or "") :], False
    tail = prompt[-_PROMPT_TAIL:]
    for end in (tail, tail.strip()):  # decoding may have changed white space at the end
        at = query.find(end) if end else -1
        if at >= 0:
            return query[at + len(end) :], True
    return query, True


class _Admission:
    """Scoring requests and their body bytes admitted and not finished."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.bytes = 0
        self._cond = threading.Condition()

    def enter(self, size: int) -> bool:
        with self._cond:
            if self.requests >= self.max_requests or self.bytes + size > self.max_bytes:
                return False
            self.requests += 1
            self.bytes += size
            return True

    def leave(self, size: int) -> None:
        with self._cond:
            self.requests -= 1
            self.bytes -= size
            self._cond.notify_all()

    def wait_empty(self, until: float, hurry: threading.Event) -> bool:
        """Wait until nothing is admitted, ``until`` (monotonic) passes or ``hurry`` is set."""
        with self._cond:
            while self.requests and not hurry.is_set():
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            return self.requests == 0


class _Refused(Exception):
    """An answer other than 200, raised from inside a request's handling."""

    def __init__(self, status: HTTPStatus, message: str, counter: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.counter = counter
        self.retry_after = retry_after


_BUSY_BODY = ErrorResponse(error="too many connections (--max-connections): retry later").model_dump_json()
_TOO_MANY_CONNECTIONS = (
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    f"Connection: close\r\nContent-Length: {len(_BUSY_BODY)}\r\n\r\n{_BUSY_BODY}"
).encode()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck connection never keeps the process from exiting
    request_queue_size = 128  # listen backlog: bursts of reconnecting trainer workers

    def __init__(self, app: RewardServer, address: tuple[str, int]) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's fully qualified name (a DNS lookup that can
        # hang on a machine without a resolver); nothing here uses it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.app._connect(request):
            with contextlib.suppress(OSError):
                request.sendall(_TOO_MANY_CONNECTIONS)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; a dropped client is routine, anything else
        # is logged as one line (the traceback only at debug level).
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: trainers reuse connections
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall
    server_version = f"resyn-serve/{resyn.__version__}"
    sys_version = ""
    server: _HTTPServer
    _unread = 0  # body bytes of the current request not read yet

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.app.config.idle_timeout_s)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._disconnect(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # -- routing -------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        path = self.path.split("?", 1)[0]
        app._responding(1)  # until the answer is written: stop() waits for it
        try:
            # Whatever the answer, a body sent with it must be consumed (or the connection
            # closed), or it would be read as the next request.
            self._unread = self._content_length()
            allowed = _ROUTES.get(path)
            if allowed is None:
                raise _Refused(
                    HTTPStatus.NOT_FOUND,
                    f"no endpoint {path[:100]!r}: use POST /get_reward, POST /score or GET /health",
                    "not_found",
                )
            if method != allowed:
                raise _Refused(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"{path} takes {allowed}, not {method}",
                    "method_not_allowed",
                )
            if path == "/health":
                health = app.health()
                app._count("health")
                self._send(HTTPStatus.OK if health.status == "ok" else HTTPStatus.SERVICE_UNAVAILABLE, health)
                return
            self._score(app, path)
        except _Refused as refused:
            app._count(refused.counter)
            self._send(
                refused.status,
                ErrorResponse(error=str(refused)),
                allow=_ROUTES.get(path) if refused.status == HTTPStatus.METHOD_NOT_ALLOWED else None,
                retry_after=refused.retry_after,
            )
        except OSError:
            raise  # the client went away: socketserver closes the connection
        except Exception as exc:
            log.error("serve: internal error on %s %s: %s: %s", method, path, type(exc).__name__, exc)
            log.debug("serve: internal error", exc_info=True)
            app._count("internal_error")
            self.close_connection = True
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                ErrorResponse(error=f"internal error: {type(exc).__name__} (see the server's log)"),
            )
        finally:
            app._responding(-1)
            self._drop_unread_body()

    # -- scoring -------------------------------------------------------------------------------------
    def _score(self, app: RewardServer, path: str) -> None:
        size = self._body_size()
        if size > app.config.max_body_bytes:
            raise _Refused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body has {size} bytes; at most {app.config.max_body_bytes} "
                "(send smaller batches, or raise --max-body-mb)",
                "too_large",
            )
        if app.stopping:
            raise _Refused(
                HTTPStatus.SERVICE_UNAVAILABLE, "the server is shutting down", "shutting_down", retry_after=5
            )
        if not app._admission.enter(size):
            raise _Refused(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"busy: {app._admission.requests} requests queued (--max-queue {app.config.max_queue}); retry",
                "busy",
                retry_after=1,
            )
        released = False
        try:
            body = self.rfile.read(size)
            self._unread = 0
            if len(body) < size:
                self.close_connection = True
                return  # the client went away mid-body
            if path == "/get_reward":
                items, prompt_mismatch, invalid = _openrlhf_items(body)
            else:
                items, prompt_mismatch, invalid = _score_items(body), [], {}
            future = app._submit(items, size)
            released = True  # the future's callback releases the admission
            results = app._wait(future)
            for slot, detail in invalid.items():
                results[slot] = ScoreResult(0.0, "invalid_item", detail)
            app._scored(len(results), sum(prompt_mismatch))
            response: BaseModel
            if path == "/get_reward":
                response = _openrlhf_response(results, prompt_mismatch)
                app._count("get_reward")
            else:
                response = ScoreResponse(
                    scores=[r.score for r in results],
                    reasons=[r.reason for r in results],
                    details=[r.detail for r in results],
                )
                app._count("score")
            self._send(HTTPStatus.OK, response)
        finally:
            if not released:
                app._admission.leave(size)

    def _content_length(self) -> int:
        """The body's declared size (0 for none); an undelimited body closes the connection."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return -1
        raw = self.headers.get("Content-Length")
        try:
            size = int(raw) if raw is not None else 0
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
        return size

    def _body_size(self) -> int:
        if self._unread < 0:
            raise _Refused(
                HTTPStatus.LENGTH_REQUIRED,
                "send the JSON body with a Content-Length (not chunked)",
                "bad_request",
            )
        return self._unread

    def _drop_unread_body(self) -> None:
        """After an answer sent without reading the body: read and drop it (small), or close."""
        unread, self._unread = self._unread, 0
        if unread <= 0:
            return
        if unread > _DISCARD_LIMIT:
            self.close_connection = True
            return
        with contextlib.suppress(OSError):
            while unread > 0:
                chunk = self.rfile.read(min(unread, 1 << 16))
                if not chunk:
                    break
                unread -= len(chunk)

    def _send(
        self,
        status: HTTPStatus,
        body: BaseModel,
        *,
        allow: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        data = body.model_dump_json().encode()
        if self.server.app.stopping:
            self.close_connection = True
        if self._unread > _DISCARD_LIMIT:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if allow is not None:
            self.send_header("Allow", allow)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _openrlhf_items(body: bytes) -> tuple[list[dict[str, Any]], list[int], dict[int, str]]:
    """Items of an OpenRLHF request, which queries did not start with their prompt, and the
    labels that did not parse (slot → detail; those slots get a placeholder item)."""
    request = _parse(OpenRLHFRequest, body)
    prompts: Sequence[str | None] = (
        request.prompts if request.prompts is not None else [None] * len(request.query)
    )
    items: list[dict[str, Any]] = []
    mismatch: list[int] = []
    invalid: dict[int, str] = {}
    for slot, (query, prompt, label) in enumerate(zip(request.query, prompts, request.labels, strict=True)):
        response, off = split_response(query, prompt)
        mismatch.append(int(off))
        try:
            if label is None:
                raise LabelError("no label: the row needs a label from resyn.serve.label_for")
            fields = parse_label(label)
        except LabelError as exc:
            invalid[slot] = str(exc)
            items.append({})  # scores invalid_item in the scorer too; replaced by the detail above
            continue
        fields["completion"] = response
        items.append(fields)
    return items, mismatch, invalid


def _score_items(body: bytes) -> list[Any]:
    return _parse(ScoreRequest, body).items


def _parse(model: type[_M], body: bytes) -> _M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        text = first_error(exc, "body")
        hint = (
            '{"query": [...], "prompts": [...], "labels": [...]}'
            if model is OpenRLHFRequest
            else '{"items": [{"env_id": ..., "completion": ..., "instance_json": ...}, ...]}'
        )
        raise _Refused(
            HTTPStatus.BAD_REQUEST, f"bad request body: {text[:200]} (expected {hint})", "bad_request"
        ) from None


def _openrlhf_response(results: list[ScoreResult], mismatch: list[int]) -> OpenRLHFResponse:
    scores = [r.score for r in results]
    return OpenRLHFResponse(
        rewards=scores,
        scores=scores,
        extra_logs={
            "reward_pipeline_error": [0.0 if r.reason in _POLICY_REASONS else 1.0 for r in results],
            "reward_no_answer": [1.0 if r.reason == "no_answer" else 0.0 for r in results],
            "reward_prompt_mismatch": [float(m) for m in mismatch],
        },
    )


class RewardServer:
    """Serves one scorer over HTTP; see the module docstring. The server owns the scorer:
    :meth:`stop` closes it.

    >>> server = RewardServer(RewardScorer.from_catalog("runs/catalog.duckdb"), ServeConfig(port=0))  # doctest: +SKIP
    >>> server.start(); print(server.url)                                                         # doctest: +SKIP
    """

    def __init__(self, scorer: RewardScorer, config: ServeConfig | None = None) -> None:
        self.scorer = scorer
        self.config = config or ServeConfig()
        self.stopping = False
        self._admission = _Admission(self.config.max_queue, self.config.max_queue_bytes)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.config.max_queue, thread_name_prefix="resyn-serve-score"
        )
        self._abort: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._hurry = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._counts = RequestCounts()
        self._items = 0
        self._handling = 0  # requests whose answer is not written yet
        self._mismatches = 0
        self._started = time.monotonic()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Binding here (not in start) lets the caller report a port in use before anything runs.
        self._httpd = _HTTPServer(self, (self.config.host, self.config.port))

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def start(self) -> RewardServer:
        """Serve in a background thread; returns at once."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="resyn-serve", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> RewardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def hurry(self) -> None:
        """Cut a running :meth:`stop`'s drain short (a second signal). Safe from a signal handler."""
        self._hurry.set()

    def stop(self, drain_timeout_s: float | None = None) -> int:
        """Stop accepting, give requests in flight up to ``drain_timeout_s`` (default: the
        config's) to finish, answer the rest 503, close the connections and the scorer. Returns
        how many requests were cut short. Idempotent."""
        with self._lock:
            if self._stopped:
                return 0
            self._stopped = True
        self.stopping = True
        if self._thread is not None:
            self._httpd.shutdown()  # returns once serve_forever has stopped accepting
        self._httpd.server_close()
        grace = self.config.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        drained = self._admission.wait_empty(time.monotonic() + grace, self._hurry)
        cut = self._admission.requests
        if not drained:
            self._abort.set_result(None)  # waiting handlers answer 503 now
        # Give handlers a moment to write their answers, then close idle keep-alive connections
        # (their threads are blocked reading the next request).
        until = time.monotonic() + 2.0
        while time.monotonic() < until and self._handling and not self._hurry.is_set():
            time.sleep(0.02)
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.scorer.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        return cut

    def health(self) -> HealthResponse:
        with self._lock:
            counts = self._counts.model_copy()
            connections = len(self._connections)
            items, mismatches = self._items, self._mismatches
        try:
            isolation = probe(self.scorer.config.sandbox.unsafe_no_sandbox).tier
        except Exception:  # cannot happen once the scorer was built; never fail a health check
            isolation = "unavailable"
        return HealthResponse(
            status="stopping" if self.stopping else "ok",
            version=resyn.__version__,
            isolation=isolation,
            environments=self.scorer.env_ids,
            queue_depth=self._admission.requests,
            queue_bytes=self._admission.bytes,
            max_queue=self.config.max_queue,
            connections=connections,
            uptime_s=round(time.monotonic() - self._started, 3),
            requests=counts,
            items=items,
            prompt_mismatches=mismatches,
            metrics=self.scorer.metrics(),
        )

    # -- used by the handlers ----------------------------------------------------------------------
    def _connect(self, conn: socket.socket) -> bool:
        with self._lock:
            if len(self._connections) >= self.config.max_connections:
                return False
            self._connections.add(conn)
            return True

    def _responding(self, change: int) -> None:
        with self._lock:
            self._handling += change

    def _disconnect(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self._counts, counter, getattr(self._counts, counter) + 1)

    def _scored(self, items: int, mismatches: int) -> None:
        with self._lock:
            self._items += items
            self._mismatches += mismatches

    def _submit(self, items: list[Any], size: int) -> concurrent.futures.Future[list[ScoreResult]]:
        def release(_: object) -> None:
            self._admission.leave(size)

        try:
            future = self._executor.submit(self.scorer.score_detailed, items)
        except RuntimeError:  # the executor was shut down: we are stopping
            self._admission.leave(size)
            raise _Refused(
                HTTPStatus.SERVICE_UNAVAILABLE, "the server is shutting down", "shutting_down", retry_after=5
            ) from None
        future.add_done_callback(release)
        return future

    def _wait(self, future: concurrent.futures.Future[list[ScoreResult]]) -> list[ScoreResult]:
        timeout = self.config.request_timeout_s
        waiting: list[concurrent.futures.Future[Any]] = [future, self._abort]
        done, _ = concurrent.futures.wait(
            waiting, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
        )
        if future in done:
            return list(future.result())
        if self._abort in done:
            raise _Refused(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "the server is shutting down before this request was scored; retry elsewhere",
                "shutting_down",
                retry_after=5,
            )
        raise _Refused(
            HTTPStatus.GATEWAY_TIMEOUT,
            f"scoring did not finish within {timeout:g} s (--request-timeout); send smaller batches or retry",
            "timed_out",
        )
