"""Embedded detection: the Kafka deployment's dataflow, run in this process over records.

``run_embedded`` builds :func:`dataflows.detect.build_flow` with an in-process source and
callback sinks and runs it with ``bytewax.testing.run_main``, so what ``graphsentry detect``
finds on files is what the cluster finds on the topic.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.store import EnrichmentStore
from graphsentry.metrics.samples import Samples

if TYPE_CHECKING:
    from graphsentry.config import Config


@dataclass
class DetectStats:
    """What a detection run counted (summed over its processes), read from its metric samples
    (``graphsentry.metrics``): the numbers an exit summary prints are the ones ``/metrics``
    served."""

    events: int = 0
    late: int = 0
    duplicates: int = 0
    future: int = 0
    """Events dated too far ahead of the clock (also counted in ``rejects``)."""
    suppressed: int = 0
    """Signals covered by an exception."""
    rejects: int = 0
    """Records refused: undecodable input and future-dated events."""
    signals: Counter[str] = field(default_factory=Counter)
    """Signal emissions (provisional and final) by detector id."""
    alerts: Counter[str] = field(default_factory=Counter)
    """Alerts (distinct alert ids) by the detector id of their latest version
    (``principal_risk``, ``attack_chain`` for risk alerts and incidents)."""
    alert_updates: int = 0
    """Alert versions emitted (the first one and every update)."""
    elapsed: float = 0.0
    enrichment_unavailable_batches: int = 0
    profiles_saved: int = 0
    """Profiles of principals that left worker state (idle eviction), stored."""
    profiles_adopted: int = 0
    """Principals that started from a stored profile (back after eviction, or warmed)."""
    messages: int = 0
    """Items read from the input (records, or Kafka messages)."""
    evicted: int = 0
    """Principals that left worker state (idle)."""

    @classmethod
    def from_samples(cls, samples: Samples, elapsed: float = 0.0) -> DetectStats:
        count = samples.count
        return cls(events=count("graphsentry_events_total"),
                   late=count("graphsentry_late_events_total"),
                   duplicates=count("graphsentry_duplicates_total"),
                   future=count("graphsentry_rejects_total", reason="future_timestamp"),
                   suppressed=count("graphsentry_suppressed_signals_total"),
                   rejects=count("graphsentry_rejects_total"),
                   signals=samples.by("graphsentry_signals_total", "detector"),
                   alerts=samples.by("graphsentry_alerts_latest", "detector"),
                   alert_updates=count("graphsentry_alert_updates_total"), elapsed=elapsed,
                   enrichment_unavailable_batches=count(
                       "graphsentry_enrichment_unavailable_batches_total"),
                   profiles_saved=count("graphsentry_profiles_saved_total"),
                   profiles_adopted=count("graphsentry_profiles_adopted_total"),
                   messages=count("graphsentry_input_messages_total"),
                   evicted=count("graphsentry_principals_evicted_total"))

    @property
    def alert_count(self) -> int:
        return sum(self.alerts.values())

    def summary(self) -> str:
        """One line of the detection stage's counters; late, duplicate and rejected count what
        the engine dropped, not what ingest did before it."""
        rate = self.events / self.elapsed if self.elapsed > 0 else 0.0
        return (f"{self.events} events ({rate:,.0f}/s); detection: {self.late} too late, "
                f"{self.duplicates} duplicates, {self.rejects} rejected by the engine; "
                f"{sum(self.signals.values())} signal emissions ({self.suppressed} suppressed), "
                f"{self.alert_count} alerts ({self.alert_updates} versions)")

    def line(self) -> str:
        """``events=N late=N …``: the counters as ``name=value`` pairs."""
        return (f"events={self.events} late={self.late} duplicates={self.duplicates} "
                f"future={self.future} suppressed={self.suppressed} rejects={self.rejects} "
                f"evicted={self.evicted} signals={sum(self.signals.values())} "
                f"alerts={self.alert_count} alert_updates={self.alert_updates} "
                f"enrichment_unavailable_batches={self.enrichment_unavailable_batches}")


def run_embedded(records: Iterable[dict[str, Any]], config: Config | None = None,
                 store: EnrichmentStore | None = None,
                 on_alert: Callable[[dict[str, Any]], None] | None = None,
                 on_reject: Callable[[dict[str, Any]], None] | None = None,
                 on_late: Callable[[Any], None] | None = None,
                 on_signal: Callable[[dict[str, Any]], None] | None = None) -> DetectStats:
    """Detect over normalized ``records`` (schema field names) in this process.

    ``store`` defaults to an empty :class:`MemoryStore`; alerts (every version) go to
    ``on_alert`` and signals to ``on_signal`` in the order the flow emits them.
    """
    from dataflows.detect import CallbackSink, DetectSinks, build_flow, records_source
    from graphsentry.cluster import run_in_process
    from graphsentry.config import config_from_dict

    cfg = config if config is not None else config_from_dict({})
    chosen: EnrichmentStore = store if store is not None else MemoryStore()
    sinks = DetectSinks(
        alerts=CallbackSink(on_alert or (lambda _a: None)),
        rejects=CallbackSink(on_reject) if on_reject else None,
        late=CallbackSink(on_late) if on_late else None,
        signals=CallbackSink(on_signal) if on_signal else None,
    )
    built = build_flow(cfg, records_source(records, cfg.bytewax.batch_size), sinks,
                       lambda: chosen)
    started = time.perf_counter()
    run_in_process(built.flow, {})
    return DetectStats.from_samples(built.samples(), time.perf_counter() - started)
