"""A large synthesis batch job against a loopback fake model: wall time, rate limiting, catalog size.

Usage: .venv/bin/python benchmarks/batch_job.py [--keywords 500] [--latency 1] [--rate-429 0.1]
       [--retry-after 0.5] [--concurrency 32] [--seeds N] [--check-workers W] [--keep DIR]
Quick run: --keywords 20 (about 25 s). Prints one JSON document; progress goes to stderr.

``resyn.synth.run.synthesize`` (the API ``resyn synthesize`` calls) runs N keywords at concurrency C
against ``FakeOpenAI`` (``tests/llm_servers.py``) on 127.0.0.1, serving both the writer and the judge.
Every answer waits ``--latency`` seconds; a share ``--rate-429`` of all requests (drawn by a seeded
generator, in arrival order) is answered at once with a 429 and ``Retry-After: --retry-after``,
which resyn must retry. The checks are the real ones, in the real sandbox, with the real default
configuration unless ``--seeds`` says otherwise.

Each keyword gets a module of its own, so that the catalog holds N *distinct* environments rather
than N copies that resyn's near-duplicate detection would skip: a generated "trace this integer
procedure" task. ``procedure_module(keyword)`` builds, from a seed derived from the keyword, a small
random Python function (assignments over random expression trees, bounded loops, conditionals,
digit sums, popcounts …) with invented identifiers; the environment asks what the function returns
for random inputs whose size grows with the difficulty; the class around the function is one of 12
variants. Code structure and question wording differ from keyword to keyword, so their fingerprints
are far apart: before the run each module is compared, with resyn's own fingerprints, with the ones
served before it, and one closer than ``SERVED_SIMILARITY_LIMIT`` (0.55; resyn's duplicate threshold
is 0.6) is replaced by the keyword's next variant (the JSON reports how many, and the pairwise
similarity of the modules served). A revision request (only if a module fails the checks) is answered with the keyword's next variant.
Every judge request gets the bundled accepting verdict. So every keyword should be accepted in round
1 after exactly two calls, plus the retries the 429s force.

The generated functions are run in this process only to screen variants (exceptions, too few
distinct answers, answers that also occur in the question text) before serving them; they are this
script's own grammar output, not model-written code. resyn runs the served modules in its sandbox.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import keyword as python_keyword
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))

from fake_provider import ACCEPT_VERDICT, classify  # noqa: E402
from machine import describe  # noqa: E402

# -- the generated task family ----------------------------------------------------------------------

_ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "cr", "dr", "fl", "gr", "kl", "pl", "pr", "st", "tr", "sk", "sn", "sp", "ch", "sh", "th", "bl", "gl", "sl", "sm", "qu"]  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io"]
_CODAS = ["", "", "n", "r", "l", "s", "x", "nd", "rk", "m", "t"]
_RESERVED = set(python_keyword.kwlist) | set(dir(__builtins__)) | {"self", "rng", "instance", "answer"}


def pseudo_word(rng: random.Random, syllables: int | None = None) -> str:
    """An invented, pronounceable lower-case identifier ("brivoun", "staklem")."""
    while True:
        count = syllables or rng.choice((2, 2, 3))
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(count)) + rng.choice(_CODAS)
        if word not in _RESERVED:
            return word


class _Program:
    """A random integer function: statements over invented variables, rendered as Python source."""

    def __init__(self, rng: random.Random, fname: str) -> None:
        self.rng = rng
        names: set[str] = {fname}

        def fresh() -> str:
            while True:
                word = pseudo_word(rng)
                if word not in names:
                    names.add(word)
                    return word

        self.fname = fname
        self.params = [fresh() for _ in range(rng.choice((1, 2, 2)))]
        self.loop_var = fresh()
        self.locals = [fresh() for _ in range(rng.randint(2, 4))]
        self.lines: list[str] = []
        defined = list(self.params)
        for _ in range(rng.randint(12, 18)):
            self._statement(defined, 1)
        # The first argument, scaled, keeps the answers as varied as the inputs: without it a random
        # function often collapses to a handful of values (a task the checks would rightly reject).
        mix = f"{self.params[0]} * {rng.randint(3, 97)}"
        self.lines.append(f"    return {self._expr(defined, 2)} + {mix}")
        params = ", ".join(f"{p}: int" for p in self.params)
        self.source = f"def {fname}({params}) -> int:\n" + "\n".join(self.lines) + "\n"

    # expressions ------------------------------------------------------------------------------
    #: One-argument shapes ("{}" is a subexpression, "#" a small constant, "@" a digit): many
    #: library calls, because resyn's code fingerprint keeps builtin and library names while it
    #: reads every invented name as ID and every number as NUM.
    UNARY = (
        "abs({})", 'bin({}).count("1")', "sum(int(d) for d in str(abs({})))", "len(str({}))",
        "int(str(abs({}))[::-1])", "abs({}).bit_length()", "math.isqrt(abs({}))", "math.gcd({}, #)",
        "pow({}, 2, #)", "pow({}, 3, #)", "divmod({}, #)[0]", "divmod({}, #)[1]",
        'str(abs({})).count("@")', 'int(str(abs({})).replace("@", "@"))',
        "max(int(d) for d in str(abs({})))", "min(int(d) for d in str(abs({})))",
        'int("".join(sorted(str(abs({})))))', 'int("".join(sorted(str(abs({})), reverse=True)))',
        'hex(abs({})).count("a")', "round({} / #)", "math.prod(int(d) for d in str(abs({})) if d != \"0\")",
        "len(set(str(abs({}))))", 'sum(1 for d in str(abs({})) if d in "2357")',
        "int(oct(abs({}))[2:]) % #", "math.comb(abs({}) % 12, 3)", "(-{})", "(~{})",
        "sum(range(abs({}) % 40))", "int(str(abs({}))[:2])", "int(str(abs({}))[-2:])",
    )  # fmt: skip
    BINARY = ("({} + {})", "({} - {})", "({} ^ {})", "({} & {})", "({} | {})", "({} * {})",
              "min({}, {})", "max({}, {})", "math.gcd({}, {})", "({} if {} else {})")  # fmt: skip

    def _leaf(self, names: list[str]) -> str:
        if self.rng.random() < 0.75:
            return self.rng.choice(names)
        return str(self.rng.randint(2, 97))

    def _fill(self, shape: str, names: list[str], depth: int, allow_mul: bool) -> str:
        rng = self.rng
        out = []
        for part in re.split(r"(\{\}|#|@)", shape):
            if part == "{}":
                out.append(self._expr(names, depth, allow_mul=allow_mul))
            elif part == "#":
                out.append(str(rng.randint(3, 97)))
            elif part == "@":
                out.append(str(rng.randint(0, 9)))
            else:
                out.append(part)
        return "".join(out)

    def _expr(self, names: list[str], depth: int, *, allow_mul: bool = True) -> str:
        rng = self.rng
        if depth == 0 or rng.random() < 0.15:
            return self._leaf(names)
        sub = depth - 1
        kind = rng.random()
        if kind < 0.4:
            shape = rng.choice([b for b in self.BINARY if allow_mul or "*" not in b])
            if "if" in shape:
                return shape.format(
                    self._expr(names, sub, allow_mul=allow_mul), self._cond(names),
                    self._expr(names, sub, allow_mul=allow_mul),
                )  # fmt: skip
            return self._fill(shape, names, sub, allow_mul)
        if kind < 0.55:
            op = rng.choice(["//", "%", ">>"])
            constant = rng.randint(1, 3) if op == ">>" else rng.randint(2, 13)
            return f"({self._expr(names, sub, allow_mul=allow_mul)} {op} {constant})"
        return self._fill(rng.choice(self.UNARY), names, sub, allow_mul)

    def _cond(self, names: list[str]) -> str:
        rng = self.rng
        left = self._expr(names, 1, allow_mul=False)
        if rng.random() < 0.5:
            return f"{left} % {rng.randint(2, 7)} == {rng.randint(0, 1)}"
        return f"{left} {rng.choice(['<', '>', '<=', '>='])} {self._expr(names, 1, allow_mul=False)}"

    # statements -------------------------------------------------------------------------------
    def _modulus(self) -> int:
        return self.rng.randint(101, 99991)

    def _assign(self, target: str, names: list[str], indent: int, *, bounded: bool) -> None:
        expr = self._expr(names, self.rng.randint(2, 3))
        pad = "    " * indent
        if bounded or "*" in expr or "pow" in expr or "comb" in expr:
            self.lines.append(f"{pad}{target} = {expr} % {self._modulus()}")
        else:
            self.lines.append(f"{pad}{target} = {expr}")

    def _statement(self, defined: list[str], indent: int) -> None:
        rng = self.rng
        pad = "    " * indent
        kind = rng.random()
        undefined = [v for v in self.locals if v not in defined]
        mutable = [v for v in defined if v not in self.params] or defined
        if undefined and (kind < 0.35 or len(defined) <= len(self.params)):
            target = undefined[0]
            self._assign(target, defined, indent, bounded=False)
            defined.append(target)
        elif kind < 0.45:
            self._assign(rng.choice(defined), defined, indent, bounded=False)
        elif kind < 0.57:
            loop = self.loop_var
            # Bounded whatever the argument has become: the checks time every generate().
            count = (
                f"{self.params[-1]} % {rng.randint(5, 13)}"
                if len(self.params) > 1 and rng.random() < 0.5
                else str(rng.randint(3, 9))
            )
            self.lines.append(f"{pad}for {loop} in range({count}):")
            self._assign(rng.choice(mutable), [*defined, loop], indent + 1, bounded=True)
        elif kind < 0.67:
            loop, target = self.loop_var, rng.choice(mutable)
            source = self._expr(defined, 1, allow_mul=False)
            self.lines.append(f"{pad}for {loop} in str(abs({source})):")
            self.lines.append(
                f"{pad}    {target} = ({target} * {rng.randint(3, 31)} + int({loop}) * "
                f"{self._leaf(defined)}) % {self._modulus()}"
            )
        elif kind < 0.79:
            self.lines.append(f"{pad}if {self._cond(defined)}:")
            self._assign(rng.choice(defined), defined, indent + 1, bounded=False)
            self.lines.append(f"{pad}else:")
            self._assign(rng.choice(defined), defined, indent + 1, bounded=False)
        elif kind < 0.87 and len(mutable) >= 2:
            a, b = rng.sample(mutable, 2)
            self.lines.append(f"{pad}{a}, {b} = {b}, ({a} + {self._expr(defined, 1)}) % {self._modulus()}")
        elif kind < 0.94:
            target = rng.choice(defined)
            self.lines.append(f"{pad}while {target} > {rng.randint(50, 999)}:")
            self.lines.append(f"{pad}    {target} //= {rng.randint(2, 9)}")
        else:
            target, loop = rng.choice(mutable), self.loop_var
            self.lines.append(
                f"{pad}{target} = sum({loop} * {self._leaf(defined)} for {loop} in "
                f"range({rng.randint(2, 9)})) % {self._modulus()}"
            )


_MODULE = '''"""Trace the integer procedure {fname}: say what it returns for given inputs."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from resyn import Environment

MAX_ANSWER_CHARS = 80
INTEGER = re.compile(r"[+-]?[0-9]+")
PROGRAM = \'\'\'{source}\'\'\'


{source}

class {cls}(Environment):
    """Read a short Python function, {fname}, and give the integer it returns for the stated
    arguments. Difficulty raises the number of digits of the first argument (3 at level 1, 7 at
    level 5){second}."""

    name = "{name}"
    max_difficulty = 5
{generate}{question}{verify}
    def solution(self, instance: dict[str, Any]) -> str | None:
        return str(instance["value"])
'''

#: Variants of the methods around the generated function, so that the modules share less
#: boilerplate (resyn's code fingerprint would otherwise see mostly the same class).
_GENERATE = (
    """
    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        args = [rng.randrange(10 ** (difficulty + 1), 10 ** (difficulty + 2)){extra_arg}]
        return {{"args": args, "value": {fname}(*args)}}
""",
    """
    def generate(self, rng: random.Random, difficulty: int) -> dict[str, Any]:
        low = 10 ** (difficulty + 1)
        args = [low + rng.randrange(9 * low)]
        if {two}:
            args.append(rng.randint(2, 5 + 4 * difficulty))
        value = {fname}(*args)
        return dict(args=args, value=value)
""",
)
_QUESTIONS = (
    (
        """
    def question(self, instance: dict[str, Any]) -> str:
        call = "{fname}(" + ", ".join(str(a) for a in instance["args"]) + ")"
        return (
            "Here is a function written in Python:\\n\\n" + PROGRAM + "\\n"
            f"What integer does {{call}} return? Answer with the integer only, in decimal digits, "
            "with a leading minus sign if it is negative."
        )
""",
        "Here is a function written in Python:\n\n{program}\nWhat integer does {call} return? Answer "
        "with the integer only, in decimal digits, with a leading minus sign if it is negative.",
    ),
    (
        """
    def question(self, instance: dict[str, Any]) -> str:
        arguments = ", ".join(map(str, instance["args"]))
        lines = ["Consider this Python function.", "", PROGRAM]
        lines.append(f"Evaluate {fname}({{arguments}}) by hand.")
        lines.append("Reply with the resulting integer alone (decimal, a minus sign if negative).")
        return "\\n".join(lines)
""",
        "Consider this Python function.\n\n{program}\nEvaluate {call} by hand.\nReply with the "
        "resulting integer alone (decimal, a minus sign if negative).",
    ),
)
_VERIFY = (
    """
    def verify(self, instance: dict[str, Any], answer: str) -> float:
        text = answer.strip()
        if len(text) > MAX_ANSWER_CHARS or INTEGER.fullmatch(text) is None:
            return 0.0
        return 1.0 if int(text) == instance["value"] else 0.0
""",
    """
    def verify(self, instance: dict[str, Any], answer: str) -> float:
        text = answer.strip()
        if not text or len(text) > MAX_ANSWER_CHARS:
            return 0.0
        negative = text.startswith("-")
        digits = text[1:] if text[0] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            return 0.0
        value = -int(digits) if negative else int(digits)
        return float(value == instance["value"])
""",
    """
    def verify(self, instance: dict[str, Any], answer: str) -> float:
        if len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        try:
            value = int(answer.strip(), 10)
        except ValueError:
            return 0.0
        return 1.0 if value == instance["value"] else 0.0
""",
)


@dataclass(frozen=True)
class Procedure:
    """One generated environment: its module and enough to render its questions without running it."""

    keyword: str
    name: str
    code: str
    program: str
    fname: str
    params: int
    question_style: int = 0

    def arguments(self, rng: random.Random, difficulty: int) -> list[int]:
        args = [rng.randrange(10 ** (difficulty + 1), 10 ** (difficulty + 2))]
        if self.params == 2:
            args.append(rng.randrange(2, 6 + 4 * difficulty))
        return args

    def question(self, args: list[int]) -> str:
        call = f"{self.fname}(" + ", ".join(str(a) for a in args) + ")"
        return _QUESTIONS[self.question_style][1].format(program=self.program, call=call)

    def sample_questions(self, max_difficulty: int = 5, per_level: int = 4) -> list[str]:
        """Questions like the judge's samples (a few seeds at the lowest and the highest level)."""
        out = []
        for level in sorted({1, max_difficulty}):
            for seed in range(per_level):
                out.append(self.question(self.arguments(random.Random(f"{seed}/{level}"), level)))
        return out


def keyword_for(index: int) -> str:
    """The ``index``-th benchmark keyword: "trace the <invented word> procedure"."""
    return f"trace the {pseudo_word(random.Random(f'keyword-{index}'), 3)} procedure {index}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _screen(program: _Program) -> bool:
    """Does the function look like it will pass the checks? Run on sample inputs: no exception, big
    enough answer sets, few zeros, answers rarely among the question's own numbers."""
    namespace: dict[str, Any] = {"math": math}
    exec(program.source, namespace)  # this script's own grammar output
    fn = namespace[program.fname]
    numbers = set(re.findall(r"\d+", program.source))
    for level in (1, 3, 5):
        rng = random.Random(level)
        values = []
        for _ in range(60):
            args = [rng.randrange(10 ** (level + 1), 10 ** (level + 2))]
            if len(program.params) == 2:
                args.append(rng.randrange(2, 6 + 4 * level))
            try:
                value = fn(*args)
            except Exception:
                return False
            if not isinstance(value, int) or abs(value) >= 10**15:
                return False
            values.append((value, {str(a) for a in args}))
        answers = [v for v, _ in values]
        counts = collections.Counter(answers)
        if len(counts) < 0.8 * len(answers) or counts.most_common(1)[0][1] > 4 or counts.get(0, 0) > 1:
            return False
        if sum(str(v) in numbers or str(v) in args for v, args in values) > 2:
            return False
    return True


def procedure_module(keyword: str, variant: int = 0) -> Procedure:
    """The module served for ``keyword`` (``variant`` 1, 2, … for revisions): deterministic."""
    match = re.fullmatch(r"trace the ([a-z]+) procedure (\d+)", keyword)
    fname = match.group(1) if match else "procedure"
    base = f"trace_{fname}_{match.group(2)}" if match else "trace_" + (_slug(keyword) or "x")
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{keyword}\0{variant}\0{attempt}".encode()).digest()
        program = _Program(random.Random(digest), fname)
        if _screen(program):
            break
        attempt += 1
    two = len(program.params) == 2
    second = "; the second argument grows from 2-5 at level 1 to 2-25 at level 5" if two else ""
    style = random.Random(f"style/{keyword}/{variant}")
    generate, question, verify = (style.randrange(len(t)) for t in (_GENERATE, _QUESTIONS, _VERIFY))
    values = {
        "fname": fname, "two": two, "extra_arg": ", rng.randrange(2, 6 + 4 * difficulty)" if two else ""
    }  # fmt: skip
    cls = "".join(part.capitalize() for part in _slug(base).split("_"))
    code = _MODULE.format(
        fname=fname, source=program.source, cls=cls, name=base[:60], second=second,
        generate=_GENERATE[generate].format(**values), question=_QUESTIONS[question][0].format(**values),
        verify=_VERIFY[verify],
    )  # fmt: skip
    return Procedure(
        keyword=keyword, name=base[:60], code=code, program=program.source, fname=fname,
        params=len(program.params), question_style=question,
    )  # fmt: skip


#: Served modules are kept below this similarity to each other (resyn's duplicate threshold is
#: 0.6; the margin covers the judge samples, whose seeds differ from the ones used here).
SERVED_SIMILARITY_LIMIT = 0.55


def served_set(count: int) -> tuple[list[Procedure], dict[str, Any]]:
    """The modules for the first ``count`` keywords, each below ``SERVED_SIMILARITY_LIMIT`` to every
    earlier one by resyn's own fingerprints (a keyword whose first variant is too close to an
    earlier module gets its next variant), and how much screening that took."""
    from resyn.synth.similarity import DuplicateIndex, EnvFingerprint, env_fingerprint, pairwise_summary

    began = time.perf_counter()
    index: DuplicateIndex[str, EnvFingerprint] = DuplicateIndex()
    served, prints, redrawn = [], [], 0
    for i in range(count):
        keyword = keyword_for(i)
        for variant in range(100):
            procedure = procedure_module(keyword, variant)
            fingerprint = env_fingerprint(procedure.name, procedure.code, procedure.sample_questions())
            if not index.nearest(fingerprint, min_similarity=SERVED_SIMILARITY_LIMIT):
                break
            redrawn += 1
        index.add(keyword, fingerprint)
        served.append(procedure)
        prints.append(fingerprint)
    summary = pairwise_summary(prints, sample_limit=20_000)
    return served, {
        "modules": count,
        "redrawn_as_too_similar": redrawn,
        "pairwise_similarity": {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()},
        "code_lines_mean": round(statistics.fmean(p.code.count("\n") for p in served), 1) if served else 0,
        "seconds": round(time.perf_counter() - began, 1),
    }


# -- the fake model -----------------------------------------------------------------------------------


class BenchModel:
    """A FakeOpenAI (tests/llm_servers.py) playing writer and judge, with a fixed latency and 429s."""

    def __init__(
        self, procedures: list[Procedure], *, latency_s: float, rate_429: float, retry_after: float, seed: int
    ) -> None:
        from tests.llm_servers import FakeOpenAI

        self.fake = FakeOpenAI()
        # FakeServer listens with the default backlog of 5: 32 clients connecting at once would
        # see dropped SYNs, retried by the kernel only after a second. Listening again on Linux
        # just raises the backlog.
        self.fake._httpd.socket.listen(256)
        self.fake.responder = self._respond
        self.by_keyword = {p.keyword: p for p in procedures}
        self.variants: dict[str, int] = {}
        self.latency_s = latency_s
        self.rate_429 = rate_429
        self.retry_after = retry_after
        self.rng = random.Random(seed)
        self.requests: collections.Counter[str] = collections.Counter()
        self.rate_limited: collections.Counter[str] = collections.Counter()
        self.unknown: list[str] = []

    def __enter__(self) -> BenchModel:
        self.fake.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.fake.__exit__(*exc)

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def _respond(self, body: dict[str, Any]) -> Any:
        from tests.llm_servers import Reply

        # Called by FakeOpenAI with its lock held: the counters and the generator need no other.
        kind, keyword = classify(body)
        self.requests[kind] += 1
        if self.rng.random() < self.rate_429:
            self.rate_limited[kind] += 1
            return self.fake.rate_limited(retry_after=f"{self.retry_after:g}")
        if kind == "judge":
            text = json.dumps(ACCEPT_VERDICT)
        elif kind in ("write", "revise") and keyword in self.by_keyword:
            if kind == "revise":  # the checks rejected the module: answer with the next variant
                self.variants[keyword] = self.variants.get(keyword, 0) + 1
                procedure = procedure_module(keyword, 100 + self.variants[keyword])
            else:
                procedure = self.by_keyword[keyword]
            text = f"Here is the environment.\n\n```python\n{procedure.code}```\n"
        else:
            self.unknown.append(kind)
            text = "I cannot help with that."
        prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        answer = self.fake.answer(
            text, model=str(body.get("model", "bench")), prompt_tokens=prompt // 4,
            completion_tokens=max(1, len(text) // 4),
        )  # fmt: skip
        return Reply(body=answer, delay_s=self.latency_s)


# -- the run ------------------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """Busy CPU seconds summed over all cores since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = (fields + [0] * 7)[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _distribution(values: list[float], digits: int = 2) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "sum": round(sum(ordered), digits),
        "mean": round(statistics.fmean(ordered), digits),
        "p50": round(ordered[len(ordered) // 2], digits),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], digits),
        "max": round(ordered[-1], digits),
    }


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from resyn.catalog import Catalog
    from resyn.checks import CheckConfig
    from resyn.synth.loop import SynthesisSettings
    from resyn.synth.run import RunProgress, synthesize

    print(f"generating {args.keywords} modules …", file=sys.stderr)
    procedures, screening = served_set(args.keywords)
    keywords = [p.keyword for p in procedures]
    checks = CheckConfig() if args.seeds is None else CheckConfig(seeds_per_level=args.seeds)
    catalog_path = workdir / "catalog.duckdb"
    run_id = "batch"
    last_report = [0.0]

    def progress(state: RunProgress) -> None:
        now = time.monotonic()
        if state.done == state.total or now - last_report[0] >= 15:
            last_report[0] = now
            eta = f", eta {state.eta_s:.0f} s" if state.eta_s is not None else ""
            print(
                f"  {state.done}/{state.total} done, {state.accepted} accepted, {state.in_flight} in flight{eta}",
                file=sys.stderr,
            )

    with BenchModel(
        procedures,
        latency_s=args.latency,
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        seed=args.seed,
    ) as model:
        fields: dict[str, Any] = {
            "model": "openai/bench-writer",
            "judge_model": "openai/bench-judge",
            "base_url": model.base_url,
            "judge_base_url": model.base_url,
            "concurrency": args.concurrency,
            "checks": checks,
        }
        if args.check_workers is not None:
            fields["check_workers"] = args.check_workers
        settings = SynthesisSettings.model_validate(fields)
        print(
            f"synthesizing {len(keywords)} keywords at concurrency {args.concurrency}, latency {args.latency:g} s, "
            f"{args.rate_429:.0%} 429s …",
            file=sys.stderr,
        )
        with Catalog.open(catalog_path) as catalog:
            busy0, began = machine_busy_seconds(), time.monotonic()
            summary = synthesize(
                keywords,
                catalog=catalog,
                run_id=run_id,
                settings=settings,
                resumed=False,
                on_progress=progress,
            )
            wall = time.monotonic() - began
            busy = machine_busy_seconds() - busy0

            def rows(query: str) -> list[list[Any]]:
                return catalog.sql(query, limit=100_000).rows

            outcomes = dict(
                rows("SELECT coalesce(outcome, 'unfinished'), count(*) FROM candidates GROUP BY 1")
            )
            calls = rows(
                "SELECT template, count(*), sum(attempts), count(*) FILTER (error IS NOT NULL) "
                "FROM llm_calls GROUP BY 1 ORDER BY 1"
            )
            check_seconds = [r[0] for r in rows("SELECT seconds FROM check_reports")]
            latencies = [r[0] for r in rows("SELECT latency_s FROM llm_calls WHERE error IS NULL")]
            retried_latencies = [r[0] for r in rows("SELECT latency_s FROM llm_calls WHERE attempts > 1")]
            duplicates = rows("SELECT count(*) FROM duplicates")[0][0]
            environments = rows("SELECT count(*) FROM environments")[0][0]
            stats = catalog.stats(run_id)
        sizes = {
            "catalog_bytes": file_size(catalog_path),
            "catalog_wal_bytes": file_size(catalog_path.with_name(catalog_path.name + ".wal")),
            "run_dir_bytes": tree_size(workdir / run_id),
            "calls_jsonl_bytes": file_size(workdir / run_id / "calls.jsonl"),
        }
        requests = dict(model.requests)
        rate_limited = dict(model.rate_limited)
        max_in_flight = model.fake.max_in_flight
        unknown = len(model.unknown)

    n = len(keywords)
    statuses = collections.Counter(t.status for t in summary.tasks)
    calls_recorded = sum(r[1] for r in calls)
    http_attempts = sum(r[2] for r in calls)
    waves = -(-n // args.concurrency)
    return {
        "keywords": n,
        "status": summary.status,
        "wall_s": round(wall, 1),
        "keywords_per_min": round(60 * n / wall, 1),
        # With the model as the only cost: two answered calls per keyword, C keywords at a time.
        "model_only_s": round(2 * args.latency * waves, 1),
        "tasks": dict(statuses),
        "environments": environments,
        "accepted": statuses.get("accepted", 0),
        "duplicates": duplicates,
        "candidate_outcomes": outcomes,
        "funnel": stats.funnel.model_dump(),
        "mean_rounds_to_acceptance": stats.mean_rounds_to_acceptance,
        "http_requests": sum(requests.values()),
        "http_requests_by_kind": requests,
        "http_429": sum(rate_limited.values()),
        "http_429_by_kind": rate_limited,
        "unrecognised_requests": unknown,
        "max_requests_in_flight": max_in_flight,
        "calls_recorded": calls_recorded,
        "calls_by_template": {r[0]: {"calls": r[1], "http_attempts": r[2], "failed": r[3]} for r in calls},
        "retries": http_attempts - calls_recorded,
        "calls_retried": len(retried_latencies),
        "call_latency_s": _distribution(latencies),
        "retried_call_latency_s": _distribution(retried_latencies),
        "check_run_s": _distribution(check_seconds),
        "machine_busy_core_s": round(busy, 1),
        "machine_utilization": round(busy / (wall * (os.cpu_count() or 1)), 3),
        "tokens_in": stats.tokens_in,
        "tokens_out": stats.tokens_out,
        **sizes,
        "catalog_bytes_per_environment": round(sizes["catalog_bytes"] / environments)
        if environments
        else None,
        "served_modules": screening,
        "check_workers": settings.check_workers,
    }


def machine() -> dict[str, Any]:
    return describe()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keywords", type=int, default=500, help="keywords in the job (default 500)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per model answer (default 1)")
    parser.add_argument(
        "--rate-429", type=float, default=0.1, help="share of requests answered 429 (default 0.1)"
    )
    parser.add_argument(
        "--retry-after", type=float, default=0.5, help="Retry-After of a 429, seconds (default 0.5)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="keywords in flight (default 32)")
    parser.add_argument(
        "--seeds", type=int, default=None, help="check instances per level (default: CheckConfig's)"
    )
    parser.add_argument(
        "--check-workers", type=int, default=None, help="check-suite runs at once (default: cores)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the 429 draws")
    parser.add_argument("--keep", type=Path, default=None, help="write the catalog and run directory here")
    args = parser.parse_args()
    os.environ["RESYN_LLM_OFFLINE"] = "1"  # loopback only, whatever the environment says
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        os.environ.pop(name, None)
    from resyn.checks import CheckConfig

    document: dict[str, Any] = {
        "benchmark": "batch_job",
        "machine": machine(),
        "latency_s": args.latency,
        "rate_429": args.rate_429,
        "retry_after_s": args.retry_after,
        "concurrency": args.concurrency,
        "seeds_per_level": args.seeds or CheckConfig().seeds_per_level,
    }
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if (args.keep / "catalog.duckdb").exists():
            parser.error(f"{args.keep}/catalog.duckdb exists: pass an empty --keep directory")
        document |= run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="resyn-batch-") as tmp:
            document |= run(args, Path(tmp))
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
