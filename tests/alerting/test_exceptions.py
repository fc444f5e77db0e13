"""graphsentry.alerting.exceptions: scope, validity by event time, audit fields, and how the
alert layer applies them (signals marked, never deleted; alerts resting on them suppressed)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from detectors.app_credential_added import AppCredentialAdded
from detectors.base import SignalContext, Who
from detectors.onedrive_enumeration import OnedriveEnumeration
from detectors.storage_exfiltration import StorageExfiltration
from graphsentry.alerting.exceptions import (
    SCOPE_FIELDS,
    AlertException,
    ExceptionSet,
    dumps,
    new_exception,
)
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.engine import CtxParts
from tests.alerting.signals import Desk, signal
from tests.detectors.factory import (
    APP,
    DAY,
    GRAPH,
    HOUR,
    OTHER_SP,
    SP,
    T0,
    TENANT,
    USER,
    Recorder,
    Runner,
    event,
    settings,
)


def exc(**fields: Any) -> AlertException:
    fields.setdefault("id", "exc-1")
    return AlertException(reason="known scanner", author="alice", created=T0 - DAY, **fields)


WINDOWED = {"source_ips": {"count": 2, "capped": False, "sample": ["192.0.2.1", "192.0.2.9"]},
            "templates": {"count": 1, "capped": False, "sample": ["/reports/getOffice365"]}}


# -- scope ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("scope", "covered"), [
    ({"detector": "storage_exfiltration"}, True),
    ({"detector": "graph_enumeration"}, False),
    ({"app_id": APP.upper()}, True),
    ({"app_id": "another-app"}, False),
    ({"principal_id": SP}, True),
    ({"principal_id": "someone-else"}, False),
    ({"network": "192.0.2.0/24"}, True),
    ({"network": "192.0.2.0/29"}, False),       # 192.0.2.9 is outside: not every address
    ({"network": "192.0.2.1"}, False),
    ({"template": "/reports/*"}, True),
    ({"template": "/Reports/getOffice365"}, True),   # canonical form
    ({"template": "/users/*"}, False),
    ({"asn": 64500}, True),
    ({"asn": 64501}, False),
    ({"detector": "storage_exfiltration", "network": "192.0.2.0/24", "asn": 64500}, True),
    ({"detector": "storage_exfiltration", "network": "198.51.100.0/24"}, False),
])
def test_every_scope_field_given_must_match(scope: dict[str, Any], covered: bool) -> None:
    s = signal("storage_exfiltration", evidence=WINDOWED,
               context=SignalContext(asns=(64500,)))
    assert exc(**scope).covers(s) is covered


def test_a_delegated_signal_is_matched_by_its_user_id() -> None:
    user = Who(TENANT, USER, "delegated", APP, USER, None)
    s = signal(who=user, evidence={"ip": "192.0.2.1"})
    assert exc(principal_id=USER.upper()).covers(s)


def test_capped_or_missing_evidence_is_never_covered_by_a_value_scope() -> None:
    capped = {"source_ips": {"count": 40, "capped": True, "sample": ["192.0.2.1"]},
              "templates": {"count": 3, "capped": False, "sample": ["/a"]}}  # sample short
    s = signal("storage_exfiltration", evidence=capped)
    assert not exc(network="192.0.2.0/24").covers(s)
    assert not exc(template="/a").covers(s)
    bare = signal("high_volume_transfer", evidence={"bytes": 1})
    assert not exc(network="0.0.0.0/0").covers(bare) and not exc(template="*").covers(bare)
    assert not exc(asn=64500).covers(bare)


def test_a_signal_resting_on_an_event_without_address_is_never_covered_by_a_network() -> None:
    missing = {"source_ips": {"count": 1, "capped": False, "sample": ["192.0.2.1"],
                              "missing": True}}
    assert not exc(network="192.0.2.0/24").covers(signal(evidence=missing))


@pytest.mark.parametrize("first", ["with_address", "without_address"])
def test_a_network_exception_and_events_without_address_do_not_depend_on_arrival(
        first: str) -> None:
    """Folder listings from 198.51.100.7 (under an exception) and from no address: the
    window is not covered, whichever arrives first."""
    listings = [event(ts=T0 + i, family="onedrive", template="/me/drive/items/{id}/children",
                      target_user="me", target_item=f"f{i}",
                      ip=None if i % 2 else "198.51.100.7") for i in range(100)]
    order = listings if first == "with_address" else listings[1::2] + listings[::2]
    exceptions = ExceptionSet((exc(id="exc-ip", network="198.51.100.7/32"),))
    engine = Recorder([OnedriveEnumeration()], settings(policy=AlertPolicy(min_stages=1)),
                      exceptions)
    runner = Runner(engine).feed(order).flush()
    finals = [r for r in runner.out.signals if r["final"]]
    assert [r["suppressed_by"] for r in finals] == [[]]
    assert json.loads(finals[0]["evidence"]["evidence_json"])["source_ips"]["missing"] is True
    last = {a["alert_id"]: a for a in runner.out.alerts}
    assert [(a["kind"], a["status"], a["revision"]) for a in last.values()] == [
        ("incident", "open", 2)]


def test_single_event_evidence_is_matched_by_its_one_value() -> None:
    s = signal(evidence={"ip": "192.0.2.5", "template": "/applications/{id}/addPassword"})
    assert exc(network="192.0.2.0/24").covers(s)
    assert exc(template="/applications/*/addpassword").covers(s)
    assert not exc(network="198.51.100.0/24").covers(s)


def test_an_unknown_autonomous_system_is_never_covered_by_an_asn_scope() -> None:
    known = SignalContext(asns=(64500,))
    partly = SignalContext(asns=(64500,), asn_unknown=True)
    assert exc(asn=64500).covers(signal(context=known))
    assert not exc(asn=64500).covers(signal(context=partly))


# -- validity by event time -----------------------------------------------------------------------

@pytest.mark.parametrize(("start", "covered"), [
    (T0 - 1, False), (T0, True), (T0 + DAY - 1, True), (T0 + DAY, False)])
def test_validity_is_by_the_window_start_in_event_time(start: float, covered: bool) -> None:
    e = exc(detector="app_credential_added", starts=T0, expires=T0 + DAY)
    assert e.covers(signal(start=start)) is covered
    assert e.active_at(start) is covered


def test_an_expired_exception_no_longer_suppresses_through_the_engine() -> None:
    """A credential added to another service principal every hour; the exception expires at
    03:00: the signals before are marked and their alert suppressed, the later ones open a new
    alert (event time decides, not when the engine runs)."""
    exceptions = ExceptionSet((exc(id="exc-pipeline", detector="app_credential_added",
                                   expires=T0 + 3 * HOUR),))
    engine = Recorder([AppCredentialAdded()], settings(
        policy=AlertPolicy(horizon_seconds=3 * HOUR)), exceptions)
    events = [add_password(T0 + h * HOUR + 60, target=f"sp-{h}") for h in range(6)]
    runner = Runner(engine).feed(events).flush()
    finals = sorted((r for r in runner.out.signals if r["final"]),
                    key=lambda r: r["window_start"])
    assert [r["suppressed_by"] for r in finals] == [["exc-pipeline"]] * 3 + [[]] * 3
    assert len(runner.out.signals) == 12  # every signal kept, suppressed or not
    last = {a["alert_id"]: a for a in runner.out.alerts}
    statuses = sorted((a["window_start"], a["status"], a["suppressed_by"])
                      for a in last.values() if a["kind"] == "detector")
    assert [(s, sup) for _, s, sup in statuses] == [("suppressed", ["exc-pipeline"]),
                                                   ("open", [])]
    assert engine.counters.suppressed_signals == 6


def test_removed_exceptions_never_apply_and_are_not_in_force() -> None:
    removed = exc(id="gone", detector="app_credential_added", removed=T0, removed_by="bob")
    kept = exc(id="kept", app_id=APP)
    assert not removed.covers(signal())
    exceptions = ExceptionSet((removed, kept))
    assert exceptions.covering(signal()) == ("kept",)
    assert "gone" not in {e.id for group in exceptions.by_detector.values() for e in group}


def test_covering_lists_every_exception_sorted() -> None:
    exceptions = ExceptionSet((exc(id="b", app_id=APP), exc(id="a", detector="new_origin"),
                               exc(id="c", detector="app_credential_added")))
    assert exceptions.covering(signal()) == ("b", "c")
    assert ExceptionSet().covering(signal()) == ()


# -- audit fields and validation --------------------------------------------------------------

def test_new_exception_has_an_id_author_reason_and_creation_time() -> None:
    e = new_exception(reason="pentest", author="carol", expires=T0 + DAY, now=T0,
                      principal_id=SP)
    assert re.fullmatch(r"exc-[0-9a-f]{12}", e.id)
    assert (e.reason, e.author, e.created, e.expires, e.source) == (
        "pentest", "carol", T0, T0 + DAY, "redis")
    assert e.to_dict() == {"id": e.id, "reason": "pentest", "author": "carol",
                           "created": T0, "expires": T0 + DAY, "principal_id": SP,
                           "source": "redis"}
    assert new_exception(reason="x", author="y", app_id=APP).id != e.id


def test_round_trip_through_dict_and_json_lines() -> None:
    e = exc(network="192.0.2.7/24", template="/Reports/*", asn=64500, starts=T0,
            expires=T0 + DAY, removed=T0 + 10, removed_by="bob", source="config")
    assert e.network == "192.0.2.0/24" and e.template == "/reports/*"
    assert AlertException.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    lines = dumps([e, exc(id="exc-2", app_id=APP)]).splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["exc-1", "exc-2"]
    from_strings = AlertException.from_dict({**e.to_dict(), "created": str(T0), "asn": "64500"})
    assert from_strings.created == T0 and from_strings.asn == 64500


@pytest.mark.parametrize(("fields", "message"), [
    ({"reason": " "}, "reason and author are required"),
    ({"author": ""}, "reason and author are required"),
    ({"detector": None}, "give at least one scope field"),
    ({"starts": T0, "expires": T0}, "expires must be after starts"),
    ({"network": "not-a-network"}, "does not appear to be"),
])
def test_invalid_exceptions_are_refused_with_a_reason(fields: dict[str, Any],
                                                      message: str) -> None:
    values = {"id": "exc-9", "reason": "r", "author": "a", "created": T0,
              "detector": "new_origin", **fields}
    with pytest.raises(ValueError, match=message):
        AlertException(**values)


@pytest.mark.parametrize(("data", "message"), [
    ({"id": "x", "reason": "r", "author": "a", "created": 0, "detector": "d", "colour": 1},
     "unknown field"),
    ({"id": "x", "reason": "r", "author": "a", "created": "yesterday", "detector": "d"},
     "exception x"),
    ({"id": "x", "reason": "r", "author": "a", "created": 0, "asn": "AS1"}, "exception x"),
    ({"id": "x", "reason": "r", "created": 0, "detector": "d"}, "exception x"),
])
def test_from_dict_names_the_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertException.from_dict(data)


def test_scope_fields_are_the_documented_ones() -> None:
    assert SCOPE_FIELDS == ("detector", "app_id", "principal_id", "network", "asn", "template")


# -- signals kept and marked; alerts suppressed ------------------------------------------------

def test_suppressed_signals_are_kept_marked_and_add_no_risk() -> None:
    desk = Desk(AlertPolicy(risk_threshold=60),
                ExceptionSet((exc(id="exc-sp", principal_id=SP),)))
    out = desk.feed(signal(), signal("storage_exfiltration", dedup=""))
    assert [r["suppressed_by"] for r in desk.records] == [["exc-sp"], ["exc-sp"]]
    assert [a["kind"] for a in out] == ["detector"]  # no risk alert from suppressed signals
    assert out[0]["status"] == "suppressed" and out[0]["suppressed_by"] == ["exc-sp"]


def add_password(ts: float, ip: str = "203.0.113.10", target: str = OTHER_SP) -> Any:
    return event(ts=ts, ip=ip, method="POST", template="/servicePrincipals/{id}/addPassword",
                 family="serviceprincipals", is_write=True, target_application=target,
                 uri=f"{GRAPH}/servicePrincipals/{target}/addPassword")


def last_versions(runner: Runner) -> tuple[dict[str, Any], dict[str, Any]]:
    finals = {r["signal_id"]: r for r in runner.out.signals if r["final"]}
    return finals, {a["alert_id"]: a for a in runner.out.alerts}


def test_an_exception_for_one_of_two_addresses_does_not_depend_on_arrival() -> None:
    """Two credential additions to one target within the hour, from 198.51.100.7 (covered)
    and .8 (not). The signal rests on both: its final version is not covered, and in either
    order the same alerts end the same (a provisional resting on .7 alone is covered, which
    only lifts)."""
    covered, uncovered = add_password(T0 + 100, "198.51.100.7"), add_password(T0 + 200,
                                                                              "198.51.100.8")
    exceptions = ExceptionSet((exc(id="exc-ip", network="198.51.100.7/32"),))
    outcomes = []
    for order in ([covered, uncovered], [uncovered, covered]):
        policy = AlertPolicy(risk_threshold=30, min_detectors=1)
        engine = Recorder([AppCredentialAdded()], settings(policy=policy), exceptions)
        outcomes.append(last_versions(Runner(engine).feed(order).flush()))
    assert outcomes[0] == outcomes[1]
    finals, alerts = outcomes[0]
    [final] = finals.values()
    assert final["suppressed_by"] == []
    assert final["evidence"]["source_ips"] == ["198.51.100.7", "198.51.100.8"]
    assert [a["kind"] for a in alerts.values()] == ["risk"]  # one alert: it grew into risk
    assert all(a["status"] == "open" for a in alerts.values())


def test_an_asn_exception_and_an_address_without_as_do_not_depend_on_arrival() -> None:
    """Downloads from AS64511 (under an exception) and one from an address whose AS is
    unknown: the window is not covered, whichever arrives first."""
    downloads = [event(ts=T0 + i, family="onedrive", template="/drives/{id}/items/{id}/content",
                       is_download=True, status=302, target_drive="d", target_item=f"i{i}",
                       ip="2001:db8::1" if i == 0 else "198.51.100.7") for i in range(30)]
    exceptions = ExceptionSet((exc(id="exc-as", asn=64511),))
    parts = {"2001:db8::1": CtxParts(), "198.51.100.7": CtxParts(asn=64511)}
    outcomes = []
    for order in (downloads, downloads[1:] + downloads[:1]):
        policy = AlertPolicy(risk_threshold=10, min_detectors=1)
        engine = Recorder([StorageExfiltration()], settings(policy=policy), exceptions)
        runner = Runner(engine, lambda e: parts[str(e.ip)]).feed(order).flush()
        outcomes.append(last_versions(runner))
    assert outcomes[0] == outcomes[1]
    finals, alerts = outcomes[0]
    assert [r["suppressed_by"] for r in finals.values()] == [[]]
    assert [a["kind"] for a in alerts.values()] == ["risk"]
    only_known = exc(id="exc-as", asn=64511)
    assert only_known.covers(signal("storage_exfiltration", context=SignalContext(asns=(64511,))))
