"""storage_exfiltration: many file-content downloads by one principal, above its own usual.

What: per principal, app and tumbling event-time window — 10 minutes, 1 hour and 1 day, so a
slow download spread over hours crosses too — count file-content downloads (``is_download``:
``…/content`` or ``…/$value`` on a drive item, status 302 or 200) and the distinct items,
drives and sites. Downloads are counted, not weighed: a 302 redirects to SharePoint and
carries size 0 (detection-reference §1.1). A window crosses when downloads ≥
``min_downloads`` and distinct items ≥ ``min_items`` (one value per window length), and, once
the principal is established, downloads ≥ ``baseline_multiplier`` times its own peak — the peak
of its windows of the same length over the last 14 days, at the same time of day for windows
shorter than a day, sealed one lateness before the window (so arrival order never matters).

Why: bulk download is where the attack chain ends (GraphRunner, GraphSpy, TeamFiltration all
fetch ``/drives/{d}/items/{i}/content``). Elastic X13 fires at ≥ 25 files per 3 min on the
audit log; this runs on Graph logs, app-only principals included. The baseline lets a backup
app that downloads hundreds of files every night at 01:00 stay quiet, while the same volume at
14:00, or from a new network (risk context), or three times its peak, is a signal.

ATT&CK: TA0009 Collection, TA0010 Exfiltration; T1530 Data from Cloud Storage.

False positives: backup, migration, eDiscovery and DLP apps in their learning period; users
syncing a library through a Graph-based client for the first time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import (
    DOWNLOAD_STATUSES,
    Activity,
    CappedSet,
    is_file_download,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import GraphEvent
from detectors.windows import WindowedDetector, above, peak_of, per_window


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0, 86_400.0)
    """Tumbling window lengths in seconds (10 min, 1 h, 1 day)."""
    min_downloads: tuple[int, ...] = (25, 60, 150)
    """Successful file-content downloads per window, one floor per window length."""
    min_items: tuple[int, ...] = (20, 40, 100)
    """Distinct drive items downloaded, per window length."""
    baseline_multiplier: float = 3.0
    """Once established, downloads must reach this multiple of the principal's own peak."""
    download_statuses: tuple[int, ...] = DOWNLOAD_STATUSES
    """Statuses of a download that went through."""

    def __post_init__(self) -> None:
        validate_params(self, "min_items")
        per_window(self.min_downloads, self.windows, "min_downloads")
        per_window(self.min_items, self.windows, "min_items")


@dataclass(slots=True)
class Downloads(Activity):
    items: CappedSet = field(default_factory=CappedSet)
    drives: CappedSet = field(default_factory=CappedSet)
    sites: CappedSet = field(default_factory=CappedSet)


class StorageExfiltration(WindowedDetector[Downloads]):
    meta = DetectorMeta(
        id="storage_exfiltration",
        title="Bulk file download through Microsoft Graph",
        description="One principal downloaded many files within a window, above its own "
                    "usual volume at that time of day.",
        severity="high",
        tactics=("TA0009", "TA0010"),
        techniques=("T1530",),
        stage="exfiltration",
        fidelity="medium",
        false_positives=("Backup, migration, eDiscovery or DLP apps in their learning period",
                         "Graph-based sync clients syncing a library for the first time"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/o365/"
            "collection_onedrive_excessive_file_downloads.toml",
            "https://github.com/chronicle/detection-rules/blob/main/rules/community/"
            "microsoft/o365/o365_file_download.yaral",
        ),
    )
    measures = ("downloads",)

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows

    def relevant(self, event: GraphEvent) -> bool:
        return is_file_download(event, self.params.download_statuses)

    def new_accumulator(self) -> Downloads:
        return Downloads()

    def add(self, acc: Downloads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        drive = event.target_drive or event.target_user or event.target_site or "?"
        acc.items.add(f"{drive}/{event.target_item or event.uri}".lower())
        acc.drives.add(event.target_drive)
        acc.sites.add(event.target_site)

    def gate(self, acc: Downloads, level: int) -> bool:
        p = self.params
        return acc.requests >= p.min_downloads[level] and acc.items.size >= p.min_items[level]

    def crossed(self, acc: Downloads, level: int, slot: Slot) -> bool:
        p = self.params
        return acc.items.size >= p.min_items[level] and above(
            acc.requests, p.min_downloads[level], peak_of(slot), p.baseline_multiplier)

    def measure(self, acc: Downloads) -> tuple[float, ...]:
        return (float(acc.requests),)

    def store_minimum(self, level: int) -> tuple[float, ...]:
        return (self.params.min_downloads[level] / self.params.baseline_multiplier,)

    def evidence(self, acc: Downloads) -> dict[str, Any]:
        return {**acc.evidence(), "downloads": acc.requests, "items": acc.items.summary(),
                "drives": acc.drives.summary(), "sites": acc.sites.summary()}
