"""Alerts: schema round trips (Avro and JSON), evidence extraction, determinism, one-liner."""

from __future__ import annotations

from typing import Any

import pytest

from graphsentry.alerts import (
    alert_from_avro,
    alert_from_json,
    alert_to_avro,
    alert_to_json,
    evidence_record,
    format_alert,
)
from graphsentry.detection import run_embedded
from schemas import field_names, load_schema
from tests.engine.scenario import workload


@pytest.fixture(scope="module")
def alerts() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    run_embedded(workload(), on_alert=found.append)
    assert len(found) >= 4
    return found


def test_alerts_have_exactly_the_schema_fields(alerts: list[dict[str, Any]]) -> None:
    assert load_schema("graph_alert")["namespace"] == "io.graphsentry.alert.v1"
    for alert in alerts:
        assert list(alert) == field_names("graph_alert")
        assert "detected_at" not in alert


def test_avro_and_json_round_trips(alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        assert alert_from_avro(alert_to_avro(alert)) == alert
        text = alert_to_json(alert)
        assert "\n" not in text
        assert alert_from_json(text) == alert
        assert '"window_start":"2026-01-01T' in text and 'Z"' in text


def test_chain_alert_references_its_stage_alerts(alerts: list[dict[str, Any]]) -> None:
    chain = next(a for a in alerts if a["detector"] == "attack_chain")
    related = set(chain["evidence"]["related_alert_ids"])
    assert len(related) >= 3
    assert related <= {a["alert_id"] for a in alerts}
    assert chain["severity"] == "critical"


def test_alerts_are_a_function_of_the_input(alerts: list[dict[str, Any]]) -> None:
    again: list[dict[str, Any]] = []
    run_embedded(workload(), on_alert=again.append)
    key = lambda a: a["alert_id"]  # noqa: E731
    assert [alert_to_avro(a) for a in sorted(again, key=key)] == \
        [alert_to_avro(a) for a in sorted(alerts, key=key)]


def test_evidence_record_types_common_fields() -> None:
    record = evidence_record({"requests": 12, "denied": 0, "ok": True, "ratio": 0.5,
                              "source_ips": ["10.0.0.2", "10.0.0.1"],
                              "sample_request_ids": ("b", "a"), "nested": {"x": 1}})
    assert record["counts"] == {"requests": 12, "denied": 0}
    assert record["source_ips"] == ["10.0.0.1", "10.0.0.2"]
    assert record["sample_request_ids"] == ["a", "b"]
    assert record["user_agents"] == [] and record["related_alert_ids"] == []
    assert '"nested": {"x": 1}' in record["evidence_json"]


def test_format_alert_is_one_readable_line(alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        line = format_alert(alert)
        assert "\n" not in line
        assert alert["detector"] in line and alert["severity"].upper() in line
        assert line.startswith("2026-01-01T")  # the first evidence, not the window
