"""Helpers to run the graphsentry command line against the real broker and Redis: records onto
a temporary activity topic, ``graphsentry run --bounded`` with every topic of the run passed
in a configuration file, and the command's environment without the test's service variables
(the configuration file alone says where Kafka and Redis are)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Producer

from graphsentry.avro import encode_activity, message_key, message_timestamp_ms

RUN_TIMEOUT = 120


def command_env() -> dict[str, str]:
    """This process's environment without KAFKA_BOOTSTRAP, REDIS_URL and GRAPHSENTRY_*
    (each would override the configuration file)."""
    return {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL") and not k.startswith("GRAPHSENTRY_")}


def graphsentry(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``graphsentry ARGS...`` in a new process (exit status, stdout and stderr as text)."""
    return subprocess.run([sys.executable, "-m", "graphsentry.cli", *args], env=command_env(),
                          capture_output=True, text=True, timeout=timeout)


def publish(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    """Normalized records as Avro, keyed and timestamped as the bridge does."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for record in records:
        producer.produce(topic, key=message_key(record), value=encode_activity(record),
                         timestamp=message_timestamp_ms(record))
    assert producer.flush(30) == 0


def run_topics(topic_factory: Callable[..., str], activity: str, partitions: int = 3,
               alerts_config: dict[str, str] | None = None) -> dict[str, str]:
    """New output topics for one run (``alerts_config``: the alert topic's settings)."""
    return {"activity": activity,
            "alerts": topic_factory(partitions, "alerts", config=alerts_config),
            "alerts_json": topic_factory(partitions, "alertsjson"),
            "dlq": topic_factory(1, "dlq"), "signals": topic_factory(partitions, "signals"),
            "late": topic_factory(1, "late")}


def write_config(path: Path, bootstrap: str, redis_url: str | None, key_prefix: str,
                 topics: dict[str, str] | None = None, **sections: Any) -> Path:
    config: dict[str, Any] = {"kafka": {"bootstrap": bootstrap, "topics": topics or {}},
                              "redis": {"url": redis_url, "key_prefix": key_prefix},
                              "bytewax": {"epoch_seconds": 1}, **sections}
    path.write_text(yaml.safe_dump(config))
    return path


def run_bounded(config: Path, processes: int = 1) -> subprocess.CompletedProcess[str]:
    """``graphsentry run --bounded`` with ``config``; asserts it succeeded."""
    done = graphsentry("run", "--bounded", "--config", str(config),
                       "--processes", str(processes))
    assert done.returncode == 0, done.stderr[-3000:]
    return done
