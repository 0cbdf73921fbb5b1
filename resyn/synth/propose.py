"""From broad seeds to many distinct tasks (``--propose N``).

ReSyn's premise is that task diversity drives transfer, and a few seed keywords ("graphs",
"ciphers") give few tasks. The ``propose`` prompt expands each seed into ``N`` concrete task ideas;
ideas that near-duplicate each other, the run's other tasks or the catalog's environments are
recorded with what they duplicate and skipped (``resyn.synth.similarity``), never dropped silently.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from resyn.catalog.records import DuplicateRecord, ProposalRecord
from resyn.llm import Model
from resyn.synth import prompts
from resyn.synth.keywords import MAX_KEYWORD_CHARS
from resyn.synth.similarity import IdeaSignature, idea_signature, screen


class Idea(BaseModel):
    """One proposed task."""

    model_config = ConfigDict(extra="forbid")

    keyword: str = Field(min_length=1, max_length=MAX_KEYWORD_CHARS)
    description: str


class Ideas(BaseModel):
    """The ``propose`` prompt's structured answer."""

    model_config = ConfigDict(extra="forbid")

    ideas: list[Idea]


async def propose(
    model: Model, seed: str, n: int, existing: list[str], *, max_tokens: int, tags: dict[str, str]
) -> tuple[list[Idea], str]:
    """Ask for ``n`` ideas from ``seed``; returns the ideas (at most ``n``, blank ones dropped) and
    the call id. Raises ``LLMError`` (a malformed answer included) for the caller to record."""
    call_id = uuid.uuid4().hex
    request = prompts.request(
        "propose",
        {"seed_keyword": seed, "n": n, "existing": existing},
        max_tokens=max_tokens,
        purpose="proposer",
        tags=tags | {"call_id": call_id, "keyword": seed},
        output=Ideas,
    )
    response = await model.generate(request)
    ideas = [
        Idea(keyword=" ".join(idea.keyword.split()), description=idea.description.strip())
        for idea in response.output(Ideas).ideas
        if idea.keyword.strip()
    ]
    return ideas[:n], call_id


def screen_ideas(
    *,
    run_id: str,
    seed: str,
    ideas: list[Idea],
    call_id: str,
    existing: list[tuple[str, IdeaSignature]],
) -> tuple[list[ProposalRecord], list[DuplicateRecord]]:
    """Keep each idea unless it near-duplicates an ``existing`` one (keyed by keyword or env id) or
    an idea kept before it; the duplicates come back as records naming what they duplicate."""
    signed = [(idea.keyword, idea_signature(idea.keyword, idea.description)) for idea in ideas]
    verdicts = screen(signed, existing)
    proposals: list[ProposalRecord] = []
    duplicates: list[DuplicateRecord] = []
    for idea, verdict in zip(ideas, verdicts, strict=True):
        proposals.append(
            ProposalRecord(
                proposal_id=uuid.uuid4().hex,
                run_id=run_id,
                seed_keyword=seed,
                keyword=idea.keyword,
                description=idea.description,
                call_id=call_id,
                duplicate_of=verdict.duplicate_of,
                similarity=verdict.similarity,
            )
        )
        if verdict.duplicate_of is not None:
            duplicates.append(
                DuplicateRecord(
                    duplicate_id=uuid.uuid4().hex,
                    run_id=run_id,
                    kind="proposal",
                    subject=idea.keyword,
                    duplicate_of=verdict.duplicate_of,
                    similarity=verdict.similarity or 0.0,
                    detail={"seed": seed, "description": idea.description},
                )
            )
    return proposals, duplicates
