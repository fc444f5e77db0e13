"""new_origin: an established principal calls Graph from a network it never used before.

What: the principal's history (before this event) is at least ``min_history_seconds`` old and
holds at least ``min_history_events`` events, and the event's network (IPv4 /24, IPv6 /48) was
never seen for it at or before the event's time. When the ASN table knows the event's ASN and
the principal already used that ASN, a new prefix inside it (a new address of the same cloud or
ISP) stays silent unless ``alert_on_new_prefix_in_known_asn``. A principal whose network
history is saturated (hundreds of networks: a roaming user) has no usable baseline: silent.

Why: a token replayed from the attacker's infrastructure keeps the principal's identity but
not its network; for a managed identity or a daemon app the network set is small and stable
(detection-reference §5 gap 2; Elastic X8 does this on sign-ins only).

Fires once per (principal, network): window start 0 and dedup = network make the id independent
of arrival order. Severity: high for app-only principals (their origins are fixed), medium
for delegated users (travel and new ISPs are common).

ATT&CK: TA0001 Initial Access, TA0005 Defense Evasion; T1550.001 Application Access Token,
T1078.004 Cloud Accounts.

False positives: new egress IPs after network changes, VPN changes, workloads moved to a new
region or cloud provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import validate_params
from detectors.base import Detector, DetectorMeta, EventContext, Finding, sample
from detectors.event import GraphEvent
from detectors.history import MAX_USER_AGENT_LENGTH, PrincipalHistory
from detectors.networks import network_of

# Networks remembered as already alerted, per principal (beyond it, the alert id still dedups).
MAX_ALERTED_NETWORKS = 1024


@dataclass(frozen=True, slots=True)
class Params:
    min_history_seconds: float = 86_400.0
    """Age of the principal's history (since first seen) before new networks count."""
    min_history_events: int = 50
    """Events in the principal's history before new networks count."""
    alert_on_new_prefix_in_known_asn: bool = False
    """Alert on a new network even when its ASN is one the principal already used."""

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass(slots=True)
class AlertedNetworks:
    """Network → time of the event that alerted. Only needed while a late event could still
    predate the network's first use in the history: once the watermark passes that time the
    history itself knows the network, so the entry expires."""

    networks: dict[str, float] = field(default_factory=dict)


class NewOrigin(Detector):
    meta = DetectorMeta(
        id="new_origin",
        title="Principal calls Graph from a new network",
        description="A principal with an established history used a network (and ASN) it "
                    "never used before: possible token theft and replay.",
        severity="medium",
        tactics=("TA0001", "TA0005"),
        techniques=("T1550.001", "T1078.004"),
        stage="initial_access",
        false_positives=("Egress IP or VPN changes", "Workloads moved to another region or cloud",
                         "Travelling users"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "initial_access_entra_id_service_principal_signin_unusual_source_asn.toml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()

    def new_state(self) -> AlertedNetworks:
        return AlertedNetworks()

    def accepts(self, event: GraphEvent, ctx: EventContext) -> bool:
        """Only an event from a network its history did not know by then can alert."""
        history = ctx.history
        network = network_of(event.ip)
        if network is None or not isinstance(history, PrincipalHistory):
            return False
        seen = history.networks.get(network)  # history.knew_before, inlined
        return seen is None or seen > event.ts

    def observe(self, state: AlertedNetworks, event: GraphEvent,
                ctx: EventContext) -> list[Finding]:
        history = ctx.history
        network = network_of(event.ip)
        if (network is None or not isinstance(history, PrincipalHistory)
                or network in state.networks or not self._is_new(history, network, event, ctx)):
            return []
        if len(state.networks) < MAX_ALERTED_NETWORKS:
            state.networks[network] = event.ts
        severity = "high" if event.identity_type == "app_only" else "medium"
        # Window start 0 ("ever") keeps the id order-independent; the end says "up to here".
        return [self.finding(event, 0.0, event.ts, event.ts, event.ts,
                             self._evidence(history, network, event, ctx),
                             dedup=network, severity=severity,
                             title=f"{event.identity_type} principal calls Graph from new "
                                   f"network {network}")]

    def _is_new(self, history: PrincipalHistory, network: str, event: GraphEvent,
                ctx: EventContext) -> bool:
        p = self.params
        if not history.established(event.ts, p.min_history_seconds, p.min_history_events):
            return False
        if history.saturated(history.networks) or history.knew_before(
                history.networks, network, event.ts):
            return False
        known_asn = ctx.asn is not None and history.knew_before(history.asns, ctx.asn, event.ts)
        return not known_asn or p.alert_on_new_prefix_in_known_asn

    @staticmethod
    def _evidence(history: PrincipalHistory, network: str, event: GraphEvent,
                  ctx: EventContext) -> dict[str, Any]:
        first_seen = history.first_seen or event.ts
        return {
            "network": network,
            "ip": event.ip,
            "asn": ctx.asn,
            "asn_name": ctx.asn_name,
            "asn_known": ctx.asn is not None
            and history.knew_before(history.asns, ctx.asn, event.ts),
            "known_networks": len(history.networks),
            "known_networks_sample": sample(history.networks),
            "known_asns_sample": sorted(history.asns)[:10],
            "history_age_seconds": round(event.ts - first_seen, 3),
            "history_events": history.event_count,
            "template": event.template,
            "method": event.method,
            "status": event.status,
            "user_agent": event.user_agent,
            "user_agent_known": bool(event.user_agent) and history.knew_before(
                history.user_agents, (event.user_agent or "")[:MAX_USER_AGENT_LENGTH], event.ts),
            "request_id": event.request_id,
        }

    def expire(self, state: AlertedNetworks, watermark: float) -> bool:
        for network in [n for n, ts in state.networks.items() if ts < watermark]:
            del state.networks[network]
        return not state.networks
