"""The contract every detector follows: metadata, signals, context, and provisional → final.

A detector is a small class with typed parameters (a frozen dataclass ``Params`` with
documented defaults), a ``meta`` (:class:`DetectorMeta`) and per-(principal, app) state that
pickles. The engine calls

* ``accepts(event, facts)`` — a cheap filter (per event shape when ``shape_filtered``);
* ``observe(state, event, ctx) -> list[Signal]`` — account an event, return *provisional*
  signals whose evidence just crossed;
* ``close(state, watermark, ctx) -> list[Signal]`` — return the *final* signals of the
  windows that ended at or before the watermark (``max event time - allowed lateness``, so
  nothing more can arrive for them) and forget those windows.

**Determinism.** A signal's id (:func:`signal_id`) is a hash of detector, principal, app,
window and dedup key. Whether a signal exists must not depend on arrival order (within the
lateness) or duplication: accumulators are monotone (counts, distinct sets, maxima) and every
baseline or "already known" question is asked of the :class:`~detectors.profile.Profile` only
before ``window start - lateness`` (sealed: complete in every arrival order). The *final*
signal's evidence is a function of the window's events alone; a provisional signal says what
had crossed when it fired. Nothing here imports Bytewax, Kafka or Redis.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from detectors.event import GraphEvent
from detectors.profile import Profile

SEVERITIES = ("low", "medium", "high", "critical")
FIDELITIES = ("low", "medium", "high")
"""How often a signal of this kind is an attack when it fires: ``high`` alerts on its own,
``medium``/``low`` only through accumulated risk (``graphsentry.alerting``)."""
STAGES = ("initial_access", "discovery", "collection", "exfiltration", "persistence",
          "privilege_escalation", "credential_access", "defense_evasion")
PRIVILEGE_TIERS = ("low", "medium", "high", "critical")
SAMPLE_SIZE = 10


@dataclass(frozen=True, slots=True)
class DetectorMeta:
    """Rule metadata in the style of Elastic detection-rules / Sigma."""

    id: str
    title: str
    description: str
    severity: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    stage: str | None
    fidelity: str = "medium"
    false_positives: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppInfo:
    """What the app directory (enrichment) knows about an application."""

    app_id: str
    display_name: str | None = None
    owner_tenant_id: str | None = None
    first_party: bool = False
    allowed: bool = False
    suppressed_detectors: frozenset[str] = frozenset()
    object_id: str | None = None
    """The application object id in the tenant (``/applications/{object id}``), when known."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the class and its values (the frozen-dataclass default looks its fields
        up on every call): it travels with events between Bytewax processes."""
        return (AppInfo, app_info_values(self))


app_info_values: Callable[[AppInfo], tuple[Any, ...]] = attrgetter(
    *(f.name for f in fields(AppInfo)))
"""An app's field values in field order: ``AppInfo(*app_info_values(a)) == a``."""


class Facts(NamedTuple):
    """What one event says about its principal, judged against the profile sealed at
    ``event.ts - lateness`` (the same in every arrival order). Built once per event."""

    new_network: str | None = None
    """The event's network, when the principal is established and never used it (nor its
    ASN) before."""
    new_client: bool = False
    """The event's user agent or client app is new for an established principal."""
    privilege: str = "low"
    """Privilege tier of the token's roles/scopes (``PRIVILEGE_TIERS``)."""
    asn: int | None = None
    """The event IP's autonomous system, when the ASN table knows it."""
    known_network: str | None = None
    """The event's network when the principal is established and used it before."""
    notable: bool = False
    """True when anything above matters for a signal's context (a new network or client, a
    privileged token, an ASN): windows skip the rest otherwise."""


NO_FACTS = Facts()


@dataclass(frozen=True, slots=True)
class Learning:
    """When a principal counts as established (outside its learning period)."""

    min_days: int = 3
    """Days with activity in the profile (of the last 14)."""
    min_age_seconds: float = 2 * 86_400.0
    """Time since the principal was first seen."""


LEARNING = Learning()


class EventContext(NamedTuple):
    """Per-event context handed to detectors next to the event (a NamedTuple: cheap to
    build). ``profile`` is the principal's profile: query it only before
    ``window start - lateness`` (see :mod:`detectors.profile`)."""

    profile: Profile | None = None
    asn: int | None = None
    asn_name: str | None = None
    app: AppInfo | None = None
    enrichment_available: bool = True
    lateness: float = 7200.0
    facts: Facts = NO_FACTS
    learning: Learning = LEARNING
    close_slack: float = 0.0
    """How far behind the watermark the engine may leave windows unclosed (their measures
    not yet in the profile): baselines are sealed at ``start - lateness - close_slack``."""


EMPTY_CONTEXT = EventContext()


@dataclass(frozen=True, slots=True)
class Who:
    """The principal (and app) a detector state belongs to."""

    tenant_id: str
    principal_id: str
    identity_type: str
    app_id: str
    user_id: str | None = None
    service_principal_id: str | None = None

    @classmethod
    def of(cls, event: GraphEvent) -> Who:
        return cls(event.tenant_id, event.principal_id, event.identity_type, event.app_id,
                   event.user_id, event.service_principal_id)


@dataclass(frozen=True, slots=True)
class SignalContext:
    """Deterministic context of a signal, used for its risk (``graphsentry.alerting.risk``)."""

    learning: bool = False
    """The principal was not established when the window started (learning period)."""
    new_network: str | None = None
    """Smallest network of the window's events that was new for the principal."""
    new_client: bool = False
    unusual_hour: bool | None = None
    """The window started at a time of day the principal is not active at (None: n/a)."""
    privilege: str = "low"
    first_party_app: bool = False
    asns: tuple[int, ...] = ()
    """Autonomous systems of the signal's events (the smallest few), when known."""
    asn_unknown: bool = False
    """Some of the signal's events had no known autonomous system (so an ASN-scoped
    exception cannot cover it, whatever ``asns`` lists)."""


ALL_APPS = "*"
"""The app of a principal-wide state (and of its signals' ids)."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A detector finding (``schemas/graph_signal.avsc``). ``final`` is False while the
    window may still grow (provisional) and True once it closed; the id stays the same."""

    detector: str
    who: Who
    window_start: float
    window_end: float
    first_seen: float
    last_seen: float
    evidence: dict[str, Any]
    severity: str
    fidelity: str
    final: bool
    context: SignalContext = SignalContext()
    title: str | None = None
    dedup: str = ""
    count: int = 1
    """Events the signal rests on (requests in the window, or matching events)."""
    id_app: str | None = None
    """The app the id is made with when it is not ``who.app_id``: :data:`ALL_APPS` for a
    principal-wide detector, which names in ``who`` the app of the evidence it chose (that app
    may change while the window is open; the id must not)."""

    @property
    def signal_id(self) -> str:
        w = self.who
        return signal_id(self.detector, w.tenant_id, w.principal_id, self.id_app or w.app_id,
                         self.window_end - self.window_start, self.window_start, self.dedup)

    @property
    def principal_key(self) -> str:
        return f"{self.who.tenant_id}/{self.who.principal_id}"


def signal_id(detector: str, tenant_id: str, principal_id: str, app_id: str, length: float,
              start: float, dedup: str = "") -> str:
    """Deterministic id: a hash of what identifies the signal, never of arrival order."""
    text = "|".join(("signal", detector, tenant_id, principal_id, app_id, f"{length:.0f}",
                     f"{start:.0f}", dedup))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def window_start(ts: float, length: float) -> float:
    """Start of the tumbling window of ``length`` seconds (aligned to the epoch) holding ts."""
    return (ts // length) * length


def sample(values: Iterable[str], size: int = SAMPLE_SIZE) -> list[str]:
    """An arrival-order-independent sample: the smallest ``size`` values."""
    return sorted(values)[:size]


def higher(a: str, b: str, order: tuple[str, ...] = SEVERITIES) -> str:
    """The higher of two levels of ``order``."""
    return a if order.index(a) >= order.index(b) else b


SHAPE_FIELDS = ("family", "category", "template", "method", "status", "is_write",
                "is_download")
"""The event fields that decide whether a shape-filtered detector accepts an event."""


def shape_of(event: GraphEvent) -> tuple[Any, ...]:
    """The values of :data:`SHAPE_FIELDS`: events of one shape are accepted by the same
    shape-filtered detectors (the engine caches that answer per shape)."""
    return (event.family, event.category, event.template, event.method, event.status,
            event.is_write, event.is_download)


TRAIL_ASNS = 8
V = TypeVar("V")


class Shared(Generic[V]):
    """One object per equal value, for the immutable values many principals hold (slot keys,
    trails): a principal keeps a reference, not a copy. A bounded table, emptied when it holds
    ``cap`` values (objects already handed out stay what they are)."""

    __slots__ = ("cap", "table")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.table: dict[V, V] = {}

    def __call__(self, value: V) -> V:
        found = self.table.get(value)
        if found is None:
            if len(self.table) >= self.cap:
                self.table.clear()
            found = self.table[value] = value
        return found


def restore(obj: Any, state: Any) -> dict[str, Any]:
    """Set a slots object's fields from its pickled ``state`` (``(None, {field: value})``),
    skipping fields the class no longer has; returns those (an earlier version's layout,
    for the caller to translate). Lets a Bytewax snapshot of an earlier release resume."""
    fields = dict(state[1] if isinstance(state, tuple) else state)
    left = {}
    for name, value in fields.items():
        try:
            object.__setattr__(obj, name, value)
        except AttributeError:
            left[name] = value
    return left


class Trail(NamedTuple):
    """The signal context a window accumulates from its events (monotone: flags only turn
    on, the smallest new network and the highest privilege win). Immutable and shared:
    :meth:`with_facts` returns the trail itself when an event adds nothing, and equal trails
    are one object (:class:`Shared`), so the many windows whose events were ordinary cost
    no trail of their own."""

    new_network: str | None = None
    new_client: bool = False
    privilege: str = "low"
    asns: tuple[int, ...] = ()
    """The smallest :data:`TRAIL_ASNS` autonomous systems of the window's events."""
    unknown_asn: bool = False
    """An event without a known autonomous system was seen."""

    def with_facts(self, facts: Facts) -> Trail:
        """This trail with one more event's facts."""
        asn = facts.asn
        if not facts.notable:  # the usual event: nothing new, nothing privileged
            if asn is not None or self.unknown_asn:
                return self
            if self is NO_TRAIL:
                return UNKNOWN_ASN_TRAIL
            return _interned(Trail(self.new_network, self.new_client, self.privilege,
                                   self.asns, True))
        if asn is None and facts.new_network is None and not facts.new_client:
            # a privileged event without a known AS (no ASN table, or an unknown address),
            # often the first of a window: the answer depends on the trail and the privilege
            key = (self, facts.privilege)
            found = _PRIVILEGE_ONLY.get(key)
            if found is None:
                if len(_PRIVILEGE_ONLY) >= _PRIVILEGE_ONLY_CAP:
                    _PRIVILEGE_ONLY.clear()
                found = _PRIVILEGE_ONLY[key] = self._merged(facts)
            return found
        return self._merged(facts)

    def _merged(self, facts: Facts) -> Trail:
        """:meth:`with_facts` of a notable event, worked out."""
        asn = facts.asn
        asns, network, privilege = self.asns, self.new_network, self.privilege
        new_network = facts.new_network
        if (asn is None or asn in asns) and self.unknown_asn >= (asn is None) and (
                new_network is None or (network is not None and network <= new_network)) and (
                self.new_client or not facts.new_client) and (
                facts.privilege == privilege
                or higher(facts.privilege, privilege, PRIVILEGE_TIERS) == privilege):
            return self  # the usual notable event: an AS, a network, a privilege already here
        if asn is not None and asn not in asns and (
                len(asns) < TRAIL_ASNS or asn < asns[-1]):
            asns = tuple(sorted((*asns, asn)))[:TRAIL_ASNS]
        if new_network is not None and (network is None or new_network < network):
            network = new_network
        if facts.privilege != privilege:
            privilege = higher(facts.privilege, privilege, PRIVILEGE_TIERS)
        made = Trail(network, self.new_client or facts.new_client, privilege, asns,
                     self.unknown_asn or asn is None)
        return self if made == self else _interned(made)


NO_TRAIL = Trail()
_interned: Shared[Trail] = Shared(1 << 16)
"""Most windows share a handful of trails."""
_PRIVILEGE_ONLY: dict[tuple[Trail, str], Trail] = {}
"""``Trail.with_facts`` of notable events that bring only a privilege (no AS, network or
client news), by (trail, privilege): a pure function of those two, and a few trails hold
most windows."""
_PRIVILEGE_ONLY_CAP = 1 << 12
UNKNOWN_ASN_TRAIL = _interned(Trail(unknown_asn=True))
"""The trail of ordinary events without a known autonomous system (no ASN table loaded)."""


class Basis(NamedTuple):
    """What a window is judged against, worked out once (sealed at ``start - lateness``):
    shared by every window with the same answer (:class:`Shared`)."""

    learning: bool = False
    """The principal was not established when the window started."""
    unusual_hour: bool | None = None
    """The window starts at a time of day the principal is not active at (None: n/a)."""
    peaks: tuple[float, ...] | None = None
    """The principal's sealed peaks of the detector's measures at this window length and
    time of day (None while learning or for detectors without measures)."""


_basis: Shared[Basis] = Shared(1 << 12)


@dataclass(slots=True)
class Slot:
    """One window (or one dedup key of one window) of a detector state."""

    acc: Any
    trail: Trail = NO_TRAIL
    fired: bool = False
    basis: Basis | None = None
    """None until the window's context is worked out (:meth:`Detector.resolve`): windowed
    detectors do that only once a window passes its floors (most never do)."""

    @property
    def learning(self) -> bool:
        return self.basis is not None and self.basis.learning

    @property
    def unusual_hour(self) -> bool | None:
        return None if self.basis is None else self.basis.unusual_hour

    @property
    def peaks(self) -> tuple[float, ...] | None:
        return None if self.basis is None else self.basis.peaks

    def settle(self, learning: bool, unusual_hour: bool | None = None,
               peaks: tuple[float, ...] | None = None) -> None:
        """Set the window's basis (shared with every equal one)."""
        self.basis = _basis(Basis(learning, unusual_hour, peaks))

    def __setstate__(self, state: Any) -> None:
        old = restore(self, state)  # an earlier layout: learning, unusual_hour, peaks, resolved
        if not hasattr(self, "basis"):
            self.basis = None
        if old.get("resolved"):
            self.settle(bool(old.get("learning")), old.get("unusual_hour"), old.get("peaks"))


SlotKey = tuple[float, float, str]
"""(window length, window start, dedup key)."""

_shared_key: Shared[SlotKey] = Shared(1 << 16)
"""All principals open the same windows: a slot's key costs a reference, not a tuple and a
float."""


RESTORED = -math.inf
""":attr:`DetectorState.low` of a state restored from a snapshot, until it is checked."""

_shared_time: Shared[float] = Shared(1 << 12)
"""Window bounds every principal's cache holds (:attr:`DetectorState.low`, ``high``)."""


@dataclass(slots=True)
class DetectorState:
    """Open windows of one detector for one (principal, app), and the earliest time one of
    them ends (so the engine closes nothing until the watermark gets there)."""

    slots: dict[SlotKey, Slot] = field(default_factory=dict)
    next_close: float = math.inf
    current: tuple[Slot, ...] = ()
    """A windowed detector's latest slots (one per window length), for the events in
    [``low``, ``high``): most events fall there, found without building keys."""
    low: float = math.inf
    high: float = -math.inf
    """The span ``current`` holds (empty: ``high`` is -inf; window bounds are shared
    floats, see :meth:`cache`). ``low`` is :data:`RESTORED` from a snapshot's restore until
    a windowed detector next looks its windows up (it checks them first: the snapshot may
    come from other window lengths)."""

    def cache(self, low: float, high: float, slots: tuple[Slot, ...]) -> None:
        """Remember ``slots`` as the windows of every event in [``low``, ``high``)."""
        self.current, self.low, self.high = slots, _shared_time(low), _shared_time(high)

    def forget(self) -> None:
        """Drop the cached latest slots (a window opened or closed)."""
        self.current, self.high = (), -math.inf

    def __setstate__(self, state: Any) -> None:
        restore(self, state)  # an earlier layout had no low and high: set here
        self.forget()  # the cached windows may be of lengths the detector no longer has
        self.low = RESTORED


class Detector(ABC):
    """Base of every detector (see the module docstring).

    ``accepts`` is a cheap filter the engine runs before ``observe``: False promises that
    observing the event would neither find anything nor change the state. When
    ``shape_filtered`` is True the answer must depend on :data:`SHAPE_FIELDS` alone and the
    engine asks once per shape.
    """

    meta: DetectorMeta
    shape_filtered: ClassVar[bool] = False
    refined: ClassVar[bool] = False
    """True when a shape-filtered detector also filters per event (``accepts`` beyond
    ``accepts_shape``): the engine then asks ``accepts`` for each event of an accepted shape."""
    principal_wide: ClassVar[bool] = False
    """True when the detector keeps one state per principal across all its apps (the engine
    passes a ``Who`` with app ``*``; the detector names the app of each signal itself)."""
    windowless: ClassVar[bool] = False
    """True for detectors that must see events arriving later than the allowed lateness too
    (single events: a credential added is a credential added, however late it is logged)."""

    def new_state(self) -> DetectorState:
        return DetectorState()

    def accepts(self, event: GraphEvent, facts: Facts) -> bool:
        return True

    def accepts_shape(self, event: GraphEvent) -> bool:
        """For a ``shape_filtered`` detector: whether events of this event's shape can
        matter (depends on :data:`SHAPE_FIELDS` alone; the engine caches it per shape)."""
        return self.accepts(event, NO_FACTS)

    @abstractmethod
    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        """Account ``event``; return provisional signals that crossed with it."""

    @abstractmethod
    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        """Final signals of windows ending at or before ``watermark``; forget them."""

    def observe_late(self, event: GraphEvent, ctx: EventContext, who: Who) -> list[Signal]:
        """An event later than the allowed lateness (only ``windowless`` detectors)."""
        return []

    def slot(self, state: DetectorState, key: SlotKey, acc: Any, ctx: EventContext,
             hour_aware: bool = True, resolve: bool = True, who: Who | None = None) -> Slot:
        """Create the slot ``key``; with ``resolve`` also its deterministic context now
        (:meth:`resolve`), else later, when it is needed."""
        key = _shared_key(key)
        made = state.slots[key] = Slot(acc)
        if resolve:
            self.resolve(made, key, ctx, hour_aware, who)
        end = key[1] + key[0]
        if end < state.next_close:
            state.next_close = end
        return made

    def resolve(self, slot: Slot, key: SlotKey, ctx: EventContext,
                hour_aware: bool = True, who: Who | None = None) -> None:
        """Work out a slot's context, sealed at ``start - lateness`` (the same answer whenever
        it is asked during the window's life): the principal's learning state, whether the
        window starts at a usual time of day and, once established, its :meth:`baseline`."""
        length, start, _ = key
        sealed = start - ctx.lateness
        profile = ctx.profile
        learning = profile is None or not profile.established(
            sealed, ctx.learning.min_days, ctx.learning.min_age_seconds)
        unusual_hour = None
        if hour_aware and length < 86_400 and profile is not None and not learning:
            unusual_hour = not profile.usual_hour(sealed, start)
        peaks = None if learning or who is None else self.baseline(key, ctx, who)
        slot.settle(learning, unusual_hour, peaks)

    def baseline(self, key: SlotKey, ctx: EventContext, who: Who) -> tuple[float, ...] | None:
        """The principal's sealed peaks a window of ``key`` is judged against (None: the
        detector keeps no baseline); asked once the principal is established."""
        return None

    def signal(self, who: Who, key: SlotKey, slot: Slot, evidence: dict[str, Any], *,
               first: float, last: float, final: bool, count: int,
               severity: str | None = None, fidelity: str | None = None,
               title: str | None = None, ctx: EventContext | None = None) -> Signal:
        length, start, dedup = key
        trail = slot.trail
        app = ctx.app if ctx is not None else None
        context = SignalContext(slot.learning, trail.new_network, trail.new_client,
                                slot.unusual_hour, trail.privilege,
                                bool(app is not None and app.first_party), trail.asns,
                                trail.unknown_asn)
        return Signal(self.meta.id, who, start, start + length, first, last, evidence,
                      severity or self.meta.severity, fidelity or self.meta.fidelity, final,
                      context, title, dedup, count,
                      ALL_APPS if self.principal_wide else None)

    @staticmethod
    def ended(state: DetectorState, watermark: float) -> list[SlotKey]:
        """Keys of the slots ending at or before ``watermark``, by end, then shorter windows
        first (so a short window can hand its attributes to the longer one holding it);
        recomputes ``next_close``."""
        if watermark < state.next_close:
            return []
        done = []
        next_close = math.inf
        for k in state.slots:
            end = k[1] + k[0]
            if end <= watermark:
                done.append(k)
            elif end < next_close:
                next_close = end
        state.next_close = next_close
        done.sort(key=lambda k: (k[1] + k[0], k[0], k[2]))
        return done
