"""Shared fixtures for tests that use the real local Kafka and Redis (scripts/stack.sh).

``scripts/test.sh`` starts the stack and exports ``KAFKA_BOOTSTRAP`` and ``REDIS_URL``; run
by hand, ``eval "$(scripts/stack.sh up | sed 's/^/export /')"`` does the same. Without them
the tests that need a service are skipped (never in CI, where test.sh always sets both).

Tests that use a Kafka fixture are marked ``kafka`` and those using a Redis fixture ``redis``
automatically, so ``pytest -m 'not kafka and not redis'`` runs the unit tests alone.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from hypothesis import settings as hypothesis_settings

# No per-example deadline: the suite runs on shared machines, where one example of a property
# over the engine can take longer than Hypothesis's 200 ms default without anything being wrong.
hypothesis_settings.register_profile("graphsentry", deadline=None)
hypothesis_settings.load_profile("graphsentry")

KAFKA_FIXTURES = frozenset({"kafka_bootstrap", "kafka_admin", "topic_factory"})
REDIS_FIXTURES = frozenset({"redis_url", "redis_client", "redis_namespace"})
ADMIN_TIMEOUT_S = 30.0

TopicFactory = Callable[..., str]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # fixturenames is the transitive closure, so fixtures built on these count too.
        used = set(getattr(item, "fixturenames", ()))
        if used & KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
        if used & REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)


def _required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.skip(f"{name} is not set: run via scripts/test.sh")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the Kafka broker."""
    return _required_env("KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """``redis://host:port/db`` of the Redis server."""
    return _required_env("REDIS_URL")


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


def _wait_for_topic(admin: AdminClient, name: str, partitions: int) -> None:
    """Waits until the metadata shows every partition of ``name`` with a leader."""
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not ready after {ADMIN_TIMEOUT_S:.0f}s")
        time.sleep(0.1)


@pytest.fixture
def topic_factory(kafka_admin: AdminClient) -> Iterator[TopicFactory]:
    """``make(partitions=3, prefix="test", config=None) -> name``: a new, uniquely named topic
    that exists (all partitions led) when the call returns; deleted at teardown."""
    created: list[str] = []

    def make(
        partitions: int = 3, prefix: str = "test", config: dict[str, str] | None = None
    ) -> str:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        name = f"{prefix}.{uuid.uuid4().hex[:16]}"
        new_topic = NewTopic(
            name, num_partitions=partitions, replication_factor=1, config=config or {}
        )
        kafka_admin.create_topics([new_topic], operation_timeout=ADMIN_TIMEOUT_S)[name].result(
            timeout=ADMIN_TIMEOUT_S
        )
        created.append(name)
        _wait_for_topic(kafka_admin, name, partitions)
        return name

    yield make

    if created:
        futures = kafka_admin.delete_topics(created, operation_timeout=ADMIN_TIMEOUT_S)
        for future in futures.values():
            future.result(timeout=ADMIN_TIMEOUT_S)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on ``REDIS_URL`` (responses are ``bytes``)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A unique key prefix (``test:<hex>:``); every key under it is deleted at teardown."""
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    batch: list[bytes] = []
    for key in redis_client.scan_iter(match=f"{prefix}*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            redis_client.delete(*batch)
            batch.clear()
    if batch:
        redis_client.delete(*batch)
