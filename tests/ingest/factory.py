"""Raw Graph activity records for ingest tests: defaults, override what the case is about."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path("/work/shared/samples/graph_activity")
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
