"""The contract every detector follows: metadata, findings, context, and windowed accounting.

A detector is a small class with typed parameters (a dataclass with documented defaults), a
``meta`` (:class:`DetectorMeta`), per-principal state that pickles, and
``observe(state, event, ctx) -> list[Finding]``. The dataflow keeps one state per
(detector, principal) and calls ``expire`` as event time advances. Nothing here imports Bytewax,
Kafka or Redis.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from detectors.event import GraphEvent

SEVERITIES = ("low", "medium", "high", "critical")
STAGES = ("discovery", "collection", "exfiltration", "persistence", "credential_access",
          "initial_access", "defense_evasion")
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


class EventContext(NamedTuple):
    """Per-event enrichment handed to detectors next to the event.

    ``history`` is the principal's history *before* this event (``detectors.history``);
    ``asn`` the event IP's autonomous system when the ASN table knows it.
    ``enrichment_available`` is False when the enrichment store could not be reached.
    (A NamedTuple: immutable, and built per event at a third of a frozen dataclass's cost.)
    """

    history: Any = None
    asn: int | None = None
    asn_name: str | None = None
    app: AppInfo | None = None
    enrichment_available: bool = True


EMPTY_CONTEXT = EventContext()


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's verdict; the dataflow turns it into an alert (``schemas/graph_alert.avsc``).

    ``dedup`` carries whatever else identifies the alert besides detector, principal and window
    (e.g. the new network for ``new_origin``), so that ``alert_id`` is deterministic: replays,
    recovery and duplicates yield the same id.
    """

    detector: str
    tenant_id: str
    app_id: str
    principal_id: str
    identity_type: str
    window_start: float
    window_end: float
    first_seen: float
    last_seen: float
    evidence: dict[str, Any]
    severity: str | None = None
    title: str | None = None
    dedup: str = ""
    service_principal_id: str | None = None
    user_id: str | None = None

    @property
    def principal_key(self) -> str:
        return f"{self.tenant_id}/{self.app_id}/{self.principal_id}"

    @property
    def alert_id(self) -> str:
        return alert_id(self.detector, self.tenant_id, self.app_id, self.principal_id,
                        self.window_start, self.dedup)


def alert_id(detector: str, tenant_id: str, app_id: str, principal_id: str,
             window_start: float, dedup: str = "") -> str:
    """Deterministic id of an alert: a hash of what identifies it, never of arrival order."""
    text = "|".join((detector, tenant_id, app_id, principal_id, f"{window_start:.0f}", dedup))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def window_start(ts: float, length: float, align: float = 0.0) -> float:
    """Start of the tumbling window of ``length`` seconds (aligned to ``align``) holding ``ts``."""
    return align + ((ts - align) // length) * length


def sample(values: Iterable[str], size: int = SAMPLE_SIZE) -> list[str]:
    """An arrival-order-independent sample: the smallest ``size`` values."""
    return sorted(values)[:size]


SHAPE_FIELDS = ("family", "category", "template", "method", "status", "is_write",
                "is_download")
"""The event fields that decide whether a shape-filtered detector accepts an event."""


def shape_of(event: GraphEvent) -> tuple[Any, ...]:
    """The values of :data:`SHAPE_FIELDS`: events of one shape are accepted by the same
    shape-filtered detectors (the engine caches that answer per shape)."""
    return (event.family, event.category, event.template, event.method, event.status,
            event.is_write, event.is_download)


class Detector(ABC):
    """Base of every detector. Subclasses set ``meta`` and implement ``new_state``/``observe``.

    ``accepts`` is a cheap filter the engine runs before ``observe_accepted``: False promises
    that observing the event would neither find anything nor change the state, so a principal
    gets a state only once a detector accepts one of its events. When ``shape_filtered`` is
    True the answer must depend on :data:`SHAPE_FIELDS` alone and the engine asks once per
    shape; otherwise it asks per event.
    """

    meta: DetectorMeta
    shape_filtered: ClassVar[bool] = False

    @abstractmethod
    def new_state(self) -> Any:
        """Fresh per-principal state (plain data that pickles)."""

    @abstractmethod
    def observe(self, state: Any, event: GraphEvent, ctx: EventContext) -> list[Finding]:
        """Account ``event`` into ``state``; return findings whose evidence crossed a threshold."""

    def accepts(self, event: GraphEvent, ctx: EventContext) -> bool:
        """Whether ``observe`` could find anything or change a state for this event."""
        return True

    def observe_accepted(self, state: Any, event: GraphEvent,
                         ctx: EventContext) -> list[Finding]:
        """``observe`` for an event that ``accepts`` let through (may skip the filter)."""
        return self.observe(state, event, ctx)

    def expire(self, state: Any, watermark: float) -> bool:
        """Forget what ends before ``watermark``; return True when the state is empty."""
        return False

    def finding(self, event: GraphEvent, start: float, end: float, first_seen: float,
                last_seen: float, evidence: dict[str, Any], *, dedup: str = "",
                severity: str | None = None, title: str | None = None) -> Finding:
        return Finding(
            detector=self.meta.id, tenant_id=event.tenant_id, app_id=event.app_id,
            principal_id=event.principal_id, identity_type=event.identity_type,
            window_start=start, window_end=end, first_seen=first_seen, last_seen=last_seen,
            evidence=evidence, severity=severity, title=title, dedup=dedup,
            service_principal_id=event.service_principal_id, user_id=event.user_id,
        )


A = TypeVar("A")
NOT_FIRED: frozenset[float] = frozenset()


@dataclass(slots=True)
class WindowedState(Generic[A]):
    """Accumulators by tumbling-window start, the windows that already fired, and the
    principal's own baseline: the peak of each metric over windows that have closed.

    ``windows`` is kept in start order, so expiry reads only the windows it closes plus one.
    ``fired`` stays the shared empty frozenset until a window fires (a set per principal and
    detector would cost 216 bytes for nothing)."""

    windows: dict[float, A] = field(default_factory=dict)
    fired: frozenset[float] = NOT_FIRED
    peaks: dict[str, float] = field(default_factory=dict)
    closed_windows: int = 0


class WindowedDetector(Detector, Generic[A]):
    """A detector over tumbling event-time windows that fires as soon as a window crosses.

    Accumulators must be monotone (counts, distinct sets) so that whether and in which window an
    alert fires does not depend on arrival order; each (principal, window) fires at most once.
    ``relevant`` must depend on :data:`SHAPE_FIELDS` only (the engine caches it per shape).
    """

    window_seconds: float = 600.0
    shape_filtered = True
    keeps_baseline: ClassVar[bool] = False
    """True when closed windows feed ``peaks`` (``baseline_metrics``) and new accumulators
    are introduced to their state (``opened``); False skips those calls."""

    def new_state(self) -> WindowedState[A]:
        return WindowedState()

    @abstractmethod
    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        """Whether the event counts for this detector at all (cheap; shape fields only)."""

    def accepts(self, event: GraphEvent, ctx: EventContext) -> bool:
        return self.relevant(event, ctx)

    @abstractmethod
    def new_accumulator(self) -> A: ...

    @abstractmethod
    def add(self, acc: A, event: GraphEvent, ctx: EventContext) -> None: ...

    @abstractmethod
    def crossed(self, acc: A) -> bool: ...

    @abstractmethod
    def evidence(self, acc: A) -> dict[str, Any]: ...

    def baseline_metrics(self, acc: A) -> dict[str, float]:
        """Metrics of a closed window kept as the principal's baseline (peak per metric)."""
        return {}

    def opened(self, state: WindowedState[A], acc: A) -> None:
        """Called when ``acc`` starts a window of ``state`` (e.g. to attach the baseline)."""

    def first_last(self, acc: A) -> tuple[float, float]:
        """First and last event time in the accumulator (override when tracked)."""
        first = getattr(acc, "first_seen", 0.0)
        last = getattr(acc, "last_seen", 0.0)
        return float(first), float(last)

    def observe(self, state: WindowedState[A], event: GraphEvent,
                ctx: EventContext) -> list[Finding]:
        if not self.relevant(event, ctx):
            return []
        return self.observe_accepted(state, event, ctx)

    def observe_accepted(self, state: WindowedState[A], event: GraphEvent,
                         ctx: EventContext) -> list[Finding]:
        length = self.window_seconds
        start = 0.0 + (event.ts // length) * length  # window_start(ts, length), inlined
        windows = state.windows
        acc = windows.get(start)
        if acc is None:
            acc = self.new_accumulator()
            older = bool(windows) and start < next(reversed(windows))  # a late event's window
            windows[start] = acc
            if older:
                state.windows = dict(sorted(windows.items()))
            if self.keeps_baseline:
                self.opened(state, acc)
        self.add(acc, event, ctx)
        if start in state.fired or not self.crossed(acc):
            return []
        state.fired = state.fired | {start}
        first, last = self.first_last(acc)
        return [self.finding(event, start, start + length, first, last, self.evidence(acc))]

    def expire(self, state: WindowedState[A], watermark: float) -> bool:
        windows = state.windows
        if not windows:  # the usual case between a principal's bursts: a baseline at most
            return not state.peaks
        length = self.window_seconds
        ended: list[float] | None = None
        for start in windows:  # in start order: the ended windows come first
            if start + length >= watermark:
                break
            if ended is None:
                ended = [start]
            else:
                ended.append(start)
        if ended is None:
            return False
        peaks = state.peaks
        state.closed_windows += len(ended)
        for start in ended:
            acc = windows.pop(start)
            if self.keeps_baseline:
                for name, value in self.baseline_metrics(acc).items():
                    if value > peaks.get(name, 0.0):
                        peaks[name] = value
                    elif name not in peaks:
                        peaks[name] = 0.0
        if state.fired:
            state.fired = frozenset(s for s in state.fired if s not in ended)
        return not windows and not peaks
