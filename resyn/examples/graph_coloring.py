"""Example environment: colour a graph with at most k colours (many answers are correct).

The pattern for tasks with several valid answers: ``generate`` plants a solution so that every
instance is solvable, ``solution`` returns the planted one, and ``verify`` checks the constraints
instead of comparing the answer with the planted solution.
"""

from __future__ import annotations

import random
from typing import Any

from resyn import Environment, grading


class GraphColoring(Environment):
    """Colour the vertices of an undirected graph with at most k colours so that no edge joins two
    vertices of the same colour. The graph is built around a hidden (planted) colouring, so a
    solution always exists, but every proper colouring is accepted. Difficulty raises the number of
    vertices, the number of edges and, from level 4 on, the number of colours."""

    name = "graph_coloring"
    max_difficulty = 5

    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        k = 3 if difficulty <= 3 else 4
        n = 4 + 3 * difficulty + rng.randint(0, 2)
        # Every colour is used at least once; colours are 1..k.
        planted = [1 + i % k for i in range(n)]
        rng.shuffle(planted)
        # Dense edges between different colour classes make random colourings fail.
        edges = [
            [u, v]
            for u in range(n)
            for v in range(u + 1, n)
            if planted[u] != planted[v] and rng.random() < 0.55
        ]
        return {"n": n, "k": k, "edges": edges, "planted": planted}

    def question(self, instance: dict[str, Any]) -> str:
        n, k = instance["n"], instance["k"]
        edges = ", ".join(f"{u}-{v}" for u, v in instance["edges"])
        return (
            f"Colour the vertices of an undirected graph with at most {k} colours, numbered 1 to {k}, "
            "so that the two endpoints of every edge get different colours.\n\n"
            f"The graph has {n} vertices, numbered 0 to {n - 1}, and these edges:\n{edges}\n\n"
            f"Answer with {n} integers separated by commas: the colour of vertex 0, then the colour "
            "of vertex 1, and so on up to the last vertex."
        )

    def verify(self, instance: dict[str, Any], answer: str) -> float:
        # grading.parse_int_list accepts "1, 2, 3", "[1, 2, 3]" and "1 2 3", caps the input size,
        # and returns None for anything else, so verify never raises on a malformed answer.
        colours = grading.parse_int_list(answer)
        if colours is None or len(colours) != instance["n"]:
            return 0.0
        if any(not 1 <= colour <= instance["k"] for colour in colours):
            return 0.0
        if any(colours[u] == colours[v] for u, v in instance["edges"]):
            return 0.0
        return 1.0

    def solution(self, instance: dict[str, Any]) -> str | None:
        return ", ".join(str(colour) for colour in instance["planted"])
