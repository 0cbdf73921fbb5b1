"""The environment contract: what an LLM-written (or hand-written) module must provide.

An environment is one Python module with exactly one subclass of :class:`Environment`::

    import random
    from resyn import Environment

    class GraphColoring(Environment):
        \"\"\"What the task is, in one paragraph.\"\"\"
        name = "graph_coloring"        # [a-z0-9_]+
        max_difficulty = 5             # difficulty levels are 1..max_difficulty

        def generate(self, rng: random.Random, difficulty: int) -> dict: ...
        def question(self, instance: dict) -> str: ...
        def verify(self, instance: dict, answer: str) -> float: ...
        def solution(self, instance: dict) -> str | None: ...   # optional

Rules the harness relies on (and the check suite enforces):

* **The harness owns seeding.** ``generate`` receives a :class:`random.Random` seeded by
  :func:`instance_rng` from ``(seed, difficulty)``; it must draw every random choice from it. The
  global ``random`` module, time, hash order of sets of strings and module-level state are defects:
  the same ``(seed, difficulty)`` must give the same instance in every process on every machine.
* **Instances are plain JSON** (dicts, lists, str, int, float, bool, None). They travel through
  trainers' datasets as JSON, so ``verify`` must work on a JSON round-tripped instance (tuples come
  back as lists, integer dict keys as strings).
* **The harness owns answer extraction.** ``verify`` receives the already extracted answer string
  (see :func:`resyn.grading.extract_answer`), must return a float in ``[0, 1]``, must never raise on
  malformed input and must not modify the instance.
* ``question`` states the task completely, including the exact answer format.
* ``solution`` returns a reference answer that ``verify`` scores 1.0, or ``None`` when producing one
  is hard (the generator–verifier gap: a sound verifier needs no gold answer).

This module is imported inside the sandbox worker, so it stays dependency-free (no pydantic).
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any, ClassVar

__all__ = ["NAME_PATTERN", "Environment", "instance_rng", "instance_seed"]

#: Environment names are identifiers usable in file names, SQL and trainer data sources.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def instance_seed(seed: int, difficulty: int) -> int:
    """The 64-bit integer that seeds instance ``(seed, difficulty)``.

    A hash rather than ``seed + difficulty`` so that neighbouring seeds and levels never share a
    stream (reasoning-gym's ``Random(seed + idx)`` makes seed 1 item 2 equal seed 2 item 1), and
    sha256 rather than ``hash()`` because ``hash()`` of strings changes with PYTHONHASHSEED.
    """
    digest = hashlib.sha256(f"resyn-instance:{int(seed)}:{int(difficulty)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def instance_rng(seed: int, difficulty: int) -> random.Random:
    """The random generator ``generate`` receives for instance ``(seed, difficulty)``."""
    return random.Random(instance_seed(seed, difficulty))


class Environment:
    """Base class of every environment. Subclass it once per module; see the module docstring."""

    #: Unique identifier, matching ``[a-z][a-z0-9_]*``.
    name: ClassVar[str] = ""
    #: Difficulty levels are ``1..max_difficulty``.
    max_difficulty: ClassVar[int] = 1

    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        """Return one JSON-serializable instance, drawing all randomness from ``rng``."""
        raise NotImplementedError

    def question(self, instance: dict[str, Any]) -> str:
        """Render the prompt text for ``instance``, including the required answer format."""
        raise NotImplementedError

    def verify(self, instance: dict[str, Any], answer: str) -> float:
        """Score an extracted answer in ``[0, 1]``; never raise, never modify ``instance``."""
        raise NotImplementedError

    def solution(self, instance: dict[str, Any]) -> str | None:
        """A reference answer that ``verify`` scores 1.0, or ``None`` if there is none."""
        return None

    # Convenience for authors and tests running trusted code in-process.
    def sample(self, seed: int, difficulty: int) -> dict[str, Any]:
        """Generate instance ``(seed, difficulty)`` exactly as the harness does."""
        return self.generate(instance_rng(seed, difficulty), difficulty)
