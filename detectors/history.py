"""What a principal has done before: when it was first seen and from where, with what, on what.

Every remembered value maps to the event time it was *first* seen (the minimum over all
observations), so the history does not depend on arrival order. Each map is capped at
``MAX_ENTRIES``; when full it keeps the entries with the oldest first-seen time (ties broken by
value), i.e. the principal's longest-established knowledge, and drops newer values. That choice
is also order-independent: the result is always the ``MAX_ENTRIES`` oldest values, whatever the
order of observation or merging. A principal that saturates a map (e.g. hundreds of networks)
simply has no usable baseline for it; detectors check :meth:`PrincipalHistory.saturated`.

The engine keeps one history per principal in memory and in Redis (``to_dict``/``from_dict``,
JSON-safe) and hands detectors the history as it was *before* the current event.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from detectors.event import GraphEvent
from detectors.networks import network_of

MAX_ENTRIES = 256
MAX_USER_AGENT_LENGTH = 256
FORMAT_VERSION = 1

# Directory families whose reads are discovery (users, groups, apps, roles, tenant settings);
# ``me`` is left out: nearly every delegated client reads its own profile.
DISCOVERY_FAMILIES = frozenset({
    "organization", "users", "groups", "applications", "servicePrincipals", "directoryRoles",
    "roleManagement", "devices", "policies", "domains", "directoryObjects",
    "oauth2PermissionGrants", "administrativeUnits", "identity", "auditLogs",
})

K = TypeVar("K", str, int)


def _remember(known: dict[K, float], key: K, ts: float, cap: int = MAX_ENTRIES) -> bool:
    """Record ``key`` first seen at ``ts`` (keeping the minimum); when full, keep the oldest.
    True when ``key`` is new to the map."""
    seen = known.get(key)
    if seen is not None:
        if ts < seen:
            known[key] = ts
        return False
    if type(key) is str:
        key = sys.intern(key)  # one copy across principals
    if len(known) < cap:
        known[key] = ts
        return True
    newest = max(known, key=lambda k: (known[k], k))
    if (ts, key) < (known[newest], newest):
        del known[newest]
        known[key] = ts
        return True
    return False


@dataclass(slots=True)
class PrincipalHistory:
    first_seen: float | None = None
    last_seen: float | None = None
    event_count: int = 0
    networks: dict[str, float] = field(default_factory=dict)
    asns: dict[int, float] = field(default_factory=dict)
    user_agents: dict[str, float] = field(default_factory=dict)
    families: dict[str, float] = field(default_factory=dict)
    write_templates: dict[str, float] = field(default_factory=dict)
    recent: tuple[Any, float] | None = field(default=None, compare=False, repr=False)
    """((ip, asn, user agent, family), ts) of an event that taught nothing new: a later event
    with the same values cannot either, so it skips the lookups (a cache; never persisted)."""

    def observe(self, event: GraphEvent, asn: int | None = None) -> bool:
        """Account one event; True when it taught the history a new value. Families and
        networks count whatever the status (an attempt is behaviour too); write templates only
        count successful (2xx) writes."""
        ts = event.ts
        if self.first_seen is None or ts < self.first_seen:
            self.first_seen = ts
        if self.last_seen is None or ts > self.last_seen:
            self.last_seen = ts
        self.event_count += 1
        learned = False
        values = (event.ip, asn, event.user_agent, event.family)
        recent = self.recent
        if recent is None or recent[0] != values or ts < recent[1]:
            network = network_of(event.ip)
            if network is not None:
                learned |= _remember(self.networks, network, ts)
            if asn is not None:
                learned |= _remember(self.asns, asn, ts)
            if event.user_agent:
                learned |= _remember(self.user_agents,
                                     event.user_agent[:MAX_USER_AGENT_LENGTH], ts)
            if event.family:
                learned |= _remember(self.families, event.family, ts)
            self.recent = None if learned else (values, ts)
        if event.is_write and 200 <= event.status < 300:
            learned |= _remember(self.write_templates, event.template, ts)
        return learned

    def established(self, ts: float, min_age_seconds: float, min_events: int) -> bool:
        """Old and busy enough at ``ts`` for a deviation from it to mean something."""
        return (self.first_seen is not None and self.first_seen <= ts - min_age_seconds
                and self.event_count >= min_events)

    @staticmethod
    def knew_before(known: Mapping[K, float], key: K, ts: float) -> bool:
        """Whether ``key`` had been seen at or before ``ts`` (a late event may predate it)."""
        seen = known.get(key)
        return seen is not None and seen <= ts

    @staticmethod
    def saturated(known: Mapping[Any, float]) -> bool:
        return len(known) >= MAX_ENTRIES

    def directory_families_before(self, ts: float) -> list[str]:
        """Directory families this principal had touched at or before ``ts`` (sorted)."""
        return sorted(f for f, seen in self.families.items()
                      if f in DISCOVERY_FAMILIES and seen <= ts)

    def merge(self, other: PrincipalHistory) -> PrincipalHistory:
        """Combine two views of one principal (e.g. Redis and memory) into a new history.

        First-seen times take the minimum and ``last_seen`` the maximum, so merging is
        commutative, associative and idempotent. ``event_count`` takes the maximum: both views
        usually counted the same events, and summing would double count; the cost is an
        undercount when they counted disjoint events, which only delays ``established``.
        """
        merged = PrincipalHistory.from_dict(self.to_dict())
        merged.first_seen = _min_optional(self.first_seen, other.first_seen)
        merged.last_seen = _max_optional(self.last_seen, other.last_seen)
        merged.event_count = max(self.event_count, other.event_count)
        for mine, theirs in ((merged.networks, other.networks),
                             (merged.user_agents, other.user_agents),
                             (merged.families, other.families),
                             (merged.write_templates, other.write_templates)):
            for key, ts in theirs.items():
                _remember(mine, key, ts)
        for asn, ts in other.asns.items():
            _remember(merged.asns, asn, ts)
        return merged

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (ASN keys become strings)."""
        return {
            "version": FORMAT_VERSION,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "event_count": self.event_count,
            "networks": dict(self.networks),
            "asns": {str(asn): ts for asn, ts in self.asns.items()},
            "user_agents": dict(self.user_agents),
            "families": dict(self.families),
            "write_templates": dict(self.write_templates),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrincipalHistory:
        """Inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"history: expected an object, got {type(data).__name__}")
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"history: unsupported version {version!r}")
        count = data.get("event_count", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"history: event_count must be a non-negative integer, got {count!r}")
        history = cls(first_seen=_time_or_none(data, "first_seen"),
                      last_seen=_time_or_none(data, "last_seen"), event_count=count)
        for name in ("networks", "user_agents", "families", "write_templates"):
            target: dict[str, float] = getattr(history, name)
            for key, ts in _time_map(data, name).items():
                _remember(target, key, ts)
        for key, ts in _time_map(data, "asns").items():
            try:
                asn = int(key)
            except ValueError:
                raise ValueError(f"history: asns key {key!r} is not an integer") from None
            _remember(history.asns, asn, ts)
        return history


def _time(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"history: {where} must be a number, got {value!r}")
    return float(value)


def _time_or_none(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    return None if value is None else _time(value, name)


def _time_map(data: Mapping[str, Any], name: str) -> dict[str, float]:
    raw = data.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"history: {name} must be an object, got {type(raw).__name__}")
    return {str(key): _time(ts, f"{name}[{key!r}]") for key, ts in raw.items()}


def _min_optional(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max_optional(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)
