"""Seeds that never repeat: a keyed permutation of a seed range, indexed by draw count."""

from __future__ import annotations

import hashlib

__all__ = ["SeedPermutation"]


class SeedPermutation:
    """A keyed bijection of ``[0, size)``: a four-round Feistel network over the smallest even
    bit width that covers ``size``, walked until it lands inside (cycle walking). Index k of a
    stream maps to a distinct seed for every k < size, and the map can be inverted."""

    _ROUNDS = 4

    def __init__(self, key: str, size: int) -> None:
        if size < 1:
            raise ValueError("a seed range must hold at least one seed")
        self.size = size
        bits = max(2, (size - 1).bit_length())
        bits += bits % 2
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._keys = [hashlib.sha256(f"resyn-curriculum-seeds:{key}:{r}".encode()).digest() for r in range(4)]

    def _f(self, value: int, round_key: bytes) -> int:
        digest = hashlib.blake2b(value.to_bytes(8, "big"), key=round_key, digest_size=8).digest()
        return int.from_bytes(digest, "big") & self._mask

    def _encrypt(self, value: int) -> int:
        left, right = value >> self._half, value & self._mask
        for round_key in self._keys:
            left, right = right, left ^ self._f(right, round_key)
        return (left << self._half) | right

    def _decrypt(self, value: int) -> int:
        left, right = value >> self._half, value & self._mask
        for round_key in reversed(self._keys):
            left, right = right ^ self._f(left, round_key), left
        return (left << self._half) | right

    def __call__(self, index: int) -> int:
        """The seed at position ``index`` (``0 <= index < size``)."""
        if not 0 <= index < self.size:
            raise IndexError(f"seed index {index} outside [0, {self.size})")
        value = self._encrypt(index)
        while value >= self.size:
            value = self._encrypt(value)
        return value

    def index(self, seed: int) -> int:
        """The position of ``seed`` in the stream (the inverse of calling it)."""
        if not 0 <= seed < self.size:
            raise IndexError(f"seed {seed} outside [0, {self.size})")
        value = self._decrypt(seed)
        while value >= self.size:
            value = self._decrypt(value)
        return value
