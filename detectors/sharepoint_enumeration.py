"""sharepoint_enumeration: one principal lists or reads many SharePoint sites in one window.

What: per principal and tumbling event-time window (default 10 min), count read requests on
the ``sharepoint`` family (allowed or denied), the distinct sites they name (``target_site``)
and the tenant-wide site listings (``GET /sites?search=*``, ``/sites/getAllSites``, a bare
``GET /sites``). Fires when distinct sites ≥ ``min_sites`` (5) or site listings ≥
``min_site_listings`` (1) and, once the principal has a baseline (≥ ``min_baseline_windows``
closed windows with site reads), ≥ ``baseline_multiplier`` (3.0) times its peak per window: a
governance or backup app that walks the same sites every night stops alerting.

Why: storage enumeration precedes bulk download (detection-reference §5.5); an app-only token
with ``Sites.Read.All`` reaching into many sites, or asking for every site at once, is the
collection step of the attack chain. A search for a named site (a site picker) is not a
listing; only empty or wildcard searches are.

ATT&CK: TA0007 Discovery, TA0009 Collection; T1619 Cloud Storage Object Discovery, T1083 File
and Directory Discovery, T1213.002 Data from Information Repositories: SharePoint.

False positives: SharePoint governance, backup, migration and eDiscovery apps; intranet portals
that aggregate news from many sites. Allow-list them through enrichment. ``POST /search/query``
(family ``search``) is not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from detectors._accumulators import (
    BaselineActivity,
    BaselineWindowedDetector,
    CappedSet,
    above_floor_and_baseline,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent

LISTING_TEMPLATES = frozenset({"/sites", "/sites/getallsites"})
SEARCH_KEYS = frozenset({"search", "$search"})
WILDCARD_SEARCHES = frozenset({"", "*", '"*"'})
SITES = "sites"
LISTINGS = "site_listings"


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_sites: int = 5
    """Distinct sites read or listed by one principal."""
    min_site_listings: int = 1
    """Tenant-wide site listings (wildcard search, getAllSites, bare /sites)."""
    baseline_multiplier: float = 3.0
    """With a baseline, the count must also reach this multiple of the principal's peak."""
    min_baseline_windows: int = 1
    """Closed windows with site reads before the baseline applies (a crawl of a tenant's sites
    usually fits in one window, so one closed window already is the crawler's baseline)."""

    def __post_init__(self) -> None:
        validate_params(self, "min_sites")


@dataclass(slots=True)
class SiteReads(BaselineActivity):
    sites: CappedSet = field(default_factory=CappedSet)
    site_listings: int = 0


def is_site_listing(event: GraphEvent) -> bool:
    """A request for every site: ``/sites?search=*``, ``/sites/getAllSites`` or ``/sites``."""
    if event.template.lower() not in LISTING_TEMPLATES:
        return False
    searches = [v.strip() for k, v in parse_qsl(urlsplit(event.uri).query,
                                                keep_blank_values=True) if k in SEARCH_KEYS]
    return all(value in WILDCARD_SEARCHES for value in searches)


class SharepointEnumeration(BaselineWindowedDetector[SiteReads]):
    meta = DetectorMeta(
        id="sharepoint_enumeration",
        title="SharePoint site enumeration through Microsoft Graph",
        description="One principal listed or read many SharePoint sites within one window.",
        severity="medium",
        tactics=("TA0007", "TA0009"),
        techniques=("T1619", "T1083", "T1213.002"),
        stage="collection",
        false_positives=("SharePoint governance, backup, migration or eDiscovery apps",
                         "Intranet portals aggregating content from many sites"),
        references=(
            "https://github.com/chronicle/detection-rules/blob/main/rules/community/"
            "microsoft/graph_activity/ms_graph_search_query.yaral",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return event.family == "sharepoint" and not event.is_write

    def new_accumulator(self) -> SiteReads:
        return SiteReads()

    def add(self, acc: SiteReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        if event.target_site:
            acc.sites.add(event.target_site.lower())
        elif is_site_listing(event):
            acc.site_listings += 1

    def crossed(self, acc: SiteReads) -> bool:
        p = self.params
        sites, listings = acc.sites.size, acc.site_listings
        if sites < p.min_sites and listings < p.min_site_listings:
            return False  # below both floors, the usual case: no baseline to consult
        return (
            above_floor_and_baseline(sites, p.min_sites,
                                     acc.peak(SITES, p.min_baseline_windows), p.baseline_multiplier)
            or above_floor_and_baseline(listings, p.min_site_listings,
                                        acc.peak(LISTINGS, p.min_baseline_windows),
                                        p.baseline_multiplier))

    def baseline_metrics(self, acc: SiteReads) -> dict[str, float]:
        return {SITES: float(len(acc.sites)), LISTINGS: float(acc.site_listings)}

    def evidence(self, acc: SiteReads) -> dict[str, Any]:
        return {**acc.evidence(), SITES: acc.sites.summary(), LISTINGS: acc.site_listings,
                "baseline_peaks": acc.baseline_evidence()}
