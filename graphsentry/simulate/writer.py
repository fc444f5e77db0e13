"""Delivery as Entra's diagnostic setting does it, and the two sinks (JSON Lines file, Kafka).

Each record gets an arrival time: a few minutes after its event time, 30 min-115 min for the
``late_fraction`` (Entra documents up to 2 h; we stay inside the engine's 2 h lateness so late
records still count), and a ``duplicate_fraction`` is delivered a second time later
(at-least-once). Messages are cut by arrival minute and ``records_per_message``, so one
message mixes principals and, for late records, hours.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from graphsentry.errors import GraphsentryError, redact
from graphsentry.progress import Progress

NORMAL_DELAY = (60.0, 900.0)
LATE_DELAY = (1800.0, 6900.0)
DUPLICATE_EXTRA_DELAY = (60.0, 3600.0)
ARRIVAL_BUCKET = 60.0


@dataclass(frozen=True)
class DeliveryOptions:
    late_fraction: float = 0.03
    duplicate_fraction: float = 0.005
    records_per_message: int = 50

    def validate(self) -> None:
        for name in ("late_fraction", "duplicate_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.records_per_message < 1:
            raise ValueError("records_per_message must be at least 1")


@dataclass
class Message:
    arrival: float
    records: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps({"records": self.records}, separators=(",", ":"))


@dataclass(frozen=True)
class DeliveryStats:
    records: int
    late: int
    duplicates: int
    messages: int


def plan_delivery(records: list[tuple[float, dict[str, Any]]], rng: random.Random,
                  options: DeliveryOptions) -> tuple[list[Message], DeliveryStats]:
    """Assign arrival times (late, duplicated) and cut arrival-ordered messages."""
    options.validate()
    arrivals: list[tuple[float, int, dict[str, Any]]] = []
    late = duplicates = 0
    for ts, record in records:
        is_late = rng.random() < options.late_fraction
        late += is_late
        arrival = ts + rng.uniform(*(LATE_DELAY if is_late else NORMAL_DELAY))
        arrivals.append((arrival, len(arrivals), record))
        if rng.random() < options.duplicate_fraction:
            duplicates += 1
            arrivals.append((arrival + rng.uniform(*DUPLICATE_EXTRA_DELAY), len(arrivals), record))
    arrivals.sort(key=lambda item: (item[0], item[1]))
    messages: list[Message] = []
    for arrival, _, record in arrivals:
        current = messages[-1] if messages else None
        if (current is None or len(current.records) >= options.records_per_message
                or arrival // ARRIVAL_BUCKET != current.arrival // ARRIVAL_BUCKET):
            current = Message(arrival, [])
            messages.append(current)
        current.records.append(record)
    return messages, DeliveryStats(len(arrivals), late, duplicates, len(messages))


def write_messages(messages: Iterable[Message], out: TextIO, progress: Progress) -> int:
    count = 0
    for message in messages:
        out.write(message.to_json())
        out.write("\n")
        count += 1
        progress.advance()
    return count


class KafkaSink:
    """Produces messages to a raw topic (key = tenant id, timestamp = arrival time)."""

    def __init__(self, topic: str, settings: Mapping[str, Any], timeout: float = 10.0) -> None:
        """Connect with librdkafka ``settings`` (``bootstrap.servers`` and the configuration's
        ``kafka.producer``: security, …), or raise :class:`GraphsentryError`: at once for a
        configuration problem (authentication, TLS, ACLs), after ``timeout`` seconds for an
        unreachable broker (``dataflows.kafka_client.check_topics``, the start-up check of
        ``run`` and ``bridge``)."""
        from confluent_kafka import Producer

        from dataflows.kafka_client import ClientHealth, check_topics, client_config

        self.topic, self.timeout = topic, timeout
        self.bootstrap = redact(str(settings.get("bootstrap.servers", "?")))
        self.failures: list[str] = []
        check_topics(settings, [], "output", timeout)
        self.health = ClientHealth("output")
        # silent: librdkafka's retry chatter stays quiet; failures surface as our errors.
        self.producer = Producer(client_config({
            "linger.ms": 20, "message.max.bytes": 4_000_000,
            "socket.timeout.ms": int(timeout * 1000), "message.timeout.ms": int(timeout * 3000),
            **settings}, self.health, silent=True))

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def produce(self, messages: Iterable[Message], key: str, progress: Progress) -> int:
        """Produce (each message keyed ``key``, the tenant id) and flush; return how many
        messages the broker acknowledged. Raises :class:`GraphsentryError` when any message is
        refused or not acknowledged."""
        from confluent_kafka import KafkaException

        count = 0
        encoded = key.encode("utf-8")
        for message in messages:
            payload = message.to_json().encode("utf-8")
            while True:
                try:
                    self.producer.produce(self.topic, payload, encoded,
                                          timestamp=int(message.arrival * 1000),
                                          on_delivery=self._on_delivery)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self.producer.poll(0.5)
                except KafkaException as exc:  # refused locally, e.g. above message.max.bytes
                    error = exc.args[0] if exc.args else exc
                    raise self._failed(error.str() if hasattr(error, "str") else str(error)
                                       ) from None
            self.producer.poll(0)
            count += 1
            progress.advance()
        remaining = self.producer.flush(self.timeout * 3)
        if remaining or self.failures:
            raise self._failed(self.health.problem or (
                self.failures[0] if self.failures else f"{remaining} not acknowledged"))
        return count

    def _failed(self, detail: str) -> GraphsentryError:
        return GraphsentryError(f"producing to {self.topic} on {self.bootstrap} failed: "
                                f"{detail}")
