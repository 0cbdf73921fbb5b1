"""Limits and deadlines of the sandbox, in one validated object."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class SandboxConfig(BaseModel):
    """How untrusted environment code is run. Every limit here is enforced outside Python code
    the module could tamper with (kernel rlimits, namespaces, seccomp, parent-side deadlines)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    unsafe_no_sandbox: bool = False
    """Run workers as plain child processes without namespaces or seccomp. Trusted code only."""

    memory_mb: int = Field(2048, ge=256)
    """RLIMIT_AS of a worker. numpy/OpenBLAS misbehave below ~1 GiB; sympy needs ~300 MiB."""

    cpu_seconds: int = Field(3600, ge=1)
    """RLIMIT_CPU over a worker's whole life; a backstop only, deadlines are the real limit."""

    file_size_mb: int = Field(16, ge=1)
    """RLIMIT_FSIZE: largest file a worker may write into its scratch dir (and its stderr log)."""

    open_files: int = Field(64, ge=16)
    """RLIMIT_NOFILE of a worker."""

    max_processes: int = Field(64, ge=8)
    """RLIMIT_NPROC: processes and threads of the worker's uid (its own uid per worker, so this
    bounds one worker's threads; seccomp already denies fork)."""

    tmpfs_mb: int = Field(64, ge=1)
    """Size of each of the worker's private tmpfs mounts, /tmp and /scratch (host memory)."""

    start_timeout_s: float = Field(20.0, gt=0)
    """Deadline for a worker to start and report ready (bwrap + interpreter start)."""

    load_timeout_s: float = Field(10.0, gt=0)
    """Deadline for importing the environment module (a module that sleeps at import fails here)."""

    item_timeout_s: float = Field(5.0, gt=0)
    """Deadline for one generate/question/verify call, measured between progress frames."""

    call_overhead_s: float = Field(2.0, gt=0)
    """Slack added to every deadline for pipe traffic and JSON encoding of a batch."""

    flush_interval_s: float = Field(0.05, gt=0)
    """A worker sends partial batch results at least this often, so a hung item is found without
    waiting for a whole batch's deadline and the items before it are kept."""

    max_frame_mb: int = Field(64, ge=1)
    """Largest frame the parent accepts from a worker; a larger one kills the worker."""

    max_item_kb: int = Field(4096, ge=1)
    """Largest encoded result of a single item (an instance, a question, a score)."""

    scratch_root: Path | None = None
    """Where the parent keeps each worker's stderr log (default: the system temp dir); also the
    working dir of unsandboxed workers."""

    worker_failures_per_call: int = Field(3, ge=1)
    """When a batch kills its worker, its unfinished items are retried one by one to find the item
    responsible. Each such failure costs a deadline and a respawn; after this many in one call,
    the call's remaining items fail at once with the last reason ("not run: ...")."""

    @property
    def max_frame_bytes(self) -> int:
        return self.max_frame_mb * 1024 * 1024

    @property
    def max_item_bytes(self) -> int:
        return self.max_item_kb * 1024
