"""Shared test set-up.

Network guard: no test may reach anything but loopback. Any attempt to connect elsewhere (an
unintended real model request, a package download) fails the test loudly instead of leaving the
machine. Untrusted fixture modules never run in this process: they go through the sandbox.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.synth_fixtures"]

FIXTURES = Path(__file__).parent / "fixtures" / "envs"
GOOD = sorted((FIXTURES / "good").glob("*.py"))
BAD = sorted((FIXTURES / "bad").glob("*.py"))
HOSTILE = sorted((FIXTURES / "hostile").glob("*.py"))
EXAMPLES = sorted((Path(__file__).parents[1] / "resyn" / "examples").glob("*.py"))

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_loopback(address):
        raise RuntimeError(f"test tried to reach {address!r}: tests must only talk to 127.0.0.1")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_loopback(address):
        raise RuntimeError(f"test tried to reach {address!r}: tests must only talk to 127.0.0.1")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Any:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _stop_export_scorers() -> Any:
    """An export's reward entry point keeps one scorer per export directory for the life of the
    process, as a trainer wants. After each test, stop those workers, so that no later test (the
    hostile-sandbox tests count every sandbox process under pytest) finds them still running."""
    yield
    runtime = sys.modules.get("resyn.export.runtime")
    if runtime is not None:
        runtime.close_all()


def fixture_id(path: Path) -> str:
    return path.stem
