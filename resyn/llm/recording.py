"""Where call records go. Every call a provider makes, failed ones included, is handed to its
``Recorder`` as one ``CallRecord``. ``MemoryRecorder`` keeps them in a list (tests, summaries),
``JsonlRecorder`` appends them to a file — which is also a replay transcript — and the catalog
implements the same protocol."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from resyn.llm.models import CallRecord


@runtime_checkable
class Recorder(Protocol):
    """Receives one record per model call. Must be quick and must not raise."""

    def record(self, call: CallRecord) -> None: ...


class NullRecorder:
    """Forgets every call."""

    def record(self, call: CallRecord) -> None:
        return None


class MemoryRecorder:
    """Keeps every call in ``calls``, in completion order."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self._lock = threading.Lock()

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self.calls.append(call)

    @property
    def total_cost_usd(self) -> float:
        """Sum of the known costs."""
        return sum(c.cost_usd for c in self.calls if c.cost_usd is not None)


class JsonlRecorder:
    """Appends each call as one JSON line to ``path`` (created with its directory)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """A process killed mid-append (kill -9) leaves a line without its newline; end it, so the
        next record starts a line of its own and only the torn one is unreadable."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(-1, 2)
                torn = handle.read(1) != b"\n"
        except OSError:  # missing or empty
            return
        if torn:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n")

    def record(self, call: CallRecord) -> None:
        line = call.model_dump_json() + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


class TeeRecorder:
    """Hands every call to each of several recorders."""

    def __init__(self, *recorders: Recorder) -> None:
        self.recorders = recorders

    def record(self, call: CallRecord) -> None:
        for recorder in self.recorders:
            recorder.record(call)
