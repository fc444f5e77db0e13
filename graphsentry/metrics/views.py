"""Samples of the flows running in this process, and the Prometheus collector serving them.

The dataflows count in plain attributes, a batch at a time (``FlowCounters``,
``BridgeCounters``, ``DeliveryStats``) or inline (the engine's ``EngineCounters``); nothing on
the hot path calls Prometheus. :func:`detect_samples` and :func:`bridge_samples` read those
counters into :class:`~graphsentry.metrics.samples.Samples` when asked: at a scrape, and at the
end of a run for its summary. A flow is :func:`track`-ed by the function that builds it; when
the flow object is garbage-collected its counters are kept (``retired``), so the counters of a
process only grow, across restarts of an in-process flow too.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from graphsentry.metrics.health import HEALTH
from graphsentry.metrics.samples import BY_NAME, FAMILIES, Samples, alert_kind

if TYPE_CHECKING:
    from dataflows.bridge import BridgeFlow
    from dataflows.detect import DetectFlow
    from dataflows.kafka_io import DeliveryStats

View = Callable[[], Samples]

EPOCH_SECONDS = Histogram(
    "graphsentry_epoch_duration_seconds",
    "Wall-clock seconds between consecutive epoch ends, observed by each input partition of "
    "this process (bytewax.epoch_seconds, longer when the dataflow falls behind).",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600))

_lock = threading.Lock()
_ids = itertools.count()
_live: dict[int, View] = {}
_retired = Samples()
_lag: dict[tuple[str, int], int] = {}


def flow_name(flow_id: str) -> str:
    """The ``flow`` label of a dataflow id: ``graphsentry_detect`` → ``detect``."""
    return flow_id.removeprefix("graphsentry_")


def track(owner: object, view: View) -> None:
    """Serve ``view()`` while ``owner`` (the built flow) lives; then keep its final counters.
    ``view`` must not refer to ``owner``."""
    key = next(_ids)
    with _lock:
        _live[key] = view
    weakref.finalize(owner, _retire, key)


def _retire(key: int) -> None:
    with _lock:
        view = _live.pop(key, None)
    if view is not None:
        final = view().counters()
        with _lock:
            _retired.merge(final)


def process_samples() -> Samples:
    """Every tracked flow's samples (counters of ended ones included), combined as each
    family says (counters and state sizes add up; newest event time: the newest)."""
    with _lock:
        views = list(_live.values())
        out = Samples(_retired)
    for view in views:
        for key, value in view().items():
            merge = BY_NAME[key[0]].merge
            if key not in out:
                out[key] = value
            elif merge == "sum":
                out[key] += value
            else:
                out[key] = max(out[key], value) if merge == "max" else min(out[key], value)
    return out


def publish_lag(topic: str, partition: int, lag: int | None) -> None:
    """The consumer lag of one input partition of this process (None: forget it)."""
    with _lock:
        if lag is None:
            _lag.pop((topic, partition), None)
        else:
            _lag[(topic, partition)] = lag


# --- reading the flows' counters -----------------------------------------------------------

def delivery_samples(stats: DeliveryStats | None, flow: str, out: Samples) -> None:
    if stats is None:
        return
    with stats._lock:
        acknowledged, refused = dict(stats.acknowledged), dict(stats.refused)
        failed, retried = dict(stats.failed), stats.retried
    for topic, n in acknowledged.items():
        out.add("graphsentry_delivered_messages_total", n, flow=flow, topic=topic)
    for error, n in refused.items():
        out.add("graphsentry_delivery_refused_total", n, flow=flow, error=error)
    for topic, n in failed.items():
        out.add("graphsentry_delivery_failed_messages_total", n, flow=flow, topic=topic)
    out.add("graphsentry_delivery_retries_total", retried, flow=flow)


def detect_view(built: DetectFlow) -> View:
    """The samples of a detection flow (``dataflows.detect.build_flow``), read when called."""
    flow = flow_name(built.flow.flow_id)
    engine, counters, clock, holder = built.engine.counters, built.counters, built.clock, \
        built.holder
    delivery = built.delivery

    def view() -> Samples:
        out = Samples()
        add = out.add
        add("graphsentry_input_messages_total", counters.messages, flow=flow)
        add("graphsentry_events_total", engine.events, flow=flow)
        for reason, n in dict(counters.rejected).items():
            add("graphsentry_rejects_total", n, flow=flow, reason=reason)
        add("graphsentry_rejects_total", engine.future, flow=flow, reason="future_timestamp")
        add("graphsentry_duplicates_total", engine.duplicates, flow=flow)
        add("graphsentry_late_events_total", engine.late, flow=flow)
        for detector, n in dict(engine.signals).items():
            add("graphsentry_signals_total", n, flow=flow, detector=detector)
        add("graphsentry_suppressed_signals_total", engine.suppressed_signals, flow=flow)
        alerts = dict(engine.alerts)
        add("graphsentry_alerts_total", sum(alerts.values()), flow=flow)
        for detector, n in alerts.items():
            if n > 0:
                add("graphsentry_alerts_latest", n, flow=flow, detector=detector,
                    kind=alert_kind(detector))
        add("graphsentry_alert_updates_total", engine.alert_updates, flow=flow)
        add("graphsentry_enrichment_unavailable_batches_total",
            counters.enrichment_unavailable_batches, flow=flow)
        add("graphsentry_principals_evicted_total", counters.evicted, flow=flow)
        add("graphsentry_profiles_saved_total", counters.profiles_saved, flow=flow)
        add("graphsentry_profiles_adopted_total", engine.profiles_adopted, flow=flow)
        add("graphsentry_state_snapshots_total", clock.snapshots, flow=flow)
        add("graphsentry_state_snapshot_seconds_total", clock.snapshot_seconds, flow=flow)
        add("graphsentry_state_snapshot_bytes_total", clock.snapshot_bytes, flow=flow)
        delivery_samples(delivery, flow, out)
        out.set("graphsentry_state_principals", counters.principals - counters.evicted,
                flow=flow)
        if math.isfinite(clock.max_ts):
            out.set("graphsentry_newest_event_timestamp_seconds", clock.max_ts, flow=flow)
        store = holder.current()
        if store is not None:
            out.set("graphsentry_enrichment_available", float(store.available), flow=flow)
        return out

    return view


def detect_samples(built: DetectFlow) -> Samples:
    """The samples of one detection flow now (what its process reports at the end)."""
    return detect_view(built)()


def bridge_view(built: BridgeFlow) -> View:
    """The samples of a bridge flow (``dataflows.bridge.build_bridge_flow``)."""
    flow = flow_name(built.flow.flow_id)
    counters, delivery = built.counters, built.delivery

    def view() -> Samples:
        out = Samples()
        out.add("graphsentry_input_messages_total", counters.inputs, flow=flow)
        out.add("graphsentry_bridged_records_total", counters.bridged, flow=flow)
        out.add("graphsentry_truncated_records_total", counters.truncated, flow=flow)
        out.add("graphsentry_duplicates_total", counters.duplicates, flow=flow)
        for reason, n in dict(counters.rejected).items():
            out.add("graphsentry_rejects_total", n, flow=flow, reason=reason)
        delivery_samples(delivery, flow, out)
        return out

    return view


def bridge_samples(built: BridgeFlow) -> Samples:
    return bridge_view(built)()


# --- the collector -------------------------------------------------------------------------

def _family(name: str, kind: str, help_text: str,
            labels: tuple[str, ...]) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(name, help_text, labels=list(labels))
    return GaugeMetricFamily(name, help_text, labels=list(labels))


class GraphsentryCollector(Collector):
    """Collects, at scrape time, every family of ``samples.FAMILIES`` from the tracked flows,
    plus the consumer lag per input partition and this process's health figures."""

    def describe(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield _family(family.name, family.kind, family.help, family.labels)
        yield from self._process_families({}, {})

    def collect(self) -> Iterator[Metric]:
        samples = process_samples()
        for family in FAMILIES:
            metric = _family(family.name, family.kind, family.help, family.labels)
            for (name, labels), value in sorted(samples.items()):
                if name == family.name:
                    values = dict(labels)
                    metric.add_metric([values.get(label, "") for label in family.labels], value)
            yield metric
        yield from self._process_families(_lags(), HEALTH.figures())

    @staticmethod
    def _process_families(lags: dict[tuple[str, int], float],
                          figures: dict[str, float]) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "graphsentry_kafka_consumer_lag_messages",
            "Messages between this process's position in an input partition and the "
            "partition's end (high watermark).", labels=["topic", "partition"])
        for (topic, partition), value in sorted(lags.items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
        partitions = GaugeMetricFamily("graphsentry_input_partitions",
                                       "Input partitions assigned to this process.")
        progress = GaugeMetricFamily(
            "graphsentry_last_progress_timestamp_seconds",
            "Unix time at which the dataflow last polled its input or waited for a delivery "
            "(what /live judges).")
        if figures:
            partitions.add_metric([], figures["partitions"])
            if "progress" in figures:
                progress.add_metric([], figures["progress"])
        yield partitions
        yield progress


def _lags() -> dict[tuple[str, int], float]:
    """Lags published by our sources, and Bytewax's own ``KafkaSource`` gauge (the bridge)."""
    with _lock:
        lags: dict[tuple[str, int], float] = {key: float(v) for key, v in _lag.items()}
    kafka = sys.modules.get("bytewax.connectors.kafka")
    if kafka is not None:
        for metric in kafka.BYTEWAX_CONSUMER_LAG_GAUGE.collect():
            for sample in metric.samples:
                key = (sample.labels["topic"], int(sample.labels["partition"]))
                lags[key] = sample.value
    return lags


def _register() -> None:
    if not getattr(REGISTRY, "_graphsentry", False):
        REGISTRY.register(GraphsentryCollector())
        REGISTRY._graphsentry = True  # type: ignore[attr-defined]


_register()

