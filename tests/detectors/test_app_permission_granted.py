"""app_permission_granted: app role assignments and delegated permission grants, graded by
who grants (app-only, delegated), whether it did before (sealed), and from where."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.app_permission_granted import AppPermissionGranted, Params, grant_kind
from detectors.event import GraphEvent
from tests.detectors.factory import (
    DAY,
    HOUR,
    LATENESS,
    NEW_IP,
    OTHER_SP,
    T0,
    delegated,
    directory_write,
    event,
    in_time_order,
    routine,
    run,
)


def grant(template: str = "/servicePrincipals/{id}/appRoleAssignedTo", method: str = "POST",
          target: str | None = OTHER_SP, make: Any = event, **overrides: Any) -> GraphEvent:
    return directory_write(template, target or "x", method=method, make=make,
                           **{"target_application": target, **overrides})


def only(events: list[GraphEvent]) -> Any:
    [signal] = run(AppPermissionGranted(), in_time_order(events)).finals(since=T0)
    return signal


@pytest.mark.parametrize(("method", "template", "kind"), [
    ("POST", "/servicePrincipals/{id}/appRoleAssignments", "app_role"),
    ("POST", "/servicePrincipals/{id}/appRoleAssignedTo", "app_role"),
    ("POST", "/users/{id}/appRoleAssignments", "app_role"),
    ("POST", "/groups/{id}/appRoleAssignments", "app_role"),
    ("POST", "/servicePrincipals(appId='{id}')/appRoleAssignedTo", "app_role"),
    ("POST", "/servicePrincipals/{id}/microsoft.graph.servicePrincipal/appRoleAssignedTo",
     "app_role"),
    ("POST", "/oauth2PermissionGrants", "delegated_grant"),
    ("PATCH", "/oauth2PermissionGrants/{id}", "delegated_grant"),
    ("PATCH", "/oauth2PermissionGrants/AbCdEf-123_x", "delegated_grant"),
])
def test_fires_on_every_grant(method: str, template: str, kind: str) -> None:
    signal = only([grant(template, method)])
    assert signal.evidence["grant_kind"] == kind
    assert grant_kind(grant(template, method)) == kind


@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/servicePrincipals/{id}/appRoleAssignedTo"),
    ("DELETE", "/servicePrincipals/{id}/appRoleAssignedTo/{id}"),
    ("POST", "/oauth2PermissionGrants/{id}/extra"),
    ("GET", "/oauth2PermissionGrants"),
    ("POST", "/servicePrincipals/{id}/owners/$ref"),
])
def test_silent_on_other_requests(method: str, template: str) -> None:
    assert run(AppPermissionGranted(), [grant(template, method)]).signals == []


@pytest.mark.parametrize("status", [302, 400, 403])
def test_silent_when_the_grant_failed(status: int) -> None:
    assert run(AppPermissionGranted(), [grant(status=status)]).signals == []


@pytest.mark.parametrize("make", [event, delegated])
def test_a_first_grant_by_an_established_principal_is_high(make: Any) -> None:
    signal = only([*routine(5, make=make), grant(make=make)])
    assert (signal.severity, signal.fidelity) == ("high", "high")
    assert signal.evidence["recurring"] is False


@pytest.mark.parametrize("make", [event, delegated])
def test_a_first_grant_while_learning_is_a_signal(make: Any) -> None:
    signal = only([*routine(2, make=make), grant(make=make)])
    assert (signal.severity, signal.fidelity) == ("high", "medium")


def test_a_governance_app_granting_every_day_is_recurring_and_low() -> None:
    history = [grant(ts=T0 - d * DAY + 10 * HOUR, target=f"sp-{d}") for d in range(1, 6)]
    signal = only(routine(5) + history + [grant(target="sp-new")])
    assert (signal.severity, signal.fidelity) == ("low", "low")
    assert signal.evidence["recurring"] is True and signal.title == "App role granted (recurring)"


def test_a_role_grant_does_not_make_a_delegated_grant_recurring() -> None:
    history = [grant(ts=T0 - DAY + 10 * HOUR)]
    signal = only(routine(5) + history + [grant("/oauth2PermissionGrants", target=None)])
    assert signal.evidence["recurring"] is False and signal.severity == "high"


@pytest.mark.parametrize(("gap", "recurring"), [(LATENESS, False), (LATENESS + 1, True)])
def test_recurring_is_read_one_lateness_before_the_event(gap: float, recurring: bool) -> None:
    earlier = grant(ts=T0 + 10 * HOUR - gap, target="sp-a")
    finals = run(AppPermissionGranted(), in_time_order(
        [*routine(5), earlier, grant(target="sp-b")])).finals(since=T0)
    [signal] = [s for s in finals if s.dedup.endswith("|sp-b")]
    assert signal.evidence["recurring"] is recurring


@pytest.mark.parametrize(("history", "grade"), [
    ([], ("critical", "high")),
    ([grant(ts=T0 - 2 * DAY, target="sp-old")], ("high", "medium")),
])
def test_from_a_new_network(history: list[GraphEvent], grade: tuple[str, str]) -> None:
    signal = only(routine(5) + history + [grant(ip=NEW_IP)])
    assert (signal.severity, signal.fidelity) == grade


def test_one_signal_per_template_target_and_hour() -> None:
    events = [grant(ts=T0 + n * 60) for n in range(3)] + [grant(ts=T0 + 10, target="sp-2")]
    finals = run(AppPermissionGranted(), events).finals()
    assert sorted(s.dedup for s in finals) == [
        f"/serviceprincipals/{{id}}/approleassignedto|{OTHER_SP}",
        "/serviceprincipals/{id}/approleassignedto|sp-2"]
    assert max(s.evidence["matches"] for s in finals) == 3


def test_missing_target_still_fires() -> None:
    signal = only([grant(target=None, target_user=None)])
    assert signal.evidence["target"] is None


def test_fires_on_a_grant_later_than_the_lateness() -> None:
    result = run(AppPermissionGranted(), [event(ts=T0 + 2 * DAY), grant()])
    assert [s.final for s in result.signals] == [True]


def test_window_is_configurable() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        Params(window_seconds=0)
    events = [grant(ts=T0 + n * 120) for n in range(3)]
    assert len(run(AppPermissionGranted(Params(window_seconds=60)), events).finals()) == 3
