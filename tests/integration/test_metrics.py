"""The metrics and health endpoints of running commands on the real broker and Redis: a live
``graphsentry run --processes 2`` and a live ``graphsentry bridge`` are scraped while they run;
their counts must equal what was published to their input and what their output topics hold,
and ``/ready`` and ``/live`` must say they are healthy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from detectors.event import GraphEvent
from graphsentry.alerts import alert_from_avro, signal_from_avro
from tests.integration.kafka_util import read_all
from tests.integration.metrics_util import Background, Scrape, by, get, merged, scrape, total
from tests.integration.test_bridge import NOT_JSON, event_hub, record
from tests.integration.test_detect_kafka import publish, workload

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
TIMEOUT = 120.0
GARBAGE = b"\xff\x00not avro"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL", "GRAPHSENTRY_CONFIG")}


def _until(condition: Callable[[], bool], what: str, process: Background) -> None:
    deadline = time.monotonic() + TIMEOUT

    def holds() -> bool:
        try:
            return condition()
        except AssertionError as exc:  # a failed scrape: the server's traceback is there
            raise AssertionError(f"{exc}\nprocess output:\n{process.stderr[-3000:]}") from None

    while not holds():
        assert process.process.poll() is None, f"exited early:\n{process.stderr[-3000:]}"
        assert time.monotonic() < deadline, f"{what} not reached:\n{process.stderr[-3000:]}"
        time.sleep(0.5)


def _lags(samples: Scrape) -> dict[str, float]:
    return {dict(labels)["partition"]: value for (name, labels), value in samples.items()
            if name == "graphsentry_kafka_consumer_lag_messages"}


def test_run_metrics_match_its_input_and_output_topics(
        kafka_bootstrap: str, redis_url: str, redis_namespace: str,
        topic_factory: Callable[..., str], tmp_path: Path) -> None:
    records = workload()
    activity = topic_factory(3, "activity")
    publish(kafka_bootstrap, activity, records, garbage=GARBAGE)
    topics = {"activity": activity, "alerts": topic_factory(3, "alerts"),
              "alerts_json": topic_factory(3, "alertsjson"), "dlq": topic_factory(1, "dlq"),
              "signals": topic_factory(3, "signals"), "late": topic_factory(1, "late")}
    config = {"kafka": {"bootstrap": kafka_bootstrap, "topics": topics},
              "redis": {"url": redis_url, "key_prefix": redis_namespace},
              "bytewax": {"epoch_seconds": 1},
              "metrics": {"enabled": True, "host": "127.0.0.1", "port": 0}}
    path = tmp_path / "graphsentry.yaml"
    path.write_text(yaml.safe_dump(config))
    run = Background([sys.executable, "-m", "graphsentry.cli", "run", "--config", str(path),
                      "--processes", "2"], _env(), cwd=str(ROOT))
    try:
        found = run.wait_for(r"run: process (\d+): metrics on (http://\S+)/metrics", count=2)
        bases = [m.group(2) for m in sorted(found, key=lambda m: m.group(1))]
        samples: Scrape = {}

        def settled() -> bool:
            nonlocal samples
            samples = merged([scrape(base) for base in bases])
            updates = total(samples, "graphsentry_alert_updates_total")
            return (total(samples, "graphsentry_events_total") == len(records) and updates > 0
                    and total(samples, "graphsentry_delivered_messages_total",
                              topic=topics["alerts"]) == updates
                    and total(samples, "graphsentry_delivered_messages_total",
                              topic=topics["signals"])
                    == total(samples, "graphsentry_signals_total")
                    and total(samples, "graphsentry_delivered_messages_total",
                              topic=topics["dlq"]) == 1
                    and len(_lags(samples)) == 3  # read once a second, after a fetch
                    and total(samples, "graphsentry_epoch_duration_seconds_count") > 0)

        _until(settled, "every record processed and every output acknowledged", run)
        health = [(get(base + "/ready"), get(base + "/live")) for base in bases]
        probe = subprocess.run([sys.executable, "-m", "graphsentry.cli", "health", "--url",
                                bases[0]], env=_env(), capture_output=True, text=True,
                               timeout=30)
        # What the topics hold now (stopping closes the open windows: more signals, alerts).
        alerts = [alert_from_avro(m.value() or b"") for m in read_all(kafka_bootstrap,
                                                                      topics["alerts"])]
        signals = [signal_from_avro(m.value() or b"") for m in read_all(kafka_bootstrap,
                                                                        topics["signals"])]
        alerts_json = len(read_all(kafka_bootstrap, topics["alerts_json"]))
        late = len(read_all(kafka_bootstrap, topics["late"]))
    finally:
        code = run.stop(signal.SIGTERM)
    assert code == 143, run.stderr[-3000:]

    # Input: every message read, the garbage one a bad_avro reject, the rest events.
    assert total(samples, "graphsentry_input_messages_total", flow="detect") == len(records) + 1
    assert by(samples, "graphsentry_rejects_total", "reason") == {"bad_avro": 1}
    assert len(read_all(kafka_bootstrap, topics["dlq"])) == 1
    # Outputs: what the metrics count is what the topics held.
    latest: dict[str, dict[str, Any]] = {}  # each alert's latest version
    for alert in alerts:
        seen = latest.get(alert["alert_id"])
        if seen is None or alert["revision"] > seen["revision"]:
            latest[alert["alert_id"]] = alert
    assert total(samples, "graphsentry_alerts_total") == len(latest) > 0
    assert by(samples, "graphsentry_alerts_latest", "detector") == Counter(
        a["detector"] for a in latest.values())
    assert by(samples, "graphsentry_alerts_latest", "kind") == Counter(
        a["kind"] for a in latest.values())
    assert total(samples, "graphsentry_alert_updates_total") == len(alerts)
    assert total(samples, "graphsentry_delivered_messages_total",
                 topic=topics["alerts_json"]) == alerts_json == len(alerts)
    assert by(samples, "graphsentry_signals_total", "detector") == Counter(
        s["detector"] for s in signals)
    assert total(samples, "graphsentry_late_events_total") == late
    # State, input and enrichment figures.
    principals = {GraphEvent.from_record(r).principal_key for r in records}
    assert total(samples, "graphsentry_state_principals") == len(principals)
    assert total(samples, "graphsentry_input_partitions") == 3
    assert _lags(samples) == {"0": 0, "1": 0, "2": 0}
    assert total(samples, "graphsentry_enrichment_available") == 2  # 1 in each process
    assert 0 < total(samples, "graphsentry_epoch_duration_seconds_sum") / total(
        samples, "graphsentry_epoch_duration_seconds_count") < 30  # epochs of 1 s, roughly
    # Health: both processes ready (input assigned, Kafka reachable, Redis available), live.
    for (ready_status, ready), (live_status, live) in health:
        assert ready_status == 200 and ready["ready"] is True, ready
        assert "partition(s) assigned" in ready["checks"]["input"], ready
        assert ready["checks"]["kafka"] == "reachable"
        assert ready["checks"]["enrichment"] == "available"
        assert live_status == 200 and live["live"] is True, live
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.count(": 200 ") == 2
    # The exit summary reads the same counters, after the stop closed the open windows.
    final = len(read_all(kafka_bootstrap, topics["alerts"]))
    assert f"events={len(records)}" in run.stderr
    assert f"alert_updates={final}" in run.stderr
    assert f"{topics['alerts']} {final}," in run.stderr


def test_bridge_metrics_match_its_input_and_output_topics(
        kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path) -> None:
    raw, activity = topic_factory(2, "raw"), topic_factory(2, "activity",
                                                          {"retention.ms": "-1"})
    dlq = topic_factory(1, "dlq")
    records = [record(n, n) for n in range(10, 17)]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(raw, key=b"a", value=event_hub(*records[:4]))
    producer.produce(raw, key=b"b", value=event_hub(*records[4:]))
    producer.produce(raw, key=b"c", value=NOT_JSON)
    producer.produce(raw, key=b"d", value=event_hub(records[0]))  # a duplicate
    assert producer.flush(30) == 0
    config = {"kafka": {"bootstrap": kafka_bootstrap,
                        "topics": {"raw": raw, "activity": activity, "dlq": dlq}},
              "metrics": {"enabled": True, "port": 0}}
    path = tmp_path / "graphsentry.yaml"
    path.write_text(json.dumps(config))
    bridge = Background([sys.executable, "-m", "graphsentry.cli", "bridge", "--config",
                         str(path)], _env(), cwd=str(ROOT))
    try:
        base = bridge.wait_for(r"bridge: metrics on (http://\S+)/metrics")[0].group(1)
        samples: Scrape = {}

        def settled() -> bool:
            nonlocal samples
            samples = scrape(base)
            return (total(samples, "graphsentry_input_messages_total") == 4
                    and total(samples, "graphsentry_delivered_messages_total", topic=activity)
                    == len(records)
                    and total(samples, "graphsentry_delivered_messages_total", topic=dlq) == 1
                    and total(samples, "graphsentry_kafka_consumer_lag_messages",
                              topic=raw, partition="0")
                    + total(samples, "graphsentry_kafka_consumer_lag_messages",
                            topic=raw, partition="1") == 0
                    and len([k for k in samples
                             if k[0] == "graphsentry_kafka_consumer_lag_messages"]) == 2)

        _until(settled, "every raw message bridged and acknowledged", bridge)
        ready, live = get(base + "/ready"), get(base + "/live")
    finally:
        code = bridge.stop(signal.SIGINT)
    assert code == 130, bridge.stderr[-3000:]
    assert total(samples, "graphsentry_bridged_records_total", flow="bridge") == len(records)
    assert total(samples, "graphsentry_duplicates_total", flow="bridge") == 1
    assert by(samples, "graphsentry_rejects_total", "reason") == {"invalid_json": 1}
    assert len(read_all(kafka_bootstrap, activity)) == len(records)
    assert len(read_all(kafka_bootstrap, dlq)) == 1
    assert ready[0] == 200 and ready[1]["checks"]["kafka"] == "reachable", ready
    assert live[0] == 200, live
    assert "4 inputs, 7 bridged, 1 rejected (invalid_json 1), 1 duplicates" in bridge.stderr


def test_metrics_port_in_use_is_a_clear_error(kafka_bootstrap: str,
                                              topic_factory: Callable[..., str],
                                              tmp_path: Path) -> None:
    """A second process on a taken port fails at start, naming the port and the setting."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        topics: dict[str, Any] = {"raw": topic_factory(1, "raw"),
                                  "activity": topic_factory(1, "activity"),
                                  "dlq": topic_factory(1, "dlq")}
        path = tmp_path / "graphsentry.yaml"
        path.write_text(json.dumps({"kafka": {"bootstrap": kafka_bootstrap, "topics": topics},
                                    "metrics": {"enabled": True, "port": port}}))
        done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "bridge", "--config",
                               str(path), "--bounded"], env=_env(), cwd=ROOT,
                              capture_output=True, text=True, timeout=TIMEOUT)
    finally:
        holder.close()
    assert done.returncode == 2, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "metrics.port" in done.stderr
