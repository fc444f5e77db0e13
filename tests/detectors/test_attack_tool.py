"""attack_tool: tool User-Agents (single events, late ones too) and coverage of a tool's
endpoint set per hour / day, against the principal's own peak coverage."""

from __future__ import annotations

import pytest

from detectors.attack_tool import (
    TOOL_TEMPLATES,
    AttackTool,
    Params,
    covered_templates,
    tool_of_user_agent,
)
from detectors.event import GraphEvent
from tests.detectors.factory import (
    DAY,
    HOUR,
    LATENESS,
    T0,
    daily,
    event,
    in_time_order,
    routine,
    run,
)

GRAPHRUNNER_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/103.0.0.0 Safari/537.36")
TEAMFILTRATION_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                     "Gecko) Teams/1.3.00.30866 Chrome/80.0.3987.165 Electron/8.5.1 "
                     "Safari/537.36")
# AzureHound's calls as the normaliser writes them (mixed case, {id}, API version removed).
AZUREHOUND_CALLS = [
    "/applications", "/applications/{id}/owners", "/devices", "/devices/{id}/registeredOwners",
    "/groups", "/groups/{id}/members", "/groups/{id}/owners", "/organization",
    "/roleManagement/directory/roleAssignments", "/roleManagement/directory/roleDefinitions",
    "/servicePrincipals", "/servicePrincipals/{id}/appRoleAssignedTo",
    "/servicePrincipals/{id}/owners", "/users",
]
ONE_HOUR = 3600.0


def calls(templates: list[str], start: float = T0, step: float = 1.0,
          user_agent: str = "Mozilla/5.0") -> list[GraphEvent]:
    return [event(ts=start + i * step, template=t, user_agent=user_agent,
                  family=t.split("/")[1].lower())
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
    (TEAMFILTRATION_UA, "TeamFiltration"),
])
def test_fires_on_tool_user_agents(user_agent: str, tool: str) -> None:
    result = run(AttackTool(), [event(user_agent=user_agent, status=403)])
    [signal] = result.finals()
    assert signal.dedup == f"ua:{tool}" and signal.fidelity == "high"
    assert signal.evidence["signal"] == "user_agent" and signal.evidence["tool"] == tool
    assert signal.evidence["user_agent"] == user_agent
    assert signal.evidence["user_agents"]["sample"] == [user_agent]
    assert result.alerts()  # high fidelity: an alert on its own


@pytest.mark.parametrize("user_agent", [
    "python-requests/2.32.3", "PowerShell/7.4", "curl/8.5.0", "Go-http-client/1.1",
    "azsdk-python-identity/1.16.0 Python/3.11.9", GRAPHRUNNER_UA + " Edg/103.0.1264.37", None, "",
])
def test_silent_on_generic_or_ordinary_user_agents(user_agent: str | None) -> None:
    assert run(AttackTool(), [event(user_agent=user_agent)]).signals == []
    assert tool_of_user_agent(user_agent) is None


def test_tool_requests_within_the_hour_make_one_signal_with_the_earliest_as_evidence() -> None:
    events = [event(ts=T0 + 50, user_agent="azurehound/2", ip="192.0.2.2"),
              event(ts=T0 + 10, user_agent="azurehound/2", ip="192.0.2.1"),
              event(ts=T0 + 3700, user_agent="azurehound/2")]
    result = run(AttackTool(), events)
    finals = sorted(result.finals(), key=lambda s: s.window_start)
    assert [s.window_start for s in finals] == [T0, T0 + 3600]
    assert finals[0].evidence["ip"] == "192.0.2.1" and finals[0].evidence["requests"] == 2
    assert finals[0].evidence["source_ips"]["sample"] == ["192.0.2.1", "192.0.2.2"]


def test_fires_on_a_tool_user_agent_later_than_the_lateness() -> None:
    newest = event(ts=T0 + DAY)
    late = event(ts=T0, user_agent="azurehound/2")
    result = run(AttackTool(), [newest, late])
    [signal] = result.finals()
    assert signal.dedup == f"ua:AzureHound|late|{late.request_id}"
    assert result.engine.counters.late == 1


@pytest.mark.parametrize(("count", "fires"), [(9, False), (10, True)])
def test_fires_on_coverage_of_the_azurehound_set(count: int, fires: bool) -> None:
    """0.7 of 14 templates: ten are needed."""
    result = run(AttackTool(), calls(AZUREHOUND_CALLS[:count]))
    found = [s for s in result.finals() if s.evidence["signal"] == "templates"]
    assert bool(found) is fires
    if fires:
        hourly = [s for s in found if s.window_end - s.window_start == ONE_HOUR]
        assert hourly[0].evidence["coverage"] == round(10 / 14, 3)
        assert len(hourly[0].evidence["matched_templates"]) == 10
        assert hourly[0].fidelity == "medium"


def test_templates_compare_in_canonical_form() -> None:
    spelled = [t.upper() if i % 2 else f"/v1.0{t}/" for i, t in enumerate(AZUREHOUND_CALLS)]
    assert run(AttackTool(), calls(spelled)).finals()
    assert covered_templates("AzureHound", 0b11) == sorted(TOOL_TEMPLATES["AzureHound"])[:2]


def test_silent_when_split_by_the_hour_edge_and_slow_coverage_crosses_the_day() -> None:
    split = calls(AZUREHOUND_CALLS[:7], T0 + 3590) + calls(AZUREHOUND_CALLS[7:], T0 + 3600)
    found = run(AttackTool(), split).finals()
    assert [s.window_end - s.window_start for s in found] == [DAY]


def test_silent_for_coverage_events_later_than_the_lateness() -> None:
    newest = event(ts=T0 + ONE_HOUR + LATENESS + 1)
    assert run(AttackTool(), [newest, *calls(AZUREHOUND_CALLS)]).signals == []


def test_any_status_counts_and_missing_user_agents_do_not_matter() -> None:
    denied = [event(ts=T0 + i, template=t, status=403, user_agent=None)
              for i, t in enumerate(AZUREHOUND_CALLS)]
    assert run(AttackTool(), denied).finals()


def auditor(days: int = 5) -> list[GraphEvent]:
    """A directory auditor reading every AzureHound template at 04:00 every day."""
    return routine(days, hours=(4, 5)) + daily(lambda s: calls(AZUREHOUND_CALLS, s), days,
                                               4 * HOUR)


def test_silent_for_a_principal_that_covers_the_set_as_usual() -> None:
    events = in_time_order(auditor() + calls(AZUREHOUND_CALLS, T0 + 4 * HOUR))
    result = run(AttackTool(), events)
    assert result.finals(since=T0 - DAY) == []
    learning = [s for s in result.finals() if s.context.learning]
    assert learning  # it did fire while its profile was learning


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="min_coverage: at most 1"):
        Params(min_coverage=1.5)
    with pytest.raises(ValueError, match="min_templates"):
        Params(min_templates=0)
