"""``resyn demo``: the whole synthesis loop, offline, against a bundled hand-written transcript.

The model's side of the conversation is hand-written example output (``answers/``), written to
exercise every path of the loop: an environment accepted in the first round (after one malformed
verdict that the judge retry absorbs), one rejected by the checks and accepted after revision, one
rejected by the judge and revised, and one rejected for good (a refusal, a truncated answer, then a
module the checks reject). Everything downstream of the model runs for real: code extraction, the
sandboxed check suite, judge parsing, the catalog.

``transcript.jsonl`` is the replay transcript built from ``SCRIPT`` and ``answers/`` by
``build_transcript()``; a test keeps the two in sync. Its lines ``match`` on template and tags
rather than on prompt hashes, because the revise prompts quote check evidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from resyn.llm import FinishReason, TranscriptEntry
from resyn.llm.replay import ReplayMatch
from resyn.synth.loop import SynthesisSettings

DEMO_DIR = Path(__file__).parent
TRANSCRIPT = DEMO_DIR / "transcript.jsonl"
ANSWERS = DEMO_DIR / "answers"


class Turn(NamedTuple):
    keyword: str
    round: int
    template: str
    answer: str
    """File in ``answers/`` holding the model's text."""
    finish_reason: FinishReason = "stop"


#: The scripted conversation, in the order each keyword's calls happen.
SCRIPT = (
    Turn("base conversion", 1, "write", "base_conversion.write.md"),
    Turn("base conversion", 1, "judge", "malformed.verdict.txt"),
    Turn("base conversion", 1, "judge", "base_conversion.verdict.json"),
    Turn("the Josephus problem", 1, "write", "josephus.write.md"),
    Turn("the Josephus problem", 2, "revise", "josephus.revise.md"),
    Turn("the Josephus problem", 2, "judge", "josephus.verdict.json"),
    Turn("0/1 knapsack", 1, "write", "knapsack.write.md"),
    Turn("0/1 knapsack", 1, "judge", "knapsack.verdict-1.json"),
    Turn("0/1 knapsack", 2, "revise", "knapsack.revise.md"),
    Turn("0/1 knapsack", 2, "judge", "knapsack.verdict-2.json"),
    Turn("proving the Riemann hypothesis", 1, "write", "riemann.write.md"),
    Turn("proving the Riemann hypothesis", 2, "revise", "riemann.revise-2.md", "length"),
    Turn("proving the Riemann hypothesis", 3, "revise", "riemann.revise-3.md"),
)

KEYWORDS = tuple(dict.fromkeys(turn.keyword for turn in SCRIPT))


def build_transcript() -> list[TranscriptEntry]:
    """The transcript lines for ``SCRIPT``: each answers its keyword's round of that template."""
    return [
        TranscriptEntry(
            match=ReplayMatch(
                template=turn.template, tags={"keyword": turn.keyword, "round": str(turn.round)}
            ),
            text=(ANSWERS / turn.answer).read_text(encoding="utf-8"),
            finish_reason=turn.finish_reason,
            resolved_model="hand-written",
        )
        for turn in SCRIPT
    ]


def transcript_text() -> str:
    return "".join(entry.model_dump_json(exclude_none=True) + "\n" for entry in build_transcript())


def demo_settings(*, unsafe_no_sandbox: bool = False) -> SynthesisSettings:
    """The demo's run: writer and judge both answer from the bundled transcript."""
    spec = f"replay/{TRANSCRIPT}"
    return SynthesisSettings(
        model=spec,
        judge_model=spec,
        max_rounds=3,
        concurrency=len(KEYWORDS),
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
