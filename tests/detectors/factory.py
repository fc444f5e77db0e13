"""One event factory for every detector test, and one way to run detectors: the real engine.

``event(...)``/``delegated(...)`` give a :class:`GraphEvent` with sensible defaults; pass the
fields the case is about. ``run(detector, events)`` feeds the events through
:class:`~graphsentry.engine.DetectionEngine` with only that detector (clock, lateness, window
closing, profile learning and the alert layer all real) and returns every :class:`Signal` the
detector produced, provisional and final (the input is flushed at the end, as at end of
input). ``history(...)`` builds the days before ``T0`` a baseline is learnt from, so tests
exercise the same sealed queries production does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from detectors.base import AppInfo, Detector, Learning, Signal
from detectors.event import GraphEvent
from detectors.profile import Profile
from graphsentry.alerting.exceptions import ExceptionSet
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.engine import (
    NO_PARTS,
    CtxParts,
    DetectionEngine,
    Emits,
    EngineSettings,
    PrincipalState,
)

T0 = 1_767_225_600.0
"""2026-01-01T00:00:00Z (a Thursday): a window boundary for every window length."""
DAY = 86_400.0
HOUR = 3_600.0
LATENESS = 7_200.0
TENANT = "11111111-1111-1111-1111-111111111111"
APP = "22222222-2222-2222-2222-222222222222"
SP = "33333333-3333-3333-3333-333333333333"
USER = "44444444-4444-4444-4444-444444444444"
OTHER_APP = "55555555-5555-5555-5555-555555555555"
OTHER_SP = "66666666-6666-6666-6666-666666666666"
OTHER_USER = "77777777-7777-7777-7777-777777777777"
GRAPH = "https://graph.microsoft.com/v1.0"
HOME_IP = "203.0.113.10"
NEW_IP = "198.51.100.77"
WALL_CLOCK = T0 + 365 * DAY
"""The wall clock the engine is given (events are never 'in the future' unless a test says)."""

_BASE = GraphEvent(
    ts=T0, request_id="req-0", tenant_id=TENANT, app_id=APP, principal_id=SP,
    identity_type="app_only", method="GET", uri=f"{GRAPH}/organization",
    template="/organization", family="organization", category="directory", status=200,
    size=1000, service_principal_id=SP, ip=HOME_IP, user_agent="azure-sdk-for-python/1.0",
)

_counter = 0


def event(**overrides: Any) -> GraphEvent:
    """A GraphEvent (app-only, ``GET /organization`` from ``HOME_IP`` at ``T0``) with a fresh
    request id; pass the fields the case is about."""
    global _counter
    _counter += 1
    overrides.setdefault("request_id", f"req-{_counter:07d}")
    return replace(_BASE, **overrides)


def delegated(**overrides: Any) -> GraphEvent:
    """A delegated (user token) event of ``USER``."""
    overrides.setdefault("identity_type", "delegated")
    overrides.setdefault("principal_id", USER)
    overrides.setdefault("user_id", USER)
    overrides.setdefault("service_principal_id", None)
    overrides.setdefault("user_agent", "Mozilla/5.0 (Windows NT 10.0) Teams/24000")
    return event(**overrides)


def like(base: GraphEvent, /, **overrides: Any) -> GraphEvent:
    """``base`` with a fresh request id and ``overrides`` (same principal, app, ...)."""
    global _counter
    _counter += 1
    overrides.setdefault("request_id", f"req-{_counter:07d}")
    return replace(base, **overrides)


def directory_write(template: str, target: str, *, method: str = "POST",
                    family: str = "directory", status: int = 201, make: Any = event,
                    **overrides: Any) -> GraphEvent:
    """A write to a directory object at ``T0 + 10 h``: ``template`` with ``{id}`` replaced by
    ``target`` (also the event's ``target_application``); built by ``make`` (``event`` or
    ``delegated``)."""
    fields: dict[str, Any] = {
        "ts": T0 + 10 * HOUR, "method": method, "template": template,
        "uri": f"{GRAPH}{template.replace('{id}', target)}", "family": family,
        "category": "directory", "is_write": True, "status": status,
        "target_application": target,
    }
    fields.update(overrides)
    return make(**fields)


# -- history: the days a baseline is learnt from ----------------------------------------------

def routine(days: int = 5, hours: Sequence[int] = (9, 10, 11, 14, 15), *, end: float = T0,
            per_hour: int = 2, make: Callable[..., GraphEvent] = event,
            **fields: Any) -> list[GraphEvent]:
    """Quiet everyday activity (``GET /organization``, 1 kB) at ``hours`` of each of the
    ``days`` days before ``end``: makes the principal *established* (active on ≥ 3 days, first
    seen ≥ 2 days earlier) with ``HOME_IP`` as its network and those hours as its usual time."""
    out = []
    for d in range(days, 0, -1):
        day = end - d * DAY
        for h in hours:
            for i in range(per_hour):
                out.append(make(ts=day + h * HOUR + 60 + i * 600, **fields))
    return out


def daily(make: Callable[[float], list[GraphEvent]], days: int, at: float,
          end: float = T0) -> list[GraphEvent]:
    """``make(start)`` for ``start`` = ``at`` seconds into each of the ``days`` days before
    ``end`` (a recurring job's history)."""
    return [e for d in range(days, 0, -1) for e in make(end - d * DAY + at)]


# -- running detectors through the engine -----------------------------------------------------

class Recorder(DetectionEngine):
    """The real engine, keeping the :class:`Signal` objects it hands to the alert layer."""

    def __init__(self, detectors: list[Detector], settings: EngineSettings | None = None,
                 exceptions: ExceptionSet | None = None) -> None:
        super().__init__(detectors, settings, exceptions, clock=lambda: WALL_CLOCK)
        self.captured: list[Signal] = []

    def _alert(self, state: PrincipalState, signals: list[Signal], parts: CtxParts,
               out: Emits) -> None:
        self.captured.extend(signals)
        super()._alert(state, signals, parts, out)


def settings(lateness: float = LATENESS, learning: Learning | None = None,
             policy: AlertPolicy | None = None, **other: Any) -> EngineSettings:
    return EngineSettings(lateness=lateness, learning=learning or Learning(),
                          policy=policy or AlertPolicy(), **other)


@dataclass
class Result:
    """What a run produced: signals (objects, emission order), wire outputs, states."""

    signals: list[Signal]
    out: Emits
    states: dict[str, PrincipalState]
    engine: Recorder

    def of(self, detector: str | None = None, *, final: bool | None = None,
           since: float | None = None) -> list[Signal]:
        """Signals of ``detector`` (all when None), only final / provisional ones when
        ``final`` is given, only windows starting at or after ``since``."""
        return [s for s in self.signals
                if (detector is None or s.detector == detector)
                and (final is None or s.final is final)
                and (since is None or s.window_start >= since)]

    def finals(self, since: float | None = None) -> list[Signal]:
        return self.of(final=True, since=since)

    def lengths(self, since: float | None = None) -> list[float]:
        """Window lengths (seconds) of the final signals, sorted."""
        return sorted(s.window_end - s.window_start for s in self.finals(since))

    def final(self, length: float, since: float | None = None) -> Signal:
        """The one final signal of windows of ``length`` (fails unless there is exactly one)."""
        [found] = [s for s in self.finals(since) if s.window_end - s.window_start == length]
        return found

    def ids(self) -> set[str]:
        return {s.signal_id for s in self.signals}

    def alerts(self) -> dict[str, dict[str, Any]]:
        """The last version of every alert, by alert id."""
        last: dict[str, dict[str, Any]] = {}
        for alert in self.out.alerts:
            last[alert["alert_id"]] = alert
        return last

    def profile(self, principal: str = SP, tenant: str = TENANT) -> Profile:
        return self.states[f"{tenant}/{principal}"].profile


@dataclass
class Runner:
    """Feed events one by one into an engine that keeps its states between calls."""

    engine: Recorder
    parts: Callable[[GraphEvent], CtxParts] = lambda _e: NO_PARTS
    states: dict[str, PrincipalState] = field(default_factory=dict)
    out: Emits = field(default_factory=Emits)

    def feed(self, events: Iterable[GraphEvent]) -> Runner:
        for e in events:
            state = self.states.get(e.principal_key)
            if state is None:
                state = self.states[e.principal_key] = self.engine.new_state()
            self.engine.process(state, e, self.parts(e), self.out)
        return self

    def flush(self) -> Runner:
        for key in sorted(self.states):
            self.engine.flush(self.states[key], self.out)
        return self

    def result(self) -> Result:
        return Result(self.engine.captured, self.out, self.states, self.engine)


def run(detectors: Detector | Sequence[Detector], events: Iterable[GraphEvent], *,
        app: AppInfo | None = None, asn: int | None = None,
        parts: Callable[[GraphEvent], CtxParts] | None = None, flush: bool = True,
        engine: Recorder | None = None, **engine_settings: Any) -> Result:
    """Feed ``events`` (in the given arrival order) through the engine with ``detectors``;
    ``app``/``asn``: what enrichment says about every event (or ``parts`` per event)."""
    chosen = [detectors] if isinstance(detectors, Detector) else list(detectors)
    engine = engine or Recorder(chosen, settings(**engine_settings))
    if parts is None:
        fixed = CtxParts(asn=asn, app=app)
        parts = lambda _e: fixed  # noqa: E731
    runner = Runner(engine, parts).feed(events)
    if flush:
        runner.flush()
    return runner.result()


def in_time_order(events: Iterable[GraphEvent]) -> list[GraphEvent]:
    return sorted(events, key=lambda e: (e.ts, e.request_id))


def shuffled(events: Sequence[GraphEvent], seed: int) -> list[GraphEvent]:
    """The same events in another (reproducible) arrival order (ignores the lateness)."""
    out = list(events)
    random.Random(seed).shuffle(out)
    return out


def delayed(events: Iterable[GraphEvent], delays: Sequence[float]) -> list[GraphEvent]:
    """Arrival order when event i (in time order) is delivered ``delays[i]`` seconds after its
    time (ties: time order). With every delay within ``[0, lateness]`` no event arrives after
    an event more than ``lateness`` newer than itself."""
    ordered = in_time_order(events)
    keyed = sorted(range(len(ordered)), key=lambda i: (ordered[i].ts + delays[i], i))
    return [ordered[i] for i in keyed]
