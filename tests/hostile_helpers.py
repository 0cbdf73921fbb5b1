"""Helpers for ``tests/test_sandbox_hostile.py``: loopback sinks that record every connection, a
scan for processes left behind by a sandbox, a well-behaved control environment, and rendering of
the hostile fixture modules (``tests/fixtures/envs/hostile``).

Nothing here reaches beyond the machine: the sinks bind 127.0.0.1 and an abstract unix socket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from resyn.sandbox.isolation import WORKER_UID_RANGE

FIXTURES = Path(__file__).parent / "fixtures" / "envs" / "hostile"

#: Placeholders the fixtures use; longer names first so that no replacement eats another.
PLACEHOLDERS = (
    "__TARGET_DIR_2__",
    "__SECRET_FILE_2__",
    "__TARGET_DIR__",
    "__SECRET_FILE__",
    "__ABSTRACT_NAME__",
    "__UDP_PORT__",
    "__PORT__",
    "__NONCE__",
)


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.py"))


def render_fixture(name: str, substitutions: dict[str, str]) -> str:
    """The source of fixture ``name`` with every placeholder replaced."""
    text = (FIXTURES / f"{name}.py").read_text()
    for key in PLACEHOLDERS:
        if key in substitutions:
            text = text.replace(key, substitutions[key])
    left = sorted({k for k in PLACEHOLDERS if k in text})
    if left:
        raise AssertionError(f"fixture {name} still contains placeholders {left}")
    return text


# -- loopback sinks -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SinkEvent:
    kind: str  # "tcp-connect" | "tcp-data" | "udp" | "unix-connect" | "unix-data"
    peer: str
    data: bytes = b""


class LoopbackSinks:
    """A TCP server on 127.0.0.1:<ephemeral>, a UDP socket beside it and an abstract unix socket,
    each recording everything that reaches it. Nothing from a sandbox may ever arrive here."""

    def __init__(self) -> None:
        self.events: list[SinkEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ignored: set[str] = set()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.tcp.settimeout(0.1)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.abstract_name = f"resyn-hostile-{secrets.token_hex(8)}"
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract_name)
        self.unix.listen(16)
        self.unix.settimeout(0.1)
        self._threads = [
            threading.Thread(target=self._accept_loop, args=(self.tcp, "tcp"), daemon=True),
            threading.Thread(target=self._accept_loop, args=(self.unix, "unix"), daemon=True),
            threading.Thread(target=self._udp_loop, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    def ignore_peer(self, peer: str) -> None:
        """A connection the test makes itself (data on it still counts)."""
        with self._lock:
            self._ignored.add(peer)

    def _record(self, event: SinkEvent) -> None:
        with self._lock:
            self.events.append(event)

    def _accept_loop(self, server: socket.socket, kind: str) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = server.accept()
            except (TimeoutError, OSError):
                continue
            peer = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else repr(addr)
            self._record(SinkEvent(f"{kind}-connect", peer))
            threading.Thread(target=self._read_loop, args=(conn, kind, peer), daemon=True).start()

    def _read_loop(self, conn: socket.socket, kind: str, peer: str) -> None:
        conn.settimeout(0.1)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                self._record(SinkEvent(f"{kind}-data", peer, data[:4096]))

    def _udp_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.udp.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            self._record(SinkEvent("udp", f"{addr[0]}:{addr[1]}", data[:4096]))

    def hostile_events(self, settle_s: float = 0.3) -> list[SinkEvent]:
        """Everything that arrived except the test's own connections (whose data still counts)."""
        time.sleep(settle_s)
        with self._lock:
            return [e for e in self.events if not (e.kind.endswith("-connect") and e.peer in self._ignored)]

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for sock in (self.tcp, self.udp, self.unix):
            with contextlib.suppress(OSError):
                sock.close()


# -- processes ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    starttime: int
    uids: tuple[int, ...]
    cmdline: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.starttime)

    def describe(self) -> str:
        return (
            f"pid {self.pid} (ppid {self.ppid}, state {self.state}, uids {self.uids}): {self.cmdline[:200]}"
        )


def read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        )
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    uids: tuple[int, ...] = ()
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uids = tuple(int(x) for x in line.split()[1:])
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    return Proc(pid, int(fields[1]), fields[0], int(fields[19]), uids, cmdline or f"[{comm}]")


def scan_processes() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = read_proc(int(entry))
            if proc is not None:
                procs[proc.pid] = proc
    return procs


def is_sandboxish(proc: Proc) -> bool:
    low, high = WORKER_UID_RANGE
    return (
        any(uid == 65534 or low <= uid < high for uid in proc.uids)
        or "bwrap" in proc.cmdline
        or "resyn.sandbox" in proc.cmdline
    )


def _descends_from(proc: Proc, ancestor: int, procs: dict[int, Proc]) -> bool:
    seen = 0
    current: Proc | None = proc
    while current is not None and seen < 128:
        if current.ppid == ancestor:
            return True
        current = procs.get(current.ppid)
        seen += 1
    return False


def _orphaned(proc: Proc, procs: dict[int, Proc]) -> bool:
    """Whether the first non-sandbox ancestor is init: a sandbox tree nobody owns any more (a
    live tree of another test run hangs below that run's own, non-sandbox, python process)."""
    current = procs.get(proc.ppid)
    for _ in range(128):
        if current is None or current.pid == 1:
            return True
        if not is_sandboxish(current):
            return False
        current = procs.get(current.ppid)
    return False


class ProcessWatch:
    """Remembers the sandbox processes a test started, to find any that outlive their Sandbox."""

    def __init__(self) -> None:
        self.me = os.getpid()
        self.baseline = {p.key for p in scan_processes().values() if is_sandboxish(p)}
        self.seen: dict[tuple[int, int], Proc] = {}

    def observe(self) -> None:
        procs = scan_processes()
        for proc in procs.values():
            if is_sandboxish(proc) and _descends_from(proc, self.me, procs):
                self.seen.setdefault(proc.key, proc)

    def _current_leftovers(self) -> list[Proc]:
        procs = scan_processes()
        out = []
        for proc in procs.values():
            if not is_sandboxish(proc) or proc.pid == self.me:
                continue
            if proc.state == "Z" and proc.ppid == 1:
                continue  # already dead, waiting for init to reap it: not the sandbox's to collect
            ours = proc.key in self.seen or _descends_from(proc, self.me, procs)
            orphan = proc.key not in self.baseline and _orphaned(proc, procs)
            if ours or orphan:
                out.append(proc)
        return out

    def leftovers(self, wait_s: float = 5.0) -> list[Proc]:
        """Sandbox processes of this test still alive after a bounded grace period."""
        deadline = time.monotonic() + wait_s
        while True:
            left = self._current_leftovers()
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.1)

    def kill(self, procs: list[Proc]) -> None:
        """SIGKILL leftovers this test started (by pid, after re-checking the start time)."""
        for proc in procs:
            again = read_proc(proc.pid)
            if again is not None and again.key == proc.key:
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGKILL)


# -- the control environment -------------------------------------------------------------------------------

CONTROL_SOURCE = '''
"""A well-behaved control environment: add two integers."""

from resyn import Environment


class AddTwo(Environment):
    """Add two integers; the answer is their sum."""

    name = "control_add_two"
    max_difficulty = 3

    def generate(self, rng, difficulty):
        a = rng.randint(1, 10**difficulty)
        b = rng.randint(1, 10**difficulty)
        return {"a": a, "b": b}

    def question(self, instance):
        return f"What is {instance['a']} + {instance['b']}? Answer with the number only."

    def verify(self, instance, answer):
        try:
            return 1.0 if int(str(answer).strip()) == instance["a"] + instance["b"] else 0.0
        except ValueError:
            return 0.0

    def solution(self, instance):
        return str(instance["a"] + instance["b"])
'''

#: The same task, but generate computes in a helper thread (legitimate: libraries start threads).
CONTROL_THREADED_SOURCE = CONTROL_SOURCE.replace(
    "        a = rng.randint(1, 10**difficulty)\n        b = rng.randint(1, 10**difficulty)\n",
    "        import threading\n\n"
    "        box = []\n"
    "        worker = threading.Thread(target=lambda: box.extend([rng.randint(1, 10**difficulty) for _ in range(2)]))\n"
    "        worker.start()\n"
    "        worker.join()\n"
    "        a, b = box\n",
)


def control_instance(seed: int, difficulty: int) -> dict[str, int]:
    """What the control environment must generate, computed without importing resyn (the
    seeding contract of ``resyn.env.instance_seed``, re-implemented from its documentation)."""
    digest = hashlib.sha256(f"resyn-instance:{seed}:{difficulty}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    a = rng.randint(1, 10**difficulty)
    b = rng.randint(1, 10**difficulty)
    return {"a": a, "b": b}


def check_control(config: Any, source: str = CONTROL_SOURCE) -> list[str]:
    """Run the control environment in a fresh Sandbox; return what went wrong (empty: all fine)."""
    from resyn.sandbox import Sandbox

    problems: list[str] = []
    try:
        with Sandbox(source, filename="control_add_two.py", config=config, workers=1) as sb:
            loaded = sb.load()
            if not loaded.ok:
                return [f"control module failed to load: {loaded.error}"]
            if loaded.name != "control_add_two" or loaded.max_difficulty != 3:
                problems.append(f"control load reported {loaded.name!r}/{loaded.max_difficulty!r}")
            keys = [(7, 1), (8, 2), (9, 3)]
            generated = sb.generate(keys)
            for key, result in zip(keys, generated, strict=True):
                if not result.ok or result.value != control_instance(*key):
                    problems.append(
                        f"control generate{key} gave {result!r}, expected {control_instance(*key)}"
                    )
            first = control_instance(*keys[0])
            right = str(first["a"] + first["b"])
            scores = sb.verify([first], [(0, right), (0, str(int(right) + 1)), (0, "garbage")])
            values = [r.value if r.ok else r.error for r in scores]
            if values != [1.0, 0.0, 0.0]:
                problems.append(f"control verify scores were {values}, expected [1.0, 0.0, 0.0]")
            sampled = sb.sample([keys[0]])
            if (
                not sampled[0].ok
                or sampled[0].value.get("instance") != first
                or sampled[0].value.get("solution") != right
            ):
                problems.append(f"control sample gave {sampled[0]!r}")
    except Exception as exc:  # the API must not raise for a well-behaved module either
        problems.append(f"control Sandbox raised {type(exc).__name__}: {exc}")
    return problems


# -- results as text ---------------------------------------------------------------------------------------


def to_jsonable(obj: Any, depth: int = 0) -> Any:
    if depth > 200:
        return "<too deep>"
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, bytes):
        return obj.decode("latin-1")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {obj}"
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(), depth + 1)
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):  # NamedTuple (ItemResult)
        return {k: to_jsonable(v, depth + 1) for k, v in obj._asdict().items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v, depth + 1) for v in obj]
    return repr(obj)[:10000]


def dump(obj: Any) -> str:
    """A JSON text of everything in ``obj`` (results, errors, exceptions), for secret scanning."""
    return json.dumps(to_jsonable(obj), default=repr)


def excerpt(text: str, needle: str, width: int = 120) -> str:
    i = text.find(needle)
    return text[max(0, i - width) : i + len(needle) + width] if i >= 0 else ""


def nonce_files(directories: list[Path], nonce: str) -> list[Path]:
    """Files whose name contains ``nonce`` directly inside any of ``directories``."""
    found = []
    pattern = re.compile(re.escape(nonce))
    for directory in directories:
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if pattern.search(entry.name):
                    found.append(Path(entry.path))
    return found
