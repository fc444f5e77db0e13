"""The shared public samples (read in place, never copied): every quirk they show is handled."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from graphsentry.avro import encode_activity
from graphsentry.ingest import iter_records, normalize_candidates
from graphsentry.ingest.readers import iter_candidates, iter_stream
from graphsentry.ingest.reject import Reject
from tests.ingest.factory import SAMPLES

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not present")

ACTIVITY = SAMPLES / "elastic-integrations_azure-graphactivitylogs_test-activitylogs-raw.log"
TIMES = SAMPLES / "elastic-integrations_azure-graphactivitylogs_test-time-formats-corner-cases.log"
SIGNINS = (SAMPLES
           / "elastic-integrations_azure-signinlogs_test-service-principal-signinlogs-sample.log")


def raw_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def normalized(path: Path) -> list[dict[str, Any]]:
    return list(iter_records([str(path)], dedup=False))


def test_each_activity_record_maps_its_own_values() -> None:
    raws = raw_lines(ACTIVITY)
    records = normalized(ACTIVITY)
    assert len(records) == len(raws) == 6
    for raw, record in zip(raws, records, strict=True):
        props = raw["properties"]
        assert record["request_id"] == props["requestId"]
        assert record["tenant_id"] == props["tenantId"]
        assert record["client_auth_method"] == int(props["clientAuthMethod"])  # "2" -> 2
        assert record["roles"] == (props["roles"].split() if props["roles"] else None)
        assert record["scopes"] == (props["scopes"].split() if props["scopes"] else None)
        assert record["user_agent"] == (props["userAgent"] or None)  # "" -> null
        assert record["identity_type"] == ("app_only" if props["servicePrincipalId"]
                                           else "delegated")
        assert record["principal_id"] == (props["servicePrincipalId"] or props["userId"])
        assert record["ip_address"] == props["ipAddress"]
        assert "\\u0026" not in record["request_uri"]
        encode_activity(record)


def test_sample_quirks() -> None:
    records = normalized(ACTIVITY)
    by_template = {r["resource_template"]: r for r in records}
    devices = by_template["/devices"]  # the record with literal \u0026 in its URI
    assert (devices["query_top"], devices["has_search"]) == (30, True)
    beta = by_template["/users/{id}/photos/{id}/$value"]  # /beta//users/... double slash
    assert beta["api_version"] == "beta" and beta["identity_provider"] is None
    assert records[5]["device_id"] == "abc123" and records[5]["session_id"] == "xyz000"
    assert records[4]["device_id"] is None
    assert ":" in records[0]["ip_address"]  # IPv6


def test_records_wrapped_in_an_event_hub_message() -> None:
    data = json.dumps({"records": raw_lines(ACTIVITY)}).encode()
    records = list(normalize_candidates(iter_stream(io.BytesIO(data), "msg")))
    assert [r["request_id"] for r in records] == [r["request_id"] for r in normalized(ACTIVITY)]


def test_record_six_is_a_redelivery_of_record_five() -> None:
    assert len(list(iter_records([str(ACTIVITY)]))) == 5


def test_time_corner_cases_file_without_final_newline_is_read_whole() -> None:
    assert not TIMES.read_bytes().endswith(b"\n")
    candidates = list(iter_candidates([str(TIMES)]))
    assert len(candidates) == 11
    rejects: list[Reject] = []
    list(normalize_candidates(candidates, rejects.append))
    # Stub records: their times parse, then the first missing required field is reported.
    assert {r.reason for r in rejects} == {"missing_field: requestId"}


def test_sign_in_logs_are_another_category() -> None:
    rejects: list[Reject] = []
    assert list(iter_records([str(SIGNINS)], rejects.append)) == []
    assert len(rejects) == 7
    assert {r.code for r in rejects} == {"unsupported_category"}
