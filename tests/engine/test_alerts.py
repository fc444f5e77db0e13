"""Alerts and signals of the scenario on the wire: schema fields, Avro and JSON round trips,
the incident and its stage alerts, determinism, the one-line form."""

from __future__ import annotations

from typing import Any

import pytest

from detectors import catalog
from detectors.event import GraphEvent
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.alerts import (
    alert_from_avro,
    alert_from_json,
    alert_to_avro,
    alert_to_json,
    format_alert,
    signal_from_avro,
    signal_to_avro,
)
from schemas import field_names, load_schema
from tests.detectors.factory import Recorder, Runner, in_time_order, settings
from tests.engine.scenario import workload

Outputs = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def outputs(policy: AlertPolicy | None = None) -> Outputs:
    events = in_time_order(GraphEvent.from_record(r) for r in workload())
    runner = Runner(Recorder(catalog.build_detectors(), settings(policy=policy)))
    runner.feed(events).flush()
    return runner.out.signals, runner.out.alerts


@pytest.fixture(scope="module")
def scenario() -> Outputs:
    """Signals and every alert version: the attacker's incident, growing."""
    signals, alerts = outputs()
    assert {a["kind"] for a in alerts} == {"incident"} and len(alerts) > 2
    return signals, alerts


def test_records_have_exactly_the_schema_fields(scenario: Outputs) -> None:
    assert load_schema("graph_alert")["namespace"] == "io.graphsentry.alert.v1"
    signals, alerts = scenario
    for alert in alerts:
        assert set(alert) == set(field_names("graph_alert"))
    for signal in signals:
        assert list(signal) == field_names("graph_signal")


def test_avro_and_json_round_trips(scenario: Outputs) -> None:
    signals, alerts = scenario
    for alert in alerts:
        ordered = {name: alert[name] for name in field_names("graph_alert")}
        assert alert_from_avro(alert_to_avro(alert)) == ordered
        text = alert_to_json(alert)
        assert "\n" not in text and alert_from_json(text) == alert
        assert '"window_start":"2026-01-01T' in text and 'Z"' in text
    for signal in signals:
        assert signal_from_avro(signal_to_avro(signal)) == signal


def test_the_incident_names_its_stages_in_order_and_is_the_principals_one_alert(
        scenario: Outputs) -> None:
    _, alerts = scenario
    last = {a["alert_id"]: a for a in alerts}
    [incident] = [a for a in last.values() if a["kind"] == "incident"]
    assert incident["severity"] == "critical" and incident["final"]
    assert incident["title"].startswith("Attack chain: discovery -> ")
    same_day = [a for a in last.values() if a["principal_id"] == incident["principal_id"]
                and a["window_start"] == incident["window_start"]]
    assert same_day == [incident]  # the detector alert it began as grew into it
    starts = [s["window_start"] for s in incident["signals"]]
    assert starts == sorted(starts)
    # stages as they began: first appearance among each detector's finest signals
    finest = [s for s in incident["signals"] if s["window_end"] - s["window_start"] == min(
        r["window_end"] - r["window_start"] for r in incident["signals"]
        if r["detector"] == s["detector"])]
    assert incident["stages"] == list(dict.fromkeys(s["stage"] for s in finest))


def test_alerts_are_a_function_of_the_input(scenario: Outputs) -> None:
    again = outputs()
    assert again == scenario


def test_format_alert_is_one_readable_line(scenario: Outputs) -> None:
    for alert in scenario[1]:
        line = format_alert(alert)
        assert "\n" not in line
        assert alert["detector"] in line and alert["severity"].upper() in line
        assert line.startswith("2026-01-01T")  # the first evidence, not the window
        assert f"rev {alert['revision']}" in line
