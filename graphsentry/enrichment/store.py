"""The enrichment store contract shared by the Redis and in-memory stores.

A store answers, for one batch of events at once, three questions: what is known about these
apps (``AppInfo``), which autonomous system announces these IPs, and what profile
(``detectors.profile.Profile``) these principals had stored before a given time. It also
stores profiles — of principals leaving worker state, and of ``graphsentry warm`` — as
*versions* keyed by the newest event time each holds (:data:`PROFILE_VERSIONS` kept per
principal). A lookup asks for the newest version older than the principal's first event in
the batch, so a run that resumes from a snapshot after a crash never reads a version written
after that snapshot (it holds the events being processed again): the stored profile and the
snapshot agree. ``available`` is False while the backing service cannot be reached; callers
carry on without enrichment and say so. A failed write raises.
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
    profiles: dict[str, Any] = field(default_factory=dict)
    """principal key → the stored ``Profile`` (or None) asked for."""


PROFILE_VERSIONS = 3
"""Stored versions of one principal's profile (the newest kept)."""


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

    @property
    def durable(self) -> bool:
        """Whether stored profiles outlive this process (Redis: yes; memory: no)."""
        ...

    def lookup(self, app_ids: Iterable[str], ips: Iterable[str],
               profiles_before: Mapping[str, float]) -> Lookup:
        """Apps, ASNs, and per principal key the newest stored profile whose newest event is
        older than the given time."""
        ...

    def save_profiles(self, profiles: Mapping[str, Any]) -> int:
        """Store a version of each ``Profile`` (keyed by its ``last_seen``); raises
        ``GraphsentryError`` when the write fails."""
        ...

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


def profile_to_json(profile: Any) -> str:
    import json

    return json.dumps(profile.to_dict(), separators=(",", ":"), sort_keys=True,
                      default=_json_default)


def profile_from_json(text: str | bytes) -> Any:
    """A ``Profile`` from its stored JSON (None when unreadable: an older format, damage)."""
    import json

    from detectors.profile import Profile

    try:
        return Profile.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        return None


def version_field(last_seen: float | None) -> str:
    """The hash field of a stored profile version: its newest event time, fixed width."""
    return f"{(last_seen or 0.0):017.6f}"


def pick_version(fields: Mapping[str, Any], before: float) -> Any:
    """The value of the newest version whose newest event time is older than ``before``."""
    best: tuple[float, Any] | None = None
    for name, value in fields.items():
        try:
            last = float(name)
        except ValueError:
            continue
        if last < before and (best is None or last > best[0]):
            best = (last, value)
    return None if best is None else best[1]


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)
