"""Static checks on the module's source: it parses, has the contract's shape, imports only what
environments may import, and draws no randomness from outside the harness's ``rng``.

This is a first filter that gives the writing LLM precise, line-numbered feedback. It is not the
security boundary (the sandbox is): code can reach ``__import__`` in ways no AST walk sees.
"""

from __future__ import annotations

import ast

from resyn import _ast
from resyn.checks.config import CheckConfig
from resyn.checks.report import CheckResult, Evidence
from resyn.env import NAME_PATTERN

ALLOWED_MODULES = frozenset(
    {
        "__future__", "abc", "array", "bisect", "cmath", "collections", "copy", "dataclasses",
        "decimal", "enum", "fractions", "functools", "heapq", "itertools", "json", "math",
        "numbers", "operator", "random", "re", "statistics", "string", "textwrap", "typing",
        "unicodedata", "resyn", "sympy",
    }
)  # fmt: skip
ALLOWED_RESYN = frozenset({"resyn", "resyn.env", "resyn.grading"})

#: Builtins that run code, touch files or read the interpreter's state.
FORBIDDEN_NAMES = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "open",
        "breakpoint",
        "input",
        "globals",
        "locals",
        "__builtins__",
    }
)
#: Attributes used to climb from any object to ``os`` or to frames (sandbox escapes).
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "__subclasses__", "__globals__", "__builtins__", "__bases__", "__base__", "__mro__",
        "__code__", "__closure__", "__getattribute__", "__reduce__", "__reduce_ex__", "__loader__",
        "__spec__", "__import__", "__self__", "__func__", "f_globals", "f_locals", "f_back",
        "f_builtins", "gi_frame", "gi_code", "cr_frame", "tb_frame", "tb_next", "co_code",
    }
)  # fmt: skip
REQUIRED_METHODS = {"generate": 3, "question": 2, "verify": 3}  # positional parameters incl. self


def run_static(source: str, filename: str, config: CheckConfig) -> list[CheckResult]:
    try:
        tree = _ast.parse(source, filename=filename)
    except SyntaxError as exc:
        evidence = Evidence(detail=f"SyntaxError: {exc.msg}", line=exc.lineno, traceback=_caret(exc))
        return [
            CheckResult(
                name="syntax", status="fail", summary="the module does not parse", evidence=[evidence]
            ),
            *(
                CheckResult(name=n, status="skip", summary="not run: the module does not parse")
                for n in ("structure", "imports", "global_random")
            ),
        ]
    except ValueError as exc:  # e.g. null bytes in the source
        evidence = Evidence(detail=str(exc))
        return [
            CheckResult(
                name="syntax", status="fail", summary="the module does not parse", evidence=[evidence]
            )
        ]
    return [
        CheckResult(name="syntax", status="pass", summary="parses"),
        _structure(tree, config),
        _imports(tree),
        _global_random(tree),
    ]


def _caret(exc: SyntaxError) -> str | None:
    if not exc.text:
        return None
    offset = max(1, exc.offset or 1)
    return f"{exc.text.rstrip()}\n{' ' * (offset - 1)}^"


def _is_environment_base(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Environment") or (
        isinstance(node, ast.Attribute) and node.attr == "Environment"
    )


def _structure(tree: ast.Module, config: CheckConfig) -> CheckResult:
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    env_classes = [c for c in classes if any(_is_environment_base(b) for b in c.bases)]
    problems: list[Evidence] = []
    if len(env_classes) != 1:
        found = ", ".join(f"{c.name} (line {c.lineno})" for c in env_classes) or "none"
        problems.append(
            Evidence(
                detail=f"expected exactly one top-level subclass of Environment, found {len(env_classes)}: {found}",
                line=env_classes[1].lineno if len(env_classes) > 1 else None,
            )
        )
        return CheckResult(name="structure", status="fail", summary=problems[0].detail, evidence=problems)
    cls = env_classes[0]
    by_name = {c.name: c for c in classes}
    # Members may come from helper base classes defined in the same module.
    bodies = [cls]
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in by_name and base.id != cls.name:
            bodies.append(by_name[base.id])
    assigned: dict[str, ast.expr] = {}
    methods: dict[str, ast.FunctionDef] = {}
    for body in reversed(bodies):
        for stmt in body.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
            ):
                assigned[stmt.targets[0].id] = stmt.value
            elif (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.value is not None
            ):
                assigned[stmt.target.id] = stmt.value
            elif isinstance(stmt, ast.FunctionDef):
                methods[stmt.name] = stmt
    name = assigned.get("name")
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        problems.append(
            Evidence(
                detail=f"class {cls.name} must set name = '<identifier>' as a string literal", line=cls.lineno
            )
        )
    elif not NAME_PATTERN.match(name.value):
        problems.append(
            Evidence(
                detail=f"name {name.value!r} must match [a-z][a-z0-9_]* (at most 64 characters)",
                line=name.lineno,
            )
        )
    levels = assigned.get("max_difficulty")
    if not (isinstance(levels, ast.Constant) and type(levels.value) is int):
        problems.append(
            Evidence(
                detail=f"class {cls.name} must set max_difficulty = <int> as an integer literal",
                line=cls.lineno,
            )
        )
    elif not 1 <= levels.value <= config.max_levels:
        problems.append(
            Evidence(
                detail=f"max_difficulty = {levels.value} must be between 1 and {config.max_levels}",
                line=levels.lineno,
            )
        )
    for method, arity in REQUIRED_METHODS.items():
        fn = methods.get(method)
        if fn is None:
            problems.append(Evidence(detail=f"class {cls.name} does not define {method}()", line=cls.lineno))
        elif len(fn.args.posonlyargs) + len(fn.args.args) != arity and fn.args.vararg is None:
            problems.append(
                Evidence(
                    detail=f"{method}() must take {arity - 1} argument(s) besides self "
                    f"({ {'generate': 'rng, difficulty', 'question': 'instance', 'verify': 'instance, answer'}[method] })",
                    line=fn.lineno,
                )
            )
    if problems:
        return CheckResult(name="structure", status="fail", summary=problems[0].detail, evidence=problems)
    return CheckResult(name="structure", status="pass", summary=f"one Environment subclass: {cls.name}")


def _imports(tree: ast.Module) -> CheckResult:
    problems: list[Evidence] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                problem = _import_problem(alias.name)
                if problem:
                    problems.append(Evidence(detail=problem, line=node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(
                    Evidence(
                        detail="relative imports are not allowed: the module stands alone", line=node.lineno
                    )
                )
                continue
            module = node.module or ""
            problem = _import_problem(module)
            if problem is None and module == "resyn":
                bad = [a.name for a in node.names if a.name not in ("Environment", "grading", "env")]
                if bad:
                    problem = (
                        f"from resyn import {', '.join(bad)}: only Environment and grading may be imported"
                    )
            if problem:
                problems.append(Evidence(detail=problem, line=node.lineno))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(
                Evidence(
                    detail=f"{node.id} is not allowed in environments (parse answers with resyn.grading, "
                    f"e.g. grading.safe_arithmetic instead of eval)",
                    line=node.lineno,
                )
            )
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            problems.append(
                Evidence(detail=f"attribute .{node.attr} is not allowed in environments", line=node.lineno)
            )
    if problems:
        return CheckResult(name="imports", status="fail", summary=problems[0].detail, evidence=problems[:5])
    return CheckResult(name="imports", status="pass", summary="only allowed imports and names")


def _import_problem(module: str) -> str | None:
    top = module.split(".")[0]
    if top == "resyn":
        if module in ALLOWED_RESYN:
            return None
        return f"import {module}: environments may import only resyn, resyn.env and resyn.grading"
    if top in ALLOWED_MODULES:
        return None
    return (
        f"import {module}: not allowed; environments may import only the standard library's pure "
        f"modules ({', '.join(sorted(ALLOWED_MODULES - {'resyn', 'sympy', '__future__'}))}), sympy and resyn"
    )


def _global_random(tree: ast.Module) -> CheckResult:
    """Randomness must come from the ``rng`` argument: anything else breaks reproducibility."""
    problems: list[Evidence] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            bad = [a.name for a in node.names if a.name != "Random"]
            if bad:
                problems.append(
                    Evidence(
                        detail=f"from random import {', '.join(bad)}: use the rng argument of generate() instead",
                        line=node.lineno,
                    )
                )
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            if isinstance(base, ast.Name) and base.id == "random":
                if node.func.attr == "Random" and not node.args and not node.keywords:
                    problems.append(
                        Evidence(
                            detail="random.Random() without a seed draws from the OS: use the rng argument of generate()",
                            line=node.lineno,
                        )
                    )
                elif node.func.attr not in ("Random",):
                    problems.append(
                        Evidence(
                            detail=f"random.{node.func.attr}() uses the global generator: use the rng argument of "
                            f"generate() (e.g. rng.{node.func.attr}(...))",
                            line=node.lineno,
                        )
                    )
    if problems:
        return CheckResult(
            name="global_random", status="fail", summary=problems[0].detail, evidence=problems[:5]
        )
    return CheckResult(name="global_random", status="pass", summary="no global randomness")
