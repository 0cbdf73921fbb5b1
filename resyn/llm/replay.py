"""``replay/<path>``: answers from a recorded transcript instead of a provider.

The transcript format
---------------------
A transcript is a UTF-8 JSONL file, one JSON object per line (blank lines ignored). A line is an
answer to the request whose ``LLMRequest.prompt_sha256()`` it names:

=====================  ========  ==========================================================
key                    required  meaning
=====================  ========  ==========================================================
``prompt_sha256``      yes       sha256 of the canonical JSON of the rendered messages and the
                                 parameters (max_tokens, temperature, output schema and name)
``text``               yes       the answer's text (for a structured answer: its JSON)
``template``           no        template name, for people reading the file
``finish_reason``      no        ``stop`` (default), ``length``, ``tool_use``, …
``raw_finish_reason``  no        the provider's own word
``tokens_in``          no        prompt tokens (default: none reported)
``tokens_out``         no        generated tokens
``resolved_model``     no        the model that answered (default ``replay``)
``response``           no        the provider's raw response JSON
``error``              no        a line whose ``error`` is not null is skipped (a failed call)
``match``               no        instead of ``prompt_sha256``: ``{"template": …, "tags": {…}}``
                                 answers any request of that template whose tags include
                                 these (for hand-written transcripts, see below)
=====================  ========  ==========================================================

Other keys are ignored, so the file a ``JsonlRecorder`` writes — one ``CallRecord`` per line — is a
transcript as it stands: record a run against a real model, replay it offline, byte-identical
prompts get the recorded answers. ``TranscriptEntry.for_request`` writes a line by hand.

A recorded transcript names each prompt by its hash, so a replay proves the prompts did not change.
A hand-written transcript cannot know the hash of a prompt that quotes check evidence, so its lines
may ``match`` on the template and the request's tags instead (the synthesis loop tags every call
with its keyword and round). A line with a hash wins over a ``match`` line.

When several lines share a hash (or a ``match``) (the same prompt sampled several times) they answer in file order,
starting over after the last. A request with no line raises ``ReplayMissError`` naming the template
and the hash: the prompt or its parameters changed since the recording. Replayed calls cost 0 USD,
make 0 HTTP attempts and are recorded like any other.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from resyn.errors import ResynError
from resyn.llm.base import Completion, Model
from resyn.llm.errors import ReplayMissError
from resyn.llm.models import FinishReason, LLMRequest, LLMSettings, canonical_json
from resyn.llm.recording import Recorder


class ReplayMatch(BaseModel):
    """Which requests a hand-written line answers: this template, with at least these tags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    tags: dict[str, str] = Field(default_factory=dict)

    def matches(self, request: LLMRequest) -> bool:
        return request.template == self.template and all(
            request.tags.get(key) == value for key, value in self.tags.items()
        )

    def key(self) -> str:
        return canonical_json(self.model_dump())


class TranscriptEntry(BaseModel):
    """One line of a replay transcript (a ``CallRecord`` line also reads as one)."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    prompt_sha256: str | None = None
    """``LLMRequest.prompt_sha256()`` of the request this line answers."""

    match: ReplayMatch | None = None
    """For hand-written lines: the template and tags of the requests this line answers."""

    text: str
    """The answer's text."""

    template: str | None = None
    finish_reason: FinishReason = "stop"
    raw_finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    resolved_model: str | None = None
    response: dict[str, Any] | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> TranscriptEntry:
        if (self.prompt_sha256 is None) == (self.match is None):
            raise ValueError("a transcript line needs exactly one of prompt_sha256 and match")
        return self

    def key(self) -> str:
        """The answer queue this line belongs to."""
        if self.match is not None:
            return f"match:{self.match.key()}"
        assert self.prompt_sha256 is not None
        return self.prompt_sha256

    @classmethod
    def for_request(cls, request: LLMRequest, text: str, **fields: Any) -> TranscriptEntry:
        return cls(prompt_sha256=request.prompt_sha256(), text=text, template=request.template, **fields)


def write_transcript(path: str | Path, entries: list[TranscriptEntry]) -> None:
    """Write ``entries`` as a transcript file (replacing it)."""
    Path(path).write_text("".join(entry.model_dump_json(exclude_none=True) + "\n" for entry in entries))


class ReplayModel(Model):
    provider = "replay"

    def __init__(self, path: str, *, settings: LLMSettings | None = None, recorder: Recorder | None = None):
        super().__init__(path, settings=settings, recorder=recorder)
        self.path = Path(path)
        self._answers: dict[str, list[TranscriptEntry]] | None = None
        self._matchers: list[ReplayMatch] = []
        self._served: dict[str, int] = defaultdict(int)

    def _load(self) -> dict[str, list[TranscriptEntry]]:
        if self._answers is not None:
            return self._answers
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ResynError(
                f"replay transcript {self.path} cannot be read ({error.strerror}): "
                "fix the path, or record one with a JsonlRecorder"
            ) from None
        answers: dict[str, list[TranscriptEntry]] = defaultdict(list)
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = TranscriptEntry.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                raise ResynError(
                    f"replay transcript {self.path} line {number} is not a transcript entry: "
                    'each line needs "text" and one of "prompt_sha256" or "match" (see resyn.llm.replay)'
                ) from None
            if entry.error is None:
                if entry.match is not None and entry.key() not in answers:
                    self._matchers.append(entry.match)
                answers[entry.key()].append(entry)
        self._answers = dict(answers)
        return self._answers

    def _prepare(self) -> None:
        self._load()

    async def _attempt(self, request: LLMRequest) -> Completion:
        raise NotImplementedError  # never called: _complete answers without HTTP

    async def _complete(self, request: LLMRequest) -> tuple[Completion, int]:
        digest = request.prompt_sha256()
        answers = self._load()
        key = digest
        if key not in answers:
            matched = next((m for m in self._matchers if m.matches(request)), None)
            key = f"match:{matched.key()}" if matched is not None else digest
        entries = answers.get(key)
        if not entries:
            raise ReplayMissError(
                f"{self.spec}: no recorded answer for template '{request.template}' "
                f"(prompt sha256 {digest[:16]}…): the prompt or its parameters changed since the "
                "recording; re-record the transcript against a real model"
            )
        entry = entries[self._served[key] % len(entries)]
        self._served[key] += 1
        return (
            Completion(
                text=entry.text,
                finish_reason=entry.finish_reason,
                raw_finish_reason=entry.raw_finish_reason,
                tokens_in=entry.tokens_in,
                tokens_out=entry.tokens_out,
                model=entry.resolved_model or "replay",
                raw=entry.response or {},
            ),
            0,
        )

    def _cost(self, completion: Completion) -> float | None:
        return 0.0
