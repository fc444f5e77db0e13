"""Benign delegated traffic: each user's Teams, Outlook and Office clients over the day.

A user works from home early and late and from the office in working hours (weekends: home
only, little). Every session starts with each client signing in from that session's network, so
all of a user's usual networks appear in every client's history every day.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from graphsentry.simulate.clock import Day
from graphsentry.simulate.records import Caller, Request, delegated
from graphsentry.simulate.tenant import (
    OFFICE,
    OUTLOOK,
    TEAMS,
    Tenant,
    User,
    new_guid,
    opaque_token,
)

TEAMS_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Teams/24124.2315.2911.3357")
OUTLOOK_UA = "Outlook-iOS/2.0 (iPhone; iOS 17.4.1) Microsoft.Graph/1.0"
OFFICE_UA = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Word 16.0.17531; Pro)"
TEAMS_SCOPES = "Chat.ReadWrite Files.ReadWrite.All Presence.Read.All Team.ReadBasic.All User.Read"
OUTLOOK_SCOPES = "Calendars.ReadWrite Mail.ReadWrite Mail.Send Mail.Read.Shared User.Read"
OFFICE_SCOPES = "Files.ReadWrite.All Sites.Read.All User.Read openid profile"

# (share of the day's requests, first hour, last hour, where)
SESSIONS = ((0.08, 7.0, 8.5, "home"), (0.80, 8.5, 17.5, "office"), (0.10, 18.5, 22.5, "home"))
WEEKEND_SESSIONS = ((0.1, 10.0, 21.0, "home"),)
NIGHT_SHARE = 0.02
CLIENT_MIX = (("teams", 0.40), ("outlook", 0.35), ("office", 0.25))

Action = Callable[[random.Random, Tenant, User, Caller, float, str], list[Request]]


def _get(ts: float, caller: Caller, ip: str, path: str, size: int,
         status: int = 200) -> list[Request]:
    return [Request(ts, caller, ip, "GET", path, status, size if status < 300 else 0)]


def _teams(rng: random.Random, tenant: Tenant, user: User, caller: Caller, ts: float,
           ip: str) -> list[Request]:
    roll = rng.random()
    colleague = rng.choice(tenant.users)
    if roll < 0.30:
        return _get(ts, caller, ip, "/v1.0/me/joinedTeams", rng.randint(1800, 7000))
    if roll < 0.55:
        status = 404 if rng.random() < 0.3 else (429 if rng.random() < 0.005 else 200)
        return _get(ts, caller, ip, f"/v1.0/users/{colleague.id}/photo/$value",
                    rng.randint(2500, 9000), status)
    if roll < 0.70:
        return _get(ts, caller, ip, "/v1.0/me/chats?$top=50", rng.randint(4000, 30000))
    if roll < 0.85:
        return _get(ts, caller, ip, f"/v1.0/teams/{rng.choice(tenant.groups)}/channels",
                    rng.randint(900, 4000))
    # A $batch of photo lookups: the batch row and its sub-requests share the operation id.
    operation = new_guid(rng)
    batch = [Request(ts, caller, ip, "POST", "/v1.0/$batch", 200, rng.randint(8000, 30000),
                     operation_id=operation)]
    for offset, member in enumerate(rng.sample(tenant.users, rng.randint(3, 5))):
        status = 404 if rng.random() < 0.3 else 200
        batch.append(Request(ts + 0.01 * (offset + 1), caller, ip, "GET",
                             f"/v1.0/users/{member.id}/photo/$value", status,
                             rng.randint(2500, 9000) if status == 200 else 0,
                             operation_id=operation))
    return batch


def _outlook(rng: random.Random, tenant: Tenant, user: User, caller: Caller, ts: float,
             ip: str) -> list[Request]:
    roll = rng.random()
    if roll < 0.35:
        return _get(ts, caller, ip,
                    "/v1.0/me/messages?$top=25&$select=subject,from,receivedDateTime",
                    rng.randint(6000, 40000))
    if roll < 0.55:
        return _get(ts, caller, ip, "/v1.0/me/mailFolders/Inbox/messages?$top=50",
                    rng.randint(10000, 80000))
    if roll < 0.80:
        return _get(ts, caller, ip, "/v1.0/me/events?$top=10&$orderby=start/dateTime",
                    rng.randint(3000, 15000))
    if roll < 0.95:
        return _get(ts, caller, ip, f"/v1.0/me/messages/AAMk{opaque_token(rng, 30)}",
                    rng.randint(2000, 60000))
    return [Request(ts, caller, ip, "POST", "/v1.0/me/sendMail", 202, 0)]


def _office(rng: random.Random, tenant: Tenant, user: User, caller: Caller, ts: float,
            ip: str) -> list[Request]:
    roll = rng.random()
    drive = user.drive
    if roll < 0.25:
        return _get(ts, caller, ip, "/v1.0/me", rng.randint(400, 1200))
    if roll < 0.50:
        if rng.random() < 0.15:
            return _get(ts, caller, ip,
                        f"/v1.0/me/drive/root/children?$top=200&$skiptoken={opaque_token(rng)}",
                        rng.randint(5000, 40000))
        return _get(ts, caller, ip, "/v1.0/me/drive/root/children", rng.randint(5000, 40000))
    if roll < 0.65:
        return _get(ts, caller, ip, "/v1.0/me/drive/recent", rng.randint(3000, 20000))
    if roll < 0.80:
        return _get(ts, caller, ip, f"/v1.0/me/drive/items/{rng.choice(drive.folders)}/children",
                    rng.randint(2000, 30000))
    if roll < 0.95:
        return _get(ts, caller, ip, f"/v1.0/me/drive/items/{rng.choice(drive.files)}/content",
                    0, 302)
    site = rng.choice(tenant.sites)
    return _get(ts, caller, ip, f"/v1.0/sites/{site.id}/drive/root/children",
                rng.randint(3000, 30000))


ACTIONS: dict[str, Action] = {"teams": _teams, "outlook": _outlook, "office": _office}


def user_callers(user: User) -> dict[str, Caller]:
    return {
        "teams": delegated(user, TEAMS, TEAMS_UA, TEAMS_SCOPES),
        "outlook": delegated(user, OUTLOOK, OUTLOOK_UA, OUTLOOK_SCOPES),
        "office": delegated(user, OFFICE, OFFICE_UA, OFFICE_SCOPES),
    }


def _pick_client(rng: random.Random) -> str:
    names = [name for name, _ in CLIENT_MIX]
    return rng.choices(names, weights=[weight for _, weight in CLIENT_MIX])[0]


def user_day(rng: random.Random, tenant: Tenant, user: User, day: Day) -> list[Request]:
    """One user's delegated requests over one day."""
    callers = user_callers(user)
    sessions = WEEKEND_SESSIONS if day.weekend else SESSIONS
    out: list[Request] = []
    for share, first, last, where in sessions:
        ip = user.home_ip if where == "home" else user.office_ip
        start = day.at(rng.uniform(first, first + 0.25))
        end = day.at(last)
        for offset, name in enumerate(callers):
            out += _get(start + offset * rng.uniform(0.5, 3.0), callers[name], ip, "/v1.0/me",
                        rng.randint(400, 1200))
        for _ in range(int(user.activity * share)):
            name = _pick_client(rng)
            out += ACTIONS[name](rng, tenant, user, callers[name], rng.uniform(start, end), ip)
    for _ in range(int(user.activity * NIGHT_SHARE)):
        out += _teams(rng, tenant, user, callers["teams"], day.at(rng.uniform(0.0, 6.0)),
                      user.home_ip)
    return out


def users_traffic(rng: random.Random, tenant: Tenant, days: list[Day]) -> list[Request]:
    return [req for day in days for user in tenant.users
            for req in user_day(rng, tenant, user, day)]
