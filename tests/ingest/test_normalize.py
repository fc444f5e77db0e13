"""Field mapping, the quirks of graph-activity-logs.md section 4, and every reject reason."""

from datetime import UTC, datetime
from typing import Any

import pytest

from graphsentry.ingest.limits import MAX_ARRAY_ITEMS, MAX_DEPTH, MAX_STRING_CHARS
from graphsentry.ingest.normalize import _TOKEN_TIMES, _TOKEN_TIMES_MAX, Reject, normalize_record
from schemas import field_names
from tests.ingest.factory import APP, REMOVE, SP, TENANT, USER, eh_record, properties


def ok(obj: Any) -> dict[str, Any]:
    record = normalize_record(obj, "test:1")
    assert not isinstance(record, Reject), record
    return record


def rejected(obj: Any) -> Reject:
    result = normalize_record(obj, "test:1#0")
    assert isinstance(result, Reject), result
    assert result.source == "test:1#0"
    return result


def test_event_hub_record_maps_every_field() -> None:
    record = ok(eh_record(
        clientRequestId="c1", signInActivityId="OPD3UZnmTkud24wRw6ATAA",
        identityProvider=f"https://sts.windows.net/{TENANT}/", wids="w1 w2",
        tokenIssuedAt="2026-03-02T07:55:00Z", deviceId="dev", sessionId="sess",
        uniqueTokenId="utid"))
    assert set(record) == set(field_names("graph_activity"))
    assert record["time_generated"] == datetime(2026, 3, 2, 8, 0, 1, 15970, tzinfo=UTC)
    assert record["token_issued_at"] == datetime(2026, 3, 2, 7, 55, tzinfo=UTC)
    assert record["request_id"] == record["operation_id"] == "a0000001-0000-4000-8000-000000000001"
    assert record["client_request_id"] == "c1"
    assert record["api_version"] == "v1.0"
    assert record["request_method"] == "GET"
    assert record["request_uri"] == "https://graph.microsoft.com/v1.0/users"
    assert record["response_status_code"] == 200
    assert record["response_size_bytes"] == 364
    assert record["duration_ms"] == 497815
    assert record["tenant_id"] == TENANT
    assert record["ip_address"] == "203.0.113.7"
    assert record["user_agent"] == "python-requests/2.31.0"
    assert record["location"] == "West Europe"
    assert record["app_id"] == APP
    assert record["service_principal_id"] == SP
    assert record["user_id"] is None
    assert record["roles"] == ["User.Read.All"]
    assert record["scopes"] is None
    assert record["wids"] == ["w1", "w2"]
    assert record["sign_in_activity_id"] == "OPD3UZnmTkud24wRw6ATAA"
    assert record["identity_provider"] == f"https://sts.windows.net/{TENANT}/"
    assert record["client_auth_method"] == 2
    assert (record["device_id"], record["session_id"], record["unique_token_id"]) == (
        "dev", "sess", "utid")
    assert record["identity_type"] == "app_only"
    assert record["principal_id"] == SP
    assert (record["resource_template"], record["resource_family"],
            record["resource_category"]) == ("/users", "users", "directory")
    assert record["is_write"] is False and record["is_download"] is False


@pytest.mark.parametrize("empty", [REMOVE, None, ""])
def test_three_forms_of_empty_are_null(empty: Any) -> None:
    record = ok(eh_record(userAgent=empty, roles=empty, identityProvider=empty, wids=empty,
                          operationId=empty, responseSizeBytes=empty, clientAuthMethod=empty))
    for field in ("user_agent", "roles", "identity_provider", "wids", "operation_id",
                  "response_size_bytes", "client_auth_method"):
        assert record[field] is None, field


def test_claims_split_on_any_whitespace_and_blank_claims_are_null() -> None:
    record = ok(eh_record(roles="  a.Read   b.Write ", scopes="   ", wids=["x y", "z"]))
    assert record["roles"] == ["a.Read", "b.Write"]
    assert record["scopes"] is None
    assert record["wids"] == ["x", "y", "z"]


def test_client_auth_method_and_durations_coerced_from_strings() -> None:
    record = ok(eh_record(top={"durationMs": "497815"}, clientAuthMethod="1",
                          durationMs=REMOVE, responseStatusCode="404", responseSizeBytes=12.0))
    assert record["client_auth_method"] == 1
    assert record["duration_ms"] == 497815  # top-level string used when properties lacks it
    assert record["response_status_code"] == 404
    assert record["response_size_bytes"] == 12


def test_properties_win_over_top_level_duplicates() -> None:
    record = ok(eh_record(top={"durationMs": "1", "location": "Elsewhere"}, durationMs=2))
    assert record["duration_ms"] == 2
    assert record["location"] == "West Europe"


def test_literal_u0026_in_uri_is_repaired_before_parsing_the_query() -> None:
    uri = "https://graph.microsoft.com/beta/devices?$select=id\\u0026$search=%22a%22\\u0026$top=30"
    record = ok(eh_record(requestUri=uri))
    assert record["request_uri"] == (
        "https://graph.microsoft.com/beta/devices?$select=id&$search=%22a%22&$top=30")
    assert (record["query_top"], record["has_search"], record["has_filter"]) == (30, True, False)


def test_keys_match_case_insensitively() -> None:
    props = {key[0].upper() + key[1:]: value for key, value in properties().items()}
    record = ok({"Properties": props, "Category": "MicrosoftGraphActivityLogs"})
    assert record["request_id"] == "a0000001-0000-4000-8000-000000000001"
    assert record["tenant_id"] == TENANT


def test_event_hub_prefixed_keys() -> None:
    record = ok(eh_record(top={"Level": 4}, C_DeviceId="abc123", c_Sid="xyz000",
                          UserPrincipalObjectID=SP))
    assert (record["device_id"], record["session_id"]) == ("abc123", "xyz000")


def test_unknown_and_empty_named_keys_are_tolerated() -> None:
    record = ok(eh_record(top={"": "", "somethingNew": {"nested": [1, 2]}},
                          **{"": "", "isReplay": False, "__UDI_RequiredFields_TenantId": TENANT}))
    assert record["tenant_id"] == TENANT


def test_method_is_upper_cased() -> None:
    assert ok(eh_record(requestMethod="patch"))["request_method"] == "PATCH"


@pytest.mark.parametrize(
    ("overrides", "identity", "principal"),
    [
        ({}, "app_only", SP),
        ({"servicePrincipalId": REMOVE, "userId": USER, "roles": ""}, "delegated", USER),
        ({"servicePrincipalId": "", "userId": USER}, "delegated", USER),
        ({"servicePrincipalId": None, "userId": None}, "unknown", f"app:{APP}"),
        # C_Idtyp decides when present, with the token object id as the principal fallback.
        ({"C_Idtyp": "user", "userId": USER}, "delegated", USER),
        ({"C_Idtyp": "app", "servicePrincipalId": "", "UserPrincipalObjectID": "oid-1"},
         "app_only", "oid-1"),
        ({"C_Idtyp": "user", "servicePrincipalId": "", "UserPrincipalObjectID": "oid-2"},
         "delegated", "oid-2"),
        ({"C_Idtyp": "app", "servicePrincipalId": ""}, "app_only", f"app:{APP}"),
        ({"C_Idtyp": "device"}, "app_only", SP),  # unknown idtyp value: fall back to the ids
    ],
)
def test_identity_type_and_principal(overrides: dict[str, Any], identity: str,
                                     principal: str) -> None:
    record = ok(eh_record(**overrides))
    assert (record["identity_type"], record["principal_id"]) == (identity, principal)


def test_tenant_from_top_level_when_properties_lack_it() -> None:
    assert ok(eh_record(tenantId=REMOVE))["tenant_id"] == TENANT


def test_log_analytics_tenant_is_aad_tenant_never_the_workspace() -> None:
    row = {"TimeGenerated": "2026-03-02T08:10:00Z", "RequestId": "r1", "RequestMethod": "GET",
           "RequestUri": "https://graph.microsoft.com/v1.0/users", "ResponseStatusCode": 200,
           "AppId": APP, "TenantId": "workspace-guid", "AadTenantId": TENANT,
           "ClientAuthMethod": 2, "IPAddress": "198.51.100.1", "SourceSystem": "Azure"}
    record = ok(row)
    assert record["tenant_id"] == TENANT
    assert record["ip_address"] == "198.51.100.1"
    assert record["client_auth_method"] == 2
    without_aad = dict(row)
    del without_aad["AadTenantId"]
    assert rejected(without_aad).reason == "missing_field: tenantId"


def test_old_log_analytics_ip_spelling() -> None:
    record = ok(eh_record(ipAddress=REMOVE, IpAddress="198.51.100.9"))
    assert record["ip_address"] == "198.51.100.9"


def test_envelope_fallbacks_for_ip_version_and_status() -> None:
    record = ok(eh_record(top={"callerIpAddress": "192.0.2.1", "operationVersion": "beta",
                               "resultSignature": "429"},
                          ipAddress=REMOVE, apiVersion=REMOVE, responseStatusCode=REMOVE))
    assert (record["ip_address"], record["api_version"], record["response_status_code"]) == (
        "192.0.2.1", "beta", 429)


def test_time_falls_back_to_top_level_time() -> None:
    record = ok(eh_record(top={"time": "2026-03-02T09:00:00Z"}, timeGenerated=REMOVE))
    assert record["time_generated"] == datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_derived_resource_fields_come_from_the_uri() -> None:
    record = ok(eh_record(
        requestUri="https://graph.microsoft.com/v1.0/users/rob@m7kni.io/drive/items/ITEM1234567890ABCD/content",
        responseStatusCode=302))
    assert record["resource_template"] == "/users/{upn}/drive/items/{id}/content"
    assert (record["resource_family"], record["resource_category"]) == ("onedrive", "storage")
    assert record["target_user"] == "rob@m7kni.io"
    assert record["target_item"] == "ITEM1234567890ABCD"
    assert record["is_download"] is True


# --- rejects ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["text", 3, None, [1, 2], True])
def test_not_an_object(value: Any) -> None:
    result = rejected(value)
    assert result.code == "not_an_object"
    assert result.to_json() == {"reason": result.reason, "raw": result.raw, "source": "test:1#0"}


@pytest.mark.parametrize(
    ("key", "field"),
    [("timeGenerated", "timeGenerated"), ("requestId", "requestId"),
     ("requestMethod", "requestMethod"), ("requestUri", "requestUri"),
     ("responseStatusCode", "responseStatusCode"), ("tenantId", "tenantId"), ("appId", "appId")],
)
@pytest.mark.parametrize("empty", [REMOVE, None, ""])
def test_missing_required_field(key: str, field: str, empty: Any) -> None:
    top = {"time": REMOVE, "resultSignature": REMOVE, "tenantId": REMOVE}
    assert rejected(eh_record(top=top, **{key: empty})).reason == f"missing_field: {field}"


@pytest.mark.parametrize("value", ["yesterday", "2026-02-30T00:00:00Z", 1767225600, ["x"]])
def test_bad_timestamp(value: Any) -> None:
    assert rejected(eh_record(timeGenerated=value)).code == "bad_timestamp"
    assert rejected(eh_record(tokenIssuedAt=value)).code == "bad_timestamp"


@pytest.mark.parametrize(
    "overrides",
    [{"requestId": {"a": 1}}, {"responseStatusCode": "OK"}, {"responseStatusCode": 200.5},
     {"durationMs": True}, {"roles": 5}, {"roles": ["a", 1]}, {"userAgent": ["ua"]},
     {"clientAuthMethod": "two"}, {"appId": False}, {"responseSizeBytes": float("nan")}],
)
def test_bad_type(overrides: dict[str, Any]) -> None:
    assert rejected(eh_record(**overrides)).code == "bad_type"


@pytest.mark.parametrize(
    "overrides",
    [{"responseSizeBytes": -2}, {"durationMs": "-5"}, {"responseStatusCode": 99},
     {"responseStatusCode": 600}, {"clientAuthMethod": 2**31}, {"responseSizeBytes": 2**63}],
)
def test_out_of_range(overrides: dict[str, Any]) -> None:
    assert rejected(eh_record(**overrides)).code == "out_of_range"


def test_bad_method() -> None:
    assert rejected(eh_record(requestMethod="G E T")).code == "bad_value"


@pytest.mark.parametrize("key", ["requestId", "tenantId", "appId"])
def test_over_long_required_identifier_is_field_too_large(key: str) -> None:
    result = rejected(eh_record(top={"tenantId": REMOVE}, **{key: "i" * (MAX_STRING_CHARS + 1)}))
    assert result.reason == f"field_too_large: {key} has 1025 characters (limit 1024)"


@pytest.mark.parametrize("unknown", [-1, "-1"])
def test_minus_one_size_or_duration_is_unknown(unknown: Any) -> None:
    record = ok(eh_record(responseSizeBytes=unknown, durationMs=unknown))
    assert (record["response_size_bytes"], record["duration_ms"]) == (None, None)


def test_long_claim_strings_within_limits_are_fine() -> None:
    scopes = " ".join(f"Scope{n}.ReadWrite.All" for n in range(MAX_ARRAY_ITEMS))
    assert len(ok(eh_record(scopes=scopes))["scopes"]) == MAX_ARRAY_ITEMS


def test_lone_surrogate_is_invalid_utf8() -> None:
    assert rejected(eh_record(userAgent="bad \ud800 agent")).code == "invalid_utf8"
    assert ok(eh_record(userAgent="Mozilla/5.0 (naïve; 日本)"))["user_agent"].endswith("日本)")


def test_pathological_nesting_is_too_deep() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    assert rejected(eh_record(extra=deep)).code == "too_deep"
    shallow: Any = "leaf"
    for _ in range(MAX_DEPTH - 3):
        shallow = {"k": shallow}
    ok(eh_record(extra=shallow))


def test_other_log_categories_are_unsupported() -> None:
    result = rejected(eh_record(top={"category": "ServicePrincipalSignInLogs"}))
    assert result.reason == "unsupported_category: category 'ServicePrincipalSignInLogs'"


def test_non_string_keys_from_python_callers() -> None:
    assert rejected({1: "x", "requestId": "r"}).code == "bad_type"


def test_raw_keeps_the_record_truncated() -> None:
    result = rejected(eh_record(requestId=REMOVE, userAgent="u" * 900, location="l" * 900,
                                atContent="a" * 5000))
    assert len(result.raw) == 4096
    assert result.raw.startswith('{"time": "2026-03-02T08:00:01.0159703Z"')


def test_any_key_casing_gives_the_same_record_as_the_canonical_spelling() -> None:
    canonical = eh_record(C_DeviceId="d", c_Sid="s", C_Idtyp="app", UserPrincipalObjectID=SP)
    shouted = {key.upper(): value for key, value in canonical.items()}
    shouted["PROPERTIES"] = {key.upper(): value for key, value in canonical["properties"].items()}
    assert ok(shouted) == ok(canonical)


def test_flat_record_without_log_analytics_columns_uses_tenant_id() -> None:
    assert ok(properties())["tenant_id"] == TENANT


def test_fields_come_in_schema_order() -> None:
    assert list(ok(eh_record())) == field_names("graph_activity")


def test_remembered_token_times_are_bounded_and_still_checked() -> None:
    for second in range(_TOKEN_TIMES_MAX + 10):
        stamp = f"2026-03-02T07:{second // 60 % 60:02d}:{second % 60:02d}.{second:07d}Z"
        assert ok(eh_record(tokenIssuedAt=stamp))["token_issued_at"].microsecond == second // 10
    assert len(_TOKEN_TIMES) <= _TOKEN_TIMES_MAX
    for _ in range(2):  # a remembered good value stays good, a bad one stays bad
        assert ok(eh_record(tokenIssuedAt="2026-03-02T07:55:00Z"))["token_issued_at"] == datetime(
            2026, 3, 2, 7, 55, tzinfo=UTC)
        assert rejected(eh_record(tokenIssuedAt="2026-02-30T00:00:00Z")).code == "bad_timestamp"
