"""End to end on the legacy Azure AD Graph log (issue 10.3): raw AzureADGraphActivityLogs Event
Hub messages → ingest → the embedded detection dataflow. A roadrecon-style walk of the AAD Graph
API from a stolen token raises alerts; a normal AAD Graph client doing a few reads does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from graphsentry.detection import run_embedded
from graphsentry.ingest import iter_records
from tests.ingest.factory import TENANT, aad_record

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AAD_POWERSHELL = "1b730954-1685-4b74-9bfd-dac224a7b894"  # roadrecon's default client id
VICTIM = "7c6b5a49-3827-4160-9f8e-7d6c5b4a3928"
AIOHTTP = "Python/3.11 aiohttp/3.9.5"  # aiohttp's default: roadrecon sets none
ATTACKER_IP = "203.0.113.99"
V = "api-version=1.61-internal"  # the version roadrecon asks for


def guid(kind: int, n: int) -> str:
    return f"{kind:08x}-{n:04x}-4000-8000-{n:012x}"


def roadrecon_gather() -> Iterator[tuple[str, str]]:
    """(method, path) in the order roadrecon gather requests them (dirkjanm/ROADtools
    roadrecon/gather.py): phase 1 lists every object type, phase 2 walks links per object."""
    lists = ["users", "tenantDetails", "policies", "servicePrincipals", "groups",
             "administrativeUnits", "applications", "devices", "directoryRoles",
             "roleDefinitions", "contacts", "oauth2PermissionGrants", "authorizationPolicy",
             "settings"]
    for name in lists:
        yield "GET", f"/{TENANT}/{name}?{V}"
    for page in range(3):  # users come back in pages through directoryObjects
        yield "GET", (f"/{TENANT}/directoryObjects/$/Microsoft.DirectoryServices.User"
                      f"?$skiptoken=X{page}&{V}")
    for n in range(25):
        for link in ("members", "owners"):
            yield "GET", f"/{TENANT}/groups/{guid(1, n)}/$links/{link}?{V}"
    for n in range(8):
        yield "GET", f"/{TENANT}/directoryRoles/{guid(2, n)}/$links/members?{V}"
    for n in range(30):
        for link in ("appRoleAssignedTo", "appRoleAssignments"):
            yield "GET", f"/{TENANT}/servicePrincipals/{guid(3, n)}/{link}?{V}"
    yield "GET", f"/{TENANT}/servicePrincipals?{V}&$expand=owners"
    yield "GET", f"/{TENANT}/applications?{V}&$expand=owners"
    for n in range(12):
        yield "GET", (f"/{TENANT}/roleAssignments?{V}"
                      f"&$filter=roleDefinitionId eq '{guid(4, n)}'")
        yield "GET", (f"/{TENANT}/eligibleRoleAssignments?{V}"
                      f"&$filter=roleDefinitionId eq '{guid(4, n)}'")
    for n in range(30):
        yield "GET", f"/{TENANT}/applicationRefs/{guid(5, n)}?{V}"


def normal_client() -> Iterator[tuple[str, str]]:
    """A line-of-business app on AAD Graph: the signed-in user, a colleague, the tenant."""
    yield "GET", "/me?api-version=1.6"
    yield "GET", f"/{TENANT}/users/{guid(6, 1)}?api-version=1.6"
    yield "GET", f"/{TENANT}/tenantDetails?api-version=1.6"
    yield "GET", f"/{TENANT}/me/memberOf?api-version=1.6"


def messages(requests: list[tuple[str, str]], app: str, agent: str, ip: str, spacing: timedelta,
             first: int) -> list[dict[str, Any]]:
    """Event Hub messages of AzureADGraphActivityLogs records, 50 records each."""
    records = []
    for n, (method, path) in enumerate(requests):
        stamp = (START + n * spacing).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        records.append(aad_record(
            timeGenerated=stamp, requestId=guid(9, first + n), appId=app, httpMethod=method,
            requestUri=path, userAgent=agent, callerIpAddress=ip, userId=VICTIM,
            apiVersion="1.61-internal", issuedAt="3/2/2026 8:55:00 AM",
            responseSizeBytes=-1 if n % 7 == 0 else 2048))
    return [{"records": records[i:i + 50]} for i in range(0, len(records), 50)]


def detect(tmp_path: Path, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    path = tmp_path / "aadgraph.json"
    path.write_text("\n".join(json.dumps(p) for p in payloads) + "\n", encoding="utf-8")
    rejects: list[Any] = []
    records = list(iter_records([str(path)], rejects.append))
    assert rejects == []
    assert {r["source"] for r in records} == {"AADGraphActivityLogs"}
    alerts: list[dict[str, Any]] = []
    stats = run_embedded(records, on_alert=alerts.append)
    assert stats.events == len(records)
    return alerts


def test_roadrecon_walk_from_a_stolen_token_alerts(tmp_path: Path) -> None:
    walk = list(roadrecon_gather())
    alerts = detect(tmp_path, messages(walk, AAD_POWERSHELL, AIOHTTP, ATTACKER_IP,
                                       timedelta(milliseconds=40), 0))
    by_detector = {a["detector"]: a for a in alerts}
    assert {"attack_tool", "graph_enumeration"} <= set(by_detector)
    tool = by_detector["attack_tool"]
    assert tool["title"] == "ROADrecon activity (templates)"
    assert (tool["principal_id"], tool["app_id"], tool["identity_type"]) == (
        VICTIM, AAD_POWERSHELL, "delegated")
    assert by_detector["graph_enumeration"]["principal_id"] == VICTIM


def test_roadtools_user_agent_alias_alerts_on_one_request(tmp_path: Path) -> None:
    """roadrecon gather -ua chrome_linux: roadlib's alias ends in "Safari/537.3"."""
    agent = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/115.0.0.0 Safari/537.3")
    alerts = detect(tmp_path, messages([("GET", f"/{TENANT}/tenantDetails?api-version=1.6")],
                                       AAD_POWERSHELL, agent, ATTACKER_IP, timedelta(0), 0))
    assert [(a["detector"], a["title"]) for a in alerts] == [
        ("attack_tool", "ROADrecon activity (user_agent)")]


def test_normal_aad_graph_client_does_not_alert(tmp_path: Path) -> None:
    app = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
    agent = "Microsoft Azure Graph Client Library 2.1.1"
    reads = list(normal_client())
    alerts = detect(tmp_path, messages(reads, app, agent, "198.51.100.23",
                                       timedelta(minutes=7), 1000))
    assert alerts == []
