"""The whole pipeline as a user runs it, on the real broker and Redis, through the CLI only:

``graphsentry simulate`` → raw topic → ``graphsentry bridge`` → activity topic →
``graphsentry run`` (2 processes) → alert topic, and ``graphsentry backtest`` over the activity
topic's time range. The injected scenarios must all be found (recall 1.0); the cluster's
alerts must equal the backtest's replay of the same range, false positives included (every
alert on a benign principal counts, at any time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphsentry.alerts import alert_from_avro, signal_from_avro
from graphsentry.backtest.matching import load_labels
from graphsentry.backtest.metrics import compute_metrics
from tests.integration.test_detect_kafka import consume_all

pytestmark = pytest.mark.slow
TIMEOUT = 300
KEEP = {"retention.ms": "-1"}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", *args], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"graphsentry {args[0]} failed:\n{done.stderr[-3000:]}"
    return done


def test_simulate_bridge_run_backtest_end_to_end(
        kafka_bootstrap: str, redis_url: str, redis_namespace: str,
        topic_factory: Callable[..., str], tmp_path: Path) -> None:
    topics = {"raw": topic_factory(3, "raw", KEEP), "activity": topic_factory(3, "activity", KEEP),
              "dlq": topic_factory(1, "dlq", KEEP), "alerts": topic_factory(3, "alerts", KEEP),
              "alerts_json": topic_factory(3, "alertsjson", KEEP),
              "signals": topic_factory(3, "signals", KEEP), "late": topic_factory(1, "late", KEEP)}
    config = tmp_path / "graphsentry.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": kafka_bootstrap, "topics": topics},
        "redis": {"url": redis_url, "key_prefix": redis_namespace},
        "bytewax": {"epoch_seconds": 1},
    }))
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    labels_path = tmp_path / "labels.json"

    cli("simulate", "--kafka-topic", topics["raw"], "--bootstrap", kafka_bootstrap,
        "--labels", str(labels_path), env=env)
    cli("bridge", "--config", str(config), "--bounded", env=env)
    cli("run", "--config", str(config), "--bounded", "--processes", "2", env=env)
    cluster_alerts = [alert_from_avro(v) for _, v in consume_all(kafka_bootstrap,
                                                                 topics["alerts"])]
    labels = load_labels(labels_path)
    run = json.loads(labels_path.read_text())["run"]
    metrics_path = tmp_path / "metrics.json"
    cli("backtest", "--topic", topics["activity"], "--bootstrap", kafka_bootstrap,
        f"--from={run['start']}", f"--to={_after(run['end'])}", "--labels", str(labels_path),
        "--json", str(metrics_path), env=env)

    backtest = json.loads(metrics_path.read_text())["runs"][0]
    assert backtest["overall"]["recall"] == 1.0, backtest["scenarios"]
    cluster_signals = [signal_from_avro(v) for _, v in consume_all(kafka_bootstrap,
                                                                   topics["signals"])]
    cluster = compute_metrics(cluster_alerts, labels, events=backtest["events"], name="cluster",
                              signals=cluster_signals)
    assert cluster.attack_recall == 1.0
    assert cluster.overall.recall == backtest["overall"]["signal_recall"]
    assert cluster.overall.alerts == backtest["overall"]["alerts"]
    chain = next(s for s in labels.attacks if s.name == "mi_token_theft_chain")
    incidents = {a["alert_id"] for a in cluster_alerts
                 if a["detector"] == "attack_chain" and a["principal_id"] == chain.principal_id}
    assert len(incidents) == 1  # one incident, however many revisions it went through
    assert cluster.overall.fp == backtest["overall"]["fp"]
    assert cluster.benign_alerted == backtest["benign_alerted"]


def _after(end: Any) -> str:
    """An exclusive range end just past an inclusive ISO end time."""
    return (datetime.fromisoformat(str(end).replace("Z", "+00:00"))
            + timedelta(seconds=1)).isoformat()
