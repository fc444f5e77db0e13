"""attack_tool: tool User-Agents and coverage of tools' endpoint sets."""

from __future__ import annotations

import random

import pytest

from detectors.attack_tool import TOOL_TEMPLATES, AttackTool, Params
from detectors.base import EMPTY_CONTEXT, Finding
from detectors.event import GraphEvent
from tests.detectors.factory import T0, event

GRAPHRUNNER_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/103.0.0.0 Safari/537.36")
# AzureHound's calls as the normaliser writes them (mixed case, {id}, API version removed).
AZUREHOUND_CALLS = [
    "/applications", "/applications/{id}/owners", "/devices", "/devices/{id}/registeredOwners",
    "/groups", "/groups/{id}/members", "/groups/{id}/owners", "/organization",
    "/roleManagement/directory/roleAssignments", "/roleManagement/directory/roleDefinitions",
    "/servicePrincipals", "/servicePrincipals/{id}/appRoleAssignedTo",
    "/servicePrincipals/{id}/owners", "/users",
]


def run(events: list[GraphEvent], detector: AttackTool | None = None) -> list[Finding]:
    detector = detector or AttackTool()
    state = detector.new_state()
    return [f for e in events for f in detector.observe(state, e, EMPTY_CONTEXT)]


def calls(templates: list[str], start: float = T0, step: float = 1.0) -> list[GraphEvent]:
    return [event(ts=start + i * step, template=t, user_agent="Mozilla/5.0")
            for i, t in enumerate(templates)]


@pytest.mark.parametrize(("user_agent", "tool"), [
    ("azurehound/v2.1.7", "AzureHound"),
    ("AzureHound/v1.2.3", "AzureHound"),
    ("sharphound/2.0", "BloodHound"),
    ("Mozilla/5.0 BlackCat module", "BlackCat"),
    ("AADInternals", "AADInternals"),
    ("stratus-red-team_5a1b2c3d", "Stratus Red Team"),
    (GRAPHRUNNER_UA, "GraphRunner"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/70.0.3538.102 Safari/537.36 Edge/18.19042", "Graphpython/TokenTactics"),
])
def test_fires_on_tool_user_agents(user_agent: str, tool: str) -> None:
    [finding] = run([event(user_agent=user_agent, status=403)])
    assert finding.dedup == tool
    assert finding.evidence["signal"] == "user_agent"
    assert finding.evidence["user_agent"] == user_agent


@pytest.mark.parametrize("user_agent", [
    "python-requests/2.32.3", "PowerShell/7.4", "curl/8.5.0", "Go-http-client/1.1",
    "azsdk-python-identity/1.16.0 Python/3.11.9", GRAPHRUNNER_UA + " Edg/103.0.1264.37", None, "",
])
def test_silent_on_generic_or_ordinary_user_agents(user_agent: str | None) -> None:
    assert run([event(user_agent=user_agent)]) == []


def test_fires_on_azurehound_coverage_at_the_threshold() -> None:
    needed = 10  # 10 / 14 = 0.714 >= 0.7
    findings = run(calls(AZUREHOUND_CALLS[:needed]))
    [finding] = findings
    assert finding.dedup == "AzureHound"
    assert finding.evidence["signal"] == "templates"
    assert finding.evidence["coverage"] == round(needed / 14, 3)
    assert len(finding.evidence["missing_templates"]) == 14 - needed
    assert (finding.first_seen, finding.last_seen) == (T0, T0 + needed - 1)


def test_silent_just_below_the_coverage_threshold() -> None:
    assert run(calls(AZUREHOUND_CALLS[:9] * 5)) == []


def test_fires_on_graphrunner_spellings_with_keys_and_versions() -> None:
    templates = ["/me", "/organization", "/domains", "/policies/authorizationPolicy",
                 "/roleManagement/directory/estimateAccess", "/search/query",
                 "/servicePrincipals(appId='{id}')/appRoleAssignedTo", "/users/{upn}",
                 "/v1.0/groups/", "/groups/{id}/members"]
    [finding] = run(calls(templates))
    assert finding.dedup == "GraphRunner"


def test_silent_when_calls_are_spread_over_two_windows() -> None:
    half = calls(AZUREHOUND_CALLS[:7], start=T0 + 3000) + calls(AZUREHOUND_CALLS[7:],
                                                                start=T0 + 3600)
    assert run(half) == []


def test_min_templates_guards_small_sets() -> None:
    detector = AttackTool(Params(min_coverage=0.1, min_templates=3))
    assert run(calls(AZUREHOUND_CALLS[:2]), detector) == []
    assert len(run(calls(AZUREHOUND_CALLS[:3]), detector)) == 1


def test_one_alert_per_tool_and_window_whichever_signal_comes_first() -> None:
    events = [event(ts=T0, user_agent="azurehound/v2"), *calls(AZUREHOUND_CALLS, start=T0 + 1)]
    findings = run(events)
    assert [f.evidence["signal"] for f in findings] == ["user_agent"]
    later = run([*events, event(ts=T0 + 3600, user_agent="azurehound/v2")])
    assert [f.window_start for f in later] == [T0, T0 + 3600]


def test_coverage_alert_does_not_depend_on_arrival_order() -> None:
    events = calls(AZUREHOUND_CALLS)
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    assert [f.alert_id for f in run(events)] == [f.alert_id for f in run(shuffled)]


def test_tool_template_sets_are_canonical() -> None:
    assert all(t == t.lower() and t.startswith("/") for s in TOOL_TEMPLATES.values() for t in s)


def test_expire_forgets_closed_windows() -> None:
    detector = AttackTool()
    state = detector.new_state()
    for e in calls(AZUREHOUND_CALLS[:3]):
        detector.observe(state, e, EMPTY_CONTEXT)
    assert not detector.expire(state, T0 + 3600)
    assert detector.expire(state, T0 + 3601)


@pytest.mark.parametrize("values", [{"min_coverage": 1.5}, {"min_coverage": 0},
                                    {"min_templates": "6"}])
def test_params_reject_nonsense(values: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="min_"):
        Params(**values)  # type: ignore[arg-type]
