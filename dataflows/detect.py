"""The detection dataflow: normalized activity → enrichment → per-principal engine → outputs.

Thin wiring around ``graphsentry.engine`` (``build_flow``) so that tests, the embedded runner
and the Kafka deployment share one flow and differ only in source and sinks::

    read_activity ─► decode_events ─┬─► enrich_events ─► detect_threats ─► unkey_results ─┐
                                    └─► write_rejects                                     │
        write_signals ◄─ select_signals ◄──┬──────────────────────────────────────────────┘
        write_alerts ◄── select_alerts ◄───┤
        write_late ◄──── select_late ◄─────┤
        write_rejects ◄─ select_engine_rejects
        save_profiles ◄─ select_profiles ◄─┘  (principals leaving worker state, to Redis)

**Keys.** ``detect_threats`` is keyed by ``tenant_id/principal_id``: a delegated user across
every app of the tenant, or one service principal, so a hot first-party app's users spread
over the workers (docs/architecture.md says what is keyed by what, and why).

**State.** Each key's :class:`~graphsentry.engine.PrincipalState` lives in Bytewax snapshots.
A principal idle for ``state.idle_eviction_seconds`` of event time leaves worker state: its
windows close (final signals) and its profile goes to Redis as a version keyed by its newest
event (``graphsentry.enrichment.store``); its next event brings the newest version older than
itself back. Only a durable store (Redis) takes evicted principals.

Run on Kafka: ``python -m bytewax.run "dataflows.detect:get_flow()"`` with the configuration in
``GRAPHSENTRY_CONFIG`` (``graphsentry run`` does this for N processes). Event time is handled
inside the engine, not with Bytewax windows (their EventClock busy-loops on lagging event time).
"""

from __future__ import annotations

import gc
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from dataflows.exchange import Routed
from detectors.event import GraphEvent
from graphsentry.cluster import hold_thread_state
from graphsentry.engine import CLOSE_SLACK, CtxParts, DetectionEngine, Emits, PrincipalState
from graphsentry.enrichment.store import EnrichmentStore
from graphsentry.metrics.samples import Samples, reason_code

if TYPE_CHECKING:
    from dataflows.kafka_io import DeliveryStats
    from graphsentry.config import Config

# Principals whose stored profile this process's enrichment step asked for recently.
SEEN_CAPACITY = 1_000_000
EXCEPTIONS_REFRESH = 60.0
"""Seconds between reads of the exceptions stored in Redis."""
# Objects allocated (net) between collections of the youngest GC generation; Python's 700
# makes a batch's short-lived records, events and tuples survive into older generations, and
# each promotion brings a full collection of the whole engine state closer.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect the youngest generation every :data:`GC_YOUNG_THRESHOLD` allocations (never
    more often than configured already); process-wide, as GC settings are."""
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class CallbackSink(DynamicSink[Any]):
    """Calls ``fn(item)`` for each item (embedded mode: outputs to a callback or a list)."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn = fn

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CallbackPartition:
        return _CallbackPartition(self.fn)


class _CallbackPartition(StatelessSinkPartition[Any]):
    def __init__(self, fn: Callable[[Any], None]) -> None:
        self.fn = fn

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            self.fn(item)


@dataclass
class DetectSinks:
    alerts: DynamicSink[Any]
    """Receives alert dicts (``schemas/graph_alert.avsc`` field names), every update."""
    signals: DynamicSink[Any] | None = None
    """Receives signal dicts (``schemas/graph_signal.avsc``), provisional and final."""
    rejects: DynamicSink[Any] | None = None
    """Receives ``{reason, raw, source}`` for input that could not be decoded or was refused
    (e.g. ``future_timestamp``)."""
    late: DynamicSink[Any] | None = None
    """Receives ``GraphEvent``s that arrived after the allowed lateness."""


@dataclass
class FlowCounters:
    """What the flow's steps count in this process (read by ``graphsentry.metrics.views``)."""

    messages: int = 0
    """Items read from the input (records or Kafka messages)."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Input refused by the decode step, by reason code."""
    enrichment_unavailable_batches: int = 0
    profiles_saved: int = 0
    evicted: int = 0
    principals: int = 0
    """Principal states created (new keys, and keys resumed from a snapshot)."""

    def reject(self, reason: str) -> None:
        self.rejected[reason_code(reason)] += 1

    @property
    def rejects(self) -> int:
        return sum(self.rejected.values())


class StoreHolder:
    """One enrichment store per process, created on first use (not when the flow is built)."""

    def __init__(self, factory: Callable[[], EnrichmentStore]) -> None:
        self.factory = factory
        self._store: EnrichmentStore | None = None
        self._lock = threading.Lock()

    def get(self) -> EnrichmentStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self.factory()
        return self._store

    def current(self) -> EnrichmentStore | None:
        """The store if a step asked for it already (no connection is made)."""
        return self._store


class Decoder:
    """Batch step: items (normalized record dicts, or Kafka messages with ``decode``) → events
    or reject dicts. Never raises on bad input."""

    def __init__(self, counters: FlowCounters,
                 decode: Callable[[Any], dict[str, Any]] | None = None) -> None:
        self.counters = counters
        self.decode = decode

    def __call__(self, items: list[Any]) -> list[GraphEvent | dict[str, Any]]:
        out: list[GraphEvent | dict[str, Any]] = []
        decode = self.decode
        self.counters.messages += len(items)
        for item in items:
            record = decode(item) if decode is not None else item
            if "reject" in record:
                self.counters.reject(record["reject"]["reason"])
                out.append(record["reject"])
                continue
            try:
                out.append(GraphEvent.from_record(record))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.counters.reject("bad_record")
                out.append({"reason": f"bad_record: {type(exc).__name__}: {exc}",
                            "raw": repr(record)[:4096], "source": "decode_events"})
        return out


class ExceptionRefresher:
    """Keeps the engine's exceptions current: the configured ones plus those stored in Redis
    (``graphsentry exceptions``), read again every :data:`EXCEPTIONS_REFRESH` seconds."""

    def __init__(self, engine: DetectionEngine, holder: StoreHolder, configured: list[Any]) -> None:
        self.engine = engine
        self.holder = holder
        self.configured = configured
        self.next_read = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now < self.next_read:
            return
        self.next_read = now + EXCEPTIONS_REFRESH
        from graphsentry.alerting.exceptions import ExceptionSet
        from graphsentry.enrichment.redis_store import ExceptionStore, RedisStore
        from graphsentry.errors import GraphsentryError

        store = self.holder.get()
        if not isinstance(store, RedisStore):
            return
        try:
            stored = ExceptionStore(store).load()
        except GraphsentryError:
            return  # Redis away: keep the exceptions we have, try again later
        self.engine.layer.exceptions = ExceptionSet(tuple([*self.configured, *stored]))


class Enricher:
    """Batch step: one store lookup per batch → ``(tenant/principal, Routed(event, CtxParts))``
    (keying here saves a per-item step; ``dataflows.exchange`` says what crosses processes).

    A principal's stored profile travels with its first event in this batch when its state may
    be new on the worker that owns it: the first time this step sees the principal, or after a
    gap longer than half the idle-eviction horizon (the worker may have evicted it since).
    Event times more than ``future_skew`` seconds ahead of the wall clock (the engine refuses
    those events) do not count as seen.
    """

    def __init__(self, holder: StoreHolder, counters: FlowCounters,
                 refetch_after: float, refresh: Callable[[], None] | None = None,
                 future_skew: float = float("inf")) -> None:
        self.holder = holder
        self.counters = counters
        self.refetch_after = refetch_after
        self.refresh = refresh
        self.future_skew = future_skew
        self.seen: dict[str, float] = {}
        """principal key → newest event time this step saw (oldest entries forgotten first)."""

    def __call__(self, events: list[GraphEvent]) -> list[tuple[str, Routed]]:
        if self.refresh is not None:
            self.refresh()
        seen, refetch = self.seen, self.refetch_after
        wanted: dict[str, float] = {}
        keys = [f"{e.tenant_id}/{e.principal_id}" for e in events]  # event.principal_key
        latest = time.time() + self.future_skew
        for event, key in zip(events, keys, strict=True):
            last = seen.get(key)
            ts = event.ts
            if ts > latest:
                continue  # refused by the engine: it must not hold back the next fetch
            if last is None or ts > last:
                seen[key] = ts
                if (last is None or ts - last > refetch) and key not in wanted:
                    wanted[key] = ts
        while len(seen) > SEEN_CAPACITY:
            del seen[next(iter(seen))]
        store = self.holder.get()
        lookup = store.lookup({e.app_id for e in events}, {e.ip for e in events if e.ip},
                              wanted if store.durable else {})
        if not lookup.available:
            self.counters.enrichment_unavailable_batches += 1
            for key in wanted:  # ask again next time
                seen.pop(key, None)
        profiles = {k: p for k, p in lookup.profiles.items() if p is not None}
        shared: dict[tuple[str | None, str], CtxParts] = {}
        out: list[tuple[str, Routed]] = []
        append = out.append
        asns, apps, available = lookup.asns, lookup.apps, lookup.available
        for event, key in zip(events, keys, strict=True):
            if profiles:
                profile = profiles.pop(key, None)
                if profile is not None:
                    asn = asns.get(event.ip) if event.ip else None
                    append((key, Routed(event, CtxParts(asn[0] if asn else None,
                                                        asn[1] if asn else None,
                                                        apps.get(event.app_id), available,
                                                        profile))))
                    continue
            where = (event.ip, event.app_id)
            parts = shared.get(where)
            if parts is None:
                asn = asns.get(event.ip) if event.ip else None
                parts = shared[where] = CtxParts(asn[0] if asn else None,
                                                 asn[1] if asn else None,
                                                 apps.get(event.app_id), available)
            append((key, Routed(event, parts)))
        return out


class Clock:
    """What the detection step shares in one process: the newest event time it processed
    (for idle eviction), whether the store takes evicted principals, and the next idle check
    (one datetime per second of wall clock, not one per key and batch)."""

    def __init__(self, holder: StoreHolder, idle_seconds: float, check_seconds: float) -> None:
        self.holder = holder
        self.idle_seconds = idle_seconds
        self.check = timedelta(seconds=check_seconds)
        self.max_ts = float("-inf")
        self._next: tuple[float, datetime] = (0.0, datetime.now(UTC))
        self.snapshots = 0
        self.snapshot_seconds = 0.0
        self.snapshot_bytes = 0
        """States serialized at epoch ends (with recovery), the time and bytes it took."""

    def next_check(self) -> datetime:
        now = time.monotonic()
        if now >= self._next[0]:
            self._next = (now + 1.0, datetime.now(UTC) + self.check)
        return self._next[1]


class DetectLogic(StatefulBatchLogic[Routed, tuple[str, Any], Any]):
    """The engine for one principal, a batch at a time. Emits ``(tag, payload)`` with tag
    ``signal``, ``alert``, ``late``, ``reject`` or ``profile`` (when it leaves worker state)."""

    def __init__(self, engine: DetectionEngine, clock: Clock, resume: Any,
                 copy_snapshots: bool, save_at_eof: bool = False) -> None:
        self.engine = engine
        self.clock = clock
        self.copy_snapshots = copy_snapshots
        self.save_at_eof = save_at_eof
        if isinstance(resume, bytes):
            resume = pickle.loads(resume)
        self.state: PrincipalState = resume if resume is not None else engine.new_state()

    def on_batch(self, values: list[Routed]
                 ) -> tuple[list[tuple[str, Any]], bool]:
        process, state, out = self.engine.process, self.state, Emits()
        now = time.time()
        for value in values:
            process(state, value.event, value.parts, out, now)
        if state.max_ts > self.clock.max_ts:
            self.clock.max_ts = state.max_ts
        return _tagged(out), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return self.clock.next_check()

    def on_notify(self) -> tuple[list[tuple[str, Any]], bool]:
        """Evict the principal when it has been idle long enough (by this process's event
        time) and the store is durable and reachable; else keep it."""
        clock, state = self.clock, self.state
        if clock.max_ts - state.max_ts < clock.idle_seconds:
            return [], StatefulBatchLogic.RETAIN
        store = clock.holder.get()
        if not (store.durable and store.available):
            return [], StatefulBatchLogic.RETAIN
        out = Emits()
        self.engine.flush(state, out)
        emits = _tagged(out)
        emits.append(("profile", (state.key, state.profile)))
        return emits, StatefulBatchLogic.DISCARD

    def on_eof(self) -> tuple[list[tuple[str, Any]], bool]:
        """End of a bounded input. With recovery the state is kept as it is: the snapshot
        taken now is resumed by the next run, whose events close the windows (closing them
        here would make results depend on where runs stop). Without it the state ends with
        the process, so every open window closes now (final signals); when warming profiles,
        the profile is stored too."""
        if self.copy_snapshots and not self.save_at_eof:
            return [], StatefulBatchLogic.RETAIN
        out = Emits()
        self.engine.flush(self.state, out)
        emits = _tagged(out)
        if self.save_at_eof and self.state.key:
            emits.append(("profile", (self.state.key, self.state.profile)))
        return emits, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Any:
        # Without recovery Bytewax never serializes snapshots; with it, pickled bytes are an
        # immutable copy taken now (cheaper than deepcopy followed by Bytewax's own pickle).
        if self.copy_snapshots:
            started = time.perf_counter()
            data = pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)
            clock = self.clock
            clock.snapshot_seconds += time.perf_counter() - started
            clock.snapshots += 1
            clock.snapshot_bytes += len(data)
            return data
        return self.state


def _tagged(out: Emits) -> list[tuple[str, Any]]:
    if not (out.signals or out.alerts or out.late or out.rejects):
        return []  # most batches of a principal emit nothing
    emits: list[tuple[str, Any]] = [("signal", s) for s in out.signals]
    emits.extend(("alert", a) for a in out.alerts)
    emits.extend(("late", e) for e in out.late)
    emits.extend(("reject", r) for r in out.rejects)
    return emits


class ProfileSink(DynamicSink[tuple[str, Any]]):
    """Stores the profiles of principals leaving worker state, one ``save_profiles`` call per
    batch; a failed write raises (the epoch fails, and the principal is still in the last
    snapshot)."""

    def __init__(self, holder: StoreHolder, counters: FlowCounters) -> None:
        self.holder = holder
        self.counters = counters

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProfilePartition:
        hold_thread_state()  # runs on the worker's thread (graphsentry.cluster)
        return _ProfilePartition(self.holder, self.counters)


class _ProfilePartition(StatelessSinkPartition[tuple[str, Any]]):
    def __init__(self, holder: StoreHolder, counters: FlowCounters) -> None:
        self.holder = holder
        self.counters = counters

    def write_batch(self, items: list[tuple[str, Any]]) -> None:
        if items:
            saved = self.holder.get().save_profiles(dict(items))
            self.counters.profiles_saved += saved
            self.counters.evicted += len(items)


def _events(items: list[GraphEvent | dict[str, Any]]) -> list[GraphEvent]:
    return [item for item in items if type(item) is GraphEvent]


def _rejects(items: list[GraphEvent | dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if type(item) is not GraphEvent]  # type: ignore[misc]


def _pick(tag: str) -> Callable[[tuple[str, Any]], Any]:
    def pick(item: tuple[str, Any]) -> Any:
        return item[1] if item[0] == tag else None
    return pick


@dataclass
class DetectFlow:
    """The built flow plus what a runner reads afterwards (counters live in this process)."""

    flow: Dataflow
    engine: DetectionEngine
    counters: FlowCounters
    holder: StoreHolder
    clock: Clock
    delivery: DeliveryStats | None = None
    """``kafka_io.DeliveryStats`` of the Kafka sinks (what the broker acknowledged)."""

    def samples(self) -> Samples:
        """Its metric samples now (``graphsentry.metrics``): what a process reports."""
        from graphsentry.metrics.views import detect_samples

        return detect_samples(self)


def build_flow(config: Config, source: Source[Any], sinks: DetectSinks,
               store_factory: Callable[[], EnrichmentStore], *,
               decode: Callable[[Any], dict[str, Any]] | None = None,
               recovery: bool = False, flow_id: str = "graphsentry_detect",
               engine: DetectionEngine | None = None, warm: bool = False,
               delivery: DeliveryStats | None = None) -> DetectFlow:
    """Wire the detection flow. ``source`` yields normalized records, or anything ``decode``
    turns into one (Kafka messages); ``recovery`` makes snapshots real copies; ``warm``
    stores every principal's profile at the end of a bounded input (``graphsentry warm``);
    ``delivery`` is the sinks' ``kafka_io.DeliveryStats``. The flow's counters are served as
    metrics (``graphsentry.metrics.views``) while the returned object lives."""
    tune_gc()
    engine = engine or DetectionEngine.from_config(config)
    counters = FlowCounters()
    holder = StoreHolder(store_factory)
    state = config.state
    needed = engine.min_idle_eviction()
    if state.idle_eviction_seconds < needed:
        from graphsentry.errors import GraphsentryError

        raise GraphsentryError(
            f"state.idle_eviction_seconds is {state.idle_eviction_seconds:.0f} s; with this "
            f"configuration it must be at least {needed:.0f} s (allowed lateness + the longest "
            f"detector window + alerts.horizon_seconds + {CLOSE_SLACK:.0f} s), or evicting an "
            f"idle principal could change results")
    clock = Clock(holder, state.idle_eviction_seconds, state.eviction_check_seconds)
    flow = Dataflow(flow_id)
    raw = op.input("read_activity", flow, source)
    decoded = op.flat_map_batch("decode_events", raw, Decoder(counters, decode))
    # decoded: GraphEvent | reject dict, split a batch at a time (no per-item predicate)
    events = op.flat_map_batch("select_events", decoded, _events)
    from graphsentry.engine_config import configured_exceptions

    refresh = ExceptionRefresher(engine, holder, configured_exceptions(config))
    keyed = op.flat_map_batch("enrich_events", events,
                              Enricher(holder, counters, state.idle_eviction_seconds / 2,
                                       refresh, engine.settings.max_future_skew))
    # keyed: ("tenant_id/principal_id", Routed(GraphEvent, CtxParts))
    def builder(resume: Any) -> DetectLogic:
        counters.principals += 1
        return DetectLogic(engine, clock, resume, recovery, warm)

    detected = op.stateful_batch("detect_threats", keyed, builder)
    # detected: (key, (tag, payload))
    results = op.key_rm("unkey_results", detected)
    if sinks.signals is not None:
        op.output("write_signals", op.filter_map("select_signals", results, _pick("signal")),
                  sinks.signals)
    op.output("write_alerts", op.filter_map("select_alerts", results, _pick("alert")),
              sinks.alerts)
    if sinks.late is not None:
        op.output("write_late", op.filter_map("select_late", results, _pick("late")),
                  sinks.late)
    if sinks.rejects is not None:
        rejects = op.merge("merge_rejects",
                           op.flat_map_batch("select_rejects", decoded, _rejects),
                           op.filter_map("select_engine_rejects", results, _pick("reject")))
        op.output("write_rejects", rejects, sinks.rejects)
    op.output("save_profiles", op.filter_map("select_profiles", results, _pick("profile")),
              ProfileSink(holder, counters))
    built = DetectFlow(flow, engine, counters, holder, clock, delivery)
    from graphsentry.metrics.views import detect_view, track

    track(built, detect_view(built))
    return built


def kafka_flow(config: Config, *, tail: bool | None = None, recovery: bool = False,
               stop: threading.Event | None = None) -> DetectFlow:
    """The deployment flow: Kafka in, Kafka out, Redis (or memory) enrichment. The input ends
    when ``stop`` is set; sinks fail their batch unless the broker acknowledged it."""
    from dataflows import kafka_io
    from dataflows.kafka_source import raw_activity_source
    from graphsentry.enrichment import store_from_config

    stats = kafka_io.DeliveryStats()
    sinks = DetectSinks(alerts=kafka_io.alert_sink(config, stats=stats, stop=stop),
                        rejects=kafka_io.dlq_sink(config, stats=stats, stop=stop),
                        late=kafka_io.late_sink(config, stats=stats, stop=stop),
                        signals=kafka_io.signal_sink(config, stats=stats, stop=stop))

    return build_flow(config, raw_activity_source(config, tail=tail, stop=stop), sinks,
                      lambda: store_from_config(config), decode=activity_message_decoder(),
                      recovery=recovery, delivery=stats)


def activity_message_decoder() -> Callable[[Any], dict[str, Any]]:
    """``decode`` for flows over graph.activity.v1 topics (run, replay, warm): a Kafka item →
    a record of the fields detection reads (``detectors.event.RECORD_FIELDS``, timestamps as
    epoch µs; ``graphsentry.avro.activity_fields_decoder``), or ``{"reject": ...}`` for a
    message that is not one (``kafka_io.decode_message``)."""
    from dataflows import kafka_io
    from detectors.event import RECORD_FIELDS
    from graphsentry import avro

    fields = avro.activity_fields_decoder(RECORD_FIELDS)

    def decode(item: Any) -> dict[str, Any]:
        return kafka_io.decode_message(item, fields)

    return decode


def get_flow(tail: bool | None = None, recovery: bool = False) -> Dataflow:
    """Entry point for ``python -m bytewax.run "dataflows.detect:get_flow()"``."""
    import os

    from graphsentry.cluster import stop_on_signals
    from graphsentry.config import load_config

    recovery = recovery or bool(os.environ.get("BYTEWAX_RECOVERY_DIRECTORY"))
    config = load_config()
    built = kafka_flow(config, tail=tail, recovery=recovery, stop=stop_on_signals())
    from graphsentry.metrics.server import serve

    serve(config, name="detect", store=built.holder.current)  # one process per host
    _install_exit_report(built)
    return built.flow


def report_line(built: DetectFlow) -> str:
    """This process's counters in one line (and what the broker acknowledged)."""
    from dataflows.kafka_io import DeliveryStats
    from graphsentry.detection import DetectStats

    samples = built.samples()
    acknowledged = DeliveryStats.from_samples(samples).summary()
    return (DetectStats.from_samples(samples).line()
            + (f" acknowledged: {acknowledged}" if acknowledged else ""))


def _install_exit_report(built: DetectFlow) -> None:
    """Print this process's counters to stderr when it exits (bounded runs, shutdowns)."""
    import atexit
    import sys

    atexit.register(lambda: print(f"graphsentry detect: {report_line(built)}", file=sys.stderr))


def records_source(records: Iterable[dict[str, Any]], batch_size: int = 1000) -> Source[Any]:
    """An in-process source over normalized records (single worker)."""
    from bytewax.testing import TestingSource

    return TestingSource(records, batch_size=batch_size)
