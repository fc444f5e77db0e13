"""The bridge on the real broker: raw Event Hub messages (and a storage-account blob) →
``graphsentry bridge`` → the activity topic (unframed Avro, proven with fastavro and the schema
file; key tenant/principal; message timestamp = time_generated) and the dead-letter topic (reason,
raw payload, source, original key)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    Message,
    Producer,
    TopicPartition,
)

from tests.integration.kafka_util import read_all

pytestmark = pytest.mark.slow
RUN_TIMEOUT = 120
ROOT = Path(__file__).parents[2]
SCHEMA = fastavro.parse_schema(json.loads((ROOT / "schemas" / "graph_activity.avsc").read_text()))
TENANT = "3c9a1f7e-6b2d-4a8c-9e1f-0a2b3c4d5e6f"
APPS = ("7e1d2c3b-4a5f-4e6d-8c7b-6a5f4e3d2c1b", "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
# Activity messages carry the records' event time; the local broker deletes anything older
# than a day (log.retention.hours=24) at its next retention check, so keep test topics forever.
KEEP = {"retention.ms": "-1"}
NOT_JSON = b"\x1b[31mERROR\x1b[0m upstream timeout, not a JSON body"


def record(request: int, minute: int, app: str = APPS[0], **props: Any) -> dict[str, Any]:
    """One Graph activity record as diagnostic settings deliver it (Event Hub / storage)."""
    time = f"2026-09-14T06:{minute:02d}:17.0254311Z"
    properties = {
        "timeGenerated": time, "requestId": f"5f0c7a2e-0000-4000-8000-{request:012d}",
        "operationId": f"5f0c7a2e-0000-4000-8000-{request:012d}", "apiVersion": "v1.0",
        "requestMethod": "GET", "requestUri": f"https://graph.microsoft.com/v1.0/users/u{request}",
        "responseStatusCode": 200, "responseSizeBytes": 1100 + request, "durationMs": 180000,
        "tenantId": TENANT, "ipAddress": "192.0.2.44", "userAgent": "python-requests/2.32.3",
        "location": "North Europe", "appId": app, "servicePrincipalId": "a1b2c3d4-sp",
        "roles": "User.Read.All Mail.Read", "clientAuthMethod": "2",
    }
    properties.update(props)
    return {"time": time, "resourceId": f"/TENANTS/{TENANT.upper()}/PROVIDERS/MICROSOFT.AADIAM",
            "operationName": "Microsoft Graph Activity", "operationVersion": "v1.0",
            "category": "MicrosoftGraphActivityLogs", "resultSignature": "200",
            "durationMs": "180000", "callerIpAddress": "192.0.2.44", "level": "Informational",
            "location": "North Europe", "tenantId": TENANT, "properties": properties}


def event_hub(*records: dict[str, Any]) -> bytes:
    return json.dumps({"records": list(records)}).encode()


def request_id(value: dict[str, Any]) -> str:
    return str(value["properties"]["requestId"])


def millis(rec: dict[str, Any]) -> int:
    moment = datetime.fromisoformat(rec["time"][:26] + "+00:00")  # µs precision, as normalized
    return int(moment.replace(tzinfo=UTC).timestamp() * 1_000_000) // 1000


def letter_of(msg: Message) -> dict[str, Any]:
    value = msg.value()
    assert value is not None
    letter = json.loads(value)
    assert isinstance(letter, dict)
    return letter


def decode(msg: Message) -> dict[str, Any]:
    value = msg.value()
    assert value is not None
    decoded = fastavro.schemaless_reader(io.BytesIO(value), SCHEMA, None)
    assert isinstance(decoded, dict)
    return decoded


def run_bridge(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP", "GRAPHSENTRY_CONFIG")}
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "bridge",
                           "--bootstrap", bootstrap, *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def check_activity(messages: list[Message], expected: list[dict[str, Any]]) -> None:
    """Each expected record exactly once, Avro-decodable, keyed and timestamped right."""
    by_id = {request_id(r): r for r in expected}
    decoded = [decode(m) for m in messages]
    assert sorted(d["request_id"] for d in decoded) == sorted(by_id)
    for msg, value in zip(messages, decoded, strict=True):
        source = by_id[value["request_id"]]
        assert msg.key() == f"{TENANT}/{value['principal_id']}".encode()  # tenant/principal
        assert msg.timestamp() == (TIMESTAMP_CREATE_TIME, millis(source))
        assert value["tenant_id"] == TENANT and value["app_id"] == source["properties"]["appId"]
        assert value["request_uri"] == source["properties"]["requestUri"]
        assert ("content-type", b"avro/binary") in (msg.headers() or [])


Topics = Callable[..., str]


@pytest.mark.parametrize("processes", [1, 2])
def test_raw_topic_to_activity_and_dead_letters(kafka_bootstrap: str, topic_factory: Topics,
                                                processes: int) -> None:
    raw, activity = topic_factory(2, "raw"), topic_factory(3, "activity", KEEP)
    dlq = topic_factory(1, "dlq")
    good = [record(1, 0), record(2, 1), record(3, 2, app=APPS[1]), record(4, 3), record(5, 4)]
    bad = record(6, 5)
    bad["properties"]["timeGenerated"] = bad["time"] = "yesterday-ish"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    sent = [(b"hub-a", event_hub(good[0], good[1])),
            (b"hub-b", event_hub(good[2], bad, good[3])),  # a bad record among good ones
            (b"hub-c", NOT_JSON),
            (b"hub-a", event_hub(good[1], good[4]))]  # good[1] delivered twice (same partition)
    for key, value in sent:
        producer.produce(raw, key=key, value=value)
    assert producer.flush(30) == 0

    done = run_bridge(kafka_bootstrap, "--bounded", "--from-topic", raw, "--to-topic", activity,
                      "--dlq-topic", dlq, "--processes", str(processes))

    check_activity(read_all(kafka_bootstrap, activity), good)
    letters = {letter_of(m)["reason"].split(":")[0]: (m, letter_of(m))
               for m in read_all(kafka_bootstrap, dlq)}
    assert set(letters) == {"bad_timestamp", "invalid_json"}
    msg, letter = letters["bad_timestamp"]
    assert msg.key() == b"hub-b" and "yesterday-ish" in letter["reason"]
    assert request_id(json.loads(letter["raw"])) == request_id(bad)
    assert letter["source"].startswith(f"{raw}/") and letter["source"].endswith("#1")
    msg, letter = letters["invalid_json"]
    assert msg.key() == b"hub-c" and letter["raw"].encode() == NOT_JSON
    assert datetime.fromisoformat(letter["at"].replace("Z", "+00:00")).year >= 2026
    assert ("5 bridged, 2 rejected (bad_timestamp 1, invalid_json 1), 1 duplicates"
            in done.stderr)


def test_files_to_kafka_via_cli(kafka_bootstrap: str, topic_factory: Topics,
                                tmp_path: Path) -> None:
    activity, dlq = topic_factory(2, "activity", KEEP), topic_factory(1, "dlq")
    records = [record(n, n) for n in range(10, 20)]
    missing_app = record(30, 30, appId=None)
    blob = tmp_path / "PT1H.json"  # storage account: JSON lines, CRLF
    lines = [json.dumps(r).encode() for r in [*records[:5], missing_app, *records[5:]]]
    lines.insert(3, b'{"time": "2026-09-14T06:00:00Z", "category": ')  # truncated write
    lines.append(json.dumps(records[0]).encode())  # at-least-once delivery
    blob.write_bytes(b"\r\n".join(lines) + b"\r\n")

    done = run_bridge(kafka_bootstrap, "--input", str(blob), "--to-topic", activity,
                      "--dlq-topic", dlq, "--progress")

    check_activity(read_all(kafka_bootstrap, activity), records)
    letters = [letter_of(m) for m in read_all(kafka_bootstrap, dlq)]
    assert sorted((d["reason"].split(":")[0], d["source"]) for d in letters) == [
        ("invalid_json", f"{blob}:4"), ("missing_field", f"{blob}:7")]
    assert all(m.key() is None for m in read_all(kafka_bootstrap, dlq))
    assert "10 bridged, 2 rejected (invalid_json 1, missing_field 1), 1 duplicates" in done.stderr
    assert f"bridge: {blob.stat().st_size}/{blob.stat().st_size} (100.0%)" in done.stderr


def test_recovery_resumes_after_the_last_bridged_offset(kafka_bootstrap: str,
                                                        topic_factory: Topics,
                                                        tmp_path: Path) -> None:
    raw, activity = topic_factory(2, "raw"), topic_factory(2, "activity", KEEP)
    dlq = topic_factory(1, "dlq")
    args = ("--bounded", "--from-topic", raw, "--to-topic", activity, "--dlq-topic", dlq,
            "--recovery-dir", str(tmp_path / "recovery"))
    first, second = [record(n, n) for n in range(50, 53)], [record(n, n) for n in range(53, 55)]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(raw, key=b"hub", value=event_hub(*first))
    assert producer.flush(30) == 0
    assert "1 inputs, 3 bridged" in run_bridge(kafka_bootstrap, *args).stderr
    producer.produce(raw, key=b"hub", value=event_hub(*second))
    assert producer.flush(30) == 0
    assert "1 inputs, 2 bridged" in run_bridge(kafka_bootstrap, *args).stderr
    check_activity(read_all(kafka_bootstrap, activity), first + second)


def count_messages(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "graphsentry-bridge-test"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    total = 0
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    consumer.close()
    return total


def test_live_bridge_stops_cleanly_on_sigterm(kafka_bootstrap: str, topic_factory: Topics,
                                              tmp_path: Path) -> None:
    """The compose service: plain ``graphsentry bridge`` configured by file + KAFKA_BOOTSTRAP,
    live on the raw topic; ``docker stop`` (SIGTERM) drains it and prints the counts."""
    raw, activity = topic_factory(2, "raw"), topic_factory(2, "activity", KEEP)
    dlq = topic_factory(1, "dlq")
    config = tmp_path / "graphsentry.yaml"
    config.write_text(json.dumps({"kafka": {"bootstrap": "unused:1", "topics": {
        "raw": raw, "activity": activity, "dlq": dlq}}}))
    records = [record(n, n) for n in range(40, 46)]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(raw, value=event_hub(*records[:3]))
    producer.produce(raw, value=event_hub(*records[3:]))
    assert producer.flush(30) == 0
    env = dict(os.environ, KAFKA_BOOTSTRAP=kafka_bootstrap, GRAPHSENTRY_CONFIG=str(config))
    bridge = subprocess.Popen([sys.executable, "-m", "graphsentry.cli", "bridge"], env=env,
                              cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while count_messages(kafka_bootstrap, activity) < len(records):
            assert bridge.poll() is None, "the live bridge exited by itself"
            assert time.monotonic() < deadline, "records not bridged in time"
            time.sleep(0.5)
        bridge.send_signal(signal.SIGTERM)
        _, stderr = bridge.communicate(timeout=30)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
    assert bridge.returncode == 143, stderr[-3000:]  # 128 + SIGTERM: stopped, cleanly
    assert "2 inputs, 6 bridged, 0 rejected, 0 duplicates" in stderr
    assert f"acknowledged by Kafka: {activity} 6" in stderr
    assert "(interrupted by SIGTERM)" in stderr and "Traceback" not in stderr
    check_activity(read_all(kafka_bootstrap, activity), records)


def test_missing_output_topic_is_a_clear_error(kafka_bootstrap: str, kafka_admin: Any,
                                              topic_factory: Topics, tmp_path: Path) -> None:
    blob = tmp_path / "PT1H.json"
    blob.write_bytes(json.dumps(record(1, 0)).encode() + b"\n")
    missing = f"no.such.topic.{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if k != "GRAPHSENTRY_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "bridge", "--bootstrap",
                           kafka_bootstrap, "--input", str(blob), "--to-topic", missing,
                           "--dlq-topic", topic_factory(1, "dlq")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 2
    assert f"output topic '{missing}' does not exist" in done.stderr
    # The check must not create it (the local broker auto-creates topics asked for by name).
    assert missing not in kafka_admin.list_topics(timeout=10).topics
