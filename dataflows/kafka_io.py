"""Kafka edges of the dataflows: message decoding and the delivery-checked producers for
signals (Avro), alerts (Avro + JSON + OCSF), dead letters, late events and ready-made
``KafkaSinkMessage``s (the bridge). The sources are in ``dataflows/kafka_source.py``.

Every sink is a :class:`ProducerSink`: one idempotent producer per worker, and a batch is
written only when the broker acknowledged every message of it (Bytewax's ``KafkaSink`` has no
delivery callback at all). ``write_batch`` produces, flushes and reads each message's delivery
report (:class:`_Delivery`):

* acknowledged: counted in :class:`DeliveryStats` (summaries count these, never what was merely
  handed to the producer);
* refused for its content (``INVALID_RECORD``, ``INVALID_TIMESTAMP``, ``MSG_SIZE_TOO_LARGE``,
  ``RECORD_LIST_TOO_LARGE``, ``INVALID_MSG``): librdkafka 2.16 against Kafka 4.1 reports one
  bad record by failing *every* message of its producer batch with the bad record's error, and
  several bad records as ``INVALID_RECORD`` for each of them plus
  ``_INVALID_DIFFERENT_RECORD`` for the rest (measured in
  ``tests/integration/test_kafka_delivery.py``). So each refused message is produced again
  alone: what the broker accepts alone was innocent; what it refuses alone goes to the
  dead-letter topic with the broker's reason (``broker_rejected: INVALID_TIMESTAMP: …``);
* ``_INVALID_DIFFERENT_RECORD``: innocent, produced again;
* anything else that can pass (broker away longer than ``message.timeout.ms``, leader changes,
  a fatal producer state, which rebuilds the producer): produced again in place, at most
  :data:`DELIVERY_ATTEMPTS` times with a doubling back-off from :data:`DELIVERY_BACKOFF_S`;
  then :class:`~graphsentry.errors.DeliveryError` is raised, the batch (and its Bytewax epoch)
  fails, and a restart resumes from the last snapshot: at-least-once, nothing lost;
* a configuration problem (authentication, ACLs, TLS) raises at once.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSourceMessage
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka import KafkaException, Message, Producer

from dataflows.kafka_client import ClientHealth, client_config, config_problem
from graphsentry.alerting.ocsf import alert_to_ocsf_json
from graphsentry.alerts import alert_to_avro, alert_to_json, signal_to_avro
from graphsentry.cluster import hold_thread_state
from graphsentry.errors import DeliveryError, redact
from graphsentry.metrics.health import HEALTH
from graphsentry.metrics.samples import Samples

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
Describe = Callable[[str, bytes | None], str]
"""(topic, value) → the text a dead letter shows as ``raw`` for a refused message."""

DELIVERY_ATTEMPTS = 3
"""Tries of a message that failed for a reason that can pass, before the batch fails (wanted
config key: ``kafka.delivery.attempts``). Each try waits up to the producer's
``message.timeout.ms`` (librdkafka default 300000: it retries by itself meanwhile)."""
DELIVERY_BACKOFF_S = 1.0
"""Wait before the second try, doubled before each further one (wanted config key:
``kafka.delivery.backoff_seconds``)."""
DELIVERY_BACKOFF_MAX_S = 30.0
FLUSH_SLICE_S = 0.5
STOP_WAIT_S = 10.0
"""How long a worker asked to stop still waits for acknowledgements before it gives the batch
up (it fails; the epoch is replayed from the last snapshot at the next start)."""
CONTENT_ERRORS = frozenset({
    ConfluentKafkaError.INVALID_RECORD, ConfluentKafkaError.INVALID_TIMESTAMP,
    ConfluentKafkaError.MSG_SIZE_TOO_LARGE, ConfluentKafkaError.RECORD_LIST_TOO_LARGE,
    ConfluentKafkaError.INVALID_MSG})
INNOCENT = ConfluentKafkaError._INVALID_DIFFERENT_RECORD


def brokers(config: Config) -> list[str]:
    return [b.strip() for b in config.kafka.bootstrap.split(",") if b.strip()]


def message_source(msg: KafkaSourceMessage[Any, Any] | Message) -> str:
    if isinstance(msg, Message):
        return f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
    return f"{msg.topic}/{msg.partition}/{msg.offset}"


def raw_text(raw: bytes | str | None) -> str:
    """A payload as dead-letter text: UTF-8 as is, anything else as ``base64:…``; at most
    :data:`RAW_LIMIT` characters."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = "base64:" + base64.b64encode(raw[:RAW_LIMIT]).decode("ascii")
    else:
        text = raw or ""
    return text[:RAW_LIMIT]


def reject(reason: str, raw: bytes | str | None, source: str,
           key: bytes | None = None) -> dict[str, Any]:
    """A dead letter in the contract's shape (``docs/architecture.md``); ``key`` (the source
    message's key, if any) travels as ``"key"`` and becomes the dead letter's message key."""
    body: dict[str, Any] = {"reason": reason, "raw": raw_text(raw), "source": source}
    if key is not None:
        body["key"] = key
    return body


def decode_message(item: Any, decode: Callable[[bytes], dict[str, Any]]) -> dict[str, Any]:
    """A Kafka item (``KafkaSourceMessage``, ``KafkaError`` or a raw ``Message``) → a
    normalized record, or a reject dict marked ``{"reject": ...}``."""
    if type(item) is Message:
        error, value = item.error(), item.value()
        if error is None and value:
            try:
                return decode(value)
            except Exception as exc:  # any malformed payload is a dead letter, never a crash
                return {"reject": reject(f"bad_avro: {type(exc).__name__}: {exc}", value,
                                         message_source(item), item.key())}
        return {"reject": _unreadable(error, value, message_source(item), item.key())}
    if isinstance(item, KafkaError):
        return {"reject": reject(f"kafka_error: {item.err}", item.msg.value,
                                 message_source(item.msg), item.msg.key)}
    if not isinstance(item, KafkaSourceMessage):
        return item if isinstance(item, dict) else {"reject": reject(
            "not_an_object: expected a record", repr(item), "input")}
    if not item.value:
        return {"reject": _unreadable(None, item.value, message_source(item), item.key)}
    try:
        return decode(item.value)
    except Exception as exc:  # any malformed payload is a dead letter, never a crash
        return {"reject": reject(f"bad_avro: {type(exc).__name__}: {exc}", item.value,
                                 message_source(item), item.key)}


def _unreadable(error: Any, value: bytes | None, source: str,
                key: bytes | None) -> dict[str, Any]:
    """The dead letter of a message with an error, no value (a tombstone) or an empty one."""
    if error is not None:
        reason = f"kafka_error: {error}"
    elif value is None:
        reason = "missing_value: tombstone (the message has no value)"
    else:
        reason = "empty_value: the message value is empty (0 bytes)"
    return reject(reason, value, source, key)




# --- delivery-checked producers ------------------------------------------------------------

@dataclass
class DeliveryStats:
    """What the broker acknowledged and refused, summed over the workers of a process."""

    acknowledged: Counter[str] = field(default_factory=Counter)
    """Messages acknowledged, by topic."""
    refused: Counter[str] = field(default_factory=Counter)
    """Messages refused for their content (now dead letters), by broker error name."""
    retried: int = 0
    """Messages produced again after a failure that could pass."""
    failed: Counter[str] = field(default_factory=Counter)
    """Messages not acknowledged when their batch was given up (``DeliveryError``), by topic."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, acknowledged: Counter[str], refused: Counter[str], retried: int,
            failed: Counter[str] | None = None) -> None:
        with self._lock:
            self.acknowledged.update(acknowledged)
            self.refused.update(refused)
            self.retried += retried
            if failed:
                self.failed.update(failed)

    def as_dict(self) -> dict[str, Any]:
        return {"acknowledged": dict(self.acknowledged), "refused": dict(self.refused),
                "retried": self.retried, "failed": dict(self.failed)}

    @classmethod
    def from_samples(cls, samples: Samples) -> DeliveryStats:
        """The delivery counts of metric samples (``graphsentry.metrics``), e.g. summed over
        the processes of a run."""
        return cls(samples.by("graphsentry_delivered_messages_total", "topic"),
                   samples.by("graphsentry_delivery_refused_total", "error"),
                   samples.count("graphsentry_delivery_retries_total"),
                   samples.by("graphsentry_delivery_failed_messages_total", "topic"))

    def summary(self) -> str:
        """``topic n, …`` acknowledged, then refused and retried counts when there are any;
        empty when nothing was produced."""
        parts = [f"{topic} {n}" for topic, n in sorted(self.acknowledged.items())]
        if self.refused:
            reasons = ", ".join(f"{name} {n}" for name, n in sorted(self.refused.items()))
            parts.append(f"refused {sum(self.refused.values())} ({reasons}) -> dead letters")
        if self.retried:
            parts.append(f"{self.retried} produced again after a failure")
        return ", ".join(parts)

    def merge(self, data: dict[str, Any]) -> None:
        """Add another process's :meth:`as_dict`."""
        self.add(Counter(data.get("acknowledged", {})), Counter(data.get("refused", {})),
                 int(data.get("retried", 0)), Counter(data.get("failed", {})))


def _timed(message: Outgoing | TimedOutgoing) -> TimedOutgoing:
    return message if len(message) == 5 else (*message, 0)


class _Delivery:
    """One producer and the delivery protocol of the module docstring."""

    def __init__(self, settings: dict[str, Any], stats: DeliveryStats,
                 refuse: Callable[[TimedOutgoing, ConfluentKafkaError],
                                  TimedOutgoing | None] | None,
                 stop: threading.Event | None) -> None:
        self.health = ClientHealth("producer")
        self.settings = client_config(settings, self.health)
        self.producer = Producer(self.settings)
        self.stats, self.refuse, self.stop = stats, refuse, stop
        self.where = redact(str(settings.get("bootstrap.servers", "?")))
        self._failed: list[tuple[ConfluentKafkaError, TimedOutgoing]] = []
        self._acked: Counter[str] = Counter()

    def _report(self, message: TimedOutgoing, err: ConfluentKafkaError | None,
                _msg: Message) -> None:
        """Delivery report of ``message`` (kept as produced: a failed report's own timestamp
        is not the one that was sent)."""
        if err is None:
            self._acked[message[0]] += 1
        else:
            self._failed.append((err, message))

    def _send(self, messages: Sequence[TimedOutgoing]) -> list[tuple[ConfluentKafkaError,
                                                                     TimedOutgoing]]:
        """Produce and flush ``messages``; the failed ones with their errors."""
        self._failed = []
        local: list[tuple[ConfluentKafkaError, TimedOutgoing]] = []
        producer = self.producer
        for message in messages:
            topic, key, value, headers, timestamp = message
            while True:
                try:
                    producer.produce(topic, value=value, key=key, headers=headers,
                                     timestamp=timestamp,
                                     on_delivery=partial(self._report, message))
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.1)
                except KafkaException as exc:  # refused before sending (too large, fatal)
                    local.append((exc.args[0], message))
                    break
            producer.poll(0)
        self._flush()
        return local + self._failed

    def _flush(self) -> None:
        give_up = None
        while self.producer.flush(FLUSH_SLICE_S) > 0:
            HEALTH.beat()  # waiting for the broker is progress for /live, not a hang
            if self.stop is not None and self.stop.is_set():
                give_up = give_up or time.monotonic() + STOP_WAIT_S
                if time.monotonic() >= give_up:
                    raise DeliveryError(f"stopping: Kafka at {self.where} had not acknowledged "
                                        f"{len(self.producer)} message(s) after "
                                        f"{STOP_WAIT_S:g}s; they are produced again at the "
                                        "next start")
        self.producer.poll(0)

    def deliver(self, messages: list[TimedOutgoing]) -> None:
        """Produce ``messages`` until each is acknowledged or dead-lettered; raise
        :class:`DeliveryError` otherwise."""
        attempt, delay, retried = 1, DELIVERY_BACKOFF_S, 0
        refused: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        self._acked = Counter()
        acked_before = Counter[str]()
        try:
            while messages:
                acked_before = Counter(self._acked)
                again, passing, suspects = [], [], []
                for err, message in self._send(messages):
                    if err.code() == INNOCENT:
                        again.append(message)
                    elif err.code() in CONTENT_ERRORS:
                        suspects.append(message)
                    elif (problem := config_problem(err)) is not None and not err.fatal():
                        raise DeliveryError(f"Kafka at {self.where} ({message[0]}): {problem}")
                    else:
                        passing.append((err, message))
                for message in suspects:  # alone, a message gets its own verdict
                    for err, alone in self._send([message]):
                        if err.code() in CONTENT_ERRORS:
                            refused[err.name()] += 1
                            again.append(self._dead_letter(alone, err))
                        else:
                            passing.append((err, alone))
                if passing:
                    err, message = passing[0]
                    problem = self.health.problem  # what the error callback saw meanwhile
                    if problem and not problem.startswith("fatal"):
                        raise DeliveryError(f"Kafka at {self.where} ({message[0]}): {problem}")
                    if err.fatal() or problem:
                        self.producer = Producer(self.settings)  # a fatal state is final
                        self.health.problem = None
                    if attempt >= DELIVERY_ATTEMPTS:
                        raise DeliveryError(
                            f"Kafka at {self.where} did not acknowledge {len(passing)} "
                            f"message(s) to {message[0]} after {attempt} tries: "
                            f"{err.name()}: {err.str()}")
                    attempt += 1
                    retried += len(passing)
                    self._pause(delay)
                    delay = min(delay * 2, DELIVERY_BACKOFF_MAX_S)
                messages = again + [m for _, m in passing]
        except DeliveryError:  # what this try did not get acknowledged
            failed = Counter(m[0] for m in messages) - (self._acked - acked_before)
            raise
        finally:
            self.stats.add(self._acked, refused, retried, failed)

    def _dead_letter(self, message: TimedOutgoing, err: ConfluentKafkaError) -> TimedOutgoing:
        if self.refuse is None:
            raise DeliveryError(f"Kafka at {self.where} refused a message to {message[0]}: "
                                f"{err.name()}: {err.str()} (no dead-letter topic to put it on)")
        letter = self.refuse(message, err)
        if letter is None:
            raise DeliveryError(f"the dead-letter topic {message[0]} refused a dead letter: "
                                f"{err.name()}: {err.str()}")
        return letter

    def _pause(self, seconds: float) -> None:
        HEALTH.beat()
        if self.stop is not None:
            if self.stop.wait(seconds):
                raise DeliveryError("stopping while Kafka was unavailable; the batch is "
                                    "produced again at the next start")
        else:
            time.sleep(seconds)

    def close(self) -> None:
        self.producer.flush(STOP_WAIT_S)


class _ProducerPartition(StatelessSinkPartition[Any]):
    def __init__(self, delivery: _Delivery, encode: Encode) -> None:
        self.delivery = delivery
        self.encode = encode

    def write_batch(self, items: list[Any]) -> None:
        if items:
            encode = self.encode
            self.delivery.deliver([_timed(m) for item in items for m in encode(item)])

    def close(self) -> None:
        self.delivery.close()


class ProducerSink(DynamicSink[Any]):
    """A sink that turns each item into Kafka messages with ``encode`` and returns from a batch
    only when the broker acknowledged all of them (one producer per worker).

    ``dlq`` is the topic for messages the broker refuses for their content (None: such a
    refusal fails the batch); ``describe(topic, value)`` gives their ``raw`` text. ``stats``
    collects what was acknowledged; ``stop`` bounds the wait for acknowledgements once set.
    """

    def __init__(self, config: Config, encode: Encode, *, dlq: str | None = None,
                 describe: Describe | None = None, stats: DeliveryStats | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings: dict[str, Any] = {
            "bootstrap.servers": ",".join(brokers(config)),
            "enable.idempotence": True,
            "linger.ms": 20,
        }
        self.settings.update({str(k): v for k, v in config.kafka.producer.items()})
        self.encode = encode
        self.dlq = dlq
        self.describe = describe or (lambda _topic, value: raw_text(value))
        self.stats = stats if stats is not None else DeliveryStats()
        self.stop = stop

    def refusal(self, message: TimedOutgoing,
                err: ConfluentKafkaError) -> TimedOutgoing | None:
        """The dead letter of a message the broker refused for its content: the original key,
        the producer's clock as timestamp (the refused one may be the problem). A refused dead
        letter is tried once more with the producer's clock; None when that was it already."""
        topic, key, value, headers, timestamp = message
        if topic == self.dlq:
            return (topic, key, value, headers, 0) if timestamp else None
        body = {"reason": f"broker_rejected: {err.name()}: {err.str()}",
                "raw": self.describe(topic, value)[:RAW_LIMIT],
                "source": f"{topic} (message timestamp {timestamp})", "at": _now_iso()}
        assert self.dlq is not None
        return (self.dlq, key, json.dumps(body, ensure_ascii=False).encode("utf-8"),
                list(JSON_HEADERS), 0)

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProducerPartition:
        hold_thread_state()  # runs on the worker's thread (graphsentry.cluster)
        delivery = _Delivery(dict(self.settings), self.stats,
                             self.refusal if self.dlq else None, self.stop)
        return _ProducerPartition(delivery, self.encode)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_sink(config: Config, *, stats: DeliveryStats | None = None,
               stop: threading.Event | None = None) -> ProducerSink:
    """Alerts as Avro on ``topics.alerts`` (key alert_id), JSON on ``topics.alerts_json`` and
    OCSF Detection Findings (JSON) on ``topics.alerts_ocsf``, each when configured; an alert
    the broker refuses goes to ``topics.dlq``."""
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

    def describe(topic: str, value: bytes | None) -> str:
        if topic == topics.alerts and value:
            from graphsentry.alerts import alert_from_avro
            return alert_to_json(alert_from_avro(value))
        return raw_text(value)

    return ProducerSink(config, encode, dlq=topics.dlq, describe=describe, stats=stats,
                        stop=stop)


def signal_sink(config: Config, *, stats: DeliveryStats | None = None,
                stop: threading.Event | None = None) -> ProducerSink | None:
    """Signals as Avro on ``topics.signals`` (key signal_id), when configured; a signal the
    broker refuses goes to ``topics.dlq``."""
    topic = config.kafka.topics.signals
    if not topic:
        return None

    def encode(signal: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        return [(topic, signal["signal_id"].encode("utf-8"), signal_to_avro(signal),
                 AVRO_HEADERS)]

    return ProducerSink(config, encode, dlq=config.kafka.topics.dlq, stats=stats, stop=stop)


def dlq_sink(config: Config, *, stats: DeliveryStats | None = None,
             stop: threading.Event | None = None) -> ProducerSink:
    """Rejects as JSON ``{reason, raw, source, at}`` on ``topics.dlq``, keyed by the source
    message's key when the reject carries one (``"key"``)."""
    topic = config.kafka.topics.dlq

    def encode(rej: dict[str, Any]) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        body = {k: v for k, v in rej.items() if k != "key"}
        body["at"] = _now_iso()
        return [(topic, rej.get("key"), json.dumps(body).encode("utf-8"), JSON_HEADERS)]

    return ProducerSink(config, encode, stats=stats, stop=stop)


def late_sink(config: Config, *, stats: DeliveryStats | None = None,
              stop: threading.Event | None = None) -> ProducerSink | None:
    """Late events (the compact event as JSON, key ``tenant/principal`` like the activity
    topic) on ``topics.late``, when configured."""
    topic = config.kafka.topics.late
    if not topic:
        return None

    def encode(event: Any) -> list[tuple[str, bytes | None, bytes, list[Any]]]:
        key = event.principal_key.encode()
        return [(topic, key, json.dumps(asdict(event)).encode("utf-8"), JSON_HEADERS)]

    return ProducerSink(config, encode, dlq=config.kafka.topics.dlq, stats=stats, stop=stop)


def message_sink(config: Config, *, describe: Describe | None = None,
                 stats: DeliveryStats | None = None,
                 stop: threading.Event | None = None) -> ProducerSink:
    """Bytewax ``KafkaSinkMessage`` items produced as they are: topic (required), key, value,
    headers and timestamp (epoch ms; 0 lets the producer set it) all honoured. A message the
    broker refuses goes to ``topics.dlq`` (``describe`` gives its ``raw`` text)."""

    def encode(msg: KafkaSinkMessage[bytes | None, bytes]) -> list[TimedOutgoing]:
        if msg.topic is None:
            raise ValueError(f"message without a topic: key={msg.key!r}")
        return [(msg.topic, msg.key, msg.value, list(msg.headers), msg.timestamp)]

    return ProducerSink(config, encode, dlq=config.kafka.topics.dlq, describe=describe,
                        stats=stats, stop=stop)
