"""``graphsentry bridge --input`` on the real broker (issue 8.2, 8.7, 10): a record stamped two
hours ahead is a dead letter and its three neighbours reach the activity topic; the legacy Azure
AD Graph and Defender logs are bridged with their ``source``; an input without records still
prints the summary."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest

from graphsentry.ingest.timeparse import format_timestamp
from tests.ingest.factory import ROOT, aad_record, defender_streamed, eh_record, message
from tests.integration.kafka_util import read_all

pytestmark = pytest.mark.slow
SCHEMA = fastavro.parse_schema(json.loads((ROOT / "schemas" / "graph_activity.avsc").read_text()))
KEEP = {"retention.ms": "-1"}  # event times may be older than the broker's retention


def run_bridge(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP", "GRAPHSENTRY_CONFIG")}
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "bridge", "--bootstrap",
                           bootstrap, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def stamped(offset: timedelta, request: str) -> dict[str, Any]:
    stamp = format_timestamp(datetime.now(UTC) + offset)
    return eh_record(top={"time": stamp}, timeGenerated=stamp, requestId=request)


def test_future_record_is_a_dead_letter_and_neighbours_and_other_logs_are_bridged(
        kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    activity, dlq = topic_factory(1, "activity", KEEP), topic_factory(1, "dlq")
    blob = tmp_path / "hub.json"
    good = [stamped(timedelta(minutes=-1), f"good-{n}") for n in range(3)]
    ahead = stamped(timedelta(hours=2), "ahead")
    blob.write_text(json.dumps(message(good[0], good[1], ahead, good[2])) + "\n"
                    + json.dumps(message(aad_record(), defender_streamed())) + "\n")

    done = run_bridge(kafka_bootstrap, "--input", str(blob), "--to-topic", activity,
                      "--dlq-topic", dlq)

    values = [fastavro.schemaless_reader(io.BytesIO(m.value() or b""), SCHEMA, None)
              for m in read_all(kafka_bootstrap, activity)]
    assert sorted((v["request_id"], v["source"]) for v in values) == [
        ("b0000001-0000-4000-8000-000000000001", "AADGraphActivityLogs"),
        ("e0000001-0000-4000-8000-000000000001", "GraphApiAuditEvents"),
        ("good-0", "MicrosoftGraphActivityLogs"), ("good-1", "MicrosoftGraphActivityLogs"),
        ("good-2", "MicrosoftGraphActivityLogs")]
    letters = [json.loads(m.value() or b"") for m in read_all(kafka_bootstrap, dlq)]
    assert [(d["reason"].split(":")[0], d["source"]) for d in letters] == [
        ("future_timestamp", f"{blob}:1#2")]
    assert "6 inputs, 5 bridged, 1 rejected (future_timestamp 1), 0 duplicates" in done.stderr


@pytest.mark.parametrize("content", ["[]\n", '{"records": []}\n'])
def test_file_without_records_prints_the_summary(kafka_bootstrap: str, topic_factory: Any,
                                                 tmp_path: Path, content: str) -> None:
    activity, dlq = topic_factory(1, "activity"), topic_factory(1, "dlq")
    blob = tmp_path / "empty.json"
    blob.write_text(content)
    done = run_bridge(kafka_bootstrap, "--input", str(blob), "--to-topic", activity,
                      "--dlq-topic", dlq)
    assert ("graphsentry bridge: 0 inputs, 0 bridged, 0 rejected, 0 duplicates; "
            "acknowledged by Kafka: nothing in ") in done.stderr
    assert read_all(kafka_bootstrap, activity) == []
