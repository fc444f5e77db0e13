from __future__ import annotations

from datetime import timedelta

import pytest

from graphsentry.backtest.matching import parse_labels
from graphsentry.backtest.metrics import (
    OVERALL,
    comparison_rows,
    compute_metrics,
    duration,
    metric_rows,
    summary_lines,
)
from tests.backtest.factory import ATTACKER, EXPECTED, MONITOR, STRANGER, T0, alert, labels_json


def sample_alerts() -> list[dict]:  # type: ignore[type-arg]
    minutes = timedelta(minutes=1)
    return [
        alert("graph_enumeration", ATTACKER, T0 + 2 * minutes, T0 + 5 * minutes),
        alert("graph_enumeration", ATTACKER, T0 + 30 * minutes, T0 + 31 * minutes),
        alert("storage_exfiltration", ATTACKER, T0 + 40 * minutes, T0 + 45 * minutes),
        alert("attack_chain", ATTACKER, T0, T0 + 90 * minutes),
        alert("graph_enumeration", MONITOR, T0 - timedelta(hours=20)),
        alert("new_origin", STRANGER, T0),
    ]


def test_per_detector_counts_and_rates() -> None:
    metrics = compute_metrics(sample_alerts(), parse_labels(labels_json()), events=2_000_000)
    enum = metrics.detector("graph_enumeration")
    assert enum is not None
    assert (enum.alerts, enum.tp, enum.fp, enum.unlabeled) == (3, 2, 1, 0)
    assert (enum.expected, enum.found, enum.fn) == (1, 1, 0)
    assert enum.precision == pytest.approx(2 / 3)
    assert enum.recall == 1.0
    assert enum.ttd_seconds == [300.0]  # earliest last_seen (T0+5m) minus the scenario start
    assert enum.per_million(metrics.events) == pytest.approx(1.5)
    credential = metrics.detector("app_credential_added")
    assert credential is not None
    assert (credential.alerts, credential.expected, credential.found, credential.fn) == (0, 1, 0, 1)
    assert credential.precision is None and credential.recall == 0.0
    origin = metrics.detector("new_origin")
    assert origin is not None and origin.unlabeled == 1 and origin.recall is None


def test_overall_recall_and_precision() -> None:
    metrics = compute_metrics(sample_alerts(), parse_labels(labels_json()), events=1000)
    overall = metrics.overall
    assert overall.detector == OVERALL
    assert (overall.expected, overall.found) == (len(EXPECTED), 3)
    assert (overall.alerts, overall.tp, overall.fp, overall.unlabeled) == (6, 4, 2, 1)
    assert metrics.benign_alerted == ["monitor"]
    attack = next(r for r in metrics.scenarios if r.scenario.name == "mi_attack")
    assert attack.missing == ["app_credential_added"]
    data = metrics.to_dict()
    assert data["overall"]["recall"] == pytest.approx(3 / 4)
    assert data["scenarios"][0]["missing"] == ["app_credential_added"]


def test_summary_lines_state_recall_and_false_positives() -> None:
    metrics = compute_metrics(sample_alerts(), parse_labels(labels_json()), events=1000)
    recall, fps, precision = summary_lines(metrics)
    assert "3/4" in recall and "mi_attack:app_credential_added" in recall
    assert "1 alert(s) on 1 of 1 benign" in fps and "1 unlabeled" in fps
    assert "(1 during the scenario, 0 at other times)" in fps
    assert "4 of 6" in precision


def test_display_and_comparison_rows() -> None:
    labels = parse_labels(labels_json())
    a = compute_metrics(sample_alerts(), labels, events=1000, name="A")
    b = compute_metrics(sample_alerts()[:3], labels, events=1000, name="B")
    rows = metric_rows(a)
    assert rows[-1]["detector"] == OVERALL and rows[-1]["recall"] == "75.0%"
    compared = {r["detector"]: r for r in comparison_rows(a, b)}
    assert compared["attack_chain"]["d_recall"] == "-100.0pp"
    assert compared[OVERALL]["recall_b"] == "50.0%"


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (45, "45s"), (300, "5m00s"), (3 * 3600 + 300, "3h05m"), (-120, "-2m00s")])
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
