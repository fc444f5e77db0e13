"""GraphEvent.from_record: every field from its schema column (built positionally, so a field
added to the dataclass out of order would shift values: this test names each one)."""

from __future__ import annotations

import copyreg
import io
import pickle
from datetime import UTC, datetime

from detectors.event import RECORD_FIELDS, GraphEvent

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


def _event() -> GraphEvent:
    return GraphEvent.from_record({**RECORD, "roles": ["User.Read.All"], "scopes": None,
                                   "unique_token_id": "tok"})


def test_record_fields_name_every_column_from_record_reads() -> None:
    """RECORD_FIELDS is what a decoder may keep: an event built from only those columns is the
    event built from the whole record."""
    record = {**RECORD, "roles": ["User.Read.All"], "unique_token_id": "tok",
              "sign_in_activity_id": "sid", "source": "MicrosoftGraphActivityLogs",
              "location": "West Europe", "duration_ms": 3}
    kept = {name: record[name] for name in RECORD_FIELDS if name in record}
    assert GraphEvent.from_record(kept) == GraphEvent.from_record(record)
    assert {"location", "duration_ms"}.isdisjoint(RECORD_FIELDS)


def test_pickles_as_its_field_values_and_loads_the_older_form_too() -> None:
    event = _event()
    data = pickle.dumps(event)
    assert pickle.loads(data) == event
    assert b"request_id" not in data  # values only, no field names

    class ObjectDefault(pickle.Pickler):  # how events were pickled before __reduce__
        def reducer_override(self, obj: object) -> object:
            if type(obj) is GraphEvent:
                return (copyreg.__newobj__, (GraphEvent,), object.__getstate__(obj))
            return NotImplemented

    out = io.BytesIO()
    ObjectDefault(out).dump(event)
    older = out.getvalue()
    assert b"request_id" in older  # the slots state: a dict of field names
    assert pickle.loads(older) == event
    assert len(data) < len(older)
