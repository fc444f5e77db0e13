"""new_origin: an established principal calls from a network (and ASN) it never used."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from detectors.history import MAX_ENTRIES, PrincipalHistory

from detectors.base import EventContext, Finding
from detectors.event import GraphEvent
from detectors.new_origin import NewOrigin, Params
from tests.detectors.factory import T0, delegated, event

DAY = 86_400.0
HOME_ASN, CLOUD_ASN = 64500, 64999
NOW = T0 + 3 * DAY


def established(events: int = 60, span: float = 2 * DAY) -> PrincipalHistory:
    """A principal that called from 203.0.113.0/24 (ASN 64500) for ``span`` seconds."""
    history = PrincipalHistory()
    for i in range(events):
        history.observe(event(ts=T0 + i * span / events, ip=f"203.0.113.{i % 200}"), HOME_ASN)
    return history


def run(events: Sequence[tuple[GraphEvent, int | None]], history: PrincipalHistory,
        detector: NewOrigin | None = None) -> list[Finding]:
    """Like the engine: detectors see the history before the event, then it is observed."""
    detector = detector or NewOrigin()
    state = detector.new_state()
    findings: list[Finding] = []
    for e, asn in events:
        findings += detector.observe(state, e, EventContext(history=history, asn=asn))
        history.observe(e, asn)
    return findings


def test_fires_high_for_an_app_only_principal_on_a_new_network_and_asn() -> None:
    [finding] = run([(event(ts=NOW, ip="198.51.100.23"), CLOUD_ASN)], established())
    assert finding.severity == "high"
    assert (finding.dedup, finding.window_start) == ("198.51.100.0/24", 0.0)
    evidence = finding.evidence
    assert evidence["asn"] == CLOUD_ASN and evidence["asn_known"] is False
    assert evidence["known_networks_sample"] == ["203.0.113.0/24"]
    assert evidence["history_age_seconds"] == 3 * DAY
    assert evidence["history_events"] == 60 and evidence["user_agent_known"] is True


def test_fires_medium_for_a_delegated_user() -> None:
    [finding] = run([(delegated(ts=NOW, ip="2001:db8:9::1"), None)], established())
    assert finding.severity == "medium"
    assert finding.dedup == "2001:db8:9::/48"


def test_fires_once_per_network_and_again_for_another_network() -> None:
    findings = run([(event(ts=NOW, ip="198.51.100.1"), None),
                    (event(ts=NOW + 1, ip="198.51.100.2"), None),
                    (event(ts=NOW + 2, ip="192.0.2.5"), None)], established())
    assert [f.dedup for f in findings] == ["198.51.100.0/24", "192.0.2.0/24"]


def test_fires_on_new_prefix_in_known_asn_when_asked() -> None:
    detector = NewOrigin(Params(alert_on_new_prefix_in_known_asn=True))
    [finding] = run([(event(ts=NOW, ip="198.51.100.1"), HOME_ASN)], established(), detector)
    assert finding.evidence["asn_known"] is True


def test_fires_for_a_late_event_that_predates_the_networks_first_use() -> None:
    """Out of order: the network entered the history later than this (late) event's time."""
    history = established()
    history.observe(event(ts=NOW + 600, ip="198.51.100.9"), None)
    [finding] = run([(event(ts=NOW, ip="198.51.100.1"), None)], history)
    assert finding.dedup == "198.51.100.0/24"


def test_alert_id_does_not_depend_on_arrival_order() -> None:
    events = [(event(ts=NOW, ip="198.51.100.1"), None), (event(ts=NOW + 60, ip="198.51.100.2"),
                                                        None)]
    forward = run(events, established())
    backward = run(events[::-1], established())
    assert [f.alert_id for f in forward] == [f.alert_id for f in backward]


@pytest.mark.parametrize(("history", "ts"), [
    (established(events=49), NOW),  # too few events
    (established(span=DAY), T0 + DAY - 1),  # younger than a day at the event
    (PrincipalHistory(), NOW),
])
def test_silent_without_an_established_history(history: PrincipalHistory, ts: float) -> None:
    assert run([(event(ts=ts, ip="198.51.100.1"), None)], history) == []


def test_silent_without_any_history_object() -> None:
    detector = NewOrigin()
    assert detector.observe(detector.new_state(), event(ts=NOW, ip="198.51.100.1"),
                            EventContext()) == []


@pytest.mark.parametrize(("ip", "asn"), [
    ("203.0.113.250", None),  # known /24
    ("198.51.100.1", HOME_ASN),  # new prefix inside the principal's usual ASN
    (None, None),
    ("garbage", None),
])
def test_silent_on_known_origins_or_unusable_ips(ip: str | None, asn: int | None) -> None:
    assert run([(event(ts=NOW, ip=ip), asn)], established()) == []


def test_silent_when_the_network_history_is_saturated() -> None:
    history = established()
    for i in range(MAX_ENTRIES):
        history.observe(event(ts=T0, ip=f"10.{i // 256}.{i % 256}.1"), None)
    assert run([(event(ts=NOW, ip="198.51.100.1"), None)], history) == []


def test_state_expires_once_the_watermark_passes_the_alert() -> None:
    detector = NewOrigin()
    state = detector.new_state()
    assert detector.expire(state, NOW)
    history = established()
    first = event(ts=NOW, ip="198.51.100.1")
    assert len(detector.observe(state, first, EventContext(history=history))) == 1
    history.observe(first)
    assert not detector.expire(state, NOW)
    assert detector.expire(state, NOW + 1)
    # what the state no longer remembers, the history does
    assert detector.observe(state, event(ts=NOW + 2, ip="198.51.100.3"),
                            EventContext(history=history)) == []
