"""Benchmark module: a ~50 µs verifier (check a completed 9×9 sudoku grid against its givens)."""

import random

from resyn import Environment


class SudokuCheck(Environment):
    """Complete a sudoku grid; the verifier checks rows, columns, boxes and the givens."""

    name = "sudoku_check"
    max_difficulty = 3

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        base = [[(3 * (r % 3) + r // 3 + c) % 9 + 1 for c in range(9)] for r in range(9)]
        digits = list(range(1, 10))
        rng.shuffle(digits)
        grid = [[digits[v - 1] for v in row] for row in base]
        holes = 20 + 10 * difficulty
        cells = rng.sample(range(81), holes)
        puzzle = [row[:] for row in grid]
        for cell in cells:
            puzzle[cell // 9][cell % 9] = 0
        return {"puzzle": puzzle, "grid": grid}

    def question(self, instance: dict) -> str:
        rows = "\n".join(" ".join(str(v) if v else "." for v in row) for row in instance["puzzle"])
        return f"Complete the sudoku. Answer with 9 lines of 9 digits.\n{rows}"

    def verify(self, instance: dict, answer: str) -> float:
        lines = [line.replace(" ", "") for line in answer.strip().splitlines()]
        if len(lines) != 9 or any(len(line) != 9 or not line.isdigit() for line in lines):
            return 0.0
        grid = [[int(ch) for ch in line] for line in lines]
        full = set(range(1, 10))
        for i in range(9):
            if set(grid[i]) != full or {grid[r][i] for r in range(9)} != full:
                return 0.0
            br, bc = 3 * (i // 3), 3 * (i % 3)
            if {grid[br + r][bc + c] for r in range(3) for c in range(3)} != full:
                return 0.0
        for r, row in enumerate(instance["puzzle"]):
            for c, given in enumerate(row):
                if given and grid[r][c] != given:
                    return 0.0
        return 1.0

    def solution(self, instance: dict) -> str:
        return "\n".join("".join(map(str, row)) for row in instance["grid"])
