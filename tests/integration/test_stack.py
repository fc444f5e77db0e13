"""The local stack behaves like the production Kafka/Redis the pipeline relies on:
keyed partitioning, explicit timestamps, time-based offset lookup, committed-offset resume,
Redis pipelines; and ``scripts/stack.sh`` is safe to call again or next to another stack."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tests.conftest import TopicFactory

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "scripts" / "stack.sh"
BASE_TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
POLL_DEADLINE_S = 30.0

Record = tuple[str, str, int, int, int]  # key, value, timestamp ms, partition, offset


def _produce(bootstrap: str, topic: str, items: list[tuple[str, str, int]]) -> list[Record]:
    """Produces (key, value, timestamp_ms) items; returns them with their partition/offset."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    delivered: list[Record] = []
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(str(err))
            return
        key, value, partition, offset = msg.key(), msg.value(), msg.partition(), msg.offset()
        assert key is not None and value is not None
        assert partition is not None and offset is not None
        delivered.append((key.decode(), value.decode(), msg.timestamp()[1], partition, offset))

    for key, value, ts in items:
        producer.produce(topic, key=key, value=value, timestamp=ts, on_delivery=on_delivery)
    assert producer.flush(POLL_DEADLINE_S) == 0, "messages still in flight after flush"
    assert errors == []
    return delivered


def _consume(consumer: Consumer, count: int) -> list[Message]:
    messages: list[Message] = []
    deadline = time.monotonic() + POLL_DEADLINE_S
    while len(messages) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        messages.append(msg)
    return messages


@pytest.fixture
def consumer_config(kafka_bootstrap: str) -> dict[str, str | bool]:
    return {
        "bootstrap.servers": kafka_bootstrap,
        "group.id": f"test-{os.urandom(6).hex()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }


@pytest.fixture
def keyed_topic(kafka_bootstrap: str, topic_factory: TopicFactory) -> tuple[str, list[Record]]:
    """A 3-partition topic holding 30 keyed messages, one second apart."""
    topic = topic_factory(partitions=3)
    items = [(f"tenant/app-{i % 7}", f"event-{i}", BASE_TS_MS + i * 1000) for i in range(30)]
    return topic, _produce(kafka_bootstrap, topic, items)


def test_keyed_messages_round_trip_with_timestamps(
    keyed_topic: tuple[str, list[Record]], consumer_config: dict[str, str | bool]
) -> None:
    topic, delivered = keyed_topic
    consumer = Consumer(consumer_config)
    try:
        consumer.subscribe([topic])
        messages = _consume(consumer, len(delivered))
    finally:
        consumer.close()

    received = sorted(
        (m.key().decode(), m.value().decode(), m.timestamp()[1], m.partition(), m.offset())  # type: ignore[union-attr]
        for m in messages
    )
    assert received == sorted(delivered)
    partitions_of_key: dict[str, set[int]] = {}
    for key, _, _, partition, _ in delivered:
        partitions_of_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in partitions_of_key.values()), partitions_of_key
    assert len({partition for *_, partition, _ in delivered}) > 1


def test_offsets_for_times_finds_first_offset_at_or_after_timestamp(
    keyed_topic: tuple[str, list[Record]], consumer_config: dict[str, str | bool]
) -> None:
    topic, delivered = keyed_topic
    middle_ts = BASE_TS_MS + 14_500  # between event-14 and event-15
    expected: dict[int, int] = {}
    for partition in range(3):
        in_partition = sorted((r for r in delivered if r[3] == partition), key=lambda r: r[4])
        later = [r[4] for r in in_partition if r[2] >= middle_ts]
        expected[partition] = later[0] if later else -1  # -1: no such message (end offset)

    consumer = Consumer(consumer_config)
    try:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, middle_ts) for p in range(3)], timeout=10
        )
    finally:
        consumer.close()
    assert {tp.partition: tp.offset for tp in found} == expected
    assert any(offset > 0 for offset in expected.values())


def test_consumer_group_resumes_after_committed_offset(
    kafka_bootstrap: str, topic_factory: TopicFactory, consumer_config: dict[str, str | bool]
) -> None:
    topic = topic_factory(partitions=1)
    _produce(kafka_bootstrap, topic, [("k", f"v{i}", BASE_TS_MS + i) for i in range(10)])

    first = Consumer(consumer_config)
    try:
        first.subscribe([topic])
        head = _consume(first, 4)
        assert [m.value() for m in head] == [f"v{i}".encode() for i in range(4)]
        committed = first.commit(message=head[-1], asynchronous=False)
    finally:
        first.close()
    assert committed is not None and [tp.offset for tp in committed] == [4]

    second = Consumer(consumer_config)
    try:
        second.subscribe([topic])
        rest = _consume(second, 6)
    finally:
        second.close()
    assert [m.offset() for m in rest] == list(range(4, 10))
    assert [m.value() for m in rest] == [f"v{i}".encode() for i in range(4, 10)]


def test_redis_round_trip_within_namespace(
    redis_client: redis.Redis, redis_namespace: str
) -> None:
    key = f"{redis_namespace}plain"
    assert redis_client.set(key, "value", ex=60)
    assert redis_client.get(key) == b"value"

    pipe = redis_client.pipeline(transaction=True)
    pipe.hset(f"{redis_namespace}hash", mapping={"asn": "8075", "org": "Microsoft"})
    pipe.incrby(f"{redis_namespace}counter", 5)
    pipe.incrby(f"{redis_namespace}counter", 2)
    pipe.hgetall(f"{redis_namespace}hash")
    results = pipe.execute()
    assert results[1:] == [5, 7, {b"asn": b"8075", b"org": b"Microsoft"}]

    keys = {k.decode() for k in redis_client.scan_iter(match=f"{redis_namespace}*")}
    assert keys == {f"{redis_namespace}{k}" for k in ("plain", "hash", "counter")}


def _stack_env(**overrides: str) -> dict[str, str]:
    """The environment without the URLs, so stack.sh manages its own services."""
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    env.update(overrides)
    return env


def _managed_pids() -> dict[str, str]:
    state = Path(os.environ.get("GRAPHSENTRY_STATE_DIR", ROOT / ".state"))
    pids = {}
    for service in ("kafka", "redis"):
        pidfile = state / "pids" / f"{service}.pid"
        if subprocess.run([str(STACK), "running", service], env=_stack_env()).returncode == 0:
            pids[service] = pidfile.read_text().strip()
    return pids


@pytest.fixture
def managed_stack(kafka_bootstrap: str, redis_url: str) -> Iterator[dict[str, str]]:
    """PIDs of this checkout's running stack; skips if the tests run on external services."""
    pids = _managed_pids()
    if set(pids) != {"kafka", "redis"}:
        pytest.skip("KAFKA_BOOTSTRAP/REDIS_URL point at services stack.sh did not start")
    yield pids


def test_second_up_reuses_the_running_stack(
    managed_stack: dict[str, str], kafka_bootstrap: str, redis_url: str
) -> None:
    result = subprocess.run(
        [str(STACK), "up"], env=_stack_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"KAFKA_BOOTSTRAP={kafka_bootstrap}",
        f"REDIS_URL={redis_url}",
    ]
    assert "already running" in result.stderr
    assert _managed_pids() == managed_stack


def test_up_refuses_busy_ports_naming_the_owner(
    managed_stack: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A second checkout (another state dir) on the same ports fails fast, starts nothing."""
    port = kafka_bootstrap.rsplit(":", 1)[1]
    result = subprocess.run(
        [str(STACK), "up"],
        env=_stack_env(GRAPHSENTRY_STATE_DIR=str(tmp_path), GRAPHSENTRY_KAFKA_PORT=port),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    expected = f"port {port} (Kafka clients) is already in use by "
    if shutil.which("ss"):  # without iproute2 the owner's PID cannot be named
        expected += f"pid {managed_stack['kafka']}"
    assert expected in result.stderr
    assert not (tmp_path / "pids" / "kafka.pid").exists()
    assert _managed_pids() == managed_stack
