"""app_credential_added: credential writes on applications and service principals."""

from __future__ import annotations

import pytest
from detectors.history import PrincipalHistory

from detectors.app_credential_added import AppCredentialAdded, Params
from detectors.base import EMPTY_CONTEXT, EventContext, Finding
from detectors.event import GraphEvent
from tests.detectors.factory import APP, SP, T0, event

OTHER_APP = "55555555-5555-5555-5555-555555555555"


def add_password(target: str = OTHER_APP, **overrides: object) -> GraphEvent:
    fields: dict[str, object] = {
        "method": "POST", "template": "/applications/{id}/addPassword", "family": "applications",
        "uri": f"https://graph.microsoft.com/v1.0/applications/{target}/addPassword",
        "target_application": target, "is_write": True, "status": 200,
    }
    fields.update(overrides)
    return event(**fields)


def run(events: list[GraphEvent], ctx: EventContext = EMPTY_CONTEXT,
        detector: AppCredentialAdded | None = None) -> list[Finding]:
    detector = detector or AppCredentialAdded()
    state = detector.new_state()
    return [f for e in events for f in detector.observe(state, e, ctx)]


def test_fires_critical_on_another_application() -> None:
    [finding] = run([add_password()])
    assert finding.severity == "critical"
    assert finding.dedup == OTHER_APP
    assert finding.evidence["credential_kind"] == "password"
    assert finding.evidence["target_is_caller"] is False
    assert (finding.window_start, finding.window_end) == (T0, T0 + 3600)


def test_fires_high_on_own_service_principal_without_prior_discovery() -> None:
    [finding] = run([add_password(SP, template="/servicePrincipals/{id}/addKey")])
    assert finding.severity == "high"
    assert finding.evidence["credential_kind"] == "key"
    assert finding.evidence["target_is_caller"] is True


def test_fires_critical_on_own_app_after_directory_discovery() -> None:
    history = PrincipalHistory()
    history.observe(event(ts=T0 - 600, family="users"))
    [finding] = run([add_password(APP, ts=T0)], EventContext(history=history))
    assert finding.severity == "critical"
    assert finding.evidence["prior_directory_families"] == ["users"]
    assert finding.evidence["first_write_of_template"] is True


@pytest.mark.parametrize(("method", "template", "kind"), [
    ("POST", "/applications(appId='{id}')/addPassword", "password"),
    ("POST", "/applications/{id}/microsoft.graph.addKey", "key"),
    ("POST", "/servicePrincipals/{id}/addTokenSigningCertificate", "token_signing_certificate"),
    ("POST", "/applications/{id}/federatedIdentityCredentials", "federated"),
    ("PATCH", "/applications/{id}/federatedIdentityCredentials/{id}", "federated"),
    ("PUT", "/applications/{id}/federatedIdentityCredentials(name={id})", "federated"),
    ("PATCH", "/applications/{id}/federatedIdentityCredentials/myCredential", "federated"),
])
def test_fires_on_every_credential_write_form(method: str, template: str, kind: str) -> None:
    [finding] = run([add_password(method=method, template=template, status=201)])
    assert finding.evidence["credential_kind"] == kind


@pytest.mark.parametrize("status", [302, 400, 401, 403, 404, 500])
def test_silent_when_the_write_did_not_succeed(status: int) -> None:
    assert run([add_password(status=status)]) == []


@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/applications/{id}"),
    ("GET", "/applications/{id}/federatedIdentityCredentials"),
    ("PATCH", "/applications/{id}"),
    ("POST", "/applications/{id}/removePassword"),
    ("DELETE", "/applications/{id}/federatedIdentityCredentials/{id}"),
    ("GET", "/applications/{id}/addPassword"),
    ("POST", "/users/{id}/addPassword"),
])
def test_silent_on_other_requests(method: str, template: str) -> None:
    assert run([add_password(method=method, template=template)]) == []


def test_repeats_within_the_hour_collapse_and_the_next_hour_fires_again() -> None:
    findings = run([add_password(ts=T0 + 10), add_password(ts=T0 + 3000),
                    add_password(OTHER_APP[::-1], ts=T0 + 3100), add_password(ts=T0 + 3700)])
    assert [(f.dedup, f.window_start) for f in findings] == [
        (OTHER_APP, T0), (OTHER_APP[::-1], T0), (OTHER_APP, T0 + 3600)]


def test_alert_id_does_not_depend_on_arrival_order() -> None:
    events = [add_password(ts=T0 + 10), add_password(ts=T0 + 3000)]
    forward = run(events)
    backward = run(events[::-1])
    assert [f.alert_id for f in forward] == [f.alert_id for f in backward]


def test_window_is_configurable_and_state_expires() -> None:
    detector = AppCredentialAdded(Params(window_seconds=60))
    state = detector.new_state()
    assert detector.observe(state, add_password(ts=T0 + 61), EMPTY_CONTEXT)[0].window_start \
        == T0 + 60
    assert not detector.expire(state, T0 + 120)
    assert detector.expire(state, T0 + 121)


def test_params_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        Params(window_seconds=0)
