"""The detection dataflow: normalized activity → enrichment → per-app engine → alerts.

Thin wiring around ``graphsentry.engine`` (``build_flow``) so that tests, the embedded runner
and the Kafka deployment share one flow and differ only in source and sinks::

    read_activity ─► decode_events ─┬─► enrich_events ─► key_by_app ─► detect_threats ─┐
                                    └─► write_rejects                                  │
         write_alerts ◄─ select_alerts ◄─┬─ unkey_results ◄────────────────────────────┘
         save_histories ◄─ select_histories ◄─┤
         write_late ◄─ select_late ◄──────────┘

Run on Kafka: ``python -m bytewax.run "dataflows.detect:get_flow()"`` with the configuration
in ``GRAPHSENTRY_CONFIG`` (``graphsentry run`` does this for N processes). Event time is handled
inside the engine, not with Bytewax windows (their EventClock busy-loops on lagging event time).
"""

from __future__ import annotations

import gc
import pickle
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from detectors.event import GraphEvent
from graphsentry.engine import NOTHING, CtxParts, DetectionEngine, EngineOutput, KeyState
from graphsentry.enrichment.store import EnrichmentStore

if TYPE_CHECKING:
    from graphsentry.config import Config

# Principals whose stored history was already handed to the engine by this process.
DELIVERED_CAPACITY = 1_000_000
# Objects allocated (net) between collections of the youngest GC generation; Python's 700
# makes a batch's short-lived records, events and tuples survive into older generations, and
# each promotion brings a full collection of the whole engine state closer (a third of the
# time per event with 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect the youngest generation every :data:`GC_YOUNG_THRESHOLD` allocations (never
    more often than configured already); process-wide, as GC settings are."""
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class CallbackSink(DynamicSink[Any]):
    """Calls ``fn(item)`` for each item (embedded mode: alerts to a callback or a list)."""

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
    """Receives alert dicts (``schemas/graph_alert.avsc`` field names)."""
    rejects: DynamicSink[Any] | None = None
    """Receives ``{reason, raw, source}`` for input that could not be decoded."""
    late: DynamicSink[Any] | None = None
    """Receives ``GraphEvent``s that arrived after the allowed lateness."""


@dataclass
class FlowCounters:
    rejects: int = 0
    enrichment_unavailable_batches: int = 0
    histories_saved: int = 0
    extra: dict[str, int] = field(default_factory=dict)


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
        for item in items:
            record = decode(item) if decode is not None else item
            if "reject" in record:
                self.counters.rejects += 1
                out.append(record["reject"])
                continue
            try:
                out.append(GraphEvent.from_record(record))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self.counters.rejects += 1
                out.append({"reason": f"bad_record: {type(exc).__name__}: {exc}",
                            "raw": repr(record)[:4096], "source": "decode_events"})
        return out


class Enricher:
    """Batch step: one store lookup per batch → ``(key, (event, CtxParts))`` keyed by
    ``tenant_id/app_id`` (keying here saves a per-item step).

    A principal's stored history travels with its first event only; afterwards the engine's
    in-memory history is the fresher one.
    """

    def __init__(self, holder: StoreHolder, counters: FlowCounters) -> None:
        self.holder = holder
        self.counters = counters
        self.delivered: dict[str, None] = {}
        """Principal keys whose stored history was handed over (oldest forgotten first)."""

    def __call__(self, events: list[GraphEvent]) -> list[tuple[str, tuple[GraphEvent, CtxParts]]]:
        delivered = self.delivered
        principals = {(e.tenant_id, e.app_id, e.principal_id) for e in events}
        new_keys = [key for key in (f"{t}/{a}/{p}" for t, a, p in principals)
                    if key not in delivered]
        lookup = self.holder.get().lookup({e.app_id for e in events},
                                          {e.ip for e in events if e.ip}, new_keys)
        if lookup.available:
            for key in new_keys:
                delivered[key] = None
            while len(delivered) > DELIVERED_CAPACITY:
                del delivered[next(iter(delivered))]
        else:
            self.counters.enrichment_unavailable_batches += 1
        histories = {k: h for k, h in lookup.histories.items() if h is not None}
        # Per (ip, app, tenant) once per batch: the key and the context parts.
        shared: dict[tuple[str | None, str, str], tuple[str, CtxParts]] = {}
        out: list[tuple[str, tuple[GraphEvent, CtxParts]]] = []
        append = out.append
        for event in events:
            if histories:
                history = histories.pop(event.principal_key, None)
                if history is not None:
                    append((f"{event.tenant_id}/{event.app_id}",
                            (event, self._parts(lookup, event, history))))
                    continue
            where = (event.ip, event.app_id, event.tenant_id)
            known = shared.get(where)
            if known is None:
                known = shared[where] = (f"{event.tenant_id}/{event.app_id}",
                                         self._parts(lookup, event, None))
            append((known[0], (event, known[1])))
        return out

    @staticmethod
    def _parts(lookup: Any, event: GraphEvent, history: Any) -> CtxParts:
        asn = lookup.asns.get(event.ip) if event.ip else None
        return CtxParts(asn[0] if asn else None, asn[1] if asn else None,
                        lookup.apps.get(event.app_id), lookup.available, history)


class DetectLogic(StatefulBatchLogic[tuple[GraphEvent, CtxParts], tuple[str, Any], Any]):
    """The engine for one key, a batch at a time. Emits ``("alert", dict)``,
    ``("late", event)`` and ``("history", (principal_key, history))``."""

    def __init__(self, engine: DetectionEngine, resume: Any, copy_snapshots: bool) -> None:
        self.engine = engine
        self.copy_snapshots = copy_snapshots
        if isinstance(resume, bytes):
            resume = pickle.loads(resume)
        self.state: KeyState = resume if resume is not None else engine.new_state()

    def on_batch(self, values: list[tuple[GraphEvent, CtxParts]]
                 ) -> tuple[list[tuple[str, Any]], bool]:
        process, state = self.engine.process, self.state
        emits: list[tuple[str, Any]] = []
        for event, parts in values:
            out: EngineOutput = process(state, event, parts)
            if out is NOTHING:
                continue
            emits.extend(("alert", a) for a in out.alerts)
            if out.history is not None:
                emits.append(("history", out.history))
            if out.late:
                emits.append(("late", event))
        return emits, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Any:
        # Without recovery Bytewax never serializes snapshots; with it, pickled bytes are an
        # immutable copy taken now (cheaper than deepcopy followed by Bytewax's own pickle).
        if self.copy_snapshots:
            return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)
        return self.state


class HistorySink(DynamicSink[tuple[str, Any]]):
    """Persists history updates, one ``save_histories`` call per batch (latest per key)."""

    def __init__(self, holder: StoreHolder, counters: FlowCounters) -> None:
        self.holder = holder
        self.counters = counters

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _HistoryPartition:
        return _HistoryPartition(self.holder, self.counters)


class _HistoryPartition(StatelessSinkPartition[tuple[str, Any]]):
    def __init__(self, holder: StoreHolder, counters: FlowCounters) -> None:
        self.holder = holder
        self.counters = counters

    def write_batch(self, items: list[tuple[str, Any]]) -> None:
        if items:
            self.counters.histories_saved += self.holder.get().save_histories(dict(items))


def _events(items: list[GraphEvent | dict[str, Any]]) -> list[GraphEvent]:
    return [item for item in items if type(item) is GraphEvent]


def _rejects(items: list[GraphEvent | dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if type(item) is not GraphEvent]  # type: ignore[misc]


def _tagged(tag: str) -> Callable[[tuple[str, Any]], Any]:
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
    delivery: Any = None
    """``kafka_io.DeliveryStats`` of the Kafka sinks (what the broker acknowledged)."""


def build_flow(config: Config, source: Source[Any], sinks: DetectSinks,
               store_factory: Callable[[], EnrichmentStore], *,
               decode: Callable[[Any], dict[str, Any]] | None = None,
               recovery: bool = False, flow_id: str = "graphsentry_detect") -> DetectFlow:
    """Wire the detection flow. ``source`` yields normalized records, or anything ``decode``
    turns into one (Kafka messages); ``recovery`` makes snapshots real copies."""
    tune_gc()
    engine = DetectionEngine(config)
    counters = FlowCounters()
    holder = StoreHolder(store_factory)
    flow = Dataflow(flow_id)
    raw = op.input("read_activity", flow, source)
    decoded = op.flat_map_batch("decode_events", raw, Decoder(counters, decode))
    # decoded: GraphEvent | reject dict, split a batch at a time (no per-item predicate)
    if sinks.rejects is not None:
        op.output("write_rejects", op.flat_map_batch("select_rejects", decoded, _rejects),
                  sinks.rejects)
    events = op.flat_map_batch("select_events", decoded, _events)
    keyed = op.flat_map_batch("enrich_events", events, Enricher(holder, counters))
    # keyed: ("tenant_id/app_id", (GraphEvent, CtxParts))
    detected = op.stateful_batch("detect_threats", keyed,
                                 lambda resume: DetectLogic(engine, resume, recovery))
    # detected: (key, (tag, payload))
    results = op.key_rm("unkey_results", detected)
    alerts = op.filter_map("select_alerts", results, _tagged("alert"))
    op.output("write_alerts", alerts, sinks.alerts)
    histories = op.filter_map("select_histories", results, _tagged("history"))
    op.output("save_histories", histories, HistorySink(holder, counters))
    if sinks.late is not None:
        late = op.filter_map("select_late", results, _tagged("late"))
        op.output("write_late", late, sinks.late)
    return DetectFlow(flow, engine, counters, holder)


def kafka_flow(config: Config, *, tail: bool | None = None, recovery: bool = False,
               stop: threading.Event | None = None) -> DetectFlow:
    """The deployment flow: Kafka in, Kafka out, Redis (or memory) enrichment. The input ends
    when ``stop`` is set; sinks fail their batch unless the broker acknowledged it."""
    from dataflows import kafka_io
    from dataflows.kafka_source import raw_activity_source
    from graphsentry import avro
    from graphsentry.enrichment import store_from_config

    stats = kafka_io.DeliveryStats()
    sinks = DetectSinks(alerts=kafka_io.alert_sink(config, stats=stats, stop=stop),
                        rejects=kafka_io.dlq_sink(config, stats=stats, stop=stop),
                        late=kafka_io.late_sink(config, stats=stats, stop=stop))

    def decode(item: Any) -> dict[str, Any]:
        return kafka_io.decode_message(item, avro.decode_activity)

    built = build_flow(config, raw_activity_source(config, tail=tail, stop=stop), sinks,
                       lambda: store_from_config(config), decode=decode, recovery=recovery)
    built.delivery = stats
    return built


def get_flow(tail: bool | None = None, recovery: bool = False) -> Dataflow:
    """Entry point for ``python -m bytewax.run "dataflows.detect:get_flow()"``."""
    import os

    from graphsentry.cluster import stop_on_signals
    from graphsentry.config import load_config

    recovery = recovery or bool(os.environ.get("BYTEWAX_RECOVERY_DIRECTORY"))
    built = kafka_flow(load_config(), tail=tail, recovery=recovery, stop=stop_on_signals())
    _install_exit_report(built)
    return built.flow


def report_line(built: DetectFlow) -> str:
    """This process's counters in one line (alerts: those the broker acknowledged too)."""
    c = built.engine.counters
    alerts = sum(c.alerts.values())
    acknowledged = built.delivery.summary() if built.delivery is not None else ""
    return (f"events={c.events} late={c.late} duplicates={c.duplicates} "
            f"suppressed={c.suppressed} alerts={alerts} rejects={built.counters.rejects} "
            f"enrichment_unavailable_batches={built.counters.enrichment_unavailable_batches}"
            f"{f' acknowledged: {acknowledged}' if acknowledged else ''}")


def _install_exit_report(built: DetectFlow) -> None:
    """Print this process's counters to stderr when it exits (bounded runs, shutdowns)."""
    import atexit
    import sys

    atexit.register(lambda: print(f"graphsentry detect: {report_line(built)}", file=sys.stderr))


def records_source(records: Iterable[dict[str, Any]], batch_size: int = 1000) -> Source[Any]:
    """An in-process source over normalized records (single worker)."""
    from bytewax.testing import TestingSource

    return TestingSource(records, batch_size=batch_size)
