"""The bridge's pure parts: one raw input → activity messages and dead letters (keys,
timestamps, Avro values, reasons), the batch step's de-duplication and counters, and the flow
wired to in-memory sources and sinks (no Kafka here; see tests/integration/test_bridge.py)."""

from __future__ import annotations

import gzip
import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main
from confluent_kafka import TIMESTAMP_CREATE_TIME
from confluent_kafka import KafkaError as ConfluentKafkaError

from dataflows.bridge import (
    BridgeCounters,
    BridgeStep,
    BridgeTopics,
    FilesSource,
    StoppableSource,
    bridge_message,
    build_bridge_flow,
)
from graphsentry.config import Config, config_from_dict
from graphsentry.ingest.dedup import Deduplicator
from graphsentry.ingest.reject import Reject

SCHEMA = fastavro.parse_schema(json.loads(
    (Path(__file__).parents[1] / "schemas" / "graph_activity.avsc").read_text()))
TOPICS = BridgeTopics("activity.test", "dlq.test")
TENANT = "0b5e3c1a-2f4d-4e6a-8b7c-9d0e1f2a3b4c"
APP = "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
BRIDGED_AT = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
SOURCE_TS = 1_900_000_000_000


def clock() -> datetime:
    return BRIDGED_AT


def record(request: int, time: str = "2026-05-04T10:00:00.5Z", app: str = APP,
           **props: Any) -> dict[str, Any]:
    """One Event Hub record of an app-only call (``properties`` overrides via ``props``)."""
    properties = {
        "timeGenerated": time, "requestId": f"req-{request}", "requestMethod": "GET",
        "requestUri": "https://graph.microsoft.com/v1.0/users", "responseStatusCode": 200,
        "tenantId": TENANT, "appId": app, "servicePrincipalId": "sp-1", "ipAddress": "198.51.100.4",
        "roles": "User.Read.All",
    }
    properties.update(props)
    return {"time": time, "category": "MicrosoftGraphActivityLogs", "tenantId": TENANT,
            "operationName": "Microsoft Graph Activity", "properties": properties}


def message(value: bytes | None, offset: int = 7, key: bytes | None = b"eh-key"
            ) -> KafkaSourceMessage[bytes | None, bytes | None]:
    return KafkaSourceMessage(key=key, value=value, topic="raw.test", partition=2, offset=offset,
                              timestamp=(TIMESTAMP_CREATE_TIME, SOURCE_TS))


def records_message(*records: dict[str, Any], offset: int = 7
                    ) -> KafkaSourceMessage[bytes | None, bytes | None]:
    return message(json.dumps({"records": list(records)}).encode(), offset)


def decode(value: bytes) -> dict[str, Any]:
    decoded = fastavro.schemaless_reader(io.BytesIO(value), SCHEMA, None)
    assert isinstance(decoded, dict)
    return decoded


def split(routed: list[tuple[bool, Any]]) -> tuple[list[Any], list[Any]]:
    return [m for ok, m in routed if ok], [m for ok, m in routed if not ok]


def bridge(item: Any, dedup: Deduplicator | None = None,
           counters: BridgeCounters | None = None) -> tuple[list[Any], list[Any]]:
    return split(bridge_message(item, TOPICS, dedup if dedup is not None else Deduplicator(100),
                                counters if counters is not None else BridgeCounters(), clock))


def epoch_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_good_message_becomes_avro_keyed_by_tenant_principal_at_event_time() -> None:
    first, second = record(1), record(2, "2026-05-04T10:00:01.25Z", app="other-app")
    good, bad = bridge(records_message(first, second))
    assert bad == []
    assert [m.topic for m in good] == [TOPICS.activity] * 2
    principals = [decode(m.value)["principal_id"] for m in good]
    assert [m.key for m in good] == [f"{TENANT}/{p}".encode() for p in principals]
    assert [m.timestamp for m in good] == [epoch_ms(first["time"]), epoch_ms(second["time"])]
    assert ("content-type", b"avro/binary") in good[0].headers
    decoded = [decode(m.value) for m in good]
    assert [d["request_id"] for d in decoded] == ["req-1", "req-2"]
    assert decoded[0]["time_generated"] == datetime(2026, 5, 4, 10, 0, 0, 500000, tzinfo=UTC)
    assert decoded[1]["app_id"] == "other-app"


def test_bad_record_is_a_dead_letter_and_its_neighbours_are_bridged() -> None:
    broken = record(2)
    del broken["properties"]["requestId"]
    counters = BridgeCounters()
    good, bad = bridge(records_message(record(1), broken, record(3), offset=41),
                       counters=counters)
    assert [decode(m.value)["request_id"] for m in good] == ["req-1", "req-3"]
    assert len(bad) == 1
    letter = json.loads(bad[0].value)
    assert letter["reason"].startswith("missing_field:") and "request" in letter["reason"].lower()
    assert letter["source"] == "raw.test/2/41#1"
    assert json.loads(letter["raw"])["properties"]["timeGenerated"] == broken["time"]
    assert letter["at"] == "2030-01-02T03:04:05.000000Z"
    assert bad[0].topic == TOPICS.dlq and bad[0].key == b"eh-key"
    assert bad[0].timestamp == SOURCE_TS  # the raw message's time, not the clock
    assert counters.as_dict() == {"inputs": 1, "bridged": 2, "duplicates": 0,
                                  "rejected": {"missing_field": 1}}


def test_non_json_message_is_one_dead_letter_with_the_payload() -> None:
    payload = b"<html>503 Service Unavailable</html>"
    good, bad = bridge(message(payload, offset=9))
    assert good == []
    letter = json.loads(bad[0].value)
    assert letter["reason"].startswith("invalid_json:")
    assert letter["raw"] == payload.decode()
    assert letter["source"] == "raw.test/2/9"


def test_gzip_and_json_lines_payloads_are_read() -> None:
    lines = b"\n".join(json.dumps({"records": [record(n)]}).encode() for n in (1, 2))
    good, bad = bridge(message(gzip.compress(lines)))
    assert bad == [] and [decode(m.value)["request_id"] for m in good] == ["req-1", "req-2"]


def test_duplicate_record_is_bridged_once_per_worker() -> None:
    dedup, counters = Deduplicator(100), BridgeCounters()
    first, _ = bridge(records_message(record(1), record(2)), dedup, counters)
    again, _ = bridge(records_message(record(2), record(3), offset=8), dedup, counters)
    assert [decode(m.value)["request_id"] for m in first + again] == ["req-1", "req-2", "req-3"]
    assert counters.duplicates == 1 and counters.bridged == 3
    # Same request id at another time is another request.
    later, _ = bridge(records_message(record(1, "2026-05-04T11:00:00Z")), dedup, counters)
    assert len(later) == 1


def test_without_dedup_duplicates_pass() -> None:
    routed = bridge_message(records_message(record(1), record(1)), TOPICS, None,
                            BridgeCounters(), clock)
    assert [ok for ok, _ in routed] == [True, True]


def test_consumer_error_becomes_a_dead_letter() -> None:
    failed = message(b'{"records": []}', offset=12)
    error = KafkaError(ConfluentKafkaError(ConfluentKafkaError._MSG_TIMED_OUT), failed)
    counters = BridgeCounters()
    good, bad = bridge(error, counters=counters)
    assert good == []
    letter = json.loads(bad[0].value)
    assert letter["reason"].startswith("kafka_error: _MSG_TIMED_OUT")
    assert letter["source"] == "raw.test/2/12" and letter["raw"] == '{"records": []}'
    assert bad[0].key == b"eh-key" and counters.rejected == {"kafka_error": 1}


def test_empty_message_is_a_dead_letter() -> None:
    good, bad = bridge(message(None))
    assert good == [] and json.loads(bad[0].value)["reason"].startswith("missing_value")


def test_file_reader_items_have_no_key() -> None:
    reject = Reject("invalid_json: Expecting value at line 1 column 1", "nope", "blob.json:3")
    good, bad = bridge((record(1), "blob.json:2"))
    assert good[0].key == f"{TENANT}/{decode(good[0].value)['principal_id']}".encode()
    _, bad = bridge(reject)
    assert bad[0].key is None and bad[0].timestamp == 0
    assert json.loads(bad[0].value)["source"] == "blob.json:3"


def test_unexpected_input_is_an_internal_error_not_a_crash() -> None:
    good, bad = bridge(12345)
    assert good == [] and json.loads(bad[0].value)["reason"].startswith("internal_error")


def test_batch_step_sums_counters_and_remembers_across_batches() -> None:
    counters = BridgeCounters()
    step = BridgeStep(TOPICS, 100, counters, clock)
    step([records_message(record(1)), message(b"not json")])
    step([records_message(record(1), record(2), offset=8)])
    assert counters.as_dict() == {"inputs": 3, "bridged": 2, "duplicates": 1,
                                  "rejected": {"invalid_json": 1}}
    assert counters.summary() == "3 inputs, 2 bridged, 1 rejected (invalid_json 1), 1 duplicates"


@pytest.fixture
def config() -> Config:
    return config_from_dict({"kafka": {"topics": {"activity": TOPICS.activity,
                                                  "dlq": TOPICS.dlq}}})


def test_flow_routes_to_the_two_sinks(config: Config) -> None:
    items = [records_message(record(1), record(2)), message(b"\xff\xfe"),
             records_message(record(2), offset=8)]
    activity: list[Any] = []
    dlq: list[Any] = []
    built = build_bridge_flow(config, TestingSource(items), TestingSink(activity),
                              TestingSink(dlq), now=clock)
    run_main(built.flow)  # type: ignore[no-untyped-call]
    assert [decode(m.value)["request_id"] for m in activity] == ["req-1", "req-2"]
    assert [json.loads(m.value)["reason"].split(":")[0] for m in dlq] == ["invalid_utf8"]
    assert built.counters.duplicates == 1


def test_a_cluster_worker_remembers_records_across_batches(config: Config) -> None:
    # cluster_main runs the worker on a Bytewax thread, which gets a new Python thread state
    # (and so new threading.local values) at every call unless one is held
    # (graphsentry.cluster.hold_thread_state); these sinks do not hold one.
    items = [records_message(record(1), record(2)), records_message(record(2), offset=8)]
    activity: list[Any] = []
    built = build_bridge_flow(config, TestingSource(items, batch_size=1), TestingSink(activity),
                              TestingSink([]), now=clock)
    cluster_main(built.flow, [], 0)  # type: ignore[no-untyped-call]
    assert [decode(m.value)["request_id"] for m in activity] == ["req-1", "req-2"]
    assert built.counters.duplicates == 1


def test_files_source_reads_every_shape_and_reports_bytes(config: Config, tmp_path: Path) -> None:
    blob = tmp_path / "PT1H.json"  # storage account: one record per line, CRLF
    blob.write_bytes(b"".join(json.dumps(record(n)).encode() + b"\r\n" for n in (1, 2))
                     + b"{broken\r\n")
    hub = tmp_path / "eventhub.jsonl.gz"
    hub.write_bytes(gzip.compress(json.dumps({"records": [record(3), record(1)]}).encode()))
    read: list[int] = []
    activity: list[Any] = []
    dlq: list[Any] = []
    source = FilesSource([str(blob), str(hub)], batch_size=2, on_read=read.append)
    built = build_bridge_flow(config, source, TestingSink(activity), TestingSink(dlq), now=clock)
    run_main(built.flow)  # type: ignore[no-untyped-call]
    assert sorted(decode(m.value)["request_id"] for m in activity) == ["req-1", "req-2", "req-3"]
    assert [json.loads(m.value)["source"] for m in dlq] == [f"{blob}:3"]
    assert sum(read) == blob.stat().st_size + hub.stat().st_size
    assert built.counters.duplicates == 1


def test_stop_ends_the_input_after_the_current_batch(config: Config, tmp_path: Path) -> None:
    blob = tmp_path / "PT1H.json"
    blob.write_bytes(b"".join(json.dumps(record(n)).encode() + b"\n" for n in range(10)))
    stop = threading.Event()
    activity: list[Any] = []
    source = StoppableSource(FilesSource([str(blob)], batch_size=3,
                                         on_read=lambda _n: stop.set()), stop)
    built = build_bridge_flow(config, source, TestingSink(activity), TestingSink([]), now=clock)
    run_main(built.flow)  # type: ignore[no-untyped-call]
    assert [decode(m.value)["request_id"] for m in activity] == ["req-0", "req-1", "req-2"]
    assert built.counters.inputs == 3
