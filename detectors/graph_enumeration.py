"""graph_enumeration: one principal reads many directory families or objects, beyond its usual.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour, 1 day), count
directory requests (``resource_category == "directory"``: users, groups, applications,
servicePrincipals, directoryRoles, roleManagement, devices, policies, domains, organization,
...; not ``/me``, the caller's own profile), the distinct families, the distinct concrete
objects read through per-object templates (``/groups/{id}/members`` for 300 groups is 300
objects) and, among those, the objects read
through role and permission templates (``/servicePrincipals/{id}/appRoleAssignments``,
``…/appRoleAssignedTo``, ``…/oauth2PermissionGrants``). A window crosses on any of

* a **broad sweep**: families ≥ ``min_families`` and requests ≥ ``min_requests``, and more
  families than the principal's own peak (Elastic E1 uses ≥ 4 categories and ≥ 20 calls);
* a **deep walk**: objects ≥ ``min_objects`` — in one family too: a walk of every user of the
  tenant counts — and ≥ ``baseline_multiplier`` times its own peak (AzureHound's per-object loops,
  B1, F1);
* a **role walk**: role/permission objects ≥ ``min_role_objects`` (f-bader F5: ten-plus
  service principals' ``appRoleAssignments`` in a minute) and ≥ the multiplier times its peak.

Peaks are the principal's own over the last 14 days at the same time of day (sealed one
lateness before the window): a governance app that reads users, groups and roles every hour
learns that as usual; the same reads by a principal that never did them are a signal — and a
deep or role walk by an established principal whose history never came near one is graded
high/high (an alert on its own).

Why: AzureHound, GraphRunner, GraphSpy, BARK, AADInternals, ROADtools and PowerZure all start
by sweeping the directory (detection-reference §3). Denied requests count too. ``$batch``
rows are skipped and their sub-requests, logged one by one, are counted. Unlike most public
rules this also covers app-only tokens.

ATT&CK: TA0007 Discovery; T1087.004 Cloud Account, T1069.003 Cloud Groups, T1526 Cloud Service
Discovery (as Elastic E6 tags the AzureHound family).

False positives: directory auditors (Purple Knight, F3), identity governance and HR
provisioning apps in their learning period, admins exploring in Graph Explorer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from detectors._accumulators import Activity, CappedSet, is_batch_envelope, validate_params
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import GraphEvent
from detectors.templates import canonical_template
from detectors.windows import WindowedDetector, above, peak_of, per_window

API_VERSIONS = ("/v1.0/", "/beta/")


# Role and permission reads of one object each (canonical templates, detectors.templates).
ROLE_TEMPLATES = frozenset({
    "/serviceprincipals/{id}/approleassignments", "/serviceprincipals/{id}/approleassignedto",
    "/serviceprincipals/{id}/oauth2permissiongrants", "/users/{id}/approleassignments",
    "/users/{id}/oauth2permissiongrants", "/groups/{id}/approleassignments",
    "/applications/{id}/approleassignedto",
})


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0, 86_400.0)
    """Tumbling window lengths in seconds (10 min, 1 h, 1 day)."""
    min_families: tuple[int, ...] = (5, 6, 7)
    """Distinct directory families for a broad sweep, per window length."""
    min_requests: tuple[int, ...] = (10, 25, 50)
    """Directory requests needed together with ``min_families``."""
    min_objects: tuple[int, ...] = (200, 400, 1000)
    """Distinct concrete objects (per-object paths) for a deep walk."""
    min_role_objects: tuple[int, ...] = (10, 20, 40)
    """Distinct objects read through role/permission templates for a role walk."""
    baseline_multiplier: float = 3.0
    """Once established, objects must reach this multiple of the principal's own peak."""

    def __post_init__(self) -> None:
        validate_params(self, "min_families", "min_objects", "min_role_objects")
        for name in ("min_families", "min_requests", "min_objects", "min_role_objects"):
            per_window(getattr(self, name), self.windows, name)


@dataclass(slots=True)
class DirectoryReads(Activity):
    families: CappedSet = field(default_factory=CappedSet)
    objects: CappedSet = field(default_factory=CappedSet)
    role_objects: CappedSet = field(default_factory=CappedSet)


# An http(s) URI that ``urlsplit`` would take apart without surprises (ASCII, no tabs or line
# breaks, no IPv6 brackets): its path is group 1, read without the general parser.
_PLAIN_URI = re.compile(r"https?://[^/?#\[\]\t\r\n]*(/[^?#\t\r\n]*)?(?:[?#][^\t\r\n]*)?\Z")


def object_path(uri: str) -> str:
    """The request path without host, API version or query: one concrete directory object."""
    plain = _PLAIN_URI.match(uri) if uri.isascii() else None
    path = ((plain.group(1) or "") if plain else urlsplit(uri).path).lower()
    for version in API_VERSIONS:
        if path.startswith(version):
            return path[len(version) - 1:]
    return path


class GraphEnumeration(WindowedDetector[DirectoryReads]):
    meta = DetectorMeta(
        id="graph_enumeration",
        title="Directory enumeration through Microsoft Graph or Azure AD Graph",
        description="One principal read many directory families or objects within a window, "
                    "beyond its own usual reads.",
        severity="medium",
        tactics=("TA0007",),
        techniques=("T1087.004", "T1069.003", "T1526"),
        stage="discovery",
        fidelity="medium",
        false_positives=("Directory auditors such as Purple Knight",
                         "Identity governance or HR provisioning syncs in their learning period",
                         "Administrators exploring the directory in Graph Explorer"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "discovery_graph_activity_delegated_user_multi_category_recon.toml",
            "https://github.com/f-bader/AzSentinelQueries/blob/main/AnalyticsRules/"
            "AzureHoundReconnaissanceDetected.yaml",
            "https://github.com/f-bader/AzSentinelQueries/blob/main/AnalyticsRules/"
            "ServicePrincipalEnumerationOfAppRoleAssignments.yaml",
        ),
    )
    measures = ("families", "objects", "role_objects")

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows
        self._memo: tuple[GraphEvent | None, str, bool] = (None, "", False)

    def relevant(self, event: GraphEvent) -> bool:
        # ``/me`` is the caller's own profile: every delegated client reads it
        return (event.category == "directory" and event.family != "me"
                and not is_batch_envelope(event))

    def new_accumulator(self) -> DirectoryReads:
        return DirectoryReads()

    def add(self, acc: DirectoryReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        acc.families.add(event.family)
        if "{" in event.template:  # a per-object template: /groups/{id}/members
            path, role = self._object(event)
            acc.objects.add(path)
            if role:
                acc.role_objects.add(path)

    def _object(self, event: GraphEvent) -> tuple[str, bool]:
        """(object path, read through a role template) of an event, worked out once for all
        its windows (the last event's answer is kept)."""
        memo = self._memo
        if memo[0] is not event:
            role = (event.method == "GET"
                    and canonical_template(event.template) in ROLE_TEMPLATES)
            memo = self._memo = (event, object_path(event.uri), role)
        return memo[1], memo[2]

    def gate(self, acc: DirectoryReads, level: int) -> bool:
        p = self.params
        return ((acc.families.size >= p.min_families[level]
                 and acc.requests >= p.min_requests[level])
                or acc.objects.size >= p.min_objects[level]
                or acc.role_objects.size >= p.min_role_objects[level])

    def crossed(self, acc: DirectoryReads, level: int, slot: Slot) -> bool:
        p = self.params
        families, objects, roles = acc.families.size, acc.objects.size, acc.role_objects.size
        broad = families >= p.min_families[level] and acc.requests >= p.min_requests[level]
        deep = objects >= p.min_objects[level]
        role = roles >= p.min_role_objects[level]
        if not (broad or deep or role):
            return False  # the usual case: below every floor
        if broad:
            peak = peak_of(slot, 0)
            if peak is None or families > peak:
                return True
        mult = p.baseline_multiplier
        return ((deep and above(objects, p.min_objects[level], peak_of(slot, 1), mult))
                or (role and above(roles, p.min_role_objects[level], peak_of(slot, 2), mult)))

    def grade(self, acc: DirectoryReads, level: int,
              slot: Slot) -> tuple[str | None, str | None]:
        """high/high for a deep or role walk by an established principal whose history never
        came near one (its sealed peak never reached the stored minimum, floor / multiplier):
        a first-ever walk of the directory is reconnaissance until shown otherwise."""
        if slot.peaks is None:
            return None, None  # learning: medium/medium, a signal
        p = self.params
        deep = acc.objects.size >= p.min_objects[level] and slot.peaks[1] == 0.0
        role = acc.role_objects.size >= p.min_role_objects[level] and slot.peaks[2] == 0.0
        return ("high", "high") if deep or role else (None, None)

    def measure(self, acc: DirectoryReads) -> tuple[float, ...]:
        return (float(acc.families.size), float(acc.objects.size), float(acc.role_objects.size))

    def store_minimum(self, level: int) -> tuple[float, ...]:
        p = self.params
        return (1.0, p.min_objects[level] / p.baseline_multiplier,
                p.min_role_objects[level] / p.baseline_multiplier)

    def evidence(self, acc: DirectoryReads) -> dict[str, Any]:
        return {**acc.evidence(), "families": acc.families.summary(),
                "objects": acc.objects.summary(), "role_objects": acc.role_objects.summary()}
