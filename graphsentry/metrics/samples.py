"""The metric families of graphsentry and :class:`Samples`, their values in one process.

Every count a flow keeps (``dataflows.detect``, ``dataflows.bridge``, ``dataflows.kafka_io``,
the engine's counters) is turned into samples of the families below by
``graphsentry.metrics.views``: the same samples are served on ``/metrics`` and summed over
processes for the exit summaries, so the two always agree. Labels are low-cardinality by
construction: a flow name, a topic name, a detector id, an alert kind, a reject reason code or
a broker error name — never a principal, an app, an IP or free text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Labels = tuple[tuple[str, str], ...]
Key = tuple[str, Labels]
Kind = Literal["counter", "gauge"]


@dataclass(frozen=True)
class Family:
    """One metric: its exposed name (counters end in ``_total``), type, help and labels."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    merge: Literal["sum", "max", "min"] = "sum"
    """How values of several flows in one process combine (gauges only; counters sum)."""
    retained: bool | None = None
    """Kept (summed) after its flow ended: counters, and gauges that count what the flow did
    (default: counters only)."""

    @property
    def kept(self) -> bool:
        return self.kind == "counter" if self.retained is None else self.retained


FAMILIES: tuple[Family, ...] = (
    Family("graphsentry_input_messages_total", "counter",
           "Items read from the input: Kafka messages (for the bridge, raw messages that may "
           "hold many records) or records of input files.", ("flow",)),
    Family("graphsentry_bridged_records_total", "counter",
           "Records normalized by the bridge and handed to the activity topic's producer.",
           ("flow",)),
    Family("graphsentry_truncated_records_total", "counter",
           "Bridged records with a field cut to its limit (truncated_fields).", ("flow",)),
    Family("graphsentry_events_total", "counter",
           "Events the detection engine processed (late and duplicate ones included, "
           "future-dated ones not: those are rejects).", ("flow",)),
    Family("graphsentry_rejects_total", "counter",
           "Records refused, by reason code (the part of the dead letter's reason before ':'; "
           "future_timestamp for event times too far ahead of the clock).", ("flow", "reason")),
    Family("graphsentry_duplicates_total", "counter",
           "Records dropped as duplicates (same request id and time).", ("flow",)),
    Family("graphsentry_late_events_total", "counter",
           "Events older than their principal's clock minus the allowed lateness.", ("flow",)),
    Family("graphsentry_signals_total", "counter",
           "Signals emitted (provisional and final), by detector.", ("flow", "detector")),
    Family("graphsentry_suppressed_signals_total", "counter",
           "Signals covered by an exception (emitted, marked, never alerts).", ("flow",)),
    Family("graphsentry_alerts_total", "counter",
           "Alerts created (distinct alert ids).", ("flow",)),
    Family("graphsentry_alerts_latest", "gauge",
           "Alerts created, counted under the detector and kind (detector, risk or incident) "
           "of their latest version: an alert that grows into a risk alert or an incident "
           "moves.", ("flow", "detector", "kind"), retained=True),
    Family("graphsentry_alert_updates_total", "counter",
           "Alert versions emitted (the first one and every update).", ("flow",)),
    Family("graphsentry_enrichment_unavailable_batches_total", "counter",
           "Batches enriched without the store (Redis unreachable).", ("flow",)),
    Family("graphsentry_principals_evicted_total", "counter",
           "Principals that left worker state after being idle (profile stored in Redis).",
           ("flow",)),
    Family("graphsentry_profiles_saved_total", "counter",
           "Principal profiles written to the store.", ("flow",)),
    Family("graphsentry_profiles_adopted_total", "counter",
           "Principals that started from a stored profile (back after eviction, or warmed).",
           ("flow",)),
    Family("graphsentry_state_snapshots_total", "counter",
           "Principal states serialized at epoch ends (with recovery only).", ("flow",)),
    Family("graphsentry_state_snapshot_seconds_total", "counter",
           "Time spent serializing principal states at epoch ends (with recovery only).",
           ("flow",)),
    Family("graphsentry_state_snapshot_bytes_total", "counter",
           "Bytes of serialized principal states (with recovery only).", ("flow",)),
    Family("graphsentry_delivered_messages_total", "counter",
           "Messages the broker acknowledged, by topic.", ("flow", "topic")),
    Family("graphsentry_delivery_refused_total", "counter",
           "Messages the broker refused for their content (sent to the dead-letter topic "
           "instead), by broker error.", ("flow", "error")),
    Family("graphsentry_delivery_retries_total", "counter",
           "Messages produced again after a failure that could pass.", ("flow",)),
    Family("graphsentry_delivery_failed_messages_total", "counter",
           "Messages not acknowledged when a batch was given up (the batch failed; a restart "
           "resumes from the last snapshot), by topic.", ("flow", "topic")),
    Family("graphsentry_state_principals", "gauge",
           "Principals in the worker state of this process.", ("flow",)),
    Family("graphsentry_newest_event_timestamp_seconds", "gauge",
           "Event time (Unix seconds) of the newest event processed.", ("flow",), "max"),
    Family("graphsentry_enrichment_available", "gauge",
           "1 while the enrichment store (Redis) answers, 0 while detection runs without it.",
           ("flow",), "min"),
)
BY_NAME = {family.name: family for family in FAMILIES}
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")


def reason_code(reason: str) -> str:
    """The reason code of a dead letter's ``reason`` (``bad_avro: ValueError: …`` →
    ``bad_avro``); ``other`` when the text does not start with one."""
    code = reason.split(":", 1)[0].strip()
    return code if _CODE.fullmatch(code) else "other"


def alert_kind(detector: str) -> str:
    """The kind of an alert created by ``detector``: ``risk``, ``incident`` or ``detector``."""
    return {"principal_risk": "risk", "attack_chain": "incident"}.get(detector, "detector")


class Samples(dict[Key, float]):
    """Metric values: ``(family name, sorted labels) → value``. Plain data: it pickles, so a
    spawned process reports its samples to its parent, which sums them (:meth:`merge`)."""

    def add(self, name: str, value: float = 1, **labels: str) -> None:
        """Add ``value`` to a sample (a 0 is stored too: the series exists from the start)."""
        key = (name, tuple(sorted(labels.items())))
        self[key] = self.get(key, 0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        self[(name, tuple(sorted(labels.items())))] = value

    def merge(self, other: dict[Key, float]) -> Samples:
        """Add every sample of ``other`` (another flow or process); returns self."""
        for key, value in other.items():
            self[key] = self.get(key, 0) + value
        return self

    def merge_all(self, others: Iterable[dict[Key, float]]) -> Samples:
        """:meth:`merge` each of ``others``; returns self."""
        for other in others:
            self.merge(other)
        return self

    def total(self, name: str, **match: str) -> float:
        """The sum of ``name``'s samples whose labels include ``match``."""
        wanted = set(match.items())
        return sum(value for (family, labels), value in self.items()
                   if family == name and wanted <= set(labels))

    def count(self, name: str, **match: str) -> int:
        """:meth:`total` as an int (counters of things)."""
        return int(self.total(name, **match))

    def by(self, name: str, label: str, **match: str) -> Counter[str]:
        """``name``'s samples summed per value of ``label`` (zero values left out)."""
        wanted = set(match.items())
        out: Counter[str] = Counter()
        for (family, labels), value in self.items():
            if family == name and wanted <= set(labels) and value:
                out[dict(labels).get(label, "")] += int(value)
        return out

    def counters(self) -> Samples:
        """Only the families kept after a flow ended (counters, and retained gauges)."""
        return Samples({key: value for key, value in self.items() if BY_NAME[key[0]].kept})
