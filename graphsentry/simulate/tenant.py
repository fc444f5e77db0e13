"""The simulated tenant: users, drives, sites, directory objects, applications and networks.

Everything is drawn from one ``random.Random`` so that a seed always yields the same tenant.
All IP addresses come from documentation ranges (RFC 5737 IPv4, RFC 3849 IPv6): offices in
198.51.100.0/24 and 192.0.2.0/25, the Azure VM in 192.0.2.128/25, homes in 2001:db8::/32 and
attackers in 203.0.113.0/24.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass, field

FIRST_NAMES = ("ada", "bram", "chloe", "dev", "elif", "femi", "greta", "hiro", "ines", "jonas",
               "kemal", "lena", "mateo", "nadia", "omar", "paula", "quinn", "rosa", "sven", "tara",
               "umar", "vera", "wim", "xena", "yusuf", "zoe")
LAST_NAMES = ("adams", "berg", "costa", "dubois", "eriksen", "fischer", "garcia", "horvat", "ito",
              "jansen", "kowalski", "larsen", "moreau", "novak", "okafor", "peeters", "rossi",
              "silva", "tanaka", "visser")
SITE_NAMES = ("Finance", "HR", "Legal", "Engineering", "Sales", "Board")
DOMAIN = "contoso-sim.example"
SHAREPOINT_HOST = "contososim.sharepoint.com"

TEAMS = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
OFFICE = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
OUTLOOK = "27922004-5251-4030-b22d-91ecd9a37ea4"
GRAPH_POWERSHELL = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
AZURE_POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"

HQ_NETWORK = "198.51.100"
BRANCH_NETWORK = "192.0.2"
AZURE_VM_IP = "192.0.2.180"
CI_RUNNER_IP = "192.0.2.200"
BACKUP_SERVER_IP = "198.51.100.20"
ATTACKER_NETWORK = "203.0.113"
GLOBAL_ADMIN_WID = "62e90394-69f5-4237-9190-012177145e10"
MEMBER_WID = "b79fbf4d-3ef9-4689-8143-76b194e85509"


def new_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def drive_item_id(rng: random.Random) -> str:
    """A OneDrive/SharePoint item id: '01' + 32 base32 characters."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "01" + "".join(rng.choice(alphabet) for _ in range(32))


def drive_id(rng: random.Random) -> str:
    """A drive id: 'b!' + 64 base64url characters."""
    raw = rng.getrandbits(384).to_bytes(48, "big")
    return "b!" + base64.urlsafe_b64encode(raw).decode("ascii")


def opaque_token(rng: random.Random, length: int = 48) -> str:
    """A $skiptoken / $deltatoken value."""
    raw = rng.getrandbits(8 * length).to_bytes(length, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Drive:
    id: str
    folders: tuple[str, ...]
    files: tuple[str, ...]


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    office_ip: str
    home_ip: str
    drive: Drive
    activity: int  # requests on a full working day


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    drive: Drive
    list_ids: tuple[str, ...]


@dataclass(frozen=True)
class ServicePrincipal:
    """An application's identity in the tenant (app-only daemons, managed identities)."""

    name: str
    app_id: str
    sp_id: str
    app_object_id: str
    roles: str
    user_agent: str
    ip: str


@dataclass
class Tenant:
    tenant_id: str
    users: list[User]
    sites: list[Site]
    groups: list[str]
    devices: list[str]
    role_definitions: list[str]
    directory_size: int
    principals: dict[str, ServicePrincipal] = field(default_factory=dict)

    @property
    def identity_provider(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    def principal(self, name: str) -> ServicePrincipal:
        return self.principals[name]


DAEMONS = (
    # name, roles, user agent, ip
    ("backup", "Files.Read.All Sites.Read.All User.Read.All",
     "BackupAgent/5.2 (+https://backup.example)", BACKUP_SERVER_IP),
    ("directory-sync", "User.Read.All Group.Read.All Directory.Read.All",
     "DirSync/3.1 Microsoft.Graph.Core/3.1.3", BACKUP_SERVER_IP),
    ("license-monitor", "Organization.Read.All User.Read.All",
     "LicenseWatch/1.4 Microsoft.Graph/5.44.0", f"{HQ_NETWORK}.31"),
    ("mi-reporting", "Sites.Read.All Files.Read.All User.Read.All Application.ReadWrite.OwnedBy",
     "azsdk-python-identity/1.15.0 Python/3.11.8 (Linux-5.15.0-1057-azure-x86_64)", AZURE_VM_IP),
    ("ci-deployer", "Application.ReadWrite.All",
     "azsdk-go-azidentity/v1.5.1 (go1.22.1; linux)", CI_RUNNER_IP),
    # owns nothing at runtime: the target of sp_credential_added
    ("hr-connector", "User.ReadWrite.All", "HRConnector/2.0", f"{HQ_NETWORK}.32"),
)


def _drive(rng: random.Random, folders: int, files: int) -> Drive:
    return Drive(
        id=drive_id(rng),
        folders=tuple(drive_item_id(rng) for _ in range(folders)),
        files=tuple(drive_item_id(rng) for _ in range(files)),
    )


def _user(rng: random.Random, index: int) -> User:
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index * 7 + index // len(FIRST_NAMES)) % len(LAST_NAMES)]
    office = HQ_NETWORK if index % 3 else BRANCH_NETWORK
    host = 40 + index % 80 if office == HQ_NETWORK else 10 + index % 100
    return User(
        id=new_guid(rng),
        upn=f"{first}.{last}{index}@{DOMAIN}",
        office_ip=f"{office}.{host}",
        home_ip=f"2001:db8:{0x100 + index:x}:{rng.randrange(1, 0xffff):x}::{rng.randrange(2, 99)}",
        drive=_drive(rng, rng.randint(3, 6), rng.randint(30, 60)),
        activity=rng.randint(150, 380),
    )


def build_tenant(rng: random.Random, users: int) -> Tenant:
    """A tenant with ``users`` users, six SharePoint sites and the daemons of ``DAEMONS``."""
    if users < 20:
        raise ValueError("the simulated tenant needs at least 20 users for its scenarios")
    tenant = Tenant(
        tenant_id=new_guid(rng),
        users=[_user(rng, i) for i in range(users)],
        sites=[Site(id=f"{SHAREPOINT_HOST},{new_guid(rng)},{new_guid(rng)}", name=name,
                    drive=_drive(rng, rng.randint(4, 8), rng.randint(60, 120)),
                    list_ids=tuple(new_guid(rng) for _ in range(2)))
               for name in SITE_NAMES],
        groups=[new_guid(rng) for _ in range(max(10, users // 2))],
        devices=[new_guid(rng) for _ in range(users + users // 4)],
        role_definitions=[new_guid(rng) for _ in range(30)],
        directory_size=users * 30,
    )
    for name, roles, agent, ip in DAEMONS:
        tenant.principals[name] = ServicePrincipal(
            name=name, app_id=new_guid(rng), sp_id=new_guid(rng), app_object_id=new_guid(rng),
            roles=roles, user_agent=agent, ip=ip)
    return tenant
