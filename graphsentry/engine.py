"""Per-principal detection: event time, duplicates, profile, detectors, alert layer.

One :class:`PrincipalState` per Bytewax key ``tenant_id/principal_id`` — a delegated user
across every app of the tenant, or one service principal — holds everything the engine knows
about that principal: its clock (newest event time), the request ids seen within the
lateness, its :class:`~detectors.profile.Profile`, one detector state per (detector, app),
and its :class:`~graphsentry.alerting.book.AlertBook`. It is plain data and pickles (Bytewax
snapshots it). For each event, :meth:`DetectionEngine.process`:

1. **rejects** an event time more than ``max_future_skew`` ahead of the wall clock (it would
   move the principal's clock and make every later event late);
2. adopts the principal's **stored profile** when the state is new and the enrichment step
   brought one (a principal evicted earlier, or warmed from history);
3. **late**: ``ts < clock - lateness`` → counted and returned as late; only the
   ``windowless`` detectors (single events: a credential added is a credential added) still
   examine it, and the profile does not learn it (what it learned before stays sealed);
4. **duplicate**: the same ``request_id`` at the same time already seen → dropped;
5. when the clock's watermark (``clock - lateness``) passes the end of open windows, the
   detectors **close** them: final signals, and measures into the profile;
6. the detectors that accept the event observe it (provisional signals), with
   :class:`~detectors.base.Facts` judged against the profile sealed at ``ts - lateness``;
   then the profile learns the event;
7. every signal goes through the **alert layer** (exceptions, risk, promotion, lifecycle).

No Bytewax, Kafka or Redis here.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from detectors.base import (
    ALL_APPS,
    NO_FACTS,
    AppInfo,
    Detector,
    DetectorMeta,
    DetectorState,
    EventContext,
    Facts,
    Learning,
    Signal,
    Who,
    shape_of,
)
from detectors.event import GraphEvent
from detectors.microsoft import privileges
from detectors.networks import network_of
from detectors.profile import MAX_USER_AGENT_LENGTH, Profile, known_before
from graphsentry.alerting.book import AlertBook, AlertLayer
from graphsentry.alerting.exceptions import ExceptionSet
from graphsentry.alerting.policy import AlertPolicy

if TYPE_CHECKING:
    from graphsentry.config import Config

CLOSE_SLACK = 1800.0
"""Event-time seconds windows may stay open past the watermark before a close pass (one pass
per half hour of a principal's clock rather than one per event); baselines are sealed that
much earlier (``EventContext.close_slack``), so the answer stays the same in every order."""
EXPIRE_EVERY = 600.0
"""Event-time seconds between passes that forget old request ids and alert-book entries."""
SHAPE_CACHE_SIZE = 65_536


class CtxParts(NamedTuple):
    """What the enrichment step learned for one event (see ``graphsentry.enrichment``)."""

    asn: int | None = None
    asn_name: str | None = None
    app: AppInfo | None = None
    available: bool = True
    profile: Profile | None = None
    """The principal's stored profile, sent when its state may be new in this process."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the class and its values (cheaper than the namedtuple default, which goes
        through ``copyreg.__newobj__``): it travels with its event (``GraphEvent.__reduce__``)."""
        return (CtxParts, tuple(self))


NO_PARTS = CtxParts()


@dataclass(slots=True)
class Emits:
    """What processing produced: signal and alert dicts (wire shape), late events, rejects."""

    signals: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    late: list[GraphEvent] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class AppState:
    who: Who
    detectors: dict[str, DetectorState] = field(default_factory=dict)
    info: AppInfo | None = None
    """What enrichment said about this app (its own events' ``CtxParts.app``): the context of
    the final signals its windows give when they close, whichever event or flush closes them."""


@dataclass(slots=True)
class PrincipalState:
    """Everything known about one principal (the Bytewax state of its key)."""

    max_ts: float = -math.inf
    profile: Profile = field(default_factory=Profile)
    apps: dict[str, AppState] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    book: AlertBook | None = None
    """Its signals and alerts, from its first signal on."""
    next_close: float = math.inf
    expired_at: float = -math.inf
    key: str = ""
    """``tenant_id/principal_id``, set by the first event."""
    adopted: bool = False
    """True once a stored profile was adopted or the state learned its first event."""


@dataclass
class EngineCounters:
    events: int = 0
    late: int = 0
    duplicates: int = 0
    future: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    """Distinct alerts by the detector of their latest version (``+alerts`` drops the zeros
    a regraded alert leaves)."""
    alert_updates: int = 0
    suppressed_signals: int = 0
    profiles_adopted: int = 0
    """Principals that started from a stored profile (back after eviction, or learned by
    ``graphsentry warm``)."""
    started: float = field(default_factory=time.monotonic)


Dispatch = tuple[tuple[str, Detector, bool], ...]
"""Detectors to run for one event shape, in catalog order: (id, detector, ask per event)."""


@dataclass(frozen=True)
class EngineSettings:
    """What the engine needs from the configuration (``from_config``)."""

    lateness: float = 7200.0
    max_future_skew: float = 900.0
    learning: Learning = field(default_factory=Learning)
    seen_capacity: int = 200_000
    policy: AlertPolicy = field(default_factory=AlertPolicy)


class DetectionEngine:
    def __init__(self, detectors: list[Detector], settings: EngineSettings | None = None,
                 exceptions: ExceptionSet | None = None,
                 clock: Any = time.time) -> None:
        self.settings = settings or EngineSettings()
        self.detectors = detectors
        self.meta: dict[str, DetectorMeta] = {d.meta.id: d.meta for d in detectors}
        self.layer = AlertLayer(self.settings.policy, self.meta, exceptions)
        self.lateness = self.settings.lateness
        self.clock = clock
        self._by_shape: dict[tuple[Any, ...], Dispatch] = {}
        self._by_id = {d.meta.id: d for d in detectors}
        self.counters = EngineCounters()

    @classmethod
    def from_config(cls, config: Config) -> DetectionEngine:
        """Detectors, alert policy and exceptions from a ``graphsentry.config.Config``."""
        from graphsentry.engine_config import engine_from_config

        return engine_from_config(cls, config)

    def new_state(self) -> PrincipalState:
        return PrincipalState()

    def min_idle_eviction(self) -> float:
        """The shortest idle time (event time) after which a principal may leave worker state
        without changing any result: its last event is then older than the lateness plus its
        longest window (every window it has is final), plus the alert horizon (no later signal
        correlates with its old ones), plus the close slack."""
        longest = max((w for d in self.detectors for w in _windows(d)), default=0.0)
        return (self.lateness + longest + self.settings.policy.horizon_seconds + CLOSE_SLACK)

    # -- one event ---------------------------------------------------------------------------

    def process(self, state: PrincipalState, event: GraphEvent, parts: CtxParts,
                out: Emits, now: float | None = None) -> None:
        """Account ``event`` of the principal whose state is ``state``; append to ``out``."""
        counters = self.counters
        ts = event.ts
        if ts > (self.clock() if now is None else now) + self.settings.max_future_skew:
            if not state.adopted and parts.profile is not None:
                self._adopt(state, event, parts.profile)  # the stored profile comes only once
            counters.future += 1
            out.rejects.append(future_reject(event, self.settings.max_future_skew))
            return
        counters.events += 1
        if not state.adopted:
            self._adopt(state, event, parts.profile)
        seen = state.seen
        request_id = event.request_id
        if seen.get(request_id) == ts:  # a copy of an event already processed, late or not
            counters.duplicates += 1
            return
        seen[request_id] = ts
        if len(seen) > self.settings.seen_capacity:
            del seen[next(iter(seen))]
        lateness = self.lateness
        if ts < state.max_ts - lateness:
            counters.late += 1
            out.late.append(event)
            self._late(state, event, parts, out)
            return
        if ts > state.max_ts:
            state.max_ts = ts
            watermark = ts - lateness
            if watermark >= state.next_close + CLOSE_SLACK:
                self.close(state, watermark, parts, out)
            if ts - state.expired_at >= EXPIRE_EVERY:
                self._expire(state, watermark)
                state.expired_at = ts

        dispatch = self._dispatch(event)
        if dispatch:
            profile = state.profile
            facts = self.facts(profile, event, parts.asn)
            ctx = EventContext(profile, parts.asn, parts.asn_name, parts.app, parts.available,
                               lateness, facts, self.settings.learning, CLOSE_SLACK)
            own_app = state.apps.get(event.app_id)
            signals: list[Signal] = []
            for det_id, detector, ask in dispatch:
                if ask and not detector.accepts(event, facts):
                    continue
                if detector.principal_wide:
                    app = state.apps.get(ALL_APPS)
                    if app is None:
                        who = Who.of(event)
                        app = state.apps[ALL_APPS] = AppState(
                            Who(who.tenant_id, who.principal_id, who.identity_type, ALL_APPS,
                                who.user_id, who.service_principal_id))
                else:
                    app = own_app
                    if app is None:
                        app = own_app = state.apps[event.app_id] = AppState(Who.of(event))
                det_state = app.detectors.get(det_id)
                if det_state is None:
                    det_state = app.detectors[det_id] = detector.new_state()
                found = detector.observe(det_state, event, ctx, app.who)
                if found:
                    signals.extend(found)
                if det_state.next_close < state.next_close:
                    state.next_close = det_state.next_close
            if own_app is not None and parts.app is not None:
                own_app.info = parts.app
            if signals:
                self._alert(state, signals, parts, out)
        state.profile.observe(ts, event.ip, parts.asn, event.user_agent, event.app_id)

    def _adopt(self, state: PrincipalState, event: GraphEvent, profile: Profile | None) -> None:
        """The principal's first event in this state: adopt its stored profile, if it came."""
        state.adopted = True
        state.key = event.principal_key
        if profile is not None:
            state.profile = profile
            self.counters.profiles_adopted += 1

    def facts(self, profile: Profile, event: GraphEvent, asn: int | None) -> Facts:
        """What the event says about its principal, against the profile sealed at
        ``ts - lateness`` (so the same in every arrival order within the lateness)."""
        sealed = event.ts - self.lateness
        learning = self.settings.learning
        new_network, known_network, new_client = None, None, False
        if profile.established(sealed, learning.min_days, learning.min_age_seconds):
            network = network_of(event.ip)
            if network is not None:
                if known_before(profile.networks, network, sealed):
                    known_network = network
                elif not (asn is not None and known_before(profile.asns, asn, sealed)) and \
                        not profile.saturated(profile.networks, sealed):
                    new_network = network
            agent = (event.user_agent or "")[:MAX_USER_AGENT_LENGTH]
            new_client = not known_before(profile.apps, event.app_id, sealed) or (
                event.identity_type == "app_only" and bool(agent)
                and not known_before(profile.user_agents, agent, sealed)
                and not profile.saturated(profile.user_agents, sealed))
        privilege = privilege_of(event)
        notable = (new_network is not None or new_client or privilege != "low"
                   or asn is not None)
        if not notable and known_network is None:
            return NO_FACTS
        return Facts(new_network, new_client, privilege, asn, known_network, notable)

    def _dispatch(self, event: GraphEvent) -> Dispatch:
        shape = shape_of(event)
        dispatch = self._by_shape.get(shape)
        if dispatch is None:
            dispatch = tuple((d.meta.id, d, not d.shape_filtered or d.refined)
                             for d in self.detectors
                             if not d.shape_filtered or d.accepts_shape(event))
            if len(self._by_shape) >= SHAPE_CACHE_SIZE:
                self._by_shape.clear()
            self._by_shape[shape] = dispatch
        return dispatch

    def _late(self, state: PrincipalState, event: GraphEvent, parts: CtxParts,
              out: Emits) -> None:
        """Windowless detectors on an event later than the lateness (no state, no learning)."""
        facts = self.facts(state.profile, event, parts.asn)
        ctx = EventContext(state.profile, parts.asn, parts.asn_name, parts.app,
                           parts.available, self.lateness, facts, self.settings.learning,
                           CLOSE_SLACK)
        who = Who.of(event)
        signals: list[Signal] = []
        for _, detector, ask in self._dispatch(event):
            if detector.windowless and (not ask or detector.accepts(event, facts)):
                signals.extend(detector.observe_late(event, ctx, who))
        if signals:
            self._alert(state, signals, parts, out)

    # -- windows closing, alerts -------------------------------------------------------------

    def close(self, state: PrincipalState, watermark: float, parts: CtxParts,
              out: Emits) -> None:
        """Finalize every window of the principal that ends at or before ``watermark``."""
        next_close = math.inf
        by_id = self._by_id
        for app in state.apps.values():
            ctx: EventContext | None = None
            signals: list[Signal] = []
            for det_id, det_state in list(app.detectors.items()):
                if watermark >= det_state.next_close:
                    detector = by_id.get(det_id)
                    if detector is None:  # no longer enabled
                        del app.detectors[det_id]
                        continue
                    if ctx is None:
                        ctx = EventContext(state.profile, None, None, app.info,
                                           parts.available, self.lateness, NO_FACTS,
                                           self.settings.learning, CLOSE_SLACK)
                    signals.extend(detector.close(det_state, watermark, ctx, app.who))
                    if not det_state.slots:
                        del app.detectors[det_id]
                        continue
                if det_state.next_close < next_close:
                    next_close = det_state.next_close
            if signals and ctx is not None:
                self._alert(state, signals, parts._replace(app=ctx.app), out)
        state.next_close = next_close

    def flush(self, state: PrincipalState, out: Emits) -> None:
        """Close every open window (end of a bounded input, or before eviction)."""
        if state.next_close < math.inf:
            self.close(state, math.inf, NO_PARTS, out)

    def _alert(self, state: PrincipalState, signals: list[Signal], parts: CtxParts,
               out: Emits) -> None:
        book = state.book
        if book is None:  # the principal's first signal (most principals never have one)
            who = signals[0].who
            book = state.book = AlertBook(who.tenant_id, who.principal_id, who.identity_type,
                                          who.user_id, who.service_principal_id)
        layer, counters = self.layer, self.counters
        for signal in signals:
            extra = directory_exceptions(signal, parts.app)
            record, alerts = layer.on_signal(book, signal, parts.app, parts.available, extra)
            out.signals.append(record)
            counters.signals[signal.detector] += 1
            if record["suppressed_by"]:
                counters.suppressed_signals += 1
            for alert in alerts:
                if alert["alert_id"] in layer.created:
                    counters.alerts[alert["detector"]] += 1
                counters.alert_updates += 1
                out.alerts.append(alert)
            for before, now in layer.regraded:  # counted under the detector of its latest version
                counters.alerts[before] -= 1
                counters.alerts[now] += 1
            layer.created.clear()
            layer.regraded.clear()

    def _expire(self, state: PrincipalState, watermark: float) -> None:
        # Request ids are kept in arrival order, close to time order: drop from the front
        # while they are older than the watermark (a late one may stay a while longer; it
        # only ever matches a duplicate of itself, and the capacity bounds the dict).
        seen = state.seen
        old = []
        for request_id, ts in seen.items():
            if ts >= watermark:
                break
            old.append(request_id)
        for request_id in old:
            del seen[request_id]
        if state.book is not None:
            self.layer.expire(state.book, watermark)


def _windows(detector: Detector) -> list[float]:
    """Every window length a detector uses (from its parameters)."""
    params = getattr(detector, "params", None)
    lengths = list(getattr(params, "windows", ()) or ())
    for name in ("window_seconds", "user_agent_window_seconds"):
        value = getattr(params, name, None)
        if isinstance(value, int | float):
            lengths.append(float(value))
    return lengths


def future_reject(event: GraphEvent, skew: float) -> dict[str, Any]:
    """The dead letter of an event dated too far in the future."""
    from graphsentry.alerting.render import to_datetime

    return {"reason": f"future_timestamp: time_generated {to_datetime(event.ts).isoformat()} "
                      f"is more than {skew:.0f} s ahead of the wall clock",
            "raw": f"request_id={event.request_id} principal={event.principal_key}",
            "source": "detect_threats"}


def directory_exceptions(signal: Signal, app: AppInfo | None) -> tuple[str, ...]:
    """Permanent exceptions from the app directory: an allowed app, or a detector it
    suppresses (``graphsentry enrich load-apps``)."""
    if app is None or app.app_id != signal.who.app_id:
        return ()
    if app.allowed:
        return (f"directory:allow:{app.app_id}",)
    if signal.detector in app.suppressed_detectors:
        return (f"directory:suppress:{app.app_id}:{signal.detector}",)
    return ()


def privilege_of(event: GraphEvent) -> str:
    """The privilege tier of the event's token (``detectors.microsoft``), ``low`` without one."""
    if not event.roles and not event.scopes:
        return "low"
    return _privilege_tier(event.roles, event.scopes)


@lru_cache(maxsize=4096)
def _privilege_tier(roles: tuple[str, ...] | None, scopes: tuple[str, ...] | None) -> str:
    return str(privileges(" ".join(roles) if roles else None,
                          " ".join(scopes) if scopes else None).tier)
