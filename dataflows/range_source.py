"""A bounded Kafka source: the messages of one topic whose timestamps fall in ``[start, end)``.

Bytewax's ``KafkaSource`` has no start-from-timestamp, so replays and backtests use this
``FixedPartitionedSource`` instead. Per partition the start offset is the broker's answer to
``offsets_for_times(start)`` and the end offset its answer to ``offsets_for_times(end)`` (the high
watermark when no message is that new). Kafka's time index makes both exact in one direction:
every offset before them has an older timestamp. Records delivered late (a timestamp inside the
range but an offset past ``end``) are not read; records read inside ``[start, end)`` whose
timestamp is outside the range (late arrivals from before ``start``) are skipped, so exactly the
messages with ``start <= timestamp < end`` inside those offsets come out. Each partition stops by
itself at its end offset, so a dataflow fed by this source finishes.

The same partition reader also backs :func:`read_range`, a plain iterator for commands that do
not need a dataflow (hunting).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from graphsentry.errors import GraphsentryError

DEFAULT_BATCH_SIZE = 1000
METADATA_TIMEOUT_S = 10.0
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

ProgressCallback = Callable[[int], None]
Message = KafkaSourceMessage[bytes | None, bytes | None]


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 time (``Z`` or an offset; no zone means UTC) or a relative one (``-2h``,
    ``-30m``, ``-1d``, ``-90s``: before ``now``), as a timezone-aware UTC datetime."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    if value.lower() == "now":
        return now or datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise GraphsentryError(
            f"bad time {text!r}: use ISO-8601 (2026-01-01T10:00:00Z) or relative (-2h, -30m, -1d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_range(start_text: str, end_text: str) -> tuple[datetime, datetime]:
    """Both ends of a ``--from``/``--to`` pair, checked to be in order."""
    now = datetime.now(UTC)
    start, end = parse_time(start_text, now), parse_time(end_text, now)
    if start >= end:
        raise GraphsentryError(
            f"--from {start.isoformat()} is not before --to {end.isoformat()}"
        )
    return start, end


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``[start_offset, end_offset)`` of one partition, and the time range to keep."""

    topic: str
    partition: int
    start_offset: int
    end_offset: int
    start_ms: int
    end_ms: int

    @property
    def size(self) -> int:
        return max(0, self.end_offset - self.start_offset)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _consumer(bootstrap: str, add_config: Mapping[str, Any] | None = None) -> Consumer:
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        # Offsets are chosen here, never committed: no consumer group is joined.
        "group.id": "graphsentry-range-ignored",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    config.update(add_config or {})
    return Consumer(config)


def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    """The partition numbers of ``topic``; a clear error when it is missing or unreachable."""
    try:
        metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise GraphsentryError(f"cannot reach Kafka to describe topic {topic!r}: {exc}") from None
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        reason = described.error.str() if described is not None and described.error else "unknown"
        raise GraphsentryError(f"topic {topic!r} does not exist ({reason})")
    return sorted(described.partitions)


def _offsets_at(consumer: Consumer, topic: str, partitions: Sequence[int],
                timestamp_ms: int) -> dict[int, int]:
    """Per partition, the first offset timestamped at or after ``timestamp_ms`` (-1: none)."""
    found = consumer.offsets_for_times(
        [TopicPartition(topic, p, timestamp_ms) for p in partitions], timeout=METADATA_TIMEOUT_S)
    failed = [f"{tp.partition}: {tp.error}" for tp in found if tp.error is not None]
    if failed:
        raise GraphsentryError(f"cannot look up offsets of topic {topic!r}: {'; '.join(failed)}")
    return {tp.partition: tp.offset for tp in found}


def resolve_ranges(bootstrap: str, topic: str, start: datetime, end: datetime,
                   add_config: Mapping[str, Any] | None = None) -> list[PartitionRange]:
    """Per partition of ``topic``, the offsets holding the messages timestamped in the range."""
    if start >= end:
        raise GraphsentryError(
            f"range start {start.isoformat()} is not before end {end.isoformat()}")
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    consumer = _consumer(bootstrap, add_config)
    try:
        partitions = topic_partitions(consumer, topic)
        # One lookup per bound: a request naming the same partition twice answers only once.
        firsts = _offsets_at(consumer, topic, partitions, start_ms)
        lasts = _offsets_at(consumer, topic, partitions, end_ms)
        ranges = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_S, cached=False)
            # offset -1: no message that new, so the range runs to the end of the partition.
            first = firsts[partition] if firsts[partition] >= 0 else high
            last = lasts[partition] if lasts[partition] >= 0 else high
            ranges.append(PartitionRange(topic, partition, max(first, low), max(last, low),
                                         start_ms, end_ms))
        return ranges
    except KafkaException as exc:
        raise GraphsentryError(f"cannot look up offsets of topic {topic!r}: {exc}") from None
    finally:
        consumer.close()


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    """Message headers as Bytewax's message type declares them (values as bytes)."""
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return [(str(k), v.encode() if isinstance(v, str) else (v or b"")) for k, v in items]


class RangePartition(StatefulSourcePartition[Message, int]):
    """Reads one partition from its start offset (or the resume offset) to its end offset."""

    def __init__(self, bootstrap: str, span: PartitionRange, resume_offset: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, add_config: Mapping[str, Any] | None = None,
                 on_read: ProgressCallback | None = None) -> None:
        self._span = span
        self._offset = span.start_offset if resume_offset is None else resume_offset
        self._batch_size = batch_size
        self._on_read = on_read
        self._done = self._offset >= span.end_offset
        self.skipped = 0  # read but timestamped outside the range
        self._consumer: Consumer | None = None
        if not self._done:
            self._consumer = _consumer(bootstrap, add_config)
            self._consumer.assign([TopicPartition(span.topic, span.partition, self._offset)])

    def next_batch(self) -> list[Message]:
        if self._done or self._consumer is None:
            raise StopIteration
        messages = self._consumer.consume(self._batch_size, 0.01)
        values: list[Message] = []
        read = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._done = True  # gaps (e.g. transaction markers) before the end offset
                    break
                raise GraphsentryError(f"error reading {self._span.topic}: {error}")
            offset = message.offset() or 0  # None only on error messages, handled above
            if offset >= self._span.end_offset:
                self._done = True
                break
            self._offset = offset + 1
            read += 1
            _kind, timestamp_ms = message.timestamp()
            if not self._span.start_ms <= timestamp_ms < self._span.end_ms:
                self.skipped += 1
                continue
            values.append(KafkaSourceMessage(
                key=message.key(), value=message.value(), topic=message.topic(),
                headers=_headers(message.headers()), latency=message.latency(), offset=offset,
                partition=message.partition(), timestamp=message.timestamp()))
        if self._offset >= self._span.end_offset:
            self._done = True
        if read and self._on_read is not None:
            self._on_read(read)
        return values

    def lag(self) -> tuple[str, int, int]:
        """``(topic, partition, messages of the range not read yet)``: replay's consumer lag,
        published as ``graphsentry_kafka_consumer_lag_messages`` (``kafka_client``'s guard)."""
        span = self._span
        return span.topic, span.partition, 0 if self._done else max(
            0, span.end_offset - self._offset)

    def snapshot(self) -> int:
        return self._offset

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class TimeRangeSource(FixedPartitionedSource[Message, int]):
    """The messages of ``topic`` timestamped in ``[start, end)`` (Bytewax's
    ``KafkaSourceMessage``, value = raw Avro bytes); every partition finishes by itself.

    Pass ``ranges`` (from :func:`resolve_ranges`) to pin the offsets, e.g. when the caller already
    resolved them to size a progress bar; otherwise each partition resolves its own on build.
    ``on_read(n)`` is called with the number of messages read per batch (in-process runs only).
    """

    def __init__(self, bootstrap: str, topic: str, start: datetime, end: datetime, *,
                 ranges: Sequence[PartitionRange] | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 add_config: Mapping[str, Any] | None = None,
                 on_read: ProgressCallback | None = None) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._start = start
        self._end = end
        self._ranges = {r.partition: r for r in ranges} if ranges is not None else None
        self._batch_size = batch_size
        self._add_config = dict(add_config or {})
        self._on_read = on_read

    def _all_ranges(self) -> dict[int, PartitionRange]:
        if self._ranges is None:
            resolved = resolve_ranges(self._bootstrap, self._topic, self._start, self._end,
                                      self._add_config)
            self._ranges = {r.partition: r for r in resolved}
        return self._ranges

    def list_parts(self) -> list[str]:
        return [f"{partition}-{self._topic}" for partition in sorted(self._all_ranges())]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> RangePartition:
        partition = int(for_part.split("-", 1)[0])
        return RangePartition(self._bootstrap, self._all_ranges()[partition], resume_state,
                              self._batch_size, self._add_config, self._on_read)


def read_range(bootstrap: str, topic: str, start: datetime, end: datetime, *,
               batch_size: int = DEFAULT_BATCH_SIZE, add_config: Mapping[str, Any] | None = None,
               on_read: ProgressCallback | None = None) -> Iterator[Message]:
    """The same messages as :class:`TimeRangeSource`, partition after partition, without Bytewax."""
    for span in resolve_ranges(bootstrap, topic, start, end, add_config):
        part = RangePartition(bootstrap, span, None, batch_size, add_config, on_read)
        try:
            while True:
                try:
                    yield from part.next_batch()
                except StopIteration:
                    break
        finally:
            part.close()
