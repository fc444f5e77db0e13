"""End to end on the real broker and Redis: normalized Avro records on a topic shaped like
graph.activity.v1 → ``graphsentry run --bounded`` (1 and 2 processes) → alerts on the alert
topics. The alert ids must not depend on the process count or on arrival order within the
lateness, and must equal what ``run_embedded`` finds on the same records."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from graphsentry.alerts import alert_from_avro, signal_from_avro
from graphsentry.avro import encode_activity, message_key, message_timestamp_ms
from graphsentry.detection import run_embedded
from tests.engine.scenario import ATTACKER, attack, benign, shuffled_within
from tests.integration.kafka_util import read_all

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 120
STAGE_DETECTORS = {"graph_enumeration", "storage_exfiltration", "app_credential_added"}


def workload() -> list[dict[str, Any]]:
    records = attack() + benign(hours=3, principals=20)
    return sorted(records, key=lambda r: (r["time_generated"], r["request_id"]))


def publish(bootstrap: str, topic: str, records: list[dict[str, Any]],
            garbage: bytes | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for record in records:
        producer.produce(topic, key=message_key(record), value=encode_activity(record),
                         timestamp=message_timestamp_ms(record))
    if garbage is not None:
        producer.produce(topic, key=b"garbage", value=garbage)
    assert producer.flush(30) == 0


def consume_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message of ``topic`` now, as (key, value) pairs."""
    return [(msg.key(), msg.value() or b"") for msg in read_all(bootstrap, topic)]


Runner = Callable[..., dict[str, Any]]


@pytest.fixture
def run_cluster(kafka_bootstrap: str, redis_url: str, redis_namespace: str,
                topic_factory: Callable[..., str], tmp_path: Path) -> Runner:
    """``run(activity_topic, processes, name) -> {"alerts", "json", "dlq", "stderr"}``."""

    def run(activity: str, processes: int, name: str) -> dict[str, Any]:
        topics = {"activity": activity, "alerts": topic_factory(3, "alerts"),
                  "alerts_json": topic_factory(3, "alertsjson"), "dlq": topic_factory(1, "dlq"),
                  "signals": topic_factory(3, "signals"), "late": topic_factory(1, "late")}
        config = {"kafka": {"bootstrap": kafka_bootstrap, "topics": topics},
                  "redis": {"url": redis_url, "key_prefix": f"{redis_namespace}{name}:"},
                  "bytewax": {"epoch_seconds": 1}}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
        done = subprocess.run(
            [sys.executable, "-m", "graphsentry.cli", "run", "--bounded", "--config", str(path),
             "--processes", str(processes)],
            env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert done.returncode == 0, done.stderr[-3000:]
        produced = consume_all(kafka_bootstrap, topics["alerts"])  # one read: keys match values
        return {
            "alerts": [alert_from_avro(v) for _, v in produced],
            "keys": [k for k, _ in produced],
            "json": [json.loads(v) for _, v in consume_all(kafka_bootstrap,
                                                           topics["alerts_json"])],
            "dlq": [json.loads(v) for _, v in consume_all(kafka_bootstrap, topics["dlq"])],
            "dlq_keys": [k for k, _ in consume_all(kafka_bootstrap, topics["dlq"])],
            "signals": [signal_from_avro(v) for _, v in consume_all(kafka_bootstrap,
                                                                    topics["signals"])],
            "topics": topics,
            "stderr": done.stderr,
        }

    return run


def ids(alerts: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Every alert version: (alert_id, revision), sorted."""
    return sorted((a["alert_id"], a["revision"]) for a in alerts)


def latest(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest revision of each alert (what a compacted topic keeps)."""
    newest: dict[str, dict[str, Any]] = {}
    for a in alerts:
        if a["alert_id"] not in newest or a["revision"] > newest[a["alert_id"]]["revision"]:
            newest[a["alert_id"]] = a
    return list(newest.values())


def test_cluster_alerts_match_embedded_for_any_process_count_and_order(
        kafka_bootstrap: str, topic_factory: Callable[..., str], run_cluster: Runner,
        redis_client: Any, redis_namespace: str) -> None:
    records = workload()
    embedded: list[dict[str, Any]] = []
    run_embedded(records, on_alert=embedded.append)
    topic = topic_factory(3, "activity")
    publish(kafka_bootstrap, topic, records, garbage=b"\xff\x00not avro")

    one = run_cluster(topic, 1, "one")
    alerts = one["alerts"]
    assert ids(alerts) == ids(embedded)
    final = latest(alerts)
    assert [a["detector"] for a in final].count("attack_chain") == 1
    assert {a["principal_id"] for a in alerts} == {ATTACKER}  # benign principals: nothing
    assert {s["detector"] for s in one["signals"]} >= STAGE_DETECTORS
    assert [k.decode() for k in one["keys"] if k] == [a["alert_id"] for a in alerts]
    assert ids(one["json"]) == ids(alerts)
    assert len(one["dlq"]) == 1 and one["dlq"][0]["reason"].startswith("bad_avro")
    assert one["dlq_keys"] == [b"garbage"]  # the dead letter keeps the original key
    assert f"events={len(records)}" in one["stderr"]
    # The summary counts what the broker acknowledged: every alert on both alert topics.
    assert (f"acknowledged by Kafka: {one['topics']['alerts']} {len(alerts)}, "
            f"{one['topics']['alerts_json']} {len(alerts)}, {one['topics']['dlq']} 1"
            in one["stderr"])

    two = run_cluster(topic, 2, "two")
    assert ids(two["alerts"]) == ids(alerts)
    found = re.search(r"events per process: (\d+), (\d+)\)", two["stderr"])
    assert found is not None, two["stderr"]
    assert sum(int(n) for n in found.groups()) == len(records)

    shuffled_topic = topic_factory(3, "shuffled")
    publish(kafka_bootstrap, shuffled_topic, shuffled_within(records, 7000, seed=11))
    shuffled = run_cluster(shuffled_topic, 1, "shuffled")
    assert ids(shuffled["alerts"]) == ids(alerts)


def test_simulated_tenant_on_kafka_equals_embedded(
        kafka_bootstrap: str, topic_factory: Callable[..., str], run_cluster: Runner,
        tmp_path: Path) -> None:
    from graphsentry.ingest import iter_records

    out = tmp_path / "sim.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "20",
                    "--scenario", "mi_token_theft_chain", "--out", str(out)],
                   check=True, capture_output=True, timeout=RUN_TIMEOUT)
    labels = json.loads(Path(f"{out}.labels.json").read_text())
    chain = next(s for s in labels["scenarios"] if s["name"] == "mi_token_theft_chain")
    records = list(iter_records([str(out)]))
    embedded: list[dict[str, Any]] = []
    run_embedded(records, on_alert=embedded.append)
    topic = topic_factory(3, "simulated")
    publish(kafka_bootstrap, topic, records)

    got = run_cluster(topic, 2, "sim")["alerts"]
    assert ids(got) == ids(embedded)
    mine = latest([a for a in got if a["principal_id"] == chain["principal_id"]])
    chains = [a for a in mine if a["detector"] == "attack_chain"]
    assert len(chains) == 1 and set(chains[0]["stages"]) >= set(chain["stages"]), chains
