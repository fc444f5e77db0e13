"""new_origin: an established principal calls Graph from a network it never used before.

What: the engine judges every event against the principal's profile sealed one lateness
before the event (:class:`~detectors.base.Facts`): when the principal is established (out of
its learning period), its network history is not saturated, and the event's network (IPv4
/24, IPv6 /48) — and, when the ASN table knows it, its autonomous system — were never seen
before, the event has a ``new_network``. Per principal, app, network and tumbling window
(default 1 h) this makes one signal: provisional at the first such event to arrive, final
when the window closes, with the earliest event (by time, then request id) as evidence. A
network in continuous use stops being new once its first use is one lateness old, so a
replayed token active for hours gives a few windows' signals (grouped into one alert).

Why: a token replayed from the attacker's infrastructure keeps the principal's identity but
not its network; for a managed identity or a daemon app the network set is small and stable
(detection-reference §5 gap 2; Elastic X8 does this on sign-ins only). Where-from is learned
per *principal*: a user's networks span every app she uses, so opening a new client from her
usual home network is not a new origin.

Severity: high for app-only principals (their origins are fixed), medium for delegated users
(travel and new ISPs are common); fidelity medium and low: a new origin alone is a signal,
together with other stages it is an incident (``graphsentry.alerting``).

ATT&CK: TA0001 Initial Access, TA0005 Defense Evasion; T1550.001 Application Access Token,
T1078.004 Cloud Accounts.

False positives: new egress IPs after network changes, VPN changes, workloads moved to a new
region or cloud provider, travelling users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detectors._accumulators import Activity, validate_params
from detectors.base import (
    Detector,
    DetectorMeta,
    DetectorState,
    EventContext,
    Facts,
    Signal,
    Slot,
    SlotKey,
    Who,
)
from detectors.event import GraphEvent
from detectors.profile import MAX_USER_AGENT_LENGTH


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 3600.0
    """Uses of one new network within this tumbling window make one signal."""

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass(slots=True)
class Uses:
    """The events from one new network in one window: the earliest and how many."""

    first: tuple[float, str] = (float("inf"), "")
    evidence: dict[str, Any] = field(default_factory=dict)
    count: int = 0
    last_seen: float = float("-inf")
    attributes: Activity = field(default_factory=Activity)
    """Addresses, user agents, templates and request ids of all of them."""


class NewOrigin(Detector):
    meta = DetectorMeta(
        id="new_origin",
        title="Principal calls Graph from a new network",
        description="A principal with an established profile used a network (and ASN) it "
                    "never used before: possible token theft and replay.",
        severity="medium",
        tactics=("TA0001", "TA0005"),
        techniques=("T1550.001", "T1078.004"),
        stage="initial_access",
        fidelity="low",
        false_positives=("Egress IP or VPN changes", "Workloads moved to another region or cloud",
                         "Travelling users"),
        references=(
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "initial_access_entra_id_service_principal_signin_unusual_source_asn.toml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()

    def accepts(self, event: GraphEvent, facts: Facts) -> bool:
        return facts.new_network is not None

    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        network = ctx.facts.new_network
        if network is None:
            return []
        length = self.params.window_seconds
        key = (length, (event.ts // length) * length, network)
        slot = state.slots.get(key)
        if slot is None:
            slot = self.slot(state, key, Uses(), ctx, hour_aware=False)
        uses: Uses = slot.acc
        uses.count += 1
        uses.last_seen = max(uses.last_seen, event.ts)
        uses.attributes.count(event)
        if (event.ts, event.request_id) < uses.first:
            uses.first = (event.ts, event.request_id)
            uses.evidence = self._evidence(network, event, ctx)
        slot.trail = slot.trail.with_facts(ctx.facts)
        if slot.fired:
            return []
        slot.fired = True
        return [self._signal(who, key, slot, ctx, final=False)]

    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        return [self._signal(who, key, state.slots.pop(key), ctx, final=True)
                for key in self.ended(state, watermark)]

    def _signal(self, who: Who, key: SlotKey, slot: Slot, ctx: EventContext, *,
                final: bool) -> Signal:
        uses: Uses = slot.acc
        app_only = who.identity_type == "app_only"
        return self.signal(
            who, key, slot, {**uses.evidence, "requests_from_network": uses.count,
                             **uses.attributes.attribute_evidence()},
            first=uses.first[0], last=uses.last_seen, final=final, count=uses.count,
            severity="high" if app_only else "medium",
            fidelity="medium" if app_only else "low",
            title=f"{who.identity_type} principal calls Graph from new network {key[2]}",
            ctx=ctx)

    @staticmethod
    def _evidence(network: str, event: GraphEvent, ctx: EventContext) -> dict[str, Any]:
        profile = ctx.profile
        sealed = event.ts - ctx.lateness
        agent = (event.user_agent or "")[:MAX_USER_AGENT_LENGTH]
        return {
            "network": network, "ip": event.ip, "asn": ctx.asn, "asn_name": ctx.asn_name,
            "known_networks": 0 if profile is None else sum(
                1 for ts in profile.networks.values() if ts < sealed),
            "known_networks_sample": [] if profile is None else sorted(
                n for n, ts in profile.networks.items() if ts < sealed)[:10],
            "profile_first_seen": None if profile is None or profile.first_seen is None
            else datetime.fromtimestamp(profile.first_seen, UTC).isoformat(),
            "template": event.template, "method": event.method, "status": event.status,
            "user_agent": event.user_agent,
            "user_agent_known": bool(agent) and profile is not None
            and profile.knows("user_agents", agent, sealed),
            "request_id": event.request_id,
        }
