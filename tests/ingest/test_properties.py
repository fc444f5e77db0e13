"""Property tests: no input crashes ingest; every output is a valid record or a reasoned reject."""

import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphsentry.avro import decode_activity, encode_activity
from graphsentry.ingest import normalize_candidates
from graphsentry.ingest.limits import MAX_STRING_CHARS, MAX_URI_CHARS, MAX_USER_AGENT_CHARS
from graphsentry.ingest.normalize import normalize_record
from graphsentry.ingest.readers import iter_stream, parse_payload
from graphsentry.ingest.reject import REASON_CODES, Reject
from schemas import field_names
from tests.ingest.factory import aad_record, defender_streamed, eh_record, properties

FIELDS = set(field_names("graph_activity"))
CODES = {code.split()[0] for code in REASON_CODES}
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

_OTHER_STRINGS = ("request_id", "operation_id", "client_request_id", "api_version", "tenant_id",
                  "ip_address", "location", "app_id", "user_id", "service_principal_id",
                  "sign_in_activity_id", "identity_provider", "device_id", "session_id",
                  "unique_token_id")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def check(result: dict[str, Any] | Reject) -> None:
    if isinstance(result, Reject):
        code = result.reason.split(":", 1)[0]
        assert code in CODES and code != "internal_error", result.reason
        assert len(result.raw) <= 4096
        json.dumps(result.to_json())
    else:
        assert set(result) == FIELDS
        assert decode_activity(encode_activity(result)) == result
        assert len(result["request_uri"]) <= MAX_URI_CHARS
        assert len(result["user_agent"] or "") <= MAX_USER_AGENT_CHARS
        assert all(len(result[f] or "") <= MAX_STRING_CHARS for f in _OTHER_STRINGS)
        for field, size in (result["truncated_fields"] or {}).items():
            assert field in FIELDS and size > 0


def check_stream(items: Any) -> None:
    for item in items:
        if isinstance(item, Reject):
            check(item)
        else:
            obj, source = item
            assert isinstance(source, str)
            check(normalize_record(obj, source))


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_readers(data: bytes) -> None:
    check_stream(parse_payload(data, "t/0/0"))
    check_stream(iter_stream(io.BytesIO(data), "in"))


@SETTINGS
@given(json_values)
def test_arbitrary_json_never_crashes_normalize(value: Any) -> None:
    check(normalize_record(value, "x"))
    check_stream(parse_payload(json.dumps(value).encode(), "t/0/0"))


field_keys = st.sampled_from([
    *sorted(properties()), "userId", "wids", "scopes", "tokenIssuedAt", "C_Idtyp", "C_DeviceId",
    "c_Sid", "UserPrincipalObjectID", "identityProvider", "signInActivityId", "category"])
string_like = st.text(max_size=40) | st.from_regex(r"\A[0-9 +-]{0,12}\Z") | st.sampled_from(
    ["", "2026-03-02T08:00:00Z", "1/9/2007 9:41:00 PM", "https://graph.microsoft.com/v1.0/me/drive",
     "POST", "app", "user", "200", "\\u0026"])


@SETTINGS
@given(st.dictionaries(field_keys, json_values | string_like, max_size=6))
def test_mutated_realistic_records_are_valid_or_rejected(overrides: dict[str, Any]) -> None:
    check(normalize_record(eh_record(**overrides), "x"))
    check(normalize_record(properties(**overrides), "x"))


@SETTINGS
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6, unique=True), json_values,
       st.integers(0, 6))
def test_a_bad_record_never_drops_its_neighbours(ids: list[int], bad: Any, at: int) -> None:
    good = [eh_record(requestId=f"r{n}") for n in ids]
    records = [*good[:at], bad, *good[at:]]
    payload = json.dumps({"records": records}).encode()
    out = [r["request_id"] for r in normalize_candidates(parse_payload(payload, "t/0/0"))]
    expected = [f"r{n}" for n in ids]
    assert [r for r in out if r in expected] == expected


aad_keys = st.sampled_from([
    *sorted(aad_record()["properties"]), "category", "Type", "responseSizeBytes", "roles"])
defender_keys = st.sampled_from([*sorted(defender_streamed()["properties"]), "AadTenantId",
                                 "category", "Timestamp", "EntityType"])
long_text = st.text(min_size=1000, max_size=12_000) | st.from_regex(
    r"\Ahttps://graph\.microsoft\.com/v1\.0/users(/delta)?\?\$(skiptoken|top|filter)="
    r"[A-Za-z0-9&=$]{0,9000}\Z")


@SETTINGS
@given(st.dictionaries(aad_keys, json_values | string_like | long_text, max_size=6))
def test_mutated_aad_graph_records_are_valid_or_rejected(overrides: dict[str, Any]) -> None:
    check(normalize_record(aad_record(**overrides), "x"))


@SETTINGS
@given(st.dictionaries(defender_keys, json_values | string_like | long_text, max_size=6))
def test_mutated_defender_records_are_valid_or_rejected(overrides: dict[str, Any]) -> None:
    check(normalize_record(defender_streamed(**overrides), "x"))
    check(normalize_record(defender_streamed(**overrides)["properties"], "x"))


@SETTINGS
@given(st.sampled_from(["requestUri", "userAgent", "location", "clientRequestId", "roles",
                        "scopes", "identityProvider"]), long_text)
def test_over_long_fields_are_cut_never_lost(key: str, value: str) -> None:
    result = normalize_record(eh_record(**{key: value}), "x", max_future_skew=None)
    check(result)
    if not isinstance(result, Reject):
        return
    assert result.code == "invalid_utf8"  # only text that is no text is refused


container_keys = st.sampled_from(["tables", "Tables", "results", "Schema", "error", "value",
                                  "@odata.context", "FrameType", "records", "rows", "columns"])


@SETTINGS
@given(st.dictionaries(container_keys, json_values, min_size=1, max_size=4), st.booleans())
def test_arbitrary_container_documents_never_crash(document: dict[str, Any], array: bool) -> None:
    payload = json.dumps([document] if array else document).encode()
    check_stream(parse_payload(payload, "t/0/0"))
    check_stream(iter_stream(io.BytesIO(payload), "in"))


@SETTINGS
@given(st.lists(st.lists(json_values | string_like, max_size=6), max_size=5), st.integers(0, 6))
def test_query_api_tables_give_one_item_per_row(rows: list[list[Any]], width: int) -> None:
    columns = [{"name": name, "type": "string"} for name in
               ["TimeGenerated", "RequestId", "RequestMethod", "RequestUri", "AppId",
                "ResponseStatusCode"][:width]]
    document = {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": rows}]}
    items = list(parse_payload(json.dumps(document).encode(), "t/0/0"))
    assert len(items) == len(rows)
    check_stream(items)
