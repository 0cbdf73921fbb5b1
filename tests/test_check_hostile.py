"""`resyn check` itself against every hostile module: whatever a module does, the check run
returns a report (never raises), leaks no secret into it, writes nothing outside its sandbox, and
leaves no process behind. The sandbox-level attack tests are in test_sandbox_hostile.py."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path

import pytest

from resyn.checks import CheckConfig, run_checks
from resyn.sandbox import SandboxConfig
from tests.hostile_helpers import PLACEHOLDERS, ProcessWatch, fixture_names, render_fixture

QUICK = CheckConfig(seeds_per_level=6, probe_instances_per_level=2, determinism_seeds_per_level=1,
                    long_answer_chars=2000)  # fmt: skip
TIGHT = SandboxConfig(item_timeout_s=1.0, call_overhead_s=1.0, load_timeout_s=3.0, start_timeout_s=10.0,
                      worker_failures_per_call=1, memory_mb=1024)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("name", fixture_names())
def test_check_survives_hostile_module(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "resyn-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("OPENAI_API_KEY", token)
    targets = [tmp_path / "target", tmp_path / "target2"]
    for target in targets:
        target.mkdir()
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(token)
    values = {
        "__TARGET_DIR__": str(targets[0]), "__TARGET_DIR_2__": str(targets[1]),
        "__SECRET_FILE__": str(secret_file), "__SECRET_FILE_2__": str(secret_file),
        "__PORT__": str(_free_port()), "__UDP_PORT__": str(_free_port()),
        "__NONCE__": secrets.token_hex(6), "__ABSTRACT_NAME__": "resyn-test-" + secrets.token_hex(6),
    }  # fmt: skip
    assert set(values) == set(PLACEHOLDERS)
    source = render_fixture(name, values)
    watch = ProcessWatch()

    report = run_checks(source, filename=f"{name}.py", config=QUICK, sandbox_config=TIGHT)

    assert token not in json.dumps(report.model_dump(mode="json"))
    assert all(not any(t.iterdir()) for t in targets), f"{name} wrote into {targets}"
    assert watch.leftovers() == []
    if any(c.name == "imports" and c.status == "fail" for c in report.checks):
        assert not report.accepted
