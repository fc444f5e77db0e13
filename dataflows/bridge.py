"""The bridge dataflow: raw Graph activity logs → ``graph.activity.v1`` (Avro) + dead letters.

Thin wiring around one pure per-message function, :func:`bridge_message`::

    read_raw ─► bridge_messages ─┬─► select_activity ─► write_activity   (graph.activity.v1)
                                 └─► select_rejects  ─► write_rejects    (graph.activity.dlq.v1)

Input is a raw topic (``kafka.topics.raw``: the local ``graph.activity.raw`` or an Event Hub
through its Kafka endpoint) or files (:class:`FilesSource`, e.g. storage-account ``PT1H.json``
blobs). Each Kafka message value goes through ``readers.parse_payload`` (any delivery shape,
gzip), each record through ``normalize_record``, then a bounded per-worker de-duplication on
request id + time. Good records leave as unframed Avro keyed ``tenant_id/principal_id`` with the
message timestamp set to ``time_generated``; everything else (unparseable messages, bad records,
event times beyond the allowed skew ahead of the clock, consumer errors) leaves as a JSON dead
letter ``{reason, raw, source, at}`` with the original key.
Duplicates that reach different workers are removed downstream by the detection engine.

Run on Kafka: ``python -m bytewax.run "dataflows.bridge:get_flow()"`` with the configuration in
``GRAPHSENTRY_CONFIG`` (``graphsentry bridge`` does this in process). See docs/bridge.md.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, BinaryIO

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, Source, StatefulSourcePartition
from bytewax.outputs import DynamicSink

from dataflows import kafka_io
from dataflows.kafka_client import GuardedSource
from dataflows.kafka_source import activity_source
from graphsentry.avro import encode_activity, message_key, message_timestamp_ms
from graphsentry.cluster import hold_thread_state
from graphsentry.ingest.dedup import DEFAULT_CAPACITY, Deduplicator, dedup_key
from graphsentry.ingest.limits import MAX_FUTURE_SKEW_SECONDS
from graphsentry.ingest.normalize import normalize_record
from graphsentry.ingest.readers import RawItem, iter_stream, parse_payload
from graphsentry.ingest.reject import Reject, excerpt, valid_text
from graphsentry.ingest.timeparse import format_timestamp
from graphsentry.metrics.samples import Samples

if TYPE_CHECKING:
    from graphsentry.config import Config

# Event Hub messages carry many records (~230 KB each on average): fewer per batch than the
# detection flow's 1000 Avro records keeps a batch's memory bounded.
RAW_BATCH_SIZE = 100
FILE_BATCH_SIZE = 1000

Message = KafkaSinkMessage[bytes | None, bytes]
Routed = tuple[bool, Message]
"""``(True, activity message)`` or ``(False, dead-letter message)``."""
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class BridgeTopics:
    activity: str
    dlq: str


@dataclass
class BridgeCounters:
    """What a bridge saw: raw inputs (Kafka messages, or record candidates from files)."""

    inputs: int = 0
    bridged: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Dead letters by reason code."""
    truncated: int = 0
    """Bridged records with a field cut to its limit (``truncated_fields``)."""

    def add(self, other: BridgeCounters) -> None:
        self.inputs += other.inputs
        self.bridged += other.bridged
        self.duplicates += other.duplicates
        self.rejected.update(other.rejected)
        self.truncated += other.truncated

    def as_dict(self) -> dict[str, Any]:
        """Plain data (crosses process boundaries); ``truncated`` only when there were any."""
        counts: dict[str, Any] = {"inputs": self.inputs, "bridged": self.bridged,
                                  "duplicates": self.duplicates, "rejected": dict(self.rejected)}
        if self.truncated:
            counts["truncated"] = self.truncated
        return counts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BridgeCounters:
        return cls(int(data["inputs"]), int(data["bridged"]), int(data["duplicates"]),
                   Counter(data["rejected"]), int(data.get("truncated", 0)))

    @classmethod
    def from_samples(cls, samples: Samples) -> BridgeCounters:
        """The bridge counts of metric samples (``graphsentry.metrics``), e.g. summed over
        the processes of a run."""
        return cls(samples.count("graphsentry_input_messages_total"),
                   samples.count("graphsentry_bridged_records_total"),
                   samples.count("graphsentry_duplicates_total"),
                   samples.by("graphsentry_rejects_total", "reason"),
                   samples.count("graphsentry_truncated_records_total"))

    def summary(self) -> str:
        """E.g. ``0 inputs, 0 bridged, 0 rejected, 0 duplicates`` (also for an empty input);
        ``, T truncated`` is added when T > 0."""
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{code} {n}" for code, n in sorted(self.rejected.items()))
        return (f"{self.inputs} inputs, {self.bridged} bridged, {rejected} rejected"
                f"{f' ({reasons})' if reasons else ''}, {self.duplicates} duplicates"
                f"{f', {self.truncated} truncated' if self.truncated else ''}")


def _now() -> datetime:
    return datetime.now(UTC)


def _source_timestamp(msg: KafkaSourceMessage[Any, Any]) -> int:
    """The source message's timestamp in ms, or 0 (let the producer set it)."""
    if msg.timestamp is None:
        return 0
    kind, millis = msg.timestamp
    return int(millis) if kind and millis > 0 else 0


def dead_letter(body: dict[str, str], topics: BridgeTopics, key: bytes | None,
                timestamp: int, now: Clock) -> Routed:
    """A dead-letter message: ``{reason, raw, source, at}`` as JSON, keyed like its source.

    ``at`` is wall-clock time (when it was bridged); dead letters are not replayed as events.
    """
    value = dict(body, at=format_timestamp(now()))
    return False, KafkaSinkMessage(key, json.dumps(value, ensure_ascii=False).encode("utf-8"),
                                   topic=topics.dlq, headers=list(kafka_io.JSON_HEADERS),
                                   timestamp=timestamp)


def bridge_candidate(candidate: RawItem, topics: BridgeTopics, dedup: Deduplicator | None,
                     counters: BridgeCounters, key: bytes | None = None, timestamp: int = 0,
                     now: Clock = _now,
                     max_future_skew: float | None = MAX_FUTURE_SKEW_SECONDS) -> Routed | None:
    """One record candidate → an activity message, a dead letter, or None (a duplicate).

    An event time more than ``max_future_skew`` seconds ahead of ``now()`` is a
    ``future_timestamp`` dead letter (the broker would refuse it, failing its whole batch)."""
    if isinstance(candidate, Reject):
        record: dict[str, Any] | Reject = candidate
        where = candidate.source
    else:
        obj, where = candidate
        record = normalize_record(obj, where, max_future_skew, None if now is _now else now)
    if isinstance(record, Reject):
        counters.rejected[record.code] += 1
        return dead_letter(record.to_json(), topics, key, timestamp, now)
    if dedup is not None and dedup.seen(dedup_key(record)):
        counters.duplicates += 1
        return None
    try:
        value = encode_activity(record)
    except ValueError as exc:  # a normalized record the schema refuses: a bug, not a crash
        return _internal_error(exc, repr(record), where, topics, key, timestamp, now, counters)
    counters.bridged += 1
    if record["truncated_fields"]:
        counters.truncated += 1
    return True, KafkaSinkMessage(message_key(record), value, topic=topics.activity,
                                  headers=list(kafka_io.AVRO_HEADERS),
                                  timestamp=message_timestamp_ms(record))


def _internal_error(exc: Exception, raw: object, source: str, topics: BridgeTopics,
                    key: bytes | None, timestamp: int, now: Clock,
                    counters: BridgeCounters) -> Routed:
    counters.rejected["internal_error"] += 1
    body = {"reason": valid_text(f"internal_error: {type(exc).__name__}: {exc}"),
            "raw": excerpt(raw), "source": valid_text(source)}
    return dead_letter(body, topics, key, timestamp, now)


def bridge_message(item: Any, topics: BridgeTopics, dedup: Deduplicator | None,
                   counters: BridgeCounters, now: Clock = _now,
                   max_future_skew: float | None = MAX_FUTURE_SKEW_SECONDS) -> list[Routed]:
    """One input item → its output messages. Never raises.

    ``item`` is a ``KafkaSourceMessage`` (raw payload: every record in it), a ``KafkaError``
    (a consumer error: one dead letter), or a reader item from files (``(obj, source)`` or a
    ``Reject``). A failure (a bug) costs only the record it happened on.
    """
    counters.inputs += 1
    key: bytes | None = None
    timestamp = 0
    source = "bridge"
    out: list[Routed] = []
    try:
        if isinstance(item, KafkaError):
            counters.rejected["kafka_error"] += 1
            source = kafka_io.message_source(item.msg)
            body = kafka_io.reject(f"kafka_error: {item.err.name()}: {item.err.str()}",
                                   item.msg.value, source)
            return [dead_letter(body, topics, item.msg.key, _source_timestamp(item.msg), now)]
        if isinstance(item, KafkaSourceMessage):
            key, timestamp = item.key, _source_timestamp(item)
            source = kafka_io.message_source(item)
            if not item.value:
                counters.rejected["missing_value"] += 1
                body = kafka_io.reject("missing_value: tombstone or empty message", None, source)
                return [dead_letter(body, topics, key, timestamp, now)]
            candidates: Iterator[RawItem] = parse_payload(item.value, source)
        else:
            candidates = iter([item])
        for candidate in candidates:
            try:
                routed = bridge_candidate(candidate, topics, dedup, counters, key, timestamp, now,
                                          max_future_skew)
            except Exception as exc:  # one bad record never takes its neighbours down
                routed = _internal_error(exc, candidate, source, topics, key, timestamp, now,
                                         counters)
            if routed is not None:
                out.append(routed)
    except Exception as exc:  # the reader itself failed: what it yielded so far is kept
        out.append(_internal_error(exc, getattr(item, "value", None) or repr(item), source,
                                   topics, key, timestamp, now, counters))
    return out


class BridgeStep:
    """``flat_map_batch`` step around :func:`bridge_message`, with one bounded de-duplicator
    per worker thread and counters summed over the process."""

    def __init__(self, topics: BridgeTopics, dedup_capacity: int | None,
                 counters: BridgeCounters, now: Clock = _now,
                 max_future_skew: float | None = MAX_FUTURE_SKEW_SECONDS) -> None:
        self.topics = topics
        self.dedup_capacity = dedup_capacity
        self.counters = counters
        self.now = now
        self.max_future_skew = max_future_skew
        self._local = threading.local()
        self._lock = threading.Lock()

    def _dedup(self) -> Deduplicator | None:
        if self.dedup_capacity is None:
            return None
        dedup: Deduplicator | None = getattr(self._local, "dedup", None)
        if dedup is None:
            # A Bytewax worker thread keeps its threading.local values only while it holds
            # its Python thread state (graphsentry.cluster), whatever its sinks do.
            hold_thread_state()
            dedup = self._local.dedup = Deduplicator(self.dedup_capacity)
        return dedup

    def __call__(self, items: list[Any]) -> list[Routed]:
        dedup, batch, out = self._dedup(), BridgeCounters(), []
        for item in items:
            out.extend(bridge_message(item, self.topics, dedup, batch, self.now,
                                      self.max_future_skew))
        with self._lock:
            self.counters.add(batch)
        return out


def _select(wanted: bool) -> Callable[[Routed], Message | None]:
    def select(routed: Routed) -> Message | None:
        return routed[1] if routed[0] is wanted else None

    return select


@dataclass
class BridgeFlow:
    flow: Dataflow
    counters: BridgeCounters
    delivery: kafka_io.DeliveryStats = field(default_factory=kafka_io.DeliveryStats)
    """What the broker acknowledged (Kafka sinks only)."""

    def samples(self) -> Samples:
        """Its metric samples now (``graphsentry.metrics``): what a process reports."""
        from graphsentry.metrics.views import bridge_samples

        return bridge_samples(self)


def build_bridge_flow(config: Config, source: Source[Any], activity_sink: DynamicSink[Message],
                      dlq_sink: DynamicSink[Message],
                      dedup_capacity: int | None = DEFAULT_CAPACITY,
                      flow_id: str = "graphsentry_bridge", now: Clock = _now,
                      delivery: kafka_io.DeliveryStats | None = None) -> BridgeFlow:
    """The bridge over ``source`` (raw Kafka messages / errors, or file reader items).

    Topic names come from ``config.kafka.topics`` (``activity``, ``dlq``); both sinks receive
    ``KafkaSinkMessage``s. ``dedup_capacity=None`` turns de-duplication off; records more than
    ``config.time.max_future_skew_seconds`` ahead of ``now()`` are dead letters. ``delivery``
    is the Kafka sinks' stats. The counters are served as metrics while the flow object lives.
    """
    topics = BridgeTopics(config.kafka.topics.activity, config.kafka.topics.dlq)
    counters = BridgeCounters()
    flow = Dataflow(flow_id)
    raw = op.input("read_raw", flow, source)
    # (is_activity, KafkaSinkMessage) per good record / dead letter
    routed = op.flat_map_batch("bridge_messages", raw,
                               BridgeStep(topics, dedup_capacity, counters, now,
                                          float(config.time.max_future_skew_seconds)))
    op.output("write_activity", op.filter_map("select_activity", routed, _select(True)),
              activity_sink)
    op.output("write_rejects", op.filter_map("select_rejects", routed, _select(False)),
              dlq_sink)
    built = BridgeFlow(flow, counters, delivery or kafka_io.DeliveryStats())
    from graphsentry.metrics.views import bridge_view, track

    track(built, bridge_view(built))
    return built


# --- files as a source ---------------------------------------------------------------------

ProgressCallback = Callable[[int], None]


class _FilePartition(StatefulSourcePartition[RawItem, int]):
    """Record candidates of one file (any delivery shape, gzip); state = candidates emitted."""

    def __init__(self, path: str, resume: int, batch_size: int,
                 on_read: ProgressCallback | None) -> None:
        self._handle: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        self._items = iter_stream(self._handle, "<stdin>" if path == "-" else path)
        self._done = resume
        self._batch_size = batch_size
        self._on_read = on_read
        self._position = 0
        for _ in islice(self._items, resume):  # resume: re-read what was already bridged
            pass

    def _tell(self) -> int:
        try:
            return self._handle.tell()
        except OSError:  # a pipe
            return self._position

    def next_batch(self) -> list[RawItem]:
        batch = list(islice(self._items, self._batch_size))
        if self._on_read is not None:
            position = self._tell()
            self._on_read(position - self._position)
            self._position = position
        if not batch:
            raise StopIteration
        self._done += len(batch)
        return batch

    def snapshot(self) -> int:
        return self._done

    def close(self) -> None:
        if self._handle is not sys.stdin.buffer:
            self._handle.close()


class FilesSource(FixedPartitionedSource[RawItem, int]):
    """Reader items (``(obj, source)`` or ``Reject``) of files, one partition per file, so files
    spread over processes. ``on_read(n)`` gets the bytes read (in-process runs only)."""

    def __init__(self, paths: Sequence[str], batch_size: int = FILE_BATCH_SIZE,
                 on_read: ProgressCallback | None = None) -> None:
        self.paths = list(paths)
        self.batch_size = batch_size
        self.on_read = on_read

    def list_parts(self) -> list[str]:
        return [f"{index}:{path}" for index, path in enumerate(self.paths)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _FilePartition:
        path = self.paths[int(for_part.split(":", 1)[0])]
        return _FilePartition(path, resume_state or 0, self.batch_size, self.on_read)


StoppableSource = GuardedSource
"""Ends its partitions once a stop is requested (see ``dataflows/kafka_client.py``)."""


# --- Kafka deployment ----------------------------------------------------------------------

def _describe_activity(activity: str) -> kafka_io.Describe:
    """A refused activity message as dead-letter text: the normalized record as JSON."""

    def describe(topic: str, value: bytes | None) -> str:
        if topic == activity and value:
            from graphsentry.avro import decode_activity, record_to_json

            return json.dumps(record_to_json(decode_activity(value)), ensure_ascii=False)
        return kafka_io.raw_text(value)

    return describe


def _kafka_sink(config: Config, stop: threading.Event | None) -> tuple[Any, kafka_io.DeliveryStats]:
    stats = kafka_io.DeliveryStats()
    return kafka_io.message_sink(config, describe=_describe_activity(config.kafka.topics.activity),
                                 stats=stats, stop=stop), stats


def kafka_bridge_flow(config: Config, *, tail: bool | None = None,
                      dedup_capacity: int | None = DEFAULT_CAPACITY,
                      stop: threading.Event | None = None) -> BridgeFlow:
    """Raw topic (``kafka.topics.raw``, consumer settings ``kafka.consumer``) → activity + DLQ
    topics (producer settings ``kafka.producer``); the input ends when ``stop`` is set."""
    source = activity_source(config, tail=tail, topic=config.kafka.topics.raw,
                             batch_size=min(RAW_BATCH_SIZE, config.bytewax.batch_size), stop=stop)
    sink, stats = _kafka_sink(config, stop)
    return build_bridge_flow(config, source, sink, sink, dedup_capacity, delivery=stats)


def files_bridge_flow(config: Config, paths: Sequence[str], *,
                      dedup_capacity: int | None = DEFAULT_CAPACITY,
                      on_read: ProgressCallback | None = None,
                      stop: threading.Event | None = None) -> BridgeFlow:
    """Files (backfill) → activity + DLQ topics; the input ends when ``stop`` is set."""
    sink, stats = _kafka_sink(config, stop)
    source = FilesSource(paths, config.bytewax.batch_size, on_read)
    return build_bridge_flow(config, GuardedSource(source, stop), sink, sink, dedup_capacity,
                             delivery=stats)


def get_flow(tail: bool | None = None) -> Dataflow:
    """Entry point for ``python -m bytewax.run "dataflows.bridge:get_flow()"``: configuration
    from ``GRAPHSENTRY_CONFIG`` / ``KAFKA_BOOTSTRAP``; prints its counters at exit."""
    import atexit

    from graphsentry.cluster import stop_on_signals
    from graphsentry.config import load_config

    config = load_config()
    built = kafka_bridge_flow(config, tail=tail, stop=stop_on_signals())
    from graphsentry.metrics.server import serve

    serve(config, name="bridge")  # one process per host
    atexit.register(lambda: print(f"graphsentry bridge: {built.counters.summary()}; "
                                  f"acknowledged: {built.delivery.summary() or 'nothing'}",
                                  file=sys.stderr))
    return built.flow
