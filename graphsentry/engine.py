"""Per-key detection: event time, duplicates, principal history, detectors, chain → alerts.

One :class:`KeyState` per key (``tenant_id/app_id``) holds everything the detectors know about
that app's principals; it is plain data and pickles (Bytewax snapshots it). A
:class:`DetectionEngine` holds the configured detectors and processes one event at a time:

1. adopt the principal's stored history if the enrichment step brought one;
2. **late**: ``event.ts < max_ts - allowed_lateness`` → counted and returned as late, not
   detected (windows that old are gone);
3. **duplicate**: the same ``request_id`` at the same time already seen for this key → dropped;
4. detectors see the event with the history as it was before it, then the history learns it;
5. findings that are not suppressed feed the attack chain; both become alert dicts;
6. whenever ``max_ts`` has advanced by a window (at least a quarter of the lateness) since
   the last pass, expired detector windows, chain hits and remembered request ids are dropped.

No Bytewax, Kafka or Redis here.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from detectors.base import AppInfo, Detector, DetectorMeta, EventContext, Finding
from detectors.event import GraphEvent
from detectors.history import PrincipalHistory
from graphsentry.alerts import alert_from_finding

if TYPE_CHECKING:
    from graphsentry.config import Config

DEFAULT_EXPIRE_EVERY = 600.0


class CtxParts(NamedTuple):
    """What the enrichment step learned for one event (see ``graphsentry.enrichment``)."""

    asn: int | None = None
    asn_name: str | None = None
    app: AppInfo | None = None
    available: bool = True
    history: PrincipalHistory | None = None
    """The stored history, sent with a principal's first event in this process only."""


NO_PARTS = CtxParts()


class EngineOutput(NamedTuple):
    alerts: list[dict[str, Any]]
    late: bool = False
    duplicate: bool = False
    history: tuple[str, PrincipalHistory] | None = None
    """(principal key, history) to persist, when it learned something or is due."""


NOTHING = EngineOutput([])
"""What ``process`` returns for the usual event: nothing to emit (compare with ``is``)."""
_LATE = EngineOutput([], late=True)
_DUPLICATE = EngineOutput([], duplicate=True)


@dataclass(slots=True)
class PrincipalState:
    history: PrincipalHistory = field(default_factory=PrincipalHistory)
    detectors: dict[str, Any] = field(default_factory=dict)
    unsaved: int = 0
    last_ts: float = float("-inf")
    """Newest event time of this principal (lets an expiry pass skip quiet principals)."""


@dataclass(slots=True)
class KeyState:
    """Everything known about one tenant/app key."""

    max_ts: float = float("-inf")
    expired_at: float = float("-inf")
    watermark: float = float("-inf")
    """The watermark of the last expiry pass."""
    principals: dict[str, PrincipalState] = field(default_factory=dict)
    chain: Any = None
    seen: dict[str, float] = field(default_factory=dict)
    """request_id → event time, for duplicate suppression within the lateness horizon."""


@dataclass
class EngineCounters:
    events: int = 0
    late: int = 0
    duplicates: int = 0
    suppressed: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)


def _window_of(detector: Detector) -> float | None:
    """The detector's window length (attribute or parameter), None for windowless ones
    (whose state does not age with the watermark, e.g. ``new_origin``)."""
    for owner in (detector, getattr(detector, "params", None)):
        length = getattr(owner, "window_seconds", None)
        if isinstance(length, (int, float)) and length > 0:
            return float(length)
    return None


# Detectors to run for one event shape, in catalog order: (id, detector, ask accepts per event).
Dispatch = tuple[tuple[str, Detector, bool], ...]
SHAPE_CACHE_SIZE = 65_536


class DetectionEngine:
    def __init__(self, config: Config) -> None:
        """``config`` is a ``graphsentry.config.Config``."""
        import detectors.catalog as catalog

        overrides = config.detectors.params
        self.detectors: list[Detector] = catalog.build_detectors(
            overrides, config.detectors.enabled_ids)
        self.chain = catalog.build_chain(overrides)
        self.stage_of: dict[str, str] = dict(catalog.stage_of)
        self.meta: dict[str, DetectorMeta] = {d.meta.id: d.meta for d in self.detectors}
        self.meta[self.chain.meta.id] = self.chain.meta
        self._by_id: dict[str, Detector] = {d.meta.id: d for d in self.detectors}
        self._by_shape: dict[tuple[Any, ...], Dispatch] = {}
        self.save_every = int(config.state.history_save_every)
        self.seen_capacity = int(config.state.seen_capacity)
        self.suppressed_apps = frozenset(a.lower() for a in config.suppress.apps)
        self.suppressed_principals = frozenset(p.lower() for p in config.suppress.principals)
        self.lateness = float(config.time.allowed_lateness_seconds)
        windows = [w for d in self.detectors if (w := _window_of(d)) is not None]
        # Expiry passes cost a visit of every state: one per quarter of the lateness (windows
        # linger at most that long past the watermark) or per window, whichever is longer.
        self.expire_every = max(min(windows, default=DEFAULT_EXPIRE_EVERY), self.lateness / 4)
        self.longest_window = max(windows, default=DEFAULT_EXPIRE_EVERY)
        self.counters = EngineCounters()

    def new_state(self) -> KeyState:
        return KeyState(chain=self.chain.new_state())

    def process(self, state: KeyState, event: GraphEvent,
                parts: CtxParts = NO_PARTS) -> EngineOutput:
        counters = self.counters
        counters.events += 1
        principals = state.principals
        principal = principals.get(event.principal_id)
        if parts.history is not None:  # the stored history, with the first event we see
            if principal is None:
                principal = principals[event.principal_id] = PrincipalState(parts.history)
            else:  # we had started afresh (store unreachable, or resumed state)
                principal.history = principal.history.merge(parts.history)
        ts = event.ts
        if ts < state.max_ts - self.lateness:
            counters.late += 1
            return _LATE
        seen = state.seen
        request_id = event.request_id
        if seen.get(request_id) == ts:
            counters.duplicates += 1
            return _DUPLICATE
        seen[request_id] = ts
        if len(seen) > self.seen_capacity:  # oldest arrivals go first
            del seen[next(iter(seen))]
        if principal is None:
            principal = principals[event.principal_id] = PrincipalState()

        history = principal.history
        ctx = EventContext(history, parts.asn, parts.asn_name, parts.app, parts.available)
        shape = (event.family, event.category, event.template, event.method, event.status,
                 event.is_write, event.is_download)  # detectors.base.shape_of, inlined
        dispatch = self._by_shape.get(shape)
        if dispatch is None:
            dispatch = self._dispatch(shape, event, ctx)
        findings: list[Finding] = []
        states = principal.detectors
        for det_id, detector, ask in dispatch:  # the hot loop
            if ask and not detector.accepts(event, ctx):
                continue
            det_state = states.get(det_id)
            if det_state is None:  # a principal gets a state once a detector accepts
                det_state = states[det_id] = detector.new_state()
            found = detector.observe_accepted(det_state, event, ctx)
            if found:
                findings.extend(found)
        if ts > principal.last_ts:
            principal.last_ts = ts
        alerts = self._alerts(state, findings, ctx) if findings else []

        principal.unsaved += 1
        update = None
        if history.observe(event, parts.asn) or principal.unsaved >= self.save_every:
            principal.unsaved = 0
            update = (event.principal_key, history)

        if ts > state.max_ts:
            state.max_ts = ts
            if ts - state.expired_at >= self.expire_every:
                self.expire(state, ts - self.lateness)
                state.expired_at = ts
        if not alerts and update is None:
            return NOTHING
        return EngineOutput(alerts, history=update)

    def _dispatch(self, shape: tuple[Any, ...], event: GraphEvent,
                  ctx: EventContext) -> Dispatch:
        """The detectors that can care about events of this shape (cached per shape)."""
        dispatch = tuple((d.meta.id, d, not d.shape_filtered) for d in self.detectors
                         if not d.shape_filtered or d.accepts(event, ctx))
        if len(self._by_shape) >= SHAPE_CACHE_SIZE:
            self._by_shape.clear()
        self._by_shape[shape] = dispatch
        return dispatch

    def _suppressed(self, finding: Finding, app: AppInfo | None) -> bool:
        if finding.app_id.lower() in self.suppressed_apps or (
                finding.principal_id.lower() in self.suppressed_principals):
            return True
        return app is not None and (app.allowed or finding.detector in app.suppressed_detectors)

    def _alerts(self, state: KeyState, findings: list[Finding],
                ctx: EventContext) -> list[dict[str, Any]]:
        kept = [f for f in findings if not self._suppressed(f, ctx.app)]
        self.counters.suppressed += len(findings) - len(kept)
        if kept:
            chained = self.chain.observe_findings(state.chain, kept, self.stage_of)
            for incident in chained:
                if self._suppressed(incident, ctx.app):
                    self.counters.suppressed += 1
                else:
                    kept.append(incident)
        alerts = [alert_from_finding(f, self.meta[f.detector], ctx) for f in kept]
        self.counters.alerts.update(f.detector for f in kept)
        return alerts

    def expire(self, state: KeyState, watermark: float) -> None:
        """Drop what ends before ``watermark`` (``max_ts - lateness``) in every state."""
        by_id = self._by_id
        # A principal quiet since before the last pass had its windows expired then already.
        quiet_before = state.watermark - self.longest_window
        state.watermark = watermark
        for principal in state.principals.values():
            states = principal.detectors
            if not states or principal.last_ts < quiet_before:
                continue
            for det_id in [d for d, s in states.items()
                           if d not in by_id or by_id[d].expire(s, watermark)]:
                del states[det_id]  # empty, or of a detector no longer enabled
        self.chain.expire(state.chain, watermark)
        seen = state.seen
        for request_id in [r for r, ts in seen.items() if ts < watermark]:
            del seen[request_id]
