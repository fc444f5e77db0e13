"""Fault injection on the bridge (``graphsentry bridge`` with a recovery directory, on the
suite's own broker): kill -9 mid-stream, and a far-future record among good ones. Every input
record must reach the activity topic (duplicates only as identical messages) or the
dead-letter topic, and detection over what arrived, in the order it arrived (each app's
records stay in one partition, in order), must give the alerts of the input itself.

The raw topic has one partition, so that the order of each app's records is the input's
whatever the timing; detection runs embedded (in process, histories in memory) over the
activity topic's messages, duplicates included."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Message, Producer

from graphsentry.alerts import alert_to_avro
from graphsentry.avro import decode_activity
from graphsentry.detection import run_embedded
from graphsentry.ingest import iter_records
from graphsentry.ingest.dedup import dedup_key
from tests.integration.faults.conftest import ROOT, FaultStack
from tests.integration.faults.harness import (
    RUN_TIMEOUT,
    Comparison,
    Workload,
    _env,
    elapsed,
    kill9,
    simulate,
    start,
    wait_for,
)
from tests.integration.kafka_util import read_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    return simulate(tmp_path_factory.mktemp("tenant"))


def bridge_command(stack: FaultStack, workdir: Path, topics: dict[str, str],
                   *extra: str) -> list[str]:
    config = workdir / "bridge.yaml"
    config.write_text(yaml.safe_dump({"kafka": {"bootstrap": stack.bootstrap, "topics": topics},
                                      "bytewax": {"epoch_seconds": 0.5, "batch_size": 5}}))
    return [sys.executable, "-m", "graphsentry.cli", "bridge", "--config", str(config),
            "--recovery-dir", str(workdir / "recovery"), *extra]


def produce_raw(bootstrap: str, topic: str, lines: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for n, line in enumerate(lines):
        producer.produce(topic, key=f"hub-{n % 7}".encode(), value=line)
        producer.poll(0)
    assert producer.flush(30) == 0


def embedded_alerts(records: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    found: list[dict[str, Any]] = []
    run_embedded(records, on_alert=found.append)
    return [(a["alert_id"].encode(), alert_to_avro(a)) for a in found]


def arrived(messages: list[Message]) -> tuple[dict[str, set[tuple[Any, ...]]],
                                              list[dict[str, Any]]]:
    """Activity messages by record identity (the distinct (key, value, timestamp) of each),
    and every record in the order read (partition after partition)."""
    by_record: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    records = []
    for msg in messages:
        record = decode_activity(msg.value() or b"")
        records.append(record)
        by_record[dedup_key(record)].add((msg.key(), msg.value(), msg.timestamp()))
    return by_record, records


def test_kill_9_of_the_bridge(fault_stack: FaultStack, workload: Workload, tmp_path: Path,
                              fault_report: list[str]) -> None:
    started = time.monotonic()
    topics = {"raw": fault_stack.topic("raw", 1), "activity": fault_stack.topic("activity", 2),
              "dlq": fault_stack.topic("dlq")}
    lines = [line for line in workload.raw.read_bytes().splitlines() if line.strip()]
    produce_raw(fault_stack.bootstrap, topics["raw"], lines)
    expected = list(iter_records([str(workload.raw)]))  # each record once
    command = bridge_command(fault_stack, tmp_path, topics)

    live = start(command)
    third = len(expected) // 3
    wait_for(lambda: len(read_all(fault_stack.bootstrap, topics["activity"])) >= third,
             "a third of the records bridged", process=live)
    kill9(live)
    at_kill = len(read_all(fault_stack.bootstrap, topics["activity"]))
    done = subprocess.run([*command, "--bounded"], env=_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]

    by_record, got = arrived(read_all(fault_stack.bootstrap, topics["activity"]))
    missing = {dedup_key(r) for r in expected} - set(by_record)
    differing = [k for k, bodies in by_record.items() if len(bodies) > 1]
    result = Comparison.of(embedded_alerts(expected), embedded_alerts(got))
    fault_report.append(
        f"kill -9 of graphsentry bridge after {at_kill} of {len(expected)} records: "
        f"{len(missing)} input records lost, {len(got) - len(by_record)} duplicate activity "
        f"messages ({len(differing)} records with differing messages); detection over what "
        f"arrived: {result.figures()}; {elapsed(started)}")
    assert at_kill < len(expected), "the bridge finished before it was killed"
    assert not missing and not differing
    result.check()


def test_a_far_future_record_among_good_ones(fault_stack: FaultStack, workload: Workload,
                                             tmp_path: Path, fault_report: list[str]) -> None:
    """One Event Hub message carries three good records and one stamped two hours ahead (same
    app), within the simulated tenant's traffic. The good records around it all arrive; the
    far-future one is a dead letter (rejected at ingest, or refused by the broker, whose
    limit is an hour ahead) and nothing the bridge produced fails."""
    started = time.monotonic()
    topics = {"raw": fault_stack.topic("raw", 1), "activity": fault_stack.topic("activity", 2),
              "dlq": fault_stack.topic("dlq")}
    lines = [line for line in workload.raw.read_bytes().splitlines() if line.strip()]
    middle = len(lines) // 2
    message = json.loads(lines[middle])
    good = message["records"][:3]
    ahead = json.loads(json.dumps(good[0]))
    future = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    ahead["time"] = ahead["properties"]["timeGenerated"] = future
    ahead["properties"]["requestId"] = ahead["properties"]["operationId"] = \
        "f0f0f0f0-0000-4000-8000-000000000001"
    poisoned = json.dumps({"records": [good[0], ahead, *good[1:]]}).encode()
    produce_raw(fault_stack.bootstrap, topics["raw"], [*lines[:middle], poisoned,
                                                       *lines[middle + 1:]])
    raw = tmp_path / "sent.jsonl"
    raw.write_bytes(b"\n".join([*lines[:middle], poisoned, *lines[middle + 1:]]) + b"\n")
    future_id = ahead["properties"]["requestId"]
    expected = [r for r in iter_records([str(raw)]) if r["request_id"] != future_id]

    done = subprocess.run([*bridge_command(fault_stack, tmp_path, topics), "--bounded"],
                          env=_env(), cwd=ROOT, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    by_record, got = arrived(read_all(fault_stack.bootstrap, topics["activity"]))
    missing = {dedup_key(r) for r in expected} - set(by_record)
    letters = [json.loads(m.value() or b"") for m in read_all(fault_stack.bootstrap,
                                                              topics["dlq"])]
    about_it = [d for d in letters if future_id in d["raw"]]
    result = Comparison.of(embedded_alerts(expected), embedded_alerts(got))
    fault_report.append(
        f"a far-future record among {len(expected)} good ones: {len(missing)} good records "
        f"lost, the far-future one: {about_it[0]['reason'][:60] if about_it else 'MISSING'}; "
        f"detection over what arrived: {result.figures()}; {elapsed(started)}")
    assert not missing
    assert future_id not in {key.split("|")[0] for key in by_record}
    assert len(about_it) == 1, letters
    assert about_it[0]["reason"].split(":")[0] in ("future_timestamp", "broker_rejected")
    assert "did not acknowledge" not in done.stderr
    result.check()


def test_broker_away_longer_than_the_delivery_timeout(
        fault_stack: FaultStack, workload: Workload, kafka_bootstrap: str,
        topic_factory: Callable[..., str], tmp_path: Path, fault_report: list[str]) -> None:
    """Raw input on the shared broker, outputs on the suite's broker, stopped for 20 s while
    the bridge is producing (``message.timeout.ms`` 1500): the sink retries in place, fails
    its batch, and the bridge restarts from its last snapshot until the broker is back."""
    started = time.monotonic()
    topics = {"raw": topic_factory(1, "raw"), "activity": fault_stack.topic("activity", 2),
              "dlq": fault_stack.topic("dlq")}
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": kafka_bootstrap, "topics": topics,
                  "producer": {"bootstrap.servers": fault_stack.bootstrap,
                               "message.timeout.ms": 1500}},
        "bytewax": {"epoch_seconds": 0.5, "batch_size": 5}}))
    lines = [line for line in workload.raw.read_bytes().splitlines() if line.strip()]
    half = len(lines) // 2
    produce_raw(kafka_bootstrap, topics["raw"], lines[:half])
    live = start([sys.executable, "-m", "graphsentry.cli", "bridge", "--config", str(config),
                  "--recovery-dir", str(tmp_path / "recovery")])
    wait_for(lambda: len(read_all(fault_stack.bootstrap, topics["activity"])) > 0,
             "the bridge producing", process=live)
    fault_stack.down("kafka")
    outage = time.monotonic()
    produce_raw(kafka_bootstrap, topics["raw"], lines[half:])
    time.sleep(20)
    fault_stack.up("kafka")
    down_for = time.monotonic() - outage
    expected = list(iter_records([str(workload.raw)]))
    wait_for(lambda: {dedup_key(r) for r in expected} <= set(
        arrived(read_all(fault_stack.bootstrap, topics["activity"]))[0]),
        "every record bridged after the outage", process=live)
    live.send_signal(signal.SIGTERM)
    _, stderr = live.communicate(timeout=60)
    assert live.returncode == 143, stderr[-3000:]
    restarts = stderr.count("restarting from the last snapshot")
    assert restarts >= 1 and "_MSG_TIMED_OUT" in stderr, stderr

    by_record, got = arrived(read_all(fault_stack.bootstrap, topics["activity"]))
    differing = [k for k, bodies in by_record.items() if len(bodies) > 1]
    result = Comparison.of(embedded_alerts(expected), embedded_alerts(got))
    fault_report.append(
        f"broker down {down_for:.0f}s under graphsentry bridge (message.timeout.ms 1500): 0 "
        f"input records lost, {len(got) - len(by_record)} duplicate activity messages "
        f"({len(differing)} records with differing messages), {restarts} supervised "
        f"restart(s); detection over what arrived: {result.figures()}; {elapsed(started)}")
    assert not differing
    result.check()
