"""The benchmark tenant: the demo tenant plus the service principals, roles, chats and personal
habits a realistic multi-day run needs (``--profile benchmark``).

``extend_tenant`` draws from its own ``random.Random``, so the demo tenant built from the same
seed is unchanged. Users' habits (time zone, role, travel days, ISP change, chats) live in
:class:`Workforce`, keyed by user index. Addresses stay in documentation ranges: hotels and new
ISPs come from 198.18.0.0/15 (RFC 2544) and 2001:db8:f000::/36, attackers from 203.0.113.0/24.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from graphsentry.simulate.tenant import (
    BRANCH_NETWORK,
    HQ_NETWORK,
    ServicePrincipal,
    Tenant,
    drive_item_id,
    new_guid,
)

MIN_BENCHMARK_USERS = 120
AZURE_NETWORK = "192.0.2"  # the Azure VNet egress range of the tenant's own workloads (/25 up)

ADMINS = (0, 1)              # global administrators (Graph PowerShell)
HELPDESK = (2, 3)            # helpdesk operators (Entra admin center)
POWER_USERS = range(20, 40)  # developers and cloud admins: Azure CLI, Graph PowerShell

# name, application permissions (roles claim), user agent, egress IP
BENCH_DAEMONS = (
    ("nightly-backup", "Files.Read.All Sites.Read.All User.Read.All",
     "Veeam Backup for Microsoft 365/7.1.0.1301", f"{HQ_NETWORK}.21"),
    ("compliance-archiver", "Mail.Read User.Read.All",
     "MailArchiver/4.2 (+https://archiver.example) Microsoft.Graph/5.56.0", f"{HQ_NETWORK}.22"),
    ("iga-governance", "User.Read.All Group.Read.All RoleManagement.Read.Directory "
     "Application.Read.All", "IGAConnector/3.7 Microsoft.Graph/5.56.0", f"{AZURE_NETWORK}.140"),
    ("iga-provisioning", "AppRoleAssignment.ReadWrite.All User.Read.All",
     "IGAConnector/3.7 Microsoft.Graph/5.56.0", f"{AZURE_NETWORK}.141"),
    ("hr-sync", "User.ReadWrite.All Group.Read.All",
     "HRProvisioning/2.9 (Workday inbound)", f"{HQ_NETWORK}.23"),
    ("directory-auditor", "Directory.Read.All AuditLog.Read.All Policy.Read.All "
     "RoleManagement.Read.Directory Application.Read.All", "PurpleKnight/4.2 (Semperis)",
     f"{HQ_NETWORK}.24"),
    ("dlp-scanner", "Files.Read.All Sites.Read.All",
     "DLPScanner/1.8 Microsoft.Graph/5.50.0", f"{AZURE_NETWORK}.150"),
    ("ci-pipeline", "Application.ReadWrite.OwnedBy",
     "azsdk-go-azidentity/v1.6.0 (go1.22.4; linux)", f"{BRANCH_NETWORK}.201"),
    ("tenant-migration", "Mail.Read Files.Read.All Sites.Read.All User.Read.All",
     "MigrationWiz/5.1 Microsoft.Graph/5.44.0", f"{AZURE_NETWORK}.160"),
    ("security-monitor", "Organization.Read.All",
     "SecPostureMonitor/2.3 Microsoft.Graph/5.44.0", f"{HQ_NETWORK}.33"),
    ("intranet-indexer", "Sites.Read.All", "IntranetSearchCrawler/3.0", f"{HQ_NETWORK}.25"),
    ("invoice-processor", "Files.Read.All Sites.Read.All",
     "python-requests/2.31.0", f"{AZURE_NETWORK}.170"),
    ("partner-portal", "AppRoleAssignment.ReadWrite.All Application.Read.All",
     "PartnerPortal/1.9 Microsoft.Graph/5.40.0", f"{AZURE_NETWORK}.175"),
)
# Registered apps that do nothing in the log: targets of walks, grants and owner changes.
TRAVELLER, ISP_CHANGER, RESYNC_USER = 40, 41, 42
SCENARIO_USERS = (0, 1, 3, 5, 7, 11, 15, 16, 21, 23, 27, 30, 33, 35, TRAVELLER, ISP_CHANGER,
                  RESYNC_USER)
CATALOG_APPS = ("expense-app", "crm-connector", "survey-tool", "wiki-bot", "travel-booking",
                "agent-blueprint")


@dataclass(frozen=True)
class Habits:
    """One user's habits in the benchmark tenant (index into ``tenant.users``)."""

    utc_offset: float           # hours to add to local time to get UTC (5 for UTC-5)
    role: str                   # "worker", "admin", "helpdesk" or "power"
    chats: tuple[str, ...]      # Teams chats the user belongs to
    travel_days: frozenset[int]  # day indexes worked from a hotel network
    hotel_ip: str
    isp_change_day: int | None  # from this day on the home network is new_home_ip
    new_home_ip: str
    sync_files: tuple[str, ...]  # OneDrive items the sync client knows (own drive)


@dataclass
class Workforce:
    habits: list[Habits]
    graph_resource_sp: str           # the Microsoft Graph service principal's object id
    attacker_app_sp: str             # a multi-tenant app consented by the attack

    def of(self, index: int) -> Habits:
        return self.habits[index]


def chat_id(rng: random.Random, group: bool) -> str:
    if group:
        return f"19:{rng.getrandbits(128):032x}@thread.v2"
    return f"19:{new_guid(rng)}_{new_guid(rng)}@unq.gbl.spaces"


def _role(index: int) -> str:
    if index in ADMINS:
        return "admin"
    if index in HELPDESK:
        return "helpdesk"
    return "power" if index in POWER_USERS else "worker"


def extend_tenant(rng: random.Random, tenant: Tenant, days: int) -> Workforce:
    """Add the benchmark principals to ``tenant`` and draw every user's habits."""
    if len(tenant.users) < MIN_BENCHMARK_USERS:
        raise ValueError(f"the benchmark tenant needs at least {MIN_BENCHMARK_USERS} users")
    for name, roles, agent, ip in BENCH_DAEMONS:
        tenant.principals[name] = ServicePrincipal(
            name=name, app_id=new_guid(rng), sp_id=new_guid(rng), app_object_id=new_guid(rng),
            roles=roles, user_agent=agent, ip=ip)
    for name in CATALOG_APPS:
        tenant.principals[name] = ServicePrincipal(
            name=name, app_id=new_guid(rng), sp_id=new_guid(rng), app_object_id=new_guid(rng),
            roles="", user_agent="", ip="")
    habits: list[Habits] = []
    for index, _user in enumerate(tenant.users):
        chats = rng.randint(6, 30)
        if index == 15:   # the chat-collection victim: a busy coordinator
            chats = 150
        elif index == 16:  # the colleague catching up on Monday
            chats = 70
        isp_change = (rng.randrange(1, days) if days > 1 and rng.random() < 0.06 else None)
        travel = frozenset(d for d in range(days) if rng.random() < 0.012)
        sync = 400 if index == RESYNC_USER else rng.randint(20, 60)
        habits.append(Habits(
            utc_offset=5.0 if index % 10 == 9 else 0.0,
            role=_role(index),
            chats=tuple(chat_id(rng, rng.random() < 0.4) for _ in range(chats)),
            travel_days=travel,
            hotel_ip=f"198.18.{rng.randrange(0, 256)}.{rng.randrange(2, 254)}",
            isp_change_day=isp_change,
            new_home_ip=f"2001:db8:f{rng.randrange(0x100, 0xfff):x}:{rng.randrange(1, 0xffff):x}"
                        f"::{rng.randrange(2, 99)}",
            sync_files=tuple(drive_item_id(rng) for _ in range(sync)),
        ))
    workforce = Workforce(habits, graph_resource_sp=new_guid(rng), attacker_app_sp=new_guid(rng))
    # Scenario users keep UTC hours, and nothing random happens to them on the last day; the
    # traveller (40) works from a hotel and the ISP changer's (41) home network changes then.
    last = days - 1
    for index in SCENARIO_USERS:
        h = workforce.habits[index]
        kept = {d for d in h.travel_days if d < last}
        if index == TRAVELLER:
            kept.add(last)
        workforce.habits[index] = Habits(
            0.0, h.role, h.chats, frozenset(kept), h.hotel_ip,
            last if index == ISP_CHANGER else None, h.new_home_ip, h.sync_files)
    return workforce
