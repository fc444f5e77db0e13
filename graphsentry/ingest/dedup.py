"""Bounded-memory de-duplication: Event Hub delivery is at-least-once.

Keeps a stable 64-bit digest of the last ``capacity`` distinct keys in a ring (first in, first
out) plus a set: O(1) per key, about 90 bytes per remembered key (~90 MB at the default
1,000,000). The digest is stable across processes, so a pickled Deduplicator (Bytewax state)
still recognises keys after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

DEFAULT_CAPACITY = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Deduplicator:
    __slots__ = ("_next", "_ring", "_seen", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ring: list[int] = []
        self._seen: set[int] = set()
        self._next = 0

    def __len__(self) -> int:
        return len(self._ring)

    def seen(self, key: str | bytes) -> bool:
        """True if ``key`` is among the last ``capacity`` distinct keys; remembers it if not."""
        data = key.encode("utf-8", "surrogatepass") if isinstance(key, str) else key
        digest = int.from_bytes(blake2b(data, digest_size=8).digest(), "big")
        if digest in self._seen:
            return True
        if len(self._ring) < self.capacity:
            self._ring.append(digest)
        else:
            self._seen.discard(self._ring[self._next])
            self._ring[self._next] = digest
            self._next = (self._next + 1) % self.capacity
        self._seen.add(digest)
        return False


def dedup_key(record: Mapping[str, Any]) -> str:
    """The identity of one request: request_id + time_generated (datetime or epoch µs)."""
    time = record["time_generated"]
    micros = (time - _EPOCH) // _MICROSECOND if isinstance(time, datetime) else int(time)
    return f"{record['request_id']}|{micros}"
