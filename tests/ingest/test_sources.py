"""The other logs of Graph requests (issue 10.2, 10.3): the legacy Azure AD Graph log and
Defender XDR's GraphApiAuditEvents, in each public shape, mapped onto the normalized schema; and
every recognised log that holds no Graph requests rejected with a reason that names it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from graphsentry.avro import decode_activity, encode_activity
from graphsentry.ingest import normalize_candidates
from graphsentry.ingest.normalize import Reject, normalize_record
from graphsentry.ingest.readers import iter_stream, parse_payload
from schemas import field_names
from tests.ingest.factory import (
    APP,
    REMOVE,
    SP,
    TENANT,
    USER,
    aad_record,
    defender_row,
    defender_streamed,
    eh_record,
    message,
)


def ok(obj: Any) -> dict[str, Any]:
    record = normalize_record(obj, "test:1")
    assert not isinstance(record, Reject), record
    assert list(record) == field_names("graph_activity")
    assert decode_activity(encode_activity(record)) == record
    return record


def rejected(obj: Any) -> Reject:
    result = normalize_record(obj, "test:1")
    assert isinstance(result, Reject), result
    return result


# --- Azure AD Graph (graph.windows.net) ------------------------------------------------------

def test_aad_graph_event_hub_record_maps_every_field() -> None:
    record = ok(aad_record())
    assert record["source"] == "AADGraphActivityLogs"
    assert record["time_generated"] == datetime(2026, 3, 2, 8, 19, 33, 536886, tzinfo=UTC)
    assert record["request_id"] == "b0000001-0000-4000-8000-000000000001"
    assert (record["request_method"], record["response_status_code"]) == ("GET", 200)
    assert record["request_uri"] == f"/v2/{TENANT}/users"  # as logged
    assert record["token_issued_at"] == datetime(2026, 3, 2, 7, 50, 39, tzinfo=UTC)  # US format
    assert (record["tenant_id"], record["app_id"], record["user_id"]) == (TENANT, APP, USER)
    assert (record["identity_type"], record["principal_id"]) == ("delegated", USER)
    assert record["service_principal_id"] is None
    assert (record["ip_address"], record["user_agent"]) == (
        "198.51.100.23", "Python/3.11 aiohttp/3.9.5")
    assert (record["response_size_bytes"], record["duration_ms"]) == (54662, 59)
    assert (record["api_version"], record["client_auth_method"]) == ("1.6", 0)
    assert record["scopes"] == ["user_impersonation"] and record["roles"] is None
    assert record["session_id"] == "5a5a5a5a-0000-4000-8000-5a5a5a5a5a5a"
    assert record["sign_in_activity_id"] == "AbCdEfGhIjKlMnOpQrStUw=="
    assert (record["resource_template"], record["resource_family"],
            record["resource_category"]) == ("/users", "users", "directory")
    assert record["operation_id"] is None and record["truncated_fields"] is None


def test_aad_graph_unknown_size_is_null_not_a_reject() -> None:
    record = ok(aad_record(httpStatusCode=403, responseSizeBytes=-1, durationMs=-1))
    assert (record["response_status_code"], record["response_size_bytes"],
            record["duration_ms"]) == (403, None, None)


def test_aad_graph_app_only_record_with_comma_separated_claims() -> None:
    record = ok(aad_record(actorType="Application", userId="", servicePrincipalId=SP,
                           roles=" Group.Read.All,Directory.Read.All,",
                           wids=" 0997a1d0-0d1d-4acb-b408-d5ca73121e90,", scopes=""))
    assert (record["identity_type"], record["principal_id"]) == ("app_only", SP)
    assert record["roles"] == ["Group.Read.All", "Directory.Read.All"]
    assert record["wids"] == ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"]


@pytest.mark.parametrize(
    ("uri", "template", "family"),
    [
        (f"/{TENANT}/users?api-version=1.6", "/users", "users"),
        (f"/v2/{TENANT}/tenantDetails", "/tenantDetails", "organization"),
        ("/myorganization/groups/3f0c1a2b-1111-4222-8333-944455556666/$links/members"
         "?api-version=1.61-internal", "/groups/{id}/$links/members", "groups"),
        ("https://graph.windows.net/contoso.onmicrosoft.com/roleDefinitions?api-version=1.6",
         "/roleDefinitions", "roleManagement"),
        (f"/{TENANT}/directoryObjects/$/Microsoft.DirectoryServices.User?$skiptoken=X1"
         "&api-version=1.61-internal",
         "/directoryObjects/{id}/Microsoft.DirectoryServices.User", "directoryObjects"),
        (f"/{TENANT}/authorizationPolicy", "/authorizationPolicy", "policies"),
        (f"/{TENANT}/applicationRefs/00000003-0000-0000-c000-000000000000",
         "/applicationRefs/{id}", "applications"),
        ("/me?api-version=1.6", "/me", "me"),
    ],
)
def test_aad_graph_templates_drop_the_tenant_and_use_graph_families(
        uri: str, template: str, family: str) -> None:
    record = ok(aad_record(requestUri=uri))
    assert (record["resource_template"], record["resource_family"],
            record["resource_category"]) == (template, family, "directory")


def test_aad_graph_batch_is_a_batch_row() -> None:
    record = ok(aad_record(requestUri=f"/{TENANT}/$batch", httpMethod="POST", httpStatusCode=202))
    assert (record["resource_family"], record["is_write"]) == ("batch", False)


def test_aad_graph_log_analytics_row_without_category_column() -> None:
    """Type AADGraphActivityLogs and no Category: the legacy log, not Microsoft Graph."""
    row = {"TenantId": "workspace-0000", "TimeGenerated": "2026-03-02T08:40:00.5Z",
           "AADTenantId": TENANT, "ActorType": "User", "ApiVersion": "1.6", "AppId": APP,
           "CallerIpAddress": "198.51.100.23", "ClientAuthMethod": "0", "DurationMs": 12,
           "Location": "West Europe", "OperationName": "AAD Graph Activity",
           "RequestId": "b0000002-0000-4000-8000-000000000002", "RequestMethod": "GET",
           "RequestUri": f"/{TENANT}/servicePrincipals?api-version=1.6",
           "ResponseSizeBytes": -1, "ResponseStatusCode": 200, "ResultSignature": "200",
           "Roles": "", "Scopes": "user_impersonation", "ServicePrincipalId": "",
           "TokenIssuedAt": "2026-03-02T08:00:00Z", "UserAgent": "", "UserId": USER,
           "SourceSystem": "Azure", "Type": "AADGraphActivityLogs"}
    record = ok(row)
    assert record["source"] == "AADGraphActivityLogs"
    assert record["tenant_id"] == TENANT  # never the workspace
    assert (record["resource_template"], record["resource_family"]) == (
        "/servicePrincipals", "servicePrincipals")
    assert record["response_size_bytes"] is None
    assert record["token_issued_at"] == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert ok({**row, "Category": "AzureADGraphActivityLogs"}) == record


# --- Defender XDR GraphApiAuditEvents ----------------------------------------------------------

def test_defender_streamed_record_maps_every_column() -> None:
    record = ok(defender_streamed())
    assert record["source"] == "GraphApiAuditEvents"
    assert record["time_generated"] == datetime(2026, 3, 2, 8, 30, 0, 123456, tzinfo=UTC)
    assert record["tenant_id"] == TENANT  # the streaming API's envelope
    assert (record["app_id"], record["identity_type"], record["principal_id"]) == (
        APP, "app_only", SP)
    assert record["service_principal_id"] == SP and record["user_id"] is None
    assert (record["response_status_code"], record["duration_ms"],
            record["response_size_bytes"]) == (200, 231, 48213)  # "200", "231" coerced
    assert record["request_id"] == "e0000001-0000-4000-8000-000000000001"
    assert record["operation_id"] == "d0000001-0000-4000-8000-000000000001"
    assert record["client_request_id"] == "c0000001-0000-4000-8000-00000000000c"
    assert record["sign_in_activity_id"] == "UtiUtiUtiUtiUtiUtiUtiA"
    assert (record["ip_address"], record["location"]) == ("203.0.113.50", "westeurope")
    assert (record["resource_template"], record["query_top"]) == ("/servicePrincipals", 999)
    assert record["user_agent"] is None and record["roles"] is None  # not in this table


def test_defender_delegated_row_and_operation_id_in_place_of_request_id() -> None:
    record = ok(defender_streamed(EntityType="User", AccountObjectId=USER, RequestId=REMOVE,
                                  Scopes="User.Read.All Mail.Read"))
    assert (record["identity_type"], record["user_id"], record["principal_id"]) == (
        "delegated", USER, USER)
    assert record["request_id"] == "d0000001-0000-4000-8000-000000000001"
    assert record["scopes"] == ["User.Read.All", "Mail.Read"]


def test_defender_row_without_tenant_names_the_fix() -> None:
    assert rejected(defender_row()).reason == (
        "missing_field: tenantId (a GraphApiAuditEvents row carries no Entra tenant: add an "
        "AadTenantId column, e.g. `| extend AadTenantId = \"<tenant id>\"` in the hunting query)")
    assert ok(defender_row(AadTenantId=TENANT))["tenant_id"] == TENANT


def test_defender_hunting_csv_export_is_read() -> None:
    row = defender_row(AadTenantId=TENANT, ResponseSize="48213")
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    items = list(iter_stream(io.BytesIO(text.getvalue().encode()), "hunting.csv"))
    records = list(normalize_candidates(items))
    assert [(r["source"], r["request_id"], r["response_size_bytes"]) for r in records] == [
        ("GraphApiAuditEvents", "e0000001-0000-4000-8000-000000000001", 48213)]


def test_sentinel_row_of_graph_api_audit_events_prefers_timestamp() -> None:
    row = defender_row(TimeGenerated="2026-03-02T08:35:00Z", Type="GraphApiAuditEvents",
                       TenantId="workspace-0000", SourceSystem="", AadTenantId=TENANT)
    record = ok(row)
    assert record["time_generated"] == datetime(2026, 3, 2, 8, 30, 0, 123456, tzinfo=UTC)
    assert record["tenant_id"] == TENANT


# --- recognised, not supported ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (eh_record(top={"category": "SignInLogs"}), "unsupported_category: category 'SignInLogs'"),
        ({"time": "2026-03-02T08:00:00Z", "tenantId": TENANT,
          "category": "AdvancedHunting-DeviceProcessEvents", "properties": {"DeviceId": "d1"}},
         "unsupported_category: Defender XDR streaming table 'DeviceProcessEvents' (of Defender's"
         " tables only GraphApiAuditEvents holds Graph requests)"),
        ({"TimeGenerated": "2026-03-02T08:00:00Z", "Type": "SigninLogs", "AppId": APP},
         "unsupported_table: Log Analytics table 'SigninLogs'"),
        ({"TimeGenerated": "2026-03-02T08:00:00Z", "Type": "AuditLogs", "Category": None},
         "unsupported_table: Log Analytics table 'AuditLogs'"),
    ],
)
def test_other_logs_are_named_not_missing_fields(record: dict[str, Any], reason: str) -> None:
    assert rejected(record).reason == reason


def test_one_event_hub_message_mixing_all_three_logs() -> None:
    payload = json.dumps(message(eh_record(), aad_record(), defender_streamed(),
                                 eh_record(top={"category": "AuditLogs"}))).encode()
    rejects: list[Reject] = []
    records = list(normalize_candidates(parse_payload(payload, "hub/0/7"), rejects.append))
    assert [r["source"] for r in records] == [
        "MicrosoftGraphActivityLogs", "AADGraphActivityLogs", "GraphApiAuditEvents"]
    assert [(r.code, r.source) for r in rejects] == [("unsupported_category", "hub/0/7#3")]
