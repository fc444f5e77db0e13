"""Synthetic tenants for the scale and state benchmarks: hot first-party apps, many principals.

One tenant of ``users`` delegated users and ``service_principals`` app-only service principals.
A share ``hot_share`` (default 70 %) of the records comes from three Microsoft first-party
apps used by the users — Microsoft Teams, Outlook Mobile and OneDrive SyncEngine (ids checked
against ``detectors.microsoft``'s first-party list), 35 / 21 / 14 % of all records by default —
and the rest from Microsoft Office (delegated), admins' PowerShell, and line-of-business
service principals reading the directory (app-only). Users' activity is heavy-tailed
(log-normal weights), each app makes its own kind of requests (chats, mail, drive delta and
downloads, directory lists). Records are raw Graph activity records (the Event Hub shape) put
through the production ``normalize_record``, so every derived field is what ingest
gives. Principal ids and addresses are derived from their index (no per-principal table, so a
million principals cost the generator no memory). Deterministic for a seed.

``mixed_stream`` draws records from the whole tenant over a time span; ``principal_stream``
gives each of a range of principals the same number of records (state benchmarks).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detectors.microsoft import first_party_name
from graphsentry.ingest.normalize import Reject, normalize_record

TENANT = "6f0e8a2c-3b1d-4e5f-9a7b-2c4d6e8f0a1b"
TEAMS = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
OUTLOOK = "27922004-5251-4030-b22d-91ecd9a37ea4"
ONEDRIVE = "ab9b8c07-8f02-4f72-87fa-80105867a763"
OFFICE = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"
HOT_APPS = {TEAMS: 0.50, OUTLOOK: 0.30, ONEDRIVE: 0.20}
"""The hot first-party apps and their part of the hot share."""
LOB_APPS = 40
"""Line-of-business apps; service principal i is an instance of app i % LOB_APPS."""
START = datetime(2026, 11, 9, tzinfo=UTC)
"""First simulated day (a Monday in the past: ingest refuses event times in the future)."""
GRAPH = "https://graph.microsoft.com/v1.0"
USER_AGENTS = {
    TEAMS: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Teams/24295.605.3225.8804 Chrome/126.0.6478.127 Electron/31.2.1 Safari/537.36",
    OUTLOOK: "Outlook-iOS/2.0",
    ONEDRIVE: "Microsoft SkyDriveSync 24.201.1006.0005 ship; Windows NT 10.0 (22631)",
    OFFICE: "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    POWERSHELL: "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) "
                "PowerShell/7.4.5",
}
SP_USER_AGENT = "azure-sdk-for-python/1.29 python/3.11 (Linux)"
SCOPES = {
    TEAMS: "Chat.ReadWrite Files.ReadWrite.All Presence.Read.All User.ReadBasic.All",
    OUTLOOK: "Mail.ReadWrite Calendars.ReadWrite Contacts.ReadWrite offline_access",
    ONEDRIVE: "Files.ReadWrite.All Sites.ReadWrite.All offline_access",
    OFFICE: "User.Read Files.ReadWrite.All Sites.Read.All",
    POWERSHELL: "User.Read.All Group.Read.All Directory.Read.All",
}
SP_ROLES = ("User.Read.All", "Group.Read.All", "Directory.Read.All", "Sites.Read.All",
            "AuditLog.Read.All")
Request = tuple[str, str, int, int]
"""(method, path after the version, status, response bytes)."""


def check_apps() -> dict[str, str]:
    """The hot apps' names from ``detectors.microsoft`` (raises if one is not first-party)."""
    names = {}
    for app in HOT_APPS:
        name = first_party_name(app)
        if name is None:
            raise ValueError(f"{app} is not in detectors.microsoft's first-party apps")
        names[app] = name
    return names


def guid(kind: int, index: int) -> str:
    """A GUID-shaped id for principal ``index`` of ``kind`` (1 users, 2 service principals,
    3 LOB apps): stable, distinct, no table."""
    mixed = (index * 0x9E3779B97F4A7C15 + kind * 0x632BE59BD9B4E019) % (1 << 48)
    return f"{kind:08x}-{(index >> 32) & 0xFFFF:04x}-4{(index >> 20) & 0xFFF:03x}-" \
           f"8{(index >> 8) & 0xFFF:03x}-{mixed:012x}"


def user_ip(index: int, roaming: bool) -> str:
    """A user's office/home address (two per user), from documentation and CGNAT ranges."""
    if roaming:
        return f"100.{64 + index % 64}.{(index >> 6) % 256}.{1 + (index >> 14) % 254}"
    return f"10.{(index >> 16) % 256}.{(index >> 8) % 256}.{1 + index % 254}"


def _hot_request(rng: random.Random, app: str, user: str) -> Request:
    pick = rng.random()
    if app == TEAMS:
        if pick < 0.45:
            return "GET", f"/chats/19:{rng.getrandbits(48):012x}@thread.v2/messages?$top=50", \
                200, 4_000 + rng.randrange(30_000)
        if pick < 0.70:
            return "GET", "/me/chats?$expand=members", 200, 8_000
        if pick < 0.85:
            return "GET", f"/users/{user}/presence", 200, 300
        if pick < 0.95:
            return "GET", "/me/joinedTeams", 200, 2_000
        return "POST", f"/chats/19:{rng.getrandbits(48):012x}@thread.v2/messages", 201, 900
    if app == OUTLOOK:
        if pick < 0.50:
            return "GET", "/me/mailFolders/inbox/messages/delta", 200, 20_000
        if pick < 0.75:
            return "GET", f"/me/messages/AAMk{rng.getrandbits(64):016x}", 200, 12_000
        if pick < 0.92:
            return "GET", "/me/events?$top=50", 200, 6_000
        return "POST", "/me/sendMail", 202, 0
    if pick < 0.55:
        return "GET", "/me/drive/root/delta", 200, 15_000
    if pick < 0.85:
        return "GET", f"/drives/b!{rng.getrandbits(64):016x}/items/01{rng.getrandbits(64):016X}" \
            "/content", 302, 0
    return "PUT", f"/drives/b!{rng.getrandbits(64):016x}/items/01{rng.getrandbits(64):016X}" \
        "/content", 201, 1_200


def _cold_request(rng: random.Random, app: str) -> Request:
    pick = rng.random()
    if app == OFFICE:
        if pick < 0.5:
            return "GET", "/me", 200, 1_500
        if pick < 0.8:
            return "GET", "/me/memberOf", 200, 3_000
        return "GET", "/me/photo/$value", 200, 9_000
    if app == POWERSHELL:
        if pick < 0.5:
            return "GET", "/users?$top=999", 200, 400_000
        return "GET", f"/groups/{guid(4, rng.randrange(5_000))}/members", 200, 20_000
    # line-of-business service principals: directory and audit reads
    if pick < 0.35:
        return "GET", f"/users/{guid(1, rng.randrange(50_000))}", 200, 1_800
    if pick < 0.60:
        return "GET", f"/groups/{guid(4, rng.randrange(5_000))}/members?$top=999", 200, 30_000
    if pick < 0.80:
        return "GET", "/users/delta", 200, 60_000
    if pick < 0.95:
        return "GET", "/auditLogs/signIns?$top=1000", 200, 250_000
    return "GET", f"/sites/contoso.sharepoint.com,{guid(5, rng.randrange(50))}/lists", 200, 7_000


def raw_record(rng: random.Random, ts: float, app: str, principal: int,
               app_only: bool, roaming: bool = False) -> dict[str, Any]:
    """One raw Graph activity record (Event Hub shape) of ``principal`` in ``app``."""
    if app_only:
        sp = guid(2, principal)
        method, path, status, size = _cold_request(rng, app)
        caller = {"servicePrincipalId": sp, "userId": None, "roles": " ".join(
            SP_ROLES[:1 + principal % len(SP_ROLES)]), "scopes": None, "C_Idtyp": "app",
            "UserPrincipalObjectID": sp, "userAgent": SP_USER_AGENT, "clientAuthMethod": "2",
            "ipAddress": f"20.{40 + principal % 16}.{(principal >> 4) % 256}.{1 + principal % 254}"}
    else:
        user = guid(1, principal)
        method, path, status, size = (_hot_request(rng, app, user) if app in HOT_APPS
                                      else _cold_request(rng, app))
        caller = {"servicePrincipalId": None, "userId": user, "roles": None,
                  "scopes": SCOPES[app], "C_Idtyp": "user", "UserPrincipalObjectID": user,
                  "userAgent": USER_AGENTS[app], "clientAuthMethod": "0",
                  "ipAddress": user_ip(principal, roaming)}
    when = datetime.fromtimestamp(ts, UTC)
    request_id = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}" \
                 f"-a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {  # the Event Hub / storage account shape: an envelope around ``properties``
        "time": stamp, "tenantId": TENANT, "category": "MicrosoftGraphActivityLogs",
        "operationName": "Microsoft Graph Activity", "properties": {
            "timeGenerated": stamp, "requestId": request_id, "operationId": request_id,
            "apiVersion": "v1.0", "requestMethod": method, "responseStatusCode": status,
            "responseSizeBytes": size, "durationMs": 20_000 + size // 8, "tenantId": TENANT,
            "location": "West Europe", "appId": app, "requestUri": f"{GRAPH}{path}",
            "wids": None if app_only else "b79fbf4d-3ef9-4689-8143-76b194e85509", **caller}}


def normalized(raw: dict[str, Any]) -> dict[str, Any]:
    """The production normalization of a generated record (a reject is a bug here: raises)."""
    record = normalize_record(raw, "bench")
    if isinstance(record, Reject):
        raise ValueError(f"generated record rejected: {record.reason}")
    return record


@dataclass(frozen=True)
class Tenant:
    """Who is in the tenant and how active each principal is."""

    users: int = 4_000
    service_principals: int = 200
    hot_share: float = 0.70
    seed: int = 7

    def _weights(self, count: int, rng: random.Random) -> list[float]:
        cumulative, total = [], 0.0
        for _ in range(count):
            total += math.exp(rng.gauss(0.0, 1.0))  # log-normal activity
            cumulative.append(total)
        return cumulative

    def mixed_stream(self, records: int, span_seconds: float,
                     start: datetime = START) -> Iterator[dict[str, Any]]:
        """``records`` normalized records over ``span_seconds`` from ``start``, in event-time
        order up to a few seconds' jitter."""
        rng = random.Random(f"{self.seed}:mixed")
        users = self._weights(self.users, rng)
        sps = self._weights(self.service_principals, rng)
        hot_apps, hot_weights = list(HOT_APPS), list(itertools.accumulate(HOT_APPS.values()))
        admins = max(1, self.users // 50)
        base, step = start.timestamp(), span_seconds / max(records, 1)
        for i in range(records):
            ts = base + i * step + rng.random() * 5.0
            pick = rng.random()
            if pick < self.hot_share:
                app = hot_apps[bisect.bisect(hot_weights, rng.random() * hot_weights[-1])]
                user = bisect.bisect(users, rng.random() * users[-1])
                yield normalized(raw_record(rng, ts, app, user, False, rng.random() < 0.1))
            elif pick < self.hot_share + (1 - self.hot_share) * 0.5:
                sp = bisect.bisect(sps, rng.random() * sps[-1])
                yield normalized(raw_record(rng, ts, _lob_app(sp), sp, True))
            elif pick < self.hot_share + (1 - self.hot_share) * 0.85:
                user = bisect.bisect(users, rng.random() * users[-1])
                yield normalized(raw_record(rng, ts, OFFICE, user, False))
            else:
                yield normalized(raw_record(rng, ts, POWERSHELL, rng.randrange(admins), False))


def _lob_app(sp: int) -> str:
    return guid(3, sp % LOB_APPS)


def principal_stream(first: int, count: int, per_principal: int, start: float,
                     span_seconds: float, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``per_principal`` records for each user ``first .. first + count - 1``, spread evenly
    over ``span_seconds`` from ``start`` (epoch seconds): principal j's records start at
    ``start + j / count * span`` and follow each other a minute apart, through the hot apps in
    turn. Near event-time order (a principal's few records overlap the next ones')."""
    rng = random.Random(f"{seed}:principals:{first}")
    apps = list(HOT_APPS)
    for j in range(count):
        ts = start + j * span_seconds / count
        for k in range(per_principal):
            yield normalized(raw_record(rng, ts + 60.0 * k, apps[k % len(apps)], first + j,
                                        False))
