"""attack_chain: one principal goes through several attack stages within a horizon.

What: this detector consumes the other detectors' findings, not events. Each finding counts
for its detector's stage (``stage_of``: discovery, collection, exfiltration, persistence,
credential_access, initial_access, ...). One incident fires when the findings of one principal
that fall within ``horizon_seconds`` (default 24 h) of the earliest of them cover at least
``min_stages`` (3) distinct stages. The incident references the stage alerts by id.

Why: no public rule chains discovery → storage enumeration → downloads → ``addPassword`` for
one service principal across hours (detection-reference §5 gap 1); each step alone is noisy,
together they are an intrusion.

Identity and repeats: the alert id's window is the horizon bucket (aligned to the epoch,
``horizon_seconds`` long) holding the chain's earliest finding, so a replay of the same
findings yields the same id. A finding belongs to at most one incident, and a principal gets
at most one incident per horizon bucket. Limitation: the earliest finding is the earliest
*known when the threshold is crossed*; if a late finding predates it and falls in the previous
bucket, a second incident for that bucket is possible (and a chain straddling a bucket
boundary is identified by the bucket it starts in). Findings are remembered for twice the
horizon after the watermark passes them.

ATT&CK: multi-tactic (TA0007 → TA0009 → TA0010, TA0003); severity critical.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import validate_params
from detectors.base import DetectorMeta, Finding, window_start

# Stage findings remembered per principal; beyond it the oldest are forgotten first.
MAX_HITS_PER_PRINCIPAL = 512


@dataclass(frozen=True, slots=True)
class Params:
    horizon_seconds: float = 86_400.0
    """Longest span between the first and the last stage finding of one chain."""
    min_stages: int = 3
    """Distinct stages needed for an incident."""

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass(frozen=True, slots=True)
class StageHit:
    alert_id: str
    detector: str
    stage: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class Identity:
    tenant_id: str
    app_id: str
    principal_id: str
    identity_type: str
    service_principal_id: str | None
    user_id: str | None


@dataclass
class PrincipalChain:
    identity: Identity
    hits: dict[str, StageHit] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    fired_buckets: set[float] = field(default_factory=set)


@dataclass
class ChainState:
    principals: dict[str, PrincipalChain] = field(default_factory=dict)


class AttackChain:
    meta = DetectorMeta(
        id="attack_chain",
        title="Attack chain across stages",
        description="One principal produced findings in several attack stages (discovery, "
                    "collection, exfiltration, persistence, ...) within the horizon.",
        severity="critical",
        tactics=("TA0007", "TA0009", "TA0010", "TA0003"),
        techniques=("T1526", "T1530", "T1098.001"),
        stage=None,
        false_positives=("Red-team exercises", "Administrators doing bulk migrations"),
        references=("https://attack.mitre.org/tactics/TA0010/",),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()

    def new_state(self) -> ChainState:
        return ChainState()

    def observe_findings(self, state: ChainState, findings: Iterable[Finding],
                         stage_of: Mapping[str, str]) -> list[Finding]:
        """Remember stage findings; return incidents for principals that crossed."""
        touched: dict[str, PrincipalChain] = {}
        for finding in findings:
            stage = stage_of.get(finding.detector)
            if not stage or finding.detector == self.meta.id:
                continue
            chain = state.principals.get(finding.principal_key)
            if chain is None:
                chain = state.principals[finding.principal_key] = PrincipalChain(
                    _identity(finding))
            _remember(chain, finding, stage)
            touched[finding.principal_key] = chain
        incidents: list[Finding] = []
        for chain in touched.values():
            incidents.extend(self._incidents(chain))
        return incidents

    def _incidents(self, chain: PrincipalChain) -> list[Finding]:
        horizon = self.params.horizon_seconds
        incidents: list[Finding] = []
        while True:
            open_hits = sorted((h for h in chain.hits.values()
                                if h.alert_id not in chain.consumed),
                               key=lambda h: (h.first_seen, h.alert_id))
            found = None
            for i, first in enumerate(open_hits):
                bucket = window_start(first.first_seen, horizon)
                if bucket in chain.fired_buckets:
                    continue
                members = [h for h in open_hits[i:]
                           if h.first_seen <= first.first_seen + horizon]
                if len({h.stage for h in members}) >= self.params.min_stages:
                    found = bucket, members
                    break
            if found is None:
                return incidents
            bucket, members = found
            chain.fired_buckets.add(bucket)
            chain.consumed.update(h.alert_id for h in members)
            incidents.append(self._incident(chain.identity, bucket, members))

    def _incident(self, who: Identity, bucket: float, members: list[StageHit]) -> Finding:
        stages: dict[str, list[str]] = {}
        for hit in members:  # members are in time order, so stages are too
            stages.setdefault(hit.stage, []).append(hit.alert_id)
        evidence: dict[str, Any] = {
            "stages": {stage: sorted(ids) for stage, ids in stages.items()},
            "stage_order": list(stages),
            "alert_ids": sorted(h.alert_id for h in members),
            "detectors": sorted({h.detector for h in members}),
            "chain_start": members[0].first_seen,
            "horizon_seconds": self.params.horizon_seconds,
        }
        return Finding(
            detector=self.meta.id, tenant_id=who.tenant_id, app_id=who.app_id,
            principal_id=who.principal_id, identity_type=who.identity_type,
            window_start=bucket, window_end=bucket + self.params.horizon_seconds,
            first_seen=min(h.first_seen for h in members),
            last_seen=max(h.last_seen for h in members), evidence=evidence,
            severity=self.meta.severity,
            title=f"Attack chain: {' -> '.join(stages)} ({len(members)} alerts)",
            service_principal_id=who.service_principal_id, user_id=who.user_id,
        )

    def expire(self, state: ChainState, watermark: float) -> bool:
        """Forget findings older than twice the horizon before the watermark."""
        horizon = self.params.horizon_seconds
        cutoff = watermark - 2 * horizon
        for key, chain in list(state.principals.items()):
            for alert_id in [a for a, h in chain.hits.items() if h.first_seen < cutoff]:
                del chain.hits[alert_id]
                chain.consumed.discard(alert_id)
            chain.fired_buckets = {b for b in chain.fired_buckets if b + horizon >= cutoff}
            if not chain.hits and not chain.fired_buckets:
                del state.principals[key]
        return not state.principals


def _identity(finding: Finding) -> Identity:
    return Identity(finding.tenant_id, finding.app_id, finding.principal_id,
                    finding.identity_type, finding.service_principal_id, finding.user_id)


def _remember(chain: PrincipalChain, finding: Finding, stage: str) -> None:
    known = chain.hits.get(finding.alert_id)
    if known is not None:  # the same alert again (replay, recovery): keep the earliest
        first = min(known.first_seen, finding.first_seen)
        last = max(known.last_seen, finding.last_seen)
    else:
        first, last = finding.first_seen, finding.last_seen
    chain.hits[finding.alert_id] = StageHit(finding.alert_id, finding.detector, stage,
                                            first, last)
    if len(chain.hits) > MAX_HITS_PER_PRINCIPAL:
        oldest = min(chain.hits.values(), key=lambda h: (h.first_seen, h.alert_id))
        del chain.hits[oldest.alert_id]
        chain.consumed.discard(oldest.alert_id)
