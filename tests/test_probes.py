"""Negative probe construction (pure functions)."""

from __future__ import annotations

import random

from resyn.checks import probes


def test_numeric_perturbations_keep_the_gold_format() -> None:
    kinds = dict(probes.numeric_perturbations("42"))
    assert kinds["plus_one"] == "43" and kinds["minus_one"] == "41"
    assert kinds["times_10"] == "420" and kinds["negated"] == "-42"
    assert dict(probes.numeric_perturbations("3/4"))["negated"] == "-3/4"
    assert "plus_one" not in dict(probes.numeric_perturbations("2.5"))
    assert probes.numeric_perturbations("abc") == []
    assert probes.numeric_perturbations("5e334") == []  # a hex gold, not 5×10^334 (was an OverflowError)
    assert probes.mutations("5e334", random.Random(0))
    assert dict(probes.numeric_perturbations("0")).keys() == {"plus_one", "minus_one"}


def test_mutations_are_format_preserving_and_different() -> None:
    rng = random.Random(0)
    for gold in ("3 1 2", "[1, 2, 3]", "0 1 1 0", "hello world", "R1,C2;R3,C4", "7"):
        for kind, answer in probes.mutations(gold, rng):
            assert answer.strip() != gold.strip(), (kind, gold)
    kinds = dict(probes.mutations("5 9 2", rng))
    assert sorted(kinds["items_swapped"].split()) == ["2", "5", "9"]
    assert len(kinds["item_dropped"].split()) == 2 and "item_duplicated" not in kinds
    assert "bit_flipped" in dict(probes.mutations("0 1 1 0", rng))


def test_shotgun_lists_the_gold_among_others() -> None:
    rng = random.Random(1)
    answers = dict(probes.shotgun("7", ["3", "9", "12", "7"], rng))
    assert "7" in answers["list_comma"].split(", ") and len(answers["list_comma"].split(", ")) == 4
    assert answers["numeric_range"] == "4, 5, 6, 7, 8, 9, 10"
    assert probes.shotgun("abc", [], rng) == []


def test_long_answers_have_the_requested_length() -> None:
    for _, answer in probes.long_answers(10_000, random.Random(2)):
        assert len(answer) == 10_000


def test_whole_token_pattern() -> None:
    pattern = probes.whole_token_pattern("12")
    assert pattern is not None
    assert pattern.search("the answer is 12.")
    assert not pattern.search("1234") and not pattern.search("x12") and not pattern.search("12.5")
    assert probes.whole_token_pattern("  ") is None


def test_mutations_of_a_huge_gold_stay_linear() -> None:
    # 200k items: enumerating pairs (4e10) would exhaust memory; one random pair is drawn instead.
    gold = " ".join(str(i % 7) for i in range(200_000))
    kinds = dict(probes.mutations(gold, random.Random(3)))
    assert sorted(kinds["items_swapped"].split()) == sorted(gold.split())
    assert kinds["items_swapped"] != gold


def test_reordering_a_mapping_is_not_a_mutation() -> None:
    kinds = dict(probes.mutations("A=6,D=3,P=0", random.Random(4)))
    assert "items_swapped" not in kinds and "item_dropped" in kinds
