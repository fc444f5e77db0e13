"""Reading a test topic back from the real broker."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition


def read_all(bootstrap: str, topic: str) -> list[Message]:
    """Every message of ``topic`` now (each partition read to its end)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "graphsentry-test",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    pending, out = set(partitions), []
    while pending:
        msg = consumer.poll(10)
        assert msg is not None, f"timed out reading {topic}"
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            pending.discard(msg.partition())
            continue
        out.append(msg)
    consumer.close()
    return out
