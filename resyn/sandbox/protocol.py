"""Length-prefixed JSON frames between the parent and a sandbox worker.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. JSON and never
pickle: a compromised worker that could make the parent unpickle would own the parent. The reader
enforces a size cap before allocating, so a worker cannot make the parent buffer gigabytes.

The worker side uses plain blocking ``os.read``/``os.write``; the parent side
(:mod:`resyn.sandbox.process`) uses non-blocking fds with deadlines. This module is imported inside
the sandbox and therefore uses only the standard library.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")
#: Hard upper bound for a frame in either direction, whatever the configuration says.
ABSOLUTE_MAX_FRAME = 1 << 30


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed frame."""


def encode(message: Any) -> bytes:
    """Serialize ``message`` to a frame (compact JSON, NaN/Infinity refused)."""
    # No cycle check: messages are built by resyn from JSON data (a cycle would still fail, with
    # RecursionError), and the check costs a dict operation per list of a batch.
    body = json.dumps(message, separators=(",", ":"), allow_nan=False, check_circular=False).encode()
    return pack(body)


def pack(body: bytes) -> bytes:
    """Prefix an already encoded JSON body with its length."""
    if len(body) > ABSOLUTE_MAX_FRAME:
        raise ProtocolError(f"frame of {len(body)} bytes is larger than {ABSOLUTE_MAX_FRAME}")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"frame is not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("frame is nested too deeply to decode") from None


def write_all(fd: int, data: bytes) -> None:
    """Blocking write of the whole buffer (worker side)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes:
    """Blocking read of exactly ``size`` bytes (worker side); EOF raises EOFError."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the pipe")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame_blocking(fd: int, max_size: int) -> Any:
    """Blocking read of one frame (worker side)."""
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > max_size:
        raise ProtocolError(f"frame of {size} bytes exceeds the cap of {max_size}")
    return decode(read_exact(fd, size))
