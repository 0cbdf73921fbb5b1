"""Keeping tests offline.

No test may reach a real model provider by accident (it would cost money, leak prompts and make
results depend on the weather). Three independent layers make sure of it:

1. Here, in the library: while ``PYTEST_CURRENT_TEST`` (set by pytest during every test) or
   ``RESYN_LLM_OFFLINE=1`` is in the environment, building an SDK client for an endpoint that is
   not on loopback raises ``ResynError`` before any request is made — whatever the test configured.
2. The LLM tests' autouse fixture (``tests/llm_servers.py``, ``offline_llm_env``) unsets
   ``OPENAI_API_KEY``/``ANTHROPIC_API_KEY`` (and the other credential variables) and points
   ``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL`` at ``http://127.0.0.1:9``, where nothing listens, so a
   model built without an explicit ``base_url`` cannot find a real key or a real host.
3. ``tests/conftest.py`` replaces ``socket.connect`` for the whole session: connecting anywhere but
   loopback fails the test.

Tests drive the real ``openai`` and ``anthropic`` SDKs against the fake servers of
``tests/llm_servers.py`` on 127.0.0.1, or use ``replay/<path>`` transcripts.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from resyn.errors import ResynError

OFFLINE_ENV = "RESYN_LLM_OFFLINE"


def offline() -> bool:
    """Whether only loopback endpoints may be used (under pytest, or ``RESYN_LLM_OFFLINE=1``)."""
    return bool(os.environ.get("PYTEST_CURRENT_TEST")) or os.environ.get(OFFLINE_ENV, "") not in ("", "0")


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, provider: str) -> None:
    """Refuse a non-loopback ``url`` while offline."""
    if offline() and not is_loopback_url(url):
        raise ResynError(
            f"refusing to call {provider} at {url} while offline (under pytest or {OFFLINE_ENV}=1): "
            "point base_url at a loopback fake server (tests/llm_servers.py) or use replay/<path>"
        )
