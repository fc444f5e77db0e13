"""Attack scenarios on the last simulated day. Each returns the attacking caller and its requests.

Stages are packed into epoch-aligned 10-minute windows (``_window``) so that a detector with
tumbling 10-minute windows sees each burst whole.
"""

from __future__ import annotations

import random
from dataclasses import replace

from graphsentry.simulate.clock import MINUTE, Day
from graphsentry.simulate.records import Caller, Request, Token, app_only, delegated
from graphsentry.simulate.tenant import (
    ATTACKER_NETWORK,
    AZURE_POWERSHELL,
    GRAPH_POWERSHELL,
    OFFICE,
    OUTLOOK,
    Drive,
    Tenant,
    opaque_token,
)
from graphsentry.simulate.traffic import OFFICE_SCOPES, OFFICE_UA, OUTLOOK_SCOPES

Step = tuple[str, str, int, int]  # method, path, status, size
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/125.0.0.0 Safari/537.36")
AZUREHOUND_SCOPES = "AuditLog.Read.All Directory.AccessAsUser.All email openid profile"


def _window(day: Day, hour: int, minute: int) -> float:
    """20 s into the 10-minute window starting at hour:minute (minute a multiple of 10)."""
    return day.at(hour) + minute * MINUTE + 20.0


def _burst(rng: random.Random, caller: Caller, ips: list[str], start: float, seconds: float,
           steps: list[Step], token: Token | None = None) -> list[Request]:
    """``steps`` in order, spread over ``seconds`` from ``start`` (one client, several hosts)."""
    times = sorted(rng.uniform(start, start + seconds) for _ in steps)
    return [Request(ts, caller, rng.choice(ips), method, path, status, size, token=token)
            for ts, (method, path, status, size) in zip(times, steps, strict=True)]


def _list_drive(drive: Drive, rng: random.Random) -> list[Step]:
    steps: list[Step] = [("GET", f"/v1.0/drives/{drive.id}/root/children", 200,
                          rng.randint(5000, 60000))]
    steps += [("GET", f"/v1.0/drives/{drive.id}/items/{folder}/children", 200,
               rng.randint(3000, 40000)) for folder in drive.folders]
    return steps


def _downloads(drives: list[Drive], per_drive: int, rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    for drive in drives:
        for item in rng.sample(drive.files, min(per_drive, len(drive.files))):
            steps.append(("GET", f"/v1.0/drives/{drive.id}/items/{item}/content", 302, 0))
    rng.shuffle(steps)
    return steps


def mi_token_theft_chain(rng: random.Random, tenant: Tenant, day: Day) -> tuple[Caller,
                                                                                list[Request]]:
    """The reporting managed identity's token replayed from an attacker network: discovery,
    OneDrive/SharePoint enumeration, mass downloads, then a new secret on an application."""
    sp = tenant.principal("mi-reporting")
    caller = replace(app_only(sp, managed_identity=True), user_agent="python-requests/2.31.0")
    start = _window(day, 13, 0)
    token = caller.token_at(start)  # the VM's current token, lifted from IMDS
    ips = [f"{ATTACKER_NETWORK}.{host}" for host in (23, 24, 25)]
    users = tenant.users
    discovery: list[Step] = [
        ("GET", "/v1.0/organization", 200, 1400),
        ("GET", "/v1.0/me", 400, 250),
        ("GET", "/v1.0/users?$top=999", 200, 900_000),
        ("GET", f"/v1.0/users?$top=999&$skiptoken={opaque_token(rng)}", 200, 300_000),
        ("GET", "/v1.0/groups", 403, 280), ("GET", "/v1.0/groups?$top=999", 403, 280),
        ("GET", "/v1.0/applications", 200, 9000),
        ("GET", "/v1.0/servicePrincipals", 403, 280),
        ("GET", "/v1.0/directoryRoles", 403, 280),
        ("GET", "/v1.0/roleManagement/directory/roleAssignments", 403, 280),
        ("GET", "/v1.0/domains", 403, 280),
        ("GET", "/v1.0/sites/root", 200, 1200),
    ] + [("GET", f"/v1.0/users/{user.id}", 200, 900) for user in rng.sample(users, 5)]
    out = _burst(rng, caller, ips, start, 6 * MINUTE, discovery, token)

    targets = rng.sample(users, min(30, len(users) - 4))
    enumeration: list[Step] = [("GET", "/v1.0/sites?search=*", 200, 25000)]
    for site in tenant.sites:
        enumeration.append(("GET", f"/v1.0/sites/{site.id}/drives", 200, 3000))
        enumeration += _list_drive(site.drive, rng)
    for user in targets:
        status = 404 if rng.random() < 0.07 else 200
        enumeration.append(("GET", f"/v1.0/users/{user.id}/drive/root/children", status,
                            rng.randint(4000, 40000) if status == 200 else 0))
    for user in targets[:8]:
        enumeration += _list_drive(user.drive, rng)
    out += _burst(rng, caller, ips, _window(day, 13, 40), 9 * MINUTE, enumeration, token)

    valuable = [site.drive for site in tenant.sites if site.name in ("Finance", "HR", "Legal",
                                                                     "Board")]
    first_wave = _downloads(valuable, 25, rng) + _downloads([u.drive for u in targets[:8]], 15,
                                                            rng)
    out += _burst(rng, caller, ips, _window(day, 14, 30), 8 * MINUTE, first_wave, token)
    second_wave = _downloads([u.drive for u in targets[8:14]], 10, rng)
    out += _burst(rng, caller, ips, _window(day, 14, 50), 5 * MINUTE, second_wave, token)

    app = tenant.principal("hr-connector")
    persistence: list[Step] = [
        ("GET", f"/v1.0/applications/{app.app_object_id}", 200, 4200),
        ("POST", f"/v1.0/applications/{app.app_object_id}/addPassword", 200, 620),
    ]
    out += _burst(rng, caller, ips, _window(day, 15, 40), 3 * MINUTE, persistence, token)
    return caller, out


def azurehound_recon(rng: random.Random, tenant: Tenant, day: Day) -> tuple[Caller,
                                                                            list[Request]]:
    """AzureHound collecting with a user's token (Azure PowerShell client) from the office."""
    user = tenant.users[5]
    caller = delegated(user, AZURE_POWERSHELL, "azurehound/v2.1.0", AZUREHOUND_SCOPES)
    steps: list[Step] = [("GET", "/v1.0/organization", 200, 1400)]
    for kind, top in (("users", 999), ("groups", 999), ("applications", 99),
                      ("servicePrincipals", 999), ("devices", 999)):
        steps.append(("GET", f"/v1.0/{kind}?$top={top}", 200, 600_000))
        steps.append(("GET", f"/v1.0/{kind}?$top={top}&$skiptoken={opaque_token(rng)}", 200,
                      200_000))
    steps.append(("GET", "/v1.0/roleManagement/directory/roleDefinitions", 200, 90_000))
    for role in tenant.role_definitions:
        steps.append(("GET", "/v1.0/roleManagement/directory/roleAssignments?$select=id,"
                      f"roleDefinitionId,principalId&$filter=roleDefinitionId%20eq%20'{role}'",
                      200, 600))
    for group in tenant.groups:
        steps.append(("GET", f"/beta/groups/{group}/owners", 200, 900))
        steps.append(("GET", f"/beta/groups/{group}/members", 200, 6000))
    for sp in tenant.principals.values():
        steps.append(("GET", f"/beta/applications/{sp.app_object_id}/owners", 200, 700))
        steps.append(("GET", f"/beta/servicePrincipals/{sp.sp_id}/owners", 200, 700))
        steps.append(("GET", f"/v1.0/servicePrincipals/{sp.sp_id}/appRoleAssignedTo", 200, 900))
    for device in tenant.devices[:20]:
        steps.append(("GET", f"/beta/devices/{device}/registeredOwners", 200, 800))
    for index in rng.sample(range(len(steps)), 4):  # 25 streams run into throttling
        method, path, _, _ = steps[index]
        steps.insert(index, (method, path, 429, 0))
    return caller, _burst(rng, caller, [user.office_ip], _window(day, 10, 20), 5 * MINUTE, steps)


def mailbox_enumeration_stolen_token(rng: random.Random, tenant: Tenant,
                                     day: Day) -> tuple[Caller, list[Request]]:
    """A user's Outlook token replayed from a new network to read other users' inboxes."""
    victim = tenant.users[7]
    caller = delegated(victim, OUTLOOK, BROWSER_UA, OUTLOOK_SCOPES)
    start = _window(day, 15, 10)
    # The token's scopes are mail and calendar only: its directory and files probes are denied.
    steps: list[Step] = [("GET", "/v1.0/me", 200, 900), ("GET", "/v1.0/users?$top=999", 403, 280),
                         ("GET", "/v1.0/groups", 403, 280),
                         ("GET", "/v1.0/me/drive/root/children", 403, 280)]
    others = rng.sample([u for u in tenant.users if u is not victim], 19)
    for position, user in enumerate(others):
        shared = position % 4 == 0  # a few mailboxes shared with the victim
        steps.append(("GET", f"/v1.0/users/{user.id}/mailFolders/Inbox/messages?$top=50",
                      200 if shared else 403, rng.randint(20000, 90000) if shared else 250))
    ip = f"{ATTACKER_NETWORK}.77"
    return caller, _burst(rng, caller, [ip], start, 4 * MINUTE, steps, caller.token_at(start))


def mfa_method_registration(rng: random.Random, tenant: Tenant, day: Day) -> tuple[Caller,
                                                                                   list[Request]]:
    """An admin registers a phone method on one user and a Temporary Access Pass on another."""
    admin, victim, other = tenant.users[0], tenant.users[12], tenant.users[13]
    caller = delegated(admin, GRAPH_POWERSHELL, "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows "
                       "10.0.22631; en-US) PowerShell/7.4.1",
                       "UserAuthenticationMethod.ReadWrite.All User.Read.All", admin=True)
    steps: list[Step] = [
        ("GET", f"/v1.0/users/{victim.id}/authentication/methods", 200, 1100),
        ("POST", f"/v1.0/users/{victim.id}/authentication/phoneMethods", 201, 300),
        ("GET", f"/v1.0/users/{other.id}/authentication/methods", 200, 900),
        ("POST", f"/v1.0/users/{other.id}/authentication/temporaryAccessPassMethods", 201, 520),
    ]
    return caller, _burst(rng, caller, [admin.office_ip], _window(day, 11, 30), 4 * MINUTE, steps)


def sp_credential_added(rng: random.Random, tenant: Tenant, day: Day) -> tuple[Caller,
                                                                               list[Request]]:
    """The CI deployer (app-only) adds a secret to another application's service principal."""
    deployer, target = tenant.principal("ci-deployer"), tenant.principal("hr-connector")
    caller = app_only(deployer)
    steps: list[Step] = [
        ("GET", f"/v1.0/servicePrincipals/{target.sp_id}", 200, 4000),
        ("POST", f"/v1.0/servicePrincipals/{target.sp_id}/addPassword", 200, 610),
    ]
    return caller, _burst(rng, caller, [deployer.ip], _window(day, 14, 20), 2 * MINUTE, steps)


def token_replay_new_network(rng: random.Random, tenant: Tenant, day: Day) -> tuple[Caller,
                                                                                    list[Request]]:
    """A user's Office token replayed from a new network for ordinary reads."""
    victim = tenant.users[11]
    caller = delegated(victim, OFFICE, OFFICE_UA, OFFICE_SCOPES)
    start = _window(day, 16, 40)
    reads = ["/v1.0/me", "/v1.0/me/drive/root/children", "/v1.0/me/drive/recent",
             "/v1.0/me/messages?$top=25", "/v1.0/me/events?$top=10"]
    steps: list[Step] = [("GET", rng.choice(reads), 200, rng.randint(900, 30000))
                         for _ in range(18)]
    return caller, _burst(rng, caller, [f"{ATTACKER_NETWORK}.140"], start, 25 * MINUTE, steps,
                          caller.token_at(start))
