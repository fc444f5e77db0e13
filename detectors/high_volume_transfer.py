"""high_volume_transfer: response bytes or downloads far above the principal's own baseline.

What: per principal and tumbling event-time window (default 10 min), sum the response bytes
of every request (``$batch`` rows skipped: their sub-requests carry the bytes) and count the
file-content downloads (302/200; a 302 weighs 0 bytes, so downloads are counted apart).
Fires when bytes ≥ ``min_bytes`` (50 MiB) or downloads ≥ ``min_downloads`` (100), and

* with a baseline (≥ ``min_baseline_windows`` (6) closed windows of activity): that same
  metric ≥ ``baseline_multiplier`` (10.0) * the principal's peak per window;
* without one: that metric ≥ its floor * ``no_baseline_factor`` (2.0) — a new principal has
  to move twice the floor before it alerts, to stay quiet on first runs of ordinary apps.

Why: Cortex's "high-volume data transfer" analytic compares an app with its own profile; bulk
API reads (``$top=999`` user or message pages, mail bodies, attachments) leave bytes in
``ResponseSizeBytes`` even when file downloads do not. Complements ``storage_exfiltration``
(which needs distinct items and a lower multiplier) for coarse volume anomalies.

Baseline: the peak per metric over all closed windows of this principal, alerting windows
included; it never decays, so it can be poisoned by a slow ramp (less than 10 times per window).

ATT&CK: TA0010 Exfiltration, TA0009 Collection; T1530 Data from Cloud Storage, T1213 Data
from Information Repositories.

False positives: backup, archiving and reporting apps on their first runs or after growth of
the tenant; a one-off migration; an app whose baseline windows were all quiet (baseline
nights) doing a monthly export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors._accumulators import (
    DOWNLOAD_STATUSES,
    BaselineActivity,
    BaselineWindowedDetector,
    above_floor_and_baseline,
    is_batch_envelope,
    validate_params,
)
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent

BYTES = "bytes"
DOWNLOADS = "downloads"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_bytes: int = 50 * MIB
    """Response bytes in the window (the floor)."""
    min_downloads: int = 100
    """File-content downloads in the window (the floor)."""
    baseline_multiplier: float = 10.0
    """With a baseline, the metric must reach this multiple of the principal's peak."""
    min_baseline_windows: int = 6
    """Closed windows of activity before the baseline applies."""
    no_baseline_factor: float = 2.0
    """Without a baseline, the metric must reach this multiple of its floor."""
    download_statuses: tuple[int, ...] = DOWNLOAD_STATUSES
    """Statuses of a download that went through."""

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass(slots=True)
class Transfer(BaselineActivity):
    bytes: int = 0
    downloads: int = 0


class HighVolumeTransfer(BaselineWindowedDetector[Transfer]):
    meta = DetectorMeta(
        id="high_volume_transfer",
        title="High-volume data transfer through Microsoft Graph",
        description="One principal moved far more bytes or files within one window than its "
                    "own baseline.",
        severity="medium",
        tactics=("TA0010", "TA0009"),
        techniques=("T1530", "T1213"),
        stage="exfiltration",
        false_positives=("Backup, archiving or reporting apps on first runs",
                         "One-off migrations or exports"),
        references=(
            "https://docs-cortex.paloaltonetworks.com/",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds
        # Below these no baseline question arises (crossed() runs on every event).
        least = min(1.0, self.params.no_baseline_factor)
        self._bytes_gate = self.params.min_bytes * least
        self._downloads_gate = self.params.min_downloads * least

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return not is_batch_envelope(event)

    def new_accumulator(self) -> Transfer:
        return Transfer()

    def add(self, acc: Transfer, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        if event.size > 0:
            acc.bytes += event.size
        if event.is_download and event.status in self.params.download_statuses:
            acc.downloads += 1  # is_file_download, inlined

    def crossed(self, acc: Transfer) -> bool:
        return (acc.bytes >= self._bytes_gate
                and self._above(acc, BYTES, acc.bytes, self.params.min_bytes)) or (
            acc.downloads >= self._downloads_gate
            and self._above(acc, DOWNLOADS, acc.downloads, self.params.min_downloads))

    def _above(self, acc: Transfer, metric: str, value: int, floor: int) -> bool:
        p = self.params
        return above_floor_and_baseline(value, floor, acc.peak(metric, p.min_baseline_windows),
                                        p.baseline_multiplier, p.no_baseline_factor)

    def baseline_metrics(self, acc: Transfer) -> dict[str, float]:
        return {BYTES: float(acc.bytes), DOWNLOADS: float(acc.downloads)}

    def evidence(self, acc: Transfer) -> dict[str, Any]:
        n = self.params.min_baseline_windows
        return {**acc.evidence(), BYTES: acc.bytes, DOWNLOADS: acc.downloads,
                "baseline_peak_bytes": acc.peak(BYTES, n),
                "baseline_peak_downloads": acc.peak(DOWNLOADS, n)}
