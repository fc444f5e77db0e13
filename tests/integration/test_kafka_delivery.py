"""Delivery-checked Kafka sinks (``dataflows/kafka_io.py``) on the real broker: a record the
broker refuses for its content goes to the dead-letter topic with the broker's reason and its
innocent batch neighbours arrive; a broker that does not acknowledge fails the batch; summaries
count acknowledgements. Also pins librdkafka's own behaviour the sink is built on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage
from confluent_kafka import KafkaError, Producer

from dataflows import kafka_io
from dataflows.kafka_client import KafkaClientError, check_topics
from graphsentry.config import config_from_dict
from graphsentry.errors import DeliveryError
from tests.integration.kafka_util import read_all

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def sink_config(bootstrap: str, activity: str, dlq: str, **producer: Any) -> Any:
    return config_from_dict({"kafka": {"bootstrap": bootstrap, "producer": producer,
                                       "topics": {"activity": activity, "dlq": dlq}}},
                            env={})


def message(topic: str, n: int, timestamp: int) -> KafkaSinkMessage[bytes | None, bytes]:
    return KafkaSinkMessage(b"tenant/app", f"record-{n}".encode(), topic=topic,
                            headers=[], timestamp=timestamp)


def deliveries(bootstrap: str, topic: str, timestamps: list[int]) -> list[tuple[bytes, str]]:
    """librdkafka's delivery reports for one producer batch (idempotent, one partition)."""
    reports: list[tuple[bytes, str]] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "linger.ms": 50})
    for n, timestamp in enumerate(timestamps):
        producer.produce(topic, value=f"m{n}".encode(), timestamp=timestamp,
                         on_delivery=lambda err, msg: reports.append(
                             (msg.value(), err.name() if err else "OK")))
    assert producer.flush(30) == 0
    return sorted(reports)


def test_librdkafka_fails_the_whole_producer_batch_of_a_refused_record(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """What the sink is built on (librdkafka 2.16, Kafka 4.1, 1 h timestamp limit): one record
    two hours ahead fails every message of its batch with INVALID_TIMESTAMP, so the culprit
    cannot be told from its neighbours; with two culprits they get INVALID_RECORD and the rest
    _INVALID_DIFFERENT_RECORD."""
    topic = topic_factory(1, "refused")
    now, ahead = now_ms(), now_ms() + 2 * HOUR_MS
    one = deliveries(kafka_bootstrap, topic, [now, now, ahead, now])
    assert {status for _, status in one} == {"INVALID_TIMESTAMP"}
    two = dict(deliveries(kafka_bootstrap, topic, [now, ahead, ahead, now]))
    assert two == {b"m0": "_INVALID_DIFFERENT_RECORD", b"m1": "INVALID_RECORD",
                   b"m2": "INVALID_RECORD", b"m3": "_INVALID_DIFFERENT_RECORD"}
    assert read_all(kafka_bootstrap, topic) == []


@pytest.mark.parametrize("future", [[2], [1, 3]], ids=["one refused", "two refused"])
def test_refused_records_become_dead_letters_and_their_neighbours_arrive(
        kafka_bootstrap: str, topic_factory: Callable[..., str], future: list[int]) -> None:
    activity, dlq = topic_factory(1, "activity"), topic_factory(1, "dlq")
    config = sink_config(kafka_bootstrap, activity, dlq)
    stats = kafka_io.DeliveryStats()
    sink = kafka_io.message_sink(config, stats=stats).build("write", 0, 1)
    now = now_ms()
    batch = [message(activity, n, now + (2 * HOUR_MS if n in future else 0)) for n in range(5)]
    sink.write_batch(batch)
    sink.close()

    arrived = [m.value() for m in read_all(kafka_bootstrap, activity)]
    assert sorted(arrived) == sorted(f"record-{n}".encode() for n in range(5) if n not in future)
    letters = read_all(kafka_bootstrap, dlq)
    bodies = [json.loads(m.value() or b"") for m in letters]
    assert sorted(b["raw"] for b in bodies) == [f"record-{n}" for n in future]
    assert all(b["reason"] == "broker_rejected: INVALID_TIMESTAMP: Broker: Invalid timestamp"
               for b in bodies)
    assert all(m.key() == b"tenant/app" for m in letters)  # the original key
    assert all(m.timestamp()[1] >= now for m in letters)  # the producer's clock, not the bad one
    assert stats.acknowledged == {activity: 5 - len(future), dlq: len(future)}
    assert stats.refused == {"INVALID_TIMESTAMP": len(future)}


def test_a_message_too_large_for_the_topic_is_a_dead_letter(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    activity = topic_factory(1, "small", {"max.message.bytes": "2000"})
    dlq = topic_factory(1, "dlq")
    stats = kafka_io.DeliveryStats()
    sink = kafka_io.message_sink(sink_config(kafka_bootstrap, activity, dlq),
                                 stats=stats).build("write", 0, 1)
    big = KafkaSinkMessage(b"k", b"x" * 10_000, topic=activity, headers=[], timestamp=0)
    sink.write_batch([message(activity, 1, 0), big, message(activity, 2, 0)])
    sink.close()
    assert sorted(m.value() for m in read_all(kafka_bootstrap, activity)) == [b"record-1",
                                                                             b"record-2"]
    [letter] = [json.loads(m.value() or b"") for m in read_all(kafka_bootstrap, dlq)]
    assert letter["reason"].startswith("broker_rejected: MSG_SIZE_TOO_LARGE")
    assert letter["raw"] == "x" * kafka_io.RAW_LIMIT
    assert stats.refused == {"MSG_SIZE_TOO_LARGE": 1}


def test_an_unreachable_broker_fails_the_batch_after_bounded_retries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_io, "DELIVERY_BACKOFF_S", 0.1)
    config = sink_config("127.0.0.1:1", "graph.activity.v1", "graph.activity.dlq.v1",
                         **{"message.timeout.ms": 300})
    stats = kafka_io.DeliveryStats()
    sink = kafka_io.message_sink(config, stats=stats).build("write", 0, 1)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"did not acknowledge 2 message\(s\) to "
                       r"graph.activity.v1 after 3 tries: _MSG_TIMED_OUT"):
        sink.write_batch([message("graph.activity.v1", n, 0) for n in range(2)])
    assert time.monotonic() - started < 10
    assert stats.acknowledged == {} and stats.retried == 4  # never counted as written


def test_startup_check_names_a_tls_mismatch_within_seconds(kafka_bootstrap: str) -> None:
    settings = {"bootstrap.servers": kafka_bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": "PLAIN", "sasl.username": "$ConnectionString",
                "sasl.password": "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=k"}
    started = time.monotonic()
    with pytest.raises(KafkaClientError, match="TLS handshake failed") as failed:
        check_topics(settings, ["graph.activity.raw"], "raw")
    assert time.monotonic() - started < 5
    assert "SharedAccessKey" not in str(failed.value)


def test_startup_check_gives_up_on_an_unreachable_cluster() -> None:
    with pytest.raises(KafkaClientError, match=r"cannot reach Kafka \(output\) at 127.0.0.1:1 "
                       r"within 2s: .*Connection refused"):
        check_topics({"bootstrap.servers": "127.0.0.1:1"}, ["x"], "output", timeout=2)


def test_error_codes_the_sink_relies_on_exist() -> None:
    assert KafkaError._INVALID_DIFFERENT_RECORD == kafka_io.INNOCENT
    assert {KafkaError.INVALID_TIMESTAMP, KafkaError.INVALID_RECORD} <= kafka_io.CONTENT_ERRORS


def test_a_refused_dead_letter_is_sent_again_with_the_producers_clock(
        kafka_bootstrap: str, topic_factory: Callable[..., str]) -> None:
    """The bridge keeps the raw message's timestamp on its dead letters; one the broker refuses
    (a raw message stamped hours ahead) goes again, stamped now, rather than failing forever."""
    activity, dlq = topic_factory(1, "activity"), topic_factory(1, "dlq")
    stats = kafka_io.DeliveryStats()
    sink = kafka_io.message_sink(sink_config(kafka_bootstrap, activity, dlq),
                                 stats=stats).build("write", 0, 1)
    before = now_ms()
    letter = KafkaSinkMessage(b"hub", b'{"reason": "invalid_json: x"}', topic=dlq, headers=[],
                              timestamp=before + 3 * HOUR_MS)
    sink.write_batch([letter])
    sink.close()
    [got] = read_all(kafka_bootstrap, dlq)
    assert got.value() == b'{"reason": "invalid_json: x"}' and got.key() == b"hub"
    assert before <= got.timestamp()[1] < before + HOUR_MS
    assert stats.acknowledged == {dlq: 1} and stats.refused == {"INVALID_TIMESTAMP": 1}
