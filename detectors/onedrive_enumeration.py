"""onedrive_enumeration: one principal walks other users' drives, or many folders, in one window.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour, 1 day), count
read requests on the ``onedrive`` family (allowed or denied), the distinct drives of *other*
users they reach (``/users/{id}/drive…`` by target user, ``/drives/{id}…`` by drive id) and the
distinct folders they list (``…/root/children``, ``…/items/{id}/children``). A window crosses
when other users' drives ≥ ``min_drives`` or listed folders ≥ ``min_folders`` and, once the
principal is established, that count also reaches ``baseline_multiplier`` times its own peak
(same window length, same time of day, last 14 days, sealed one lateness before the window):
a backup app that walks every drive each night at 01:00 has that as its baseline.

Why: one app-only token reaching many users' drives is the storage-enumeration shape that no
public rule covers (detection-reference §5.5); a fast folder walk (TeamFiltration's
``/me/drive/root/children`` → ``items/{id}/children`` recursion) precedes bulk download.
The caller's own drive (``/me/drive…`` or ``/users/{own id}/drive…``) never counts as another
user's drive, so a user browsing their own files does not fire; only a walk through a hundred
folders within one window does.

ATT&CK: TA0007 Discovery, TA0009 Collection; T1619 Cloud Storage Object Discovery, T1083 File
and Directory Discovery.

False positives: backup, migration, DLP and eDiscovery apps in their learning period; sync
clients built on Graph walking a large drive on first sync. A drive reached both by user and
by drive id counts twice (the log does not say they are the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import (
    Activity,
    CappedSet,
    caller_id,
    target_user_key,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import GraphEvent
from detectors.windows import WindowedDetector, above, peak_of, per_window

LISTING_SUFFIX = "/children"
DRIVES = "other_users_drives"
FOLDERS = "folders_listed"
ROOT_FOLDER = "root"


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0, 86_400.0)
    """Tumbling window lengths in seconds (10 min, 1 h, 1 day)."""
    min_drives: tuple[int, ...] = (5, 10, 25)
    """Distinct drives of users other than the caller, per window length."""
    min_folders: tuple[int, ...] = (100, 250, 600)
    """Distinct folders listed (``…/children``), own drive included, per window length."""
    baseline_multiplier: float = 3.0
    """Once established, the count must also reach this multiple of the principal's peak."""

    def __post_init__(self) -> None:
        validate_params(self, "min_drives", "min_folders")
        per_window(self.min_drives, self.windows, "min_drives")
        per_window(self.min_folders, self.windows, "min_folders")


@dataclass(slots=True)
class DriveReads(Activity):
    drives: CappedSet = field(default_factory=CappedSet)
    folders: CappedSet = field(default_factory=CappedSet)


def drive_of(event: GraphEvent) -> str | None:
    """The drive the request reaches: ``user:<id>`` by target user, else ``drive:<id>``."""
    user = target_user_key(event)
    if user:
        return f"user:{user}"
    return f"drive:{event.target_drive.lower()}" if event.target_drive else None


class OnedriveEnumeration(WindowedDetector[DriveReads]):
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

    measures = (DRIVES, FOLDERS)

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows
        self._memo: tuple[GraphEvent | None, str | None, str | None] = (None, None, None)

    def relevant(self, event: GraphEvent) -> bool:
        return event.family == "onedrive" and not event.is_write

    def new_accumulator(self) -> DriveReads:
        return DriveReads()

    def add(self, acc: DriveReads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        memo = self._memo
        if memo[0] is not event:  # worked out once for all of the event's windows
            drive = drive_of(event)
            other = drive if drive != f"user:{caller_id(event)}" else None
            folder = None
            if event.template.endswith(LISTING_SUFFIX):
                folder = f"{drive or '?'}/{(event.target_item or ROOT_FOLDER).lower()}"
            memo = self._memo = (event, other, folder)
        acc.drives.add(memo[1])
        acc.folders.add(memo[2])

    def gate(self, acc: DriveReads, level: int) -> bool:
        p = self.params
        return (acc.drives.size >= p.min_drives[level]
                or acc.folders.size >= p.min_folders[level])

    def crossed(self, acc: DriveReads, level: int, slot: Slot) -> bool:
        p = self.params
        mult = p.baseline_multiplier
        return (above(acc.drives.size, p.min_drives[level], peak_of(slot, 0), mult)
                or above(acc.folders.size, p.min_folders[level], peak_of(slot, 1), mult))

    def measure(self, acc: DriveReads) -> tuple[float, ...]:
        return (float(acc.drives.size), float(acc.folders.size))

    def store_minimum(self, level: int) -> tuple[float, ...]:
        p = self.params
        return (p.min_drives[level] / p.baseline_multiplier,
                p.min_folders[level] / p.baseline_multiplier)

    def evidence(self, acc: DriveReads) -> dict[str, Any]:
        return {**acc.evidence(), DRIVES: acc.drives.summary(), FOLDERS: acc.folders.summary()}
