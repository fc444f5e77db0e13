"""Benign app-only and admin traffic: backup, directory sync, license monitor, the reporting
managed identity, CI deployer, HR connector and admins' Graph PowerShell scripts.

The jobs that resemble attacks (backup downloads, full delta sync, the monitor's 403s) are
separate functions so that the last day's run can be a labeled benign scenario while the
warm-up days' runs build the baseline.
"""

from __future__ import annotations

import random

from graphsentry.simulate.clock import MINUTE, Day, Pacer
from graphsentry.simulate.records import Caller, Request, app_only, delegated
from graphsentry.simulate.tenant import GRAPH_POWERSHELL, Drive, Tenant, opaque_token

BACKUP_START_HOUR = 1.0
SYNC_FULL_HOUR = 2.5
MONITOR_403_HOUR = 9.1
BACKUP_FILES_PER_USER = 22
BACKUP_FILES_PER_SITE = 30
PS_UA = "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.1"
ADMIN_SCOPES = "Directory.ReadWrite.All Group.ReadWrite.All User.ReadWrite.All openid profile"
USER_SELECT = "$select=displayName,mail,userPrincipalName,accountEnabled"


def _backup_drive(rng: random.Random, caller: Caller, ip: str, pace: Pacer, drive: Drive,
                  files: int) -> list[Request]:
    out = [Request(pace.next(), caller, ip, "GET", f"/v1.0/drives/{drive.id}/root/children",
                   200, rng.randint(8000, 60000))]
    for folder in drive.folders:
        out.append(Request(pace.next(), caller, ip, "GET",
                           f"/v1.0/drives/{drive.id}/items/{folder}/children", 200,
                           rng.randint(3000, 40000)))
    for item in rng.sample(drive.files, min(files, len(drive.files))):
        path = f"/v1.0/drives/{drive.id}/items/{item}/content"
        if rng.random() < 0.01:  # throttled, retried after Retry-After
            out.append(Request(pace.next(), caller, ip, "GET", path, 429, 0))
            pace.wait(5.0)
        out.append(Request(pace.next(), caller, ip, "GET", path, 302, 0))
    return out


def backup_run(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    """The nightly backup: every user's drive and every site's library, at a steady pace."""
    sp = tenant.principal("backup")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(BACKUP_START_HOUR) + rng.uniform(0, 120), (2.2, 3.8))
    out: list[Request] = []
    for user in tenant.users:
        out.append(Request(pace.next(), caller, sp.ip, "GET", f"/v1.0/users/{user.id}/drive",
                           200, rng.randint(900, 1500)))
        out += _backup_drive(rng, caller, sp.ip, pace, user.drive, BACKUP_FILES_PER_USER)
    for site in tenant.sites:
        out.append(Request(pace.next(), caller, sp.ip, "GET", f"/v1.0/sites/{site.id}/drives",
                           200, rng.randint(1500, 4000)))
        out += _backup_drive(rng, caller, sp.ip, pace, site.drive, BACKUP_FILES_PER_SITE)
    return out


def full_delta_sync(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    """The nightly full resync: users and groups delta in big pages, then new delta links."""
    sp = tenant.principal("directory-sync")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(SYNC_FULL_HOUR) + rng.uniform(0, 60), (1.0, 2.5))
    out: list[Request] = []
    for kind, objects in (("users", tenant.directory_size), ("groups", len(tenant.groups) * 4)):
        first = f"/v1.0/{kind}/delta?{USER_SELECT}" if kind == "users" else f"/v1.0/{kind}/delta"
        out.append(Request(pace.next(), caller, sp.ip, "GET", first, 200, 420_000))
        for _ in range(max(1, objects // 100)):
            out.append(Request(pace.next(), caller, sp.ip, "GET",
                               f"/v1.0/{kind}/delta?$skiptoken={opaque_token(rng)}", 200,
                               rng.randint(300_000, 450_000)))
    return out


def _incremental_sync(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    sp = tenant.principal("directory-sync")
    caller = app_only(sp)
    out: list[Request] = []
    for slot in range(48):
        ts = day.start + slot * 30 * MINUTE + rng.uniform(0, 20)
        for offset, kind in enumerate(("users", "groups")):
            out.append(Request(ts + offset, caller, sp.ip, "GET",
                               f"/v1.0/{kind}/delta?$deltatoken={opaque_token(rng)}", 200,
                               rng.randint(300, 6000)))
    return out


def monitor_403s(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    """The license monitor asking for a report it has no permission for (and retrying)."""
    sp = tenant.principal("license-monitor")
    caller = app_only(sp)
    pace = Pacer(rng, day.at(MONITOR_403_HOUR), (20.0, 90.0))
    return [Request(pace.next(), caller, sp.ip, "GET",
                    f"/v1.0/reports/{report}(period='D7')", 403, 0)
            for report in ("getOffice365ActiveUserDetail", "getOffice365ActiveUserDetail",
                           "getMailboxUsageDetail")]


def _license_monitor(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    sp = tenant.principal("license-monitor")
    caller = app_only(sp)
    out: list[Request] = []
    for hour in range(24):
        pace = Pacer(rng, day.at(hour + 5 / 60), (0.5, 2.0))
        out.append(Request(pace.next(), caller, sp.ip, "GET", "/v1.0/subscribedSkus", 200,
                           rng.randint(3000, 5000)))
        first = "/v1.0/users?$select=assignedLicenses,userPrincipalName&$top=999"
        out.append(Request(pace.next(), caller, sp.ip, "GET", first, 200, 350_000))
        out.append(Request(pace.next(), caller, sp.ip, "GET",
                           f"{first}&$skiptoken={opaque_token(rng)}", 200, 60_000))
    return out


def _mi_reporting(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    sp = tenant.principal("mi-reporting")
    caller = app_only(sp, managed_identity=True)
    site = tenant.sites[0]
    out: list[Request] = []
    for hour in range(24):
        pace = Pacer(rng, day.at(hour + 17 / 60), (0.2, 1.5))
        for list_id in site.list_ids:
            out.append(Request(pace.next(), caller, sp.ip, "GET",
                               f"/v1.0/sites/{site.id}/lists/{list_id}/items?$expand=fields"
                               "&$top=500", 200, rng.randint(20_000, 90_000)))
        if hour % 6 == 0:
            out.append(Request(pace.next(), caller, sp.ip, "GET", f"/v1.0/sites/{site.id}",
                               200, rng.randint(800, 1500)))
    return out


def _ci_deployer(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    sp = tenant.principal("ci-deployer")
    caller = app_only(sp)
    out: list[Request] = []
    runs = 1 if day.weekend else 3
    for hour in sorted(rng.uniform(8.0, 18.0) for _ in range(runs)):
        pace = Pacer(rng, day.at(hour), (0.3, 2.0))
        for target in ("hr-connector", "ci-deployer", "backup"):
            app = tenant.principal(target)
            out.append(Request(pace.next(), caller, sp.ip, "GET",
                               f"/v1.0/applications?$filter=appId%20eq%20'{app.app_id}'",
                               200, rng.randint(2000, 6000)))
            out.append(Request(pace.next(), caller, sp.ip, "GET",
                               f"/v1.0/servicePrincipals/{app.sp_id}", 200,
                               rng.randint(2000, 5000)))
    return out


def _hr_connector(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    sp = tenant.principal("hr-connector")
    caller = app_only(sp)
    out: list[Request] = []
    for hour in range(7, 19):
        pace = Pacer(rng, day.at(hour + rng.uniform(0, 0.1)), (0.5, 3.0))
        out.append(Request(pace.next(), caller, sp.ip, "GET",
                           f"/v1.0/users?$filter=accountEnabled%20eq%20true&{USER_SELECT}"
                           "&$top=999", 200, 300_000))
        for user in rng.sample(tenant.users, rng.randint(0, 2)):
            out.append(Request(pace.next(), caller, sp.ip, "PATCH", f"/v1.0/users/{user.id}",
                               204, 0))
    return out


def _admin_scripts(rng: random.Random, tenant: Tenant, day: Day) -> list[Request]:
    if day.weekend:
        return []
    out: list[Request] = []
    for admin in tenant.users[:2]:
        caller = delegated(admin, GRAPH_POWERSHELL, PS_UA, ADMIN_SCOPES, admin=True)
        for _ in range(rng.randint(2, 4)):
            pace = Pacer(rng, day.at(rng.uniform(9.0, 17.0)), (2.0, 20.0))
            target = rng.choice(tenant.users)
            group = rng.choice(tenant.groups)
            ip = admin.office_ip
            out += [
                Request(pace.next(), caller, ip, "GET", f"/v1.0/users/{target.id}?{USER_SELECT}",
                        200, rng.randint(600, 1200)),
                Request(pace.next(), caller, ip, "GET", f"/v1.0/groups/{group}/members", 200,
                        rng.randint(2000, 20000)),
            ]
            if rng.random() < 0.5:
                out.append(Request(pace.next(), caller, ip, "PATCH", f"/v1.0/users/{target.id}",
                                   204, 0))
            else:
                out.append(Request(pace.next(), caller, ip, "POST",
                                   f"/v1.0/groups/{group}/members/$ref", 204, 0))
    return out


def daemons_traffic(rng: random.Random, tenant: Tenant, days: list[Day]) -> list[Request]:
    """All recurring app-only and admin traffic; the look-alike jobs only on warm-up days."""
    out: list[Request] = []
    for day in days:
        for job in (_incremental_sync, _license_monitor, _mi_reporting, _ci_deployer,
                    _hr_connector, _admin_scripts):
            out += job(rng, tenant, day)
        if not day.last:
            out += backup_run(rng, tenant, day) + full_delta_sync(rng, tenant, day)
            out += monitor_403s(rng, tenant, day)
    return out

