"""Bounded replay against the real broker: the range source reads exactly the messages
timestamped in ``[from, to)`` (within the offsets Kafka's time index gives) and stops by itself."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main
from confluent_kafka import Producer

from dataflows.range_source import (
    RangePartition,
    TimeRangeSource,
    read_range,
    resolve_ranges,
)
from graphsentry.errors import GraphsentryError

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
PARTITIONS = 3
V = TypeVar("V")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def produce(bootstrap: str, topic: str, items: list[tuple[int, datetime, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, moment, value in items:
        producer.produce(topic, value=value, partition=partition, timestamp=_ms(moment))
    assert producer.flush(30) == 0


def timestamped_items(count: int, late: int, seed: int = 3) -> list[tuple[int, datetime, bytes]]:
    """``count`` messages over 6 h in time order per partition, then ``late`` stragglers whose
    timestamps lie anywhere in those 6 h."""
    rng = random.Random(seed)
    items = []
    for i in range(count):
        moment = T0 + timedelta(seconds=i * 6 * 3600 / count)
        items.append((rng.randrange(PARTITIONS), moment, f"m{i}".encode()))
    for j in range(late):
        moment = T0 + timedelta(seconds=rng.uniform(0, 6 * 3600))
        items.append((rng.randrange(PARTITIONS), moment, f"late{j}".encode()))
    return items


def expected_in_range(items: list[tuple[int, datetime, V]], start: datetime,
                      end: datetime) -> list[V]:
    """The documented semantics, computed from what was produced: per partition, from the first
    message at or after ``start`` up to (not including) the first at or after ``end``, the
    messages timestamped inside the range."""
    expected: list[V] = []
    for partition in range(PARTITIONS):
        log = [(moment, value) for p, moment, value in items if p == partition]
        first = next((i for i, (m, _) in enumerate(log) if m >= start), len(log))
        last = next((i for i, (m, _) in enumerate(log) if m >= end), len(log))
        expected += [value for moment, value in log[first:last] if start <= moment < end]
    return expected


@pytest.fixture
def filled_topic(kafka_bootstrap: str, topic_factory: Callable[..., str]
                 ) -> tuple[str, list[tuple[int, datetime, bytes]]]:
    # Old timestamps: keep retention from deleting them while the test runs.
    topic = topic_factory(partitions=PARTITIONS, prefix="test.replay",
                          config={"retention.ms": "-1"})
    items = timestamped_items(count=3000, late=60)
    produce(kafka_bootstrap, topic, items)
    return topic, items


def run_source(source: TimeRangeSource) -> list[bytes]:
    flow = Dataflow("range_test")
    values = op.input("read_range", flow, source)
    got: list[bytes] = []
    op.output("collect", op.map("value_of", values, lambda m: m.value), TestingSink(got))
    run_main(flow)  # returns only because every partition raised StopIteration
    return got


def test_source_reads_exactly_the_range_and_stops(
        kafka_bootstrap: str, filled_topic: tuple[str, list[tuple[int, datetime, bytes]]]) -> None:
    topic, items = filled_topic
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=4, minutes=7)
    expected = set(expected_in_range(items, start, end))
    assert 1400 < len(expected) < 1700
    read: list[int] = []
    got = run_source(TimeRangeSource(kafka_bootstrap, topic, start, end, batch_size=97,
                                     on_read=read.append))
    assert len(got) == len(set(got))
    assert set(got) == expected
    ranges = resolve_ranges(kafka_bootstrap, topic, start, end)
    assert sum(read) == sum(r.size for r in ranges)  # progress counts every offset in range
    assert {m.value for m in read_range(kafka_bootstrap, topic, start, end)} == expected


def test_a_partition_reports_what_is_left_of_its_range_as_its_lag(
        kafka_bootstrap: str, filled_topic: tuple[str, list[tuple[int, datetime, bytes]]]) -> None:
    topic, _items = filled_topic
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=4, minutes=7)
    span = next(r for r in resolve_ranges(kafka_bootstrap, topic, start, end) if r.size > 50)
    partition = RangePartition(kafka_bootstrap, span, batch_size=50)
    try:
        assert partition.lag() == (topic, span.partition, span.size)
        lags = []
        while True:
            try:
                partition.next_batch()
            except StopIteration:
                break
            lags.append(partition.lag()[2])
        assert lags == sorted(lags, reverse=True) and lags[0] < span.size
        assert partition.lag() == (topic, span.partition, 0)
    finally:
        partition.close()


def test_ranges_past_the_data_and_before_it(
        kafka_bootstrap: str, filled_topic: tuple[str, list[tuple[int, datetime, bytes]]]) -> None:
    topic, items = filled_topic
    tail = T0 + timedelta(hours=5, minutes=30)
    got = run_source(TimeRangeSource(kafka_bootstrap, topic, tail, tail + timedelta(days=1)))
    assert set(got) == set(expected_in_range(items, tail, tail + timedelta(days=1)))
    assert got
    before = T0 - timedelta(days=2)
    assert run_source(TimeRangeSource(kafka_bootstrap, topic, before,
                                      before + timedelta(hours=1))) == []


def test_missing_topic_and_reversed_range_are_clear_errors(kafka_bootstrap: str) -> None:
    with pytest.raises(GraphsentryError, match="does not exist"):
        resolve_ranges(kafka_bootstrap, "test.no-such-topic-for-replay", T0,
                       T0 + timedelta(hours=1))
    with pytest.raises(GraphsentryError, match="not before"):
        resolve_ranges(kafka_bootstrap, "anything", T0, T0)


# --- the replay command: detection over a range of normalized Avro records --------------------

def simulated_records(tmp_path: Path) -> list[dict[str, Any]]:
    """A small simulated tenant (warm-up day + attack day), normalized, in delivery order."""
    from graphsentry.ingest import iter_records
    from graphsentry.simulate import SimulationConfig, simulate

    sim = simulate(SimulationConfig(seed=11, users=20, days=2))
    raw = tmp_path / "sim.jsonl"
    raw.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
    return list(iter_records([str(raw)]))


@pytest.fixture
def activity_topic(kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
                   ) -> tuple[str, list[tuple[int, datetime, dict[str, Any]]]]:
    """Normalized Avro records keyed tenant/principal, message timestamp = time_generated, on 3
    partitions (chosen here, by key, so the expected range can be computed)."""
    from graphsentry.avro import encode_activity, message_key

    topic = topic_factory(partitions=PARTITIONS, prefix="test.replay.activity",
                          config={"retention.ms": "-1"})
    items = [(zlib.crc32(message_key(r)) % PARTITIONS, r["time_generated"], r)
             for r in simulated_records(tmp_path)]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    for partition, moment, record in items:
        producer.produce(topic, value=encode_activity(record), key=message_key(record),
                         partition=partition, timestamp=_ms(moment))
        producer.poll(0)
    assert producer.flush(60) == 0
    return topic, items


def test_replay_detects_on_exactly_the_range(
        kafka_bootstrap: str,
        activity_topic: tuple[str, list[tuple[int, datetime, dict[str, Any]]]]) -> None:
    from graphsentry.commands.replay import replay
    from graphsentry.config import config_from_dict
    from graphsentry.detection import run_embedded

    topic, items = activity_topic
    first_day = min(moment for _, moment, _ in items).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
    start, end = first_day + timedelta(hours=20), first_day + timedelta(days=1, hours=16)
    subset = expected_in_range(items, start, end)
    assert 0 < len(subset) < len(items)
    config = config_from_dict({"kafka": {"bootstrap": kafka_bootstrap}}, env={})
    replayed: list[dict[str, Any]] = []
    began = time.monotonic()
    stats = replay(config, topic, start, end, on_alert=replayed.append)
    assert time.monotonic() - began < 120  # it stopped by itself
    embedded: list[dict[str, Any]] = []
    expected = run_embedded(subset, config, on_alert=embedded.append)
    assert stats.events == expected.events == len(subset)
    assert stats.rejects == 0
    assert replayed, "the attack day should raise alerts"
    assert sorted(a["alert_id"] for a in replayed) == sorted(a["alert_id"] for a in embedded)
    clustered: list[dict[str, Any]] = []
    two = replay(config, topic, start, end, on_alert=clustered.append, processes=2)
    assert two.events == stats.events and two.messages == stats.messages
    assert sorted(a["alert_id"] for a in clustered) == sorted(a["alert_id"] for a in replayed)


def test_replay_command_errors_are_clear(kafka_bootstrap: str) -> None:
    def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "graphsentry.cli", "replay",
                               "--bootstrap", kafka_bootstrap, *args],
                              capture_output=True, text=True, timeout=120, check=False)

    reversed_range = run_cli("--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00Z")
    assert reversed_range.returncode == 2 and "is not before --to" in reversed_range.stderr
    bad_time = run_cli("--from", "yesterday", "--to", "2026-03-01T00:00:00Z")
    assert bad_time.returncode == 2 and "bad time 'yesterday'" in bad_time.stderr
    missing = run_cli("--topic", "test.replay.missing-topic", "--from=-2h", "--to", "now")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
