"""The synthesis loop's prompts: jinja2 templates, what they need, and how they render.

Templates live in the repository's top-level ``prompts/`` directory, or in ``$RESYN_PROMPTS_DIR``
to experiment without touching the checkout. There is one template per step of the loop
(:data:`PROMPT_NAMES`); each defines a ``system`` and a ``user`` block, rendered separately into the
two messages, and includes shared partials (files whose names start with ``_``).

Templates never copy facts that live in code: the contract (``resyn.env``'s docstring), the example
module, the import allow-list, the forbidden names, the check names and every threshold are injected
as globals (:func:`template_globals`), so a prompt cannot drift from what the checks enforce.

Rendering is strict and deterministic. Strict: a variable the template needs but was not given, a
given variable the template does not use (a typo must not silently yield another prompt), a missing
field inside a value (``StrictUndefined``) and a template syntax error are all a one-line
:class:`~resyn.errors.ResynError`. Deterministic: the same variables give byte-identical text,
because replay transcripts are keyed by the sha256 of the rendered request; each result also
carries the sha256 of the template sources (partials included), so a record names the exact
template version it came from.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta
from pydantic import BaseModel, ConfigDict

import resyn
import resyn.env
from resyn import grading
from resyn.checks.config import CheckConfig
from resyn.checks.report import clip
from resyn.checks.runner import CHECK_NAMES
from resyn.checks.static import ALLOWED_MODULES, FORBIDDEN_ATTRIBUTES, FORBIDDEN_NAMES
from resyn.errors import ResynError

if TYPE_CHECKING:  # resyn.llm imports both provider SDKs (seconds); rendering alone needs neither
    from resyn.llm.models import LLMRequest

__all__ = [
    "BLOCKS",
    "EXAMPLE_MODULE",
    "PROMPTS_DIR_ENV",
    "PROMPT_NAMES",
    "PromptInfo",
    "RenderedPrompt",
    "available_prompts",
    "list_prompts",
    "prompts_dir",
    "render",
    "request",
    "template_globals",
]

#: Environment variable naming another template directory (a copy of ``prompts/`` to experiment).
PROMPTS_DIR_ENV = "RESYN_PROMPTS_DIR"
#: The steps of the synthesis loop, in the order they are listed.
PROMPT_NAMES = ("write", "revise", "judge", "propose", "solve")
#: The blocks every template defines, rendered into the system and the user message.
BLOCKS = ("system", "user")
#: The bundled example shown to the writing model: its verifier checks constraints and accepts every
#: valid answer, the pattern LLM-written verifiers most often get wrong.
EXAMPLE_MODULE = "graph_coloring"

_SUFFIX = ".j2"
_TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DESCRIPTION = re.compile(r"\{#-?\s*description:\s*(.*?)\s*-?#\}", re.DOTALL)


class PromptInfo(BaseModel):
    """What ``resyn prompts list`` shows about one template."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str
    """The template's name (its file name without ``.j2``)."""

    path: str
    """The template file."""

    description: str
    """The template's ``{# description: … #}`` comment, else its first line."""

    variables: list[str]
    """Variables the caller must supply (sorted); the injected globals are not among them."""

    partials: list[str]
    """Files it includes, directly or through other partials (sorted)."""

    template_sha256: str
    """sha256 of the template and its partials (see :class:`RenderedPrompt`)."""


class RenderedPrompt(BaseModel):
    """The two messages rendered from one template."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str
    """The template's name."""

    system: str
    """The system message (stripped; empty if the template's system block is)."""

    user: str
    """The user message (stripped)."""

    template_sha256: str
    """sha256 over the names and sources of the template and every partial it includes: the same
    value exactly when the same template version was used."""

    def to_request(
        self,
        *,
        max_tokens: int,
        purpose: str | None,
        tags: Mapping[str, str] | None = None,
        output: type[BaseModel] | dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> LLMRequest:
        """An :class:`LLMRequest` with these messages. The tags get ``template_sha256`` (unless the
        caller sets it), so that call records name the template version and not only its name."""
        from resyn.llm.models import LLMRequest

        return LLMRequest.build(
            self.user,
            system=self.system or None,
            template=self.name,
            max_tokens=max_tokens,
            temperature=temperature,
            output=output,
            purpose=purpose,
            tags={"template_sha256": self.template_sha256, **(tags or {})},
        )


def prompts_dir() -> Path:
    """The template directory: ``$RESYN_PROMPTS_DIR``, else ``prompts/`` next to the package.

    The repository's top-level ``prompts/`` is found through the package's location, which works
    for the editable install that ``scripts/install.sh`` makes (a wheel does not contain it).
    """
    configured = os.environ.get(PROMPTS_DIR_ENV)
    if configured:
        return Path(configured)
    return _default_dir()


@cache
def _default_dir() -> Path:
    return Path(resyn.__file__).resolve().parents[1] / "prompts"


def available_prompts() -> list[str]:
    """Names of the templates in :func:`prompts_dir`: :data:`PROMPT_NAMES` first, then any other."""
    return _library().names()


def list_prompts() -> list[PromptInfo]:
    """Every template with its description and the variables a caller must supply."""
    library = _library()
    infos = []
    for name in library.names():
        entry = library.get(name)
        infos.append(
            PromptInfo(
                name=name,
                path=str(entry.path),
                description=entry.description,
                variables=list(entry.variables),
                partials=list(entry.partials),
                template_sha256=entry.sha256,
            )
        )
    return infos


def render(name: str, variables: Mapping[str, Any]) -> RenderedPrompt:
    """Render template ``name`` with exactly the variables it needs.

    Raises :class:`ResynError` (one line) for an unknown template, a missing or an unexpected
    variable, a value lacking a field the template reads, and a template syntax error.
    """
    entry = _library().get(name)
    given = dict(variables)
    missing = [v for v in entry.variables if v not in given]
    extra = sorted(set(given) - set(entry.variables))
    if missing:
        typo = difflib.get_close_matches(missing[0], extra, n=1)
        hint = f" (given {typo[0]!r}: a typo?)" if typo else ""
        raise ResynError(f"prompt {name!r} needs variable {missing[0]!r}: pass --var {missing[0]}=…{hint}")
    if extra:
        close = difflib.get_close_matches(extra[0], entry.variables, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        takes = ", ".join(entry.variables) or "none"
        raise ResynError(f"prompt {name!r} has no variable {extra[0]!r}{hint}; its variables: {takes}")
    texts = []
    for block in BLOCKS:
        try:
            # A fresh context per block: a ``{% set %}`` in one block must not leak into the other.
            text = "".join(entry.template.blocks[block](entry.template.new_context(given)))
        except jinja2.UndefinedError as exc:
            raise ResynError(
                f"prompt {name!r}: {_one_line(exc.message or 'undefined value')} (a value passed in its variables "
                f"{', '.join(entry.variables)} lacks something the template reads)"
            ) from None
        except jinja2.TemplateError as exc:
            raise ResynError(f"prompt {name!r} failed to render: {_one_line(str(exc))}") from None
        texts.append(text.strip())
    return RenderedPrompt(name=name, system=texts[0], user=texts[1], template_sha256=entry.sha256)


def request(
    name: str,
    variables: Mapping[str, Any],
    *,
    max_tokens: int,
    purpose: str | None,
    tags: Mapping[str, str] | None = None,
    output: type[BaseModel] | dict[str, Any] | None = None,
    temperature: float | None = None,
) -> LLMRequest:
    """Render ``name`` and build the model call (see :meth:`RenderedPrompt.to_request`)."""
    return render(name, variables).to_request(
        max_tokens=max_tokens, purpose=purpose, tags=tags, output=output, temperature=temperature
    )


# ---------------------------------------------------------------------------------------------------
# Injected globals
# ---------------------------------------------------------------------------------------------------


@cache
def _globals() -> dict[str, Any]:
    example = Path(resyn.env.__file__).parent / "examples" / f"{EXAMPLE_MODULE}.py"
    functions = []
    for function_name in grading.__all__:
        function = getattr(grading, function_name)
        if not callable(function) or function_name == "extract_answer":  # the harness's, not authors'
            continue
        # Annotations are strings (PEP 563); without their quotes the signature reads like source.
        signature = str(inspect.signature(function)).replace("'", "")
        summary = _rst_to_text((inspect.getdoc(function) or "").split("\n\n")[0])
        functions.append({"name": function_name, "signature": signature, "summary": summary})
    return {
        "contract": inspect.cleandoc(resyn.env.__doc__ or ""),
        "example_module": example.read_text(encoding="utf-8"),
        "allowed_modules": sorted(ALLOWED_MODULES),
        "forbidden_names": sorted(FORBIDDEN_NAMES),
        "forbidden_attributes": sorted(FORBIDDEN_ATTRIBUTES),
        "check_config": CheckConfig().model_dump(),
        "check_names": list(CHECK_NAMES),
        "grading_functions": functions,
    }


def template_globals() -> dict[str, Any]:
    """What every template can use without the caller passing it (a copy).

    ``contract`` (the docstring of ``resyn.env``), ``example_module`` (the source of the bundled
    graph-colouring example), ``allowed_modules``, ``forbidden_names``, ``forbidden_attributes``
    (sorted lists from the static checks), ``check_config`` (the default ``CheckConfig`` as a dict),
    ``check_names`` (every check, in report order) and ``grading_functions`` (name, signature and
    summary of each helper in ``resyn.grading``).
    """
    return dict(_globals())


def _rst_to_text(text: str) -> str:
    """Docstring markup to the plain markdown a model reads: ``:func:`x``` → ``x``, ````x```` → ```x```."""
    text = re.sub(r":(?:func|data|class|mod|meth):`~?([^`]+)`", r"`\1`", text)
    return " ".join(text.replace("``", "`").split())


def _pct(value: float) -> str:
    return f"{value * 100:g} %"


def _num(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms"


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------------
# Loading: one cached jinja environment per directory, reloaded when a file changes
# ---------------------------------------------------------------------------------------------------


class _RecordingLoader(jinja2.FileSystemLoader):
    """A file loader that remembers the exact source (and the file's stamp) jinja compiled, so the
    template hash describes what was rendered, not what is on disk a moment later."""

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory), encoding="utf-8")
        self.directory = directory
        self.sources: dict[str, tuple[str, tuple[int, int]]] = {}

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        stamp = _stamp(self.directory / template)  # before reading: a later change shows as stale
        source, filename, uptodate = super().get_source(environment, template)
        self.sources[template] = (source, stamp or (0, 0))
        return source, filename, uptodate


@dataclass(frozen=True)
class _Entry:
    template: jinja2.Template
    path: Path
    files: tuple[str, ...]  # the template, then its partials (sorted)
    paths: tuple[str, ...]  # the same, as paths to stat
    stamps: tuple[tuple[int, int] | None, ...]
    sha256: str
    variables: tuple[str, ...]
    description: str

    @property
    def partials(self) -> tuple[str, ...]:
        return self.files[1:]


def _stamp(path: Path | str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class _Library:
    """The templates of one directory. Checking a handful of file stamps per render (microseconds)
    keeps a long-running loop consistent with edited templates without re-parsing them each time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.loader = _RecordingLoader(self.directory)
        # auto_reload off: jinja never swaps a template behind our back; staleness is decided by
        # _Library.get from the stamps, which also keeps the hash and the compiled text in step.
        self.env = jinja2.Environment(
            loader=self.loader,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.globals.update(_globals())
        self.env.filters.update({"clip": _clip, "pct": _pct, "num": _num, "ms": _ms, "rstrip": _rstrip})
        self.entries: dict[str, _Entry] = {}

    def names(self) -> list[str]:
        _require_dir(self.directory)
        found = {p.name[: -len(_SUFFIX)] for p in self.directory.glob(f"*{_SUFFIX}") if p.is_file()}
        names = {n for n in found if _TEMPLATE_NAME.fullmatch(n)}
        return [n for n in PROMPT_NAMES if n in names] + sorted(names - set(PROMPT_NAMES))

    def get(self, name: str) -> _Entry:
        with self._lock:
            entry = self.entries.get(name)
            if entry is not None:
                if tuple(_stamp(p) for p in entry.paths) == entry.stamps:
                    return entry
                self._reset()  # partials are shared between templates: start afresh
            entry = self._load(name)
            self.entries[name] = entry
            return entry

    def _load(self, name: str) -> _Entry:
        _require_dir(self.directory)
        path = self.directory / f"{name}{_SUFFIX}"
        if not (_TEMPLATE_NAME.fullmatch(name) and path.is_file()):
            names = self.names()
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ResynError(
                f"unknown prompt {name!r}{hint}; prompts in {self.directory}: {', '.join(names) or 'none'}"
            )
        template = self._template(path.name, including=None)
        if missing := [b for b in BLOCKS if b not in template.blocks]:
            raise ResynError(f"{path}: the template must define {{% block {missing[0]} %}}")
        # Walk the includes so that the hash and the variables cover every partial.
        order = [path.name]
        variables: set[str] = set()
        queue = [path.name]
        while queue:
            current = queue.pop()
            source = self.loader.sources[current][0]
            ast = self.env.parse(source, current, str(self.directory / current))
            variables |= jinja2.meta.find_undeclared_variables(ast)
            for included in jinja2.meta.find_referenced_templates(ast):
                if included is None:
                    raise ResynError(
                        f"{self.directory / current}: includes must name a file literally "
                        "(the template hash must cover every partial)"
                    )
                if included not in order:
                    self._template(included, including=current)
                    order.append(included)
                    queue.append(included)
        files = (order[0], *sorted(order[1:]))
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file}\0{self.loader.sources[file][0]}\0".encode())
        source = self.loader.sources[path.name][0]
        described = _DESCRIPTION.search(source)
        description = _one_line(described.group(1)) if described else (source.strip().splitlines() or [""])[0]
        return _Entry(
            template=template,
            path=path,
            files=files,
            paths=tuple(str(self.directory / f) for f in files),
            stamps=tuple(self.loader.sources[f][1] for f in files),
            sha256=digest.hexdigest(),
            variables=tuple(sorted(variables - set(self.env.globals))),
            description=description,
        )

    def _template(self, file: str, including: str | None) -> jinja2.Template:
        try:
            return self.env.get_template(file)
        except jinja2.TemplateSyntaxError as exc:
            where = f"{exc.filename or self.directory / file}:{exc.lineno}"
            raise ResynError(f"{where}: template syntax error: {_one_line(exc.message or '')}") from None
        except jinja2.TemplateNotFound as exc:
            raise ResynError(
                f"{self.directory / (including or file)}: includes {exc.name!r}, "
                f"which is not in {self.directory}"
            ) from None


def _clip(text: Any, limit: int) -> str:
    """Shorten a long value (a huge question) with a marker saying how much was cut."""
    return clip(str(text), limit) or ""


def _rstrip(text: Any) -> str:
    """Code without its final newline, so that the closing fence follows it directly."""
    return str(text).rstrip()


def _require_dir(directory: Path) -> None:
    if not directory.is_dir():
        raise ResynError(
            f"prompt templates not found: {directory} is not a directory; set {PROMPTS_DIR_ENV} to "
            "a prompts/ directory (or run from an editable install of the resyn repository)"
        )


_libraries: dict[Path, _Library] = {}
_libraries_lock = threading.Lock()


def _library() -> _Library:
    directory = prompts_dir()
    with _libraries_lock:
        library = _libraries.get(directory)
        if library is None:
            _require_dir(directory)
            library = _libraries[directory] = _Library(directory)
        return library
