"""Fixtures shared by the synthesis-loop tests (test_synthesize, test_batch_job and their CLI
twins), registered for the whole suite through ``pytest_plugins`` in conftest.py. None is autouse:
a module opts in with ``pytestmark = pytest.mark.usefixtures("offline")``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from resyn.catalog import Catalog
from tests.llm_servers import FakeAnthropic, FakeOpenAI, offline_llm_env


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real provider can be reached (see ``offline_llm_env``), and no ``RESYN_CATALOG`` from
    the caller's shell leaks in."""
    offline_llm_env(monkeypatch)
    monkeypatch.delenv("RESYN_CATALOG", raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible server (a stand-in for the provider)."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def anthropic_server() -> Iterator[FakeAnthropic]:
    """A loopback Anthropic-compatible server (a stand-in for the provider)."""
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """Where a command runs: a default catalog (``runs/catalog.duckdb``) would land here."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    """A fresh catalog, open for writing."""
    with Catalog.open(tmp_path / "runs" / "catalog.duckdb") as opened:
        yield opened
