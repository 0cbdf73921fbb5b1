"""Benchmark module: the cheapest possible verifier (one string comparison)."""

import random

from resyn import Environment


class Trivial(Environment):
    """Repeat a number."""

    name = "trivial"
    max_difficulty = 3

    def generate(self, rng: random.Random, difficulty: int) -> dict:
        return {"n": rng.randint(0, 10 ** (3 * difficulty))}

    def question(self, instance: dict) -> str:
        return f"Repeat the number {instance['n']}."

    def verify(self, instance: dict, answer: str) -> float:
        return 1.0 if answer == str(instance["n"]) else 0.0

    def solution(self, instance: dict) -> str:
        return str(instance["n"])
