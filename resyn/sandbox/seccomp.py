"""A seccomp filter for sandbox workers, over libseccomp through ctypes.

Why ctypes rather than the ``pyseccomp`` package: it calls ``ctypes.util.find_library`` at import,
which forks ``ldconfig`` — impossible inside the sandbox and pointless once the soname is known.

The filter allows by default and denies, with EPERM, the system calls an environment module never
needs and an attacker always wants: creating sockets, exec, fork (``clone`` without
``CLONE_THREAD``), ptrace and cross-process memory access, signals to other processes, and the
kernel attack surface (mount, namespaces, bpf, keyrings, io_uring, module loading, ...). Threads
stay possible because numpy/sympy-style libraries may start them. ``clone3`` fails with ENOSYS
rather than EPERM: glibc only falls back to ``clone`` (which we can filter by flags, unlike
``clone3`` whose flags live in memory) on ENOSYS, so EPERM would break every thread start.
System calls of a foreign ABI (e.g. i386 on x86_64) kill the process: libseccomp's default for
architectures the filter was not built for.

This module runs inside the worker; only the standard library is used.
"""

from __future__ import annotations

import ctypes
import errno

_SONAMES = ("libseccomp.so.2", "libseccomp.so")

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
CLONE_THREAD = 0x00010000

#: Denied with EPERM. Names unknown to this kernel/architecture are skipped.
DENIED_SYSCALLS = (
    # network
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # new programs and processes
    "execve", "execveat", "fork", "vfork",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kill", "pidfd_open",
    "pidfd_send_signal", "pidfd_getfd", "kcmp",
    # namespaces, mounts, privileged kernel surfaces
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_by_handle_at",
    "name_to_handle_at", "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "syslog",
    "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm",
    "quotactl", "fanotify_init", "personality", "setdomainname", "sethostname",
)  # fmt: skip


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


class SeccompUnavailable(Exception):
    """libseccomp is missing or the kernel refused the filter."""


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _load_library() -> ctypes.CDLL:
    for soname in _SONAMES:
        try:
            return ctypes.CDLL(soname, use_errno=True)
        except OSError:
            continue
    raise SeccompUnavailable("libseccomp2 is not installed (apt-get install libseccomp2)")


def available() -> bool:
    """Whether libseccomp can be loaded in this process (parent-side probe)."""
    try:
        _load_library()
    except SeccompUnavailable:
        return False
    return True


def install_filter() -> None:
    """Install the filter on the calling process; irreversible. Needs no_new_privs or CAP_SYS_ADMIN."""
    lib = _load_library()
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_syscall_resolve_name.argtypes = (ctypes.c_char_p,)
    lib.seccomp_rule_add_array.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    )
    lib.seccomp_load.argtypes = (ctypes.c_void_p,)
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)

    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise SeccompUnavailable("seccomp_init failed")
    try:

        def deny(name: str, action: int, conditions: list[_ArgCmp] | None = None) -> None:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # __NR_SCMP_ERROR: not a syscall on this architecture
                return
            conds = conditions or []
            array = (_ArgCmp * max(1, len(conds)))(*conds)
            rc = lib.seccomp_rule_add_array(ctx, action, number, len(conds), array)
            if rc < 0:
                raise SeccompUnavailable(f"seccomp_rule_add({name}) failed: {rc}")

        eperm = _errno_action(errno.EPERM)
        for name in DENIED_SYSCALLS:
            deny(name, eperm)
        deny("clone3", _errno_action(errno.ENOSYS))
        # clone is allowed only for threads: deny when (flags & CLONE_THREAD) == 0.
        deny("clone", eperm, [_ArgCmp(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)])
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise SeccompUnavailable(f"seccomp_load failed: {rc}")
    finally:
        lib.seccomp_release(ctx)
