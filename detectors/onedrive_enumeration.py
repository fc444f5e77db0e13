"""onedrive_enumeration: one principal walks other users' drives, or many folders, in one window.

What: per principal and tumbling event-time window (default 10 min), count read requests on
the ``onedrive`` family (allowed or denied), the distinct drives of *other* users they reach
(``/users/{id}/drive…`` by target user, ``/drives/{id}…`` by drive id) and the distinct
folders they list (``…/root/children``, ``…/items/{id}/children``). Fires when other users'
drives ≥ ``min_drives`` (5) or listed folders ≥ ``min_items`` (100) and, once the principal has
a baseline (≥ ``min_baseline_windows`` closed windows with drive reads), that count also
reaches ``baseline_multiplier`` (3.0) times its peak per window: a backup app that walks every
drive each night alerts on its first nights only, then stays quiet at its usual volume.

Why: one app-only token reaching many users' drives is the storage-enumeration shape that no
public rule covers (detection-reference §5.5); a fast folder walk (TeamFiltration's
``/me/drive/root/children`` → ``items/{id}/children`` recursion) precedes bulk download.
The caller's own drive (``/me/drive…`` or ``/users/{own id}/drive…``) never counts as another
user's drive, so a user browsing their own files does not fire; only a walk through a hundred
folders within one window does.

ATT&CK: TA0007 Discovery, TA0009 Collection; T1619 Cloud Storage Object Discovery, T1083 File
and Directory Discovery.

False positives: backup, migration, DLP and eDiscovery apps that crawl drives; sync clients
built on Graph walking a large drive on first sync. A drive reached both by user and by drive
id counts twice (the log does not say they are the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import (
    BaselineActivity,
    BaselineWindowedDetector,
    CappedSet,
    above_floor_and_baseline,
    caller_id,
    target_user_key,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent

LISTING_SUFFIX = "/children"
DRIVES = "other_users_drives"
FOLDERS = "folders_listed"
ROOT_FOLDER = "root"


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_drives: int = 5
    """Distinct drives of users other than the caller."""
    min_items: int = 100
    """Distinct folders listed (``…/children``), own drive included."""
    baseline_multiplier: float = 3.0
    """With a baseline, the count must also reach this multiple of the principal's peak."""
    min_baseline_windows: int = 6
    """Closed windows with drive reads before the baseline applies."""

    def __post_init__(self) -> None:
        validate_params(self, "min_drives", "min_items")


@dataclass(slots=True)
class DriveReads(BaselineActivity):
    drives: CappedSet = field(default_factory=CappedSet)
    folders: CappedSet = field(default_factory=CappedSet)


def drive_of(event: GraphEvent) -> str | None:
    """The drive the request reaches: ``user:<id>`` by target user, else ``drive:<id>``."""
    user = target_user_key(event)
    if user:
        return f"user:{user}"
    return f"drive:{event.target_drive.lower()}" if event.target_drive else None


class OnedriveEnumeration(BaselineWindowedDetector[DriveReads]):
    meta = DetectorMeta(
        id="onedrive_enumeration",
        title="OneDrive enumeration through Microsoft Graph",
        description="One principal reached many users' drives or listed many folders "
                    "within one window.",
        severity="medium",
        tactics=("TA0007", "TA0009"),
        techniques=("T1619", "T1083"),
        stage="collection",
        false_positives=("Backup, migration, DLP or eDiscovery apps crawling drives",
                         "Graph-based sync clients on a first full sync"),
        references=(
            "https://github.com/Flangvik/TeamFiltration",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return event.family == "onedrive" and not event.is_write

    def new_accumulator(self) -> DriveReads:
        return DriveReads()

    def add(self, acc: DriveReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        drive = drive_of(event)
        if drive != f"user:{caller_id(event)}":
            acc.drives.add(drive)
        if event.template.endswith(LISTING_SUFFIX):
            folder = (event.target_item or ROOT_FOLDER).lower()
            acc.folders.add(f"{drive or '?'}/{folder}")

    def crossed(self, acc: DriveReads) -> bool:
        p = self.params
        drives, folders = acc.drives.size, acc.folders.size
        if drives < p.min_drives and folders < p.min_items:
            return False  # below both floors, the usual case: no baseline to consult
        return (
            above_floor_and_baseline(drives, p.min_drives,
                                     acc.peak(DRIVES, p.min_baseline_windows),
                                     p.baseline_multiplier)
            or above_floor_and_baseline(folders, p.min_items,
                                        acc.peak(FOLDERS, p.min_baseline_windows),
                                        p.baseline_multiplier))

    def baseline_metrics(self, acc: DriveReads) -> dict[str, float]:
        return {DRIVES: float(len(acc.drives)), FOLDERS: float(len(acc.folders))}

    def evidence(self, acc: DriveReads) -> dict[str, Any]:
        return {**acc.evidence(), DRIVES: acc.drives.summary(), FOLDERS: acc.folders.summary(),
                "baseline_peaks": acc.baseline_evidence()}
