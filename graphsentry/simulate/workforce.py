"""Benchmark users' delegated traffic: clients, daily and weekly rhythm, time zones, travel.

Every user runs Teams, Outlook, Office and the OneDrive sync client; administrators add Graph
PowerShell, helpdesk operators the Entra admin center, power users the Azure CLI. A working day
has a home session before work, an office session (80 % of the volume) and an evening at home,
in the user's local time (one user in ten works in UTC-5); weekends are home-only, and only
for a third of the users. On a travel day every client calls from a hotel network; from an ISP
change on, the home network is a new one. Both are benign new networks.
"""

from __future__ import annotations

import random

from graphsentry.simulate.bench_tenant import Habits, Workforce
from graphsentry.simulate.clock import MINUTE, Day
from graphsentry.simulate.records import Caller, Request, delegated
from graphsentry.simulate.tenant import GRAPH_POWERSHELL, Tenant, User, opaque_token
from graphsentry.simulate.traffic import (
    OFFICE_SCOPES,
    OFFICE_UA,
    OUTLOOK_SCOPES,
    OUTLOOK_UA,
    TEAMS_SCOPES,
    TEAMS_UA,
    _get,
    _office,
    _outlook,
    _teams,
)

ONEDRIVE_SYNC = "ab9b8c07-8f02-4f72-87fa-80105867a763"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
AZURE_PORTAL = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
SYNC_UA = "Microsoft SkyDriveSync 24.201.1006.0005 ship; Windows NT 10.0 (22631)"
CLI_UA = "python/3.11.8 (Windows-10-10.0.22631-SP0) AZURECLI/2.61.0"
EDGE_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0")
PS_UA = "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.1"
SYNC_SCOPES = "Files.ReadWrite.All offline_access openid profile"
CLI_SCOPES = "Application.ReadWrite.All Directory.AccessAsUser.All User.Read"
PORTAL_SCOPES = "Directory.AccessAsUser.All UserAuthenticationMethod.ReadWrite.All User.Read"
ADMIN_SCOPES = ("Directory.ReadWrite.All Group.ReadWrite.All RoleManagement.Read.Directory "
                "User.ReadWrite.All UserAuthenticationMethod.ReadWrite.All openid profile")
VOLUME = 0.45  # share of the demo users' daily volume
# (share of the day's requests, first local hour, last local hour, where)
Session = tuple[float, float, float, str]
SESSIONS: tuple[Session, ...] = ((0.08, 7.0, 8.5, "home"), (0.80, 8.5, 17.5, "office"),
                                 (0.12, 18.5, 22.0, "home"))
WEEKEND_SESSIONS: tuple[Session, ...] = ((1.0, 10.0, 20.0, "home"),)
WEEKEND_SHARE = 0.12
CLIENT_MIX = (("teams", 0.36), ("outlook", 0.30), ("office", 0.16), ("sync", 0.18))


def callers(user: User, habits: Habits) -> dict[str, Caller]:
    """Every client a user runs, by name."""
    out = {
        "teams": delegated(user, "1fec8e78-bce4-4aaf-ab1b-5451cc387264", TEAMS_UA, TEAMS_SCOPES),
        "outlook": delegated(user, "27922004-5251-4030-b22d-91ecd9a37ea4", OUTLOOK_UA,
                             OUTLOOK_SCOPES),
        "office": delegated(user, "d3590ed6-52b3-4102-aeff-aad2292ab01c", OFFICE_UA,
                            OFFICE_SCOPES),
        "sync": delegated(user, ONEDRIVE_SYNC, SYNC_UA, SYNC_SCOPES),
    }
    if habits.role == "admin":
        out["admin"] = delegated(user, GRAPH_POWERSHELL, PS_UA, ADMIN_SCOPES, admin=True)
    elif habits.role == "helpdesk":
        out["admin"] = delegated(user, AZURE_PORTAL, EDGE_UA, PORTAL_SCOPES)
    elif habits.role == "power":
        out["admin"] = delegated(user, AZURE_CLI, CLI_UA, CLI_SCOPES)
    return out


def network(user: User, habits: Habits, day: Day, where: str) -> str:
    if day.index in habits.travel_days:
        return habits.hotel_ip
    if where == "office":
        return user.office_ip
    changed = habits.isp_change_day is not None and day.index >= habits.isp_change_day
    return habits.new_home_ip if changed else user.home_ip


def chat_read(rng: random.Random, habits: Habits, caller: Caller, ts: float, ip: str,
              chat: str | None = None, size: tuple[int, int] = (8_000, 90_000)) -> Request:
    """One page of a chat's messages, as the Teams client fetches it."""
    target = chat or rng.choice(habits.chats)
    return Request(ts, caller, ip, "GET", f"/v1.0/chats/{target}/messages?$top=20", 200,
                   rng.randint(*size))


def _sync(rng: random.Random, user: User, habits: Habits, caller: Caller, ts: float,
          ip: str) -> list[Request]:
    if rng.random() < 0.75:
        return _get(ts, caller, ip, f"/v1.0/me/drive/root/delta?token={opaque_token(rng, 24)}",
                    rng.randint(600, 9000))
    item = rng.choice(habits.sync_files)
    return _get(ts, caller, ip, f"/v1.0/me/drive/items/{item}/content", 0, 302)


def _tooling(rng: random.Random, tenant: Tenant, habits: Habits, caller: Caller, start: float,
             ip: str) -> list[Request]:
    """A short admin, helpdesk or developer session (3-8 requests, seconds apart)."""
    ts, out = start, []
    target = rng.choice(tenant.users)
    if habits.role == "helpdesk":
        paths = [f"/v1.0/users/{target.id}", f"/v1.0/users/{target.id}/authentication/methods",
                 f"/v1.0/users/{target.id}/memberOf", f"/v1.0/users/{target.id}/licenseDetails"]
    elif habits.role == "admin":
        group = rng.choice(tenant.groups)
        paths = [f"/v1.0/users/{target.id}?$select=displayName,accountEnabled",
                 f"/v1.0/groups/{group}/members", f"/v1.0/groups/{group}"]
    else:
        sp = rng.choice(list(tenant.principals.values()))
        paths = ["/v1.0/me", f"/v1.0/applications?$filter=appId%20eq%20'{sp.app_id}'",
                 f"/v1.0/servicePrincipals?$filter=appId%20eq%20'{sp.app_id}'",
                 "/v1.0/me/memberOf"]
    for path in paths[:rng.randint(2, len(paths))]:
        ts += rng.uniform(2.0, 25.0)
        out += _get(ts, caller, ip, path, rng.randint(600, 12000))
    return out


def user_day(rng: random.Random, tenant: Tenant, index: int, workforce: Workforce,
             day: Day) -> list[Request]:
    """One benchmark user's requests over one day."""
    user, habits = tenant.users[index], workforce.of(index)
    clients = callers(user, habits)
    if day.weekend:
        if rng.random() >= 0.33:
            return []
        sessions, volume = WEEKEND_SESSIONS, user.activity * VOLUME * WEEKEND_SHARE
    else:
        sessions, volume = SESSIONS, user.activity * VOLUME
    names = [name for name, _ in CLIENT_MIX]
    weights = [weight for _, weight in CLIENT_MIX]
    out: list[Request] = []
    for share, first, last, where in sessions:
        ip = network(user, habits, day, where)
        start = day.at(habits.utc_offset + rng.uniform(first, first + 0.25))
        end = day.at(habits.utc_offset + last)
        for offset, name in enumerate(("teams", "outlook", "office", "sync")):
            out += _get(start + offset * rng.uniform(0.5, 3.0), clients[name], ip, "/v1.0/me",
                        rng.randint(400, 1200))
        for _ in range(int(volume * share)):
            name = rng.choices(names, weights)[0]
            ts = rng.uniform(start, end)
            if name == "teams":
                out += ([chat_read(rng, habits, clients[name], ts, ip)] if rng.random() < 0.3
                        else _teams(rng, tenant, user, clients[name], ts, ip))
            elif name == "outlook":
                out += _outlook(rng, tenant, user, clients[name], ts, ip)
            elif name == "office":
                out += _office(rng, tenant, user, clients[name], ts, ip)
            else:
                out += _sync(rng, user, habits, clients[name], ts, ip)
        if "admin" in clients and where == "office" and not day.weekend:
            for _ in range(rng.randint(1, 4)):
                out += _tooling(rng, tenant, habits, clients["admin"], rng.uniform(start, end),
                                ip)
    if not day.weekend and rng.random() < 0.3:  # a glance at Teams at night, from home
        ts = day.at(habits.utc_offset + rng.uniform(0.0, 5.0)) + rng.uniform(0, 30 * MINUTE)
        out += _teams(rng, tenant, user, clients["teams"], ts, network(user, habits, day, "home"))
    return out


def workforce_traffic(rng: random.Random, tenant: Tenant, workforce: Workforce,
                      days: list[Day]) -> list[Request]:
    return [req for day in days for index in range(len(tenant.users))
            for req in user_day(rng, tenant, index, workforce, day)]
