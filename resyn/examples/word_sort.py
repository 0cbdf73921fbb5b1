"""Example environment: sort made-up words alphabetically (exactly one correct answer).

The pattern for tasks whose answer is a list: the question fixes the separator, ``verify`` splits on
it, tolerates whitespace and letter case, and rejects answers with missing, extra or reordered items.
"""

from __future__ import annotations

import random
from typing import Any

from resyn import Environment

#: Longer answers are rejected before parsing, so that huge inputs cost nothing.
MAX_ANSWER_CHARS = 2_000
_SYLLABLES = (
    "ba", "be", "bi", "bo", "da", "de", "di", "do", "fa", "fe", "ka", "ke", "ki", "ko", "la", "le",
    "li", "lo", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "pa", "pe", "pi", "po", "ra", "re",
    "ri", "ro", "sa", "se", "si", "so", "ta", "te", "ti", "to", "va", "ve", "vi", "vo", "za", "zu",
)  # fmt: skip


def parse_word_list(text: str) -> list[str] | None:
    """``"alpha, beta"`` as lower-case words, or ``None`` if malformed (empty or spaced items)."""
    if len(text) > MAX_ANSWER_CHARS:
        return None
    words = [word.strip().lower() for word in text.strip().split(",")]
    if any(not word.isalpha() for word in words):
        return None
    return words


class WordSort(Environment):
    """Sort a list of made-up words into alphabetical order. Difficulty raises the number of words
    (5 at level 1, 13 at level 5) and makes them share longer prefixes, so that more letters have to
    be compared."""

    name = "word_sort"
    max_difficulty = 5

    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        count = 3 + 2 * difficulty
        # Fewer distinct stems at higher levels: more words start with the same syllables.
        stems = ["".join(rng.choices(_SYLLABLES, k=1 + difficulty // 3)) for _ in range(6 - difficulty)]
        words: list[str] = []
        while len(words) < count:
            word = rng.choice(stems) + "".join(rng.choices(_SYLLABLES, k=rng.randint(1, 2)))
            if word not in words:
                words.append(word)
        while words == sorted(words):  # never show the list already sorted
            rng.shuffle(words)
        return {"words": words}

    def question(self, instance: dict[str, Any]) -> str:
        return (
            "Sort the following words in alphabetical (dictionary) order:\n\n"
            f"{' '.join(instance['words'])}\n\n"
            "Answer with all the words in sorted order, separated by commas, and nothing else."
        )

    def verify(self, instance: dict[str, Any], answer: str) -> float:
        words = parse_word_list(answer)
        return 1.0 if words is not None and words == sorted(instance["words"]) else 0.0

    def solution(self, instance: dict[str, Any]) -> str | None:
        return ", ".join(sorted(instance["words"]))
