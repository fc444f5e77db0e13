"""storage_exfiltration: many file-content downloads by one principal in one window.

What: per principal and tumbling event-time window (default 10 min), count file-content
downloads (``is_download``: ``…/content`` or ``…/$value`` on a drive item, with status 302 or
200) and the distinct items, drives and sites they came from. Downloads are counted, not
weighed: a 302 redirects to SharePoint and carries size 0 (detection-reference §1.1). Fires
when downloads ≥ ``min_downloads`` (25) across ≥ ``min_items`` distinct items (20) and, once
the principal has a baseline (≥ ``min_baseline_windows`` closed windows with downloads),
downloads ≥ ``baseline_multiplier`` (3.0) * its peak downloads per window.

Why: bulk download is where the attack chain ends (GraphRunner, GraphSpy, TeamFiltration all
fetch ``/drives/{d}/items/{i}/content``). Elastic X13 fires at ≥ 25 files per 3 min on the
audit log; here it runs on Graph logs and per app-only principal too. The baseline lets a
backup app that downloads the same 300 files every night stop alerting after a few nights,
while a principal that never downloaded alerts at the floor.

Baseline: the peak over all closed windows of this principal, alerting windows included (else
the backup app would never stop alerting). A slow attacker growing volume by less than the
multiplier per window, or one that first downloads at a volume later repeated, is learnt as
normal. The peak never decays.

ATT&CK: TA0009 Collection, TA0010 Exfiltration; T1530 Data from Cloud Storage.

False positives: backup, migration, eDiscovery and DLP apps before they have a baseline; users
syncing a library through a Graph-based client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import (
    DOWNLOAD_STATUSES,
    BaselineActivity,
    BaselineWindowedDetector,
    CappedSet,
    above_floor_and_baseline,
    is_file_download,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent

DOWNLOADS = "downloads"


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_downloads: int = 25
    """Successful file-content downloads in the window (the floor)."""
    min_items: int = 20
    """Distinct drive items downloaded."""
    baseline_multiplier: float = 3.0
    """With a baseline, downloads must reach this multiple of the principal's peak."""
    min_baseline_windows: int = 6
    """Closed windows with downloads before the baseline applies."""
    download_statuses: tuple[int, ...] = DOWNLOAD_STATUSES
    """Statuses of a download that went through."""

    def __post_init__(self) -> None:
        validate_params(self, "min_items")


@dataclass(slots=True)
class Downloads(BaselineActivity):
    items: CappedSet = field(default_factory=CappedSet)
    drives: CappedSet = field(default_factory=CappedSet)
    sites: CappedSet = field(default_factory=CappedSet)


class StorageExfiltration(BaselineWindowedDetector[Downloads]):
    meta = DetectorMeta(
        id="storage_exfiltration",
        title="Bulk file download through Microsoft Graph",
        description="One principal downloaded many files within one window, above its own "
                    "baseline.",
        severity="high",
        tactics=("TA0009", "TA0010"),
        techniques=("T1530",),
        stage="exfiltration",
        false_positives=("Backup, migration, eDiscovery or DLP apps before their baseline",
                         "Graph-based sync clients syncing a library"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/o365/"
            "collection_onedrive_excessive_file_downloads.toml",
            "https://github.com/chronicle/detection-rules/blob/main/rules/community/"
            "microsoft/o365/o365_file_download.yaral",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return is_file_download(event, self.params.download_statuses)

    def new_accumulator(self) -> Downloads:
        return Downloads()

    def add(self, acc: Downloads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        drive = event.target_drive or event.target_user or event.target_site or "?"
        acc.items.add(f"{drive}/{event.target_item or event.uri}".lower())
        acc.drives.add(event.target_drive)
        acc.sites.add(event.target_site)

    def crossed(self, acc: Downloads) -> bool:
        p = self.params
        peak = acc.peak(DOWNLOADS, p.min_baseline_windows)
        return acc.items.size >= p.min_items and above_floor_and_baseline(
            acc.requests, p.min_downloads, peak, p.baseline_multiplier)

    def baseline_metrics(self, acc: Downloads) -> dict[str, float]:
        return {DOWNLOADS: float(acc.requests)}

    def evidence(self, acc: Downloads) -> dict[str, Any]:
        return {**acc.evidence(), DOWNLOADS: acc.requests, "items": acc.items.summary(),
                "drives": acc.drives.summary(), "sites": acc.sites.summary(),
                "baseline_peak_downloads": acc.peak(DOWNLOADS,
                                                    self.params.min_baseline_windows)}
