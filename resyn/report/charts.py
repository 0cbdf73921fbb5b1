"""Inline SVG charts, drawn in Python: the report must open offline and from a file, so it cannot
pull a charting library from a CDN, and a few bars and lines need none.

Each function returns :class:`markupsafe.Markup` that the template inserts as is, so each one is
responsible for its own escaping: every label passes through :func:`markupsafe.escape`, and
everything else is a number this module formatted. Elements carry ``data-*`` attributes with the
plotted values, so tests (and anyone scraping the page) read numbers, not pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from resyn.catalog.records import CalibrationLevel

BAR_COLOR = "#4a7bd0"
ACCENT = "#d0674a"
MUTED = "#9aa3ae"


class Bar(BaseModel):
    """One bar of a horizontal bar chart."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    """Stable identifier, written to ``data-key``."""
    label: str
    value: int
    note: str = ""
    """Shown after the value (e.g. a share of the total)."""


def _num(value: float) -> str:
    """A coordinate with at most two decimals: short markup, stable output."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def hbar_chart(bars: Sequence[Bar], *, css_class: str, title: str, color: str = BAR_COLOR) -> Markup:
    """Horizontal bars, one per row, scaled to the largest value; labels left, values right."""
    if not bars:
        return Markup("")
    row, label_w, bar_w, value_w = 26, 170, 360, 150
    width, height = label_w + bar_w + value_w, row * len(bars) + 6
    top = max((bar.value for bar in bars), default=0) or 1
    parts = [
        f'<svg class="chart {escape(css_class)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = 3 + i * row
        length = bar_w * bar.value / top
        parts.append(
            f'<g class="bar" data-key="{escape(bar.key)}" data-value="{bar.value}">'
            f"<title>{escape(bar.label)}: {bar.value}{escape(' ' + bar.note if bar.note else '')}</title>"
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" class="bar-label">'
            f"{escape(_shorten(bar.label, 26))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{_num(max(length, 1.5 if bar.value else 0))}" '
            f'height="{row - 8}" rx="2" fill="{color}"/>'
            f'<text x="{_num(label_w + length + 6)}" y="{y + 17}" class="bar-value">{bar.value}'
            f"{escape(' ' + bar.note if bar.note else '')}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(counts: dict[int, int], *, css_class: str, title: str, x_label: str) -> Markup:
    """Vertical bars for the integers 1..max(counts) (gaps drawn as empty columns)."""
    if not counts:
        return Markup("")
    keys = list(range(1, max(max(counts), 1) + 1))
    col, left, bottom, top_pad, plot_h = 46, 34, 34, 14, 120
    width, height = max(left + col * len(keys) + 10, 200), top_pad + plot_h + bottom
    top = max(counts.values()) or 1
    parts = [
        f'<svg class="chart {escape(css_class)}" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 6}" y2="{top_pad + plot_h}" '
        f'stroke="{MUTED}"/>',
    ]
    for i, key in enumerate(keys):
        value = counts.get(key, 0)
        h = plot_h * value / top
        x = left + i * col
        parts.append(
            f'<g class="bin" data-key="{key}" data-value="{value}"><title>{key}: {value}</title>'
            f'<rect x="{x + 6}" y="{_num(top_pad + plot_h - h)}" width="{col - 12}" height="{_num(h)}" '
            f'rx="2" fill="{BAR_COLOR}"/>'
            f'<text x="{x + col / 2}" y="{_num(top_pad + plot_h - h - 3)}" text-anchor="middle" '
            f'class="bar-value">{value}</text>'
            f'<text x="{x + col / 2}" y="{top_pad + plot_h + 15}" text-anchor="middle" '
            f'class="axis-label">{key}</text></g>'
        )
    parts.append(f'<text x="{left}" y="{height - 3}" class="axis-title">{escape(x_label)}</text></svg>')
    return Markup("".join(parts))


def pass_rate_chart(levels: Sequence[CalibrationLevel], *, title: str) -> Markup:
    """Pass rate by difficulty as a line with one ``circle.point`` per level, and learnability
    ``4p(1-p)`` per level as a dashed line; both on a 0–100 % axis.

    A level without attempts has no pass rate: its point is hollow, on the axis, and the line
    breaks there rather than pretending the rate was 0.
    """
    ordered = sorted(levels, key=lambda level: level.difficulty)
    left, right, top_pad, bottom, plot_w, plot_h = 40, 12, 12, 34, 260, 130
    width, height = left + plot_w + right, top_pad + plot_h + bottom
    n = len(ordered)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_at(rate: float) -> float:
        return top_pad + plot_h * (1 - min(max(rate, 0.0), 1.0))

    parts = [
        f'<svg class="chart pass-rate-chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" data-levels="{n}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _num(y_at(tick))
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#e3e6ea"/>'
            f'<text x="{left - 5}" y="{y}" dy="4" text-anchor="end" class="axis-label">{tick:.0%}</text>'
        )
    parts.append(_polyline(ordered, x_at, y_at, "pass_rate", "pass-rate-line", BAR_COLOR, ""))
    parts.append(_polyline(ordered, x_at, y_at, "learnability", "learnability-line", ACCENT, "4 3"))
    for i, level in enumerate(ordered):
        x = _num(x_at(i))
        learn = "n/a" if level.learnability is None else f"{level.learnability:.2f}"
        if level.pass_rate is None:
            tip = f"level {level.difficulty}: no attempts ({level.failed_calls} failed calls)"
            parts.append(
                f'<circle class="point no-data" cx="{x}" cy="{_num(y_at(0))}" r="4" fill="white" '
                f'stroke="{MUTED}" stroke-width="1.5" data-difficulty="{level.difficulty}" '
                f'data-pass-rate=""><title>{escape(tip)}</title></circle>'
            )
        else:
            tip = (
                f"level {level.difficulty}: pass rate {level.pass_rate:.0%} "
                f"({level.correct}/{level.attempts}), learnability {learn}"
            )
            parts.append(
                f'<circle class="point" cx="{x}" cy="{_num(y_at(level.pass_rate))}" r="4" '
                f'fill="{BAR_COLOR}" data-difficulty="{level.difficulty}" '
                f'data-pass-rate="{level.pass_rate:.4f}" data-attempts="{level.attempts}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        parts.append(
            f'<text x="{x}" y="{top_pad + plot_h + 15}" text-anchor="middle" class="axis-label">'
            f"{level.difficulty}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 3}" text-anchor="middle" class="axis-title">'
        "difficulty level</text></svg>"
    )
    return Markup("".join(parts))


def _polyline(
    levels: Sequence[CalibrationLevel],
    x_at: Callable[[int], float],
    y_at: Callable[[float], float],
    field: str,
    css_class: str,
    color: str,
    dash: str,
) -> str:
    """A path through the levels' ``field`` values, broken where a value is missing."""
    commands: list[str] = []
    pen_down = False
    for i, level in enumerate(levels):
        value = getattr(level, field)
        if value is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{_num(x_at(i))} {_num(y_at(value))}")
        pen_down = True
    if not commands:
        return ""
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<path class="{css_class}" d="{" ".join(commands)}" fill="none" stroke="{color}" '
        f'stroke-width="2"{dashes}/>'
    )


def score_bar(score: int, top: int = 5) -> Markup:
    """A judge score (1–5) as a small filled bar."""
    share = min(max(score, 0), top) / top
    return Markup(
        f'<svg class="score-bar" viewBox="0 0 60 8" width="60" height="8">'
        f'<rect width="60" height="8" rx="2" fill="#e3e6ea"/>'
        f'<rect width="{_num(60 * share)}" height="8" rx="2" fill="{BAR_COLOR}"/></svg>'
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
