"""What crosses the reward server's HTTP boundary: its settings, each endpoint's request and
response, and the error body. Requests are validated from the raw JSON bytes by pydantic (in
Rust), so a malformed body costs no Python-level parse before it is refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "OpenRLHFRequest",
    "OpenRLHFResponse",
    "ScoreRequest",
    "ScoreResponse",
    "ServeConfig",
]


class ServeConfig(BaseModel):
    """How a :class:`~resyn.serve.RewardServer` listens and what it admits. Each default says why."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    """Loopback by default: the server runs environment code on request, so exposing it to other
    hosts (``0.0.0.0``) is a decision to make on purpose, on a trusted network."""

    port: int = Field(8765, ge=0, le=65535)
    """0 picks a free port (printed at start)."""

    max_queue: int = Field(64, ge=1)
    """Scoring requests admitted at once (scoring or waiting for workers). Beyond it a request is
    answered 503 with ``Retry-After`` before its body is read, so overload costs no memory.
    OpenRLHF sends one request per rollout micro-batch per actor; 64 covers dozens of actors
    while the workers stay the bottleneck, which is what merging needs."""

    max_queue_bytes: int = Field(1 << 30, ge=1024)
    """Body bytes of the admitted requests together (1 GiB): the bound on the memory requests
    can hold, whatever their count."""

    max_body_bytes: int = Field(64 << 20, ge=1024)
    """Largest request body (413 beyond): 64 MiB holds ~1,000 completions of 64 k characters,
    the scorer's own cap per completion, with their prompts."""

    max_connections: int = Field(512, ge=1)
    """Open connections (one thread each) at once; a connection beyond it is answered 503 and
    closed. Idle keep-alive connections count, so this is above ``max_queue``."""

    request_timeout_s: float = Field(150.0, gt=0)
    """A scoring request not finished in this time is answered 504 (its items keep running to
    their own per-item deadlines). Below OpenRLHF's client timeout (180 s), so the trainer sees
    an error status and retries rather than waiting on a dead socket."""

    idle_timeout_s: float = Field(75.0, gt=0)
    """A connection that sends nothing (between requests, or stalling within one) for this long
    is closed, so stalled clients cannot hold threads forever."""

    drain_timeout_s: float = Field(30.0, ge=0)
    """On shutdown, how long requests in flight may take to finish before they are answered 503
    and the scorer is closed."""


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request (``--reward.remote_url``): full templated texts
    (prompt + response), the prompts they start with, and each row's label
    (:func:`resyn.serve.label_for`)."""

    model_config = ConfigDict(extra="ignore")

    query: list[str]
    prompts: list[str] | None = None
    labels: list[str | dict[str, Any] | None]

    @model_validator(mode="after")
    def _lengths(self) -> OpenRLHFRequest:
        if len(self.labels) != len(self.query):
            raise ValueError(
                f"{len(self.query)} queries but {len(self.labels)} labels: send one label a query"
            )
        if self.prompts is not None and len(self.prompts) != len(self.query):
            raise ValueError(
                f"{len(self.query)} queries but {len(self.prompts)} prompts: send one prompt a query"
            )
        return self


class OpenRLHFResponse(BaseModel):
    """``rewards`` (for advantages) and ``scores`` (0–1, for dynamic filtering) are the same
    scores; ``extra_logs`` holds one value a sample per key (OpenRLHF concatenates them across
    requests and logs their means): ``reward_pipeline_error`` (1 where the score is 0 for a
    reason that is not the policy's: see :data:`resyn.reward.REASONS`), ``reward_no_answer``
    (1 where no answer could be extracted) and ``reward_prompt_mismatch`` (1 where the query did
    not start with its prompt; see :func:`resyn.serve.server.split_response`)."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


class ScoreRequest(BaseModel):
    """A plain batch: items as :class:`~resyn.reward.ScoreItem` takes them (``env_id``,
    ``completion``, and ``instance_json``/``instance`` or ``seed`` and ``difficulty``, optionally
    ``code_sha256``). An item that does not validate scores 0 (``invalid_item``); it does not fail
    the request."""

    model_config = ConfigDict(extra="ignore")

    items: list[Any]


class ScoreResponse(BaseModel):
    """One entry a request item, in order: the score, its reason, and for failures a detail."""

    scores: list[float]
    reasons: list[str]
    details: list[str | None]


class RequestCounts(BaseModel):
    """Requests answered since start, by outcome."""

    get_reward: int = 0
    score: int = 0
    health: int = 0
    bad_request: int = 0
    too_large: int = 0
    busy: int = 0
    timed_out: int = 0
    not_found: int = 0
    method_not_allowed: int = 0
    shutting_down: int = 0
    internal_error: int = 0


class HealthResponse(BaseModel):
    """``GET /health``: 200 while serving, 503 while shutting down."""

    status: Literal["ok", "stopping"]
    version: str
    isolation: str
    """The sandbox tier the workers run in (``bwrap-root``, ``bwrap-userns``, ``unsafe``)."""
    environments: list[str]
    queue_depth: int
    """Scoring requests admitted and not finished (scoring or waiting for workers)."""
    queue_bytes: int
    max_queue: int
    connections: int
    uptime_s: float
    requests: RequestCounts
    items: int
    """Items scored since start (through both endpoints)."""
    prompt_mismatches: int
    """OpenRLHF queries that did not start with their prompt."""
    metrics: dict[str, int]
    """Items scored per reason (:meth:`resyn.reward.RewardScorer.metrics`)."""


class ErrorResponse(BaseModel):
    """Every non-200 answer: one line that says what was wrong and what to do."""

    error: str
