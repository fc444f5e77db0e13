"""The compacted alert topic on the real broker: after ``graphsentry run --bounded`` has written
every version of every alert, and the broker has compacted the topic, a consumer reading it
from the beginning finds exactly one message per ``alert_id``: the highest revision, byte for
byte the Avro body of the last version ``run_embedded`` makes of the same records (issue 9:
"a consumer of the compacted topic reads one final version per alert").

The alert topic is created log-compacted with the broker's default segment time, so nothing is
compacted while the run writes and the test can first read every version; then the topic's
``segment.ms`` is lowered, one marker message per partition rolls the active segment (the
cleaner never touches the active one), and the test polls until the cleaner has run (the
broker's ``log.cleaner.backoff.ms``, 15 s by default, bounds the wait)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from graphsentry.alerts import alert_from_avro, alert_to_avro, latest_versions
from graphsentry.detection import run_embedded
from tests.engine.scenario import ATTACKER, T0, attack, benign
from tests.integration.bounded import publish, run_bounded, run_topics, write_config
from tests.integration.kafka_util import read_all

pytestmark = pytest.mark.slow
COMPACTION_TIMEOUT = 120.0
PARTITIONS = 3
SECOND_ATTACKER = "33333333-3333-3333-3333-333333333334"
MARKER = b"test-segment-roll"
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
             "delete.retention.ms": "100", "min.compaction.lag.ms": "0"}


def workload() -> list[dict[str, Any]]:
    """Two principals walking the attack chain (each alert grows through several revisions)
    among benign ones."""
    records = attack() + attack(T0 + 5000, principal=SECOND_ATTACKER) + benign(
        hours=3, principals=5)
    return sorted(records, key=lambda r: (r["time_generated"], r["request_id"]))


def alter_topic(admin: AdminClient, topic: str, settings: dict[str, str]) -> None:
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in settings.items()])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def roll_segments(bootstrap: str, topic: str) -> None:
    """One marker message on every partition: each active segment, older than ``segment.ms``
    now, is rolled, so every alert message is in a segment the cleaner may compact."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition in range(PARTITIONS):
        producer.produce(topic, key=MARKER, value=b"", partition=partition)
    assert producer.flush(30) == 0


def alert_messages(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of every alert message now on ``topic`` (the roll markers left out)."""
    return [(m.key() or b"", m.value() or b"") for m in read_all(bootstrap, topic)
            if m.key() != MARKER]


def test_a_consumer_of_the_compacted_alert_topic_reads_the_last_version_of_each_alert(
        kafka_bootstrap: str, kafka_admin: AdminClient, topic_factory: Callable[..., str],
        redis_url: str, redis_namespace: str, tmp_path: Path) -> None:
    records = workload()
    embedded: list[dict[str, Any]] = []
    run_embedded(records, on_alert=embedded.append)
    last = {a["alert_id"]: a for a in latest_versions(embedded)}
    versions = Counter(a["alert_id"] for a in embedded)
    assert {a["principal_id"] for a in last.values()} == {ATTACKER, SECOND_ATTACKER}
    assert len(last) >= 2 and min(versions.values()) >= 3  # several versions of each alert
    assert all(a["final"] for a in last.values())

    topics = run_topics(topic_factory, topic_factory(PARTITIONS, "activity"), PARTITIONS,
                        alerts_config=COMPACTED)
    publish(kafka_bootstrap, topics["activity"], records)
    done = run_bounded(write_config(tmp_path / "run.yaml", kafka_bootstrap, redis_url,
                                    redis_namespace, topics))
    assert f"events={len(records)}" in done.stderr

    # Before compaction: every version the run made is on the topic, in revision order per key.
    written = alert_messages(kafka_bootstrap, topics["alerts"])
    assert Counter(k.decode() for k, _ in written) == versions
    for alert_id in last:
        revisions = [alert_from_avro(v)["revision"] for k, v in written
                     if k.decode() == alert_id]
        assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)

    alter_topic(kafka_admin, topics["alerts"], {"segment.ms": "100"})
    time.sleep(0.5)  # the active segments are now older than segment.ms
    roll_segments(kafka_bootstrap, topics["alerts"])
    deadline = time.monotonic() + COMPACTION_TIMEOUT
    while True:
        remaining = alert_messages(kafka_bootstrap, topics["alerts"])
        if max(Counter(k for k, _ in remaining).values()) == 1:
            break
        assert time.monotonic() < deadline, (
            f"not compacted after {COMPACTION_TIMEOUT:.0f}s: "
            f"{Counter(k for k, _ in remaining)}")
        time.sleep(1.0)

    assert sorted(k.decode() for k, _ in remaining) == sorted(last)
    for key, value in remaining:
        expected = last[key.decode()]
        assert alert_from_avro(value)["revision"] == expected["revision"]
        assert value == alert_to_avro(expected)  # byte for byte the last embedded version
