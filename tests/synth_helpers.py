"""FIXTURE STANDING IN FOR THE OUTSIDE WORLD: a scripted model that writes and judges environments.

The synthesis tests talk to the fake providers of ``tests/llm_servers.py`` through the real
``openai`` and ``anthropic`` SDKs. Which keyword's request arrives when is decided by the loop's
concurrency, so a queue of replies cannot script them; a ``ScriptedModel`` is the server's
``responder`` and answers each request by its content instead:

* the **keyword** is read from the user message (``Write an environment for this keyword: …`` for
  a write, ``Keyword: …`` for a revision or a verdict);
* the **kind** is ``judge`` for a structured request (OpenAI ``response_format``, Anthropic
  ``tools``), else ``write`` or ``revise`` by the prompt's wording;
* a structured request with a ``Seed: …`` line is a ``propose`` request, keyed by the seed (a
  dict step is its ``Ideas`` object: JSON content for OpenAI, a ``tool_use`` block named ``Ideas``
  for Anthropic);
* a request whose system prompt says "You are solving a reasoning problem" is a ``solve`` request
  (solver calibration), keyed by the question (its whole user message); when the script has no
  steps for it, ``ScriptedModel.solver(question, n)`` answers its *n*-th request (from 0);
* the *n*-th request of a ``(keyword, kind)`` gets the *n*-th step of its script.

A step is the answer's text, a verdict (a dict: JSON content for OpenAI, a ``tool_use`` block named
``Verdict`` for Anthropic), ``Truncated(text)`` (cut at the token limit), a raw ``Reply`` (faults:
429, 5xx, slow, malformed body, 401, …) or a function of the request body returning a ``Reply``.
A request no step is left for is answered with HTTP 400 and noted in ``problems``, which tests
assert to be empty.

The modules the model "writes" are the hand-written answers of ``resyn/demo/answers/``: they only
ever run inside the sandbox, never in the test process. Nothing here is part of resyn.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resyn.catalog import Catalog
from resyn.checks import CheckConfig
from resyn.llm import LLMSettings, Model, get_model
from resyn.synth.loop import SynthesisSettings
from tests.llm_servers import FakeAnthropic, FakeOpenAI, FakeServer, Reply

ANSWERS = Path(__file__).parents[1] / "resyn" / "demo" / "answers"

WRITE, REVISE, JUDGE = "write", "revise", "judge"
PROPOSE, SOLVE = "propose", "solve"

#: The start of the ``solve`` prompt's system message.
SOLVING = "You are solving a reasoning problem"

#: The name of the structured answer a kind asks for (Anthropic's forced tool).
_TOOL = {JUDGE: "Verdict", PROPOSE: "Ideas"}

#: Hand-written answers whose module passes every check (each a different environment).
GOOD = {
    "base": "base_conversion.write.md",
    "josephus": "josephus.revise.md",
    "knapsack": "knapsack.write.md",
    "knapsack2": "knapsack.revise.md",
}
#: An answer whose module fails the shotgun, numeric_perturbation and long_answers checks.
BAD = "josephus.write.md"

REFUSAL = "I'm sorry, but I can't help with writing that environment."

#: Quick checks for tests where the thresholds do not matter (a check run costs ~1 s either way:
#: most of it is starting sandbox workers).
QUICK_CHECKS = CheckConfig(seeds_per_level=20, probe_instances_per_level=20)

#: Transport settings that keep fault tests short: quick back-off. The deadline is generous (a
#: retried timeout would be an unscripted request); the timeout test sets a short one itself.
FAST = LLMSettings(
    timeout_s=30,
    max_attempts=4,
    backoff_initial_s=0.01,
    backoff_max_s=0.05,
    max_retry_time_s=30,
    max_concurrency=16,
)

_KEYWORD_LINE = re.compile(r"^(?:Write an environment for this keyword|Keyword): (.+)$", re.MULTILINE)
_SEED_LINE = re.compile(r"^Seed: (.+)$", re.MULTILINE)


def answer(name: str) -> str:
    """The text of a hand-written model answer in ``resyn/demo/answers/``."""
    return (ANSWERS / name).read_text(encoding="utf-8")


def good(key: str) -> str:
    return answer(GOOD[key])


def fenced(code: str, preface: str = "Here is the module.") -> str:
    """A model answer holding ``code`` in one ```python block."""
    return f"{preface}\n\n```python\n{code.rstrip()}\n```\n"


def verdict(accept: bool = True, feedback: str = "", **scores: int) -> dict[str, Any]:
    """A valid ``Verdict`` object (every score 4 unless given)."""
    names = ("faithfulness", "self_contained", "verifier_soundness", "non_triviality", "difficulty_scaling")
    return {
        **{name: scores.get(name, 4) for name in names},
        "accept": accept,
        "feedback": feedback or ("Fine as it stands." if accept else "Rejected: fix it."),
    }


#: Verdicts that break the schema: a score out of range, missing fields.
BAD_VERDICT = {"faithfulness": 9, "accept": True, "feedback": "great"}


@dataclass(frozen=True)
class Truncated:
    """An answer cut at the output token limit (OpenAI ``length``, Anthropic ``max_tokens``)."""

    text: str


Step = str | dict[str, Any] | Truncated | Reply | Callable[[dict[str, Any]], Reply]


def user_text(body: dict[str, Any]) -> str:
    """The last user message of a request body (OpenAI or Anthropic)."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1].get("content")
    if isinstance(content, list):  # Anthropic content blocks
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return str(content)


def system_text(body: dict[str, Any]) -> str:
    """The system prompt of a request body (OpenAI: system messages; Anthropic: ``system``)."""
    system = body.get("system")
    if system is None:
        system = [m.get("content") for m in body.get("messages", []) if m.get("role") == "system"]
    if isinstance(system, list):
        return "".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in system)
    return str(system)


def classify(body: dict[str, Any]) -> tuple[str | None, str]:
    """``(keyword, kind)`` of a request body; the keyword is ``None`` when no line names one (for
    a ``solve`` request, the keyword is the question)."""
    text = user_text(body)
    if SOLVING in system_text(body):
        return text, SOLVE
    found = _KEYWORD_LINE.search(text)
    keyword = found.group(1).strip() if found else None
    structured = "response_format" in body or "tools" in body
    seed = _SEED_LINE.search(text)
    if structured and seed and not found:
        return seed.group(1).strip(), PROPOSE
    if structured:
        kind = JUDGE
    elif text.startswith("Write an environment for this keyword:"):
        kind = WRITE
    else:
        kind = REVISE
    return keyword, kind


class ScriptedModel:
    """The ``responder`` of a fake provider: answers each request from the script of its
    ``(keyword, kind)``. Counts and keeps every request it answered."""

    def __init__(self, server: FakeServer, script: Mapping[tuple[str, str], Sequence[Step]]) -> None:
        self.server = server
        self.script: dict[tuple[str, str], list[Step]] = {key: list(steps) for key, steps in script.items()}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.problems: list[str] = []
        self.solver: Callable[[str, int], Step] | None = None
        """Answers the *n*-th ``solve`` request of a question the script has no steps for."""
        self._lock = threading.Lock()
        server.responder = self

    def add(self, keyword: str, kind: str, *steps: Step) -> None:
        """Append steps to a script (e.g. the answers of a later session)."""
        with self._lock:
            self.script.setdefault((keyword, kind), []).extend(steps)

    def __call__(self, body: dict[str, Any]) -> Reply:
        keyword, kind = classify(body)
        with self._lock:
            if keyword is None:
                self.problems.append(f"a {kind} request names no keyword")
                return Reply(status=400, body=self.server.error_body("invalid_request_error", "no keyword"))
            index = self.calls[(keyword, kind)]
            self.calls[(keyword, kind)] += 1
            self.requests.append((keyword, kind, body))
            steps = self.script.get((keyword, kind), [])
            solver = self.solver if kind == SOLVE and not steps else None
            if solver is None and index >= len(steps):
                self.problems.append(f"unscripted {kind} request #{index + 1} for {keyword!r}")
                return Reply(
                    status=400, body=self.server.error_body("invalid_request_error", "script exhausted")
                )
        step = steps[index] if solver is None else solver(keyword, index)
        return self.reply(step, body, kind)

    def reply(self, step: Step, body: dict[str, Any], kind: str = JUDGE) -> Reply:
        server = self.server
        if isinstance(step, Reply):
            return step
        if isinstance(step, Truncated):
            assert isinstance(server, FakeOpenAI | FakeAnthropic)
            return server.truncated(step.text)
        if isinstance(step, str):
            return Reply(body=server.answer(step))
        if isinstance(step, dict):
            if isinstance(server, FakeAnthropic):
                return server.tool_answer(_TOOL.get(kind, "Verdict"), step)
            return Reply(body=server.answer(json.dumps(step)))
        return step(body)

    def count(self, keyword: str | None = None, kind: str | None = None) -> int:
        """Requests answered (scripted or not) for this keyword and/or kind."""
        return sum(
            n
            for (k, t), n in self.calls.items()
            if (keyword is None or k == keyword) and (kind is None or t == kind)
        )

    def bodies(self, keyword: str, kind: str) -> list[dict[str, Any]]:
        return [body for k, t, body in self.requests if (k, t) == (keyword, kind)]


class PricedOpenAI(FakeOpenAI):
    """A fake OpenAI that answers as model ``m`` (not a real model name), so that only a price
    table entry for ``m`` (``RESYN_PRICES``) prices its calls."""

    def answer(self, text: str | None, **kwargs: Any) -> dict[str, Any]:
        return super().answer(text, **{"model": "m", **kwargs})


def settings(spec: str = "openai/m", **fields: Any) -> SynthesisSettings:
    """Run settings for the API tests: quick checks unless ``checks`` is given."""
    values: dict[str, Any] = {"model": spec, "judge_model": spec, "checks": QUICK_CHECKS} | fields
    return SynthesisSettings.model_validate(values)


def fake_models(
    server: FakeServer, catalog: Catalog, run_id: str, spec: str = "openai/m", **llm: Any
) -> dict[str, Model]:
    """``writer`` and ``judge_model`` for ``synthesize``, pointed at ``server`` with ``FAST``
    transport settings. ``synthesize`` attaches the run's recorder (catalog and ``calls.jsonl``)
    to models passed in, as to the ones it builds itself."""
    base_url = server.base_url if isinstance(server, FakeOpenAI | FakeAnthropic) else server.url
    llm_settings = FAST.model_copy(update=llm)
    return {
        role: get_model(spec, base_url=base_url, settings=llm_settings) for role in ("writer", "judge_model")
    }
