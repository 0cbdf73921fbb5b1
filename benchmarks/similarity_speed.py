"""Near-duplicate detection speed: signatures per module, and a 10,000-item index.

Usage: .venv/bin/python benchmarks/similarity_speed.py [--items N]
Prints one JSON document. Modules are read as text (tokenize/ast), never imported.

* ``signatures``: time to make each kind of signature (code of every good fixture and example,
  idea keywords, descriptions, six questions, a whole fingerprint).
* ``code_index``: N code-like signatures with a realistic background — each item keeps a random
  60 % of the shingles of one of the real modules plus its own, so items of one "house style"
  share ~0.2 — insert time, query time for planted near-duplicates (recall) and for fresh items,
  candidates scored per query, and brute force for comparison.
* ``idea_index``: N keyword signatures over a 2,000-word vocabulary (each word in ~15 keywords);
  50 proposals that extend a stored keyword by one word and 50 fresh ones; ``screen`` of the 100
  (index built from the N, then queried).
* ``families`` and ``pairwise_summary`` over the N code-like items.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

from resyn.synth import similarity as sim

ROOT = Path(__file__).parents[1]
MODULES = sorted((ROOT / "tests/fixtures/envs/good").glob("*.py")) + sorted(
    (ROOT / "resyn/examples").glob("*.py")
)
KEYWORDS = [
    "0/1 knapsack problem",
    "graph colouring with 3 colors",
    "longest common subsequence of two strings",
    "shortest path in a grid",
    "Caesar cipher decryption",
    "topological sorting of a DAG",
]
DESCRIPTION = (
    "Choose items with weights and values so that their total weight fits a capacity and their total "
    "value is as large as possible. Difficulty raises the number of items (5 at level 1, 13 at level 5) "
    "and their weights."
)
QUESTIONS = [
    f"Colour the vertices of an undirected graph with at most {k} colours, numbered 1 to {k}, so that the "
    f"two endpoints of every edge get different colours.\n\nThe graph has {n} vertices and these edges:\n"
    + ", ".join(f"{u}-{u + 1 + (u * 7) % 5}" for u in range(n - 6))
    + f"\n\nAnswer with {n} integers separated by commas."
    for k, n in ((3, 8), (3, 9), (3, 10), (4, 19), (4, 20), (4, 21))
]


def per_call(fn, repeats: int) -> float:
    """Best-of-three mean seconds per call."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - began) / repeats)
    return best


def signatures() -> dict[str, object]:
    sources = [path.read_text() for path in MODULES]
    code = [per_call(lambda s=source: sim.code_signature(s), 20) for source in sources]
    first, second = sim.text_signature(KEYWORDS[0]), sim.text_signature(KEYWORDS[1])
    code_a, code_b = sim.code_signature(sources[0]), sim.code_signature(sources[1])
    return {
        "modules": len(sources),
        "code_ms_mean": round(1e3 * statistics.mean(code), 3),
        "code_ms_max": round(1e3 * max(code), 3),
        "keyword_us": round(
            1e6 * statistics.mean(per_call(lambda k=k: sim.text_signature(k), 200) for k in KEYWORDS), 1
        ),
        "description_us": round(1e6 * per_call(lambda: sim.description_signature(DESCRIPTION), 200), 1),
        "questions_6_ms": round(1e3 * per_call(lambda: sim.questions_signature(QUESTIONS), 50), 3),
        "fingerprint_ms": round(
            1e3 * per_call(lambda: sim.env_fingerprint("x", sources[0], QUESTIONS), 20), 3
        ),
        "keyword_compare_us": round(1e6 * per_call(lambda: sim.text_similarity(first, second), 2_000), 1),
        "code_compare_us": round(1e6 * per_call(lambda: sim.code_similarity(code_a, code_b), 2_000), 1),
    }


def code_like_items(count: int, rng: random.Random) -> tuple[list[list[int]], list[sim.CodeSignature]]:
    bases = []
    for path in MODULES:
        tokens, _ = sim.code_tokens(path.read_text())
        k = sim.CODE_SHINGLE
        bases.append(
            sorted({sim._hash64("\x1f".join(tokens[i : i + k])) for i in range(len(tokens) - k + 1)})
        )
    sets = []
    for _ in range(count):
        base = rng.choice(bases)
        kept = rng.sample(base, int(0.6 * len(base)))
        sets.append(kept + [rng.getrandbits(64) for _ in range(len(base) - len(kept))])
    return sets, [sim.CodeSignature(minhash=sim.sketch(s), size=len(s), tokens=len(s)) for s in sets]


def code_index(count: int) -> tuple[dict[str, object], list[sim.CodeSignature]]:
    rng = random.Random(1)
    began = time.perf_counter()
    sets, items = code_like_items(count, rng)
    sketch_s = time.perf_counter() - began
    index: sim.DuplicateIndex[int, sim.CodeSignature] = sim.DuplicateIndex()
    began = time.perf_counter()
    for key, signature in enumerate(items):
        index.add(key, signature)
    insert_s = time.perf_counter() - began

    targets = rng.sample(range(count), 100)
    planted = []
    for target in targets:  # ~0.74 Jaccard with its target
        keep = int(0.85 * len(sets[target]))
        hashes = sets[target][:keep] + [rng.getrandbits(64) for _ in range(len(sets[target]) - keep)]
        planted.append(sim.CodeSignature(minhash=sim.sketch(hashes), size=len(hashes), tokens=len(hashes)))
    fresh = code_like_items(100, rng)[1]

    def run(queries: list[sim.CodeSignature]) -> tuple[float, float, list[list[tuple[int, float]]]]:
        began = time.perf_counter()
        results = [index.nearest(q, k=1, min_similarity=sim.DUPLICATE_CODE_THRESHOLD) for q in queries]
        elapsed = (time.perf_counter() - began) / len(queries)
        candidates = statistics.mean(len(index.candidates(q)) for q in queries)
        return elapsed, candidates, results

    planted_s, planted_candidates, results = run(planted)
    recall = sum(
        1 for target, found in zip(targets, results, strict=True) if found and found[0][0] == target
    ) / len(targets)
    fresh_s, fresh_candidates, fresh_results = run(fresh)
    began = time.perf_counter()
    for query in planted[:20]:
        index.nearest(query, k=1, exhaustive=True)
    brute_s = (time.perf_counter() - began) / 20
    return {
        "items": count,
        "sketch_s": round(sketch_s, 3),
        "insert_s": round(insert_s, 3),
        "insert_us_per_item": round(1e6 * insert_s / count, 1),
        "query_planted_ms": round(1e3 * planted_s, 3),
        "query_planted_candidates": round(planted_candidates, 1),
        "planted_recall": recall,
        "query_fresh_ms": round(1e3 * fresh_s, 3),
        "query_fresh_candidates": round(fresh_candidates, 1),
        "fresh_false_duplicates": sum(1 for found in fresh_results if found),
        "brute_force_query_ms": round(1e3 * brute_s, 3),
    }, items


def idea_index(count: int) -> dict[str, object]:
    rng = random.Random(2)
    vocabulary = [
        "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4)))
        for _ in range(2_000)
    ]
    keywords = sorted({" ".join(rng.sample(vocabulary, rng.randint(2, 4))) for _ in range(count)})
    began = time.perf_counter()
    existing = [(keyword, sim.idea_signature(keyword)) for keyword in keywords]
    signature_s = time.perf_counter() - began
    proposals = [(f"p{i}", sim.idea_signature(rng.choice(keywords) + " variant")) for i in range(50)]
    proposals += [(f"q{i}", sim.idea_signature(" ".join(rng.sample(vocabulary, 3)))) for i in range(50)]
    began = time.perf_counter()
    index: sim.DuplicateIndex[str, sim.IdeaSignature] = sim.DuplicateIndex()
    for key, signature in existing:
        index.add(key, signature)
    insert_s = time.perf_counter() - began
    began = time.perf_counter()
    candidates = statistics.mean(len(index.candidates(signature)) for _, signature in proposals)
    for _, signature in proposals:
        index.nearest(signature, min_similarity=sim.DUPLICATE_IDEA_THRESHOLD)
    query_s = (time.perf_counter() - began) / len(proposals)
    began = time.perf_counter()
    verdicts = sim.screen(proposals, existing)
    screen_s = time.perf_counter() - began
    return {
        "items": len(keywords),
        "signatures_s": round(signature_s, 3),
        "insert_s": round(insert_s, 3),
        "query_ms": round(1e3 * query_s, 3),
        "query_candidates": round(candidates, 1),
        "screen_100_proposals_s": round(screen_s, 3),
        "duplicates_found": sum(1 for v in verdicts if v.duplicate_of is not None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    report: dict[str, object] = {"python": platform.python_version(), "machine": platform.machine()}
    report["signatures"] = signatures()
    report["code_index"], items = code_index(args.items)
    report["idea_index"] = idea_index(args.items)
    keyed = list(enumerate(items))
    began = time.perf_counter()
    groups = sim.families(keyed)
    report["families"] = {
        "items": len(keyed),
        "seconds": round(time.perf_counter() - began, 3),
        "families": len(groups),
        "largest": len(groups[0]),
    }
    began = time.perf_counter()
    summary = sim.pairwise_summary(items, sample_limit=20_000)
    report["pairwise_summary"] = {
        "seconds": round(time.perf_counter() - began, 3),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
