"""Which isolation this machine offers, and the command line that starts a worker inside it.

Tiers, strongest first (measurements and pitfalls behind them: ``shared/reference/sandbox.md``):

``bwrap-root``
    The launcher is root: bubblewrap creates PID, network, IPC, UTS and mount namespaces as real
    root (no user namespace), then ``setpriv`` drops to an unprivileged uid/gid with every
    capability and the bounding set cleared and ``no_new_privs`` set, before Python starts. The
    worker is an ordinary unprivileged user to the host kernel: root-owned files stay closed,
    outside processes cannot be signalled. Each worker gets its own uid, drawn at random from a
    range no real account uses, because RLIMIT_NPROC counts all processes and threads of a uid:
    with one shared uid (e.g. 65534) one module could exhaust it and stop every other worker
    from starting threads.
``bwrap-userns``
    The launcher is not root: bubblewrap in an unprivileged user namespace, uid 65534 inside
    (mapped to the launcher's uid outside), all capabilities dropped.

Both add rlimits and, when libseccomp is present, the seccomp filter; the probe reports whether
it is. The mount namespace shows only ``/usr``, the Python installation, the virtualenv and the
``resyn`` package (read-only), a private ``/tmp`` and the worker's own scratch dir.

``none`` (``--unsafe-no-sandbox``) runs workers as plain child processes with an empty environment
and rlimits: for trusted code only. When neither bubblewrap tier works and the unsafe mode was
not asked for, :func:`probe` raises :class:`SandboxUnavailable` naming the package to install.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from resyn.sandbox import seccomp

log = logging.getLogger("resyn.sandbox")

#: The uid inside an unprivileged user namespace (``bwrap-userns``), mapped to the launcher's.
SANDBOX_UID = 65534
#: ``bwrap-root`` workers run as a random uid from this range (2e9 .. 2.1e9: far above the
#: ranges distributions allocate to users, systemd's dynamic users and container sub-uids).
WORKER_UID_RANGE = (2_000_000_000, 2_100_000_000)
SCRATCH_INSIDE = "/scratch"


class SandboxUnavailable(Exception):
    """No namespace isolation is available and unsafe mode was not requested."""


@dataclass(frozen=True)
class Isolation:
    tier: str  # "bwrap-root" | "bwrap-userns" | "none"
    seccomp: bool
    bwrap: str | None
    setpriv: str | None

    @property
    def sandboxed(self) -> bool:
        return self.tier != "none"

    def describe(self) -> str:
        if not self.sandboxed:
            return "none (unsafe: no namespaces, no seccomp; trusted code only)"
        who = "a fresh unprivileged uid per worker" if self.tier == "bwrap-root" else f"uid {SANDBOX_UID}"
        parts = ["bubblewrap pid/net/ipc/mount namespaces", who, "rlimits"]
        parts.append("seccomp" if self.seccomp else "NO seccomp (install libseccomp2)")
        return f"{self.tier}: " + ", ".join(parts)


def _package_root() -> Path:
    import resyn

    return Path(resyn.__file__).resolve().parent


def readonly_paths() -> list[Path]:
    """Host paths a worker needs to read: the interpreter, the virtualenv and the resyn package."""
    candidates = [Path(sys.base_prefix), Path(sys.prefix), _package_root()]
    paths: list[Path] = []
    for path in candidates:
        if path.is_relative_to("/usr") or not path.exists():
            continue
        if any(path.is_relative_to(p) for p in paths):
            continue
        paths = [p for p in paths if not p.is_relative_to(path)] + [path]
    return paths


def worker_uid() -> int:
    """A fresh unprivileged uid for one ``bwrap-root`` worker."""
    return secrets.SystemRandom().randrange(*WORKER_UID_RANGE)


def bwrap_argv(isolation: Isolation, tmpfs_mb: int, hash_seed: int, uid: int = SANDBOX_UID) -> list[str]:
    """The bubblewrap (and setpriv) prefix that puts a command inside the sandbox.

    The worker's writable places, ``/tmp`` and its scratch dir ``/scratch``, are size-capped
    tmpfs mounts private to this sandbox: a module cannot fill the host's disk, and nothing it
    writes outlives the worker.
    """
    tmpfs = str(tmpfs_mb * 1024 * 1024)
    assert isolation.bwrap is not None
    argv = [
        isolation.bwrap,
        "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session",
        "--perms", "01777", "--size", tmpfs, "--tmpfs", "/tmp",
        "--perms", "01777", "--size", tmpfs, "--tmpfs", SCRATCH_INSIDE,
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
        "--ro-bind-try", "/etc/localtime", "/etc/localtime",
        "--proc", "/proc", "--dev", "/dev",
    ]  # fmt: skip
    made: set[str] = set()
    for path in readonly_paths():
        # bwrap creates missing parents with mode 0700 when run as root; the unprivileged uid
        # must be able to traverse them (e.g. /root/.pyenv for a pyenv interpreter).
        for parent in reversed(path.parents[:-1]):
            if str(parent) not in made:
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--chdir", SCRATCH_INSIDE, "--clearenv"]
    for key, value in worker_environment(hash_seed).items():
        argv += ["--setenv", key, value]
    if isolation.tier == "bwrap-root":
        assert isolation.setpriv is not None
        argv += [
            "--",
            isolation.setpriv,
            f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
        ]  # fmt: skip
    else:
        argv += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        argv += ["--cap-drop", "ALL", "--"]
    return argv


def worker_environment(hash_seed: int) -> dict[str, str]:
    """The complete environment of a worker: no inherited variable, so no API key, ever."""
    return {
        "PYTHONHASHSEED": str(hash_seed),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUTF8": "1",
        "LANG": "C.UTF-8",
        "HOME": SCRATCH_INSIDE,
        "TMPDIR": "/tmp",
        # Native thread pools would fight over 2 cores and misbehave under RLIMIT_AS.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _try(argv: list[str]) -> str | None:
    """Run a probe command with an empty environment; None on success, else its error text."""
    try:
        result = subprocess.run(argv, env={}, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode != 0:
        return (result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}")[:300]
    return None


@functools.lru_cache(maxsize=4)
def probe(unsafe_no_sandbox: bool = False) -> Isolation:
    """Pick the strongest tier that works here (cached per process) and log it."""
    if unsafe_no_sandbox:
        isolation = Isolation("none", seccomp=False, bwrap=None, setpriv=None)
        log.warning("sandbox: %s", isolation.describe())
        return isolation
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap is not installed, so untrusted code cannot be isolated: "
            "install it with `apt-get install bubblewrap` (or pass --unsafe-no-sandbox for trusted code only)"
        )
    has_seccomp = seccomp.available()
    setpriv = shutil.which("setpriv")
    errors: list[str] = []
    tiers = (["bwrap-root"] if os.geteuid() == 0 and setpriv else []) + ["bwrap-userns"]
    for tier in tiers:
        isolation = Isolation(tier, seccomp=has_seccomp, bwrap=bwrap, setpriv=setpriv)
        error = _try([*bwrap_argv(isolation, 1, 0), sys.executable, "-s", "-P", "-c", "pass"])
        if error is None:
            log.info("sandbox: %s", isolation.describe())
            return isolation
        errors.append(f"{tier}: {error}")
    raise SandboxUnavailable(
        "bubblewrap cannot create namespaces here (" + "; ".join(errors) + "): run as root or enable "
        "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
        "or pass --unsafe-no-sandbox for trusted code only"
    )
