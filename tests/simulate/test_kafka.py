"""``graphsentry simulate --kafka-topic`` against the real local broker (scripts/stack.sh)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from graphsentry.cli import main


def _consume(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group rebalance wait
    got: list[tuple[bytes, bytes, int]] = []
    try:
        for _ in range(200):
            if len(got) >= expected:
                break
            for message in consumer.consume(num_messages=500, timeout=0.5):
                assert message.error() is None
                got.append((message.key() or b"", message.value() or b"", message.timestamp()[1]))
    finally:
        consumer.close()
    return got


def test_messages_reach_the_raw_topic_as_in_the_file(
        kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path) -> None:
    topic = topic_factory(partitions=1, prefix="test.simulate")
    out = tmp_path / "sim.jsonl"
    argv = ["simulate", "--users", "20", "--days", "1", "--scenario", "sp_credential_added",
            "--out", str(out), "--kafka-topic", topic, "--bootstrap", kafka_bootstrap]
    assert main(argv) == 0
    lines = out.read_bytes().splitlines()
    got = _consume(kafka_bootstrap, topic, len(lines))
    assert [value for _, value, _ in got] == lines
    tenant = json.loads(Path(f"{out}.labels.json").read_text(encoding="utf-8"))["tenant_id"]
    assert {key for key, _, _ in got} == {tenant.encode()}
    timestamps = [ts for _, _, ts in got]
    assert timestamps == sorted(timestamps)  # message timestamp = arrival time
    for (_, value, ts) in got:  # each message arrives after all the events it carries
        newest = max(record["time"] for record in json.loads(value)["records"])
        assert ts / 1000 > datetime.fromisoformat(newest[:26] + "+00:00").timestamp()


def _config(tmp_path: Path, kafka: dict[str, Any]) -> Path:
    path = tmp_path / "kafka.yaml"
    path.write_text(yaml.safe_dump({"kafka": kafka}))
    return path


def test_config_gives_the_broker_and_its_producer_settings(
        kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP")  # the file alone says where the broker is
    topic = topic_factory(partitions=1, prefix="test.simulate")
    out = tmp_path / "sim.jsonl"
    argv = ["simulate", "--users", "20", "--days", "1", "--scenario", "delta_sync",
            "--out", str(out), "--kafka-topic", topic]
    config = _config(tmp_path, {"bootstrap": kafka_bootstrap,
                                "producer": {"compression.type": "gzip", "acks": "all"}})
    assert main([*argv, "--config", str(config)]) == 0
    lines = out.read_bytes().splitlines()
    assert [value for _, value, _ in _consume(kafka_bootstrap, topic, len(lines))] == lines
    assert f"-> {out}, {topic} ({len(lines)} messages)" in capsys.readouterr().err
    # The file's producer settings are the producer's: a message.max.bytes below the size of
    # the simulated messages makes every one of them refused, a clear error, not a count.
    small = _config(tmp_path, {"bootstrap": kafka_bootstrap,
                               "producer": {"message.max.bytes": 1000}})
    assert main([*argv, "--config", str(small)]) == 2
    err = capsys.readouterr().err
    assert (f"graphsentry simulate: error: producing to {topic} on {kafka_bootstrap} failed: "
            "Unable to produce message: Broker: Message size too large\n") in err, err
    # --bootstrap overrides the file's broker, as in the other Kafka commands.
    again = topic_factory(partitions=1, prefix="test.simulate")
    nowhere = _config(tmp_path, {"bootstrap": "127.0.0.1:9"})
    argv[-1] = again
    assert main([*argv, "--config", str(nowhere), "--bootstrap", kafka_bootstrap]) == 0
    assert [value for _, value, _ in _consume(kafka_bootstrap, again, len(lines))] == lines
