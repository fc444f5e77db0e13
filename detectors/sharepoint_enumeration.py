"""sharepoint_enumeration: one principal lists or reads many SharePoint sites in one window.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour, 1 day), count
read requests on the ``sharepoint`` family (allowed or denied), the distinct sites they name
(``target_site``) and the tenant-wide site listings (``GET /sites?search=*``,
``/sites/getAllSites``, a bare ``GET /sites``). A window crosses when distinct sites ≥
``min_sites`` or site listings ≥ ``min_site_listings`` and, once the principal is
established, that count also reaches ``baseline_multiplier`` times its own peak (same window
length, same time of day, last 14 days, sealed one lateness before the window): a governance
or backup app that walks the same sites every night has that as its baseline.

Why: storage enumeration precedes bulk download (detection-reference §5.5); an app-only token
with ``Sites.Read.All`` reaching into many sites, or asking for every site at once, is the
collection step of the attack chain. A search for a named site (a site picker) is not a
listing; only empty or wildcard searches are.

ATT&CK: TA0007 Discovery, TA0009 Collection; T1619 Cloud Storage Object Discovery, T1083 File
and Directory Discovery, T1213.002 Data from Information Repositories: SharePoint.

False positives: SharePoint governance, backup, migration and eDiscovery apps in their learning
period; intranet portals that aggregate news from many sites. ``POST /search/query``
(family ``search``) is not counted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from detectors._accumulators import Activity, CappedSet, validate_params
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import GraphEvent
from detectors.windows import WindowedDetector, above, peak_of, per_window

LISTING_TEMPLATES = frozenset({"/sites", "/sites/getallsites"})
SEARCH_KEYS = frozenset({"search", "$search"})
WILDCARD_SEARCHES = frozenset({"", "*", '"*"'})
SITES = "sites"
LISTINGS = "site_listings"


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0, 86_400.0)
    """Tumbling window lengths in seconds (10 min, 1 h, 1 day)."""
    min_sites: tuple[int, ...] = (5, 10, 25)
    """Distinct sites read or listed, per window length."""
    min_site_listings: int = 1
    """Tenant-wide site listings (wildcard search, getAllSites, bare /sites)."""
    baseline_multiplier: float = 3.0
    """Once established, the count must also reach this multiple of the principal's peak."""

    def __post_init__(self) -> None:
        validate_params(self, "min_sites")
        per_window(self.min_sites, self.windows, "min_sites")


@dataclass(slots=True)
class SiteReads(Activity):
    sites: CappedSet = field(default_factory=CappedSet)
    site_listings: int = 0


def is_site_listing(event: GraphEvent) -> bool:
    """A request for every site: ``/sites?search=*``, ``/sites/getAllSites`` or ``/sites``."""
    if event.template.lower() not in LISTING_TEMPLATES:
        return False
    searches = [v.strip() for k, v in parse_qsl(urlsplit(event.uri).query,
                                                keep_blank_values=True) if k in SEARCH_KEYS]
    return all(value in WILDCARD_SEARCHES for value in searches)


class SharepointEnumeration(WindowedDetector[SiteReads]):
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

    measures = (SITES, LISTINGS)

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows

    def relevant(self, event: GraphEvent) -> bool:
        return event.family == "sharepoint" and not event.is_write

    def new_accumulator(self) -> SiteReads:
        return SiteReads()

    def add(self, acc: SiteReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        if event.target_site:
            acc.sites.add(event.target_site.lower())
        elif is_site_listing(event):
            acc.site_listings += 1

    def gate(self, acc: SiteReads, level: int) -> bool:
        p = self.params
        return (acc.sites.size >= p.min_sites[level]
                or acc.site_listings >= p.min_site_listings)

    def crossed(self, acc: SiteReads, level: int, slot: Slot) -> bool:
        p = self.params
        mult = p.baseline_multiplier
        return (above(acc.sites.size, p.min_sites[level], peak_of(slot, 0), mult)
                or above(acc.site_listings, p.min_site_listings, peak_of(slot, 1), mult))

    def measure(self, acc: SiteReads) -> tuple[float, ...]:
        return (float(acc.sites.size), float(acc.site_listings))

    def store_minimum(self, level: int) -> tuple[float, ...]:
        p = self.params
        return (p.min_sites[level] / p.baseline_multiplier,
                p.min_site_listings / p.baseline_multiplier)

    def evidence(self, acc: SiteReads) -> dict[str, Any]:
        return {**acc.evidence(), SITES: acc.sites.summary(), LISTINGS: acc.site_listings}
