"""graph_enumeration: one principal reads many directory families or objects in one window.

What: per principal and tumbling event-time window (default 10 min), count directory requests
(``resource_category == "directory"``: users, groups, applications, servicePrincipals,
directoryRoles, roleManagement, devices, policies, domains, organization, ...), the distinct
families they touch and the distinct concrete objects read through per-object templates
(``/groups/{id}/members`` for 300 groups is 300 objects). Fires when

* families ≥ ``min_families`` (5) and requests ≥ ``min_requests`` (10) — a broad sweep
  (Elastic E1 uses ≥ 4 categories and ≥ 20 calls), or
* objects ≥ ``min_objects`` (200) across families ≥ ``min_object_families`` (2) — a deep
  per-object walk such as AzureHound's owners/members/appRoleAssignedTo loops (B1, F1).

Why: AzureHound, GraphRunner, GraphSpy, BARK, AADInternals and PowerZure all start by sweeping
the directory (detection-reference §3). Denied requests count too: a token probing what it
may read is enumerating all the same. ``$batch`` rows are skipped and their sub-requests,
logged one by one, are counted. Unlike most public rules this also covers app-only tokens.

ATT&CK: TA0007 Discovery; T1087.004 Cloud Account, T1069.003 Cloud Groups, T1526 Cloud Service
Discovery (as Elastic E6 tags the AzureHound family).

False positives: directory auditors (Purple Knight, F3), identity governance and HR
provisioning apps doing full syncs, admins in Graph Explorer. Allow-list such apps through
enrichment or raise the thresholds per app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from detectors._accumulators import Activity, CappedSet, is_batch_envelope, validate_params
from detectors.base import DetectorMeta, EventContext, WindowedDetector
from detectors.event import GraphEvent

API_VERSIONS = ("/v1.0/", "/beta/")


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_families: int = 5
    """Distinct directory families for a broad sweep."""
    min_requests: int = 10
    """Directory requests needed together with ``min_families``."""
    min_objects: int = 200
    """Distinct concrete objects (per-object paths) for a deep walk."""
    min_object_families: int = 2
    """Distinct families needed together with ``min_objects``."""

    def __post_init__(self) -> None:
        validate_params(self, "min_families", "min_objects", "min_object_families")


@dataclass(slots=True)
class DirectoryReads(Activity):
    families: CappedSet = field(default_factory=CappedSet)
    objects: CappedSet = field(default_factory=CappedSet)


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
        title="Directory enumeration through Microsoft Graph",
        description="One principal read many directory families or objects within one window.",
        severity="medium",
        tactics=("TA0007",),
        techniques=("T1087.004", "T1069.003", "T1526"),
        stage="discovery",
        false_positives=("Directory auditors such as Purple Knight",
                         "Identity governance or HR provisioning full syncs",
                         "Administrators exploring the directory in Graph Explorer"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "discovery_graph_activity_delegated_user_multi_category_recon.toml",
            "https://github.com/f-bader/AzSentinelQueries/blob/main/AnalyticsRules/"
            "AzureHoundReconnaissanceDetected.yaml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return event.category == "directory" and not is_batch_envelope(event)

    def new_accumulator(self) -> DirectoryReads:
        return DirectoryReads()

    def add(self, acc: DirectoryReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        acc.families.add(event.family)
        if "{" in event.template:  # a per-object template: /groups/{id}/members
            acc.objects.add(object_path(event.uri))

    def crossed(self, acc: DirectoryReads) -> bool:
        p = self.params
        families = acc.families.size
        broad = families >= p.min_families and acc.requests >= p.min_requests
        deep = acc.objects.size >= p.min_objects and families >= p.min_object_families
        return broad or deep

    def evidence(self, acc: DirectoryReads) -> dict[str, Any]:
        return {**acc.evidence(), "families": acc.families.summary(),
                "objects": acc.objects.summary()}
