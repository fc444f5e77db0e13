"""denied_requests: a burst of 401/403 answers across several resource families.

What: per principal, app and tumbling event-time window (10 minutes, 1 hour), count the
denied requests (401/403; ``$batch`` rows skipped, their sub-requests counted) and the
distinct families denied. A window crosses when denied ≥ ``min_denied`` across ≥
``min_families`` families and, once the principal is established, denied ≥
``baseline_multiplier`` times its own peak of denials (same window length, same time of day,
last 14 days, sealed one lateness before the window).

Why: a stolen token probing what it may do hits 403 on family after family; a healthy
workload is configured for the permissions it has. Elastic A2 does this on AAD Graph only and
per user; Microsoft's sample M1 only ranks apps; detection-reference §5.4 asks for it per app
on Microsoft Graph. A monitor that is denied on one report family every day fails the family
condition and has its own denials as baseline.

Order: only monotone quantities decide (counts, distinct families, a sealed peak), so whether
a window crosses is the same in every arrival order. Today's version drops the older
denied/total ratio for that reason: a ratio falls as later successes arrive, so it can decide
differently in different orders; the principal's own baseline does the ratio's job of telling
a workload's usual failures from a probe.

ATT&CK: TA0007 Discovery; T1526 Cloud Service Discovery — the burst is a token enumerating
which Graph services and APIs it can reach.

False positives: an app whose consent or role was just revoked (every call then fails),
misconfigured new deployments, Conditional Access changes; worth a look anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import Activity, CappedSet, is_batch_envelope, validate_params
from detectors.base import DetectorMeta, EventContext, Slot
from detectors.event import DENIED_STATUSES, GraphEvent
from detectors.windows import WindowedDetector, above, peak_of, per_window


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (600.0, 3600.0)
    """Tumbling window lengths in seconds (10 min, 1 h)."""
    min_denied: tuple[int, ...] = (5, 15)
    """Denied (401/403) requests per window, one floor per window length."""
    min_families: int = 2
    """Distinct resource families denied."""
    baseline_multiplier: float = 3.0
    """Once established, denials must reach this multiple of the principal's own peak."""

    def __post_init__(self) -> None:
        validate_params(self, "min_families")
        per_window(self.min_denied, self.windows, "min_denied")


@dataclass(slots=True)
class Denials(Activity):
    denied_families: CappedSet = field(default_factory=CappedSet)
    denied_templates: CappedSet = field(default_factory=CappedSet)


class DeniedRequests(WindowedDetector[Denials]):
    meta = DetectorMeta(
        id="denied_requests",
        title="Burst of denied Graph requests",
        description="One principal was denied (401/403) on several resource families within "
                    "a window, beyond its own usual denials.",
        severity="medium",
        tactics=("TA0007",),
        techniques=("T1526",),
        stage="discovery",
        fidelity="low",
        false_positives=("Consent or role revoked from a running app",
                         "Misconfigured new deployments", "Conditional Access changes"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "discovery_aad_graph_high_4xx_ratio_by_user.toml",
            "https://learn.microsoft.com/en-us/graph/microsoft-graph-activity-logs-overview",
        ),
    )
    measures = ("denied",)

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.windows = self.params.windows

    def relevant(self, event: GraphEvent) -> bool:
        return event.status in DENIED_STATUSES and not is_batch_envelope(event)

    def new_accumulator(self) -> Denials:
        return Denials()

    def add(self, acc: Denials, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        acc.denied_families.add(event.family)
        acc.denied_templates.add(event.template)

    def gate(self, acc: Denials, level: int) -> bool:
        p = self.params
        return acc.denied >= p.min_denied[level] and acc.denied_families.size >= p.min_families

    def crossed(self, acc: Denials, level: int, slot: Slot) -> bool:
        p = self.params
        return acc.denied_families.size >= p.min_families and above(
            acc.denied, p.min_denied[level], peak_of(slot), p.baseline_multiplier)

    def measure(self, acc: Denials) -> tuple[float, ...]:
        return (float(acc.denied),)

    def store_minimum(self, level: int) -> tuple[float, ...]:
        return (self.params.min_denied[level] / self.params.baseline_multiplier,)

    def evidence(self, acc: Denials) -> dict[str, Any]:
        return {**acc.evidence(), "denied_families": acc.denied_families.summary(),
                "denied_templates": acc.denied_templates.summary()}
