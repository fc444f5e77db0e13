"""Kafka edges of the dataflows: the activity (or raw) source, message decoding, and producers
for alerts (Avro + JSON), dead letters, late events and ready-made ``KafkaSinkMessage``s (the
bridge).

The sinks are Bytewax ``DynamicSink``s with one producer per worker (``enable.idempotence``),
a delivery callback that counts failures (Bytewax's ``KafkaSink`` has none), and one
``flush`` per batch that carried anything.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Producer

from graphsentry.alerts import alert_to_avro, alert_to_json

RAW_LIMIT = 4096
AVRO_HEADERS = [("content-type", b"avro/binary")]
JSON_HEADERS = [("content-type", b"application/json")]

Outgoing = tuple[str, bytes | None, bytes, list[Any]]
"""One message for a ``ProducerSink`` encoder to emit: (topic, key, value, headers)."""
TimedOutgoing = tuple[str, bytes | None, bytes, list[Any], int]
"""The same with a message timestamp in epoch ms (0: the producer's clock)."""
Encode = Callable[[Any], Iterable[Outgoing | TimedOutgoing]]


def brokers(config: Any) -> list[str]:
    return [b.strip() for b in config.kafka.bootstrap.split(",") if b.strip()]


def activity_source(config: Any, *, tail: bool | None = None,
                    topic: str | None = None, batch_size: int | None = None) -> KafkaSource:
    """The normalized-activity topic (or ``topic``) as a Bytewax source (errors become
    ``KafkaError`` items, not crashes)."""
    kafka = config.kafka
    return KafkaSource(
        brokers(config), [topic or kafka.topics.activity],
        tail=kafka.tail if tail is None else tail,
        starting_offset=OFFSET_BEGINNING if kafka.start == "beginning" else OFFSET_END,
        add_config={str(k): str(v) for k, v in kafka.consumer.items()},
        batch_size=batch_size or config.bytewax.batch_size, raise_on_errors=False)


def message_source(msg: KafkaSourceMessage[Any, Any]) -> str:
    return f"{msg.topic}/{msg.partition}/{msg.offset}"


def reject(reason: str, raw: bytes | str | None, source: str) -> dict[str, Any]:
    """A dead letter in the contract's shape (``docs/architecture.md``)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = "base64:" + base64.b64encode(raw[:RAW_LIMIT]).decode("ascii")
    else:
        text = raw or ""
    return {"reason": reason, "raw": text[:RAW_LIMIT], "source": source}


def decode_message(item: Any, decode: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
    """A Kafka item → a normalized record, or a reject dict marked ``{"reject": ...}``."""
    if isinstance(item, KafkaError):
        return {"reject": reject(f"kafka_error: {item.err}", item.msg.value,
                                 message_source(item.msg))}
    if not isinstance(item, KafkaSourceMessage):
        return item if isinstance(item, dict) else {"reject": reject(
            "not_an_object: expected a record", repr(item), "input")}
    if item.value is None:
        return {"reject": reject("missing_value: tombstone or empty message", None,
                                 message_source(item))}
    try:
        return decode(item.value)
    except Exception as exc:  # any malformed payload is a dead letter, never a crash
        return {"reject": reject(f"bad_avro: {type(exc).__name__}: {exc}", item.value,
                                 message_source(item))}


class _ProducerPartition(StatelessSinkPartition[Any]):
    def __init__(self, config: dict[str, Any], encode: Encode):
        self.producer = Producer(config)
        self.encode = encode
        self.failed = 0

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed += 1
            print(f"graphsentry: Kafka delivery failed: {err}", file=sys.stderr)

    def write_batch(self, items: list[Any]) -> None:
        if not items:
            return
        for item in items:
            for topic, key, value, headers, *timestamp in self.encode(item):
                while True:
                    try:
                        self.producer.produce(topic, value=value, key=key, headers=headers,
                                              timestamp=timestamp[0] if timestamp else 0,
                                              on_delivery=self._delivered)
                        break
                    except BufferError:  # local queue full: let deliveries drain
                        self.producer.poll(0.1)
                self.producer.poll(0)
        self.producer.flush()

    def close(self) -> None:
        self.producer.flush()


class ProducerSink(DynamicSink[Any]):
    """A sink that turns each item into Kafka messages with ``encode`` (one producer/worker)."""

    def __init__(self, config: Any, encode: Encode):
        self.settings: dict[str, Any] = {
            "bootstrap.servers": ",".join(brokers(config)),
            "enable.idempotence": True,
            "linger.ms": 20,
        }
        self.settings.update({str(k): v for k, v in config.kafka.producer.items()})
        self.encode = encode

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        return _ProducerPartition(dict(self.settings), self.encode)


def alert_sink(config: Any) -> ProducerSink:
    """Alerts as Avro on ``topics.alerts`` (key alert_id) and JSON on ``topics.alerts_json``."""
    topics = config.kafka.topics

    def encode(alert: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        key = alert["alert_id"].encode("utf-8")
        out = [(topics.alerts, key, alert_to_avro(alert), AVRO_HEADERS)]
        if topics.alerts_json:
            out.append((topics.alerts_json, key, alert_to_json(alert).encode("utf-8"),
                        JSON_HEADERS))
        return out

    return ProducerSink(config, encode)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dlq_sink(config: Any) -> ProducerSink:
    """Rejects as JSON ``{reason, raw, source, at}`` on ``topics.dlq``."""
    topic = config.kafka.topics.dlq

    def encode(rej: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        body = dict(rej, at=_now_iso())
        return [(topic, None, json.dumps(body).encode("utf-8"), JSON_HEADERS)]

    return ProducerSink(config, encode)


def late_sink(config: Any) -> ProducerSink | None:
    """Late events (the compact event as JSON) on ``topics.late``, when configured."""
    topic = config.kafka.topics.late
    if not topic:
        return None

    def encode(event: Any) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        key = f"{event.tenant_id}/{event.app_id}".encode()
        return [(topic, key, json.dumps(asdict(event)).encode("utf-8"), JSON_HEADERS)]

    return ProducerSink(config, encode)


def message_sink(config: Any) -> ProducerSink:
    """Bytewax ``KafkaSinkMessage`` items produced as they are: topic (required), key, value,
    headers and timestamp (epoch ms; 0 lets the producer set it) all honoured."""

    def encode(msg: KafkaSinkMessage[bytes | None, bytes]) -> list[TimedOutgoing]:
        if msg.topic is None:
            raise ValueError(f"message without a topic: key={msg.key!r}")
        return [(msg.topic, msg.key, msg.value, list(msg.headers), msg.timestamp)]

    return ProducerSink(config, encode)
