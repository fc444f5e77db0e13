"""What a principal usually does, learned over days and queried only where it is sealed.

A :class:`Profile` belongs to one principal (a user across every app of the tenant, or one
service principal) and answers the detectors' "is this usual?" questions:

* **from where, with what, through which client**: networks (IPv4 /24, IPv6 /48), autonomous
  systems, user agents and client app ids, each with the event time it was *first* seen;
* **when**: requests per hour of the day over the last :data:`RING_DAYS` days;
* **how much**: per (app, measure) the peak value of closed detector windows, per day and per
  :data:`SLOTS_PER_DAY` slot of the day, over the last :data:`RING_DAYS` days (what the app
  usually reaches: downloads, mailboxes, drives, directory objects, bytes, ...).

**Sealed queries.** Records arrive up to the allowed lateness (2 h) late. Every query takes a
``before`` time and reads only what lies before it; callers pass a time at least one lateness
behind the event they judge (``window_start - lateness``). Everything before that time has
arrived already whatever the arrival order (within the lateness), so the answer is the same in
every order: first-seen times are minima, ring slots are maxima or sums of closed, final
windows. This is what makes baselines independent of arrival order (issue: the peak "taken at
another moment").

Bounded: each first-seen map holds at most :data:`MAX_ENTRIES` values (the oldest kept, an
order-independent choice), a ring holds at most :data:`RING_DAYS` days, and a principal keeps
at most :data:`MAX_MEASURES` measure rings (values too small to matter are never stored, see
:meth:`Profile.record`). Plain data that pickles; ``to_dict``/``from_dict`` give a JSON form.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from detectors.networks import network_of

DAY = 86_400.0
HOUR = 3_600.0
RING_DAYS = 14
"""Days of history a ring keeps (two weeks: weekly jobs are seen twice)."""
SLOTS_PER_DAY = 8
"""Slots of the day for measure rings: 3 hours each (a job's usual time, give or take)."""
SLOT_SECONDS = DAY / SLOTS_PER_DAY
MAX_ENTRIES = 256
MAX_MEASURES = 96
MAX_USER_AGENT_LENGTH = 256
FORMAT_VERSION = 2

K = TypeVar("K", str, int)


def remember(known: dict[K, float], key: K, ts: float, cap: int = MAX_ENTRIES) -> bool:
    """Record ``key`` first seen at ``ts`` (keeping the minimum); when full, keep the ``cap``
    oldest (ties by key), whatever the order of calls. True when ``key`` is new to the map."""
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


def known_before(known: Mapping[K, float], key: K, before: float) -> bool:
    """Whether ``key`` was first seen strictly before ``before``."""
    seen = known.get(key)
    return seen is not None and seen < before


class Ring:
    """Values per (day, slot of the day) for the last :data:`RING_DAYS` days (``float32``):
    ``put`` keeps the maximum, ``add`` sums. Day ``d`` lives in row ``d % RING_DAYS``; a row
    is reset when a newer day takes its place; writes older than the row's day are ignored.
    A row's array is allocated at its first write (most principals are active on few days)."""

    __slots__ = ("last", "per_day", "rows", "stamps")

    def __init__(self, per_day: int) -> None:
        self.per_day = per_day
        self.stamps = array("i", [-1] * RING_DAYS)
        self.rows: list[array[float] | None] = [None] * RING_DAYS
        """Row ``r``'s ``per_day`` values, or None while no day was written there."""
        self.last: tuple[float, float, array[float] | None, int] = (0.0, 0.0, None, 0)
        """(slot start, slot end, row, slot) of the last ``add``: the next one usually falls
        there (a cache; never persisted)."""

    def _slot(self, ts: float) -> tuple[array[float], int] | None:
        day = int(ts // DAY)
        row = day % RING_DAYS
        stamp = self.stamps[row]
        values = self.rows[row]
        if stamp != day or values is None:
            if stamp > day:
                return None  # older than what the ring keeps
            self.stamps[row] = day
            self.last = (0.0, 0.0, None, 0)  # a row was reset: the cached slot may be gone
            values = self.rows[row] = array("f", bytes(4 * self.per_day))
        return values, int((ts - day * DAY) * self.per_day // DAY)

    def put(self, ts: float, value: float) -> None:
        """Keep the maximum of ``value`` in the slot holding ``ts``."""
        found = self._slot(ts)
        if found is not None and value > found[0][found[1]]:
            found[0][found[1]] = value

    def add(self, ts: float, value: float = 1.0) -> None:
        start, end, values, i = self.last
        if values is None or not start <= ts < end:
            found = self._slot(ts)
            if found is None:
                return
            values, i = found
            width = DAY / self.per_day
            begin = (ts // width) * width
            self.last = (begin, begin + width, values, i)
        values[i] += value

    def value_at(self, ts: float) -> float:
        """The value of the slot holding ``ts`` (0.0 when the ring does not keep that day)."""
        day = int(ts // DAY)
        values = self.rows[day % RING_DAYS]
        if values is None or self.stamps[day % RING_DAYS] != day:
            return 0.0
        return values[int((ts - day * DAY) * self.per_day // DAY)]

    def _rows(self, before: float) -> list[tuple[array[float], int]]:
        """(values, sealed slots) for the days of the ring within :data:`RING_DAYS` days
        before ``before`` that have at least one slot ending at or before it."""
        last_day = int(before // DAY)
        rows = []
        for row, day in enumerate(self.stamps):
            values = self.rows[row]
            if values is None or day < 0 or day > last_day or day <= last_day - RING_DAYS:
                continue
            sealed = self.per_day if day < last_day else int(
                (before - day * DAY) * self.per_day // DAY)
            if sealed > 0:
                rows.append((values, sealed))
        return rows

    def _near(self, i: int, slot: int, spread: int) -> bool:
        distance = abs(i - slot) % self.per_day
        return min(distance, self.per_day - distance) <= spread

    def peak(self, before: float, slot: int | None = None, spread: int = 1) -> float:
        """The largest value in slots that ended by ``before``; with ``slot``, only in slots
        within ``spread`` of that slot of the day (circular)."""
        best = 0.0
        for values, sealed in self._rows(before):
            for i in range(sealed):
                if slot is not None and not self._near(i, slot, spread):
                    continue
                if values[i] > best:
                    best = values[i]
        return best

    def active_days(self, before: float) -> int:
        """Days with a non-zero sealed slot."""
        return sum(1 for values, sealed in self._rows(before)
                   if any(values[i] for i in range(sealed)))

    def days_active_at(self, before: float, slot: int, spread: int = 1) -> int:
        """Days with a non-zero sealed value within ``spread`` slots of ``slot``."""
        return sum(1 for values, sealed in self._rows(before)
                   if any(values[i] and self._near(i, slot, spread) for i in range(sealed)))

    def _flat(self) -> array[float]:
        """Every row's values in row order (zeros for rows never written)."""
        flat = array("f")
        for values in self.rows:
            flat.extend(values if values is not None else array("f", bytes(4 * self.per_day)))
        return flat

    def to_dict(self) -> dict[str, Any]:
        return {"per_day": self.per_day, "stamps": list(self.stamps),
                "values": base64.b64encode(self._flat().tobytes()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ring:
        per_day = int(data["per_day"])
        stamps = [int(s) for s in data["stamps"]]
        values = array("f")
        values.frombytes(base64.b64decode(data["values"]))
        if len(stamps) != RING_DAYS or len(values) != RING_DAYS * per_day:
            raise ValueError("profile: ring of the wrong size")
        return _ring_from_parts(per_day, array("i", stamps), values)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Ring) and self.per_day == other.per_day
                and self.stamps == other.stamps and self._flat() == other._flat())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ring_from_rows, (self.per_day, self.stamps, self.rows))


def _ring_from_rows(per_day: int, stamps: array[int], rows: list[array[float] | None]) -> Ring:
    ring = Ring.__new__(Ring)
    ring.per_day, ring.stamps, ring.rows = per_day, stamps, rows
    ring.last = (0.0, 0.0, None, 0)
    return ring


def _ring_from_parts(per_day: int, stamps: array[int], values: array[float]) -> Ring:
    """A ring from the flat form (row after row; the JSON form's ``values``): rows of days
    never written (stamp -1) stay unallocated."""
    rows: list[array[float] | None] = [
        None if stamps[row] < 0 else values[row * per_day:(row + 1) * per_day]
        for row in range(RING_DAYS)]
    return _ring_from_rows(per_day, stamps, rows)


def slot_of(ts: float) -> int:
    """The slot of the day (0 .. :data:`SLOTS_PER_DAY` - 1) holding ``ts``."""
    return int((ts % DAY) // SLOT_SECONDS)


def hour_of(ts: float) -> int:
    return int((ts % DAY) // HOUR)


MeasureKey = tuple[str, str, float]
"""(app id, measure name, window length in seconds)."""


@dataclass(slots=True)
class Profile:
    """One principal's learned behaviour (see the module docstring)."""

    first_seen: float | None = None
    last_seen: float | None = None
    events: int = 0
    networks: dict[str, float] = field(default_factory=dict)
    asns: dict[int, float] = field(default_factory=dict)
    user_agents: dict[str, float] = field(default_factory=dict)
    apps: dict[str, float] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    """Notable first-seen facts detectors remember (``Profile.mark``): ``credential:{target}``
    for a credential this principal added, ``grant:{kind}`` for a permission grant, the
    owner-added and authentication-method registration marks of their detectors."""
    hours: Ring = field(default_factory=lambda: Ring(24))
    """Requests per hour of the day."""
    measures: dict[MeasureKey, Ring] = field(default_factory=dict)
    recent: tuple[Any, float] | None = field(default=None, compare=False, repr=False)
    """((ip, asn, user agent, app), ts) of the last event that taught nothing new (a cache
    that lets the next identical event skip the look-ups; never persisted)."""
    answers: dict[tuple[Any, ...], bool] = field(default_factory=dict, compare=False,
                                                  repr=False)
    peaks: dict[tuple[Any, ...], float] = field(default_factory=dict, compare=False,
                                                repr=False)
    """Cached sealed answers (``established``, ``usual_hour``): a sealed answer never changes,
    and the rings have hour resolution, so one answer per sealed hour (never persisted)."""

    # -- learning ------------------------------------------------------------------------

    def observe(self, ts: float, ip: str | None, asn: int | None, user_agent: str | None,
                app_id: str) -> None:
        """Learn one (in-lateness, de-duplicated) event of this principal."""
        if self.first_seen is None or ts < self.first_seen:
            self.first_seen = ts
        if self.last_seen is None or ts > self.last_seen:
            self.last_seen = ts
        self.events += 1
        self.hours.add(ts)
        values = (ip, asn, user_agent, app_id)
        recent = self.recent
        if recent is not None and recent[0] == values and ts >= recent[1]:
            return
        learned = False
        network = network_of(ip)
        if network is not None:
            learned |= remember(self.networks, network, ts)
        if asn is not None:
            learned |= remember(self.asns, asn, ts)
        if user_agent:
            learned |= remember(self.user_agents, user_agent[:MAX_USER_AGENT_LENGTH], ts)
        learned |= remember(self.apps, app_id, ts)
        self.recent = None if learned else (values, ts)

    def mark(self, name: str, ts: float) -> None:
        """Remember that ``name`` happened at ``ts`` (first-seen)."""
        remember(self.marks, name, ts)

    def record(self, key: MeasureKey, start: float, value: float, minimum: float) -> None:
        """Keep a closed window's measure (``start``: the window start). Values below
        ``minimum`` are not stored: a detector passes the largest value that can never change
        a decision (e.g. ``floor / multiplier``), so quiet principals cost no ring."""
        if value < minimum or value <= 0:
            return
        ring = self.measures.get(key)
        if ring is None:
            if len(self.measures) >= MAX_MEASURES:
                return
            ring = self.measures[key] = Ring(1 if key[2] >= DAY else SLOTS_PER_DAY)
        ring.put(start, value)

    # -- sealed queries ------------------------------------------------------------------

    def established(self, before: float, min_days: int, min_age: float) -> bool:
        """Old and regular enough by ``before`` (rounded down to the hour): first seen at
        least ``min_age`` seconds before it and active on at least ``min_days`` days of the
        ring."""
        hour = int(before // HOUR)  # answers are per sealed hour: one per key, in any order
        before = hour * HOUR
        key = ("established", hour, min_days, min_age)
        answer = self.answers.get(key)
        if answer is None:
            answer = (self.first_seen is not None and self.first_seen <= before - min_age
                      and self.hours.active_days(before) >= min_days)
            self._cache(key, answer)
        return answer

    def _cache(self, key: tuple[Any, ...], answer: bool) -> None:
        if len(self.answers) >= 64:
            self.answers.clear()
        self.answers[key] = answer

    def peak(self, key: MeasureKey, before: float, at: float | None = None) -> float:
        """The principal's peak of a measure over windows closed by ``before`` (rounded down
        to a 3-hour slot boundary); with ``at`` (a time), only at that time of day (its slot
        and the neighbouring ones). 0.0 when it never reached the stored minimum."""
        ring = self.measures.get(key)
        if ring is None:
            return 0.0
        slot = None if at is None or ring.per_day == 1 else slot_of(at)
        # a sealed answer changes only when ``before`` crosses a slot boundary: cache it
        cache_key = ("peak", key, int(before // SLOT_SECONDS), slot)
        answer = self.peaks.get(cache_key)
        if answer is None:
            sealed = int(before // SLOT_SECONDS) * SLOT_SECONDS
            answer = self.peaks[cache_key] = ring.peak(sealed, slot)
            if len(self.peaks) > 256:
                self.peaks.clear()
                self.peaks[cache_key] = answer
        return answer

    def usual_hour(self, before: float, at: float, min_days: int = 2) -> bool:
        """Whether the principal was active within an hour of ``at``'s hour of the day on at
        least ``min_days`` days."""
        hour = int(before // HOUR)
        before = hour * HOUR
        key = ("usual", hour, hour_of(at), min_days)
        answer = self.answers.get(key)
        if answer is None:
            answer = self.hours.days_active_at(before, hour_of(at)) >= min_days
            self._cache(key, answer)
        return answer

    def knows_network(self, ip: str | None, before: float) -> bool | None:
        """True/False for a known/new network; None when ``ip`` has none."""
        network = network_of(ip)
        if network is None:
            return None
        return known_before(self.networks, network, before)

    def knows(self, kind: str, key: str | int, before: float) -> bool:
        """First seen before ``before`` in one of the first-seen maps (``networks``,
        ``asns``, ``user_agents``, ``apps``, ``marks``)."""
        known: Mapping[Any, float] = getattr(self, kind)
        return known_before(known, key, before)

    @staticmethod
    def saturated(known: Mapping[Any, float], before: float) -> bool:
        """Whether ``known`` held :data:`MAX_ENTRIES` keys first seen before ``before``: then a
        key missing from it may have been dropped (below that, every key first seen before
        ``before`` is kept). Sealed like every query: later keys never change the answer."""
        if len(known) < MAX_ENTRIES:
            return False
        return sum(1 for ts in known.values() if ts < before) >= MAX_ENTRIES

    # -- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (ASN keys as strings, measure keys as ``app|name|seconds``)."""
        return {
            "version": FORMAT_VERSION, "first_seen": self.first_seen,
            "last_seen": self.last_seen, "events": self.events,
            "networks": dict(self.networks),
            "asns": {str(k): v for k, v in self.asns.items()},
            "user_agents": dict(self.user_agents), "apps": dict(self.apps),
            "marks": dict(self.marks), "hours": self.hours.to_dict(),
            "measures": {f"{a}|{n}|{s:g}": r.to_dict() for (a, n, s), r in
                         sorted(self.measures.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`; raises ValueError naming what is wrong."""
        if not isinstance(data, Mapping) or data.get("version") != FORMAT_VERSION:
            raise ValueError("profile: not a version-2 profile object")
        try:
            profile = cls(first_seen=_opt_float(data.get("first_seen")),
                          last_seen=_opt_float(data.get("last_seen")),
                          events=int(data.get("events", 0)))
            for name in ("networks", "user_agents", "apps", "marks"):
                target: dict[str, float] = getattr(profile, name)
                for key, ts in dict(data.get(name) or {}).items():
                    remember(target, str(key), float(ts))
            for key, ts in dict(data.get("asns") or {}).items():
                remember(profile.asns, int(key), float(ts))
            profile.hours = Ring.from_dict(data["hours"])
            for key, ring in dict(data.get("measures") or {}).items():
                app, name, seconds = str(key).rsplit("|", 2)
                profile.measures[(app, name, float(seconds))] = Ring.from_dict(ring)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"profile: {type(exc).__name__}: {exc}") from None
        return profile


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
