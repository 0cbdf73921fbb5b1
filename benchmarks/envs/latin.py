"""Benchmark module: a verifier of a few tens of µs (check a 5×5 Latin square against its givens)."""

import random

from resyn import Environment


class LatinCheck(Environment):
    """Complete a 5×5 Latin square."""

    name = "latin_check"
    max_difficulty = 3

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        symbols = list(range(1, 6))
        rng.shuffle(symbols)
        grid = [[symbols[(r + c) % 5] for c in range(5)] for r in range(5)]
        rng.shuffle(grid)
        puzzle = [row[:] for row in grid]
        for cell in rng.sample(range(25), 5 + 4 * difficulty):
            puzzle[cell // 5][cell % 5] = 0
        return {"puzzle": puzzle, "grid": grid}

    def question(self, instance: dict) -> str:
        rows = "\n".join(" ".join(str(v) if v else "." for v in row) for row in instance["puzzle"])
        return (
            f"Complete the Latin square (each of 1-5 once per row and column). Answer with 5 lines.\n{rows}"
        )

    def verify(self, instance: dict, answer: str) -> float:
        rows = [line.split() for line in answer.strip().splitlines()]
        if len(rows) != 5 or any(len(row) != 5 for row in rows):
            return 0.0
        try:
            grid = [[int(v) for v in row] for row in rows]
        except ValueError:
            return 0.0
        full = {1, 2, 3, 4, 5}
        if any(set(row) != full for row in grid) or any(
            {grid[r][c] for r in range(5)} != full for c in range(5)
        ):
            return 0.0
        for r, row in enumerate(instance["puzzle"]):
            for c, given in enumerate(row):
                if given and grid[r][c] != given:
                    return 0.0
        return 1.0

    def solution(self, instance: dict) -> str:
        return "\n".join(" ".join(map(str, row)) for row in instance["grid"])
