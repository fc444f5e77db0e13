"""Recurring benign work of the benchmark tenant that looks like attacks.

Each job is a function ``(rng, tenant, workforce, day) -> (caller, requests)`` for one day's run
and a schedule saying on which days it runs. The last day's run is a labeled benign scenario;
the earlier runs are its history (what a detector may learn from). Why each one resembles an
attack is in ``docs/simulation.md``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from graphsentry.simulate.bench_tenant import HELPDESK, RESYNC_USER, Workforce
from graphsentry.simulate.clock import Day, Pacer
from graphsentry.simulate.records import Caller, Request, app_only
from graphsentry.simulate.tenant import Tenant, opaque_token
from graphsentry.simulate.workforce import callers, chat_read, network

Run = tuple[Caller, list[Request]]
JobFn = Callable[[random.Random, Tenant, Workforce, Day], Run]
SELECT_USERS = "$select=id,displayName,userPrincipalName,accountEnabled&$top=999"


def _req(pace: Pacer, caller: Caller, ip: str, path: str, size: int, status: int = 200,
         method: str = "GET") -> Request:
    return Request(pace.next(), caller, ip, method, path, status, size)


def _pages(rng: random.Random, pace: Pacer, caller: Caller, ip: str, first: str, pages: int,
           size: tuple[int, int]) -> list[Request]:
    out = [_req(pace, caller, ip, first, rng.randint(*size))]
    joiner = "&" if "?" in first else "?"
    out += [_req(pace, caller, ip, f"{first}{joiner}$skiptoken={opaque_token(rng)}",
                 rng.randint(*size)) for _ in range(pages - 1)]
    return out


def nightly_backup(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """Every drive's delta and its changed files, then every site library: 01:00, ~45 min."""
    sp = tenant.principal("nightly-backup")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(1.0) + rng.uniform(0, 90), (0.35, 0.9))
    out: list[Request] = []
    drives = [u.drive for u in tenant.users] + [s.drive for s in tenant.sites]
    for drive in drives:
        out.append(_req(pace, caller, sp.ip, f"/v1.0/drives/{drive.id}/root/delta?token="
                        f"{opaque_token(rng, 24)}", rng.randint(2000, 40000)))
        for item in rng.sample(drive.files, rng.randint(0, 4)):
            out.append(_req(pace, caller, sp.ip, f"/v1.0/drives/{drive.id}/items/{item}/content",
                            0, 302))
    return caller, out


def compliance_archiver(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """Journal-style capture of the regulated staff's mail (the first 140 mailboxes): 02:00."""
    sp = tenant.principal("compliance-archiver")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(2.0) + rng.uniform(0, 60), (2.0, 5.0))
    since = f"{day.start - 86400:.0f}"
    out: list[Request] = []
    for user in tenant.users[:140]:
        path = (f"/v1.0/users/{user.id}/messages?$filter=receivedDateTime%20ge%20{since}"
                "&$top=100")
        out += _pages(rng, pace, caller, sp.ip, path, rng.choice((1, 1, 2)), (30_000, 400_000))
    return caller, out


def iga_hourly_review(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """Identity governance: users, groups, roles, apps and service principals every hour."""
    sp = tenant.principal("iga-governance")
    caller = app_only(sp)
    out: list[Request] = []
    user_pages = max(1, len(tenant.users) // 200)
    for hour in range(24):
        pace = Pacer(rng, day.at(hour + 7 / 60), (0.8, 3.0))
        out += _pages(rng, pace, caller, sp.ip, f"/v1.0/users?{SELECT_USERS}", user_pages,
                      (200_000, 400_000))
        out += _pages(rng, pace, caller, sp.ip, "/v1.0/groups?$top=999", 1, (80_000, 200_000))
        out.append(_req(pace, caller, sp.ip, "/v1.0/directoryRoles", 9000))
        out += [_req(pace, caller, sp.ip, f"/v1.0/directoryRoles/{role}/members", 1500)
                for role in tenant.role_definitions[:6]]
        out.append(_req(pace, caller, sp.ip, "/v1.0/roleManagement/directory/roleAssignments"
                        "?$top=999", rng.randint(20_000, 60_000)))
        out.append(_req(pace, caller, sp.ip, "/v1.0/servicePrincipals?$top=999",
                        rng.randint(100_000, 200_000)))
        out.append(_req(pace, caller, sp.ip, "/v1.0/applications?$top=999",
                        rng.randint(40_000, 90_000)))
    return caller, out


def iga_access_assignments(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """Access packages granted on approval: users assigned to enterprise apps' roles."""
    sp = tenant.principal("iga-provisioning")
    caller = app_only(sp)
    apps = [tenant.principal(n) for n in ("expense-app", "crm-connector", "travel-booking")]
    out: list[Request] = []
    for hour in (9.3, 11.3, 14.3, 16.3):
        pace = Pacer(rng, day.at(hour), (1.0, 6.0))
        for _ in range(rng.randint(1, 4)):
            app = rng.choice(apps)
            out.append(_req(pace, caller, sp.ip, f"/v1.0/servicePrincipals/{app.sp_id}", 3000))
            out.append(_req(pace, caller, sp.ip, f"/v1.0/servicePrincipals/{app.sp_id}"
                            "/appRoleAssignedTo", 620, 201, "POST"))
    return caller, out


def hr_full_delta(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """HR-driven provisioning: a full users delta at 04:00, then a few attribute updates."""
    sp = tenant.principal("hr-sync")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(4.0) + rng.uniform(0, 60), (0.8, 2.0))
    out = _pages(rng, pace, caller, sp.ip, "/v1.0/users/delta?$select=id,employeeId,department,"
                 "manager,jobTitle", max(2, len(tenant.users) // 50), (150_000, 300_000))
    for user in rng.sample(tenant.users, rng.randint(3, 12)):
        out.append(_req(pace, caller, sp.ip, f"/v1.0/users/{user.id}", 0, 204, "PATCH"))
    return caller, out


def directory_audit(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """A weekly security assessment (Purple Knight-like): every directory family, per-object
    owners, role members and app role assignments, policies and audit logs. 06:00, ~15 min."""
    sp = tenant.principal("directory-auditor")
    caller = app_only(sp)
    ip = sp.ip
    pace = Pacer(rng, day.at(6.0), (0.3, 1.5))
    out: list[Request] = []
    for path in ("/v1.0/organization", "/v1.0/domains", "/v1.0/policies/authorizationPolicy",
                 "/v1.0/identity/conditionalAccess/policies", "/v1.0/directoryRoles",
                 "/v1.0/roleManagement/directory/roleDefinitions",
                 "/v1.0/roleManagement/directory/roleAssignments?$top=999",
                 "/beta/reports/authenticationMethods/userRegistrationDetails",
                 "/v1.0/auditLogs/directoryAudits?$top=999"):
        out.append(_req(pace, caller, ip, path, rng.randint(2000, 90_000)))
    for kind in ("users", "groups", "applications", "servicePrincipals", "devices"):
        out += _pages(rng, pace, caller, ip, f"/v1.0/{kind}?$top=999", 2, (100_000, 500_000))
    for role in tenant.role_definitions[:20]:
        out.append(_req(pace, caller, ip, f"/v1.0/directoryRoles/{role}/members", 1500))
    for group in tenant.groups[:40]:
        out.append(_req(pace, caller, ip, f"/v1.0/groups/{group}/owners", 900))
    for app in tenant.principals.values():
        out.append(_req(pace, caller, ip, f"/v1.0/applications/{app.app_object_id}/owners", 700))
        out.append(_req(pace, caller, ip, f"/v1.0/servicePrincipals/{app.sp_id}/owners", 700))
        out.append(_req(pace, caller, ip, f"/v1.0/servicePrincipals/{app.sp_id}"
                        "/appRoleAssignedTo", 900))
    return caller, out


def dlp_scan(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """Classification of new files on a rotating fifth of the users' drives: 19:00."""
    sp = tenant.principal("dlp-scanner")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(19.0) + rng.uniform(0, 120), (0.8, 2.5))
    share = max(1, len(tenant.users) // 5)
    first = (day.index * share) % len(tenant.users)
    out: list[Request] = []
    for user in (tenant.users * 2)[first:first + share]:
        drive = user.drive
        out.append(_req(pace, caller, sp.ip, f"/v1.0/drives/{drive.id}/root/delta", 9000))
        for item in rng.sample(drive.files, rng.randint(0, 3)):
            out.append(_req(pace, caller, sp.ip, f"/v1.0/drives/{drive.id}/items/{item}/content",
                            0, 302))
    return caller, out


def ci_self_rotation(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """The release pipeline rotates its own application's secret (by object id) at 03:00."""
    sp = tenant.principal("ci-pipeline")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(3.0) + rng.uniform(0, 300), (1.0, 4.0))
    app = f"/v1.0/applications/{sp.app_object_id}"
    return caller, [_req(pace, caller, sp.ip, f"{app}?$select=passwordCredentials", 1800),
                    _req(pace, caller, sp.ip, f"{app}/addPassword", 610, 200, "POST"),
                    _req(pace, caller, sp.ip, f"{app}/removePassword", 0, 204, "POST")]


def migration_run(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """A mailbox and OneDrive migration: nightly pre-staging checks on earlier days, and the
    cut-over, which starts at 12:00 on the last day (mail and files of 80 users, 6 h)."""
    sp = tenant.principal("tenant-migration")
    caller = app_only(sp)
    batch = tenant.users[60:140]
    out: list[Request] = []
    if not day.last:
        pace = Pacer(rng, day.at(23.0), (2.0, 8.0))
        for user in rng.sample(batch, 12):
            out.append(_req(pace, caller, sp.ip, f"/v1.0/users/{user.id}/mailFolders", 4000))
            out.append(_req(pace, caller, sp.ip, f"/v1.0/users/{user.id}/drive", 1200))
        return caller, out
    pace = Pacer(rng, day.at(12.0), (25.0, 50.0))
    for user in batch:
        out += _pages(rng, pace, caller, sp.ip, f"/v1.0/users/{user.id}/messages?$top=200",
                      rng.randint(1, 3), (200_000, 900_000))
        for item in rng.sample(user.drive.files, 4):
            out.append(_req(pace, caller, sp.ip,
                            f"/v1.0/drives/{user.drive.id}/items/{item}/content", 0, 302))
    return caller, out


def denied_monitor(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """A posture monitor without security permissions: each hour it retries the security family
    and is denied (403) six times in a minute, then reads what it may."""
    sp = tenant.principal("security-monitor")
    caller = app_only(sp)
    out: list[Request] = []
    for hour in range(24):
        pace = Pacer(rng, day.at(hour + 0.75), (4.0, 12.0))
        for path in ("/v1.0/security/alerts_v2?$top=50", "/v1.0/security/incidents?$top=50",
                     "/v1.0/security/secureScores?$top=1") * 2:
            out.append(_req(pace, caller, sp.ip, path, 0, 403))
        out.append(_req(pace, caller, sp.ip, "/v1.0/organization", 1400))
    return caller, out


def site_indexer(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """The intranet search crawler: tenant-wide site listing, then every library's delta,
    every two hours."""
    sp = tenant.principal("intranet-indexer")
    caller = app_only(sp)
    out: list[Request] = []
    for hour in range(0, 24, 2):
        pace = Pacer(rng, day.at(hour + 0.4), (0.5, 2.0))
        out.append(_req(pace, caller, sp.ip, "/v1.0/sites?search=*", rng.randint(20_000, 40_000)))
        for site in tenant.sites:
            out.append(_req(pace, caller, sp.ip, f"/v1.0/sites/{site.id}/drive/root/delta",
                            rng.randint(3000, 30_000)))
            out.append(_req(pace, caller, sp.ip, f"/v1.0/sites/{site.id}/lists", 6000))
    return caller, out


def helpdesk_onboarding(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """The helpdesk issues Temporary Access Passes to new hires on weekday mornings."""
    user = tenant.users[HELPDESK[0]]
    caller = callers(user, wf.of(HELPDESK[0]))["admin"]
    pace = Pacer(rng, day.at(9.0) + rng.uniform(0, 1800), (20.0, 90.0))
    out: list[Request] = []
    for hire in rng.sample(tenant.users[200 % len(tenant.users):], rng.randint(1, 3)):
        out.append(_req(pace, caller, user.office_ip, f"/v1.0/users/{hire.id}", 1100))
        out.append(_req(pace, caller, user.office_ip,
                        f"/v1.0/users/{hire.id}/authentication/temporaryAccessPassMethods", 520,
                        201, "POST"))
    return caller, out


def admin_morning_review(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """An administrator's morning script: sign-ins, role holders, new apps, groups, devices."""
    user = tenant.users[0]
    caller = callers(user, wf.of(0))["admin"]
    pace = Pacer(rng, day.at(8.7) + rng.uniform(0, 600), (3.0, 15.0))
    ip = user.office_ip
    paths = ["/v1.0/auditLogs/signIns?$top=100", "/v1.0/directoryRoles",
             "/v1.0/roleManagement/directory/roleAssignments?$top=999",
             "/v1.0/applications?$orderby=createdDateTime%20desc&$top=20",
             "/v1.0/servicePrincipals?$top=50", "/v1.0/groups?$top=100",
             "/v1.0/devices?$top=100", "/v1.0/users?$top=100&$select=displayName,signInActivity",
             "/v1.0/domains", "/v1.0/organization"]
    return caller, [_req(pace, caller, ip, p, rng.randint(2000, 60_000)) for p in paths]


def teams_reader(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """A coordinator back on Monday reads 45 chats in an hour (other days: a handful)."""
    index = 16
    user, habits = tenant.users[index], wf.of(index)
    caller = callers(user, habits)["teams"]
    ip = network(user, habits, day, "office")
    count = 45 if day.last else rng.randint(4, 10)
    pace = Pacer(rng, day.at(8.6), (40.0, 100.0))
    chats = rng.sample(habits.chats, count)
    return caller, [chat_read(rng, habits, caller, pace.next(), ip, chat) for chat in chats]


def onedrive_resync(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """The OneDrive client on a user's new laptop downloads her whole drive (last day, 08:45);
    on other days it syncs a few changed files."""
    user, habits = tenant.users[RESYNC_USER], wf.of(RESYNC_USER)
    caller = callers(user, habits)["sync"]
    ip = network(user, habits, day, "office")
    pace = Pacer(rng, day.at(8.75), (4.0, 9.0))
    files = habits.sync_files if day.last else rng.sample(habits.sync_files, 6)
    out = [_req(pace, caller, ip, f"/v1.0/me/drive/root/delta?token={opaque_token(rng, 24)}",
                40_000) for _ in range(3 if day.last else 1)]
    out += [_req(pace, caller, ip, f"/v1.0/me/drive/items/{item}/content", 0, 302)
            for item in files]
    return caller, out


def security_key_self(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
    """An administrator registers a FIDO2 key for herself, from the office, in her usual
    client, on the last day (her ordinary work is her history)."""
    user = tenant.users[1]
    caller = callers(user, wf.of(1))["admin"]
    pace = Pacer(rng, day.at(10.25), (20.0, 60.0))
    base = f"/beta/users/{user.id}/authentication/fido2Methods"
    return caller, [
        _req(pace, caller, user.office_ip, f"/v1.0/users/{user.id}/authentication/methods", 900),
        _req(pace, caller, user.office_ip, f"{base}/creationOptions(challengeTimeoutInMinutes=5)",
             1300),
        _req(pace, caller, user.office_ip, base, 700, 201, "POST"),
    ]


def new_network_day(index: int) -> JobFn:
    """A user's own last day from a new network (hotel or new ISP): the workforce traffic
    already holds it, so the job adds nothing; the label spans that user's last day."""
    def run(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day) -> Run:
        return callers(tenant.users[index], wf.of(index))["teams"], []
    return run


@dataclass(frozen=True)
class Job:
    """A recurring benign job: its scenario name, how often it runs, what it does."""

    name: str
    every: str          # "day", "weekday", "week" or "last" (the last day only)
    run: JobFn
    looks_like: tuple[str, ...]
    description: str
    own_traffic: bool = False  # the label spans the principal's workforce traffic that day

    def runs_on(self, day: Day, last: Day) -> bool:
        return runs_on(self.every, day, last)


def runs_on(every: str, day: Day, last: Day) -> bool:
    """Whether a job scheduled ``every`` day, weekday, week (the last day's weekday) or on
    the last day only runs on ``day``."""
    if every == "weekday":
        return not day.weekend
    if every == "week":
        return (last.index - day.index) % 7 == 0
    if every == "last":
        return day.last
    return True
