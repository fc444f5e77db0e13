"""attack_tool: offensive Graph tooling recognised by its User-Agent or by its endpoint set.

What, two signals per principal and app:

* **User-Agent** (high fidelity): a default or forged UA that a known tool sends (table below,
  from detection-reference §3: AzureHound, BloodHound/SharpHound, BlackCat, AADInternals,
  Stratus Red Team, GraphRunner's default forged Chrome 103 UA, the legacy Edge 18 UA of
  Graphpython/TokenTactics, TeamFiltration's example Teams UA). Generic scripting UAs
  (``python-requests``, PowerShell, ``curl``) are *not* signals: SDK-based workloads and
  managed identities use them legitimately. One signal per (tool, hour); like every
  single-event rule it also examines events later than the allowed lateness.
* **Endpoint coverage** (medium fidelity): within one tumbling window (1 hour, 1 day) the
  principal called at least ``min_coverage`` (0.7) of a tool's characteristic templates and
  at least ``min_templates`` (6) of them — f-bader's F1/F2 set-coverage rules, kept
  incrementally — and its own sealed peak coverage of that tool's set (last 14 days, same
  window length) stays below ``min_coverage``: a governance app that reads users, groups and
  roles every hour learns that as usual. Any status counts: a recon run with too few
  permissions is still a recon run.

ATT&CK: TA0007 Discovery; T1087.004 Cloud Account, T1069.003 Cloud Groups, T1526 Cloud
Service Discovery.

False positives: red-team exercises and Stratus Red Team simulations (intended), directory
sync or audit tools whose reads resemble AzureHound's (Purple Knight, F3) in their learning
period.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
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
from detectors.templates import canonical_template

# Tool name → User-Agent pattern (searched, case-insensitive).
TOOL_USER_AGENTS: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.IGNORECASE) for
                                                name, pattern in (
    ("AzureHound", r"azurehound/"),
    ("BloodHound", r"(?:sharp|blood)hound/"),
    ("BlackCat", r"blackcat"),
    ("AADInternals", r"aadinternals"),
    ("Stratus Red Team", r"^stratus-red-team_"),
    ("GraphRunner", r"^Mozilla/5\.0 \(Macintosh; Intel Mac OS X 10_15_7\) AppleWebKit/537\.36 "
                    r"\(KHTML, like Gecko\) Chrome/103\.0\.0\.0 Safari/537\.36$"),
    ("Graphpython/TokenTactics", r"Chrome/70\.0\.3538\.102 Safari/537\.36 Edge/18\.19042"),
    ("TeamFiltration", r"Teams/1\.3\.00\.30866 Chrome/80\.0\.3987\.165 Electron/8\.5\.1"),
    # roadlib's -ua aliases (dirkjanm/ROADtools roadlib/constants.py WELLKNOWN_USER_AGENTS) end
    # in versions no browser sends: "Safari/537.3", "Safari/604.", "Safari/605.1.1". ROADrecon's
    # default, aiohttp's "Python/3.x aiohttp/3.x", is a generic scripting UA: not listed (its
    # endpoint set below catches a default-UA walk).
    ("ROADrecon", r"Safari/(?:537\.3|604\.|605\.1\.1)$"),
)}

# Tool name → characteristic templates in canonical form (detectors.templates).
TOOL_TEMPLATES: dict[str, frozenset[str]] = {
    # f-bader F1 (AzureHound list/per-object calls).
    "AzureHound": frozenset({
        "/applications", "/applications/{id}/owners", "/devices", "/devices/{id}/registeredowners",
        "/groups", "/groups/{id}/members", "/groups/{id}/owners", "/organization",
        "/rolemanagement/directory/roleassignments", "/rolemanagement/directory/roledefinitions",
        "/serviceprincipals", "/serviceprincipals/{id}/approleassignedto",
        "/serviceprincipals/{id}/owners", "/users",
    }),
    # f-bader F2 plus GraphRunner's recon calls from detection-reference §3.
    "GraphRunner": frozenset({
        "/applications", "/domains", "/groups", "/groups/{id}/members", "/me", "/organization",
        "/policies/authorizationpolicy", "/rolemanagement/directory/estimateaccess",
        "/search/query", "/serviceprincipals", "/serviceprincipals/{id}",
        "/serviceprincipals/{id}/approleassignedto", "/users", "/users/{id}",
    }),
    # roadrecon gather (dirkjanm/ROADtools roadrecon/gather.py) on Azure AD Graph: its phase-1
    # object lists and the per-object phase-2 calls every tenant has (templates after the
    # tenant segment: graphsentry.ingest.aadgraph). Optional calls (administrativeUnits
    # members, --mfa, phase 3 of large tenants) are left out so that a small tenant's walk
    # still covers the set.
    "ROADrecon": frozenset({
        "/users", "/tenantdetails", "/policies", "/serviceprincipals", "/groups",
        "/administrativeunits", "/applications", "/devices", "/directoryroles",
        "/roledefinitions", "/contacts", "/oauth2permissiongrants", "/authorizationpolicy",
        "/settings", "/groups/{id}/$links/members", "/groups/{id}/$links/owners",
        "/directoryroles/{id}/$links/members", "/serviceprincipals/{id}/approleassignedto",
        "/serviceprincipals/{id}/approleassignments", "/roleassignments",
        "/eligibleroleassignments", "/applicationrefs/{id}",
    }),
}


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[float, ...] = (3600.0, 86_400.0)
    """Tumbling windows in which a tool's templates are collected (1 h, 1 day)."""
    user_agent_window_seconds: float = 3600.0
    """Requests with one tool's User-Agent within this window make one signal."""
    min_coverage: float = 0.7
    """Share of a tool's characteristic templates called within one window, in (0, 1]."""
    min_templates: int = 6
    """Least number of a tool's templates called within one window."""

    def __post_init__(self) -> None:
        validate_params(self)
        if self.min_coverage > 1:
            raise ValueError(f"Params.min_coverage: at most 1, got {self.min_coverage!r}")


# Template → (tool, bit) for every tool listing it: a window's coverage of a tool is a bit mask.
_TOOL_ORDER: dict[str, tuple[str, ...]] = {tool: tuple(sorted(templates))
                                           for tool, templates in TOOL_TEMPLATES.items()}
_TEMPLATE_BITS: dict[str, tuple[tuple[str, int], ...]] = {}
for _tool, _ordered in _TOOL_ORDER.items():
    for _index, _template in enumerate(_ordered):
        _TEMPLATE_BITS[_template] = (*_TEMPLATE_BITS.get(_template, ()), (_tool, 1 << _index))


@dataclass(slots=True)
class Coverage:
    """A tool's characteristic templates called in one window (bits in ``_TOOL_ORDER``)."""

    mask: int = 0
    first_seen: float = math.inf
    last_seen: float = -math.inf
    requests: int = 0


@dataclass(slots=True)
class AgentUses:
    """Requests with a tool's User-Agent in one window: the earliest and how many."""

    first: tuple[float, str] = (math.inf, "")
    evidence: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    last_seen: float = -math.inf
    attributes: Activity = field(default_factory=Activity)
    """Addresses, user agents, templates and request ids of all of them."""


def covered_templates(tool: str, mask: int) -> list[str]:
    """The templates of ``tool`` whose bits are set in ``mask`` (sorted)."""
    return [t for i, t in enumerate(_TOOL_ORDER[tool]) if mask >> i & 1]


@lru_cache(maxsize=4096)
def tool_of_user_agent(user_agent: str | None) -> str | None:
    """The tool whose User-Agent this is (cached: a tenant sends a few thousand UAs at most)."""
    if not user_agent:
        return None
    return next((tool for tool, pattern in TOOL_USER_AGENTS.items()
                 if pattern.search(user_agent)), None)


UA_PREFIX, TEMPLATES_PREFIX = "ua:", "templates:"
_UA_KEYS = {tool: UA_PREFIX + tool for tool in TOOL_USER_AGENTS}
_TEMPLATE_KEYS = {tool: TEMPLATES_PREFIX + tool for tool in TOOL_TEMPLATES}


class AttackTool(Detector):
    meta = DetectorMeta(
        id="attack_tool",
        title="Offensive Graph tooling",
        description="A principal used a known attack tool's User-Agent or called most of a "
                    "tool's characteristic endpoints within one window.",
        severity="high",
        tactics=("TA0007",),
        techniques=("T1087.004", "T1069.003", "T1526"),
        stage="discovery",
        fidelity="high",
        false_positives=("Red-team exercises and attack simulations",
                         "Directory audit or sync tools resembling AzureHound (Purple Knight)"),
        references=(
            "https://github.com/f-bader/AzSentinelQueries/blob/main/AnalyticsRules/"
            "AzureHoundReconnaissanceDetected.yaml",
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "discovery_bloodhound_user_agents_detected.toml",
        ),
    )
    windowless = True

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()

    def accepts(self, event: GraphEvent, facts: Facts) -> bool:
        return (canonical_template(event.template) in _TEMPLATE_BITS
                or tool_of_user_agent(event.user_agent) is not None)

    def observe(self, state: DetectorState, event: GraphEvent, ctx: EventContext,
                who: Who) -> list[Signal]:
        out: list[Signal] = []
        tool = tool_of_user_agent(event.user_agent)
        if tool is not None:
            length = self.params.user_agent_window_seconds
            key = (length, (event.ts // length) * length, _UA_KEYS[tool])
            slot = state.slots.get(key)
            if slot is None:
                slot = self.slot(state, key, AgentUses(), ctx, hour_aware=False)
            self._use(slot, event, ctx, tool)
            if not slot.fired:
                slot.fired = True
                out.append(self._signal(who, key, slot, ctx, final=False))
        for tool, bit in _TEMPLATE_BITS.get(canonical_template(event.template), ()):
            for length in self.params.windows:
                key = (length, (event.ts // length) * length, _TEMPLATE_KEYS[tool])
                slot = state.slots.get(key)
                if slot is None:
                    slot = self._coverage_slot(state, key, ctx, who)
                acc: Coverage = slot.acc
                acc.mask |= bit
                acc.requests += 1
                acc.first_seen = min(acc.first_seen, event.ts)
                acc.last_seen = max(acc.last_seen, event.ts)
                slot.trail = slot.trail.with_facts(ctx.facts)
                if not slot.fired and self._covers(acc, tool, slot):
                    slot.fired = True
                    out.append(self._signal(who, key, slot, ctx, final=False))
        return out

    def observe_late(self, event: GraphEvent, ctx: EventContext, who: Who) -> list[Signal]:
        tool = tool_of_user_agent(event.user_agent)
        if tool is None:
            return []
        length = self.params.user_agent_window_seconds
        key = (length, (event.ts // length) * length,
               f"{UA_PREFIX}{tool}|late|{event.request_id}")
        slot = Slot(AgentUses(), fired=True)
        self._use(slot, event, ctx, tool)
        return [self._signal(who, key, slot, ctx, final=True)]

    def close(self, state: DetectorState, watermark: float, ctx: EventContext,
              who: Who) -> list[Signal]:
        out: list[Signal] = []
        for key in self.ended(state, watermark):
            slot = state.slots.pop(key)
            dedup = key[2]
            if dedup.startswith(UA_PREFIX):
                out.append(self._signal(who, key, slot, ctx, final=True))
                continue
            tool = dedup[len(TEMPLATES_PREFIX):]
            acc: Coverage = slot.acc
            if slot.fired or self._covers(acc, tool, slot):
                out.append(self._signal(who, key, slot, ctx, final=True))
            if ctx.profile is not None:
                ctx.profile.record(self._measure_key(who, tool, key[0]), key[1],
                                   self._coverage(acc, tool), self.params.min_coverage / 2)
        return out

    def _use(self, slot: Slot, event: GraphEvent, ctx: EventContext, tool: str) -> None:
        uses: AgentUses = slot.acc
        uses.requests += 1
        uses.last_seen = max(uses.last_seen, event.ts)
        uses.attributes.count(event)
        if (event.ts, event.request_id) < uses.first:
            uses.first = (event.ts, event.request_id)
            uses.evidence = {"signal": "user_agent", "tool": tool,
                             "user_agent": event.user_agent, "template": event.template,
                             "ip": event.ip, "request_id": event.request_id}
        slot.trail = slot.trail.with_facts(ctx.facts)

    def _measure_key(self, who: Who, tool: str, length: float) -> tuple[str, str, float]:
        return (who.app_id, f"{self.meta.id}.coverage.{tool}", length)

    def _coverage_slot(self, state: DetectorState, key: SlotKey, ctx: EventContext,
                       who: Who) -> Slot:
        slot = self.slot(state, key, Coverage(), ctx, hour_aware=False)
        if ctx.profile is not None and not slot.learning:
            tool = key[2][len(TEMPLATES_PREFIX):]
            slot.peaks = (ctx.profile.peak(self._measure_key(who, tool, key[0]),
                                           key[1] - ctx.lateness - ctx.close_slack),)
        return slot

    @staticmethod
    def _coverage(acc: Coverage, tool: str) -> float:
        return acc.mask.bit_count() / len(_TOOL_ORDER[tool])

    def _covers(self, acc: Coverage, tool: str, slot: Slot) -> bool:
        p = self.params
        if acc.mask.bit_count() < p.min_templates or self._coverage(acc, tool) < p.min_coverage:
            return False
        return slot.peaks is None or slot.peaks[0] < p.min_coverage

    def _signal(self, who: Who, key: SlotKey, slot: Slot, ctx: EventContext, *,
                final: bool) -> Signal:
        dedup = key[2]
        if dedup.startswith(UA_PREFIX):
            uses: AgentUses = slot.acc
            tool = uses.evidence["tool"]
            return self.signal(who, key, slot, {**uses.evidence, "requests": uses.requests,
                                                **uses.attributes.attribute_evidence()},
                               first=uses.first[0], last=uses.last_seen, final=final,
                               count=uses.requests, title=f"{tool} activity (user agent)",
                               ctx=ctx)
        tool = dedup[len(TEMPLATES_PREFIX):]
        acc: Coverage = slot.acc
        templates = _TOOL_ORDER[tool]
        matched = covered_templates(tool, acc.mask)
        evidence = {
            "signal": "templates", "tool": tool, "window_seconds": key[0],
            "coverage": round(len(matched) / len(templates), 3),
            "matched_templates": matched,
            "missing_templates": [t for t in templates if t not in matched],
            "baseline_peak_coverage": None if slot.peaks is None else slot.peaks[0],
        }
        return self.signal(who, key, slot, evidence, first=acc.first_seen, last=acc.last_seen,
                           final=final, count=acc.requests, fidelity="medium",
                           title=f"{tool} activity (endpoint set)", ctx=ctx)
