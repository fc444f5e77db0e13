"""End to end on the legacy Azure AD Graph log (issue 10.3): raw AzureADGraphActivityLogs Event
Hub messages → ingest → the embedded detection dataflow. A roadrecon-style walk of the AAD Graph
API from a stolen token (an established user's, used from a new network) raises alerts; the
same walk by a principal never seen before raises signals (it is in its learning period); a
normal AAD Graph client doing a few reads raises nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from graphsentry.alerts import latest_versions
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
             first: int, start: datetime = START) -> list[dict[str, Any]]:
    """Event Hub messages of AzureADGraphActivityLogs records, 50 records each."""
    records = []
    for n, (method, path) in enumerate(requests):
        stamp = (start + n * spacing).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        records.append(aad_record(
            timeGenerated=stamp, requestId=guid(9, first + n), appId=app, httpMethod=method,
            requestUri=path, userAgent=agent, callerIpAddress=ip, userId=VICTIM,
            apiVersion="1.61-internal", issuedAt="3/2/2026 8:55:00 AM",
            responseSizeBytes=-1 if n % 7 == 0 else 2048))
    return [{"records": records[i:i + 50]} for i in range(0, len(records), 50)]


def detect(tmp_path: Path, payloads: list[dict[str, Any]],
           signals: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    path = tmp_path / "aadgraph.json"
    path.write_text("\n".join(json.dumps(p) for p in payloads) + "\n", encoding="utf-8")
    rejects: list[Any] = []
    records = list(iter_records([str(path)], rejects.append))
    assert rejects == []
    assert {r["source"] for r in records} == {"AADGraphActivityLogs"}
    alerts: list[dict[str, Any]] = []
    stats = run_embedded(records, on_alert=alerts.append,
                         on_signal=None if signals is None else signals.append)
    assert stats.events == len(records)
    return alerts


USUAL_APP = "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
USUAL_AGENT = "Microsoft Azure Graph Client Library 2.1.1"
USUAL_IP = "198.51.100.23"


def history(days: int) -> list[dict[str, Any]]:
    """The victim's own use on the days before START: a line-of-business app's few reads,
    every working hour, from the office network."""
    reads = list(normal_client()) * 8
    return [m for day in range(days, 0, -1)
            for m in messages(reads, USUAL_APP, USUAL_AGENT, USUAL_IP, timedelta(minutes=15),
                              10_000 * day, START - timedelta(days=day))]


def walk_messages() -> list[dict[str, Any]]:
    return messages(list(roadrecon_gather()), AAD_POWERSHELL, AIOHTTP, ATTACKER_IP,
                    timedelta(milliseconds=40), 0)


def test_roadrecon_walk_from_a_stolen_token_alerts(tmp_path: Path) -> None:
    signals: list[dict[str, Any]] = []
    alerts = detect(tmp_path, history(5) + walk_messages(), signals)
    assert {a["principal_id"] for a in alerts} == {VICTIM}
    found = {s["detector"] for s in signals if s["principal_id"] == VICTIM}
    assert {"attack_tool", "graph_enumeration", "new_origin"} <= found, found
    tool = [s for s in signals if s["detector"] == "attack_tool"][-1]
    assert tool["title"] == "ROADrecon activity (endpoint set)"
    assert (tool["app_id"], tool["identity_type"]) == (AAD_POWERSHELL, "delegated")
    assert json.loads(tool["evidence"]["evidence_json"])["coverage"] == 1.0
    assert all(s["first_seen"] >= START for s in signals)  # the history day itself is quiet


def test_roadrecon_walk_by_a_principal_never_seen_is_signals(tmp_path: Path) -> None:
    """No history: the principal is learning, so the walk is evidence (signals) for a risk
    alert, not one on its own (docs/detection.md, learning period)."""
    signals: list[dict[str, Any]] = []
    alerts = detect(tmp_path, walk_messages(), signals)
    assert alerts == []
    found = {s["detector"] for s in signals}
    assert {"attack_tool", "graph_enumeration"} <= found, found
    assert all(s["context"]["learning"] for s in signals)


def test_roadtools_user_agent_alias_alerts_on_one_request(tmp_path: Path) -> None:
    """roadrecon gather -ua chrome_linux: roadlib's alias ends in "Safari/537.3"."""
    agent = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/115.0.0.0 Safari/537.3")
    alerts = detect(tmp_path, messages([("GET", f"/{TENANT}/tenantDetails?api-version=1.6")],
                                       AAD_POWERSHELL, agent, ATTACKER_IP, timedelta(0), 0))
    assert [(a["detector"], a["title"]) for a in latest_versions(alerts)] == [
        ("attack_tool", "ROADrecon activity (user agent)")]


def test_normal_aad_graph_client_does_not_alert(tmp_path: Path) -> None:
    reads = list(normal_client())
    signals: list[dict[str, Any]] = []
    alerts = detect(tmp_path, messages(reads, USUAL_APP, USUAL_AGENT, USUAL_IP,
                                       timedelta(minutes=7), 1000), signals)
    assert alerts == [] and signals == []
