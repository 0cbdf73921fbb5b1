"""Prompt templates: every template renders, strictly (missing, extra, misspelled variables and
missing fields are errors), deterministically, with the facts injected from the code; the template
hash follows the partials; ``resyn prompts`` prints exactly what would be sent."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import resyn.env
from resyn.checks.config import CheckConfig
from resyn.checks.runner import CHECK_NAMES
from resyn.checks.static import ALLOWED_MODULES, FORBIDDEN_ATTRIBUTES, FORBIDDEN_NAMES
from resyn.errors import ResynError
from resyn.llm.models import LLMRequest
from resyn.synth import prompts

ROOT = Path(__file__).parents[1]
PROMPTS = ROOT / "prompts"

SAMPLES = [
    {"difficulty": 1, "seed": 0, "question": "Colour this graph: 0-1, 1-2.", "gold": "1, 2, 1"},
    {"difficulty": 5, "seed": 3, "question": "Colour this bigger graph: 0-1, 1-2, 2-3.", "gold": None},
]
CHECKS = [
    {"name": "junk", "status": "pass", "summary": "junk answers earn nothing"},
    {"name": "leak", "status": "warn", "summary": "a short gold appears in its question"},
]
VARIABLES: dict[str, dict[str, Any]] = {
    "write": {"keyword": "graph colouring"},
    "revise": {
        "keyword": "graph colouring",
        "code": "from resyn import Environment\n\nclass G(Environment):\n    name = 'g'\n",
        "feedback": "## junk: the answer '0' earned 1.0 on seed=3 difficulty=2",
        "round": 2,
    },
    "judge": {
        "keyword": "graph colouring",
        "code": "class G(Environment): ...",
        "samples": SAMPLES,
        "checks": CHECKS,
    },
    "propose": {"seed_keyword": "graphs", "n": 5, "existing": ["graph colouring", "shortest path"]},
    "solve": {"question": "Colour the graph with 3 colours. Answer with the colours separated by commas."},
}


@pytest.fixture
def prompt_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of prompts/ selected with RESYN_PROMPTS_DIR, free to edit."""
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS, copy)
    monkeypatch.setenv(prompts.PROMPTS_DIR_ENV, str(copy))
    return copy


@pytest.fixture
def fresh_globals() -> Iterator[None]:
    """Rebuild the injected globals (and the environments holding them) before and after a test."""
    prompts._globals.cache_clear()
    prompts._libraries.clear()
    yield
    prompts._globals.cache_clear()
    prompts._libraries.clear()


def bump(path: Path, text: str) -> None:
    """Edit a file and make sure its stamp changes even on a coarse-grained clock."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 10**9, before + 10**9))


# -- rendering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", prompts.PROMPT_NAMES)
def test_every_template_renders_with_its_variables(name: str) -> None:
    rendered = prompts.render(name, VARIABLES[name])
    assert rendered.name == name and rendered.system and rendered.user
    for text in (rendered.system, rendered.user):
        assert text == text.strip()
        assert "{{" not in text and "{%" not in text and "{#" not in text  # nothing left unrendered
        # Jinja tags leave no stray blank lines (the example module has PEP 8's own).
        assert "\n\n\n" not in text.replace(prompts.template_globals()["example_module"].strip(), "")
    assert re.fullmatch(r"[0-9a-f]{64}", rendered.template_sha256)


def test_listed_variables_are_exactly_what_the_caller_supplies() -> None:
    infos = {info.name: info for info in prompts.list_prompts()}
    assert list(infos) == list(prompts.PROMPT_NAMES)
    for name, info in infos.items():
        assert info.variables == sorted(VARIABLES[name]), name
        assert info.description and "{#" not in info.description
        assert Path(info.path) == PROMPTS / f"{name}.j2"
    assert "_rules.j2" in infos["write"].partials and "_rules.j2" in infos["revise"].partials
    assert infos["propose"].partials == []


def test_variables_used_only_in_a_partial_are_found(prompt_copy: Path) -> None:
    (prompt_copy / "_extra.j2").write_text("Budget: {{ budget }}\n")
    bump(prompt_copy / "write.j2", (prompt_copy / "write.j2").read_text().replace(
        "{% block user %}", '{% block user %}\n{% include "_extra.j2" %}'
    ))  # fmt: skip
    info = next(i for i in prompts.list_prompts() if i.name == "write")
    assert info.variables == ["budget", "keyword"] and "_extra.j2" in info.partials
    assert "Budget: 7" in prompts.render("write", {"keyword": "k", "budget": 7}).user


def test_write_prompt_carries_the_contract_the_example_and_the_rules() -> None:
    system = prompts.render("write", VARIABLES["write"]).system
    assert inspect.cleandoc(resyn.env.__doc__ or "") in system
    example = (ROOT / "resyn" / "examples" / f"{prompts.EXAMPLE_MODULE}.py").read_text()
    assert example.strip() in system
    allowed = next(line for line in system.splitlines() if line.startswith("- Import only these modules:"))
    for module in ALLOWED_MODULES:
        assert re.search(rf"(?<![\w.]){re.escape(module)}(?![\w])", allowed), module
    for name in (*FORBIDDEN_NAMES, *FORBIDDEN_ATTRIBUTES, *CHECK_NAMES):
        assert name in system, name
    config = CheckConfig()
    for fragment in (
        f"{config.max_generate_p95_s:g} s",
        f"{config.max_verify_p95_s * 1000:g} ms",
        f"{config.max_constant_score * 100:g} %",
        f"{config.max_cross_acceptance * 100:g} %",
        f"{config.max_shotgun_acceptance * 100:g} %",
        f"{config.max_mutation_acceptance * 100:g} %",
        f"{config.max_mutation_kind_acceptance * 100:g} %",
        f"{config.max_numeric_acceptance * 100:g} %",
        f"{config.min_distinct_ratio * 100:g} %",
        f"{config.long_answer_chars:,}-character",
        f"between 1 and {config.max_levels}",
    ):
        assert fragment in system, fragment
    assert "```python" in system and "nothing after its closing fence" in system
    assert "graph colouring" in prompts.render("write", VARIABLES["write"]).user


def test_thresholds_are_injected_not_copied(fresh_globals: None, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = CheckConfig(max_verify_p95_s=0.037, max_shotgun_acceptance=0.07, long_answer_chars=54_321)
    monkeypatch.setattr(prompts, "CheckConfig", lambda: odd)
    system = prompts.render("write", VARIABLES["write"]).system
    assert "37 ms" in system and "7 %" in system and "54,321-character" in system
    assert "100 ms" not in system


def test_revise_prompt_shows_the_previous_module_and_the_evidence() -> None:
    rendered = prompts.render("revise", VARIABLES["revise"])
    assert f"```python\n{VARIABLES['revise']['code'].rstrip()}\n```" in rendered.user
    assert VARIABLES["revise"]["feedback"] in rendered.user and "round 2 of writing it" in rendered.user
    # write and revise share their system message word for word: providers cache it as a prefix.
    assert rendered.system == prompts.render("write", VARIABLES["write"]).system
    without_code = prompts.render("revise", {**VARIABLES["revise"], "code": None}).user
    assert "no usable module" in without_code and "```python" not in without_code


def test_judge_prompt_lists_samples_checks_and_criteria() -> None:
    rendered = prompts.render("judge", VARIABLES["judge"])
    for criterion in ("faithfulness", "self_contained", "verifier_soundness", "non_triviality"):
        assert f"`{criterion}`" in rendered.system
    assert "`difficulty_scaling`" in rendered.system and "`accept`" in rendered.system
    assert "`feedback`" in rendered.system
    for sample in SAMPLES:
        assert sample["question"] in rendered.user and f"seed {sample['seed']}" in rendered.user
    assert "1, 2, 1" in rendered.user and "no reference solution" in rendered.user
    assert "- junk: pass: junk answers earn nothing" in rendered.user
    empty = prompts.render("judge", {**VARIABLES["judge"], "samples": [], "checks": []}).user
    assert "(no samples given)" in empty and "(no check results given)" in empty
    huge = prompts.render(
        "judge", {**VARIABLES["judge"], "samples": [{**SAMPLES[0], "question": "x" * 50_000}]}
    )
    assert len(huge.user) < 10_000 and "more characters]" in huge.user


def test_propose_prompt_lists_existing_tasks() -> None:
    user = prompts.render("propose", VARIABLES["propose"]).user
    assert "Propose 5 distinct" in user and "- shortest path" in user and '{"ideas"' in user
    assert "(none yet)" in prompts.render("propose", {**VARIABLES["propose"], "existing": []}).user


# -- strictness -----------------------------------------------------------------------------------


def test_missing_variable_names_it() -> None:
    variables = {k: v for k, v in VARIABLES["revise"].items() if k != "feedback"}
    with pytest.raises(
        ResynError, match=r"^prompt 'revise' needs variable 'feedback': pass --var feedback=…$"
    ):
        prompts.render("revise", variables)


def test_extra_variable_is_an_error() -> None:
    with pytest.raises(
        ResynError, match=r"prompt 'write' has no variable 'temperature'; its variables: keyword"
    ):
        prompts.render("write", {"keyword": "k", "temperature": 0.5})


def test_misspelled_variable_is_pointed_out() -> None:
    with pytest.raises(ResynError, match=r"needs variable 'keyword'.*given 'keywrod': a typo"):
        prompts.render("write", {"keywrod": "k"})
    with pytest.raises(ResynError, match=r"has no variable 'rounds' \(did you mean 'round'\?\)"):
        prompts.render("revise", {**VARIABLES["revise"], "rounds": 2})


def test_strict_undefined_is_enforced_inside_values() -> None:
    # Default jinja would render a missing field as "": a judge shown no reference answer at all.
    samples = [{"difficulty": 1, "seed": 0, "question": "q"}]
    with pytest.raises(ResynError, match=r"^prompt 'judge': 'dict object' has no attribute 'gold'"):
        prompts.render("judge", {**VARIABLES["judge"], "samples": samples})


def test_strict_undefined_in_a_new_template(prompt_copy: Path) -> None:
    (prompt_copy / "probe.j2").write_text(
        "{% block system %}S{% endblock %}{% block user %}{{ item.field }}{% endblock %}"
    )
    assert prompts.render("probe", {"item": {"field": "x"}}).user == "x"
    with pytest.raises(ResynError, match="has no attribute 'field'"):
        prompts.render("probe", {"item": {}})


def test_unknown_prompt_suggests_and_lists() -> None:
    with pytest.raises(
        ResynError, match=r"unknown prompt 'wrte' \(did you mean 'write'\?\).*write, revise, judge, propose"
    ):
        prompts.render("wrte", {})
    for name in ("../README", "_rules", "Write", ""):
        with pytest.raises(ResynError, match="unknown prompt"):
            prompts.render(name, {})


def test_template_syntax_error_names_file_and_line(prompt_copy: Path) -> None:
    bump(prompt_copy / "_output.j2", "# Output\n\n{% if %}\n")
    with pytest.raises(ResynError) as caught:
        prompts.render("write", VARIABLES["write"])
    message = str(caught.value)
    assert "_output.j2:3: template syntax error" in message and "\n" not in message


def test_template_without_a_block_is_an_error(prompt_copy: Path) -> None:
    (prompt_copy / "half.j2").write_text("{% block system %}only a system message{% endblock %}\n")
    with pytest.raises(ResynError, match=r"half\.j2: the template must define \{% block user %\}"):
        prompts.render("half", {})


def test_missing_template_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(prompts.PROMPTS_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(
        ResynError, match=r"prompt templates not found: .*nowhere is not a directory; set RESYN_PROMPTS_DIR"
    ):
        prompts.render("write", VARIABLES["write"])


# -- determinism and versions ---------------------------------------------------------------------


@pytest.mark.parametrize("name", prompts.PROMPT_NAMES)
def test_rendering_is_deterministic(name: str) -> None:
    first = prompts.render(name, VARIABLES[name])
    assert prompts.render(name, dict(reversed(list(VARIABLES[name].items())))) == first
    request = prompts.request(name, VARIABLES[name], max_tokens=1000, purpose="writer")
    assert (
        request.prompt_sha256()
        == prompts.request(name, VARIABLES[name], max_tokens=1000, purpose="x").prompt_sha256()
    )


def test_a_different_variable_gives_a_different_prompt_from_the_same_template() -> None:
    a = prompts.render("write", {"keyword": "sudoku"})
    b = prompts.render("write", {"keyword": "kakuro"})
    assert a.system == b.system and a.user != b.user and a.template_sha256 == b.template_sha256
    request_a = prompts.request("write", {"keyword": "sudoku"}, max_tokens=1000, purpose="writer")
    request_b = prompts.request("write", {"keyword": "kakuro"}, max_tokens=1000, purpose="writer")
    assert request_a.prompt_sha256() != request_b.prompt_sha256()


def test_template_sha_follows_the_partials(prompt_copy: Path) -> None:
    before = {name: prompts.render(name, VARIABLES[name]) for name in prompts.PROMPT_NAMES}
    rules = prompt_copy / "_rules.j2"
    bump(rules, rules.read_text() + "- One more rule: be brief.\n")
    after = {name: prompts.render(name, VARIABLES[name]) for name in prompts.PROMPT_NAMES}
    for name in ("write", "revise"):  # they include _rules.j2 (through _author.j2)
        assert after[name].template_sha256 != before[name].template_sha256
        assert "One more rule: be brief." in after[name].system
    for name in ("judge", "propose"):
        assert after[name] == before[name]
    bump(rules, rules.read_text().replace("- One more rule: be brief.\n", ""))
    assert prompts.render("write", VARIABLES["write"]) == before["write"]


def test_template_sha_is_the_same_for_the_same_sources_elsewhere(
    prompt_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied = prompts.render("write", VARIABLES["write"])
    monkeypatch.delenv(prompts.PROMPTS_DIR_ENV)
    assert prompts.render("write", VARIABLES["write"]) == copied


def test_request_carries_the_messages_and_the_template_version() -> None:
    rendered = prompts.render("judge", VARIABLES["judge"])
    request = prompts.request(
        "judge", VARIABLES["judge"], max_tokens=2000, purpose="judge", tags={"run": "r1"}, temperature=0.0,
        output={"type": "object", "properties": {"accept": {"type": "boolean"}}},
    )  # fmt: skip
    assert isinstance(request, LLMRequest)
    assert request.system == rendered.system and request.messages[-1].content == rendered.user
    assert request.template == "judge" and request.purpose == "judge" and request.max_tokens == 2000
    assert request.tags == {"template_sha256": rendered.template_sha256, "run": "r1"}
    assert request.structured and request.temperature == 0.0


def test_rendering_is_fast_after_warm_up() -> None:
    prompts.render("revise", VARIABLES["revise"])
    began = time.perf_counter()
    for _ in range(200):
        prompts.render("revise", VARIABLES["revise"])
    assert (time.perf_counter() - began) / 200 < 0.005


# -- the command line -----------------------------------------------------------------------------
# A real `python -m resyn` costs seconds of imports, so the subprocess tests are few and run their
# error cases concurrently; the full table of bad inputs goes through the same main() in-process.

BAD_INPUT = [
    (("render", "write", "--var", "keyword"), "'keyword' is not KEY=VALUE"),
    (("render", "write", "--var", "=x"), "is not KEY=VALUE"),
    (("render", "write", "--var", "keyword=a", "--var", "keyword=b"), "'keyword' is given twice"),
    (("render", "write", "--var", "keyword=@/does/not/exist.txt"), "cannot read /does/not/exist.txt"),
    (("render", "wrte", "--var", "keyword=a"), "unknown prompt 'wrte' (did you mean 'write'?)"),
    (("render", "revise", "--var", "keyword=a"), "prompt 'revise' needs variable 'code': pass --var code=…"),
    (("render", "write", "--var", "keyword=a", "--var", "extra=1"), "prompt 'write' has no variable 'extra'"),
    (("render",), "Missing argument 'NAME'"),
]


def run_resyn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resyn", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def run_main(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``resyn ARGS`` through the same entry point as the command, in this process."""
    from resyn.cli import main

    monkeypatch.setattr(sys, "argv", ["resyn", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, out + err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_cli_list() -> None:
    result = run_resyn("prompts", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert {name: row["variables"] for name, row in listed.items()} == {
        n: sorted(v) for n, v in VARIABLES.items()
    }


def test_cli_list_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_main(("prompts", "list"), capsys, monkeypatch)
    assert code == 0 and "seed_keyword" in out and "revise" in out


def test_cli_render_prints_exactly_what_would_be_sent(tmp_path: Path) -> None:
    feedback = tmp_path / "feedback.txt"
    feedback.write_text(VARIABLES["revise"]["feedback"])
    code = tmp_path / "module.py"
    code.write_text(VARIABLES["revise"]["code"])
    args = ["--var", "keyword=graph colouring", "--var", f"code=@{code}", "--var", f"feedback=@{feedback}"]
    result = run_resyn("prompts", "render", "revise", *args, "--var", "round=2")
    assert result.returncode == 0, result.stderr
    expected = prompts.render("revise", VARIABLES["revise"])
    assert result.stdout == f"===== system =====\n{expected.system}\n===== user =====\n{expected.user}\n"


def test_cli_render_json_parses_values_and_reports_hashes(tmp_path: Path) -> None:
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps(SAMPLES))
    result = run_resyn(
        "prompts", "render", "judge", "--json", "--var", "keyword=graph colouring",
        "--var", f"code={VARIABLES['judge']['code']}", "--var", f"samples=@{samples}",
        "--var", f"checks={json.dumps(CHECKS)}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    expected = prompts.render("judge", VARIABLES["judge"])
    assert {k: document[k] for k in ("name", "system", "user", "template_sha256")} == expected.model_dump()
    request = expected.to_request(max_tokens=document["max_tokens"], purpose=None)
    assert document["request_sha256"] == request.prompt_sha256()


def test_cli_values_are_json_when_they_parse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("prompts", "render", "propose", "--json", "--var", "seed_keyword=graphs", "--var", "n=5",
            "--var", 'existing=["graph colouring", "shortest path"]')  # fmt: skip
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["user"] == prompts.render("propose", VARIABLES["propose"]).user
    # "null" is JSON: a revise prompt whose previous answer had no module.
    args = ("prompts", "render", "revise", "--var", "keyword=k", "--var", "code=null", "--var", "feedback=f",
            "--var", "round=2")  # fmt: skip
    code, out, err = run_main(args, capsys, monkeypatch)
    assert code == 0 and "no usable module" in out, err


def test_cli_bad_input_is_one_line_exit_2_end_to_end() -> None:
    cases = [BAD_INPUT[0], BAD_INPUT[5]]  # a click usage error, a ResynError at render time
    with ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(lambda case: run_resyn("prompts", *case[0]), cases))
    for (_args, fragment), result in zip(cases, results, strict=True):
        assert_one_line_error(result.returncode, result.stdout, result.stderr, fragment)


@pytest.mark.parametrize(("args", "fragment"), BAD_INPUT)
def test_cli_bad_input_is_one_line_exit_2(
    args: tuple[str, ...], fragment: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_line_error(*run_main(("prompts", *args), capsys, monkeypatch), fragment)
