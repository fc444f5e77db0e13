"""Realistic event sets for every detector, for the order properties (hypothesis strategies).

A :class:`Kind` says how to make one event a detector counts (a download, a directory read,
a credential added, ...), with small parameters so that a few events cross. :func:`workload`
draws, per principal (an app-only service principal, or a delegated user working through
two apps): several days of history — everyday activity at a usual hour, and the detector's
own activity there at varying volume, so baselines and first-seen marks come from sealed
queries over days — then bursts on the last day: at the usual hour, at an unusual one,
straddling window boundaries (midnight, the hour), from known and new networks, at volumes
below, at and above the thresholds and the principal's own peaks.

Enrichment is a function of the event (:func:`parts`): ASNs per network (one new /24 is in
a known ASN, so it is not a new origin), app directory entries (one app with its object id,
one first-party, one whose directory entry suppresses ``graph_enumeration``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from detectors import catalog
from detectors.attack_tool import TOOL_TEMPLATES
from detectors.base import AppInfo, Detector
from detectors.event import GraphEvent
from detectors.networks import network_of
from graphsentry.alerting.exceptions import AlertException
from graphsentry.engine import CtxParts
from tests.detectors.factory import (
    DAY,
    GRAPH,
    HOME_IP,
    HOUR,
    OTHER_APP,
    OTHER_SP,
    OTHER_USER,
    T0,
    TENANT,
    delegated,
    event,
    like,
)

APP_A = "a0000000-0000-0000-0000-00000000000a"
APP_B = "b0000000-0000-0000-0000-00000000000b"
FIRST_PARTY = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"  # Microsoft Teams (first party)
OBJECT_A = "0b0b0b0b-0000-0000-0000-00000000000a"
"""APP_A's application object id (the app directory knows it)."""
IPS = (HOME_IP, "203.0.113.99", "192.0.2.10", "198.51.100.7", "198.51.100.8",
       "2001:db8:7::1", None)
"""Home network; the same /24; a new /24 in the home ASN; a new /24 in a new ASN (twice); a
new IPv6 /48 without ASN; no address."""
ASNS = {"203.0.113.0/24": 64500, "192.0.2.0/24": 64500, "198.51.100.0/24": 64511}
APPS = {
    APP_A: AppInfo(APP_A, "Contoso Backup", "contoso-tenant", object_id=OBJECT_A),
    FIRST_PARTY: AppInfo(FIRST_PARTY, "Microsoft Teams", "f8cdef31", first_party=True),
    APP_B: AppInfo(APP_B, "Contoso Portal", "contoso-tenant",
                   suppressed_detectors=frozenset({"graph_enumeration"})),
}
DIRECTORY = ("users", "groups", "applications", "servicePrincipals", "devices", "domains")
AZUREHOUND = sorted(TOOL_TEMPLATES["AzureHound"])


EXCEPTIONS = (
    AlertException("net-one-ip", "scanner", "soc", 0.0, network="198.51.100.7/32"),
    AlertException("tpl-addpassword", "rotation job", "soc", 0.0,
                   template="/applications/*/addpassword"),
    AlertException("origin-until-6", "network change", "soc", 0.0, detector="new_origin",
                   starts=T0 - DAY, expires=T0 + 6 * HOUR),
    AlertException("first-party-today", "pilot", "soc", 0.0, app_id=FIRST_PARTY,
                   starts=T0, expires=T0 + DAY),
    AlertException("asn-new", "partner network", "soc", 0.0, asn=64511),
    AlertException("app-a-grants", "governance", "soc", 0.0, app_id=APP_A,
                   detector="app_permission_granted", expires=T0 + 12 * HOUR),
)
"""Exceptions of every scope; some cover one of two addresses a burst uses, some expire
during the last day."""


def parts(e: GraphEvent) -> CtxParts:
    """What enrichment says about ``e``: a pure function of the event."""
    network = network_of(e.ip)
    return CtxParts(asn=ASNS.get(network) if network else None,
                    asn_name="EXAMPLE" if network in ASNS else None, app=APPS.get(e.app_id))


Maker = Callable[[GraphEvent, float, int, int], GraphEvent]
"""(principal's template event, time, distinct index, burst variant) → one event."""


@dataclass(frozen=True)
class Kind:
    detector_id: str
    make: Maker
    params: dict[str, Any] = field(default_factory=dict)
    max_volume: int = 20
    """Most events of one burst."""

    def detector(self) -> Detector:
        return catalog.build_detectors({self.detector_id: self.params},
                                       [self.detector_id])[0]


def _re(base: GraphEvent, ts: float, **fields: Any) -> GraphEvent:
    return like(base, ts=ts, **fields)


def _download(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    status = (302, 200, 302, 403)[v % 4]
    return _re(b, ts, method="GET", family="onedrive", category="storage",
               template="/drives/{id}/items/{id}/content", is_download=True, size=0,
               uri=f"{GRAPH}/drives/b!d{k % 2}/items/i{k}/content", target_drive=f"b!d{k % 2}",
               target_item=f"i{k}", status=status)


def _transfer(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    return _re(b, ts, uri=f"{GRAPH}/users?$top=999&page={k}", template="/users",
               family="users", category="directory", size=4000 * (1 + (k + v) % 4))


def _directory(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    family = DIRECTORY[k % len(DIRECTORY)]
    if v % 3 == 0:
        return _re(b, ts, uri=f"{GRAPH}/servicePrincipals/sp{k}/appRoleAssignments",
                   template="/servicePrincipals/{id}/appRoleAssignments",
                   family="servicePrincipals", category="directory")
    if v % 3 == 1:
        return _re(b, ts, uri=f"{GRAPH}/{family}/o{k}/members",
                   template=f"/{family}/{{id}}/members", family=family, category="directory",
                   status=403 if k % 5 == 4 else 200)
    return _re(b, ts, uri=f"{GRAPH}/{family}", template=f"/{family}", family=family,
               category="directory")


def _denied(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    family = ("users", "mail", "sites", "groups")[k % 4]
    return _re(b, ts, uri=f"{GRAPH}/{family}/x{k}", template=f"/{family}/{{id}}",
               family=family, category="directory", status=(403, 401, 403, 404)[(k + v) % 4])


def _sites(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    if v % 4 == 0 and k % 3 == 0:
        return _re(b, ts, uri=f"{GRAPH}/sites?search=*", template="/sites",
                   family="sharepoint", category="storage", target_site=None)
    return _re(b, ts, uri=f"{GRAPH}/sites/s{k}/lists", template="/sites/{id}/lists",
               family="sharepoint", category="storage", target_site=f"s{k}")


def _drives(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    if v % 2:
        return _re(b, ts, uri=f"{GRAPH}/users/u{k}/drive/root/children",
                   template="/users/{id}/drive/root/children", family="onedrive",
                   category="storage", target_user=f"u{k}")
    return _re(b, ts, uri=f"{GRAPH}/me/drive/items/f{k}/children",
               template="/me/drive/items/{id}/children", family="onedrive", category="storage",
               target_item=f"f{k}", target_user="me")


def _mail(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    target = "me" if (k + v) % 7 == 6 else f"u{k}"
    return _re(b, ts, uri=f"{GRAPH}/users/{target}/messages", template="/users/{id}/messages",
               family="mail", category="mail", target_user=target,
               status=403 if k % 6 == 5 else 200)


def _chats(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    if v % 5 == 0 and k % 4 == 0:
        return _re(b, ts, uri=f"{GRAPH}/users/u1/chats/getAllMessages",
                   template="/users/{id}/chats/getAllMessages", family="teams", category="chat")
    if v % 2:
        return _re(b, ts, uri=f"{GRAPH}/teams/t{k % 2}/channels/c{k}/messages",
                   template="/teams/{id}/channels/{id}/messages", family="teams",
                   category="chat")
    return _re(b, ts, uri=f"{GRAPH}/chats/c{k}/messages", template="/chats/{id}/messages",
               family="teams", category="chat")


def _tool(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    template = AZUREHOUND[k % len(AZUREHOUND)]
    agent = "azurehound/v2.1.0" if v % 4 == 0 and k % 3 == 0 else b.user_agent
    return _re(b, ts, uri=f"{GRAPH}{template.replace('{id}', f'o{k}')}", template=template,
               family=template.split("/")[1], category="directory", user_agent=agent)


def _anything(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    family = DIRECTORY[k % len(DIRECTORY)]
    return _re(b, ts, uri=f"{GRAPH}/{family}", template=f"/{family}", family=family,
               category="directory")


def _credential(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    targets = (b.app_id, OBJECT_A, OTHER_APP, b.service_principal_id or OTHER_SP, OTHER_SP)
    target = targets[(k + v) % len(targets)] or OTHER_SP
    on_sp = (k + v) % len(targets) >= 3
    action = ("addPassword", "addKey", "microsoft.graph.agentIdentityBlueprint/addPassword",
              "federatedIdentityCredentials")[v % 4]
    collection = "servicePrincipals" if on_sp else "applications"
    return _re(b, ts, method="POST", uri=f"{GRAPH}/{collection}/{target}/{action}",
               template=f"/{collection}/{{id}}/{action}", family=collection.lower(),
               category="directory", is_write=True, target_application=target,
               status=(200, 201, 204, 400)[k % 4])


def _auth_method(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    method = ("phoneMethods", "temporaryAccessPassMethods", "fido2Methods")[v % 3]
    if k % 3 == 0:
        return _re(b, ts, method="POST", uri=f"{GRAPH}/me/authentication/{method}",
                   template=f"/me/authentication/{method}", family="authentication_methods",
                   category="authentication_methods", is_write=True, target_user="me",
                   status=201)
    target = (b.user_id or OTHER_USER) if k % 3 == 1 else f"user-{k % 2}"
    return _re(b, ts, method="POST", uri=f"{GRAPH}/users/{target}/authentication/{method}",
               template=f"/users/{{id}}/authentication/{method}",
               family="authentication_methods", category="authentication_methods",
               is_write=True, target_user=target, status=201)


def _grant(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    if v % 3 == 0:
        return _re(b, ts, method="POST", uri=f"{GRAPH}/oauth2PermissionGrants",
                   template="/oauth2PermissionGrants", family="oauth2permissiongrants",
                   category="directory", is_write=True, status=201)
    return _re(b, ts, method="POST", uri=f"{GRAPH}/servicePrincipals/sp{k % 3}/appRoleAssignedTo",
               template="/servicePrincipals/{id}/appRoleAssignedTo", family="servicePrincipals",
               category="directory", is_write=True, target_application=f"sp{k % 3}",
               status=201)


def _owner(b: GraphEvent, ts: float, k: int, v: int) -> GraphEvent:
    collection = ("applications", "servicePrincipals")[v % 2]
    return _re(b, ts, method="POST", uri=f"{GRAPH}/{collection}/o{k % 3}/owners/$ref",
               template=f"/{collection}/{{id}}/owners/$ref", family=collection.lower(),
               category="directory", is_write=True, target_application=f"o{k % 3}",
               status=204)


KINDS: dict[str, Kind] = {k.detector_id: k for k in (
    Kind("new_origin", _anything, max_volume=6),
    Kind("concurrent_origin", _anything, {"max_gap_seconds": 900.0}, max_volume=6),
    Kind("graph_enumeration", _directory,
         {"min_families": [3, 4, 5], "min_requests": [4, 6, 8], "min_objects": [4, 6, 9],
          "min_role_objects": [3, 5, 7], "baseline_multiplier": 2.0}),
    Kind("denied_requests", _denied, {"min_denied": [3, 5], "baseline_multiplier": 2.0}),
    Kind("attack_tool", _tool, {"min_templates": 4, "min_coverage": 0.3}),
    Kind("sharepoint_enumeration", _sites,
         {"min_sites": [3, 5, 7], "min_site_listings": 2, "baseline_multiplier": 2.0}),
    Kind("onedrive_enumeration", _drives,
         {"min_drives": [3, 5, 7], "min_folders": [3, 5, 7], "baseline_multiplier": 2.0}),
    Kind("mailbox_enumeration", _mail, {"min_mailboxes": [3, 5, 7],
                                        "baseline_multiplier": 2.0}),
    Kind("chat_collection", _chats, {"min_chats": [3, 5, 7], "min_exports": 2,
                                     "baseline_multiplier": 2.0}),
    Kind("storage_exfiltration", _download,
         {"min_downloads": [4, 6, 8], "min_items": [3, 4, 5], "baseline_multiplier": 2.0}),
    Kind("high_volume_transfer", _transfer,
         {"min_bytes": [20_000, 40_000], "min_bytes_learning": [40_000, 80_000],
          "baseline_multiplier": 2.0}),
    Kind("app_credential_added", _credential, max_volume=5),
    Kind("auth_method_added", _auth_method, max_volume=5),
    Kind("app_permission_granted", _grant, max_volume=5),
    Kind("owner_added", _owner, max_volume=5),
)}
assert set(KINDS) == set(catalog.DETECTOR_IDS), "a detector without a property workload"


def small_params() -> dict[str, dict[str, Any]]:
    return {k.detector_id: k.params for k in KINDS.values() if k.params}


SP_A = "5a000000-0000-0000-0000-00000000000a"
USER_A = "0a000000-0000-0000-0000-0000000000aa"


def principal(identity: str, index: int = 0) -> Callable[[str], GraphEvent]:
    """A template event of principal ``index``: app-only (its own app) or delegated (through
    the app passed)."""
    if identity == "app_only":
        sp = f"{SP_A[:-1]}{index}"
        app = (APP_A, FIRST_PARTY, APP_B)[index % 3]
        base = event(principal_id=sp, service_principal_id=sp, app_id=app, tenant_id=TENANT)
        return lambda _app: base
    user = f"{USER_A[:-1]}{index}"
    return lambda app: delegated(principal_id=user, user_id=user, app_id=app)


@st.composite
def principal_workload(draw: st.DrawFn, kinds: Sequence[Kind], index: int = 0
                       ) -> list[GraphEvent]:
    """One principal's events: history days, then bursts of ``kinds`` on the last day."""
    identity = draw(st.sampled_from(("app_only", "delegated")))
    base_of = principal(identity, index)
    apps = (None,) if identity == "app_only" else (APP_A, FIRST_PARTY, APP_B)
    days = draw(st.integers(0, 4))
    usual = draw(st.sampled_from((1, 10, 23)))
    out: list[GraphEvent] = []
    home = base_of(apps[0] or APP_A)
    for d in range(days, 0, -1):  # everyday activity: established after three days
        day = T0 - d * DAY
        for minute in (5, 35):
            out.append(_anything(home, day + usual * HOUR + minute * 60, d + minute, 0))
        for kind in kinds:  # the detector's own recurring activity at the usual hour
            if draw(st.integers(0, 3)):
                out.extend(_burst(draw, kind, base_of, apps, day + usual * HOUR,
                                  ips=(HOME_IP,), spreads=(30, 600, 1800)))
    anchors = (usual * HOUR, (usual + 4) * HOUR, ((usual + 9) % 24) * HOUR, 0.0, HOUR,
               DAY - 600.0)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(list(kinds)))
        start = T0 + draw(st.sampled_from(anchors)) + draw(st.integers(-900, 900))
        out.extend(_burst(draw, kind, base_of, apps, start, ips=IPS))
    return out


AGENTS = (None, "python-requests/2.31", "Mozilla/5.0 (Windows NT 10.0) Chrome/126")


def _burst(draw: st.DrawFn, kind: Kind, base_of: Callable[[str], GraphEvent],
           apps: tuple[str | None, ...], start: float, ips: Sequence[str | None],
           spreads: Sequence[float] = (30, 600, 1800, 3 * 3600, 9 * 3600)
           ) -> list[GraphEvent]:
    volume = draw(st.integers(1, kind.max_volume))
    distinct = draw(st.integers(1, volume))
    spread = draw(st.sampled_from(list(spreads)))
    variant = draw(st.integers(0, 11))
    burst_ips = draw(st.lists(st.sampled_from(list(ips)), min_size=1, max_size=2))
    app = draw(st.sampled_from(list(apps)))
    agent = draw(st.sampled_from(AGENTS))
    roles = draw(st.sampled_from((None, ("Application.ReadWrite.All",), ("User.Read.All",))))
    base = base_of(app or APP_A)
    base = replace(base, roles=roles if base.identity_type == "app_only" else None,
                   user_agent=agent or base.user_agent)
    step = spread / volume
    return [kind.make(replace(base, ip=burst_ips[j % len(burst_ips)]),
                      float(int(start + j * step)), j % distinct, variant)
            for j in range(volume)]


@st.composite
def workload(draw: st.DrawFn, kinds: Sequence[Kind], principals: int = 1) -> list[GraphEvent]:
    """Events of ``principals`` principals (see the module docstring)."""
    out: list[GraphEvent] = []
    for index in range(principals):
        out.extend(draw(principal_workload(kinds, index)))
    # request ids by position: the same example gives the same ids in every run
    return [replace(e, request_id=f"r{n:05d}") for n, e in enumerate(out)]
