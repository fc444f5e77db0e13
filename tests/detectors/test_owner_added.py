"""owner_added: owners added to applications and service principals, graded by who adds them,
whether it did before (sealed) and from where."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.event import GraphEvent
from detectors.owner_added import OwnerAdded, Params, is_owner_added
from tests.detectors.factory import (
    DAY,
    HOUR,
    NEW_IP,
    OTHER_APP,
    T0,
    delegated,
    directory_write,
    event,
    in_time_order,
    routine,
    run,
)


def add_owner(template: str = "/applications/{id}/owners/$ref", target: str = OTHER_APP,
              make: Any = event, **overrides: Any) -> GraphEvent:
    return directory_write(template, target, make=make,
                           **{"family": "applications", "status": 204, **overrides})


def only(events: list[GraphEvent]) -> Any:
    [signal] = run(OwnerAdded(), in_time_order(events)).finals(since=T0)
    return signal


@pytest.mark.parametrize(("template", "kind"), [
    ("/applications/{id}/owners/$ref", "application"),
    ("/servicePrincipals/{id}/owners/$ref", "service principal"),
    ("/applications(appId='{id}')/owners/$ref", "application"),
    ("/applications/{id}/microsoft.graph.application/owners/$ref", "application"),
    ("/v1.0/servicePrincipals/{id}/owners/$ref/", "service principal"),
])
def test_fires_on_every_owner_addition(template: str, kind: str) -> None:
    signal = only([add_owner(template)])
    assert signal.evidence["object_kind"] == kind
    assert signal.title == f"Owner added to {kind} {OTHER_APP}"


@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/applications/{id}/owners"),
    ("GET", "/applications/{id}/owners/$ref"),
    ("DELETE", "/applications/{id}/owners/{id}/$ref"),
    ("POST", "/groups/{id}/owners/$ref"),
    ("POST", "/applications/{id}/owners"),
])
def test_silent_on_other_requests(method: str, template: str) -> None:
    e = add_owner(template, method=method)
    assert not is_owner_added(e)
    assert run(OwnerAdded(), [e]).signals == []


@pytest.mark.parametrize("status", [302, 400, 403, 404])
def test_silent_when_the_write_failed(status: int) -> None:
    assert run(OwnerAdded(), [add_owner(status=status)]).signals == []


@pytest.mark.parametrize("make", [event, delegated])
def test_a_first_owner_by_an_established_principal_is_high(make: Any) -> None:
    signal = only([*routine(5, make=make), add_owner(make=make)])
    assert (signal.severity, signal.fidelity) == ("high", "high")


@pytest.mark.parametrize("make", [event, delegated])
def test_a_first_owner_while_learning_is_a_signal(make: Any) -> None:
    signal = only([*routine(2, make=make), add_owner(make=make)])
    assert (signal.severity, signal.fidelity) == ("high", "medium")


def test_an_app_management_pipeline_that_adds_owners_is_recurring_and_low() -> None:
    history = [add_owner(target=f"app-{d}", ts=T0 - d * DAY + 10 * HOUR) for d in (1, 3)]
    signal = only(routine(5) + history + [add_owner()])
    assert (signal.severity, signal.fidelity) == ("low", "low")
    assert signal.evidence["recurring"] is True


@pytest.mark.parametrize(("history", "grade"), [
    ([], ("critical", "high")),
    ([add_owner(target="app-old", ts=T0 - 2 * DAY)], ("high", "medium")),
])
def test_from_a_new_network(history: list[GraphEvent], grade: tuple[str, str]) -> None:
    signal = only(routine(5) + history + [add_owner(ip=NEW_IP)])
    assert (signal.severity, signal.fidelity) == grade
    assert signal.evidence["new_network"] == "198.51.100.0/24"


def test_one_signal_per_object_and_hour() -> None:
    events = [add_owner(ts=T0 + n * 60) for n in range(4)]
    events += [add_owner(target="other-object", ts=T0 + 30)]
    finals = run(OwnerAdded(), events).finals()
    assert sorted(s.dedup for s in finals) == sorted([OTHER_APP.lower(), "other-object"])


def test_missing_target_falls_back_to_the_template() -> None:
    signal = only([add_owner(target_application=None)])
    assert signal.dedup == "/applications/{id}/owners/$ref" and signal.evidence["target"] is None


def test_fires_on_an_owner_added_later_than_the_lateness() -> None:
    result = run(OwnerAdded(), [event(ts=T0 + 2 * DAY), add_owner()])
    assert [s.final for s in result.signals] == [True]


def test_window_is_configurable() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        Params(window_seconds=-5)
