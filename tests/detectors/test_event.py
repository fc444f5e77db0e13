"""GraphEvent.from_record: every field from its schema column (built positionally, so a field
added to the dataclass out of order would shift values: this test names each one)."""

from __future__ import annotations

from datetime import UTC, datetime

from detectors.event import GraphEvent

RECORD = {
    "time_generated": datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC),
    "request_id": "req", "tenant_id": "ten", "app_id": "app", "principal_id": "pri",
    "identity_type": "app_only", "request_method": "POST", "request_uri": "https://g/v1.0/x",
    "resource_template": "/x", "resource_family": "fam", "resource_category": "cat",
    "response_status_code": 201, "response_size_bytes": 77, "operation_id": "op",
    "service_principal_id": "sp", "user_id": "usr", "ip_address": "192.0.2.1",
    "user_agent": "ua", "target_user": "tu", "target_drive": "td", "target_site": "ts",
    "target_item": "ti", "target_application": "ta", "is_write": True, "is_download": True,
    "query_top": 5, "has_search": True, "has_filter": True,
}


def test_every_field_comes_from_its_column() -> None:
    assert GraphEvent.from_record(RECORD) == GraphEvent(
        ts=1_767_225_601.5, request_id="req", tenant_id="ten", app_id="app", principal_id="pri",
        identity_type="app_only", method="POST", uri="https://g/v1.0/x", template="/x",
        family="fam", category="cat", status=201, size=77, operation_id="op",
        service_principal_id="sp", user_id="usr", ip="192.0.2.1", user_agent="ua",
        target_user="tu", target_drive="td", target_site="ts", target_item="ti",
        target_application="ta", is_write=True, is_download=True, query_top=5, has_search=True,
        has_filter=True)


def test_optional_columns_may_be_missing_and_time_may_be_epoch_micros() -> None:
    required = ("request_id", "tenant_id", "app_id", "principal_id", "identity_type",
                "request_method", "request_uri", "resource_template", "resource_family",
                "resource_category", "response_status_code")
    minimal = {k: RECORD[k] for k in required} | {"time_generated": 1_767_225_601_500_000}
    event = GraphEvent.from_record(minimal)
    assert event.ts == 1_767_225_601.5 and event.size == 0 and event.ip is None
    assert not (event.is_write or event.is_download or event.has_search or event.has_filter)
    assert hash(event) == hash(GraphEvent.from_record(minimal))
