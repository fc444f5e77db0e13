"""attack_tool: offensive Graph tooling recognised by its User-Agent or by its endpoint set.

What, two signals per principal:

* **User-Agent**: a default or forged UA that a known tool sends (table below, from
  detection-reference §3: AzureHound, BloodHound/SharpHound, BlackCat, AADInternals, Stratus
  Red Team, GraphRunner's default forged Chrome 103 UA, the legacy Edge 18 UA of
  Graphpython/TokenTactics, TeamFiltration's example Teams UA). Generic scripting UAs
  (``python-requests``, PowerShell, ``curl``) are *not* alerts: SDK-based workloads and
  managed identities use them legitimately.
* **Endpoint coverage**: within one tumbling window (default 1 h) the principal called at
  least ``min_coverage`` (0.7) of a tool's characteristic templates and at least
  ``min_templates`` (6) of them — f-bader's F1/F2 set-coverage rules, kept incrementally per
  principal (users and service principals alike). Any status counts: a recon run with too few
  permissions is still a recon run.

One alert per (principal, tool, window): dedup = tool name, whichever signal comes first.

ATT&CK: TA0007 Discovery; T1087.004 Cloud Account, T1069.003 Cloud Groups, T1526 Cloud
Service Discovery.

False positives: red-team exercises and Stratus Red Team simulations (intended), directory
sync or audit tools whose reads resemble AzureHound's (Purple Knight, F3).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from detectors._accumulators import validate_params
from detectors.base import Detector, DetectorMeta, EventContext, Finding, window_start
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
    window_seconds: float = 3600.0
    """Tumbling window in which a tool's templates are collected (and alerts deduplicated)."""
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


def covered_templates(tool: str, mask: int) -> list[str]:
    """The templates of ``tool`` whose bits are set in ``mask`` (sorted)."""
    return [t for i, t in enumerate(_TOOL_ORDER[tool]) if mask >> i & 1]


@dataclass(slots=True)
class ToolState:
    coverage: dict[float, dict[str, Coverage]] = field(default_factory=dict)
    fired: dict[float, set[str]] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def tool_of_user_agent(user_agent: str | None) -> str | None:
    """The tool whose User-Agent this is (cached: a tenant sends a few thousand UAs at most)."""
    if not user_agent:
        return None
    return next((tool for tool, pattern in TOOL_USER_AGENTS.items()
                 if pattern.search(user_agent)), None)


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
        false_positives=("Red-team exercises and attack simulations",
                         "Directory audit or sync tools resembling AzureHound (Purple Knight)"),
        references=(
            "https://github.com/f-bader/AzSentinelQueries/blob/main/AnalyticsRules/"
            "AzureHoundReconnaissanceDetected.yaml",
            "https://github.com/elastic/detection-rules/blob/main/rules/integrations/azure/"
            "discovery_bloodhound_user_agents_detected.toml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()

    def new_state(self) -> ToolState:
        return ToolState()

    def accepts(self, event: GraphEvent, ctx: EventContext) -> bool:
        return (canonical_template(event.template) in _TEMPLATE_BITS
                or tool_of_user_agent(event.user_agent) is not None)

    def observe(self, state: ToolState, event: GraphEvent, ctx: EventContext) -> list[Finding]:
        start = window_start(event.ts, self.params.window_seconds)
        findings: list[Finding] = []
        tool = tool_of_user_agent(event.user_agent)
        if tool is not None and self._first_fire(state, start, tool):
            findings.append(self._finding(event, start, tool, event.ts, event.ts, {
                "signal": "user_agent", "tool": tool, "user_agent": event.user_agent,
                "template": event.template, "ip": event.ip, "request_id": event.request_id,
            }))
        for tool, bit in _TEMPLATE_BITS.get(canonical_template(event.template), ()):
            acc = state.coverage.setdefault(start, {}).get(tool)
            if acc is None:
                acc = state.coverage[start][tool] = Coverage()
            acc.mask |= bit
            acc.first_seen = min(acc.first_seen, event.ts)
            acc.last_seen = max(acc.last_seen, event.ts)
            if self._covers(acc, tool) and self._first_fire(state, start, tool):
                findings.append(self._finding(event, start, tool, acc.first_seen,
                                              acc.last_seen, self._coverage_evidence(tool, acc)))
        return findings

    def _covers(self, acc: Coverage, tool: str) -> bool:
        matched = acc.mask.bit_count()
        return (matched >= self.params.min_templates
                and matched / len(_TOOL_ORDER[tool]) >= self.params.min_coverage)

    @staticmethod
    def _first_fire(state: ToolState, start: float, tool: str) -> bool:
        fired = state.fired.setdefault(start, set())
        if tool in fired:
            return False
        fired.add(tool)
        return True

    @staticmethod
    def _coverage_evidence(tool: str, acc: Coverage) -> dict[str, Any]:
        templates = _TOOL_ORDER[tool]
        matched = covered_templates(tool, acc.mask)
        return {
            "signal": "templates", "tool": tool,
            "coverage": round(len(matched) / len(templates), 3),
            "matched_templates": matched,
            "missing_templates": [t for t in templates if t not in matched],
        }

    def _finding(self, event: GraphEvent, start: float, tool: str, first: float, last: float,
                 evidence: dict[str, Any]) -> Finding:
        return self.finding(event, start, start + self.params.window_seconds, first, last,
                            evidence, dedup=tool, title=f"{tool} activity ({evidence['signal']})")

    def expire(self, state: ToolState, watermark: float) -> bool:
        length = self.params.window_seconds
        for windows in (state.coverage, state.fired):
            for start in [s for s in windows if s + length < watermark]:
                del windows[start]
        return not state.coverage and not state.fired
