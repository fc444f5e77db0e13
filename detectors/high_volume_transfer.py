"""high_volume_transfer: response bytes far above the principal's own usual volume.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour), sum the response
bytes of every request (``$batch`` rows skipped: their sub-requests carry the bytes). A
window crosses when bytes ≥ ``min_bytes`` and, once the principal is established, bytes ≥
``baseline_multiplier`` times its own peak (same window length, same time of day, last 14 days,
sealed one lateness before the window); while the principal is learning, bytes must reach
``min_bytes_learning`` instead. The floor is low (5 MiB per 10 min) because the measure is
principal-relative: a replayed Teams token reading a hundred chats moves ~14 MiB per 10
minutes, fifty times its user's own peak, far below any fixed tenant-wide floor.

Why: Cortex's "high-volume data transfer" analytic compares an app with its own profile; bulk
API reads (``$top=999`` user or message pages, mail bodies, attachments, chat messages) leave
bytes in ``ResponseSizeBytes`` even when file downloads (302, size 0) do not.
File downloads are ``storage_exfiltration``'s. Since nearly every request counts here, the
windows keep counts only (no IP or user-agent samples): the signal's context says whether
its requests came from a new network or client, and the principal's other signals carry the
addresses.

ATT&CK: TA0010 Exfiltration, TA0009 Collection; T1530 Data from Cloud Storage, T1213 Data
from Information Repositories.

False positives: backup, archiving and reporting apps in their learning period or after the
tenant grew; a one-off migration or export; a user's first heavy day in a new client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors._accumulators import Activity, is_batch_envelope, validate_params
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import DENIED_STATUSES, GraphEvent
from detectors.windows import WindowedDetector, peak_of, per_window

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0)
    """Tumbling window lengths in seconds (10 min, 1 h)."""
    min_bytes: tuple[int, ...] = (5 * MIB, 20 * MIB)
    """Response bytes per window for an established principal (with its baseline)."""
    min_bytes_learning: tuple[int, ...] = (50 * MIB, 200 * MIB)
    """Response bytes per window while the principal is learning (no baseline yet)."""
    baseline_multiplier: float = 10.0
    """Once established, bytes must reach this multiple of the principal's own peak."""

    def __post_init__(self) -> None:
        validate_params(self)
        per_window(self.min_bytes, self.windows, "min_bytes")
        per_window(self.min_bytes_learning, self.windows, "min_bytes_learning")


@dataclass(slots=True)
class Transfer(Activity):
    """Counts only (``lean``): this detector sees nearly every request, so it keeps no
    attributes of its own; a signal's context (new network, client, ...) still comes from its
    events' facts."""

    bytes: int = 0
    lean: bool = True


class HighVolumeTransfer(WindowedDetector[Transfer]):
    meta = DetectorMeta(
        id="high_volume_transfer",
        title="High-volume data transfer through Microsoft Graph",
        description="One principal read far more bytes within a window than its own usual "
                    "volume at that time of day.",
        severity="medium",
        tactics=("TA0010", "TA0009"),
        techniques=("T1530", "T1213"),
        stage="exfiltration",
        fidelity="low",
        false_positives=("Backup, archiving or reporting apps in their learning period",
                         "One-off migrations or exports"),
        references=(
            "https://docs-cortex.paloaltonetworks.com/",
        ),
    )
    measures = ("bytes",)

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows

    def relevant(self, event: GraphEvent) -> bool:
        return not is_batch_envelope(event)

    def new_accumulator(self) -> Transfer:
        return Transfer()

    def add(self, acc: Transfer, event: GraphEvent, ctx: EventContext) -> None:
        acc.requests += 1  # Activity.count for a lean accumulator, inlined: every request
        ts = event.ts
        if ts < acc.first_seen:
            acc.first_seen = ts
        if ts > acc.last_seen:
            acc.last_seen = ts
        if event.status in DENIED_STATUSES:
            acc.denied += 1
        if event.size > 0:
            acc.bytes += event.size

    def gate(self, acc: Transfer, level: int) -> bool:
        return acc.bytes >= self.params.min_bytes[level]

    def crossed(self, acc: Transfer, level: int, slot: Slot) -> bool:
        p = self.params
        value = acc.bytes
        if value < p.min_bytes[level]:
            return False  # the usual case: below every floor
        peak = peak_of(slot)
        if peak is None:
            return value >= p.min_bytes_learning[level]
        return value >= p.baseline_multiplier * peak

    def measure(self, acc: Transfer) -> tuple[float, ...]:
        return (float(acc.bytes),)

    def store_minimum(self, level: int) -> tuple[float, ...]:
        return (self.params.min_bytes[level] / self.params.baseline_multiplier,)

    def evidence(self, acc: Transfer) -> dict[str, Any]:
        return {"requests": acc.requests, "denied": acc.denied, "bytes": acc.bytes}
