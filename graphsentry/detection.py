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

if TYPE_CHECKING:
    from graphsentry.config import Config


@dataclass
class DetectStats:
    events: int = 0
    late: int = 0
    duplicates: int = 0
    future: int = 0
    suppressed: int = 0
    """Signals covered by an exception."""
    rejects: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    """Signal emissions (provisional and final) by detector id."""
    alerts: Counter[str] = field(default_factory=Counter)
    """Alerts (distinct alert ids) by detector id (``principal_risk``, ``attack_chain`` for
    risk alerts and incidents)."""
    alert_updates: int = 0
    """Alert versions emitted (the first one and every update)."""
    elapsed: float = 0.0
    enrichment_unavailable_batches: int = 0
    profiles_saved: int = 0
    """Profiles of principals that left worker state (idle eviction), stored."""
    profiles_adopted: int = 0
    """Principals that started from a stored profile (back after eviction, or warmed)."""

    @property
    def alert_count(self) -> int:
        return sum(self.alerts.values())

    def summary(self) -> str:
        rate = self.events / self.elapsed if self.elapsed > 0 else 0.0
        return (f"{self.events} events ({rate:,.0f}/s), {self.late} late, "
                f"{self.duplicates} duplicates, {self.rejects} rejects, "
                f"{sum(self.signals.values())} signal emissions ({self.suppressed} suppressed), "
                f"{self.alert_count} alerts ({self.alert_updates} versions)")


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
    from bytewax.testing import run_main

    from dataflows.detect import CallbackSink, DetectSinks, build_flow, records_source
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
    run_main(built.flow)  # type: ignore[no-untyped-call]
    elapsed = time.perf_counter() - started
    c = built.engine.counters
    return DetectStats(events=c.events, late=c.late, duplicates=c.duplicates, future=c.future,
                       suppressed=c.suppressed_signals,
                       rejects=built.counters.rejects + c.future, signals=Counter(c.signals),
                       alerts=+c.alerts, alert_updates=c.alert_updates,
                       elapsed=elapsed,
                       enrichment_unavailable_batches=(
                           built.counters.enrichment_unavailable_batches),
                       profiles_saved=built.counters.profiles_saved,
                       profiles_adopted=c.profiles_adopted)
