"""denied_requests: a burst of 401/403 answers across several resource families in one window.

What: per principal and tumbling event-time window (default 10 min), count every request
(``$batch`` rows skipped, their sub-requests counted), the denied ones (401/403) and the
distinct families denied. Fires when denied ≥ ``min_denied`` (5) and denied / requests ≥
``min_ratio`` (0.3) and distinct denied families ≥ ``min_families`` (2).

Why: a stolen token probing what it may do hits 403 on family after family; a healthy
workload is configured for the permissions it has. Elastic A2 does this on AAD Graph only and
per user; Microsoft's sample M1 only ranks apps; detection-reference §5.4 asks for it per app
on Microsoft Graph. A monitor that gets an occasional 403 on one family does not fire: it
fails the family and the ratio conditions.

Order: counts and the family set are monotone, the ratio is not (later successes lower it).
The ratio is evaluated when each event arrives, so a window whose final counts cross fires in
every arrival order, and a window whose final ratio is below ``min_ratio`` may still fire in
an order that front-loads its denials — as it would in real time.

ATT&CK: TA0007 Discovery; T1526 Cloud Service Discovery — the burst is a token enumerating
which Graph services and APIs it can reach. T1087.004/T1069.003 are left to
``graph_enumeration`` (which also counts denied directory reads); T1580 is about IaaS
infrastructure, not Graph.

False positives: an app whose consent or role was just revoked (every call then fails),
misconfigured new deployments, Conditional Access changes; these are worth a look anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import Activity, CappedSet, is_batch_envelope, validate_params
from detectors.base import DetectorMeta, EventContext, WindowedDetector
from detectors.event import DENIED_STATUSES, GraphEvent


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 600.0
    """Tumbling window length in seconds."""
    min_denied: int = 5
    """Denied (401/403) requests in the window."""
    min_ratio: float = 0.3
    """Denied share of all the principal's requests in the window (0 < ratio ≤ 1)."""
    min_families: int = 2
    """Distinct resource families with at least one denial."""

    def __post_init__(self) -> None:
        validate_params(self, "min_families")
        if self.min_ratio > 1:
            raise ValueError(f"Params.min_ratio: at most 1, got {self.min_ratio!r}")


@dataclass(slots=True)
class Denials(Activity):
    denied_families: CappedSet = field(default_factory=CappedSet)

    @property
    def ratio(self) -> float:
        return self.denied / self.requests if self.requests else 0.0


class DeniedRequests(WindowedDetector[Denials]):
    meta = DetectorMeta(
        id="denied_requests",
        title="Burst of denied Microsoft Graph requests",
        description="One principal got many 401/403 answers across several resource families "
                    "within one window.",
        severity="medium",
        tactics=("TA0007",),
        techniques=("T1526",),
        stage="discovery",
        false_positives=("App consent or role just revoked",
                         "Misconfigured new deployment or Conditional Access change"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "discovery_aad_graph_high_4xx_ratio_by_user.toml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def relevant(self, event: GraphEvent, ctx: EventContext) -> bool:
        return not is_batch_envelope(event)

    def new_accumulator(self) -> Denials:
        return Denials()

    def add(self, acc: Denials, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        if event.status in DENIED_STATUSES:  # event.denied, without the property call
            acc.denied_families.add(event.family)

    def crossed(self, acc: Denials) -> bool:
        p = self.params
        return (acc.denied >= p.min_denied and acc.ratio >= p.min_ratio
                and acc.denied_families.size >= p.min_families)

    def evidence(self, acc: Denials) -> dict[str, Any]:
        return {**acc.evidence(), "denied_ratio": round(acc.ratio, 4),
                "denied_families": acc.denied_families.summary()}
