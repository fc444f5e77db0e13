"""auth_method_added: authentication method registrations for users."""

from __future__ import annotations

import pytest

from detectors.auth_method_added import AuthMethodAdded
from detectors.base import EMPTY_CONTEXT, Finding
from detectors.event import GraphEvent
from tests.detectors.factory import SP, T0, USER, delegated, event

VICTIM = "66666666-6666-6666-6666-666666666666"


def register(method_type: str = "phoneMethods", target: str | None = VICTIM,
             delegated_call: bool = False, **overrides: object) -> GraphEvent:
    path = "/me" if target == "me" else "/users/{id}"
    fields: dict[str, object] = {
        "method": "POST", "template": f"{path}/authentication/{method_type}",
        "family": "authentication_methods", "category": "authentication_methods",
        "target_user": target, "is_write": True, "status": 201,
    }
    fields.update(overrides)
    return delegated(**fields) if delegated_call else event(**fields)


def run(events: list[GraphEvent]) -> list[Finding]:
    detector = AuthMethodAdded()
    state = detector.new_state()
    return [f for e in events for f in detector.observe(state, e, EMPTY_CONTEXT)]


def test_fires_critical_for_a_temporary_access_pass_on_another_user() -> None:
    [finding] = run([register("temporaryAccessPassMethods")])
    assert finding.severity == "critical"
    assert finding.dedup == f"{VICTIM}:temporaryAccessPassMethods"
    assert finding.evidence["target_is_caller"] is False
    assert finding.principal_id == SP


def test_fires_high_for_a_phone_on_another_user() -> None:
    [finding] = run([register("phoneMethods")])
    assert finding.severity == "high"
    assert finding.evidence["method_type"] == "phoneMethods"


@pytest.mark.parametrize("target", ["me", USER, USER.upper()])
def test_fires_high_when_users_register_their_own_tap(target: str) -> None:
    [finding] = run([register("temporaryAccessPassMethods", target, delegated_call=True)])
    assert finding.severity == "high"
    assert finding.evidence["target_user"] == USER
    assert finding.evidence["target_is_caller"] is True


@pytest.mark.parametrize(("method", "template"), [
    ("POST", "/users/{upn}/authentication/fido2Methods"),
    ("PUT", "/users/{id}/authentication/softwareOathMethods/{id}"),
    ("PATCH", "/users/{id}/authentication/emailMethods/{id}"),
    ("PATCH", "/me/authentication/fido2Methods/abc"),
    ("POST", "/users/{id}/authentication/someFutureMethods"),
])
def test_fires_on_every_registration_form(method: str, template: str) -> None:
    [finding] = run([register(method=method, template=template)])
    assert finding.evidence["method_type"].endswith("Methods")


def test_fires_with_unknown_target_when_the_path_names_no_user() -> None:
    [finding] = run([register(target=None)])
    assert finding.evidence["target_user"] == "unknown"
    assert finding.evidence["target_is_caller"] is False


@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/users/{id}/authentication/phoneMethods"),
    ("DELETE", "/users/{id}/authentication/phoneMethods/{id}"),
    ("POST", "/users/{id}/authentication/methods/{id}/resetPassword"),
    ("POST", "/users/{id}/authentication/phoneMethods/{id}/enableSmsSignIn"),
    ("PATCH", "/policies/authenticationMethodsPolicy"),
])
def test_silent_on_other_requests(method: str, template: str) -> None:
    assert run([register(method=method, template=template)]) == []


@pytest.mark.parametrize("status", [302, 400, 403])
def test_silent_when_the_registration_failed(status: int) -> None:
    assert run([register(status=status)]) == []


def test_repeats_collapse_per_user_and_method_type() -> None:
    findings = run([register(ts=T0), register(ts=T0 + 60), register("fido2Methods", ts=T0 + 90),
                    register(target="77777777-7777-7777-7777-777777777777", ts=T0 + 120)])
    assert len(findings) == 3
    assert len({f.alert_id for f in findings}) == 3
