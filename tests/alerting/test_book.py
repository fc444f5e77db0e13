"""graphsentry.alerting.book: promotion (high fidelity, risk, stages), the alert lifecycle (one
alert per principal and horizon bucket, revisions, the alert growing into a risk alert and an
incident as evidence joins), bounds and expiry, and wire shapes (Avro and JSON)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from detectors.base import SignalContext
from graphsentry.alerting.book import CHAIN, RISK, alert_id
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.alerts import (
    alert_from_avro,
    alert_from_json,
    alert_to_avro,
    alert_to_json,
    signal_to_avro,
)
from schemas import field_names
from tests.alerting.signals import Desk, signal
from tests.detectors.factory import DAY, HOUR, SP, T0, TENANT

NEW_NET = SignalContext(learning=False, new_network="198.51.100.0/24", new_client=True)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# -- promotion ---------------------------------------------------------------------------------

def test_a_high_fidelity_signal_is_an_alert_on_its_own() -> None:
    desk = Desk()
    [alert] = desk.feed(signal("app_credential_added", fidelity="high"))
    assert alert["kind"] == "detector" and alert["detector"] == "app_credential_added"
    assert alert["promoted_by"] == ["high_fidelity"] and alert["status"] == "open"
    assert alert["alert_id"] == alert_id(TENANT, SP, "principal", T0)
    assert alert["signals"][0]["signal_id"] == desk.records[0]["signal_id"]
    assert alert["risk_score"] == desk.records[0]["risk_score"]
    assert alert_from_avro(alert_to_avro(alert)) == _ordered(alert)


def test_medium_and_low_fidelity_signals_alone_are_signals_not_alerts() -> None:
    desk = Desk()
    assert desk.feed(signal("graph_enumeration"), signal("denied_requests", dedup="x")) == []
    assert len(desk.records) == 2


def test_accumulated_risk_over_the_horizon_raises_one_risk_alert() -> None:
    desk = Desk(AlertPolicy(risk_threshold=100))
    # 25 + 20 + 10 = 55 each (new network and client): two detectors cross 100
    assert desk.feed(signal("graph_enumeration", context=NEW_NET)) == []
    [alert] = desk.feed(signal("mailbox_enumeration", start=T0 + 5 * HOUR, context=NEW_NET,
                               fidelity="medium"))
    assert alert["kind"] == "risk" and alert["detector"] == RISK
    assert alert["promoted_by"] == ["risk_threshold"] and alert["severity"] == "high"
    assert alert["evidence"]["counts"]["risk_total"] >= 100
    assert alert["signal_count"] == 2
    assert alert["alert_id"] == alert_id(TENANT, SP, "principal", T0)


def test_repeats_of_one_behaviour_count_once_towards_the_risk() -> None:
    desk = Desk(AlertPolicy(risk_threshold=100))
    out = desk.feed(*(signal("graph_enumeration", start=T0 + h * HOUR, context=NEW_NET)
                      for h in range(5)))
    assert out == []
    entries = list(desk.book.entries.values())
    assert desk.layer.risk_total(entries) == max(e.risk for e in entries)


def test_risk_older_than_the_horizon_does_not_add_up() -> None:
    desk = Desk(AlertPolicy(risk_threshold=100, horizon_seconds=6 * HOUR))
    assert desk.feed(signal("graph_enumeration", context=NEW_NET),
                     signal("mailbox_enumeration", start=T0 + 7 * HOUR, context=NEW_NET,
                            fidelity="medium")) == []
    [alert] = desk.feed(signal("denied_requests", start=T0 + 8 * HOUR, context=NEW_NET))
    assert alert["signal_count"] == 2  # the 7:00 and 8:00 signals; 0:00 is a horizon away


def test_stages_make_an_incident_below_the_risk_threshold() -> None:
    desk = Desk(AlertPolicy(risk_threshold=1000, min_stages=3))
    low = SignalContext(learning=True)
    desk.feed(signal("graph_enumeration", start=T0 + HOUR, context=low))
    desk.feed(signal("storage_exfiltration", start=T0 + 2 * HOUR, context=low,
                     fidelity="medium"))
    assert desk.of_kind("incident") == []
    desk.feed(signal("app_credential_added", start=T0 + 3 * HOUR, context=low,
                     fidelity="medium"))
    [incident] = desk.of_kind("incident")
    assert incident["detector"] == CHAIN and incident["severity"] == "critical"
    assert incident["stages"] == ["discovery", "exfiltration", "persistence"]
    assert incident["title"] == ("Attack chain: discovery -> exfiltration -> persistence "
                                 "(3 signals)")
    assert incident["promoted_by"] == ["attack_chain"]


@pytest.mark.parametrize("first", ["discovery", "exfiltration"])
def test_the_incident_title_names_its_stages_in_the_order_they_happened(first: str) -> None:
    """Windows of different lengths start at the same time (an hour of discovery, ten minutes
    of downloads): the stages are in the order their first events happened."""
    early, late = T0 + 60, T0 + 300
    discovery = signal("graph_enumeration", length=3600.0, context=NEW_NET,
                       first=early if first == "discovery" else late, last=T0 + 3000)
    exfiltration = signal("storage_exfiltration", length=600.0, context=NEW_NET,
                          fidelity="medium", first=late if first == "discovery" else early,
                          last=T0 + 500)
    persistence = signal("app_credential_added", start=T0 + 2 * HOUR, context=NEW_NET)
    desk = Desk(AlertPolicy(risk_threshold=1000, min_stages=3))
    desk.feed(discovery, exfiltration, persistence)
    [incident] = desk.of_kind("incident")
    second = "exfiltration" if first == "discovery" else "discovery"
    assert incident["stages"] == [first, second, "persistence"]
    evidence = json.loads(incident["evidence"]["evidence_json"])
    assert evidence["stage_order"] == [first, second, "persistence"]
    assert incident["title"].startswith(f"Attack chain: {first} -> {second} -> persistence")


# -- lifecycle ------------------------------------------------------------------------------------

def test_one_alert_per_principal_per_horizon_bucket() -> None:
    desk = Desk()
    first = desk.feed(signal(dedup="sp-1", start=T0 + HOUR, final=False))
    second = desk.feed(signal(dedup="sp-2", start=T0 + 5 * HOUR, final=False))
    next_day = desk.feed(signal(dedup="sp-1", start=T0 + DAY + HOUR, final=False))
    assert first[0]["alert_id"] == second[0]["alert_id"] != next_day[0]["alert_id"]
    assert [a["revision"] for a in (*first, *second)] == [1, 2]
    assert second[0]["signal_count"] == 2 and second[0]["final"] is False
    assert second[0]["first_seen"] == at(T0 + HOUR + 1)
    assert second[0]["last_seen"] == at(T0 + 5 * HOUR + 2)
    assert second[0]["window_start"] == at(T0) and second[0]["window_end"] == at(T0 + DAY)


def test_another_high_fidelity_detector_joins_the_principal_alert() -> None:
    """Two high-fidelity findings on one principal within its bucket, below the risk
    threshold and the stages of an incident: one alert naming both."""
    desk = Desk(AlertPolicy(risk_threshold=1000))
    [first] = desk.feed(signal("attack_tool", start=T0 + HOUR, fidelity="high"))
    [second] = desk.feed(signal("app_credential_added", start=T0 + 2 * HOUR))
    assert first["alert_id"] == second["alert_id"]
    assert second["kind"] == "detector" and second["detector"] == "attack_tool"
    assert second["signal_count"] == 2 and second["revision"] == 4
    assert second["title"].endswith("(and app_credential_added)")
    evidence = json.loads(second["evidence"]["evidence_json"])
    assert evidence["detectors"] == ["app_credential_added", "attack_tool"]


def test_revisions_count_signals_and_final_signals() -> None:
    desk = Desk()
    provisional = signal(dedup="a", final=False)
    revisions = [a["revision"] for a in desk.feed(
        provisional, replace(provisional, final=True),
        signal(dedup="b", start=T0 + HOUR, final=False),
        signal(dedup="b", start=T0 + HOUR, final=True))]
    assert revisions == [1, 2, 3, 4]
    last = desk.last()
    [alert] = last.values()
    assert alert["final"] is True and alert["signal_count"] == 2


def test_nothing_new_is_not_a_new_version() -> None:
    desk = Desk()
    final = signal(dedup="a")
    assert len(desk.feed(final)) == 1
    assert desk.feed(final) == []                            # the same final again
    assert desk.feed(replace(final, final=False)) == []      # a provisional after the final
    assert desk.book.entries[final.signal_id].final


def test_the_incident_grows_as_stages_join_under_one_id() -> None:
    desk = Desk(AlertPolicy(risk_threshold=60, min_stages=3))
    steps = [signal("graph_enumeration", start=T0, context=NEW_NET),
             signal("storage_exfiltration", start=T0 + HOUR, context=NEW_NET,
                    fidelity="medium"),
             signal("app_credential_added", start=T0 + 2 * HOUR, dedup="victim",
                    context=NEW_NET),
             signal("new_origin", start=T0 + 3 * HOUR, dedup="198.51.100.0/24",
                    severity="high", fidelity="medium", context=NEW_NET)]
    versions = []
    for step in steps:
        versions.extend(desk.feed(step))
    ids = {v["alert_id"] for v in versions}
    assert len(ids) == 1  # one alert for the principal, however many detectors joined
    # 55 risk each: the second signal crosses 60 (a risk alert), the third stage makes it an
    # incident, the fourth joins it
    assert [v["kind"] for v in versions] == ["risk", "incident", "incident"]
    assert [v["signal_count"] for v in versions] == [2, 3, 4]
    assert [v["revision"] for v in versions] == [4, 6, 8]
    last = versions[-1]
    assert last["stages"] == ["discovery", "exfiltration", "persistence", "initial_access"]
    assert last["evidence"]["related_alert_ids"] == []


def test_signals_arriving_in_another_order_give_the_same_last_versions() -> None:
    steps = [signal("graph_enumeration", start=T0, context=NEW_NET, final=False),
             signal("storage_exfiltration", start=T0 + HOUR, context=NEW_NET,
                    fidelity="medium", final=False),
             signal("app_credential_added", start=T0 + 2 * HOUR, context=NEW_NET,
                    final=False)]
    finals = [replace(s, final=True) for s in steps]
    orders = [[*steps, *finals], [steps[2], finals[2], steps[0], steps[1], finals[1],
                                  finals[0]]]
    lasts = []
    for order in orders:
        desk = Desk(AlertPolicy(risk_threshold=60))
        desk.feed(*order)
        lasts.append(desk.last())
    assert lasts[0] == lasts[1]
    assert [a["kind"] for a in lasts[0].values()] == ["incident"]


def test_an_alert_resting_only_on_suppressed_signals_is_suppressed() -> None:
    desk = Desk()
    desk.feed(signal(dedup="a"))
    extra_layer = desk.layer
    record, [alert] = extra_layer.on_signal(desk.book, signal(dedup="b", start=T0 + HOUR),
                                            None, True, ("directory:allow:x",))
    assert record["suppressed_by"] == ["directory:allow:x"]
    assert alert["status"] == "open" and alert["suppressed_by"] == ["directory:allow:x"]
    other = Desk()
    _, [only] = other.layer.on_signal(other.book, signal(), None, True, ("directory:allow:x",))
    assert only["status"] == "suppressed"


# -- bounds and expiry -------------------------------------------------------------------------

def test_the_book_keeps_at_most_the_configured_signals() -> None:
    desk = Desk(AlertPolicy(max_signals_per_principal=5))
    desk.feed(*(signal("graph_enumeration", start=T0 + n * HOUR) for n in range(8)))
    starts = sorted(e.start for e in desk.book.entries.values())
    assert starts == [T0 + n * HOUR for n in range(3, 8)]


def test_expire_forgets_what_nothing_can_change_any_more() -> None:
    desk = Desk()
    desk.feed(signal(start=T0), signal("graph_enumeration", start=T0 + 3 * DAY))
    # kept while a signal could still join: a horizon and a day after the bucket's end
    assert desk.layer.expire(desk.book, T0 + 3 * DAY) is False
    assert len(desk.book.entries) == 2 and len(desk.book.alerts) == 1
    assert desk.layer.expire(desk.book, T0 + 3 * DAY + 1) is False
    assert [e.detector for e in desk.book.entries.values()] == ["graph_enumeration"]
    assert desk.book.alerts == {}
    assert desk.layer.expire(desk.book, T0 + 6 * DAY) is False
    assert desk.layer.expire(desk.book, T0 + 6 * DAY + 1) is True


# -- wire shapes -------------------------------------------------------------------------------

def test_records_have_the_schema_fields_and_round_trip() -> None:
    desk = Desk(AlertPolicy(risk_threshold=60))
    desk.feed(signal("graph_enumeration", context=NEW_NET, evidence={
        "source_ips": {"count": 1, "capped": False, "sample": ["192.0.2.1"]}}),
        signal("app_credential_added", start=T0 + HOUR, context=NEW_NET,
               evidence={"ip": "192.0.2.1", "request_id": "r-1"}))
    for record in desk.records:
        assert list(record) == field_names("graph_signal")
        assert signal_to_avro(record)
    assert [a["kind"] for a in desk.versions] == ["risk"]
    for alert in desk.versions:
        assert set(alert) == set(field_names("graph_alert"))
        assert alert_from_avro(alert_to_avro(alert)) == _ordered(alert)
        assert alert_from_json(alert_to_json(alert)) == alert
    assert desk.records[1]["evidence"]["source_ips"] == ["192.0.2.1"]
    assert desk.records[1]["evidence"]["sample_request_ids"] == ["r-1"]


def _ordered(alert: dict[str, Any]) -> dict[str, Any]:
    return {name: alert[name] for name in field_names("graph_alert")}


def test_entry_keeps_evidence_only_for_promotable_signals() -> None:
    desk = Desk()
    desk.feed(signal(evidence={"x": 1}), signal("graph_enumeration", evidence={"y": 2}))
    kept = {e.detector: e.evidence for e in desk.book.entries.values()}
    assert kept == {"app_credential_added": {"x": 1}, "graph_enumeration": None}
