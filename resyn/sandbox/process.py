"""One sandbox worker process, seen from the parent: spawn, talk with deadlines, kill.

Every read and write to the worker is non-blocking and bounded by a deadline; when a deadline
passes, or the worker sends something malformed or too large, or dies, the whole process group is
SIGKILLed and :class:`WorkerFailure` is raised. The caller (:mod:`resyn.sandbox.session`) decides
whether to respawn and retry. Nothing the worker sends is trusted beyond being JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resyn.sandbox import protocol
from resyn.sandbox.config import SandboxConfig
from resyn.sandbox.isolation import Isolation, bwrap_argv, worker_environment, worker_uid

_BOOT = "import sys;sys.path.insert(0,sys.argv[2]);from resyn.sandbox.worker import main;main(sys.argv[1])"
_STDERR_LOG = "worker-stderr.log"


class WorkerFailure(Exception):
    """The worker did not answer properly; it has been killed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind  # "timeout" | "crashed" | "oversize" | "protocol"
        self.message = message


class WorkerProcess:
    """A started worker. Use :meth:`request`; after a :class:`WorkerFailure` it is dead."""

    def __init__(self, isolation: Isolation, config: SandboxConfig, hash_seed: int) -> None:
        self.isolation = isolation
        self.config = config
        self.hash_seed = hash_seed
        self._next_id = 1
        self._buffer = bytearray()
        # Host-side dir for the worker's stderr log (and, unsandboxed, its working dir). A
        # sandboxed worker never sees it: its scratch space is a private tmpfs.
        self.scratch = Path(tempfile.mkdtemp(prefix="resyn-worker-", dir=config.scratch_root))
        os.chmod(self.scratch, 0o700)
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        settings = {
            "read_fd": to_worker_r,
            "write_fd": from_worker_w,
            "seccomp": isolation.seccomp,
            "memory_mb": config.memory_mb,
            "cpu_seconds": config.cpu_seconds,
            "file_size_mb": config.file_size_mb,
            "open_files": config.open_files,
            "max_processes": config.max_processes,
            "max_item_bytes": config.max_item_bytes,
            "max_request_bytes": protocol.ABSOLUTE_MAX_FRAME,
            "flush_interval_s": config.flush_interval_s,
        }
        package_parent = str(Path(__file__).resolve().parents[2])
        command = [sys.executable, "-s", "-P", "-B", "-c", _BOOT, json.dumps(settings), package_parent]
        if isolation.sandboxed:
            argv = bwrap_argv(isolation, config.tmpfs_mb, hash_seed, worker_uid()) + command
            env: dict[str, str] = {}  # bwrap's own /proc/1/environ must hold nothing either
            cwd = None
        else:
            argv, env, cwd = command, worker_environment(hash_seed), str(self.scratch)
            env["HOME"] = env["TMPDIR"] = str(self.scratch)
        stderr = open(self.scratch / _STDERR_LOG, "wb")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(to_worker_r, from_worker_w),
                start_new_session=True,  # its own process group, killed as a whole
            )
        except OSError as exc:
            for fd in (to_worker_r, to_worker_w, from_worker_r, from_worker_w):
                os.close(fd)
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise WorkerFailure("crashed", f"cannot start worker: {exc}") from None
        finally:
            stderr.close()
        os.close(to_worker_r)
        os.close(from_worker_w)
        self._write_fd = to_worker_w
        self._read_fd = from_worker_r
        os.set_blocking(self._write_fd, False)
        os.set_blocking(self._read_fd, False)
        self.alive = True
        try:
            hello = self._read_frame(time.monotonic() + config.start_timeout_s, "start")
            if not isinstance(hello, dict) or not hello.get("ready"):
                self._fail("protocol", f"unexpected greeting {str(hello)[:200]}")
        except WorkerFailure:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        self.seccomp_active = bool(hello.get("seccomp"))
        self.uid = hello.get("uid")

    # -- requests ------------------------------------------------------------------------------
    def request(
        self,
        op: str,
        payload: dict[str, Any],
        *,
        first_deadline_s: float,
        progress_deadline_s: float,
        on_results: Callable[[int, list[Any]], None] | None = None,
        expected_items: int = 0,
    ) -> dict[str, Any]:
        """Send one request and collect its reply frames.

        ``first_deadline_s`` bounds the wait for the first frame (it includes encoding the batch),
        ``progress_deadline_s`` each later one. Batch replies come in several frames; each frame's
        results are passed to ``on_results(start_index, results)`` as they arrive, so the caller
        keeps what finished before a failure. Frames must stay within ``expected_items``.
        """
        if not self.alive:
            raise WorkerFailure("crashed", "worker is not running")
        request_id = self._next_id
        self._next_id += 1
        data = protocol.encode({"id": request_id, "op": op, **payload})
        deadline = time.monotonic() + first_deadline_s
        self._write_all(data, deadline)
        received = 0
        while True:
            frame = self._read_frame(deadline, op)
            if not isinstance(frame, dict) or frame.get("id") != request_id:
                self._fail("protocol", f"reply out of sequence: {str(frame)[:200]}")
            results = frame.get("results")
            progressed = False
            if results is not None:
                # Frames must continue exactly where the last one stopped: a module that forges
                # frames can neither overwrite earlier items nor stall forever on empty ones.
                if (
                    not isinstance(results, list)
                    or frame.get("start") != received
                    or received + len(results) > expected_items
                ):
                    self._fail("protocol", "malformed batch frame")
                if on_results is not None:
                    on_results(received, results)
                progressed = bool(results)
                received += len(results)
            if frame.get("done") is True:
                reply: dict[str, Any] = frame
                return reply
            if progressed:  # only real progress earns a new deadline
                deadline = time.monotonic() + progress_deadline_s

    # -- plumbing --------------------------------------------------------------------------------
    def _write_all(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._write_fd, view)
                view = view[written:]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:  # EPIPE: the worker is gone
                self._fail("crashed", f"worker stopped reading ({exc.strerror}){self._exit_detail()}")
            if not _wait(self._write_fd, select.POLLOUT, deadline):
                self._fail("timeout", "worker did not accept its input before the deadline")

    def _fill(self, size: int, deadline: float, what: str) -> None:
        while len(self._buffer) < size:
            try:
                chunk = os.read(self._read_fd, max(size - len(self._buffer), 1 << 16))
            except BlockingIOError:
                if not _wait(self._read_fd, select.POLLIN, deadline):
                    self._fail("timeout", f"no answer to '{what}' before the deadline")
                continue
            if not chunk:
                self._fail("crashed", f"worker died during '{what}'{self._exit_detail()}")
            self._buffer += chunk

    def _read_frame(self, deadline: float, what: str) -> Any:
        header = protocol.HEADER.size
        self._fill(header, deadline, what)
        (size,) = protocol.HEADER.unpack(self._buffer[:header])
        if size > self.config.max_frame_bytes:
            self._fail("oversize", f"reply of {size} bytes exceeds the cap of {self.config.max_frame_bytes}")
        self._fill(header + size, deadline, what)
        body = bytes(self._buffer[header : header + size])
        del self._buffer[: header + size]
        try:
            return protocol.decode(body)
        except protocol.ProtocolError as exc:
            self._fail("protocol", str(exc))

    def _exit_detail(self) -> str:
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.proc.wait(timeout=0.5)
        tail = self.stderr_tail()
        detail = ""
        if code is not None and self.isolation.sandboxed and 128 < code < 128 + 65:
            code = -(code - 128)  # bwrap reports a child killed by signal N as exit status 128 + N
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                detail = f" (killed by {signal.Signals(-code).name})"
        elif code is not None:
            detail = f" (exit status {code})"
        if tail:
            detail += f"; stderr: {tail}"
        return detail

    def stderr_tail(self, limit: int = 600) -> str:
        """The end of the worker's stderr log, for diagnostics. Opened without following links and
        without blocking, and read only if it is a regular file: in unsafe mode the worker shares
        this dir and could plant a FIFO or a link to /dev/zero here."""
        try:
            fd = os.open(self.scratch / _STDERR_LOG, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            return ""
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return ""
            data = os.pread(fd, limit, max(0, info.st_size - limit))
        except OSError:
            return ""
        finally:
            os.close(fd)
        return data.decode(errors="replace").strip().replace("\n", " | ")

    def _fail(self, kind: str, message: str) -> Any:
        self.kill()
        raise WorkerFailure(kind, message)

    def kill(self) -> None:
        """SIGKILL the worker's process group (bwrap, and through it the namespace) and reap it."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for fd in (self._write_fd, self._read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _wait(fd: int, events: int, deadline: float) -> bool:
    """Wait until ``fd`` is ready or the deadline passes; False on timeout."""
    poller = select.poll()
    poller.register(fd, events | select.POLLERR | select.POLLHUP)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if poller.poll(min(remaining, 3600) * 1000):
            return True
