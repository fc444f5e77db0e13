"""Kafka edges of the dataflows: the activity (or raw) source, message decoding, and producers
for alerts (Avro + JSON + OCSF), dead letters, late events and ready-made ``KafkaSinkMessage``s (the
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
from typing import TYPE_CHECKING, Any

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka.admin import AdminClient

from graphsentry.alerting.ocsf import alert_to_ocsf_json
from graphsentry.alerts import alert_to_avro, alert_to_json, signal_to_avro

if TYPE_CHECKING:
    from graphsentry.config import Config

RAW_LIMIT = 4096
AVRO_HEADERS = [("content-type", b"avro/binary")]
JSON_HEADERS = [("content-type", b"application/json")]

Outgoing = tuple[str, bytes | None, bytes, list[Any]]
"""One message for a ``ProducerSink`` encoder to emit: (topic, key, value, headers)."""
TimedOutgoing = tuple[str, bytes | None, bytes, list[Any], int]
"""The same with a message timestamp in epoch ms (0: the producer's clock)."""
Encode = Callable[[Any], Iterable[Outgoing | TimedOutgoing]]


def brokers(config: Config) -> list[str]:
    return [b.strip() for b in config.kafka.bootstrap.split(",") if b.strip()]


def activity_source(config: Config, *, tail: bool | None = None,
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


class RawActivitySource(FixedPartitionedSource[Message, int | None]):
    """One topic as a Bytewax source of confluent-kafka ``Message``s as they arrive (errors
    included: ``msg.error()``), for the detection flow's hot path: Bytewax's ``KafkaSource``
    copies each message into a ``KafkaSourceMessage`` (~2 µs apiece). Partitions (named
    ``{partition}-{topic}``, as ``KafkaSource`` names them), resume offsets, ``tail`` and the
    end-of-partition stop behave as in ``KafkaSource``."""

    def __init__(self, brokers: list[str], topic: str, *, tail: bool, starting_offset: int,
                 add_config: dict[str, str], batch_size: int) -> None:
        self.brokers, self.topic, self.tail = brokers, topic, tail
        self.starting_offset, self.add_config, self.batch_size = (starting_offset, add_config,
                                                                  batch_size)

    def list_parts(self) -> list[str]:
        client = AdminClient({"bootstrap.servers": ",".join(self.brokers), **self.add_config})
        topic = client.list_topics(self.topic).topics[self.topic]
        if topic.error is not None:
            raise RuntimeError(f"error listing partitions of Kafka topic {self.topic!r}: "
                               f"{topic.error.str()}")
        return [f"{index}-{self.topic}" for index in topic.partitions]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> _RawPartition:
        index, topic = for_part.split("-", 1)
        if topic != self.topic:
            raise ValueError(f"cannot resume partition {for_part!r} from topic {self.topic!r}")
        consumer = Consumer({
            "group.id": "BYTEWAX_IGNORED",  # offsets live in Bytewax's recovery, not Kafka
            "enable.auto.commit": "false",
            "bootstrap.servers": ",".join(self.brokers),
            "enable.partition.eof": str(not self.tail),
            **self.add_config,
        })
        offset = self.starting_offset if resume_state is None else resume_state
        consumer.assign([TopicPartition(topic, int(index), offset)])
        return _RawPartition(consumer, offset, self.batch_size)


class _RawPartition(StatefulSourcePartition[Message, int | None]):
    def __init__(self, consumer: Consumer, offset: int, batch_size: int) -> None:
        self.consumer, self.offset, self.batch_size = consumer, offset, batch_size
        self.eof = False

    def next_batch(self) -> list[Message]:
        if self.eof:
            raise StopIteration
        # What librdkafka has fetched already, without waiting (Bytewax's KafkaSource waits up
        # to 1 ms per call, ~5 % of the time here); after an empty batch Bytewax itself waits
        # 1 ms before asking again, so an idle partition does not spin.
        batch = self.consumer.consume(self.batch_size, 0)
        for position, msg in enumerate(batch):
            error = msg.error()
            if error is not None and error.code() == ConfluentKafkaError._PARTITION_EOF:
                self.eof = True  # stop at the next call, after this batch
                del batch[position:]
                break
        for msg in reversed(batch):  # resume after the last message read
            if msg.error() is None:
                self.offset = msg.offset() + 1  # type: ignore[operator]
                break
        return batch

    def snapshot(self) -> int | None:
        return self.offset

    def close(self) -> None:
        self.consumer.close()


def raw_activity_source(config: Config, *, tail: bool | None = None) -> RawActivitySource:
    """The normalized-activity topic as a :class:`RawActivitySource`."""
    kafka = config.kafka
    return RawActivitySource(
        brokers(config), kafka.topics.activity, tail=kafka.tail if tail is None else tail,
        starting_offset=OFFSET_BEGINNING if kafka.start == "beginning" else OFFSET_END,
        add_config={str(k): str(v) for k, v in kafka.consumer.items()},
        batch_size=config.bytewax.batch_size)


def message_source(msg: KafkaSourceMessage[Any, Any] | Message) -> str:
    if isinstance(msg, Message):
        return f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
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
    """A Kafka item (``KafkaSourceMessage``, ``KafkaError`` or a raw ``Message``) → a
    normalized record, or a reject dict marked ``{"reject": ...}``."""
    if type(item) is Message:
        error, value = item.error(), item.value()
        if error is None and value is not None:
            try:
                return decode(value)
            except Exception as exc:  # any malformed payload is a dead letter, never a crash
                return {"reject": reject(f"bad_avro: {type(exc).__name__}: {exc}", value,
                                         message_source(item))}
        reason = (f"kafka_error: {error}" if error is not None
                  else "missing_value: tombstone or empty message")
        return {"reject": reject(reason, value, message_source(item))}
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

    def __init__(self, config: Config, encode: Encode):
        self.settings: dict[str, Any] = {
            "bootstrap.servers": ",".join(brokers(config)),
            "enable.idempotence": True,
            "linger.ms": 20,
        }
        self.settings.update({str(k): v for k, v in config.kafka.producer.items()})
        self.encode = encode

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        return _ProducerPartition(dict(self.settings), self.encode)


def alert_sink(config: Config) -> ProducerSink:
    """Alerts as Avro on ``topics.alerts`` (key alert_id), JSON on ``topics.alerts_json`` and
    OCSF Detection Findings (JSON) on ``topics.alerts_ocsf``, each when configured."""
    topics = config.kafka.topics

    def encode(alert: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        key = alert["alert_id"].encode("utf-8")
        out = [(topics.alerts, key, alert_to_avro(alert), AVRO_HEADERS)]
        if topics.alerts_json:
            out.append((topics.alerts_json, key, alert_to_json(alert).encode("utf-8"),
                        JSON_HEADERS))
        if topics.alerts_ocsf:
            out.append((topics.alerts_ocsf, key, alert_to_ocsf_json(alert).encode("utf-8"),
                        JSON_HEADERS))
        return out

    return ProducerSink(config, encode)


def signal_sink(config: Any) -> ProducerSink | None:
    """Signals as Avro on ``topics.signals`` (key signal_id), when configured."""
    topic = config.kafka.topics.signals
    if not topic:
        return None

    def encode(signal: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        return [(topic, signal["signal_id"].encode("utf-8"), signal_to_avro(signal),
                 AVRO_HEADERS)]

    return ProducerSink(config, encode)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dlq_sink(config: Config) -> ProducerSink:
    """Rejects as JSON ``{reason, raw, source, at}`` on ``topics.dlq``."""
    topic = config.kafka.topics.dlq

    def encode(rej: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        body = dict(rej, at=_now_iso())
        return [(topic, None, json.dumps(body).encode("utf-8"), JSON_HEADERS)]

    return ProducerSink(config, encode)


def late_sink(config: Config) -> ProducerSink | None:
    """Late events (the compact event as JSON) on ``topics.late``, when configured."""
    topic = config.kafka.topics.late
    if not topic:
        return None

    def encode(event: Any) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        key = f"{event.tenant_id}/{event.app_id}".encode()
        return [(topic, key, json.dumps(asdict(event)).encode("utf-8"), JSON_HEADERS)]

    return ProducerSink(config, encode)


def message_sink(config: Config) -> ProducerSink:
    """Bytewax ``KafkaSinkMessage`` items produced as they are: topic (required), key, value,
    headers and timestamp (epoch ms; 0 lets the producer set it) all honoured."""

    def encode(msg: KafkaSinkMessage[bytes | None, bytes]) -> list[TimedOutgoing]:
        if msg.topic is None:
            raise ValueError(f"message without a topic: key={msg.key!r}")
        return [(msg.topic, msg.key, msg.value, list(msg.headers), msg.timestamp)]

    return ProducerSink(config, encode)
