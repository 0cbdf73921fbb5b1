"""Render a :class:`~resyn.report.data.ReportData` as one self-contained HTML page, and write it.

Why jinja2 with ``autoescape=True`` rather than string building: almost everything on the page is
text from the catalog that an LLM wrote (module code, questions, judge feedback, even keywords and
ids), so escaping must be the default, not a call to remember at each of a hundred places. With
autoescape a forgotten escape is still safe; only values explicitly wrapped in
:class:`markupsafe.Markup` go out raw, and those are the style sheet (a constant) and the SVG charts
(:mod:`resyn.report.charts`, which escape their own labels). A ``Content-Security-Policy`` meta tag
that allows no scripts and no network is a second line of defence: even markup that slipped
through could neither run nor load anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import re
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path

import jinja2
from markupsafe import Markup

from resyn.catalog import RunRecord
from resyn.errors import ResynError
from resyn.report import charts
from resyn.report.data import ReportData, Revision
from resyn.report.template import CSS, TEMPLATE

STATUS_HELP = {
    "accepted": "accepted: training material",
    "too_easy": "too easy: the solver passes at every level (kept, not exported by default)",
    "too_hard": "too hard: the solver never passes, though gold answers verify (kept, not exported)",
    "unproven": "unproven: the solver never passes and nothing shows the task solvable (kept, not exported)",
}

FUNNEL_STAGES = (
    ("written", "written"),
    ("extracted", "code extracted"),
    ("passed_static", "passed static checks"),
    ("passed_checks", "passed checks"),
    ("passed_judge", "passed judge"),
    ("accepted", "accepted"),
)

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")


class ReportWriteError(ResynError):
    """The page could not be written where asked (a one-line message naming the path)."""


def anchor(kind: str, raw: str) -> str:
    """A stable, valid HTML id for an element about ``raw`` (an env or candidate id).

    Ids from the catalog are usually already safe (``josephus-e2ea4593``, hex candidate ids) and
    are kept readable; anything else (spaces, ``#``, quotes) is slugged and suffixed with a hash of
    the original, so two different ids never share an anchor.
    """
    if _SAFE_ID.fullmatch(raw):
        return f"{kind}-{raw}"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")[:48]
    return f"{kind}-{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:10]}"


def render_report(data: ReportData) -> str:
    """The HTML page for ``data``: a pure function of it (no clock, no file access)."""
    template = _environment().from_string(TEMPLATE)
    run = data.runs[0] if data.run_id is not None and data.runs else None
    candidate_rounds: dict[str, int] = {}
    for revisions in [env.revisions for env in data.environments] + [
        task.revisions for task in data.rejected + data.unfinished
    ]:
        for rev in revisions:
            candidate_rounds[rev.candidate_id] = rev.round
    stats = data.stats
    written = stats.funnel.written
    funnel = [(key, label, int(getattr(stats.funnel, key))) for key, label in FUNNEL_STAGES]
    funnel_bars = [
        charts.Bar(
            key=key, label=label, value=count, note=f"({100 * count / written:.0f} %)" if written else ""
        )
        for key, label, count in funnel
    ]
    title = f"resyn report — run {data.run_id}" if data.run_id is not None else "resyn report — whole catalog"
    return template.render(
        data=data,
        title=title,
        css=Markup(CSS),
        run=run,
        run_facts=_run_facts(run) if run else [],
        env_statuses=dict(Counter(env.status for env in data.environments)),
        funnel=funnel,
        funnel_chart=charts.hbar_chart(funnel_bars, css_class="funnel-chart", title="candidate funnel"),
        failed_checks_chart=charts.hbar_chart(
            [charts.Bar(key=name, label=name, value=n) for name, n in stats.failed_checks.items()],
            css_class="failed-checks-chart",
            title="candidates failing each check",
            color=charts.ACCENT,
        ),
        outcomes_chart=charts.hbar_chart(
            [
                charts.Bar(key=name, label=name.replace("_", " "), value=n)
                for name, n in stats.outcomes.items()
            ],
            css_class="outcomes-chart",
            title="candidates by outcome",
            color=charts.MUTED,
        ),
        rounds_chart=charts.histogram(
            data.rounds_to_acceptance,
            css_class="rounds-chart",
            title="accepted keywords by rounds to acceptance",
            x_label="rounds to acceptance",
        ),
        candidate_rounds=candidate_rounds,
        env_ids={env.env_id for env in data.environments},
        status_help=STATUS_HELP,
    )


def write_report(html: str, out: Path) -> Path:
    """Write the page to ``out`` atomically, creating missing directories.

    A temporary file in the same directory is renamed over ``out``, so a reader (or a browser
    reloading) never sees half a page, and a failure leaves any previous report in place.
    """
    if out.is_dir():
        raise ReportWriteError(f"--out {out} is a directory: give the path of an .html file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportWriteError(
            f"cannot create the directory of --out {out} ({(exc.strerror or type(exc).__name__).lower()}): "
            "pass --out with a writable path"
        ) from None
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ReportWriteError(
            f"cannot write --out {out} ({(exc.strerror or type(exc).__name__).lower()}): "
            "pass --out with a writable path"
        ) from None
    return out


# -- helpers --------------------------------------------------------------------------------------
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(anchor=anchor, pass_rate_chart=charts.pass_rate_chart, score_bar=charts.score_bar)
    env.filters.update(
        when=_when,
        usd=_usd,
        thousands=_thousands,
        short=_short,
        checks_label=_checks_label,
        cleandoc=inspect.cleandoc,
    )
    return env


def _run_facts(run: RunRecord) -> list[tuple[str, str]]:
    """What identifies a run at a glance; its config is free-form JSON, so every key is optional."""
    raw = run.config.get("settings")
    settings = raw if isinstance(raw, dict) else {}
    facts = [("run", run.run_id), ("status", run.status), ("started", _when(run.created_at))]
    if run.finished_at is not None:
        facts.append(("finished", _when(run.finished_at)))
    for key, label in (
        ("model", "writer model"),
        ("judge_model", "judge model"),
        ("max_rounds", "max rounds"),
    ):
        if settings.get(key) is not None:
            facts.append((label, str(settings[key])))
    keywords = run.config.get("keywords")
    if isinstance(keywords, list):
        facts.append(("keywords given", str(len(keywords))))
    facts.append(("resyn", run.resyn_version))
    return facts


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}"


def _thousands(value: int) -> str:
    return f"{value:,}"


def _short(value: str) -> str:
    """Candidate ids are 32 hex digits: the first 12 tell them apart on a page."""
    return value if len(value) <= 14 else value[:12] + "…"


def _checks_label(rev: Revision) -> str:
    if not rev.extracted:
        return "no module"
    if not rev.checked:
        return "not checked"
    if rev.failures:
        return f"{len(rev.failures)} check{'s' if len(rev.failures) != 1 else ''} failed"
    return "checks passed"
