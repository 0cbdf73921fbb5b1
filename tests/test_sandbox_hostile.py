"""Hostile environment modules against the sandbox.

Each module in ``tests/fixtures/envs/hostile`` attacks the sandbox one way (secrets, files, network,
processes, signals, resources, the worker protocol, the parent's own handling of the worker) and
smuggles whatever it obtains back out in its results. Every test checks, beyond the attack's own
expected outcome, that:

* the planted secret (an API key in the environment, a token in files under ``tmp_path`` and in a
  world-readable directory) appears nowhere in any result, error or exception;
* no file appeared in the target directories or anywhere a module tried to write outside scratch;
* the loopback TCP/UDP/abstract-unix sinks recorded nothing;
* the pytest process and its parent are alive and unchanged, and no Sandbox call raised;
* after ``with Sandbox(...)`` no sandbox process of this test is left and its scratch is gone;
* the same Sandbox still answers after the attack (respawn works), and a well-behaved module in a
  separate Sandbox works both while the hostile one is alive and afterwards.

Deadlines are small (a few seconds); assertions on time are only generous upper bounds on calls
that must *return*. The parent-side denial-of-service attacks (a FIFO or /dev/zero planted where
the parent reads the worker's stderr log) run the parent in a child process with a memory limit
and a timeout, so that a successful attack fails the test instead of hanging or exhausting pytest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import resyn.env
from resyn.sandbox.isolation import WORKER_UID_RANGE
from tests.hostile_helpers import (
    CONTROL_SOURCE,
    CONTROL_THREADED_SOURCE,
    LoopbackSinks,
    ProcessWatch,
    check_control,
    dump,
    excerpt,
    fixture_names,
    nonce_files,
    render_fixture,
)

sandbox_mod = pytest.importorskip("resyn.sandbox")
Sandbox = sandbox_mod.Sandbox
SandboxConfig = sandbox_mod.SandboxConfig

REPO = Path(__file__).resolve().parents[1]
KINDS = ("timeout", "crashed", "oversize", "protocol", "exception", "invalid")
SANDBOX_UID = 65534
SECRET_PREFIX = "sk-resyn-test-SECRET-"

# Identity of harness objects in *this* process, to prove a hostile worker cannot touch them.
_PARENT_OBJECTS = {
    "json.dumps": json.dumps,
    "json.loads": json.loads,
    "resyn.env.instance_rng": resyn.env.instance_rng,
    "resyn.env.instance_seed": resyn.env.instance_seed,
    "resyn.env.Environment.verify": resyn.env.Environment.verify,
}


@pytest.fixture(scope="module", autouse=True)
def _sandbox_available() -> None:
    try:
        sandbox_mod.probe(False)
    except sandbox_mod.SandboxUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no sandbox on this machine: {exc}")


# -- the world a hostile module finds itself in ---------------------------------------------------------------


@dataclasses.dataclass
class World:
    token: str
    nonce: str
    tmp: Path
    public: Path
    secret_file: Path
    secret_file_2: Path
    target_dir: Path
    target_dir_2: Path
    scratch_root: Path
    sinks: LoopbackSinks
    watch: ProcessWatch
    pid: int
    ppid: int

    def substitutions(self) -> dict[str, str]:
        return {
            "__PORT__": str(self.sinks.tcp_port),
            "__UDP_PORT__": str(self.sinks.udp_port),
            "__ABSTRACT_NAME__": self.sinks.abstract_name,
            "__TARGET_DIR__": str(self.target_dir),
            "__TARGET_DIR_2__": str(self.target_dir_2),
            "__SECRET_FILE__": str(self.secret_file),
            "__SECRET_FILE_2__": str(self.secret_file_2),
            "__NONCE__": self.nonce,
        }

    def render(self, module: str) -> str:
        return render_fixture(module, self.substitutions())

    def config(self, **overrides: Any) -> Any:
        settings: dict[str, Any] = {
            "load_timeout_s": 8.0,
            "item_timeout_s": 2.0,
            "call_overhead_s": 1.0,
            "memory_mb": 1024,
            "scratch_root": self.scratch_root,
        }
        settings.update(overrides)
        return SandboxConfig(**settings)

    def control_config(self) -> Any:
        return self.config(load_timeout_s=30.0, item_timeout_s=10.0, call_overhead_s=2.0)

    def escape_dirs(self) -> list[Path]:
        import resyn

        package = Path(resyn.__file__).resolve().parent
        purelib = Path(sysconfig.get_paths()["purelib"])
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        dirs = [
            Path(p)
            for p in ("/", "/tmp", "/var/tmp", "/dev/shm", "/work", "/usr", "/usr/local", "/root", "/etc")
        ]
        dirs += [REPO, package, package / "__pycache__", package.parent, purelib, Path(sys.prefix) / "bin"]
        dirs += [Path(sys.base_prefix) / "lib" / version, Path.home(), Path.cwd(), self.tmp, self.public]
        return list(dict.fromkeys(dirs))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    token = secrets.token_hex(16)
    nonce = secrets.token_hex(6)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_PREFIX + token)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_PREFIX + token)
    monkeypatch.setenv("RESYN_HOSTILE_TOKEN", token)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET_PREFIX + token + "\n")
    # A second copy only the mount namespace protects: world-readable in a world-traversable dir,
    # next to a world-writable target dir, so uid 65534 alone would not stop a module.
    public = Path(tempfile.mkdtemp(prefix="resyn-hostile-", dir="/tmp"))
    public.chmod(0o755)
    secret_file_2 = public / "secret.txt"
    secret_file_2.write_text(SECRET_PREFIX + token + "\n")
    secret_file_2.chmod(0o644)
    target_dir, target_dir_2 = tmp_path / "target", public / "target"
    target_dir.mkdir()
    target_dir_2.mkdir()
    target_dir_2.chmod(0o777)
    scratch_root = tmp_path / "scratch"
    scratch_root.mkdir()
    sinks = LoopbackSinks()
    # Inheritable descriptors a careless launcher would pass on: the secret, a directory above
    # scratch and a live connection to the sink.
    inherited = [os.open(secret_file, os.O_RDONLY), os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)]
    client = socket.create_connection(("127.0.0.1", sinks.tcp_port))
    host, port = client.getsockname()[:2]
    sinks.ignore_peer(f"{host}:{port}")
    inherited.append(client.fileno())
    for fd in inherited:
        os.set_inheritable(fd, True)
    watch = ProcessWatch()
    w = World(
        token, nonce, tmp_path, public, secret_file, secret_file_2, target_dir, target_dir_2, scratch_root,
        sinks, watch, os.getpid(), os.getppid(),
    )  # fmt: skip
    try:
        yield w
    finally:
        client.close()
        for fd in inherited[:2]:
            with contextlib.suppress(OSError):
                os.close(fd)
        sinks.close()
        watch.kill(watch.leftovers(wait_s=0))
        for path in nonce_files(w.escape_dirs(), nonce):
            with contextlib.suppress(OSError):
                path.unlink()
        # rm -rf: a hostile scratch tree may be too deep for shutil.rmtree's recursion.
        subprocess.run(["rm", "-rf", "--one-file-system", str(public), str(scratch_root)], check=False)


# -- running a module ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    module: str
    tier: str | None = None
    seccomp_active: bool | None = None
    spawned: int | None = None  # workers the Sandbox started (respawns included), for the audit
    load: Any = None
    gen: Any = None
    ver: Any = None
    after: Any = None
    raised: list[str] = dataclasses.field(default_factory=list)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    control_during: list[str] = dataclasses.field(default_factory=list)
    control_after: list[str] = dataclasses.field(default_factory=list)

    def call(self, label: str, fn: Callable[[], Any]) -> Any:
        began = time.monotonic()
        try:
            return fn()
        except Exception as exc:  # the API must never raise for module misbehaviour
            self.raised.append(f"{label}: {type(exc).__name__}: {str(exc)[:1000]}")
            return None
        finally:
            self.seconds[label] = time.monotonic() - began

    def loot(self) -> Any:
        """What the module's generate smuggled out (None unless generate succeeded)."""
        if self.gen and self.gen[0].ok and isinstance(self.gen[0].value, dict):
            return self.gen[0].value.get("loot")
        return None

    def text(self) -> str:
        return dump(
            dataclasses.asdict(self)
            | {"load": self.load, "gen": self.gen, "ver": self.ver, "after": self.after}
        )


@dataclasses.dataclass(frozen=True)
class Case:
    module: str
    phase: str  # where the attack fires: "import" | "generate" | "verify"
    check: Callable[[Run, World], list[str]] | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    respawn: bool = True  # the benign call after the attack must succeed in the same Sandbox
    control_source: str = CONTROL_SOURCE


def run_hostile(world: World, case: Case) -> Run:
    run = Run(case.module)
    source = world.render(case.module)
    config = world.config(**case.config)
    try:
        with Sandbox(source, filename=f"{case.module}.py", config=config, workers=1) as sb:
            run.tier = sb.tier
            run.load = run.call("load", sb.load)
            world.watch.observe()
            run.gen = run.call("generate", lambda: sb.generate([(1, 1)]))
            world.watch.observe()
            instance = (
                run.gen[0].value
                if run.gen and run.gen[0].ok and isinstance(run.gen[0].value, dict)
                else {"q": 1}
            )
            run.ver = run.call("verify", lambda: sb.verify([instance], [(0, "2"), (0, "0")]))
            world.watch.observe()
            run.control_during = check_control(world.control_config(), case.control_source)
            run.after = run.call("generate again", lambda: sb.generate([(2, 1)]))
            world.watch.observe()
            run.seccomp_active = sb.seccomp_active
            run.spawned = getattr(sb, "spawned", None)
    except Exception as exc:  # Sandbox() or its __exit__
        run.raised.append(f"Sandbox()/close: {type(exc).__name__}: {str(exc)[:1000]}")
    run.control_after = check_control(world.control_config())
    return run


# -- what must hold for every module ---------------------------------------------------------------------------


def _results_shape(label: str, results: Any, expected_len: int) -> list[str]:
    if results is None:
        return []  # raised: reported separately
    problems = []
    if not isinstance(results, list) or len(results) != expected_len:
        return [f"{label}: expected {expected_len} ItemResults, got {results!r:.300}"]
    for result in results:
        if not hasattr(result, "ok"):
            problems.append(f"{label}: not an ItemResult: {result!r:.300}")
        elif not result.ok and not (isinstance(result.error, str) and result.error.startswith(KINDS)):
            problems.append(f"{label}: failed item without a known error kind: {result.error!r:.300}")
    return problems


def common_problems(world: World, run: Run, case: Case) -> list[str]:
    problems: list[str] = []
    text = run.text()
    for needle in (world.token, SECRET_PREFIX):
        if needle in text:
            problems.append(f"SECRET LEAKED ({needle[:24]}...) into results: ...{excerpt(text, needle)}...")
    for directory in (world.target_dir, world.target_dir_2):
        entries = sorted(os.listdir(directory))
        if entries:
            problems.append(f"ESCAPE: files appeared in target dir {directory}: {entries}")
    escaped = nonce_files(world.escape_dirs(), world.nonce)
    if escaped:
        problems.append(f"ESCAPE: files written outside the sandbox: {[str(p) for p in escaped]}")
    events = world.sinks.hostile_events()
    if events:
        problems.append(f"NETWORK: the loopback sinks recorded {events[:10]}")
    if os.getpid() != world.pid or os.getppid() != world.ppid:
        problems.append(
            f"PARENT: pid/ppid changed from {world.pid}/{world.ppid} to {os.getpid()}/{os.getppid()}"
        )
    try:
        os.kill(world.ppid, 0)
    except OSError as exc:
        problems.append(f"PARENT: pytest's parent {world.ppid} is gone: {exc}")
    problems += [f"RAISED: Sandbox API raised for module misbehaviour: {r}" for r in run.raised]
    leftovers = world.watch.leftovers(wait_s=5.0)
    if leftovers:
        problems.append(
            "LEFTOVER processes after the Sandbox closed: " + "; ".join(p.describe() for p in leftovers)
        )
    leaked = sorted(os.listdir(world.scratch_root))
    if leaked:
        problems.append(f"LEFTOVER scratch dirs after the Sandbox closed: {leaked}")
    if run.tier is not None and not str(run.tier).startswith("bwrap"):
        problems.append(f"not sandboxed: tier {run.tier!r}")
    problems += [f"CONTROL (while hostile sandbox alive): {p}" for p in run.control_during]
    problems += [f"CONTROL (after hostile sandbox closed): {p}" for p in run.control_after]
    problems += _results_shape("generate", run.gen, 1)
    problems += _results_shape("verify", run.ver, 2)
    problems += _results_shape("generate again", run.after, 1)
    # Recovery inside the same Sandbox: the call after the attack answers correctly.
    if case.respawn and case.phase == "generate" and run.ver is not None:
        values = [r.value if r.ok else r.error for r in run.ver]
        if values != [1.0, 0.0]:
            problems.append(
                f"RECOVERY: verify after the attacking generate gave {values}, expected [1.0, 0.0]"
            )
    if (
        case.respawn
        and case.phase == "verify"
        and run.after is not None
        and not (run.after[0].ok and run.after[0].value == {"q": 1})
    ):
        problems.append(f"RECOVERY: generate after the attacking verify gave {run.after[0]!r:.300}")
    if case.phase in ("generate", "verify") and run.load is not None and not run.load.ok:
        problems.append(f"fixture did not load (test bug?): {run.load.error}")
    return problems


# -- what each attack must come to ---------------------------------------------------------------------------------


def _gen_ok(run: Run) -> list[str]:
    if not run.gen or not run.gen[0].ok:
        return [f"generate failed where the sandbox should simply neutralise the attack: {run.gen!r:.500}"]
    return []


def _kind(result: Any) -> str | None:
    return None if result.ok else str(result.error).split(":", 1)[0]


def _forbid(run: Run, markers: tuple[str, ...], why: str) -> list[str]:
    text = dump(run.loot())
    return [f"{why}: loot contains {m!r}: ...{excerpt(text, m)}..." for m in markers if m in text]


def _seccomp_markers(run: Run, markers: tuple[str, ...], why: str) -> list[str]:
    return _forbid(run, markers, why) if run.seccomp_active else []


def check_secrets_environ(run: Run, world: World) -> list[str]:
    from resyn.sandbox.isolation import worker_environment

    problems = _gen_ok(run)
    loot = run.loot() or {}
    allowed = set(worker_environment(0)) | {"PWD"}  # PWD: set by bwrap --chdir
    extra = set(loot.get("os.environ", {})) - allowed
    if extra:
        problems.append(f"worker environment has variables beyond the sandbox's own: {sorted(extra)}")
    return problems


def check_secrets_proc(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    loot = run.loot() or {}
    pids = {key.split("/")[2] for key in loot if key.startswith("/proc/") and key.split("/")[2].isdigit()}
    if len(pids) > 4:
        problems.append(f"PID namespace: the worker sees {len(pids)} processes: {sorted(pids, key=int)[:20]}")
    return problems


def check_secrets_files(run: Run, world: World) -> list[str]:
    from resyn.sandbox.isolation import readonly_paths

    problems = _gen_ok(run)
    loot = run.loot() or {}
    if loot.get("hits"):
        problems.append(f"read files it must not see: {loot['hits']}")
    allowed = {p.parts[2] for p in readonly_paths() if p.is_relative_to("/root") and len(p.parts) > 2}
    listing = loot.get("listings", {}).get("/root")
    if isinstance(listing, list) and set(listing) - allowed:
        problems.append(f"/root shows host entries: {sorted(set(listing) - allowed)}")
    return problems


def check_network(run: Run, world: World) -> list[str]:
    problems = _forbid(run, ("CONNECTED",), "network reachable")
    problems += _seccomp_markers(run, ("SOCKET_CREATED", "SENT"), "seccomp should deny socket()")
    if run.gen and not run.gen[0].ok and _kind(run.gen[0]) not in ("crashed", "exception"):
        problems.append(f"unexpected failure: {run.gen[0].error}")
    return problems


def check_io_uring(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run) + _forbid(run, ("CONNECTED", "READ_OK"), "io_uring reached outside")
    problems += _seccomp_markers(
        run, ("IO_URING_SETUP_OK", "IO_URING_SOCKET_OK"), "seccomp should deny io_uring"
    )
    return problems


def check_write_outside(run: Run, world: World) -> list[str]:
    return _gen_ok(run) + _forbid(run, ("WRITABLE",), "read-only files opened for writing")


def check_spawn(run: Run, world: World) -> list[str]:
    problems = _forbid(run, ("SPAWN_RAN",), "a program was executed")
    if run.seccomp_active:
        problems += _gen_ok(run)  # exec/fork fail with EPERM: the module survives and reports it
    return problems


def check_fork_bomb(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    forked = (run.loot() or {}).get("forked")
    if run.seccomp_active and forked != 0:
        problems.append(f"fork() succeeded {forked} times despite seccomp")
    return problems


def check_memory_bomb(run: Run, world: World) -> list[str]:
    limit = world.config().memory_mb
    result = run.gen[0] if run.gen else None
    if result is None:
        return []
    if result.ok:
        loot = result.value.get("loot", {})
        problems = []
        if loot.get("stopped_by") != "MemoryError" or loot.get("allocated_mb", 0) >= limit:
            problems.append(f"memory limit of {limit} MiB not enforced: {loot}")
        if any("RLIMIT_RAISED" in n for n in loot.get("notes", [])):
            problems.append(f"the module could raise its own RLIMIT_AS: {loot['notes']}")
        return problems
    if _kind(result) not in ("exception", "crashed"):
        return [f"memory bomb should fail with MemoryError or be killed, got {result.error}"]
    return []


def check_verify_timeout(run: Run, world: World) -> list[str]:
    if not run.ver:
        return []
    kinds = [_kind(r) for r in run.ver]
    return (
        []
        if kinds == ["timeout", "timeout"]
        else [f"verify should time out, got {[r.error for r in run.ver]}"]
    )


def check_generate_timeout(run: Run, world: World) -> list[str]:
    if not run.gen:
        return []
    return [] if _kind(run.gen[0]) == "timeout" else [f"generate should time out, got {run.gen[0]!r:.300}"]


def check_kill_parent(run: Run, world: World) -> list[str]:
    problems = _forbid(run, ("REFUSED_AS_PRIVILEGED",), "the worker runs privileged")
    problems += _seccomp_markers(run, ("SIGNAL_DELIVERED",), "seccomp should deny kill()")
    return problems


def check_monkeypatch(run: Run, world: World) -> list[str]:
    now = {
        "json.dumps": json.dumps,
        "json.loads": json.loads,
        "resyn.env.instance_rng": resyn.env.instance_rng,
        "resyn.env.instance_seed": resyn.env.instance_seed,
        "resyn.env.Environment.verify": resyn.env.Environment.verify,
    }
    return [f"parent's {k} was replaced" for k, v in _PARENT_OBJECTS.items() if now[k] is not v]


def check_sleep_import(run: Run, world: World) -> list[str]:
    problems = []
    if run.load is not None and (run.load.ok or not str(run.load.error).startswith("timeout")):
        problems.append(f"load should fail with a timeout, got {run.load!r:.300}")
    for label, results in (("generate", run.gen), ("verify", run.ver), ("generate again", run.after)):
        if results and any(r.ok for r in results):
            problems.append(f"{label} succeeded although the module never loaded")
    return problems


def _expect_kind(kind: str) -> Callable[[Run, World], list[str]]:
    def check(run: Run, world: World) -> list[str]:
        if not run.gen:
            return []
        return (
            []
            if _kind(run.gen[0]) == kind
            else [f"generate should fail with {kind!r}, got {run.gen[0]!r:.300}"]
        )

    return check


def check_ptrace(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    problems += _forbid(run, ("PTRACE_OK", "VMREAD_OK", "MEMREAD_OK"), "read another process")
    if (run.loot() or {}).get("hits"):
        problems.append(f"found secrets in memory: {run.loot()['hits'][:3]}")
    return problems


def check_fd_exhaustion(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    loot = run.loot() or {}
    limit = world.config().open_files
    if loot.get("opened", 0) > limit:
        problems.append(f"opened {loot.get('opened')} fds despite RLIMIT_NOFILE {limit}")
    if "RLIMIT_HARD_RAISED" in loot.get("notes", []):
        problems.append("the module raised its own hard RLIMIT_NOFILE")
    return problems


def check_huge_file(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    loot = run.loot() or {}
    limit = world.config().file_size_mb << 20
    if loot.get("written", 0) > limit:
        problems.append(f"wrote {loot.get('written')} bytes to one file despite RLIMIT_FSIZE {limit}")
    if any("RLIMIT_RAISED" in n for n in loot.get("notes", [])):
        problems.append(f"the module raised its own RLIMIT_FSIZE: {loot['notes']}")
    return problems


def check_disk_fill(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    loot = run.loot() or {}
    if loot.get("total_mb", 0) >= 1024:
        problems.append(
            f"DISK: no quota on scratch: the module wrote {loot['total_mb']} MiB in {loot.get('files')} files "
            f"of at most {world.config().file_size_mb} MiB each to the host disk before its own 1 GiB bound stopped it"
        )
    return problems


def check_privileges(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run)
    loot = run.loot() or {}
    info = loot.get("info", {})
    uid, euid = info.get("uid"), info.get("euid")
    low, high = WORKER_UID_RANGE
    unprivileged = uid == euid and isinstance(uid, int) and (uid == SANDBOX_UID or low <= uid < high)
    if not unprivileged:
        problems.append(
            f"worker uid/euid {uid}/{euid}, expected 65534 or a per-worker uid in {WORKER_UID_RANGE}"
        )
    status = info.get("status", {})
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        if key in status and int(status[key], 16) != 0:
            problems.append(f"worker has capabilities: {key} {status[key]}")
    if status.get("NoNewPrivs") != "1":
        problems.append(f"no_new_privs not set: {status.get('NoNewPrivs')}")
    if run.seccomp_active and status.get("Seccomp") != "2":
        problems.append(f"seccomp filter not active in the worker: Seccomp {status.get('Seccomp')}")
    gained = [k for k, v in loot.get("attempts", {}).items() if v == "PRIV_OK"]
    if gained:
        problems.append(f"privileged operations succeeded: {gained}")
    return problems


def check_inherited_fds(run: Run, world: World) -> list[str]:
    problems = _gen_ok(run) + _forbid(run, ("SENT_ON_INHERITED_SOCKET",), "inherited socket")
    # fd 2 is the worker's own stderr log in its scratch dir (under tmp_path here): that one is fine.
    text = dump(run.loot()).replace(str(world.scratch_root), "<scratch-root>")
    for needle in (str(world.tmp), "secret.txt"):
        if needle in text:
            problems.append(f"inherited a descriptor of the test's files: ...{excerpt(text, needle)}...")
    return problems


def check_keepalive(run: Run, world: World) -> list[str]:
    seconds = run.seconds.get("verify", 0.0)
    config = world.config()
    bound = 10 * (config.item_timeout_s + config.call_overhead_s)
    if seconds > bound:
        return [
            f"DEADLINE: verify took {seconds:.0f} s although each item has {config.item_timeout_s + config.call_overhead_s:.0f} s: "
            "progress frames from the module keep extending the call's deadline (the module's own 60 s bound ended it)"
        ]
    return []


def check_stderr_plant(run: Run, world: World) -> list[str]:
    """Either the log is out of the module's reach (it says so and returns), or it planted the
    trap and died: then the crash must be reported without the parent following the trap."""
    if not run.gen:
        return []
    result = run.gen[0]
    if result.ok and result.value.get("loot") == "no stderr log found to replace":
        return []
    return (
        []
        if _kind(result) == "crashed"
        else [f"expected a neutral outcome or 'crashed', got {result!r:.300}"]
    )


def check_thread_bomb(run: Run, world: World) -> list[str]:
    return _gen_ok(run)


_SLOW = {"memory_bomb", "cpu_loop_verify", "regex_redos", "sleep_import", "huge_instance", "escape_pgroup",
         "disk_fill", "keepalive_frames", "fork_bomb"}  # fmt: skip

CASES = [
    Case("secrets_environ", "generate", check_secrets_environ),
    Case("secrets_proc_environ", "generate", check_secrets_proc),
    Case("secrets_files", "generate", check_secrets_files),
    Case("network_tcp", "generate", check_network),
    Case("network_udp", "generate", check_network),
    Case("network_ctypes", "generate", check_network),
    Case("network_unix", "generate", check_network),
    Case("io_uring_bypass", "generate", check_io_uring),
    Case("seccomp_x32_abi", "generate", check_network),
    Case("seccomp_i386_abi", "generate", check_network),
    Case("write_outside", "generate", check_write_outside),
    Case("spawn_subprocess", "generate", check_spawn),
    Case("spawn_subclasses", "generate", check_spawn),
    Case("fork_bomb", "generate", check_fork_bomb),
    Case("memory_bomb", "generate", check_memory_bomb, {"item_timeout_s": 20.0}),
    Case("cpu_loop_verify", "verify", check_verify_timeout),
    Case("regex_redos", "verify", check_verify_timeout),
    Case("output_flood", "verify"),
    Case("kill_parent", "generate", check_kill_parent),
    Case("monkeypatch_harness", "import", check_monkeypatch),
    Case("sleep_import", "import", check_sleep_import, {"load_timeout_s": 4.0}),
    Case("segfault", "generate", _expect_kind("crashed")),
    Case("huge_instance", "generate", _expect_kind("oversize"), {"memory_mb": 2048, "item_timeout_s": 20.0}),
    Case("deep_nesting", "generate"),
    Case("ptrace_parent", "generate", check_ptrace),
    Case("fd_exhaustion", "generate", check_fd_exhaustion),
    Case("huge_file", "generate", check_huge_file, {"item_timeout_s": 20.0}),
    Case("disk_fill", "generate", check_disk_fill, {"item_timeout_s": 60.0}),
    Case("privileges_probe", "generate", check_privileges),
    Case("background_thread", "generate", respawn=False),
    Case("escape_pgroup", "generate", check_generate_timeout),
    Case("inherited_fds", "generate", check_inherited_fds),
    Case("stderr_symlink_leak", "generate", check_stderr_plant),
    Case("forge_negative_start", "generate", respawn=False),
    Case("forge_huge_seconds", "generate", respawn=False),
    Case("keepalive_frames", "verify", check_keepalive, respawn=False),
    Case("deep_scratch_tree", "generate"),
    Case("thread_bomb", "generate", check_thread_bomb, control_source=CONTROL_THREADED_SOURCE),
]

#: Attacks on the parent itself, run with the parent in a child process (see the module docstring).
PARENT_DOS = ["stderr_fifo_hang", "stderr_devzero"]


def _param(case: Case) -> Any:
    marks = [pytest.mark.slow] if case.module in _SLOW else []
    return pytest.param(case, id=case.module, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_module_is_contained(case: Case, world: World) -> None:
    run = run_hostile(world, case)
    problems = common_problems(world, run, case)
    if case.check is not None:
        problems += case.check(run, world)
    summary = run.text()
    report_dir = os.environ.get("RESYN_HOSTILE_REPORT_DIR")
    if report_dir:  # for auditing what each module obtained: one JSON file per module
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        (Path(report_dir) / f"{case.module}.json").write_text(summary)
    assert not problems, (
        f"hostile module {case.module} (tier {run.tier}, seccomp {run.seccomp_active}):\n  - "
        + "\n  - ".join(problems)
        + f"\n--- what came back (truncated):\n{summary[:3000]}"
    )


# -- the parent itself under attack ----------------------------------------------------------------------------------

_DRIVER = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from resyn.sandbox import Sandbox, SandboxConfig

args = json.loads(sys.argv[1])
out = {"raised": [], "results": {}, "seconds": {}}

def call(label, fn):
    began = time.monotonic()
    print("start", label, flush=True, file=sys.stderr)
    try:
        value = fn()
        out["results"][label] = [
            {"ok": r.ok, "value": repr(r.value)[:2000], "error": r.error} for r in value
        ] if isinstance(value, list) else repr(value)[:4000]
    except BaseException as exc:
        out["raised"].append(f"{label}: {type(exc).__name__}: {str(exc)[:2000]}")
    out["seconds"][label] = time.monotonic() - began

try:
    with Sandbox(args["source"], filename=args["filename"], config=SandboxConfig(**args["config"]), workers=1) as sb:
        call("load", sb.load)
        call("generate", lambda: sb.generate([(1, 1)]))
        call("verify", lambda: sb.verify([{"q": 1}], [(0, "2"), (0, "0")]))
except BaseException as exc:
    out["raised"].append(f"Sandbox()/close: {type(exc).__name__}: {str(exc)[:2000]}")
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("module", PARENT_DOS)
def test_parent_survives_hostile_scratch(module: str, world: World) -> None:
    """A module that plants a FIFO or a /dev/zero symlink where the parent reads its stderr log
    must cost only its own calls: the parent's calls return, without exhausting its memory."""
    config = {"load_timeout_s": 8.0, "item_timeout_s": 2.0, "call_overhead_s": 1.0, "memory_mb": 1024,
              "scratch_root": str(world.scratch_root)}  # fmt: skip
    args = {"source": world.render(module), "filename": f"{module}.py", "config": config}
    problems: list[str] = []
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _DRIVER, json.dumps(args)],
            cwd=REPO, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        stage = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        problems.append(
            f"HANG: the parent (driver process) did not finish within 60 s; last stage: {stage[0]}"
        )
        stdout = ""
    else:
        stdout = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace")[-1500:]
            problems.append(f"PARENT DIED: driver exit status {proc.returncode}; stderr tail: {tail}")
        else:
            report = json.loads(stdout.strip().splitlines()[-1])
            problems += [f"RAISED: {r}" for r in report["raised"]]
            generated = report["results"].get("generate")
            neutral = "no stderr log found to replace"
            if (
                isinstance(generated, list)
                and generated
                and generated[0]["ok"]
                and neutral not in generated[0]["value"]
            ):
                problems.append(f"generate succeeded although the module killed its worker: {generated}")
            verified = report["results"].get("verify")
            if not (isinstance(verified, list) and [v["ok"] for v in verified] == [True, True]):
                problems.append(f"RECOVERY: verify after the attack gave {verified}")
    for needle in (world.token, SECRET_PREFIX):
        if needle in stdout:
            problems.append(f"SECRET LEAKED: ...{excerpt(stdout, needle)}...")
    leftovers = world.watch.leftovers(wait_s=5.0)
    if leftovers:
        problems.append("LEFTOVER processes: " + "; ".join(p.describe() for p in leftovers))
        world.watch.kill(leftovers)
    problems += [f"CONTROL: {p}" for p in check_control(world.control_config())]
    assert not problems, f"hostile module {module}:\n  - " + "\n  - ".join(problems)


# -- the fixtures themselves ---------------------------------------------------------------------------------------


def test_every_hostile_fixture_is_exercised() -> None:
    covered = {c.module for c in CASES} | set(PARENT_DOS)
    assert set(fixture_names()) == covered


@pytest.mark.parametrize("module", fixture_names())
def test_hostile_fixture_is_a_valid_environment_module(module: str) -> None:
    """Compiled and inspected only (never imported here): one Environment subclass with the
    contract's methods, and a docstring saying what the module attempts."""
    import ast

    path = Path(__file__).parent / "fixtures" / "envs" / "hostile" / f"{module}.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    doc = ast.get_docstring(tree)
    assert doc and doc.startswith("Hostile: "), f"{module}: docstring must say what it attempts"
    classes = [
        node for node in tree.body
        if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "Environment" for b in node.bases)
    ]  # fmt: skip
    assert len(classes) == 1, f"{module}: expected exactly one Environment subclass"
    methods = {n.name for n in classes[0].body if isinstance(n, ast.FunctionDef)}
    assert {"generate", "question", "verify"} <= methods
    names = {
        t.id
        for n in classes[0].body
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert {"name", "max_difficulty"} <= names
