"""The enrichment store contract shared by the Redis and in-memory stores.

A store answers, for one batch of events at once, three questions: what is known about these
apps (``AppInfo``), which autonomous system announces these IPs, and what history these
principals had before (``detectors.history.PrincipalHistory``). It also persists histories.
``available`` is False while the backing service cannot be reached; callers carry on without
enrichment and say so in their alerts.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from detectors.base import AppInfo

# Microsoft's tenants: apps they own are first-party (Microsoft Services, Microsoft corp).
FIRST_PARTY_TENANTS = frozenset({
    "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
})


@dataclass(frozen=True, slots=True)
class AsnRange:
    """One announced address range (inclusive ends, as integers) and its AS."""

    start: int
    end: int
    asn: int
    name: str
    version: int  # 4 or 6

    def member(self) -> str:
        return f"{self.start}|{self.end}|{self.asn}|{self.name}"

    @classmethod
    def from_member(cls, member: str, version: int) -> AsnRange:
        start, end, asn, name = member.split("|", 3)
        return cls(int(start), int(end), int(asn), name, version)


@dataclass(slots=True)
class Lookup:
    """The answer for one batch. Missing keys mean "unknown" (or unreachable, see available)."""

    available: bool = True
    apps: dict[str, AppInfo] = field(default_factory=dict)
    asns: dict[str, tuple[int, str]] = field(default_factory=dict)
    histories: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadReport:
    """What a loader did: counts and the first bad lines (line number, reason)."""

    loaded: int = 0
    skipped: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    bad_count: int = 0
    max_reported: int = 20

    def reject(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < self.max_reported:
            self.bad.append((line, reason))

    def summary(self, what: str) -> str:
        lines = [f"{what}: loaded {self.loaded}, skipped {self.skipped}, bad {self.bad_count}"]
        lines += [f"  line {n}: {reason}" for n, reason in self.bad]
        if self.bad_count > len(self.bad):
            lines.append(f"  ... and {self.bad_count - len(self.bad)} more bad lines")
        return "\n".join(lines)


AppEntry = AppInfo | tuple[AppInfo, str | None]
"""An app, optionally with its servicePrincipalType (kept for display only)."""


def app_entry(item: AppEntry) -> tuple[AppInfo, str | None]:
    return item if isinstance(item, tuple) else (item, None)


@runtime_checkable
class EnrichmentStore(Protocol):
    @property
    def available(self) -> bool: ...

    def lookup(self, app_ids: Iterable[str], ips: Iterable[str],
               principal_keys: Iterable[str]) -> Lookup: ...

    def save_histories(self, histories: Mapping[str, Any]) -> int: ...

    def put_apps(self, apps: Iterable[AppEntry]) -> int: ...

    def put_asn_ranges(self, ranges: Iterable[AsnRange]) -> int: ...

    def get_app(self, app_id: str) -> AppInfo | None: ...

    def close(self) -> None: ...


_MISSING = object()


class TTLCache:
    """A bounded LRU whose entries also expire after ``ttl`` seconds (negative results too)."""

    def __init__(self, maxsize: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The cached value, or ``default`` (``TTLCache.MISSING``) when absent or expired."""
        item = self._data.get(key)
        if item is None:
            return default
        if item[0] < self._clock():
            del self._data[key]
            return default
        self._data.move_to_end(key)
        return item[1]

    def put(self, key: str, value: Any) -> None:
        if self.maxsize <= 0 or self.ttl <= 0:
            return
        self._data[key] = (self._clock() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    MISSING = _MISSING


def ip_key(ip: str) -> tuple[int, int] | None:
    """(version, integer) of an IP address, or None when it is not one."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None:
        addr = mapped
    return addr.version, int(addr)


def history_to_json(history: Any) -> str:
    import json

    data = history if isinstance(history, Mapping) else history.to_dict()
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=_json_default)


def history_from_json(text: str | bytes) -> Any:
    """A ``PrincipalHistory`` from its stored JSON (None when unreadable)."""
    import json

    from detectors.history import PrincipalHistory

    try:
        return PrincipalHistory.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)
