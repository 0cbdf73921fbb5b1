"""``resyn report``: the HTML page, checked in a real headless browser.

The catalogs are built through the catalog API (runs, tasks, candidate chains, check reports,
verdicts, environments with samples and statuses, calibrations, duplicates, calls), plus one from a
real ``resyn demo`` run. The page is loaded by Debian's chromium and the DOM *it* built is parsed:
that is what a reader sees, so a tag that escaped escaping, a broken anchor or a chart without
its points shows up there, not just in the string we wrote. Chromium is required (CI installs it
with ``scripts/install.sh``); without it these tests fail rather than skip, so a green run always
means the page was checked in a browser.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from resyn.catalog import (
    CandidateRecord,
    Catalog,
    EnvironmentRecord,
    Lineage,
    RunRecord,
    TaskRecord,
    VerdictRecord,
    env_id_for,
)
from resyn.catalog.records import CalibrationLevel, CalibrationRecord, DuplicateRecord, EnvStatus
from resyn.checks.report import CheckReport, CheckResult, Evidence
from resyn.llm.models import CallRecord
from resyn.report import anchor, build_report_data, render_report
from resyn.report.charts import pass_rate_chart
from tests.test_cli import assert_one_line_error

ROOT = Path(__file__).parents[1]
T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
RUN = "run-x"

# Hostile text from "the LLM": it must show up as text, never as markup.
PAYLOAD = "<script>document.body.setAttribute('data-pwned', '1')</script><img src=x onerror=alert(1)>"
HOSTILE_KEYWORD = f'pwn {PAYLOAD} "quoted" & more'
HOSTILE_QUESTION = f"What is 2+2? {PAYLOAD}</pre><b>bold?</b>"

LEVELS_A = [(1, 8, 8), (2, 8, 6), (3, 8, 3), (4, 8, 1), (5, 0, 0)]  # (difficulty, attempts, correct)
LEVELS_B = [(1, 4, 4), (2, 4, 4), (3, 4, 4)]


# -- building a catalog through the API -------------------------------------------------------------
def _call(template: str, task: TaskRecord | None, candidate_id: str | None, cost: float | None) -> CallRecord:
    tags = {"run_id": task.run_id, "task_id": task.task_id} if task else {}
    if candidate_id:
        tags["candidate_id"] = candidate_id
    return CallRecord(
        started_at=T0,
        template=template,
        prompt_sha256="p" * 64,
        requested_model="openai/gpt-test",
        resolved_model="gpt-test-2025",
        tokens_in=1000,
        tokens_out=500,
        latency_s=1.5,
        cost_usd=cost,
        attempts=1,
        text="…",
        tags=tags,
        request={"messages": []},
    )


def _report(failing: dict[str, str] | None = None) -> CheckReport:
    checks = [CheckResult(name="syntax", status="pass", summary="parses")]
    for name, question in (failing or {}).items():
        checks.append(
            CheckResult(
                name=name,
                status="fail",
                summary=f"{name} accepted wrong answers",
                evidence=[
                    Evidence(detail="accepted junk", seed=3, difficulty=2, question=question, answer="1 2 3")
                ],
            )
        )
    checks.append(CheckResult(name="timing", status="warn", summary="slow verify"))
    return CheckReport(
        label="candidate.py",
        code_sha256="c" * 64,
        env_name="x",
        max_difficulty=5,
        has_solution=True,
        isolation="bwrap-root",
        accepted=not failing,
        seconds=3.0,
        checks=checks,
    )


class _Builder:
    """Records tasks the way the synthesis loop does: candidates round by round, then the end."""

    def __init__(self, catalog: Catalog, run_id: str) -> None:
        self.catalog, self.run_id, self.position = catalog, run_id, 0

    def task(self, keyword: str) -> TaskRecord:
        task = TaskRecord(
            task_id=f"{self.run_id}:{keyword}",
            run_id=self.run_id,
            keyword=keyword,
            position=self.position,
            updated_at=T0,
        )
        self.position += 1
        self.catalog.add_tasks([task])
        return task

    def round(
        self,
        task: TaskRecord,
        number: int,
        code: str | None,
        outcome: str,
        reason: str,
        *,
        failing: dict[str, str] | None = None,
        verdict: tuple[bool | None, str] | None = None,
        parent: bool = True,
    ) -> CandidateRecord:
        # Ids with a space, a colon and '#': the page must still make valid, working anchors.
        candidate = CandidateRecord(
            candidate_id=f"{task.task_id}#{number}",
            task_id=task.task_id,
            run_id=task.run_id,
            keyword=task.keyword,
            round=number,
            parent_id=f"{task.task_id}#{number - 1}" if number > 1 and parent else None,
            code=code,
            code_sha256=hashlib.sha256(code.encode()).hexdigest() if code else None,
            extracted=code is not None,
            passed_static=code is not None,
            passed_checks=code is not None and not failing,
            passed_judge=bool(verdict and verdict[0]),
            created_at=T0 + timedelta(minutes=number),
        )
        self.catalog.add_candidate(candidate)
        self.catalog.record(_call("write" if number == 1 else "revise", task, candidate.candidate_id, 0.01))
        if code is not None:
            self.catalog.add_check_report(candidate.candidate_id, _report(failing))
        if verdict is not None:
            self.catalog.record(_call("judge", task, candidate.candidate_id, 0.002))
            accept, feedback = verdict
            self.catalog.add_verdict(
                VerdictRecord(
                    verdict_id=f"v-{candidate.candidate_id}",
                    candidate_id=candidate.candidate_id,
                    call_id=None,
                    accept=accept,
                    feedback=feedback,
                    scores={"faithfulness": 4, "non_triviality": 2 if accept is False else 4},
                    error=None if accept is not None else "malformed twice",
                    created_at=T0,
                )
            )
        done = candidate.model_copy(update={"outcome": outcome, "reason": reason})
        if outcome != "accepted":
            self.catalog.update_candidate(done)
        return done

    def accept(
        self,
        task: TaskRecord,
        candidate: CandidateRecord,
        name: str,
        *,
        status: EnvStatus = "accepted",
        samples: list[dict[str, Any]] | None = None,
        description: str = "A task.",
    ) -> str:
        assert candidate.code is not None and candidate.code_sha256 is not None
        env = EnvironmentRecord(
            env_id=env_id_for(name, candidate.code_sha256),
            name=name,
            keyword=task.keyword,
            description=description,
            code=candidate.code,
            code_sha256=candidate.code_sha256,
            max_difficulty=5,
            has_solution=True,
            run_id=task.run_id,
            task_id=task.task_id,
            candidate_id=candidate.candidate_id,
            check_metrics={},
            judge_scores={"faithfulness": 5, "non_triviality": 3},
            lineage=Lineage(candidate_ids=[candidate.candidate_id], call_ids=[]),
            created_at=T0 + timedelta(hours=self.position),
            status=status,
            samples=samples or [],
        )
        final = task.model_copy(
            update={"status": "accepted", "rounds": candidate.round, "env_id": env.env_id}
        )
        return self.catalog.accept(
            env,
            candidate.model_copy(update={"passed_judge": True, "passed_checks": True}),
            final,
        )


def _calibrate(catalog: Catalog, env_id: str, levels: list[tuple[int, int, int]], status: EnvStatus) -> None:
    rows = []
    for difficulty, attempts, correct in levels:
        p = correct / attempts if attempts else None
        rows.append(
            CalibrationLevel(
                difficulty=difficulty,
                attempts=attempts,
                correct=correct,
                failed_calls=0 if attempts else 8,
                pass_rate=p,
                learnability=4 * p * (1 - p) if p is not None else None,
            )
        )
    known = [r.learnability for r in rows if r.learnability is not None]
    catalog.add_calibration(
        CalibrationRecord(
            calibration_id=f"cal-{env_id}",
            env_id=env_id,
            run_id=RUN,
            solver_model="openai/solver-mini",
            instances_per_level=2,
            attempts_per_instance=4,
            status=status,
            levels=rows,
            learnability=sum(known) / len(known),
            any_verified=True,
        ),
        [],
    )


def build_report_catalog(path: Path) -> dict[str, Any]:
    """Run ``run-x``: an environment accepted in round 3 after a check failure and a judge rejection
    (calibrated over 5 levels, one without attempts), one with a hostile keyword and question
    (calibrated too easy), an unproven one and an uncalibrated one (both accepted in round 1), a
    keyword rejected after 2 rounds, one stopped by a judge error, and a duplicate skipped. Run
    ``run-y`` has one more environment, which a report on ``run-x`` must leave out, and a keyword
    accepted as the very module of run-x's graph coloring."""
    ids: dict[str, Any] = {}
    with Catalog.open(path) as catalog:
        for run_id in (RUN, "run-y"):
            catalog.upsert_run(
                RunRecord(
                    run_id=run_id,
                    created_at=T0,
                    config={"settings": {"model": "openai/gpt-test", "judge_model": "openai/judge"}},
                    resyn_version="0.1.0",
                    status="finished",
                )
            )
        b = _Builder(catalog, RUN)

        coloring = b.task("graph coloring")
        b.round(
            coloring, 1, "v1 = 1\n", "checks_failed", "checks failed: shotgun", failing={"shotgun": "Q1?"}
        )
        b.round(
            coloring, 2, "v2 = 2\n", "judge_rejected", "judge rejected: vague", verdict=(False, "Too vague.")
        )
        c3 = b.round(coloring, 3, "v3 = 3\n", "accepted", "accepted", verdict=(True, "Fine now."))
        ids["coloring"] = b.accept(
            coloring,
            c3,
            "graph_coloring",
            samples=[
                {"difficulty": 1, "seed": 0, "question": "Colour the triangle.", "gold": "1 2 3"},
                {"difficulty": 5, "seed": 0, "question": "Colour K5 minus an edge.", "gold": None},
            ],
            description="Colour a graph.\n    With k colours.",
        )
        _calibrate(catalog, ids["coloring"], LEVELS_A, "accepted")

        hostile = b.task(HOSTILE_KEYWORD)
        h1 = b.round(hostile, 1, "h = 1\n", "accepted", "accepted", verdict=(True, f"ok {PAYLOAD}"))
        ids["hostile"] = b.accept(
            hostile,
            h1,
            "hostile_env",
            samples=[{"difficulty": 1, "seed": 7, "question": HOSTILE_QUESTION, "gold": PAYLOAD}],
            description=f"Evil description {PAYLOAD}",
        )
        _calibrate(catalog, ids["hostile"], LEVELS_B, "too_easy")

        riddle = b.task("riddles")
        ids["unproven"] = b.accept(
            riddle, b.round(riddle, 1, "r = 1\n", "accepted", "accepted", verdict=(True, "ok")), "riddles"
        )
        _calibrate(catalog, ids["unproven"], [(1, 4, 0), (2, 4, 0)], "unproven")

        sums = b.task("digit sums")
        ids["uncalibrated"] = b.accept(
            sums, b.round(sums, 1, "d = 1\n", "accepted", "accepted", verdict=(True, "ok")), "digit_sums"
        )

        rejected = b.task("proving Fermat")
        b.round(rejected, 1, None, "no_code", "no module in the answer: refusal")
        b.round(
            rejected,
            2,
            "f = 2\n",
            "checks_failed",
            "checks failed: diversity",
            failing={"diversity": "same?"},
            parent=False,
        )
        catalog.update_task(rejected.task_id, status="rejected", rounds=2, reason="checks failed: diversity")

        broken = b.task("anagrams")
        b.round(broken, 1, "a = 1\n", "judge_error", "judge failed: malformed", verdict=(None, ""))
        catalog.update_task(broken.task_id, status="error", rounds=1, reason="judge failed: malformed")

        catalog.add_duplicate(
            DuplicateRecord(
                duplicate_id="dup-1",
                run_id=RUN,
                kind="proposal",
                subject="graph colouring",
                duplicate_of=ids["coloring"],
                similarity=0.97,
            )
        )
        catalog.record(_call("probe", None, None, 0.5))  # untagged: not part of run-x

        other = _Builder(catalog, "run-y")
        y = other.task("sudoku")
        ids["other_run"] = other.accept(
            y, other.round(y, 1, "s = 1\n", "accepted", "accepted", verdict=(True, "ok")), "sudoku"
        )
        # The same module as run-x's graph coloring, accepted again: the catalog keeps run-x's row.
        again = other.task("graph colouring again")
        same = other.round(again, 1, "v3 = 3\n", "accepted", "accepted", verdict=(True, "ok"))
        assert other.accept(again, same, "graph_coloring") == ids["coloring"]
    return ids


# -- the browser ----------------------------------------------------------------------------------
def chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found is None:
        pytest.fail(
            "chromium is not installed: the report is checked in a real browser; "
            "run `bash scripts/install.sh` (it installs Debian's chromium)",
            pytrace=False,
        )
    return found


def browser_dom(page: Path, profile: Path) -> Node:
    """The DOM chromium builds from ``page`` (loaded as a file, offline), parsed back."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    return parse(result.stdout)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = field(default=None, repr=False)
    children: list[Node | str] = field(default_factory=list, repr=False)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [
            node
            for node in self.iter()
            if (tag is None or node.tag == tag)
            and (cls is None or cls in node.attrs.get("class", "").split())
            and all(node.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert len(found) == 1, f"expected one {tag} .{cls} {attrs}, found {len(found)}"
        return found[0]

    def by_id(self, element_id: str) -> Node:
        return self.one(id=element_id)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def assert_well_formed_page(dom: Node) -> None:
    """What must hold on every page: unique ids, every in-page link lands, nothing runs, nothing
    is fetched."""
    ids = [node.attrs["id"] for node in dom.iter() if "id" in node.attrs]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    known = set(ids)
    hrefs = [node.attrs["href"] for node in dom.iter() if "href" in node.attrs]
    assert hrefs, "the page has no links at all"
    for href in hrefs:
        assert href.startswith("#"), f"link leaves the page: {href!r}"
        assert href[1:] in known, f"link to a missing anchor: {href!r}"
    assert not dom.find_all("script"), "a script element made it into the page"
    assert not dom.find_all("img") and not dom.find_all("iframe") and not dom.find_all("object")
    for node in dom.iter():
        for name, value in node.attrs.items():
            assert not name.startswith("on"), f"event handler attribute {name} on <{node.tag}>"
            if name in ("src", "href", "srcset", "action", "data", "poster"):
                assert not re.match(r"\s*(https?:)?//", value), f"external resource {value!r} on <{node.tag}>"
        if node.tag in ("link", "script", "img", "iframe", "source", "embed"):
            raise AssertionError(f"<{node.tag}> loads a resource")
    assert "data-pwned" not in dom.one("body").attrs
    for style in dom.find_all("style"):
        assert "url(" not in style.text and "@import" not in style.text


# -- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("report") / "catalog.duckdb"
    return path, build_report_catalog(path)


@pytest.fixture(scope="module")
def run_page(built: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Node:
    """The report of run-x, written by the real command and loaded in chromium."""
    path, _ = built
    out = tmp_path_factory.mktemp("out") / "new" / "dir" / "report.html"
    ok(resyn("report", "--catalog", str(path), "--run", RUN, "--out", str(out)))
    assert out.is_file()
    return browser_dom(out, tmp_path_factory.mktemp("profile"))


def resyn(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "RESYN_CATALOG"} | {"COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "resyn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=600,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


# -- the page in the browser ----------------------------------------------------------------------------
def test_the_page_is_self_contained_and_its_links_land(run_page: Node) -> None:
    assert_well_formed_page(run_page)
    csp = run_page.one("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in csp


def test_funnel_numbers_match_the_catalog(run_page: Node, built: tuple[Path, dict[str, Any]]) -> None:
    path, _ = built
    with Catalog.open(path, read_only=True) as catalog:
        funnel = catalog.stats(RUN).funnel.model_dump()
    # written: 3 + 1 + 1 + 1 + 2 + 1 rounds; the no_code round is the only one without code.
    assert funnel == {
        "written": 9,
        "extracted": 8,
        "passed_static": 8,
        "passed_checks": 6,
        "passed_judge": 4,
        "accepted": 4,
    }
    section = run_page.by_id("funnel")
    shown = {
        node.attrs["data-stage"]: int(node.attrs["data-count"]) for node in section.find_all(cls="stage")
    }
    assert shown == funnel
    bars = {g.attrs["data-key"]: int(g.attrs["data-value"]) for g in section.find_all("g", cls="bar")}
    assert bars == funnel
    assert "passed judge 4" in " ".join(section.text.split())


def test_failures_rounds_and_cost(run_page: Node) -> None:
    failed = run_page.by_id("failed-checks")
    assert {g.attrs["data-key"]: int(g.attrs["data-value"]) for g in failed.find_all("g", cls="bar")} == {
        "shotgun": 1,
        "diversity": 1,
    }
    rejections = run_page.find_all("tr", cls="judge-rejection")
    assert [r.attrs["data-candidate-id"] for r in rejections] == ["run-x:graph coloring#2"]
    assert "Too vague." in rejections[0].text
    assert "0.97" in run_page.one("tr", cls="duplicate").text
    rounds = run_page.by_id("rounds")
    assert {g.attrs["data-key"]: int(g.attrs["data-value"]) for g in rounds.find_all("g", cls="bin")} == {
        "1": 3,
        "2": 0,
        "3": 1,
    }
    cost = run_page.by_id("cost")
    # 9 writes at $0.01 and 6 judge calls at $0.002; the untagged probe belongs to no run.
    assert float(cost.one(data_key="cost-total").attrs["data-value"]) == pytest.approx(0.102)
    assert float(cost.one(data_key="cost-per-environment").attrs["data-value"]) == pytest.approx(0.102 / 4)
    assert cost.one(data_key="tokens-in").attrs["data-value"] == str(15 * 1000)
    assert cost.one(data_key="tokens-out").attrs["data-value"] == str(15 * 500)


def test_one_card_per_environment_of_the_run(run_page: Node, built: tuple[Path, dict[str, Any]]) -> None:
    _, ids = built
    cards = {card.attrs["data-env-id"]: card for card in run_page.find_all("article", cls="env-card")}
    assert set(cards) == {ids["coloring"], ids["hostile"], ids["unproven"], ids["uncalibrated"]}
    assert ids["other_run"] not in cards  # run-y's environment
    statuses = {env_id: card.attrs["data-status"] for env_id, card in cards.items()}
    assert statuses == {
        ids["coloring"]: "accepted",
        ids["hostile"]: "too_easy",
        ids["unproven"]: "unproven",
        ids["uncalibrated"]: "accepted",
    }
    too_easy = cards[ids["hostile"]]
    assert "too easy" in too_easy.one("span", cls="too_easy").text

    coloring = cards[ids["coloring"]]
    assert coloring.one("dd", cls="keyword").text == "graph coloring"
    assert ids["coloring"] in coloring.one("code", cls="env-id").text
    assert "Colour a graph.\nWith k colours." in coloring.one("p", cls="description").text
    assert {tr.attrs["data-score"] for tr in coloring.find_all("tr")} >= {"faithfulness", "non_triviality"}
    samples = coloring.find_all("li", cls="sample")
    assert [s.attrs["data-difficulty"] for s in samples] == ["1", "5"]
    assert samples[0].one("pre", cls="question").text == "Colour the triangle."
    assert samples[0].one("code", cls="gold").text == "1 2 3"
    assert "none (verifier only)" in samples[1].text
    assert cards[ids["uncalibrated"]].find_all(cls="not-calibrated")


def test_revision_chain_links_parents_children_and_check_failures(
    run_page: Node, built: tuple[Path, dict[str, Any]]
) -> None:
    _, ids = built
    card = run_page.one("article", cls="env-card", data_env_id=ids["coloring"])
    revisions = card.find_all("li", cls="revision")
    assert [(r.attrs["data-round"], r.attrs["data-outcome"]) for r in revisions] == [
        ("1", "checks_failed"),
        ("2", "judge_rejected"),
        ("3", "accepted"),
    ]
    first, second, third = revisions
    for rev in revisions:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", rev.attrs["id"]), rev.attrs["id"]  # a usable anchor
    assert second.one("a", cls="parent-link").attrs["href"] == "#" + first.attrs["id"]
    assert first.one("a", cls="child-link").attrs["href"] == "#" + second.attrs["id"]
    assert third.one("a", cls="parent-link").attrs["href"] == "#" + second.attrs["id"]
    assert not third.find_all("a", cls="child-link") and not first.find_all("a", cls="parent-link")
    target = card.by_id(first.one("a", cls="checks-link").attrs["href"][1:])
    failure = target.one(cls="check-failure", data_check="shotgun")
    assert "accepted wrong answers" in failure.text and "question: 'Q1?'" in failure.text
    assert target.one(cls="check-warning", data_check="timing")
    verdict = card.by_id(second.one("a", cls="checks-link").attrs["href"][1:]).one(cls="verdict")
    assert verdict.attrs["data-accept"] == "false" and "Too vague." in verdict.text


def test_a_pass_rate_chart_per_calibrated_environment(
    run_page: Node, built: tuple[Path, dict[str, Any]]
) -> None:
    _, ids = built
    section = run_page.by_id("calibration")
    expected = {ids["coloring"]: LEVELS_A, ids["hostile"]: LEVELS_B, ids["unproven"]: [(1, 4, 0), (2, 4, 0)]}
    figures = {f.attrs["data-env-id"]: f for f in section.find_all("figure", cls="calibration")}
    assert set(figures) == {*expected, ids["uncalibrated"]}
    for env_id, levels in expected.items():
        chart = figures[env_id].one("svg", cls="pass-rate-chart")
        points = chart.find_all("circle", cls="point")
        assert len(points) == len(levels), env_id
        for point, (difficulty, attempts, correct) in zip(points, levels, strict=True):
            assert point.attrs["data-difficulty"] == str(difficulty)
            rate = point.attrs["data-pass-rate"]
            assert (float(rate) == pytest.approx(correct / attempts)) if attempts else rate == ""
        assert figures[env_id].one(cls="learnability").text
    assert len(figures[ids["coloring"]].find_all("circle", cls="no-data")) == 1  # level 5: no attempts
    assert len(section.find_all("svg", cls="pass-rate-chart")) == 3
    uncalibrated = figures[ids["uncalibrated"]]
    assert (
        not uncalibrated.find_all("svg") and uncalibrated.one(cls="not-calibrated").text == "not calibrated"
    )


def test_rejected_and_unfinished_keywords(run_page: Node) -> None:
    section = run_page.by_id("rejected")
    cards = {c.attrs["data-status"]: c for c in section.find_all("article", cls="task-card")}
    assert set(cards) == {"rejected", "error"}
    rejected = cards["rejected"]
    assert rejected.one(cls="keyword").text == "proving Fermat"
    assert rejected.one("span", cls="last-reason").text == "checks failed: diversity"
    rounds = rejected.find_all("li", cls="revision")
    assert [r.attrs["data-outcome"] for r in rounds] == ["no_code", "checks_failed"]
    assert "no module" in rounds[0].one("a", cls="checks-link").text
    assert "judge failed: malformed" in cards["error"].text


def test_injected_markup_is_shown_as_text(run_page: Node, built: tuple[Path, dict[str, Any]]) -> None:
    _, ids = built
    card = run_page.one("article", cls="env-card", data_env_id=ids["hostile"])
    assert card.one("dd", cls="keyword").text == HOSTILE_KEYWORD
    assert card.one("pre", cls="question").text == HOSTILE_QUESTION
    assert card.one("code", cls="gold").text == PAYLOAD
    assert PAYLOAD in card.one("p", cls="description").text
    assert all(b.text != "bold?" for b in card.find_all("b"))  # its </pre><b> closed nothing
    assert not run_page.find_all("script") and not run_page.find_all("img")
    assert "data-pwned" not in run_page.one("body").attrs


# -- the page from a real demo run ---------------------------------------------------------------------
@pytest.mark.slow
def test_report_of_a_real_demo_run(tmp_path: Path) -> None:
    catalog_path = tmp_path / "d.duckdb"
    ok(resyn("demo", "--catalog", str(catalog_path), cwd=tmp_path))
    with Catalog.open(catalog_path, read_only=True) as catalog:
        (run,) = catalog.runs()
        stats = catalog.stats(run.run_id)
        env_ids = {env.env_id for env in catalog.list_environments()}
        samples = {env_id: len(catalog.environment(env_id).samples) for env_id in env_ids}
    out = tmp_path / "reports" / "demo.html"
    printed = ok(resyn("report", "--catalog", str(catalog_path), "--run", run.run_id, "--out", str(out)))
    assert "wrote" in printed and out.is_file()
    dom = browser_dom(out, tmp_path / "profile")
    assert_well_formed_page(dom)
    shown = {
        n.attrs["data-stage"]: int(n.attrs["data-count"]) for n in dom.by_id("funnel").find_all(cls="stage")
    }
    assert shown == stats.funnel.model_dump() and shown["written"] == 8 and shown["accepted"] == 3
    assert {c.attrs["data-env-id"] for c in dom.find_all("article", cls="env-card")} == env_ids
    assert len(env_ids) == 3
    for card in dom.find_all("article", cls="env-card"):
        assert len(card.find_all("li", cls="sample")) == samples[card.attrs["data-env-id"]]
    rejected = dom.by_id("rejected").one("article", cls="task-card")
    assert rejected.one(cls="keyword").text == "proving the Riemann hypothesis"
    assert "diversity" in rejected.one("span", cls="last-reason").text
    josephus = next(
        c for c in dom.find_all("article", cls="env-card") if c.attrs["data-env-id"].startswith("josephus")
    )
    first, second = josephus.find_all("li", cls="revision")
    assert second.one("a", cls="parent-link").attrs["href"] == "#" + first.attrs["id"]
    failures = josephus.by_id(first.one("a", cls="checks-link").attrs["href"][1:]).find_all(
        cls="check-failure"
    )
    assert "shotgun" in {f.attrs["data-check"] for f in failures}


# -- the command -------------------------------------------------------------------------------------
def test_the_whole_catalog_by_default(built: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, ids = built
    out = tmp_path / "all.html"
    assert "the whole catalog" in ok(resyn("report", "--catalog", str(path), "--out", str(out)))
    dom = parse(out.read_text())
    assert ids["other_run"] in {c.attrs["data-env-id"] for c in dom.find_all("article", cls="env-card")}
    assert_well_formed_page(dom)


def test_an_unknown_run_is_a_one_line_error(built: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = built
    out = tmp_path / "x.html"
    result = resyn("report", "--catalog", str(path), "--run", "run_x", "--out", str(out))
    assert_one_line_error(result, "no run 'run_x' in catalog")
    assert "did you mean 'run-x'" in result.stderr
    assert not out.exists()


def test_bad_out_paths_and_catalogs(built: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    path, _ = built
    assert_one_line_error(resyn("report", "--catalog", str(path), "--out", str(tmp_path)), "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(
        resyn("report", "--catalog", str(path), "--out", str(blocker / "r.html")),
        "cannot create the directory",
    )
    assert_one_line_error(
        resyn("report", "--catalog", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "r.html")),
        "no catalog at",
    )
    assert not (tmp_path / "r.html").exists()
    missing = resyn("report", "--catalog", str(path))
    assert missing.returncode == 2 and "--out" in missing.stderr and "Traceback" not in missing.stderr


def test_an_empty_catalog_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    Catalog.open(path).close()
    out = tmp_path / "empty.html"
    ok(resyn("report", "--catalog", str(path), "--out", str(out)))
    dom = browser_dom(out, tmp_path / "profile")
    assert "This catalog is empty" in dom.by_id("empty").text
    assert not dom.find_all("article")
    assert not dom.find_all("script")


# -- data and rendering without a browser ---------------------------------------------------------------
def test_report_data(built: tuple[Path, dict[str, Any]]) -> None:
    path, ids = built
    with Catalog.open(path, read_only=True) as catalog:
        data = build_report_data(catalog, RUN)
    assert data.run_id == RUN and [r.run_id for r in data.runs] == [RUN] and data.tasks == 6
    assert data.rounds_to_acceptance == {1: 3, 3: 1}
    coloring = next(env for env in data.environments if env.env_id == ids["coloring"])
    assert [r.children for r in coloring.revisions] == [
        ["run-x:graph coloring#2"],
        ["run-x:graph coloring#3"],
        [],
    ]
    assert coloring.calibration is not None and len(coloring.calibration.levels) == 5
    assert [t.keyword for t in data.rejected] == ["proving Fermat"]
    assert [(t.keyword, t.status) for t in data.unfinished] == [("anagrams", "error")]
    assert [j.round for j in data.judge_rejections] == [2]
    assert [d.duplicate_id for d in data.duplicates] == ["dup-1"]


def test_a_module_accepted_again_in_another_run(built: tuple[Path, dict[str, Any]]) -> None:
    """run-y's second keyword was accepted as run-x's module: its card is on run-y's page, with
    run-y's rounds, though the environment row belongs to run-x."""
    path, ids = built
    with Catalog.open(path, read_only=True) as catalog:
        data = build_report_data(catalog, "run-y")
    cards = {env.env_id: env for env in data.environments}
    assert set(cards) == {ids["other_run"], ids["coloring"]}
    assert [r.candidate_id for r in cards[ids["coloring"]].revisions] == ["run-y:graph colouring again#1"]
    assert cards[ids["coloring"]].calibration is not None


def test_a_run_name_with_quotes(tmp_path: Path) -> None:
    """Bulk reads put the run's name in SQL text: a quote in it must be data, not syntax."""
    path = tmp_path / "quotes.duckdb"
    name = "o'brien'; DROP TABLE runs; --"
    with Catalog.open(path) as catalog:
        catalog.upsert_run(RunRecord(run_id=name, config={}, resyn_version="0.1.0"))
        builder = _Builder(catalog, name)
        task = builder.task("sudoku")
        builder.round(task, 1, None, "no_code", "no module in the answer: refusal")
        catalog.update_task(task.task_id, status="rejected", rounds=1, reason="refusal")
    with Catalog.open(path, read_only=True) as catalog:
        data = build_report_data(catalog, name)
        assert [r.run_id for r in catalog.runs()] == [name]
    assert [(t.keyword, len(t.revisions)) for t in data.rejected] == [("sudoku", 1)]
    assert name in parse(render_report(data)).one("dl", id="run").attrs["data-run-id"]


def test_anchors_are_valid_and_distinct() -> None:
    raw = [
        "run-x:graph coloring#1",
        "run-x:graph coloring#2",
        "run-x:graph-coloring-1",
        'a"b<c>',
        "josephus-e2ea4593",
    ]
    anchors = [anchor("rev", r) for r in raw]
    assert len(set(anchors)) == len(anchors)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", a) for a in anchors)
    assert anchor("env", "josephus-e2ea4593") == "env-josephus-e2ea4593"


def test_the_rendered_text_escapes_everything(built: tuple[Path, dict[str, Any]]) -> None:
    path, _ = built
    with Catalog.open(path, read_only=True) as catalog:
        html = render_report(build_report_data(catalog, RUN))
    assert "<script" not in html and "<img" not in html
    assert (
        "&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;, &#39;1&#39;)&lt;/script&gt;" in html
    )


def test_a_level_without_attempts_breaks_the_line() -> None:
    levels = [
        CalibrationLevel(difficulty=1, attempts=4, correct=4, pass_rate=1.0, learnability=0.0),
        CalibrationLevel(
            difficulty=2, attempts=0, correct=0, failed_calls=4, pass_rate=None, learnability=None
        ),
        CalibrationLevel(difficulty=3, attempts=4, correct=2, pass_rate=0.5, learnability=1.0),
    ]
    svg = parse(str(pass_rate_chart(levels, title="t <b>")))
    line = svg.one("path", cls="pass-rate-line").attrs["d"]
    assert line.count("M") == 2 and "L" not in line  # two separate points, no segment through level 2
    assert len(svg.find_all("circle", cls="point")) == 3 and svg.find_all("title")[0].text == "t <b>"
