"""Query-API response documents (issue 10.2): their rows are read, with sources; documents that
hold no activity records are one reject that names them; empty inputs are fine."""

from __future__ import annotations

import io
import json
from typing import Any

from graphsentry.ingest import normalize_candidates
from graphsentry.ingest.readers import iter_stream, parse_payload
from graphsentry.ingest.reject import Reject
from tests.ingest.factory import APP, TENANT, aad_record, defender_row

COLUMNS = [("TenantId", "string"), ("TimeGenerated", "datetime"), ("Location", "string"),
           ("RequestId", "string"), ("OperationId", "string"), ("ApiVersion", "string"),
           ("RequestMethod", "string"), ("RequestUri", "string"), ("ResponseStatusCode", "int"),
           ("ResponseSizeBytes", "int"), ("DurationMs", "int"), ("AadTenantId", "string"),
           ("IPAddress", "string"), ("UserAgent", "string"), ("AppId", "string"),
           ("ServicePrincipalId", "string"), ("Roles", "string"), ("ClientAuthMethod", "int"),
           ("SourceSystem", "string"), ("Type", "string")]


def la_row(n: int, uri: str = "https://graph.microsoft.com/v1.0/users?$top=999") -> list[Any]:
    """One MicrosoftGraphActivityLogs row in the query API's column order."""
    return ["workspace-0000", f"2026-03-02T08:{n:02d}:00.1234567Z", "West Europe",
            f"f000000{n}-0000-4000-8000-000000000000", f"f000000{n}-0000-4000-8000-000000000000",
            "v1.0", "GET", uri, 200, 4300, 120, TENANT, "198.51.100.7", "python-requests/2.32.3",
            APP, "sp-1", "User.Read.All", 2, "Azure", "MicrosoftGraphActivityLogs"]


def query_response(*rows: list[Any], **extra: Any) -> dict[str, Any]:
    columns = [{"name": name, "type": kind} for name, kind in COLUMNS]
    return {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": list(rows)}],
            **extra}


def read(document: Any, name: str = "q.json") -> tuple[list[dict[str, Any]], list[Reject]]:
    rejects: list[Reject] = []
    data = json.dumps(document, indent=2).encode()
    records = list(normalize_candidates(iter_stream(io.BytesIO(data), name), rejects.append))
    return records, rejects


def test_log_analytics_query_api_rows_become_records() -> None:
    records, rejects = read(query_response(la_row(1), la_row(2)))
    assert rejects == []
    assert [r["request_id"] for r in records] == ["f0000001-0000-4000-8000-000000000000",
                                                  "f0000002-0000-4000-8000-000000000000"]
    first = records[0]
    assert (first["tenant_id"], first["app_id"], first["source"]) == (
        TENANT, APP, "MicrosoftGraphActivityLogs")
    assert (first["resource_template"], first["query_top"], first["client_auth_method"]) == (
        "/users", 999, 2)


def test_query_api_rows_have_table_and_row_sources() -> None:
    second = {"name": "T2", "columns": [{"name": n, "type": t} for n, t in COLUMNS],
              "rows": [la_row(3)]}
    document = query_response(la_row(1), la_row(2))
    document["tables"].append(second)
    items = list(iter_stream(io.BytesIO(json.dumps(document).encode()), "q.json"))
    assert [source for _, source in items] == ["q.json:1#0#0", "q.json:1#0#1", "q.json:1#1#0"]


def test_partial_error_is_reported_and_the_rows_returned_are_read() -> None:
    error = {"code": "PartialError", "message": "There were some errors when processing your "
             "query.", "details": [{"code": "EngineError", "message": "result truncated"}]}
    records, rejects = read(query_response(la_row(1), error=error))
    assert len(records) == 1
    assert [r.reason for r in rejects] == [
        "query_error: PartialError: There were some errors when processing your query."]


def test_fatal_query_error_is_one_reject() -> None:
    error = {"error": {"code": "BadArgumentError", "message": "The request had some invalid "
                       "properties", "innererror": {"code": "SyntaxError"}}}
    records, rejects = read(error)
    assert records == []
    assert [r.reason for r in rejects] == [
        "query_error: BadArgumentError: The request had some invalid properties"]


def test_malformed_tables_and_rows_are_invalid_table_and_neighbours_are_kept() -> None:
    document = query_response(la_row(1), ["too", "short"], la_row(2), "not a row")
    document["tables"].insert(0, {"name": "broken", "columns": "TimeGenerated", "rows": []})
    records, rejects = read(document)
    assert len(records) == 2
    assert [(r.reason, r.source) for r in rejects] == [
        ("invalid_table: a table needs columns [{name, type}, ...] and rows [[...], ...]",
         "q.json:1#0"),
        (f"invalid_table: row 1: 2 values for {len(COLUMNS)} columns", "q.json:1#1#1"),
        (f"invalid_table: row 3: not an array for {len(COLUMNS)} columns", "q.json:1#1#3")]


def test_aad_graph_rows_from_the_query_api() -> None:
    columns = ["TimeGenerated", "AADTenantId", "AppId", "RequestId", "RequestMethod",
               "RequestUri", "ResponseStatusCode", "ResponseSizeBytes", "Type"]
    row = ["2026-03-02T08:40:00Z", TENANT, APP, "r-aad-1", "GET",
           f"/{TENANT}/tenantDetails?api-version=1.6", 200, -1, "AADGraphActivityLogs"]
    records, rejects = read({"tables": [{"name": "PrimaryResult", "rows": [row],
                                         "columns": [{"name": c} for c in columns]}]})
    assert rejects == []
    assert [(r["source"], r["resource_family"], r["response_size_bytes"]) for r in records] == [
        ("AADGraphActivityLogs", "organization", None)]


def test_defender_and_graph_hunting_api_results_are_read() -> None:
    rows = [defender_row(AadTenantId=TENANT, RequestId=f"hunt-{n}") for n in range(2)]
    schema = [{"Name": name, "Type": "String"} for name in rows[0]]
    for document, key in (({"Schema": schema, "Results": rows, "Stats": {}}, "Results"),
                          ({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#"
                            "microsoft.graph.security.huntingQueryResults",
                            "schema": schema, "results": rows}, "results")):
        records, rejects = read(document)
        assert rejects == [], key
        assert [(r["request_id"], r["source"]) for r in records] == [
            ("hunt-0", "GraphApiAuditEvents"), ("hunt-1", "GraphApiAuditEvents")], key


def test_graph_collection_response_is_named_unsupported() -> None:
    document = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/"
                "directoryAudits", "value": [{"id": "a1", "activityDisplayName": "Add user"}]}
    records, rejects = read(document)
    assert records == []
    assert [r.reason for r in rejects] == [
        "unsupported_shape: a Microsoft Graph API collection response (@odata.context "
        "'https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits'), not activity "
        "log records"]


def test_kusto_v2_frames_are_named_unsupported() -> None:
    frames = [{"FrameType": "DataSetHeader", "IsProgressive": False, "Version": "v2.0"},
              {"FrameType": "DataTable", "TableId": 0, "TableKind": "PrimaryResult",
               "TableName": "PrimaryResult", "Columns": [], "Rows": []},
              {"FrameType": "DataSetCompletion", "HasErrors": False, "Cancelled": False}]
    records, rejects = read(frames)
    assert records == []
    assert [(r.code, r.source) for r in rejects] == [
        ("unsupported_shape", "q.json:1#0"), ("unsupported_shape", "q.json:1#1"),
        ("unsupported_shape", "q.json:1#2")]
    assert "FrameType 'DataSetHeader'" in rejects[0].reason


def test_a_record_that_happens_to_have_a_value_key_is_still_a_record() -> None:
    record = aad_record(top={"value": 1})
    records, rejects = read(record)
    assert rejects == [] and records[0]["source"] == "AADGraphActivityLogs"


def test_empty_inputs_hold_no_records_and_no_rejects() -> None:
    for data in (b"[]", b'{"records": []}', b'{"tables": []}', b"", b"\n\n"):
        assert list(iter_stream(io.BytesIO(data), "e")) == [], data
    for data in (b"[]", b'{"records": []}', b'{"tables": []}'):
        assert list(parse_payload(data, "t/0/0")) == [], data
