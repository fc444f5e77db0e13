"""Single-event rules: one request is enough; repeats within a window make one signal.

A rule implements ``candidate(event)`` (shape fields only) and ``match(event, ctx) -> Match |
None``. Matches of one (principal, app, ``Match.dedup``) within a tumbling window (default
1 h) make one signal: provisional at the first match to arrive, final when the window closes,
with the evidence of the *earliest* match (by event time, then request id), the count of
matches and the highest severity and fidelity among them — all independent of arrival order.

These rules are ``windowless``: an event later than the allowed lateness is still examined
(a credential added is a credential added, however late it is logged); it makes its own final
signal, keyed by its request id.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import Activity
from detectors.base import (
    FIDELITIES,
    NO_TRAIL,
    Detector,
    DetectorState,
    EventContext,
    Facts,
    Signal,
    Slot,
    SlotKey,
    Trail,
    Who,
    higher,
)
from detectors.event import GraphEvent


def succeeded_2xx(event: GraphEvent) -> bool:
    """A change that took effect: 2xx only (a 3xx is no proof of a write)."""
    return 200 <= event.status < 300


@dataclass(frozen=True, slots=True)
class Match:
    dedup: str
    evidence: dict[str, Any]
    severity: str | None = None
    fidelity: str | None = None
    title: str | None = None


@dataclass(slots=True)
class Matches:
    """The matches of one (window, dedup key): the earliest, how many, the highest grades, and
    the attributes of all of them (addresses, user agents, templates, the smallest request
    ids): what the signal rests on, the same in every arrival order."""

    first: tuple[float, str, Match] | None = None
    count: int = 0
    last_seen: float = float("-inf")
    severity: str = "low"
    fidelity: str = "low"
    attributes: Activity = field(default_factory=Activity)


class SingleEventDetector(Detector):
    """See the module docstring."""

    window_seconds: float = 3600.0
    shape_filtered = True
    windowless = True

    @abstractmethod
    def candidate(self, event: GraphEvent) -> bool:
        """Whether ``match`` may return a hit for this event (shape fields only)."""

    @abstractmethod
    def match(self, event: GraphEvent, ctx: EventContext) -> Match | None:
        """The signal content when ``event`` is a hit, else None."""

    def learn(self, event: GraphEvent, hit: Match, ctx: EventContext) -> None:
        """Remember an in-lateness hit in the principal's profile (e.g. a mark that makes the
        next one recurring); never called for events later than the lateness."""

    def accepts(self, event: GraphEvent, facts: Facts) -> bool:
        return self.candidate(event)

    def _account(self, acc: Matches, event: GraphEvent, hit: Match) -> None:
        acc.count += 1
        order = (event.ts, event.request_id)
        if acc.first is None or order < acc.first[:2]:
            acc.first = (event.ts, event.request_id, hit)
        acc.last_seen = max(acc.last_seen, event.ts)
        acc.severity = higher(hit.severity or self.meta.severity, acc.severity)
        acc.fidelity = higher(hit.fidelity or self.meta.fidelity, acc.fidelity, FIDELITIES)
        acc.attributes.count(event)

    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        hit = self.match(event, ctx)
        if hit is None:
            return []
        self.learn(event, hit, ctx)
        length = self.window_seconds
        key = (length, (event.ts // length) * length, hit.dedup)
        slot = state.slots.get(key)
        if slot is None:
            slot = self.slot(state, key, Matches(), ctx, hour_aware=False)
        self._account(slot.acc, event, hit)
        slot.trail = slot.trail.with_facts(ctx.facts)
        if slot.fired:
            return []
        slot.fired = True
        return [self._signal(who, key, slot.acc, slot.trail, slot.learning, ctx, final=False,
                             latest=(event.ts, hit))]

    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        out = []
        for key in self.ended(state, watermark):
            slot = state.slots.pop(key)
            out.append(self._signal(who, key, slot.acc, slot.trail, slot.learning, ctx,
                                    final=True))
        return out

    def observe_late(self, event: GraphEvent, ctx: EventContext, who: Who) -> list[Signal]:
        hit = self.match(event, ctx)
        if hit is None:
            return []
        length = self.window_seconds
        key = (length, (event.ts // length) * length, f"{hit.dedup}|late|{event.request_id}")
        acc = Matches()
        self._account(acc, event, hit)
        trail = NO_TRAIL.with_facts(ctx.facts)
        return [self._signal(who, key, acc, trail, False, ctx, final=True)]

    def _signal(self, who: Who, key: SlotKey, acc: Matches, trail: Trail, learning: bool,
                ctx: EventContext, *, final: bool,
                latest: tuple[float, Match] | None = None) -> Signal:
        assert acc.first is not None
        first_ts, _, first = acc.first
        ts, hit = latest if latest is not None else (first_ts, first)
        evidence = dict(hit.evidence)
        evidence["matches"] = acc.count
        evidence.update(acc.attributes.attribute_evidence())
        slot = Slot(acc, trail, True, learning)
        return self.signal(who, key, slot, evidence, first=first_ts,
                           last=acc.last_seen if final else ts, final=final, count=acc.count,
                           severity=acc.severity if final else hit.severity,
                           fidelity=acc.fidelity if final else hit.fidelity,
                           title=hit.title, ctx=ctx)


def grade(ctx: EventContext, mark: str | None, event: GraphEvent, first: tuple[str, str],
          usual: tuple[str, str] = ("low", "low"),
          definitive: bool = False) -> tuple[str, str, bool]:
    """(severity, fidelity, recurring) of a sensitive change, from the principal's profile
    sealed at ``event.ts - lateness``:

    * **recurring** — the principal did this before (``mark`` first seen by then): ``usual``;
    * from a network new to an established principal: (critical, high) — (high, medium) when
      recurring;
    * **first time** by an established principal: ``first`` (a sensitive write its history
      never had);
    * first time while the principal is still **learning** (no history to compare with):
      ``first`` with its fidelity at most medium — a signal, not an alert on its own — unless
      ``definitive`` (the change is alarming whatever the history, e.g. a credential added to
      another principal's application)."""
    profile = ctx.profile
    sealed = event.ts - ctx.lateness
    recurring = (mark is not None and profile is not None
                 and profile.knows("marks", mark, sealed))
    if ctx.facts.new_network is not None:
        return ("high", "medium", recurring) if recurring else ("critical", "high", False)
    if recurring:
        return (*usual, True)
    learning = ctx.learning
    if not definitive and first[1] == "high" and (profile is None or not profile.established(
            sealed, learning.min_days, learning.min_age_seconds)):
        return (first[0], "medium", False)
    return (*first, False)
