"""concurrent_origin: a principal is active from a network new to it while it is, within
minutes, also active from one of its usual networks.

What: per principal (a user across all its apps, or one service principal) and UTC day, the
time span of its requests from each network it knows and from each network new to it — both
judged against its profile sealed one lateness before each event (``Facts.new_network``: the
principal must be established, the network (and its ASN, when known) never used). A new
network crosses when its span comes within ``max_gap_seconds`` (default 10 min) of the span of
another known network of the same address family: the principal in two places at once. One
signal per (principal, day, new network); its app is that of the new network's earliest
request. Spans only grow, so whether a network crosses does not depend on arrival order.

Why: a replayed token (AiTM phishing, a token taken from a device or from a VM's metadata
service) is used from the attacker's infrastructure while its owner keeps working. A traveller
or a user whose ISP changed is at the new place only (``new_origin``: a signal); a split-tunnel
VPN uses two known networks; a dual-stack client uses IPv4 and IPv6 side by side (never paired).

ATT&CK: TA0001 Initial Access, TA0005 Defense Evasion; T1550.001 Use Alternate Authentication
Material: Application Access Token, T1078.004 Valid Accounts: Cloud Accounts.

False positives: a phone on a carrier network new to the user beside the office laptop (same
ASN as before once the ASN table is loaded: not new); Microsoft services calling for the user
from their own addresses; a laptop carried to a new network within minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors._accumulators import validate_params
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

MAX_NETWORKS = 64
"""Networks tracked per principal and day, known and new each (beyond: not tracked)."""

Span = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 86_400.0
    """Tumbling window (a UTC day) in which a principal's networks are compared."""
    max_gap_seconds: float = 600.0
    """Activity from a new and a known network at most this far apart is concurrent."""

    def __post_init__(self) -> None:
        validate_params(self)


@dataclass(slots=True)
class Origins:
    """One day of a principal's networks: the time span of its uses judged known and of those
    judged new, and for each new network its earliest request."""

    known: dict[str, Span] = field(default_factory=dict)
    new: dict[str, Span] = field(default_factory=dict)
    first: dict[str, tuple[float, str, Who, dict[str, Any]]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)

    def closest(self, new: str) -> tuple[float, str] | None:
        """(gap in seconds, known network) of the known span closest to ``new``'s span, among
        other networks of its address family (0 when they overlap), or None."""
        n0, n1 = self.new[new]
        family = ":" in new
        best: tuple[float, str] | None = None
        for known, (k0, k1) in self.known.items():
            if known == new or (":" in known) != family:
                continue
            candidate = (max(0.0, n0 - k1, k0 - n1), known)
            if best is None or candidate < best:
                best = candidate
        return best


def _widen(spans: dict[str, Span], network: str, ts: float) -> bool:
    span = spans.get(network)
    if span is None:
        if len(spans) >= MAX_NETWORKS:
            return False
        spans[network] = (ts, ts)
    else:
        spans[network] = (min(span[0], ts), max(span[1], ts))
    return True


class ConcurrentOrigin(Detector):
    meta = DetectorMeta(
        id="concurrent_origin",
        title="Principal active from a new network and a usual one at once",
        description="A principal was active from a network new to it within minutes of its "
                    "activity from one of its usual networks: a replayed token.",
        severity="high",
        tactics=("TA0001", "TA0005"),
        techniques=("T1550.001", "T1078.004"),
        stage="initial_access",
        fidelity="high",
        false_positives=("A phone on a carrier network new to the user beside the office "
                         "laptop (without the ASN table)",
                         "Microsoft services acting for the user from their own addresses"),
        references=(
            "https://attack.mitre.org/techniques/T1550/001/",
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "initial_access_entra_id_graph_single_session_from_multiple_addresses.toml",
        ),
    )
    principal_wide = True

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()

    def accepts(self, event: GraphEvent, facts: Facts) -> bool:
        return facts.new_network is not None or facts.known_network is not None

    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        facts = ctx.facts
        new = facts.new_network is not None
        network = facts.new_network or facts.known_network
        if network is None:
            return []
        length = self.params.window_seconds
        key = (length, (event.ts // length) * length, "")
        slot = state.slots.get(key)
        if slot is None:
            slot = self.slot(state, key, Origins(), ctx, hour_aware=False)
        origins: Origins = slot.acc
        if not new:
            if not _widen(origins.known, network, event.ts):
                return []
            pending = [n for n in origins.new if n not in origins.fired]
        else:
            if not _widen(origins.new, network, event.ts):
                return []
            origins.requests[network] = origins.requests.get(network, 0) + 1
            first = origins.first.get(network)
            if first is None or (event.ts, event.request_id) < first[:2]:
                origins.first[network] = (event.ts, event.request_id, Who.of(event), {
                    "ip": event.ip, "asn": ctx.asn, "asn_name": ctx.asn_name,
                    "app_id": event.app_id, "user_agent": event.user_agent,
                    "template": event.template, "request_id": event.request_id,
                    "token_id": event.token_id})
            slot.trail = slot.trail.with_facts(ctx.facts)
            pending = [] if network in origins.fired else [network]
        out: list[Signal] = []
        for candidate in pending:
            found = origins.closest(candidate)
            if found is not None and found[0] <= self.params.max_gap_seconds:
                origins.fired.add(candidate)
                out.append(self._signal(key, slot, candidate, ctx, final=False))
        return out

    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        out: list[Signal] = []
        for key in self.ended(state, watermark):
            slot = state.slots.pop(key)
            out.extend(self._signal(key, slot, network, ctx, final=True)
                       for network in sorted(slot.acc.fired))
        return out

    def _signal(self, key: SlotKey, slot: Slot, network: str, ctx: EventContext, *,
                final: bool) -> Signal:
        origins: Origins = slot.acc
        length, start, _ = key
        found = origins.closest(network)
        assert found is not None
        gap, known = found
        _, _, who, details = origins.first[network]
        n0, n1 = origins.new[network]
        k0, k1 = origins.known[known]
        evidence: dict[str, Any] = {
            "new_network": network, "known_network": known, "gap_seconds": round(gap, 3),
            "new_network_span": [n0, n1], "known_network_span": [k0, k1],
            "requests_from_new_network": origins.requests.get(network, 0),
            "known_networks": sorted(origins.known)[:10], **details,
        }
        return self.signal(who, (length, start, network), slot, evidence, first=n0, last=n1,
                           final=final, count=origins.requests.get(network, 0),
                           title=f"Active from new network {network} while active from "
                                 f"{known}", ctx=ctx)
