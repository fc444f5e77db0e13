"""Kafka sources of the dataflows: the activity (or raw) topic as a Bytewax source.

:class:`RawActivitySource` hands the detection flow confluent-kafka ``Message``s as they arrive
(Bytewax's ``KafkaSource`` copies each into a ``KafkaSourceMessage``, ~2 µs apiece);
:func:`activity_source` is Bytewax's ``KafkaSource`` for the bridge. Both come wrapped in a
:class:`~dataflows.kafka_client.GuardedSource`: they end when a stop is requested and fail,
naming the cause, once a consumer reports a configuration problem (authentication, TLS).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka import KafkaError as ConfluentKafkaError
from confluent_kafka.admin import AdminClient

from dataflows.kafka_client import (
    CREATE_HINT,
    METADATA_TIMEOUT_S,
    ClientHealth,
    GuardedSource,
    client_config,
)
from dataflows.kafka_io import brokers
from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config


def activity_source(config: Config, *, tail: bool | None = None, topic: str | None = None,
                    batch_size: int | None = None,
                    stop: threading.Event | None = None) -> GuardedSource:
    """The normalized-activity topic (or ``topic``) as a Bytewax ``KafkaSource`` (message
    errors become ``KafkaError`` items, not crashes), guarded: it ends when ``stop`` is set and
    fails once its consumers report a configuration problem."""
    kafka = config.kafka
    health = ClientHealth("consumer")
    settings = client_config({str(k): str(v) for k, v in kafka.consumer.items()}, health)
    source = KafkaSource(
        brokers(config), [topic or kafka.topics.activity],
        tail=kafka.tail if tail is None else tail,
        starting_offset=OFFSET_BEGINNING if kafka.start == "beginning" else OFFSET_END,
        add_config=settings, batch_size=batch_size or config.bytewax.batch_size,
        raise_on_errors=False)
    return GuardedSource(source, stop, health)


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
        try:
            topic = client.list_topics(self.topic, timeout=METADATA_TIMEOUT_S
                                       ).topics[self.topic]
        except KafkaException as exc:
            raise GraphsentryError(f"cannot list the partitions of Kafka topic {self.topic!r}: "
                                   f"{exc.args[0].str() if exc.args else exc}") from None
        if topic.error is not None:
            hint = (f" ({CREATE_HINT})" if topic.error.code() ==
                    ConfluentKafkaError.UNKNOWN_TOPIC_OR_PART else "")
            raise GraphsentryError(f"error listing partitions of Kafka topic {self.topic!r}: "
                                   f"{topic.error.str()}{hint}")
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
        return _RawPartition(consumer, offset, self.batch_size, TopicPartition(topic, int(index)))


class _RawPartition(StatefulSourcePartition[Message, int | None]):
    def __init__(self, consumer: Consumer, offset: int, batch_size: int,
                 where: TopicPartition) -> None:
        self.consumer, self.offset, self.batch_size = consumer, offset, batch_size
        self.where = where
        self.eof = False

    def lag(self) -> tuple[str, int, int] | None:
        """``(topic, partition, messages between the position and the partition's end)``
        from the consumer's cached high watermark (updated by every fetch); None before the
        first fetch."""
        try:
            low, high = self.consumer.get_watermark_offsets(self.where, cached=True)
        except (KafkaException, RuntimeError):
            return None
        offset = self.offset
        position = offset if offset is not None and offset >= 0 else (
            low if offset == OFFSET_BEGINNING else -1)
        if high < 0 or position < 0:
            return None
        return self.where.topic, self.where.partition, max(0, high - position)

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


def raw_activity_source(config: Config, *, tail: bool | None = None,
                        stop: threading.Event | None = None) -> GuardedSource:
    """The normalized-activity topic as a :class:`RawActivitySource`, guarded: it ends when
    ``stop`` is set and fails once its consumers report a configuration problem."""
    kafka = config.kafka
    health = ClientHealth("consumer")
    settings = client_config({str(k): str(v) for k, v in kafka.consumer.items()}, health)
    source = RawActivitySource(
        brokers(config), kafka.topics.activity, tail=kafka.tail if tail is None else tail,
        starting_offset=OFFSET_BEGINNING if kafka.start == "beginning" else OFFSET_END,
        add_config=settings, batch_size=config.bytewax.batch_size)
    return GuardedSource(source, stop, health)
