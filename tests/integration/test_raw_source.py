"""The detection flow's Kafka source (``kafka_io.RawActivitySource``) on the real broker:
partitions as Bytewax's ``KafkaSource`` names them, bounded runs stop at the end, tailing runs
wait for more, resume offsets skip what was read, and messages decode or become dead letters."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Message, Producer

from dataflows.kafka_io import decode_message
from dataflows.kafka_source import RawActivitySource

DEADLINE_S = 20.0


def produce(bootstrap: str, topic: str, values: list[bytes | None], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=value, partition=partition)
    assert producer.flush(10) == 0


def source(bootstrap: str, topic: str, tail: bool) -> RawActivitySource:
    return RawActivitySource([bootstrap], topic, tail=tail, starting_offset=OFFSET_BEGINNING,
                             add_config={}, batch_size=3)


def read(part: Any, want: int) -> list[Message]:
    """Batches until ``want`` messages arrived (or the deadline)."""
    got: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < want and time.monotonic() < deadline:
        got += part.next_batch()
    return got


def test_bounded_source_reads_every_partition_to_its_end(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(2, "raw")
    produce(kafka_bootstrap, topic, [b"a0", b"a1", b"a2", b"a3"], partition=0)
    produce(kafka_bootstrap, topic, [b"b0"], partition=1)
    src = source(kafka_bootstrap, topic, tail=False)
    assert sorted(src.list_parts()) == [f"0-{topic}", f"1-{topic}"]
    values: dict[str, list[bytes | None]] = {}
    for name in src.list_parts():
        part = src.build_part("read", name, None)
        seen: list[bytes | None] = []
        deadline = time.monotonic() + DEADLINE_S
        with pytest.raises(StopIteration):
            while time.monotonic() < deadline:
                seen += [m.value() for m in part.next_batch()]
        part.close()
        values[name] = seen
    assert values == {f"0-{topic}": [b"a0", b"a1", b"a2", b"a3"], f"1-{topic}": [b"b0"]}


def test_tailing_source_waits_for_more_and_resumes_after_what_it_read(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(1, "raw")
    produce(kafka_bootstrap, topic, [b"m0", b"m1"])
    src = source(kafka_bootstrap, topic, tail=True)
    part = src.build_part("read", f"0-{topic}", None)
    assert [m.value() for m in read(part, 2)] == [b"m0", b"m1"]
    assert part.next_batch() == []  # the end: no stop, no wait
    produce(kafka_bootstrap, topic, [b"m2"])
    assert [m.value() for m in read(part, 1)] == [b"m2"]
    resume_at = part.snapshot()
    part.close()
    assert resume_at == 3
    produce(kafka_bootstrap, topic, [b"m3"])
    resumed = src.build_part("read", f"0-{topic}", resume_at)
    assert [m.value() for m in read(resumed, 1)] == [b"m3"]
    resumed.close()
    with pytest.raises(ValueError, match="cannot resume"):
        src.build_part("read", "0-another.topic", None)


def test_raw_messages_decode_or_become_dead_letters(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(1, "raw")
    produce(kafka_bootstrap, topic, [b"good", None, b"\xff-bad"])
    part = source(kafka_bootstrap, topic, tail=True).build_part("read", f"0-{topic}", None)
    messages = read(part, 3)
    part.close()

    def decode(value: bytes) -> dict[str, Any]:
        if value != b"good":
            raise ValueError("not a record")
        return {"request_id": "r"}

    good, tombstone, bad = (decode_message(m, decode) for m in messages)
    assert good == {"request_id": "r"}
    assert tombstone["reject"]["reason"].startswith("missing_value")
    assert bad["reject"]["reason"] == "bad_avro: ValueError: not a record"
    assert bad["reject"]["raw"].startswith("base64:")
    assert bad["reject"]["source"] == f"{topic}/0/2"
