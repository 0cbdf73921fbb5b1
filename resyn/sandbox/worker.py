"""The sandbox worker: runs inside the isolation layer and hosts exactly one environment module.

Started by :mod:`resyn.sandbox.process` as ``python -s -P -B -c <boot> <settings-json>``, already
inside bubblewrap's namespaces and already running as an unprivileged uid. Before it touches
untrusted code it (1) applies rlimits, (2) points fds 0-2 away from anything the parent reads,
(3) installs the seccomp filter. Then it answers requests on its private pipe fds.

Nothing here is trusted by the parent: the module can rewrite this file's globals once it runs.
The parent validates every value it gets back and never lets one worker host two modules.

Only the standard library and ``resyn.env``/``resyn.grading`` are imported, for start-up speed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import linecache
import math
import os
import resource
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable
from typing import Any

from resyn.env import Environment, instance_rng
from resyn.grading import extract_answer
from resyn.sandbox import protocol

MODULE_NAME = "resyn_environment"

# Captured before any untrusted code runs, so a module that monkeypatches ``json`` or ``time``
# cannot change how this worker encodes or times (it can still patch these names; see docstring).
_dumps = json.dumps
_loads = json.loads
# What json.loads uses, without its wrappers (not in the type stubs).
_scan: Callable[[str, int], tuple[Any, int]] = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]
_perf = time.perf_counter
_extract = extract_answer

#: The message of a ``no_answer`` item (the parent shows it as the item's detail).
NO_ANSWER = "no <answer>, \\boxed{} or 'final answer:' in the completion"


def _set_limit(kind: int, value: int) -> None:
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        # Lowering a limit always succeeds; raising above the hard limit does not. Keep the lower.
        _soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY and value > hard:
            resource.setrlimit(kind, (hard, hard))


def apply_limits(settings: dict[str, Any]) -> None:
    mib = 1024 * 1024
    _set_limit(resource.RLIMIT_AS, int(settings["memory_mb"]) * mib)
    _set_limit(resource.RLIMIT_CPU, int(settings["cpu_seconds"]))
    _set_limit(resource.RLIMIT_FSIZE, int(settings["file_size_mb"]) * mib)
    _set_limit(resource.RLIMIT_NOFILE, int(settings["open_files"]))
    _set_limit(resource.RLIMIT_CORE, 0)
    if hasattr(resource, "RLIMIT_NPROC"):
        _set_limit(resource.RLIMIT_NPROC, int(settings["max_processes"]))
    # Exceeding RLIMIT_FSIZE should fail the write (EFBIG), not kill the worker mid-reply.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _error(kind: str, exc: BaseException | None = None, message: str = "") -> dict[str, Any]:
    """A per-item error: kind, one-line message, and a short traceback of the module's frames."""
    if exc is not None:
        text = f"{type(exc).__name__}: {exc}"
        message = f"{message}{text}" if message else text
        frames = traceback.extract_tb(exc.__traceback__)
        relevant = [f for f in frames if f.filename != __file__] or frames
        tb = "".join(traceback.format_list(relevant[-6:])) + text
        line = relevant[-1].lineno if relevant else None
        return {"error": kind, "message": message[:2000], "traceback": tb[-4000:], "line": line}
    return {"error": kind, "message": message[:2000]}


class Host:
    """State of one worker: the loaded environment and the request handlers."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.env: Environment | None = None
        self.item_cap = int(settings["max_item_bytes"])
        self.flush_interval = float(settings["flush_interval_s"])

    # -- loading -------------------------------------------------------------------------------
    def load(self, request: dict[str, Any]) -> dict[str, Any]:
        source = request["source"]
        filename = request.get("filename", "environment.py")
        module = types.ModuleType(MODULE_NAME)
        module.__file__ = filename
        sys.modules[MODULE_NAME] = module  # dataclasses and typing look the module up by name
        # Tracebacks quote source lines only for files linecache knows; this one is not on disk.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            code = compile(source, filename, "exec")
            exec(code, module.__dict__)
        except BaseException as exc:
            return {"ok": False, **_error("exception", exc, "module failed to import: ")}
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Environment)
            and value is not Environment
            and value.__module__ == MODULE_NAME
        ]
        if len(classes) != 1:
            names = ", ".join(sorted(c.__name__ for c in classes)) or "none"
            return {
                "ok": False,
                "error": "invalid",
                "message": f"expected exactly one Environment subclass, found {len(classes)} ({names})",
            }
        cls = classes[0]
        try:
            self.env = cls()
        except BaseException as exc:
            return {"ok": False, **_error("exception", exc, f"{cls.__name__}() failed: ")}
        return {
            "ok": True,
            "class_name": cls.__name__,
            "name": _jsonable(getattr(cls, "name", None)),
            "max_difficulty": _jsonable(getattr(cls, "max_difficulty", None)),
            "doc": (cls.__doc__ or "")[:4000] if isinstance(cls.__doc__, str) else "",
            "has_solution": cls.solution is not Environment.solution,
        }

    # -- batched operations ----------------------------------------------------------------------
    def run(self, op: str, request: dict[str, Any], emit: Callable[[int, list[str], bool], None]) -> None:
        """Run a batch, emitting encoded per-item results progressively (see ``flush_interval``)."""
        env = self.env
        if env is None:
            raise RuntimeError("no environment loaded")
        handler: Callable[[Environment, Any], Any]
        if op == "generate":
            items = request["items"]
            handler = self._generate
        elif op == "sample":
            items = request["items"]
            handler = self._sample
        elif op == "question":
            items = request["instances"]
            handler = self._question
        elif op == "verify":
            instances = request["instances"]
            self._verify_instances = instances
            self._verify_originals: list[str | None] = [None] * len(instances)
            self._check_mutation = bool(request.get("check_mutation", False))
            items = request["items"]
            handler = self._verify
        elif op == "score":
            self._run_score(env, request, emit)
            return
        else:
            raise RuntimeError(f"unknown operation {op!r}")

        pending: list[str] = []
        start_index = 0
        last_flush = _perf()
        for index, item in enumerate(items):
            began = _perf()
            try:
                value = handler(env, item)
                if type(value) is float:  # the hot path of verify: skip the JSON encoder
                    encoded = f"[1,{value!r},{_perf() - began!r}]"
                else:
                    encoded = _dumps([1, value, _perf() - began], separators=(",", ":"), allow_nan=False)
            except _ItemFailure as failure:
                encoded = _dumps([0, failure.payload, _perf() - began], separators=(",", ":"))
            except BaseException as exc:
                payload = _error("exception", exc)
                encoded = _dumps([0, payload, _perf() - began], separators=(",", ":"))
            if len(encoded) > self.item_cap:
                payload = {
                    "error": "oversize",
                    "message": f"result of {len(encoded)} bytes exceeds the "
                    f"per-item cap of {self.item_cap} bytes",
                }
                encoded = _dumps([0, payload, _perf() - began], separators=(",", ":"))
            pending.append(encoded)
            now = _perf()
            if now - last_flush >= self.flush_interval and index + 1 < len(items):
                emit(start_index, pending, False)
                start_index = index + 1
                pending = []
                last_flush = now
        emit(start_index, pending, True)

    def time_verify(self, request: dict[str, Any]) -> float:
        """Time direct in-process verify calls (no IPC): the baseline ``resyn bench`` compares the
        sandboxed path against, measured where the untrusted code is allowed to run."""
        env = self.env
        if env is None:
            raise RuntimeError("no environment loaded")
        instances = request["instances"]
        calls = [(instances[int(i)], a) for i, a in request["items"]]
        verify = env.verify
        began = _perf()
        for instance, answer in calls:
            with contextlib.suppress(Exception):
                verify(instance, answer)
        return _perf() - began

    def _generate(self, env: Environment, item: Any) -> Any:
        seed, difficulty = int(item[0]), int(item[1])
        instance = env.generate(instance_rng(seed, difficulty), difficulty)
        return _loads(_instance_json(instance))

    def _sample(self, env: Environment, item: Any) -> Any:
        """Generate, render and solve one instance, and compare behaviour across a JSON round trip."""
        seed, difficulty = int(item[0]), int(item[1])
        t0 = _perf()
        instance = env.generate(instance_rng(seed, difficulty), difficulty)
        t_generate = _perf() - t0
        text = _instance_json(instance)
        question = _call("question", env.question, instance)
        if not isinstance(question, str):
            raise _ItemFailure(
                _error("invalid", message=f"question() returned {type(question).__name__}, not str")
            )
        solution = _call("solution", env.solution, instance)
        if solution is not None and not isinstance(solution, str):
            raise _ItemFailure(
                _error("invalid", message=f"solution() returned {type(solution).__name__}, not str or None")
            )
        roundtripped = _loads(text)
        try:
            same_object = bool(roundtripped == instance)
        except Exception:
            same_object = False
        question_rt: str | None = None
        gold_original: Any = None
        if not same_object:
            question_rt = _call("question", env.question, roundtripped)
            if solution is not None:
                gold_original = _score(_call("verify", env.verify, instance, solution))
        return {
            "instance": roundtripped,
            "question": question,
            "solution": solution,
            "t_generate": t_generate,
            "roundtrip_equal": same_object,
            "question_roundtrip": question_rt if question_rt != question else None,
            "question_roundtrip_differs": question_rt is not None and question_rt != question,
            "gold_score_original": gold_original,
        }

    def _question(self, env: Environment, instance: Any) -> Any:
        question = env.question(instance)
        if not isinstance(question, str):
            raise _ItemFailure(
                _error("invalid", message=f"question() returned {type(question).__name__}, not str")
            )
        return question

    def _verify(self, env: Environment, item: Any) -> Any:
        index, answer = int(item[0]), item[1]
        instance = self._verify_instances[index]
        if not self._check_mutation:
            return _score(env.verify(instance, answer))
        before = self._verify_originals[index]
        if before is None:
            before = self._verify_originals[index] = _dumps(instance, sort_keys=True)
        score = _score(env.verify(instance, answer))
        after = _dumps(instance, sort_keys=True, default=repr)
        if after != before:
            # Restore so one mutating call cannot change the outcome of the next items.
            self._verify_instances[index] = _loads(before)
            return {"score": score, "mutated": True}
        return score

    def _run_score(
        self, env: Environment, request: dict[str, Any], emit: Callable[[int, list[str], bool], None]
    ) -> None:
        """``verify`` for whole completions (reward scoring): each item's instance (JSON text or an
        object) is checked first, then its answer is extracted here (the parent sends the raw
        text), so that the parent's per-item cost does not grow with the completion's length.
        Equal answers to one instance are verified once per batch (a pure verifier gives them the
        same score).

        The loop of :meth:`run`, specialised for the hot path of training: an item whose score is
        a finite float is sent as that bare JSON number (no status, no seconds); anything else as
        the usual ``[status, value, seconds]`` entry."""
        instances = request["instances"]
        texts = request["texts"]
        index = request["index"]
        if type(texts) is not list or type(index) is not list or len(texts) != len(index):
            raise RuntimeError("malformed score request")
        parsed: list[Any] = [None] * len(instances)
        memo: dict[tuple[int, str], Any] = {}
        verify = env.verify
        extract = _extract
        cap = self.item_cap
        interval = self.flush_interval
        count = len(texts)
        pending: list[str] = []
        start_index = 0
        began = last_flush = _perf()
        for position in range(count):
            try:
                slot = index[position]
                instance = parsed[slot]
                if instance is None:
                    instance = parsed[slot] = _parse_instance(instances[slot])
                if type(instance) is _ItemFailure:
                    raise _ItemFailure(instance.payload)
                text = texts[position]
                answer = extract(text) if isinstance(text, str) else None
                if answer is None:
                    raise _ItemFailure({"error": "no_answer", "message": NO_ANSWER})
                key = (slot, answer)
                value = memo.get(key)
                if value is None:
                    raw = verify(instance, answer)
                    # A finite float as is (x - x is NaN for inf and NaN); anything else via _score.
                    value = memo[key] = raw if type(raw) is float and raw - raw == 0.0 else _score(raw)
                if type(value) is float:
                    encoded = repr(value)
                else:
                    encoded = _dumps([1, value, _perf() - began], separators=(",", ":"), allow_nan=False)
            except _ItemFailure as failure:
                encoded = _dumps([0, failure.payload, _perf() - began], separators=(",", ":"))
            except BaseException as exc:
                encoded = _dumps([0, _error("exception", exc), _perf() - began], separators=(",", ":"))
            if len(encoded) > cap:
                payload = {
                    "error": "oversize",
                    "message": f"result of {len(encoded)} bytes exceeds the per-item cap of {cap} bytes",
                }
                encoded = _dumps([0, payload, _perf() - began], separators=(",", ":"))
            pending.append(encoded)
            began = _perf()
            if began - last_flush >= interval and position + 1 < count:
                emit(start_index, pending, False)
                start_index = position + 1
                pending = []
                last_flush = began
        emit(start_index, pending, True)


class _ItemFailure(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message", ""))
        self.payload = payload


def _parse_instance(raw: Any) -> Any:
    """An instance sent as an object, or as the JSON text a dataset carries (parsed here rather
    than in the parent); an :class:`_ItemFailure` (``invalid_item``) when it is not an object."""
    if type(raw) is str:
        try:
            raw = _parse_json(raw)
        except (ValueError, RecursionError) as exc:
            return _ItemFailure(
                {"error": "invalid_item", "message": f"instance_json is not JSON: {str(exc)[:100]}"}
            )
        if type(raw) is not dict:
            return _ItemFailure({"error": "invalid_item", "message": "instance_json is not a JSON object"})
    if type(raw) is not dict:
        return _ItemFailure({"error": "invalid_item", "message": "the instance is not an object"})
    return raw


def _parse_json(text: str) -> Any:
    """``json.loads(text)``, at half its cost for a text that is exactly one JSON value (the
    usual ``instance_json``): the decoder's scanner is called directly, and json.loads (which
    also skips surrounding whitespace, and raises the errors) runs only when it does not stop
    exactly at the end of the text."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return _loads(text)
    return value if end == len(text) else _loads(text)


def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except BaseException as exc:
        raise _ItemFailure(_error("exception", exc, f"{what}() raised ")) from None


def _instance_json(instance: Any) -> str:
    if not isinstance(instance, dict):
        raise _ItemFailure(
            _error("invalid", message=f"generate() returned {type(instance).__name__}, not dict")
        )
    try:
        return _dumps(instance, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise _ItemFailure(_error("invalid", exc, "instance is not JSON-serializable: ")) from None


def _score(value: Any) -> Any:
    """Pass a score on as a JSON number when it is one; describe it otherwise (the parent judges)."""
    if isinstance(value, bool):
        return {"invalid_score": repr(value), "type": "bool"}
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return {"invalid_score": repr(value)[:200], "type": type(value).__name__}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)[:200]


def serve(settings: dict[str, Any]) -> None:
    read_fd = int(settings["read_fd"])
    write_fd = int(settings["write_fd"])
    max_request = int(settings["max_request_bytes"])
    host = Host(settings)

    def send(message: Any) -> None:
        protocol.write_all(write_fd, protocol.encode(message))

    def emit_for(request_id: int) -> Callable[[int, list[str], bool], None]:
        def emit(start: int, encoded_items: list[str], done: bool) -> None:
            head = f'{{"id":{request_id},"start":{start},"done":{"true" if done else "false"},"results":['
            body = (head + ",".join(encoded_items) + "]}").encode()
            protocol.write_all(write_fd, protocol.pack(body))

        return emit

    while True:
        try:
            request = protocol.read_frame_blocking(read_fd, max_request)
        except EOFError:
            return
        request_id = int(request.get("id", 0))
        op = request.get("op")
        try:
            if op == "load":
                send({"id": request_id, "done": True, **host.load(request)})
            elif op == "time_verify":
                send({"id": request_id, "done": True, "ok": True, "seconds": host.time_verify(request)})
            elif op == "ping":
                send({"id": request_id, "done": True, "ok": True})
            else:
                host.run(str(op), request, emit_for(request_id))
        except BaseException as exc:
            send({"id": request_id, "done": True, "ok": False, **_error("exception", exc, "worker: ")})


def main(argv_settings: str) -> None:
    settings = _loads(argv_settings)
    apply_limits(settings)
    # fds 0-2 lead nowhere the parent reads (stdout to /dev/null, stderr to a capped log in the
    # scratch dir): a module that prints, even with os.write(1, ...), cannot corrupt the protocol.
    faulthandler.enable()
    seccomp_active = False
    if settings.get("seccomp"):
        from resyn.sandbox.seccomp import install_filter

        install_filter()
        seccomp_active = True
    protocol.write_all(
        int(settings["write_fd"]),
        protocol.encode(
            {"id": 0, "ready": True, "pid": os.getpid(), "uid": os.getuid(), "seccomp": seccomp_active}
        ),
    )
    serve(settings)
