"""Attacks of the benchmark's last day shaped to stay under every fixed threshold of the
detectors as they were when issue 12 was filed (10-minute windows with absolute floors,
family requirements, missing behaviours). Each returns ``(caller, requests)``.

Today's floors they stay under (``detectors/*.py`` defaults): storage_exfiltration 25 downloads
and 20 items per 10 min; high_volume_transfer 50 MiB or 100 downloads per 10 min;
onedrive_enumeration 5 other users' drives or 100 folders; sharepoint_enumeration 5 sites;
graph_enumeration 5 families, or 200 objects across 2 families; mailbox_enumeration 5
mailboxes; denied_requests 5 denials across 2 families. ``tests/simulate`` checks them.
"""

from __future__ import annotations

import random

from graphsentry.simulate.bench_tenant import Workforce
from graphsentry.simulate.clock import Day, Pacer
from graphsentry.simulate.records import Caller, Request, app_only
from graphsentry.simulate.tenant import ATTACKER_NETWORK, Drive, Tenant, opaque_token
from graphsentry.simulate.workforce import callers

Attack = tuple[Caller, list[Request]]
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Seconds between downloads: ≥ 50 s keeps any 10 minutes ≤ 12, and ≤ 15 with the daemon's own
# hourly downloads (1-3) that go on meanwhile.
EXFIL_GAP = (50.0, 68.0)


def invoice_processor_day(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    """The invoice daemon's ordinary work: hourly, the Finance list and a few invoices."""
    sp = tenant.principal("invoice-processor")
    caller = app_only(sp)
    site = next(s for s in tenant.sites if s.name == "Finance")
    out: list[Request] = []
    for hour in range(7, 20):
        pace = Pacer(rng, day.at(hour + rng.uniform(0, 0.2)), (1.0, 5.0))
        out.append(Request(pace.next(), caller, sp.ip, "GET",
                           f"/v1.0/sites/{site.id}/lists/{site.list_ids[0]}/items?$top=50", 200,
                           rng.randint(8000, 30000)))
        for item in rng.sample(site.drive.files, rng.randint(1, 3)):
            out.append(Request(pace.next(), caller, sp.ip, "GET",
                               f"/v1.0/drives/{site.drive.id}/items/{item}/content", 302, 0))
    return out


def partner_portal_day(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    """The partner portal's ordinary work: hourly lookups of the apps it manages access to."""
    sp = tenant.principal("partner-portal")
    caller = app_only(sp)
    out: list[Request] = []
    for hour in range(8, 19):
        pace = Pacer(rng, day.at(hour + 0.3), (1.0, 4.0))
        for name in ("expense-app", "crm-connector"):
            app = tenant.principal(name)
            out.append(Request(pace.next(), caller, sp.ip, "GET",
                               f"/v1.0/servicePrincipals/{app.sp_id}/appRoleAssignedTo", 200,
                               rng.randint(3000, 20000)))
    return out


def _drive_walk(drive: Drive) -> list[str]:
    return [f"/v1.0/drives/{drive.id}/root/children"] + [
        f"/v1.0/drives/{drive.id}/items/{folder}/children" for folder in drive.folders]


def slow_exfiltration(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Attack:
    """The invoice daemon's secret used from a new network: ~330 files over six hours, at
    most 12 downloads in any 10 minutes (15 with the daemon's own), one drive at a time."""
    sp = tenant.principal("invoice-processor")
    caller = app_only(sp)
    ip = f"{ATTACKER_NETWORK}.50"
    drives = [s.drive for s in tenant.sites if s.name in ("Finance", "HR", "Legal", "Board")]
    drives += [u.drive for u in tenant.users[100:110]]
    ts, end = day.at(10.0) + 17.0, day.at(16.0)
    out: list[Request] = []
    for drive in drives:
        for path in _drive_walk(drive)[:3]:
            out.append(Request(ts + rng.uniform(1.0, 20.0), caller, ip, "GET", path, 200,
                               rng.randint(3000, 30000)))
        for item in drive.files:
            ts += rng.uniform(*EXFIL_GAP)
            if ts >= end:
                return caller, out
            out.append(Request(ts, caller, ip, "GET",
                               f"/v1.0/drives/{drive.id}/items/{item}/content", 302, 0))
    return caller, out


def teams_chat_collection(rng: random.Random, tenant: Tenant, wf: Workforce,
                          day: Day) -> Attack:
    """A user's Teams token replayed from a new network reads 130 of her 150 chats, ~14 MiB
    per 10 minutes (her own peak is a few hundred KiB)."""
    index = 15
    user, habits = tenant.users[index], wf.of(index)
    caller = callers(user, habits)["teams"]
    ip = f"{ATTACKER_NETWORK}.90"
    start = day.at(14.0) + 35.0
    token = caller.token_at(start)
    pace = Pacer(rng, start, (20.0, 31.0))
    out = [Request(pace.next(), caller, ip, "GET", "/v1.0/me/chats?$top=50", 200, 60_000,
                   token=token)]
    out += [Request(pace.next(), caller, ip, "GET",
                    f"/v1.0/me/chats?$top=50&$skiptoken={opaque_token(rng)}", 200, 60_000,
                    token=token) for _ in range(2)]
    for chat in rng.sample(habits.chats, 130):
        pages = 2 if rng.random() < 0.25 else 1
        for page in range(pages):
            query = "" if page == 0 else f"&$skiptoken={opaque_token(rng)}"
            out.append(Request(pace.next(), caller, ip, "GET",
                               f"/v1.0/chats/{chat}/messages?$top=50{query}", 200,
                               rng.randint(450_000, 800_000), token=token))
    return caller, out


def sp_role_assignment_walk(rng: random.Random, tenant: Tenant, wf: Workforce,
                            day: Day) -> Attack:
    """A developer's Azure CLI session reads 14 service principals' appRoleAssignments in a
    minute: who holds which application permission (one family, few objects)."""
    index = 21
    user = tenant.users[index]
    caller = callers(user, wf.of(index))["admin"]
    pace = Pacer(rng, day.at(11.0) + 12.0, (2.5, 4.5))
    targets = rng.sample(list(tenant.principals.values()), 14)
    return caller, [Request(pace.next(), caller, user.office_ip, "GET",
                            f"/v1.0/servicePrincipals/{sp.sp_id}/appRoleAssignments", 200,
                            rng.randint(700, 6000)) for sp in targets]


def tenant_user_walk(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Attack:
    """Every user of the tenant read one by one from a developer's Azure CLI session, all in
    the users family (one family: no broad sweep; many objects: one family only)."""
    index = 23
    user = tenant.users[index]
    caller = callers(user, wf.of(index))["admin"]
    pace = Pacer(rng, day.at(15.0) + 40.0, (3.0, 6.0))
    return caller, [Request(pace.next(), caller, user.office_ip, "GET",
                            f"/v1.0/users/{target.id}?$select=displayName,jobTitle,mail,"
                            "onPremisesSamAccountName,userPrincipalName", 200,
                            rng.randint(600, 1400)) for target in tenant.users]


def app_role_grant(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Attack:
    """The partner portal's credentials grant itself Mail.Read and Files.Read.All on
    Microsoft Graph (application permissions), from its usual network."""
    sp = tenant.principal("partner-portal")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(11.6), (3.0, 15.0))
    graph_sp = wf.graph_resource_sp
    steps = [("GET", f"/v1.0/servicePrincipals?$filter=appId%20eq%20'{GRAPH_APP_ID}'", 200, 9000),
             ("POST", f"/v1.0/servicePrincipals/{sp.sp_id}/appRoleAssignments", 201, 640),
             ("POST", f"/v1.0/servicePrincipals/{sp.sp_id}/appRoleAssignments", 201, 640),
             ("POST", f"/v1.0/servicePrincipals/{graph_sp}/appRoleAssignedTo", 201, 640)]
    return caller, [Request(pace.next(), caller, sp.ip, m, p, s, z) for m, p, s, z in steps]


def delegated_grant(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Attack:
    """A cloud application administrator's session consents, for the whole tenant, to a
    multi-tenant app the attacker controls (``POST /oauth2PermissionGrants``)."""
    index = 30
    user = tenant.users[index]
    caller = callers(user, wf.of(index))["admin"]
    pace = Pacer(rng, day.at(13.3), (5.0, 30.0))
    steps = [("GET", f"/v1.0/servicePrincipals/{wf.attacker_app_sp}", 200, 3500),
             ("GET", f"/v1.0/servicePrincipals?$filter=appId%20eq%20'{GRAPH_APP_ID}'", 200, 9000),
             ("POST", "/v1.0/oauth2PermissionGrants", 201, 480)]
    return caller, [Request(pace.next(), caller, user.office_ip, m, p, s, z)
                    for m, p, s, z in steps]


def owner_added(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Attack:
    """A developer's session adds itself as owner of the partner portal's application and
    service principal (owners can add credentials later)."""
    index = 33
    user = tenant.users[index]
    caller = callers(user, wf.of(index))["admin"]
    app = tenant.principal("partner-portal")
    pace = Pacer(rng, day.at(9.8), (4.0, 20.0))
    steps = [("GET", f"/v1.0/applications/{app.app_object_id}/owners", 200, 800),
             ("POST", f"/v1.0/applications/{app.app_object_id}/owners/$ref", 204, 0),
             ("POST", f"/v1.0/servicePrincipals/{app.sp_id}/owners/$ref", 204, 0)]
    return caller, [Request(pace.next(), caller, user.office_ip, m, p, s, z)
                    for m, p, s, z in steps]


def agent_blueprint_password(rng: random.Random, tenant: Tenant, wf: Workforce,
                             day: Day) -> Attack:
    """A secret added to an agent identity blueprint application through the OData cast
    segment (``…/microsoft.graph.agentIdentityBlueprint/addPassword``)."""
    index = 35
    user = tenant.users[index]
    caller = callers(user, wf.of(index))["admin"]
    app = tenant.principal("agent-blueprint")
    pace = Pacer(rng, day.at(16.2), (5.0, 25.0))
    steps = [("GET", f"/beta/applications/{app.app_object_id}", 200, 4100),
             ("POST", f"/beta/applications/{app.app_object_id}/microsoft.graph."
              "agentIdentityBlueprint/addPassword", 200, 620)]
    return caller, [Request(pace.next(), caller, user.office_ip, m, p, s, z)
                    for m, p, s, z in steps]


def tap_for_admin(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Attack:
    """A helpdesk operator who never issued one creates a Temporary Access Pass for a global
    administrator, from the office, in the admin center."""
    index = 3
    user = tenant.users[index]
    caller = callers(user, wf.of(index))["admin"]
    victim = tenant.users[0]
    pace = Pacer(rng, day.at(12.4), (15.0, 60.0))
    steps = [("GET", f"/v1.0/users/{victim.id}/authentication/methods", 200, 900),
             ("POST", f"/v1.0/users/{victim.id}/authentication/temporaryAccessPassMethods",
              201, 520)]
    return caller, [Request(pace.next(), caller, user.office_ip, m, p, s, z)
                    for m, p, s, z in steps]
