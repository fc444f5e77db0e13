"""Raw Graph activity records for ingest tests: defaults, override what the case is about.

Besides Microsoft Graph activity records (``eh_record``, ``properties``), the other logs' public
shapes re-created with made-up ids: the legacy Azure AD Graph log as diagnostic settings deliver
it (``aad_record``: field for field the shape of Elastic's ``aadgraphactivitylogs`` pipeline
fixture, which matches Microsoft's AADGraphActivityLogs table reference) and Defender XDR's
GraphApiAuditEvents (``defender_row``: the columns of Microsoft Learn's table reference;
``defender_streamed``: wrapped as Defender's streaming API delivers it to an Event Hub).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / ".." / "shared" / "samples" / "graph_activity"
"""The shared public samples, named relative to the repo root (read in place, never copied)."""
requires_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples not present")

TENANT = "8f2d8a3e-5b1c-4c7e-9a0d-2f6b1e4c7a90"
APP = "6d3f1a2b-7c8e-4f90-a1b2-c3d4e5f60718"
SP = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
USER = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
REMOVE = object()
"""Pass as an override value to delete the key."""

_PROPERTIES: dict[str, Any] = {
    "timeGenerated": "2026-03-02T08:00:01.0159703Z",
    "requestId": "a0000001-0000-4000-8000-000000000001",
    "operationId": "a0000001-0000-4000-8000-000000000001",
    "apiVersion": "v1.0",
    "requestMethod": "GET",
    "requestUri": "https://graph.microsoft.com/v1.0/users",
    "responseStatusCode": 200,
    "responseSizeBytes": 364,
    "durationMs": 497815,
    "tenantId": TENANT,
    "ipAddress": "203.0.113.7",
    "userAgent": "python-requests/2.31.0",
    "location": "West Europe",
    "appId": APP,
    "servicePrincipalId": SP,
    "roles": "User.Read.All",
    "clientAuthMethod": "2",
}


def properties(**overrides: Any) -> dict[str, Any]:
    """The ``properties`` object of an app-only record, with overrides applied."""
    props = copy.deepcopy(_PROPERTIES)
    for key, value in overrides.items():
        if value is REMOVE:
            props.pop(key, None)
        else:
            props[key] = value
    return props


def eh_record(top: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """One Event Hub / storage record: envelope fields + ``properties`` (overrides go there)."""
    props = properties(**overrides)
    record: dict[str, Any] = {
        "time": props.get("timeGenerated"),
        "category": "MicrosoftGraphActivityLogs",
        "operationName": "Microsoft Graph Activity",
        "resultSignature": "200",
        "durationMs": "497815",
        "level": "Informational",
        "tenantId": TENANT,
        "properties": props,
    }
    for key, value in (top or {}).items():
        if value is REMOVE:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def message(*records: Any) -> dict[str, Any]:
    return {"records": list(records)}


def line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _apply(record: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is REMOVE:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def aad_record(top: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """One AzureADGraphActivityLogs record (Event Hub / storage shape; overrides go into
    ``properties``): a delegated GET of the tenant's users through Azure AD Graph."""
    props: dict[str, Any] = {
        "__UDI_RequiredFields_EventTime": 639_140_000_000_000_000,
        "__UDI_RequiredFields_RegionScope": "EU",
        "__UDI_RequiredFields_TenantId": TENANT,
        "__UDI_RequiredFields_UniqueId": "b0000001-0000-4000-8000-000000000001",
        "actorType": "User", "apiVersion": "1.6", "appId": APP,
        "callerIpAddress": "198.51.100.23", "clientAuthMethod": 0, "deviceId": "",
        "directAccessSource": "Gateway", "durationMs": 59, "env_cloud_role": "restdirectoryservice",
        "httpMethod": "GET", "httpStatusCode": 200,
        "identityProvider": f"https://sts.windows.net/{TENANT}/",
        "issuedAt": "3/2/2026 7:50:39 AM", "location": "WestEurope",
        "requestId": "b0000001-0000-4000-8000-000000000001",
        "requestUri": f"/v2/{TENANT}/users", "responseSizeBytes": 54662, "roles": "",
        "scopes": "user_impersonation", "servicePrincipalId": "",
        "sessionId": "5a5a5a5a-0000-4000-8000-5a5a5a5a5a5a",
        "signInActivityId": "AbCdEfGhIjKlMnOpQrStUw==", "tenantId": TENANT,
        "timeGenerated": "2026-03-02T08:19:33.5368860Z",
        "userAgent": "Python/3.11 aiohttp/3.9.5", "userId": USER, "wids": "",
    }
    record: dict[str, Any] = {
        "category": "AzureADGraphActivityLogs", "location": "WestEurope",
        "operationName": "AAD Graph Activity", "tenantId": TENANT,
        "properties": _apply(props, overrides),
    }
    return _apply(record, top or {})


def defender_row(**overrides: Any) -> dict[str, Any]:
    """One GraphApiAuditEvents row as advanced hunting returns it (Timestamp, ApplicationId,
    AccountObjectId + EntityType, string ResponseStatusCode and RequestDuration, ...)."""
    row: dict[str, Any] = {
        "Timestamp": "2026-03-02T08:30:00.1234567Z", "ApiVersion": "v1.0", "ApplicationId": APP,
        "IPAddress": "203.0.113.50", "ClientRequestId": "c0000001-0000-4000-8000-00000000000c",
        "EntityType": "ServicePrincipal",
        "RequestUri": "https://graph.microsoft.com/v1.0/servicePrincipals?$top=999",
        "AccountObjectId": SP, "OperationId": "d0000001-0000-4000-8000-000000000001",
        "Location": "westeurope", "RequestDuration": "231",
        "RequestId": "e0000001-0000-4000-8000-000000000001", "RequestMethod": "GET",
        "ResponseStatusCode": "200", "Scopes": "",
        "UniqueTokenIdentifier": "UtiUtiUtiUtiUtiUtiUtiA",
        "TargetWorkload": "Microsoft.DirectoryServices", "ServicePrincipalId": SP,
        "ResponseSize": 48213, "IdentityProvider": f"https://sts.windows.net/{TENANT}/",
    }
    return _apply(row, overrides)


def defender_streamed(**overrides: Any) -> dict[str, Any]:
    """One record of Defender XDR's streaming API (Event Hub): the row in ``properties``."""
    return {"time": "2026-03-02T08:31:12.0000000Z", "tenantId": TENANT,
            "category": "AdvancedHunting-GraphApiAuditEvents",
            "properties": defender_row(**overrides)}
