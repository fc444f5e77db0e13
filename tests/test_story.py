"""The story: alerts (latest versions) with their signals as evidence, grouped by principal."""

from __future__ import annotations

from typing import Any

from detectors.base import Signal, SignalContext, Who
from graphsentry.alerting.book import AlertBook, AlertLayer
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.story import key_evidence, render_story

T0 = 1_790_000_000.0  # 2026-09-21T12:53:20Z
MINUTE = 60.0
TENANT = "11111111-1111-1111-1111-111111111111"
ATTACKER = "33333333-3333-3333-3333-333333333333"
MONITOR = "55555555-5555-5555-5555-555555555555"
APP = "22222222-2222-2222-2222-222222222222"


def who(principal: str) -> Who:
    return Who(TENANT, principal, "app_only", APP, None, principal)


def signal(detector: str, principal: str, start: float, first: float, evidence: dict[str, Any],
           *, severity: str = "high", fidelity: str = "medium", final: bool = True,
           length: float = 600.0, title: str | None = None) -> Signal:
    return Signal(detector, who(principal), start, start + length, first, first + MINUTE,
                  evidence, severity, fidelity, final, SignalContext(new_network="203.0.113.0/24"),
                  title or f"{detector} title", "", 3)


def run(signals: list[Signal]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every alert version and signal record the alert layer makes of ``signals``."""
    from detectors import catalog

    layer = AlertLayer(AlertPolicy(), {d: catalog.meta_of(d) for d in catalog.DETECTOR_IDS})
    books: dict[str, AlertBook] = {}
    alerts, records = [], []
    for item in signals:
        book = books.setdefault(item.who.principal_id, AlertBook(
            TENANT, item.who.principal_id, "app_only", None, item.who.principal_id))
        record, made = layer.on_signal(book, item, None, True)
        records.append(record)
        alerts.extend(made)
    return alerts, records


def attack() -> list[Signal]:
    """Discovery, then collection, then persistence (arriving out of order, provisional
    first), and a denial burst of another principal."""
    discovery = dict(requests=412, families={"count": 9, "capped": False, "sample": []},
                     source_ips={"count": 2, "capped": False,
                                 "sample": ["203.0.113.7", "203.0.113.9"]})
    return [
        signal("sharepoint_enumeration", ATTACKER, T0 + 30 * MINUTE, T0 + 31 * MINUTE,
               {"requests": 60, "sites": {"count": 6, "capped": False, "sample": []}},
               title="Sites walked", final=False),
        signal("graph_enumeration", ATTACKER, T0, T0 + 2 * MINUTE, discovery,
               title="Directory read"),
        signal("sharepoint_enumeration", ATTACKER, T0 + 30 * MINUTE, T0 + 31 * MINUTE,
               {"requests": 64, "sites": {"count": 7, "capped": False, "sample": []}},
               title="Sites walked"),
        signal("app_credential_added", ATTACKER, T0 + 60 * MINUTE, T0 + 70 * MINUTE,
               {"target_application": "app-9", "template": "/applications/{id}/addPassword"},
               fidelity="high", length=3600.0, title="Credential added"),
        signal("denied_requests", MONITOR, T0 - 600 * MINUTE, T0 - 599 * MINUTE,
               {"denied": 120}, severity="medium", fidelity="high", title="Denial burst"),
    ]


def test_each_alert_is_told_once_at_its_latest_version_with_its_signals() -> None:
    alerts, records = run(attack())
    assert len(alerts) > len({a["alert_id"] for a in alerts})  # several versions were made
    text = render_story(alerts, signals=records)
    assert text.count("INCIDENT ") == 1
    assert "Attack chain: discovery -> collection -> persistence" in text
    assert "stages     discovery -> collection -> persistence" in text
    # signals in the order they happened, with their final evidence
    order = [text.index(t) for t in ("Directory read", "Sites walked", "Credential added")]
    assert order == sorted(order)
    assert "requests 64" in text and "requests 60" not in text  # the final version
    assert "distinct families 9" in text
    assert "source IPs 203.0.113.7, 203.0.113.9" in text
    assert "target application app-9" in text


def test_principals_in_order_of_their_first_evidence_incidents_first() -> None:
    alerts, records = run(attack())
    text = render_story(alerts, signals=records)
    monitor, attacker = text.index(f"principal {MONITOR}"), text.index(f"principal {ATTACKER}")
    assert monitor < attacker  # the monitor's burst came first
    block = text[attacker:]
    assert block.count("INCIDENT ") == 1 and "ALERT " not in block  # one alert: the incident
    assert text.count("Denial burst") == 2  # its alert heading and its one signal


def test_without_signal_records_the_references_are_told() -> None:
    alerts, _ = run(attack())
    text = render_story(alerts)
    assert "graph_enumeration — Directory read" in text
    assert "requests 412" not in text  # no signal evidence given


def test_plain_text_within_width_and_colour_only_on_request() -> None:
    alerts, records = run(attack())
    text = render_story(alerts, width=100, signals=records)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "\x1b[1" in render_story(alerts, colour=True)


def test_a_long_heading_wraps_and_keeps_its_severity_and_risk() -> None:
    alerts, records = run(attack())
    long = [{**a, "title": "phoneMethods registered for user " + "x" * 70,
             "severity": "critical", "risk_score": 95} for a in alerts]
    text = render_story(long, width=60, signals=records)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "[critical, risk 95]" in " ".join(text.split())


def test_no_alerts_and_odd_evidence_do_not_crash() -> None:
    assert render_story([]) == "No alerts.\n"
    odd = {"alert_id": "x", "detector": "new_origin", "evidence": "not json",
           "first_seen": T0, "last_seen": T0, "principal_id": ATTACKER, "app_id": APP}
    assert key_evidence(odd) == []
    text = render_story([odd])
    assert text.startswith("=") and f"principal {ATTACKER}" in text and "ALERT " in text
