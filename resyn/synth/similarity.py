"""Near-duplicate detection for task ideas and environments: pure, deterministic, stdlib only.

ReSyn's premise is that task *diversity* drives transfer, so resyn keeps near-duplicates out at two
levels:

* **ideas** (a keyword and a short description from the ``propose`` prompt) are compared with each
  other and with the keywords and descriptions already in the catalog (:func:`idea_signature`,
  :func:`idea_similarity`; the text layer is :func:`text_signature` / :func:`text_similarity`);
* **accepted environments** are compared by their code (:func:`code_signature`) and by a handful
  of sampled questions (:func:`questions_signature`), combined in :func:`environment_similarity`.

Every similarity is a Jaccard index of two feature sets: words of a text, token shingles of a
module, words and word pairs of a question template. Long sets are summarised by a MinHash sketch:
*one-permutation* MinHash with optimal densification (Shrivastava, ICML 2017). Each feature is
hashed once with BLAKE2b, its hash picks one of :data:`SKETCH_BINS` bins, and each bin keeps its
smallest value. In pure Python that is 50x faster than 128 independent permutations (0.3 ms rather
than 18 ms for the ~400 shingles of a module), each bin still collides with probability equal to
the Jaccard index, and so :class:`DuplicateIndex` can use the usual LSH banding. BLAKE2b, not ``hash()`` (which
``PYTHONHASHSEED`` salts), makes signatures identical in every process and on every machine, so
they are stored in the catalog as JSON (``model_dump(mode="json")``, ``model_validate``) and
compared later. Short sets (a keyword's words, a question template) are also kept whole and
compared exactly, because their decisions sit near a threshold, where sketch noise would decide.

Thresholds, calibrated by the tables and corpora in ``tests/test_similarity.py``:

============================  =====  =================================================================
what                          ≥      where it sits
============================  =====  =================================================================
idea keywords                 0.55   duplicates ≥ 0.60, distinct-but-related ≤ 0.50: more than half of
                                     the distinct content words must be shared
idea descriptions             0.60   restated descriptions ≥ 0.75; related tasks ≤ 0.39, but so are
                                     free paraphrases of one task (0.375-0.55): only near-copies count
code                          0.60   revisions of one module ≥ 0.69; renamed and reformatted 1.0;
                                     different tasks ≤ 0.39 (mean 0.19), the three examples ≤ 0.22
question templates            0.60   the same environment at other seeds = 1.0; different tasks ≤ 0.29
                                     (median 0.07)
============================  =====  =================================================================

What this does *not* catch: the same task written independently in another style and wording
(the examples' graph colouring against the fixtures' scores 0.34 on code and 0.21 on questions).
That takes a semantic judgement; lexical similarity is the cheap first line that keeps a run from
spending model calls on a task it already has.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import io
import itertools
import keyword
import math
import operator
import random
import re
import tokenize
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import ClassVar, Generic, Literal, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from resyn import _ast

# -- constants -------------------------------------------------------------------------------------

SIGNATURE_VERSION = 1
"""Bumped whenever features or hashing change. Signatures of different versions are never compared
(:class:`SignatureMismatch`): recompute the older one from the stored code or questions."""

SKETCH_BINS = 128
"""Bins of a MinHash sketch. The standard error of an estimated Jaccard index J is about
``sqrt(J (1 - J) / 128)``, i.e. ±0.044 at J = 0.5: inside the gap between the revisions and the
distinct modules of the code corpus. A sketch is 128 32-bit ints, about 1.4 kB of JSON."""

EXACT_FEATURES = 256
"""Question templates with at most this many features keep their feature hashes (32-bit) and are
compared exactly; a template typically has 20-60."""

EXACT_WORDS = 64
"""Texts with at most this many distinct words (after normalisation) keep them and are compared
exactly by :func:`soft_jaccard`; longer ones are compared by their sketches."""

DUPLICATE_IDEA_THRESHOLD = 0.55
"""Ideas whose keywords reach this :func:`text_similarity` are duplicates. Duplicates in the
calibration table score ≥ 0.60 ("longest common subsequence" / "… of two strings": 3 of 5 words),
distinct-but-related ideas ≤ 0.50 ("longest increasing subsequence" / "longest common
subsequence", "number of paths in a grid" / "shortest path in a grid": 2 of 4 words). Between them,
the rule reads: more than half of the distinct content words are shared."""

DUPLICATE_DESCRIPTION_THRESHOLD = 0.6
"""Ideas whose descriptions reach this :func:`text_similarity` are duplicates even when their
keywords differ: a description restated under a new name (0.75-1.0 in the calibration table).
Paraphrases of one task (0.375-0.55) cannot be told from descriptions of related tasks
("Vigenère" vs "Caesar cipher" 0.37, "count lattice paths" vs "cheapest grid path" 0.39) by words
alone, so the threshold sits above both and descriptions only catch near-copies."""

DUPLICATE_CODE_THRESHOLD = 0.6
"""Modules whose :func:`code_similarity` reaches this are duplicates. A revision that rewrites the
verifier (the demo's Josephus rounds) scores 0.69 (0.70 exactly) and one that rewrites the question
0.91; renaming and reformatting score 1.0. Different tasks score ≤ 0.39 (0.47 exactly), the
highest being two short modules of one house style (single-integer answers parsed by the same
regex); the three bundled examples score ≤ 0.22 and the good fixtures 0.19 on average. The 0.85
of plagiarism detectors would miss a revision of the verifier."""

DUPLICATE_QUESTIONS_THRESHOLD = 0.6
"""Environments whose question templates reach this :func:`questions_similarity` are duplicates.
Two samples of one environment at other seeds score 1.0 (numbers are placeholders and instance
data is filtered out); different tasks score ≤ 0.29 (sorting numbers vs picking a subset of them:
both answer with a list of numbers). Equal to the code threshold so that ``max(code, questions)``
is one score with one threshold."""

LSH_BANDS = 32
"""Bands of a :class:`DuplicateIndex` over code and question signatures (4 rows each). Two items
with Jaccard J share a band with probability ``1 - (1 - J^4)^32``: 0.87 at J = 0.5, 0.99 at 0.6
and 0.9999 at 0.7, so duplicates by the thresholds above are found, while unrelated items
(J ≤ 0.2) become candidates 5 % of the time and exact scoring stays cheap."""

LSH_BANDS_TEXT = 64
"""Bands for text and idea signatures (2 rows each). Their sketches cover words only, and a
duplicate by the soft score may share as few as half of its words exactly (J ≈ 0.33-0.5), so
candidates are drawn generously (0.9995 at J = 0.33): any two keywords sharing a word are scored,
which is cheap for short texts."""

_HASH_PERSON = b"resyn-sim"
_BIN_BITS = SKETCH_BINS.bit_length() - 1
_VALUE_MASK = (1 << 32) - 1
_EMPTY = -1


# -- hashing and sketches --------------------------------------------------------------------------


class SignatureMismatch(ValueError):
    """Two signatures of different kinds or versions were compared: recompute the older one."""


def _hash64(feature: str) -> int:
    """A 64-bit hash of ``feature`` that is the same in every process (``hash()`` is salted)."""
    digest = hashlib.blake2b(
        feature.encode("utf-8", "surrogatepass"), digest_size=8, person=_HASH_PERSON
    ).digest()
    return int.from_bytes(digest, "little")


def _probe_orders() -> tuple[tuple[int, ...], ...]:
    """For each bin, the fixed pseudo-random order in which densification looks for a non-empty
    bin to borrow from (``random.Random`` with an int seed is the same in every process)."""
    rng = random.Random(0x5E5)
    orders = []
    for index in range(SKETCH_BINS):
        others = [other for other in range(SKETCH_BINS) if other != index]
        rng.shuffle(others)
        orders.append(tuple(others))
    return tuple(orders)


_PROBES = _probe_orders()
_RANKS = tuple(
    tuple(order.index(other) if other != index else SKETCH_BINS for other in range(SKETCH_BINS))
    for index, order in enumerate(_PROBES)
)
"""``_RANKS[i][j]``: the position of bin ``j`` in the probe order of bin ``i``."""


def sketch(hashes: Iterable[int]) -> tuple[int, ...]:
    """One-permutation MinHash of a set of 64-bit feature hashes: the low bits pick the bin, the
    next 32 bits are the value, each bin keeps its minimum. An empty bin copies the value of the
    first non-empty bin in its fixed probe order ("optimal densification"), which keeps the
    collision probability of every bin equal to the Jaccard index. The empty set gives ``()``."""
    bins = [_EMPTY] * SKETCH_BINS
    mask = SKETCH_BINS - 1
    for value in hashes:
        index = value & mask
        low = (value >> _BIN_BITS) & _VALUE_MASK
        current = bins[index]
        if current == _EMPTY or low < current:
            bins[index] = low
    filled = [index for index, value in enumerate(bins) if value != _EMPTY]
    if not filled:
        return ()
    dense = list(bins)
    sparse = len(filled) * 8 < SKETCH_BINS  # walking the probe order would take many steps
    for index, value in enumerate(bins):
        if value != _EMPTY:
            continue
        if sparse:  # the filled bin that comes first in this bin's probe order
            dense[index] = bins[min(filled, key=_RANKS[index].__getitem__)]
        else:
            dense[index] = next(bins[other] for other in _PROBES[index] if bins[other] != _EMPTY)
    return tuple(dense)


def sketch_jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard index of the sets behind two sketches; 0.0 when either set is empty."""
    if not a or not b:
        return 0.0
    if len(a) != len(b):
        raise SignatureMismatch(f"sketches of {len(a)} and {len(b)} bins cannot be compared")
    matches: int = sum(map(operator.eq, a, b))  # a third faster than a generator
    return matches / len(a)


def _jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


# -- signatures ------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Sketch(_Frozen):
    lsh_bands: ClassVar[int] = LSH_BANDS

    version: int = SIGNATURE_VERSION
    minhash: tuple[int, ...]
    """The MinHash sketch: ``SKETCH_BINS`` ints, or none for an empty feature set."""
    size: int = Field(ge=0)
    """How many distinct features (words, shingles) the sketch summarises."""

    def sketches(self) -> tuple[tuple[int, ...], ...]:
        """The sketches a :class:`DuplicateIndex` draws candidates from."""
        return (self.minhash,)


class TextSignature(_Sketch):
    """Signature of a short text: a keyword (``kind="text"``) or a description."""

    lsh_bands: ClassVar[int] = LSH_BANDS_TEXT

    kind: Literal["text", "description"] = "text"
    words: tuple[str, ...] | None = None
    """The normalised distinct words, sorted, when there are at most ``EXACT_WORDS`` of them (then
    comparisons are exact); ``None`` for longer texts."""


class CodeSignature(_Sketch):
    """Signature of an environment module's source."""

    kind: Literal["code"] = "code"
    tokens: int = Field(ge=0)
    """Normalised tokens the shingles were taken from."""
    parsed: bool = True
    """``False`` for a source with a syntax error. Its own and imported names are then read from its
    ``def``, ``class`` and ``import`` lines, and what does not tokenize (after an unclosed bracket,
    an unterminated string, an inconsistent dedent) is split by a regular expression that mimics
    :mod:`tokenize`: a broken module still scores high against its fixed version."""


class QuestionsSignature(_Sketch):
    """Signature of a handful of sampled questions of one environment."""

    kind: Literal["questions"] = "questions"
    count: int = Field(ge=0)
    """How many questions it was made from."""
    features: tuple[int, ...] | None = None
    """The sorted 32-bit hashes of the template's features when there are at most
    ``EXACT_FEATURES`` of them (then comparisons are exact)."""


class IdeaSignature(_Frozen):
    """Signature of a task idea: its keyword and, when there is one, its description."""

    lsh_bands: ClassVar[int] = LSH_BANDS_TEXT

    keyword: TextSignature
    description: TextSignature | None = None

    def sketches(self) -> tuple[tuple[int, ...], ...]:
        return (self.keyword.minhash, self.description.minhash if self.description else ())


class EnvFingerprint(_Frozen):
    """What near-duplicate detection keeps of an environment (stored in the catalog's
    ``environments.fingerprint`` column as ``model_dump(mode="json")``)."""

    lsh_bands: ClassVar[int] = LSH_BANDS

    env_id: str
    code: CodeSignature
    questions: QuestionsSignature

    def sketches(self) -> tuple[tuple[int, ...], ...]:
        return (self.code.minhash, self.questions.minhash)


Signature = TextSignature | CodeSignature | QuestionsSignature | IdeaSignature | EnvFingerprint


def _check_comparable(a: _Sketch, b: _Sketch) -> None:
    kind_a, kind_b = getattr(a, "kind", None), getattr(b, "kind", None)
    if type(a) is not type(b) or kind_a != kind_b:
        raise SignatureMismatch(f"cannot compare a {kind_a} signature with a {kind_b} signature")
    if a.version != b.version:
        raise SignatureMismatch(
            f"signature versions {a.version} and {b.version} differ: recompute the older one"
        )


# -- text ------------------------------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _word_set(
    """a about above after again against all an and any are as at be because been before being
    below between both but by can could did do does doing down during each every few for from
    further had has have having he her here hers him his how i if in into is it its itself just me
    more most my no nor not of off on once only or other our out over own same she should so some
    such than that the their them then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    given using use based via per whose thus also etc
    problem problems task tasks puzzle puzzles question questions challenge exercise exercises
    algorithm algorithms find finding compute computing calculate calculating determine
    determining solve solving"""
)
"""Function words and words any task idea may contain ("problem", "puzzle", "find", "compute",
"algorithm"): they say nothing about *which* task an idea is, and left in they make unrelated ideas
look alike ("the X problem" vs "the Y problem")."""

_DESCRIPTION_WORDS = _word_set(
    """difficulty level levels raise raises rais harder hard easier easy larger large small smaller
    size sizes number numbers count answer answers accept accepted instance instances generate
    generated generat random always exist exists one two several correct valid must each make makes
    made"""
)
"""Words nearly every environment description uses ("Difficulty raises the number of …", "any
valid answer is accepted"), dropped from descriptions (not from keywords, where "number" or "count"
can name the task)."""

_BRITISH = {
    "colour": "color",
    "neighbour": "neighbor",
    "behaviour": "behavior",
    "favour": "favor",
    "labour": "labor",
    "honour": "honor",
    "harbour": "harbor",
    "armour": "armor",
    "centre": "center",
    "metre": "meter",
    "litre": "liter",
    "parenthesis": "parenthesiz",
    "optimis": "optimiz",
    "minimis": "minimiz",
    "maximis": "maximiz",
    "normalis": "normaliz",
    "randomis": "randomiz",
    "recognis": "recogniz",
    "organis": "organiz",
    "analys": "analyz",
}
"""British spellings folded to American ones, matched at the start of a word so that inflected
forms follow ("colouring" → "coloring")."""

_IRREGULAR = {
    "vertices": "vertex",
    "matrices": "matrix",
    "indices": "index",
    "radii": "radius",
    "people": "person",
    "children": "child",
}
_BRITISH_PREFIX = re.compile("|".join(sorted(_BRITISH, key=len, reverse=True)))
_ING_KEPT = ("string", "thing", "spring", "ceiling", "morning", "evening")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")
_DIGITS = re.compile(r"\d+")
_DOUBLED = re.compile(r"([b-df-hj-np-tv-z])\1$")


def _stem(word: str) -> str:
    """A deliberately light stemmer: irregular and regular plurals (-s, -es, -ies), -ing and -ed,
    and a final -e, so that "coloring", "colors" and "color", or "sorting", "sorts" and "sort",
    meet. Heavier stemming (Porter) conflates words that name different tasks, and the character
    n-grams of :func:`soft_jaccard` already catch what it would add ("conversion" / "convert")."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    british = _BRITISH_PREFIX.match(word)
    if british:
        word = _BRITISH[british.group()] + word[british.end() :]
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing") and not word.endswith(_ING_KEPT):
        word = _DOUBLED.sub(r"\1", word[:-3])
    elif len(word) > 5 and word.endswith("ed"):
        word = _DOUBLED.sub(r"\1", word[:-2])
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def normalize_text(
    text: str, *, stopwords: bool = True, numbers: Literal["keep", "mask", "drop"] = "keep"
) -> str:
    """The comparable form of a text: Unicode NFKC, case folded, punctuation turned into spaces,
    digits split from letters ("3SAT", "9x9"), light stemming (:func:`_stem`), single spaces.

    ``stopwords=True`` drops function words, generic task words (:data:`_STOPWORDS`) and
    one-letter names of a notation ("a^b mod m", "k-coloring"). ``numbers="mask"`` turns every run
    of digits into ``#``, so two instances of one task with different numbers read the same;
    ``"drop"`` removes them.

    >>> normalize_text("The 0/1 Knapsack problem: 9×9 colourings")
    '0 1 knapsack 9 9 color'
    """
    text = unicodedata.normalize("NFKC", text).casefold().replace("×", " x ")
    text = _DIGIT_LETTER.sub(" ", _PUNCTUATION.sub(" ", text))
    if numbers == "mask":
        text = _DIGITS.sub("#", text)
    elif numbers == "drop":
        text = _DIGITS.sub(" ", text)
    words = []
    for word in text.split():
        if stopwords and (word in _STOPWORDS or (len(word) == 1 and not word.isdigit() and word != "#")):
            continue
        stemmed = _stem(word)
        if stopwords and stemmed in _STOPWORDS:
            continue
        words.append(stemmed)
    return " ".join(words)


SOFT_MATCH_FLOOR = 0.3
"""Two different words count as a partial match (worth their n-gram similarity) from this n-gram
similarity on: "conversion" / "convert" (0.39) and "decryption" / "decrypt" (0.5) do, while
"shortest" / "longest" (0.12) do not."""

CHAR_GRAMS = (3, 4)


@functools.lru_cache(maxsize=1 << 16)
def _grams(word: str) -> frozenset[str]:
    padded = f" {word} "
    return frozenset(padded[i : i + size] for size in CHAR_GRAMS for i in range(len(padded) - size + 1))


def _word_similarity(a: str, b: str) -> float:
    """Jaccard index of the character 3- and 4-grams of two words padded with spaces."""
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) / len(ga | gb)


def soft_jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """Jaccard index of two sets of words in which unequal words may still match in part.

    After the equal words, the remaining ones are paired greedily by their character n-gram
    similarity (best first, each word once), and a pair at or above :data:`SOFT_MATCH_FLOOR`
    counts as that fraction of a match. Every word weighs the same whatever its length: "longest
    *increasing* subsequence" and "longest *common* subsequence" share two words of four (0.5),
    not the many n-grams of "subsequence", which would make them look like one task."""
    wa, wb = set(a), set(b)
    if not wa or not wb:
        return 0.0
    common = wa & wb
    rest_a, rest_b = sorted(wa - common), sorted(wb - common)
    pairs = sorted(
        (-value, x, y)
        for x in rest_a
        for y in rest_b
        if (value := _word_similarity(x, y)) >= SOFT_MATCH_FLOOR
    )
    matched = float(len(common))
    used_a: set[str] = set()
    used_b: set[str] = set()
    for negative, x, y in pairs:
        if x not in used_a and y not in used_b:
            used_a.add(x)
            used_b.add(y)
            matched -= negative
    return matched / (len(wa) + len(wb) - matched)


def _text_signature_of(words: Iterable[str], kind: Literal["text", "description"]) -> TextSignature:
    """The sketch covers the words only (no n-grams): it estimates the plain word Jaccard, which
    never exceeds :func:`soft_jaccard`, so an index finds every duplicate, while unrelated keywords
    that merely share n-grams ("-tion", "-ing") do not all become candidates."""
    distinct = sorted(set(words))
    hashes = [_hash64(f"w\x1f{word}") for word in distinct]
    exact = tuple(distinct) if len(distinct) <= EXACT_WORDS else None
    return TextSignature(minhash=sketch(hashes), size=len(hashes), kind=kind, words=exact)


def text_signature(text: str) -> TextSignature:
    """Signature of a short text such as a keyword or a task name."""
    return _text_signature_of(normalize_text(text).split(), "text")


def description_signature(text: str) -> TextSignature:
    """Signature of a task description: like :func:`text_signature`, without numbers (difficulty
    ranges) and without the words every description uses (:data:`_DESCRIPTION_WORDS`)."""
    words = normalize_text(text, numbers="drop").split()
    generic = _DESCRIPTION_WORDS | {_stem(word) for word in _DESCRIPTION_WORDS}
    return _text_signature_of((word for word in words if word not in generic), "description")


def text_similarity(a: TextSignature | str, b: TextSignature | str) -> float:
    """Similarity of two texts in [0, 1]: :func:`soft_jaccard` of their normalised words when both
    are short (≤ :data:`EXACT_WORDS` words), else the Jaccard index of their words
    estimated from the sketches. Strings are read with :func:`text_signature`."""
    sa = text_signature(a) if isinstance(a, str) else a
    sb = text_signature(b) if isinstance(b, str) else b
    _check_comparable(sa, sb)
    if sa.words is not None and sb.words is not None:
        return soft_jaccard(sa.words, sb.words)
    return sketch_jaccard(sa.minhash, sb.minhash)


# -- ideas -----------------------------------------------------------------------------------------


def idea_signature(keyword: str, description: str | None = None) -> IdeaSignature:
    """Signature of a task idea, or of what the catalog holds of an environment (its keyword and
    its description)."""
    described = description_signature(description) if description and description.strip() else None
    return IdeaSignature(keyword=text_signature(keyword), description=described)


class IdeaSimilarity(_Frozen):
    """How alike two ideas are, and whether that makes them duplicates."""

    keyword: float
    description: float | None
    """``None`` when either idea has no description."""
    combined: float
    """The keyword similarity, or the description similarity put on the keyword's scale
    (times ``DUPLICATE_IDEA_THRESHOLD / DUPLICATE_DESCRIPTION_THRESHOLD``, at most 1) when that is
    higher: ``combined ≥ DUPLICATE_IDEA_THRESHOLD`` exactly when the ideas are duplicates."""
    is_duplicate: bool


def idea_similarity(a: IdeaSignature, b: IdeaSignature) -> IdeaSimilarity:
    """Keyword and description similarity of two ideas: duplicates when the keywords reach
    :data:`DUPLICATE_IDEA_THRESHOLD` or the descriptions :data:`DUPLICATE_DESCRIPTION_THRESHOLD`.
    Keywords name the task and decide most cases; descriptions catch one task under two names."""
    keyword_score = text_similarity(a.keyword, b.keyword)
    description_score = None
    combined = keyword_score
    duplicate = keyword_score >= DUPLICATE_IDEA_THRESHOLD
    if a.description is not None and b.description is not None:
        description_score = text_similarity(a.description, b.description)
        scaled = min(1.0, description_score * DUPLICATE_IDEA_THRESHOLD / DUPLICATE_DESCRIPTION_THRESHOLD)
        combined = max(combined, scaled)
        if description_score >= DUPLICATE_DESCRIPTION_THRESHOLD:
            duplicate = True
            combined = max(combined, DUPLICATE_IDEA_THRESHOLD)  # not a hair below it by rounding
    return IdeaSimilarity(
        keyword=keyword_score, description=description_score, combined=combined, is_duplicate=duplicate
    )


# -- questions -------------------------------------------------------------------------------------


def _question_features(question: str) -> set[str]:
    words = normalize_text(question, numbers="mask").split()
    features = {f"w\x1f{word}" for word in words}
    features.update(f"b\x1f{x} {y}" for x, y in itertools.pairwise(words))
    return features


def questions_signature(questions: Sequence[str]) -> QuestionsSignature:
    """Signature of a handful of questions of one environment: the words and word pairs of their
    *template*, with numbers as ``#``.

    Only the template identifies the task: the instance data in a question (random words to sort,
    a ciphertext, grid cells) changes from one sample to the next. So with several questions a
    feature counts only if at least half of them (and at least two) contain it; two samples of the
    same environment then look the same whatever their seeds and levels. Word pairs, not just
    words, because two tasks often share vocabulary ("integer", "list", "order") but seldom
    phrasing."""
    per_question = [_question_features(question) for question in questions]
    if len(per_question) <= 1:
        features = per_question[0] if per_question else set()
    else:
        needed = max(2, math.ceil(len(per_question) / 2))
        counts = Counter(feature for features in per_question for feature in features)
        features = {feature for feature, count in counts.items() if count >= needed}
    hashes = [_hash64(feature) for feature in features]
    exact = tuple(sorted({h >> 32 for h in hashes})) if len(hashes) <= EXACT_FEATURES else None
    return QuestionsSignature(minhash=sketch(hashes), size=len(hashes), count=len(questions), features=exact)


def questions_similarity(a: QuestionsSignature, b: QuestionsSignature) -> float:
    """Jaccard index of the question templates of two environments, in [0, 1] (exact for small
    templates, estimated from the sketches otherwise)."""
    _check_comparable(a, b)
    if a.features is not None and b.features is not None:
        return _jaccard(a.features, b.features)
    return sketch_jaccard(a.minhash, b.minhash)


# -- code ------------------------------------------------------------------------------------------

CODE_SHINGLE = 6
"""Tokens per shingle. Shorter shingles match across unrelated modules (``( ID , ID )``), longer
ones break on every small edit. On the calibration corpus (the good fixtures, the examples and the
demo's modules), exact Jaccard indices show 6 giving the widest gap between revisions of one
module (≥ 0.70) and different tasks (≤ 0.47); 4 gives 0.74 vs 0.57, 8 gives 0.64 vs 0.44."""

_KEEP_NAMES = frozenset(keyword.kwlist)  # not the soft keywords: "match", "case", "_" are often variables
_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))
_SKIPPED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER})
_STATEMENT_START = frozenset({"NEWLINE", "INDENT", "DEDENT"})
_NOT_CALLABLE = _STATEMENT_START | {"STR", "NUM"}
_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -2)
_FALLBACK_TOKEN = re.compile(
    r"""(?P<string>[rbuf]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))"""
    r"|(?P<comment>\#[^\n]*)|(?P<name>[^\W\d]\w*)|(?P<number>\d[\w.]*)|(?P<newline>\n)"
    r"|(?P<op>\*\*=?|//=?|->|<<=?|>>=?|[<>=!:]=|[-+*/%&|^@]=|\.\.\.|[^\s\w])",
    re.IGNORECASE,
)


_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+)?import[ \t]+([^\n#;]+)", re.MULTILINE)
_DEFINITION = re.compile(r"\b(?:def|class)[ \t]+(\w+)")


class _Names(NamedTuple):
    bound: frozenset[str]
    """Names the module binds: functions, classes, parameters, variables."""
    members: frozenset[str]
    """Names the module gives to attributes: methods, classes, class-level variables and
    attributes it assigns (``self.cache = …``)."""
    imported: frozenset[str]
    """Modules and names it imports."""


def _names(source: str) -> tuple[_Names, bool]:
    """The module's own and imported names, and whether the source parsed. Without a parse (a
    syntax error) they come from the ``import``, ``def`` and ``class`` lines, so the names of a
    broken module are read nearly as for its fixed version."""
    bound: set[str] = set()
    members: set[str] = set()
    imported: set[str] = set()
    try:
        tree = _ast.parse(source)
    except (SyntaxError, ValueError):
        for match in _IMPORT_LINE.finditer(source):
            if match.group(1):
                imported.add(match.group(1).split(".")[0])
            for part in match.group(2).replace("(", " ").replace(")", " ").split(","):
                words = part.split()
                if words:
                    imported.add(
                        words[-1] if len(words) == 3 and words[1] == "as" else words[0].split(".")[0]
                    )
        bound.update(_DEFINITION.findall(source))
        return _Names(frozenset(bound), frozenset(bound), frozenset(imported - bound)), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            for alias in node.names:
                imported.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            members.add(node.name)
            if isinstance(node, ast.ClassDef):  # class-level variables are read as self.<name>
                for statement in node.body:
                    targets = statement.targets if isinstance(statement, ast.Assign) else []
                    if isinstance(statement, ast.AnnAssign | ast.AugAssign):
                        targets = [statement.target]
                    members.update(target.id for target in targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
            members.add(node.attr)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return _Names(frozenset(bound), frozenset(members), frozenset(imported - bound)), True


def _name_token(name: str, previous: str, names: _Names) -> str:
    """Keywords, builtins, imported names and attributes the module does not define (``re.
    fullmatch``, ``rng.randint``, ``text.strip``) are kept: renaming cannot touch them, and they
    say what the code does. Every name the module defines itself (classes, functions, parameters,
    variables, its own attributes and methods) becomes ``ID``, so renaming does not change the
    signature. Attributes are judged against the module's members only: a local variable called
    ``lower`` does not hide ``text.lower()``."""
    if name in _KEEP_NAMES:
        return name
    if previous == ".":
        return "ID" if name in names.members else name
    if name in names.bound:
        return "ID"
    return name if name in names.imported or name in _BUILTINS else "ID"


def _drop_grouping_parentheses(tokens: list[str]) -> list[str]:
    """Drop parentheses that only group (after an operator or a keyword, or at the start of a
    statement): formatters add and remove them freely (``return (a, b)``, a long string wrapped in
    parentheses). Call, definition and base-class parentheses (after a name or a closing bracket)
    stay."""
    out: list[str] = []
    kept: list[bool] = []
    for token in tokens:
        if token == "(":
            previous = out[-1] if out else ""
            call = previous in (")", "]") or (
                previous.isidentifier() and previous not in _KEEP_NAMES and previous not in _NOT_CALLABLE
            )
            kept.append(call)
            if call:
                out.append(token)
        elif token == ")" and kept:
            if kept.pop():
                out.append(token)
        else:
            out.append(token)
    return out


def _fallback_tokens(source: str, names: _Names, levels: list[int], previous: str) -> list[str]:
    """A plain split for the part of a source that does not tokenize, made to read like
    :mod:`tokenize`'s output: strings, comments, names, numbers and operators by regular
    expression; ``NEWLINE`` at the end of a line outside brackets; ``INDENT`` / ``DEDENT`` from
    the indentation of the first token of a line (``levels`` is the indentation stack so far,
    ``previous`` the last token before this part); docstrings dropped."""
    out: list[str] = []
    depth = 0
    last = previous
    for match in _FALLBACK_TOKEN.finditer(source):
        kind, text = match.lastgroup, match.group()
        if kind == "comment":
            continue
        if kind == "newline":
            if depth == 0 and last not in _STATEMENT_START and last != "":
                out.append("NEWLINE")
                last = "NEWLINE"
            continue
        if depth == 0 and last in _STATEMENT_START | {""}:
            column = match.start() - (source.rfind("\n", 0, match.start()) + 1)
            if column > levels[-1]:
                levels.append(column)
                out.append("INDENT")
            while column < levels[-1] and len(levels) > 1:
                levels.pop()
                out.append("DEDENT")
            if kind == "string" and re.match(r"[ \t]*(?:#[^\n]*)?(?:\n|$)", source[match.end() :]):
                continue  # a docstring: a statement made of one string
        if kind == "string":
            token = "STR"
            if last == "STR":
                continue
        elif kind == "number":
            token = "NUM"
        elif kind == "name":
            token = _name_token(text, last, names)
        else:
            token = text
            if text in "([{":
                depth += 1
            elif text in ")]}":
                depth = max(0, depth - 1)
                if last == ",":
                    out.pop()
        out.append(token)
        last = token
    if last != "NEWLINE" and out:
        out.append("NEWLINE")
    out.extend("DEDENT" for _ in levels[1:])
    return out


def _unclosed_bracket_line(tokens: Sequence[tokenize.TokenInfo]) -> int | None:
    """The line of the outermost bracket that is never closed, if any: a missing ``)`` turns the
    rest of the module into one statement for :mod:`tokenize`."""
    depth = 0
    line = None
    for token in tokens:
        if token.type == tokenize.OP and token.string in "([{":
            if depth == 0:
                line = token.start[0]
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth = max(0, depth - 1)
    return line if depth > 0 else None


def code_tokens(source: str) -> tuple[list[str], bool]:
    """The normalised token stream of a module, and whether the module parsed.

    Dropped: comments, blank lines, docstrings (any statement that is only a string), commas before
    a closing bracket and grouping parentheses (formatters add or remove both). Every string
    literal, f-strings included, becomes one ``STR`` (adjacent literals merge, so splitting a long
    string does not count); every number ``NUM`` (tuning a constant does not make another task);
    names follow :func:`_name_token`. What remains is the *shape* of the code plus the library
    calls it makes."""
    names, parsed = _names(source)
    raw: list[tokenize.TokenInfo] = []
    failed_at: int | None = None  # the line where tokenizing failed: the rest is split plainly
    try:
        raw.extend(tokenize.generate_tokens(io.StringIO(source).readline))
    except tokenize.TokenError as exc:
        where = exc.args[1] if len(exc.args) > 1 else None
        failed_at = where[0] if isinstance(where, tuple) and where and isinstance(where[0], int) else 1
        unclosed = _unclosed_bracket_line(raw)
        if unclosed is not None:  # "EOF in multi-line statement": resume after the unclosed line
            failed_at = min(failed_at, unclosed + 1)
    except SyntaxError as exc:  # IndentationError
        failed_at = exc.lineno or 1
    if failed_at is not None:
        raw = [token for token in raw if token.start[0] < failed_at]
    out: list[str] = []
    levels = [0]  # the indentation stack, for the fallback split
    depth = 0  # f-string nesting (Python ≥ 3.12 tokenizes f-strings into parts)
    index = 0
    while index < len(raw):
        token = raw[index]
        index += 1
        if token.type == _FSTRING_START:
            depth += 1
            if depth == 1 and (not out or out[-1] != "STR"):
                out.append("STR")
            continue
        if token.type == _FSTRING_END:
            depth -= 1
            continue
        if depth or token.type in _SKIPPED:
            continue
        if token.type == tokenize.STRING:
            if not out or out[-1] in _STATEMENT_START:
                # a statement made of strings only (a docstring): drop it and its NEWLINE
                ahead = index
                while ahead < len(raw) and (
                    raw[ahead].type == tokenize.STRING or raw[ahead].type in _SKIPPED
                ):
                    ahead += 1
                if ahead < len(raw) and raw[ahead].type == tokenize.NEWLINE:
                    index = ahead + 1
                    continue
            if not out or out[-1] != "STR":
                out.append("STR")
        elif token.type == tokenize.NUMBER:
            out.append("NUM")
        elif token.type == tokenize.NAME:
            out.append(_name_token(token.string, out[-1] if out else "", names))
        elif token.type == tokenize.NEWLINE:
            out.append("NEWLINE")
        elif token.type == tokenize.INDENT:
            out.append("INDENT")
            levels.append(len(token.string.expandtabs(1)))
        elif token.type == tokenize.DEDENT:
            out.append("DEDENT")
            if len(levels) > 1:
                levels.pop()
        elif token.string in ")]}" and out and out[-1] == ",":
            out[-1] = token.string
        elif token.string == ";":
            out.append("NEWLINE")
        else:
            out.append(token.string)
    if failed_at is not None:
        if out and out[-1] not in _STATEMENT_START:
            out.append("NEWLINE")
        rest = "".join(source.splitlines(keepends=True)[failed_at - 1 :])
        out.extend(_fallback_tokens(rest, names, levels, out[-1] if out else ""))
    return _drop_grouping_parentheses(out), parsed


def code_signature(source: str) -> CodeSignature:
    """Signature of a module's source: the set of :data:`CODE_SHINGLE`-token shingles of its
    normalised token stream (:func:`code_tokens`). Never raises on bad source."""
    tokens, parsed = code_tokens(source)
    if len(tokens) < CODE_SHINGLE:
        shingles = {"\x1f".join(tokens)} if tokens else set()
    else:
        shingles = {"\x1f".join(tokens[i : i + CODE_SHINGLE]) for i in range(len(tokens) - CODE_SHINGLE + 1)}
    hashes = [_hash64(shingle) for shingle in shingles]
    return CodeSignature(minhash=sketch(hashes), size=len(hashes), tokens=len(tokens), parsed=parsed)


def code_similarity(a: CodeSignature | str, b: CodeSignature | str) -> float:
    """Estimated Jaccard index of the shingle sets of two modules, in [0, 1]. Strings are read with
    :func:`code_signature`."""
    sa = code_signature(a) if isinstance(a, str) else a
    sb = code_signature(b) if isinstance(b, str) else b
    _check_comparable(sa, sb)
    return sketch_jaccard(sa.minhash, sb.minhash)


# -- environments ----------------------------------------------------------------------------------


def env_fingerprint(env_id: str, source: str, questions: Sequence[str]) -> EnvFingerprint:
    """The fingerprint of an environment from its module and a handful of its questions (a few
    seeds at the lowest and the highest level, as sampled for the judge)."""
    return EnvFingerprint(
        env_id=env_id, code=code_signature(source), questions=questions_signature(questions)
    )


class Similarity(_Frozen):
    """How alike two environments are, and whether that makes them duplicates."""

    code: float
    questions: float
    combined: float
    """``max(code, questions)``: either kind of evidence alone makes a duplicate, and both
    thresholds are equal, so ``combined ≥ DUPLICATE_CODE_THRESHOLD`` exactly when duplicate."""
    is_duplicate: bool
    reasons: tuple[Literal["code", "questions"], ...] = ()
    """Which thresholds were reached."""


def environment_similarity(a: EnvFingerprint, b: EnvFingerprint) -> Similarity:
    """Code and question similarity of two environments. They are duplicates when the code
    (≥ :data:`DUPLICATE_CODE_THRESHOLD`) *or* the questions (≥ :data:`DUPLICATE_QUESTIONS_THRESHOLD`)
    are: a revision of a module keeps most of its code and may reword its questions; a rewrite of
    a module in another style keeps its questions and changes the code."""
    code = code_similarity(a.code, b.code)
    questions = questions_similarity(a.questions, b.questions)
    reasons: list[Literal["code", "questions"]] = []
    if code >= DUPLICATE_CODE_THRESHOLD:
        reasons.append("code")
    if questions >= DUPLICATE_QUESTIONS_THRESHOLD:
        reasons.append("questions")
    return Similarity(
        code=code,
        questions=questions,
        combined=max(code, questions),
        is_duplicate=bool(reasons),
        reasons=tuple(reasons),
    )


# -- generic dispatch ------------------------------------------------------------------------------


def similarity(a: Signature, b: Signature) -> float:
    """The similarity of two signatures of the same kind, in [0, 1]: for ideas and environments the
    ``combined`` score."""
    if isinstance(a, IdeaSignature) and isinstance(b, IdeaSignature):
        return idea_similarity(a, b).combined
    if isinstance(a, EnvFingerprint) and isinstance(b, EnvFingerprint):
        return environment_similarity(a, b).combined
    if isinstance(a, TextSignature) and isinstance(b, TextSignature):
        return text_similarity(a, b)
    if isinstance(a, QuestionsSignature) and isinstance(b, QuestionsSignature):
        return questions_similarity(a, b)
    if isinstance(a, CodeSignature) and isinstance(b, CodeSignature):
        return code_similarity(a, b)
    raise SignatureMismatch(f"cannot compare a {type(a).__name__} with a {type(b).__name__}")


def duplicate_threshold(signature: Signature) -> float:
    """The similarity from which two signatures of this kind are duplicates."""
    if isinstance(signature, IdeaSignature):
        return DUPLICATE_IDEA_THRESHOLD
    if isinstance(signature, TextSignature):
        return DUPLICATE_IDEA_THRESHOLD if signature.kind == "text" else DUPLICATE_DESCRIPTION_THRESHOLD
    if isinstance(signature, QuestionsSignature):
        return DUPLICATE_QUESTIONS_THRESHOLD
    return DUPLICATE_CODE_THRESHOLD  # code signatures and fingerprints (thresholds are equal)


# -- index -----------------------------------------------------------------------------------------


class Sketched(Protocol):
    """Anything an index can draw candidates for: one or more MinHash sketches."""

    lsh_bands: ClassVar[int]

    def sketches(self) -> tuple[tuple[int, ...], ...]: ...


S = TypeVar("S", bound=Sketched)
K = TypeVar("K", bound=Hashable)


class DuplicateIndex(Generic[K, S]):
    """An in-memory index answering "which stored items are most like this one?" for thousands of
    items without comparing against each of them.

    Candidates come from LSH banding: an item is scored only if one of its sketches agrees with the
    query's on every row of at least one band (``bands`` per sketch; by default the signature
    class's ``lsh_bands``). Candidates are then scored exactly by ``score`` (default
    :func:`similarity`), so a result carries the number brute force gives. Duplicates by the
    thresholds of this module are found with probability ≥ 0.99; much less similar items may be
    missed, which is the point (``nearest(..., exhaustive=True)`` scans everything). Everything is
    deterministic: ties are broken by insertion order."""

    def __init__(self, score: Callable[[S, S], float] | None = None, *, bands: int | None = None) -> None:
        if bands is not None and (bands < 1 or SKETCH_BINS % bands):
            raise ValueError(f"bands must divide {SKETCH_BINS}, got {bands}")
        self._score: Callable[[S, S], float] = score or similarity  # type: ignore[assignment]
        self._bands = bands
        self._keys: list[K] = []
        self._items: list[S] = []
        self._positions: dict[K, int] = {}
        self._tables: list[dict[tuple[int, ...], list[int]]] = []
        """One hash table per band of each sketch slot: the rows of a band → positions."""

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._positions

    def _band_keys(self, signature: S) -> list[tuple[int, tuple[int, ...]]]:
        """``(table, rows)`` for every band of every sketch of ``signature`` (empty sketches have
        none)."""
        if self._bands is None:
            self._bands = type(signature).lsh_bands
        bands = self._bands
        rows = SKETCH_BINS // bands
        keys: list[tuple[int, tuple[int, ...]]] = []
        for slot, minhash in enumerate(signature.sketches()):
            if len(minhash) == SKETCH_BINS:
                first = slot * bands
                slices = [minhash[start : start + rows] for start in range(0, SKETCH_BINS, rows)]
                keys.extend(zip(range(first, first + bands), slices, strict=True))
        return keys

    def add(self, key: K, signature: S) -> None:
        """Store ``signature`` under ``key``; a key can be added once."""
        self._insert(key, signature, self._band_keys(signature))

    def _insert(self, key: K, signature: S, band_keys: list[tuple[int, tuple[int, ...]]]) -> None:
        if key in self._positions:
            raise KeyError(f"{key!r} is already in the index")
        position = len(self._items)
        self._positions[key] = position
        self._keys.append(key)
        self._items.append(signature)
        tables = self._tables
        for table, rows in band_keys:
            while len(tables) <= table:
                tables.append({})
            bucket = tables[table].get(rows)
            if bucket is None:
                tables[table][rows] = [position]
            else:
                bucket.append(position)

    def get(self, key: K) -> S:
        """The signature stored under ``key``."""
        return self._items[self._positions[key]]

    def candidates(self, signature: S) -> list[K]:
        """Stored keys sharing at least one LSH band with ``signature``, in insertion order."""
        return [self._keys[position] for position in self._candidates(self._band_keys(signature))]

    def _candidates(self, band_keys: list[tuple[int, tuple[int, ...]]]) -> list[int]:
        found: set[int] = set()
        tables = self._tables
        for table, rows in band_keys:
            if table < len(tables):
                bucket = tables[table].get(rows)
                if bucket:
                    found.update(bucket)
        return sorted(found)

    def nearest(
        self, signature: S, k: int = 1, *, min_similarity: float = 0.0, exhaustive: bool = False
    ) -> list[tuple[K, float]]:
        """Up to ``k`` ``(key, similarity)`` pairs, most similar first (then first added), with
        similarity > 0 and ≥ ``min_similarity``."""
        band_keys = [] if exhaustive else self._band_keys(signature)
        return self._nearest(signature, band_keys, k, min_similarity, exhaustive)

    def _nearest(
        self,
        signature: S,
        band_keys: list[tuple[int, tuple[int, ...]]],
        k: int,
        min_similarity: float,
        exhaustive: bool,
    ) -> list[tuple[K, float]]:
        positions: Iterable[int] = range(len(self._items)) if exhaustive else self._candidates(band_keys)
        scored = []
        for position in positions:
            value = self._score(signature, self._items[position])
            if value > 0.0 and value >= min_similarity:
                scored.append((-value, position))
        scored.sort()
        return [(self._keys[position], -negative) for negative, position in scored[:k]]

    def add_and_match(
        self, key: K, signature: S, *, min_similarity: float, exhaustive: bool = False
    ) -> list[tuple[K, float]]:
        """Every stored item with similarity ≥ ``min_similarity`` (most similar first), then store
        ``signature`` under ``key``: one pass of :func:`families` or of a streaming dedupe, with the
        bands computed once."""
        band_keys = self._band_keys(signature)
        found = self._nearest(signature, band_keys, len(self._items), min_similarity, exhaustive)
        self._insert(key, signature, band_keys)
        return found


class Screened(NamedTuple, Generic[K]):
    """The verdict on one new item: kept, or the duplicate of an earlier one."""

    key: K
    duplicate_of: K | None
    """The existing or earlier new item it duplicates; ``None`` when kept."""
    similarity: float | None
    """Its similarity to ``duplicate_of``; ``None`` when kept."""


def screen(
    new: Sequence[tuple[K, S]],
    existing: Iterable[tuple[K, S]] = (),
    *,
    threshold: float | None = None,
    score: Callable[[S, S], float] | None = None,
) -> list[Screened[K]]:
    """Decide, in order, which of ``new`` to keep: an item is a duplicate when its most similar
    item among ``existing`` and the *kept* new items before it reaches ``threshold`` (default: the
    kind's :func:`duplicate_threshold`). This is how a batch of proposals is checked against each
    other and against the catalog: the first of two duplicates is kept, and nothing is dropped
    without naming what it duplicates. Keys of ``existing`` must be distinct; a kept new item
    whose key is already stored (a proposal named like a catalog keyword) is not stored again."""
    index: DuplicateIndex[K, S] = DuplicateIndex(score)
    for key, signature in existing:
        index.add(key, signature)
    verdicts: list[Screened[K]] = []
    for key, signature in new:
        limit = threshold if threshold is not None else duplicate_threshold(signature)  # type: ignore[arg-type]
        found = index.nearest(signature, min_similarity=limit)
        if found:
            verdicts.append(Screened(key, found[0][0], found[0][1]))
        else:
            verdicts.append(Screened(key, None, None))
            if key not in index:
                index.add(key, signature)
    return verdicts


# -- families and summaries ------------------------------------------------------------------------


def families(
    items: Sequence[tuple[K, S]],
    threshold: float | None = None,
    *,
    score: Callable[[S, S], float] | None = None,
    exhaustive: bool = False,
) -> list[list[K]]:
    """Single-link clusters: two items are in one family when a chain of pairs with similarity ≥
    ``threshold`` (default: the kind's :func:`duplicate_threshold`) joins them (union-find).

    Pairs come from a :class:`DuplicateIndex`, so links much weaker than the duplicate thresholds
    may be missed unless ``exhaustive`` (which compares all pairs). Families are listed largest
    first, then by their first item; members keep the input order; singletons are included."""
    if not items:
        return []
    limit = threshold if threshold is not None else duplicate_threshold(items[0][1])  # type: ignore[arg-type]
    index: DuplicateIndex[int, S] = DuplicateIndex(score)
    parent = list(range(len(items)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for position, (_, signature) in enumerate(items):
        for other, _value in index.add_and_match(
            position, signature, min_similarity=limit, exhaustive=exhaustive
        ):
            root_a, root_b = find(position), find(other)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    groups: dict[int, list[K]] = {}
    for position, (key, _) in enumerate(items):
        groups.setdefault(find(position), []).append(key)
    return sorted(groups.values(), key=len, reverse=True)


def pairwise_summary(
    signatures: Sequence[S],
    *,
    score: Callable[[S, S], float] | None = None,
    sample_limit: int = 20_000,
    seed: int = 0,
) -> dict[str, float | int]:
    """The distribution of pairwise similarity in a collection, to report how diverse a catalog
    is: ``count`` (pairs scored), ``pairs`` (pairs in all), ``sampled``, ``mean``, ``p50``, ``p90``
    and ``max``. With more than ``sample_limit`` pairs, that many distinct pairs are drawn by a
    ``random.Random(seed)``, so the report is the same on every run."""
    scorer: Callable[[S, S], float] = score or similarity  # type: ignore[assignment]
    n = len(signatures)
    total = n * (n - 1) // 2
    sampled = total > sample_limit
    if sampled:
        rng = random.Random(seed)
        pairs: Iterable[tuple[int, int]] = (
            _pair_at(index, n) for index in sorted(rng.sample(range(total), sample_limit))
        )
    else:
        pairs = ((i, j) for i in range(n) for j in range(i + 1, n))
    values = sorted(scorer(signatures[i], signatures[j]) for i, j in pairs)
    summary: dict[str, float | int] = {"count": len(values), "pairs": total, "sampled": int(sampled)}
    if not values:
        return summary | {"mean": 0.0, "p50": 0.0, "p90": 0.0, "max": 0.0}
    return summary | {
        "mean": sum(values) / len(values),
        "p50": _quantile(values, 0.5),
        "p90": _quantile(values, 0.9),
        "max": values[-1],
    }


def _pair_at(index: int, n: int) -> tuple[int, int]:
    """The ``index``-th pair ``(i, j)``, ``i < j``, of ``n`` items in row-major order: row ``i``
    starts at ``i (2n - i - 1) / 2``; invert that with an integer square root, then fix rounding."""
    i = (2 * n - 1 - math.isqrt((2 * n - 1) ** 2 - 8 * index)) // 2
    while i > 0 and i * (2 * n - i - 1) // 2 > index:
        i -= 1
    while (i + 1) * (2 * n - i - 2) // 2 <= index:
        i += 1
    return i, i + 1 + index - i * (2 * n - i - 1) // 2


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (NumPy's default method)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
