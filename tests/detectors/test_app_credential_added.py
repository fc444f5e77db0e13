"""app_credential_added: credential writes on applications and service principals, graded by
whose object it is (self-rotation, another principal's, unknown) and where it came from."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.app_credential_added import AppCredentialAdded, Params, credential_kind
from detectors.base import AppInfo
from detectors.event import GraphEvent
from graphsentry.ingest.normalize import normalize_record
from tests.detectors.factory import (
    APP,
    DAY,
    GRAPH,
    HOUR,
    NEW_IP,
    OTHER_APP,
    OTHER_SP,
    SP,
    T0,
    TENANT,
    directory_write,
    event,
    in_time_order,
    routine,
    run,
)

OBJECT_ID = "0b0b0b0b-0000-0000-0000-00000000000a"
"""The caller's own application object id (the app directory knows it)."""


def add_password(target: str = OTHER_APP, template: str = "/applications/{id}/addPassword",
                 **overrides: Any) -> GraphEvent:
    return directory_write(template, target, **{"family": "applications", "status": 200,
                                                **overrides})


def only(events: list[GraphEvent], **kwargs: Any) -> Any:
    """The one final signal of today, the events fed in time order."""
    [signal] = run(AppCredentialAdded(), in_time_order(events), **kwargs).finals(since=T0)
    return signal


@pytest.mark.parametrize(("method", "template", "kind"), [
    ("POST", "/applications/{id}/addPassword", "password"),
    ("POST", "/applications/{id}/addKey", "key"),
    ("POST", "/applications(appId='{id}')/addPassword", "password"),
    ("POST", "/applications/{id}/microsoft.graph.addKey", "key"),
    ("POST", "/applications/{id}/microsoft.graph.agentIdentityBlueprint/addPassword",
     "password"),
    ("POST", "/applications/{id}/microsoft.graph.agentIdentityBlueprint/addKey", "key"),
    ("POST", "/servicePrincipals/{id}/microsoft.graph.servicePrincipal/addPassword",
     "password"),
    ("POST", "/servicePrincipals/{id}/addTokenSigningCertificate", "token_signing_certificate"),
    ("POST", "/applications/{id}/federatedIdentityCredentials", "federated"),
    ("PATCH", "/applications/{id}/federatedIdentityCredentials/{id}", "federated"),
    ("PUT", "/applications/{id}/federatedIdentityCredentials(name={id})", "federated"),
    ("PATCH", "/applications/{id}/federatedIdentityCredentials/myCredential", "federated"),
    ("POST", "/beta/applications/{id}/addPassword/", "password"),
])
def test_fires_on_every_credential_write_form(method: str, template: str, kind: str) -> None:
    signal = only([add_password(method=method, template=template, status=201)])
    assert signal.evidence["credential_kind"] == kind
    assert credential_kind(add_password(method=method, template=template)) == kind


@pytest.mark.parametrize("action", ["addPassword", "addKey"])
def test_fires_on_an_odata_type_cast_as_the_normalizer_writes_it(action: str) -> None:
    """``POST /applications/{id}/microsoft.graph.agentIdentityBlueprint/addPassword`` straight
    from a raw Graph activity record: no type-cast segment hides the template."""
    record = normalize_record({"properties": {
        "timeGenerated": "2026-01-01T10:00:00Z", "requestId": "r-cast", "requestMethod": "POST",
        "requestUri": f"{GRAPH}/applications/{OTHER_APP}/microsoft.graph."
                      f"agentIdentityBlueprint/{action}",
        "responseStatusCode": 200, "tenantId": TENANT, "appId": APP,
        "servicePrincipalId": SP, "ipAddress": "203.0.113.10", "userAgent": "ci/1.0"}})
    assert isinstance(record, dict), record
    graph_event = GraphEvent.from_record(record)
    signal = only([graph_event])
    assert signal.evidence["credential_kind"] == {"addPassword": "password", "addKey": "key"}[
        action]
    assert signal.evidence["target_application"] == OTHER_APP


@pytest.mark.parametrize("status", [302, 400, 401, 403, 404, 500])
def test_silent_when_the_write_did_not_succeed(status: int) -> None:
    assert run(AppCredentialAdded(), [add_password(status=status)]).signals == []


@pytest.mark.parametrize(("method", "template"), [
    ("GET", "/applications/{id}"),
    ("GET", "/applications/{id}/federatedIdentityCredentials"),
    ("PATCH", "/applications/{id}"),
    ("POST", "/applications/{id}/removePassword"),
    ("DELETE", "/applications/{id}/federatedIdentityCredentials/{id}"),
    ("GET", "/applications/{id}/addPassword"),
    ("POST", "/users/{id}/addPassword"),
    ("POST", "/applications/{id}/microsoft.graph.agentIdentityBlueprint"),
])
def test_silent_on_other_requests(method: str, template: str) -> None:
    assert run(AppCredentialAdded(), [add_password(method=method, template=template)]).signals \
        == []


# -- whose object: self-rotation, another principal's, unknown ---------------------------------

@pytest.mark.parametrize(("target", "template", "app", "grade", "own", "other"), [
    (APP, "/applications(appId='{id}')/addPassword", None, ("low", "low"), True, False),
    (SP, "/servicePrincipals/{id}/addPassword", None, ("low", "low"), True, False),
    (OBJECT_ID, "/applications/{id}/addPassword", AppInfo(APP, object_id=OBJECT_ID.upper()),
     ("low", "low"), True, False),
    (OTHER_SP, "/servicePrincipals/{id}/addPassword", None, ("high", "high"), False, True),
    (OTHER_APP, "/applications(appId='{id}')/addKey", None, ("high", "high"), False, True),
    (OBJECT_ID, "/applications/{id}/addPassword", None, ("high", "high"), False, False),
])
def test_grade_by_whose_object_it_is(target: str, template: str, app: AppInfo | None,
                                     grade: tuple[str, str], own: bool, other: bool) -> None:
    signal = only([*routine(5), add_password(target, template)], app=app)
    assert (signal.severity, signal.fidelity) == grade
    assert signal.evidence["target_is_caller"] is own
    assert signal.evidence["target_is_other_principal"] is other


def test_self_rotation_learnt_from_history_is_low() -> None:
    """A CI pipeline rotating the secret of its own application, addressed by an object id the
    log does not tie to it: the first time (still learning) a signal, then its own rotation."""
    weekly = [add_password(OBJECT_ID, ts=T0 - d * DAY + 10 * HOUR) for d in (14, 7)]
    result = run(AppCredentialAdded(),
                 in_time_order([*routine(15), *weekly, add_password(OBJECT_ID)]))
    grades = [(s.severity, s.fidelity, s.evidence["recurring"])
              for s in sorted(result.finals(), key=lambda s: s.window_start)]
    assert grades == [("high", "medium", False), ("low", "low", True), ("low", "low", True)]
    assert result.finals()[-1].title == "Password credential added to its own application"


def test_the_same_rotation_within_the_lateness_is_not_yet_recurring() -> None:
    """The mark is read sealed (one lateness before the event): a repeat an hour later is
    still a first time, whatever order the two arrive in."""
    first, again = add_password(OBJECT_ID), add_password(OBJECT_ID, ts=T0 + 11 * HOUR)
    for order in ([first, again], [again, first]):
        result = run(AppCredentialAdded(), [*in_time_order(routine(5)), *order])
        assert {s.evidence["recurring"] for s in result.finals(since=T0)} == {False}


@pytest.mark.parametrize(("history", "grade"), [
    ([], ("critical", "high")),
    ([add_password(OBJECT_ID, ts=T0 - 3 * DAY)], ("high", "medium")),
])
def test_from_a_network_new_to_an_established_caller(history: list[GraphEvent],
                                                      grade: tuple[str, str]) -> None:
    signal = only(routine(5) + history + [add_password(OBJECT_ID, ip=NEW_IP)])
    assert (signal.severity, signal.fidelity) == grade
    assert signal.evidence["new_network"] == "198.51.100.0/24"
    assert signal.context.new_network == "198.51.100.0/24"


def test_a_new_network_does_not_count_while_learning() -> None:
    signal = only([add_password(OTHER_SP, "/servicePrincipals/{id}/addPassword", ip=NEW_IP)])
    assert (signal.severity, signal.fidelity) == ("high", "high")
    assert signal.context.learning and signal.evidence["new_network"] is None


# -- one signal per target and hour; late events ----------------------------------------------

def test_repeats_within_the_hour_collapse_with_the_earliest_as_evidence() -> None:
    events = [add_password(ts=T0 + 3000, ip="192.0.2.2"), add_password(ts=T0 + 10,
                                                                        ip="192.0.2.1"),
              add_password(OTHER_APP[::-1], ts=T0 + 3100), add_password(ts=T0 + 3700)]
    result = run(AppCredentialAdded(), events)
    finals = sorted(result.finals(), key=lambda s: (s.window_start, s.dedup))
    assert sorted((s.window_start, s.dedup) for s in finals) == sorted([
        (T0, OTHER_APP[::-1]), (T0, OTHER_APP), (T0 + 3600, OTHER_APP)])
    [first] = [s for s in finals if s.window_start == T0 and s.dedup == OTHER_APP]
    assert first.evidence["ip"] == "192.0.2.1" and first.evidence["matches"] == 2
    assert first.evidence["source_ips"]["sample"] == ["192.0.2.1", "192.0.2.2"]
    assert first.first_seen == T0 + 10 and first.last_seen == T0 + 3000


def test_fires_on_a_credential_added_later_than_the_lateness() -> None:
    newest = event(ts=T0 + DAY)
    late = add_password(ts=T0)
    result = run(AppCredentialAdded(), [newest, late])
    [signal] = result.finals()
    assert signal.dedup == f"{OTHER_APP}|late|{late.request_id}"
    assert not result.profile().marks  # nothing learnt from a late event


def test_missing_target_falls_back_to_the_template() -> None:
    signal = only([add_password(target_application=None)])
    assert signal.dedup == "/applications/{id}/addpassword"
    assert signal.evidence["target_is_caller"] is False


def test_window_is_configurable() -> None:
    events = [add_password(ts=T0 + n * 120) for n in range(3)]
    assert len(run(AppCredentialAdded(Params(window_seconds=60)), events).finals()) == 3
    with pytest.raises(ValueError, match="window_seconds"):
        Params(window_seconds=0)
