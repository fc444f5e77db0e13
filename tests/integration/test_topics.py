"""``graphsentry topics create|check`` on the real broker: every configured topic created once
with its shape (alert topics log-compacted), existing topics checked and never changed, a
misconfigured one reported; a run on a missing topic names the command that creates it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
ROLES = ("raw", "activity", "dlq", "signals", "late", "alerts", "alerts_json", "alerts_ocsf")
COMPACTED = {"alerts", "alerts_json", "alerts_ocsf"}
TIMEOUT = 60


@pytest.fixture
def names(kafka_admin: AdminClient) -> Iterator[dict[str, str]]:
    """A topic name per role (none exists yet); whatever was created is deleted afterwards."""
    prefix = f"test.topics.{uuid.uuid4().hex[:10]}"
    chosen = {role: f"{prefix}.{role}" for role in ROLES}
    yield chosen
    present = [n for n in chosen.values() if n in kafka_admin.list_topics(timeout=10).topics]
    if present:
        for future in kafka_admin.delete_topics(present, operation_timeout=30).values():
            future.result(timeout=30)


def _topics(args: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP",
                                                             "GRAPHSENTRY_CONFIG")}
    return subprocess.run([sys.executable, "-m", "graphsentry.cli", "topics", *args,
                           "--config", str(config)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _described(admin: AdminClient, name: str) -> tuple[int, dict[str, str]]:
    partitions = len(admin.list_topics(timeout=10).topics[name].partitions)
    resource = ConfigResource(ResourceType.TOPIC, name)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return partitions, {k: str(e.value) for k, e in entries.items()}


def _write(tmp_path: Path, bootstrap: str, names: dict[str, str]) -> Path:
    path = tmp_path / "graphsentry.yaml"
    path.write_text(json.dumps({"kafka": {"bootstrap": bootstrap, "topics": names}}))
    return path


def test_create_makes_every_topic_once_with_its_shape(kafka_bootstrap: str,
                                                      kafka_admin: AdminClient,
                                                      names: dict[str, str],
                                                      tmp_path: Path) -> None:
    config = _write(tmp_path, kafka_bootstrap, names)
    missing = _topics(["check"], config)
    assert missing.returncode == 1
    assert missing.stdout.count(": missing (") == len(ROLES)

    dry = _topics(["create", "--dry-run"], config)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count(": would be created: ") == len(ROLES)
    existing = kafka_admin.list_topics(timeout=10).topics
    assert not [n for n in names.values() if n in existing]

    made = _topics(["create", "--partitions", "3"], config)
    assert made.returncode == 0, made.stderr
    assert made.stdout.count(": created: ") == len(ROLES)
    for role, name in names.items():
        partitions, settings = _described(kafka_admin, name)
        if role in COMPACTED:
            assert settings["cleanup.policy"] == "compact", (role, settings["cleanup.policy"])
        else:
            assert settings["cleanup.policy"] == "delete"
            assert int(settings["retention.ms"]) >= 7 * 86_400_000
        assert partitions == (3 if role in ("raw", "activity") else
                              2 if role in ("dlq", "late") else 4), role

    again = _topics(["create"], config)
    assert again.returncode == 0, again.stderr
    assert ": created" not in again.stdout
    assert again.stdout.count(": ok (") == len(ROLES)
    assert "partition(s), 8 recommended" in again.stdout  # the 3-partition topics: a note
    checked = _topics(["check"], config)
    assert checked.returncode == 0 and checked.stdout.count(": ok (") == len(ROLES)


def test_a_misconfigured_topic_is_reported_and_left_alone(kafka_bootstrap: str,
                                                          kafka_admin: AdminClient,
                                                          names: dict[str, str],
                                                          tmp_path: Path) -> None:
    wrong: dict[str, Any] = {"cleanup.policy": "delete"}
    created = kafka_admin.create_topics([NewTopic(names["alerts"], 1, 1, config=wrong)])
    created[names["alerts"]].result(timeout=30)
    config = _write(tmp_path, kafka_bootstrap, names)

    made = _topics(["create"], config)
    assert made.returncode == 1
    line = next(x for x in made.stdout.splitlines() if x.startswith(names["alerts"]))
    assert "misconfigured: cleanup.policy is delete, must be compact" in line
    assert f"--entity-name {names['alerts']} --add-config cleanup.policy=compact" in line
    assert made.stdout.count(": created: ") == len(ROLES) - 1
    assert _described(kafka_admin, names["alerts"])[1]["cleanup.policy"] == "delete"
    assert _topics(["check"], config).returncode == 1


def test_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "graphsentry.yaml"
    config.write_text(json.dumps({"kafka": {"bootstrap": "127.0.0.1:1"}}))
    done = _topics(["check"], config)
    assert done.returncode == 2
    assert "graphsentry topics: error: cannot reach Kafka at 127.0.0.1:1" in done.stderr


def test_run_on_a_missing_topic_names_the_command_that_creates_it(
        kafka_bootstrap: str, kafka_admin: AdminClient, tmp_path: Path) -> None:
    missing = f"no.such.activity.{uuid.uuid4().hex[:12]}"
    config = tmp_path / "graphsentry.yaml"
    config.write_text(json.dumps({"kafka": {"bootstrap": kafka_bootstrap,
                                            "topics": {"activity": missing}},
                                  "redis": {"url": None}}))
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "REDIS_URL")}
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "run", "--bounded",
                           "--config", str(config)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 2, done.stderr
    assert f"input topic '{missing}' does not exist" in done.stderr
    assert "create the configured topics with `graphsentry topics create`" in done.stderr
    assert missing not in kafka_admin.list_topics(timeout=10).topics
