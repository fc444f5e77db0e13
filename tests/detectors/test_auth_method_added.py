"""auth_method_added: authentication methods registered for a user, graded by whose methods
they are, the method (a Temporary Access Pass), and the caller's usual network and client."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.auth_method_added import AuthMethodAdded, Params, registered_method_type
from detectors.event import GraphEvent
from tests.detectors.factory import (
    DAY,
    GRAPH,
    HOUR,
    NEW_IP,
    OTHER_APP,
    OTHER_USER,
    T0,
    USER,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)


def register(method_type: str = "fido2Methods", target: str = "me", make: Any = delegated,
             **overrides: Any) -> GraphEvent:
    template = (f"/me/authentication/{method_type}" if target == "me"
                else f"/users/{{id}}/authentication/{method_type}")
    fields: dict[str, Any] = {
        "ts": T0 + 10 * HOUR, "method": "POST", "template": template,
        "uri": f"{GRAPH}{template.replace('{id}', target)}", "target_user": target,
        "family": "authentication_methods", "category": "authentication_methods",
        "is_write": True, "status": 201,
    }
    fields.update(overrides)
    return make(**fields)


def usual_days(make: Any = delegated) -> list[GraphEvent]:
    """An administrator's usual network (HOME_IP) and client (APP), five days."""
    return routine(5, make=make)


def only(events: list[GraphEvent]) -> Any:
    [signal] = run(AuthMethodAdded(), in_time_order(events)).finals(since=T0)
    return signal


@pytest.mark.parametrize(("case", "grade"), [
    ("self, usual network and client", ("low", "low")),
    ("self, new network", ("medium", "medium")),
    ("self, new client", ("medium", "medium")),
    ("another user", ("high", "high")),
    ("another user, new network", ("critical", "high")),
    ("a TAP for another user", ("critical", "high")),
    ("a TAP for herself", ("low", "low")),
])
def test_grade_table(case: str, grade: tuple[str, str]) -> None:
    registration = {
        "self, usual network and client": register(),
        "self, new network": register(ip=NEW_IP),
        "self, new client": register(app_id=OTHER_APP),
        "another user": register(target=OTHER_USER),
        "another user, new network": register(target=OTHER_USER, ip=NEW_IP),
        "a TAP for another user": register("temporaryAccessPassMethods", OTHER_USER),
        "a TAP for herself": register("temporaryAccessPassMethods"),
    }[case]
    signal = only([*usual_days(), registration])
    assert (signal.severity, signal.fidelity) == grade


def test_fires_for_herself_by_her_own_id_as_self_registration() -> None:
    signal = only([*usual_days(), register(target=USER.upper())])
    assert signal.evidence["target_is_caller"] is True
    assert signal.evidence["target_user"] == USER.lower()
    assert signal.title == "fido2Methods registered for the caller itself"


def test_an_app_only_caller_always_acts_on_another_user() -> None:
    signal = only([*routine(5), register(target=USER, make=event)])
    assert (signal.severity, signal.fidelity) == ("high", "high")
    assert signal.title == f"fido2Methods registered for user {USER}"


def test_while_learning_a_new_network_is_not_known() -> None:
    signal = only([register(ip=NEW_IP)])
    assert (signal.severity, signal.fidelity) == ("low", "low") and signal.context.learning


@pytest.mark.parametrize(("method", "template", "fires"), [
    ("POST", "/users/{id}/authentication/phoneMethods", True),
    ("PUT", "/users/{id}/authentication/softwareOathMethods/{id}", True),
    ("PATCH", "/me/authentication/emailMethods/{id}", True),
    ("POST", "/users/{id}/authentication/microsoft.graph.x/fido2Methods", True),
    ("POST", "/users/{id}/authentication/phoneMethods/{id}/enableSmsSignIn", False),
    ("POST", "/users/{id}/authentication/methods/{id}/resetPassword", False),
    ("GET", "/users/{id}/authentication/phoneMethods", False),
    ("DELETE", "/users/{id}/authentication/phoneMethods/{id}", False),
])
def test_which_requests_are_registrations(method: str, template: str, fires: bool) -> None:
    e = register(target=OTHER_USER, method=method, template=template)
    assert bool(run(AuthMethodAdded(), [e]).finals()) is fires
    assert (registered_method_type(e) is not None) is fires


@pytest.mark.parametrize("status", [204, 200])
def test_fires_on_any_2xx(status: int) -> None:
    assert run(AuthMethodAdded(), [register(status=status)]).finals()


@pytest.mark.parametrize("status", [302, 400, 403, 409])
def test_silent_when_the_registration_failed(status: int) -> None:
    assert run(AuthMethodAdded(), [register(status=status)]).signals == []


def test_method_types_are_spelled_as_graph_spells_them() -> None:
    e = register("TEMPORARYACCESSPASSMETHODS", OTHER_USER)
    assert registered_method_type(e) == "temporaryAccessPassMethods"
    assert registered_method_type(register("customMethods", OTHER_USER)) == "customMethods"


def test_one_signal_per_target_method_and_hour() -> None:
    events = [register(target=OTHER_USER, ts=T0 + n * 600) for n in range(3)]
    events += [register(target="u-2", ts=T0 + 700), register("phoneMethods", OTHER_USER,
                                                             ts=T0 + 800)]
    finals = run(AuthMethodAdded(), events).finals()
    assert sorted(s.dedup for s in finals) == sorted([
        f"{OTHER_USER}:fido2Methods", "u-2:fido2Methods", f"{OTHER_USER}:phoneMethods"])


def test_missing_target_is_unknown_another_user() -> None:
    e = register(target=OTHER_USER, target_user=None)
    [signal] = run(AuthMethodAdded(), [e]).finals()
    assert signal.evidence["target_user"] == "unknown"
    # for another user, by a caller without history (learning): high, a signal
    assert (signal.severity, signal.fidelity) == ("high", "medium")
    [signal] = run(AuthMethodAdded(), in_time_order([*routine(5, make=delegated), e])).finals()
    assert (signal.severity, signal.fidelity) == ("high", "high")


def test_fires_on_a_registration_later_than_the_lateness() -> None:
    result = run(AuthMethodAdded(), [delegated(ts=T0 + DAY), register(target=OTHER_USER)])
    [signal] = result.finals()
    assert "|late|" in signal.dedup and signal.final


def test_window_is_configurable() -> None:
    events = [register(ts=T0 + n * 120) for n in range(3)]
    assert len(run(AuthMethodAdded(Params(window_seconds=60)), events).finals()) == 3
