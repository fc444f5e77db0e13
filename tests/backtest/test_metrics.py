"""Scoring on hand-built alert and signal lists, in today's shape and the new alert layer's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from graphsentry.backtest.matching import parse_labels
from graphsentry.backtest.metrics import OVERALL, compute_metrics, duration, summary_lines
from graphsentry.backtest.streams import latest_alerts
from graphsentry.backtest.views import attack_rows, benign_rows, comparison_rows, metric_rows
from graphsentry.errors import GraphsentryError
from tests.backtest.factory import (
    ATTACKER,
    EXPECTED,
    MONITOR,
    STRANGER,
    T0,
    alert,
    labels_json,
    revised,
    signal,
)

MINUTE = timedelta(minutes=1)


def todays_alerts() -> list[dict[str, Any]]:
    """Today's shape: no revision, kind or signals."""
    return [
        alert("graph_enumeration", ATTACKER, T0 + 2 * MINUTE, T0 + 5 * MINUTE),
        alert("graph_enumeration", ATTACKER, T0 + 30 * MINUTE, T0 + 31 * MINUTE),
        alert("storage_exfiltration", ATTACKER, T0 + 40 * MINUTE, T0 + 45 * MINUTE),
        alert("attack_chain", ATTACKER, T0, T0 + 90 * MINUTE),
        alert("graph_enumeration", MONITOR, T0 - timedelta(hours=20)),  # its "other time"
        alert("new_origin", STRANGER, T0),
        alert("new_origin", ATTACKER, T0 - timedelta(days=2)),          # outside the attack
    ]


def labels() -> Any:
    return parse_labels(labels_json())


def test_todays_alerts_are_scored_as_alerts_and_signals() -> None:
    metrics = compute_metrics(todays_alerts(), labels(), events=1000, principal_days=200)
    overall = metrics.overall
    assert overall.detector == OVERALL
    assert (overall.alerts, overall.tp, overall.fp, overall.unlabeled) == (7, 4, 3, 1)
    assert overall.precision == pytest.approx(4 / 7)
    assert {o: metrics.outcome_count(o) for o in ("benign", "unlabeled", "outside")} == \
        {"benign": 1, "unlabeled": 1, "outside": 1}
    assert len(metrics.matched_signals) == 7  # no signal stream: the alerts are the signals
    assert (overall.expected, overall.found) == (len(EXPECTED), 3)
    attack = metrics.attacks[0]
    assert attack.detected and attack.ttd == 300.0  # the first alert raised: T0+5m
    assert attack.missing == ["app_credential_added"]
    enum = metrics.detector("graph_enumeration")
    assert enum is not None and (enum.alerts, enum.tp, enum.fp) == (3, 2, 1)
    assert enum.ttd_seconds == [300.0]  # the first alert's last_seen (T0+5m) minus the start
    assert metrics.benign_alerted == ["monitor"]
    rates = metrics.rates()
    assert rates == {"signals": pytest.approx(35.0), "alerts": pytest.approx(35.0),
                     "alert_updates": 0.0}


def test_an_alert_counts_once_at_its_latest_revision_whatever_the_arrival_order() -> None:
    key = "risk-1"
    versions = [
        revised("risk", ATTACKER, key, 1, T0 - timedelta(hours=1), T0 - timedelta(hours=1)),
        revised("risk", ATTACKER, key, 3, T0 - timedelta(hours=1), T0 + 50 * MINUTE),
        revised("risk", ATTACKER, key, 2, T0 - timedelta(hours=1), T0 + 10 * MINUTE),
    ]
    folded = latest_alerts(versions)
    assert len(folded) == 1 and folded[0].revision == 3 and folded[0].updates == 2
    assert folded[0].last_seen == (T0 + 50 * MINUTE).timestamp()
    metrics = compute_metrics(versions, labels(), events=10, principal_days=1000)
    assert metrics.overall.alerts == 1 and metrics.emissions == 3
    assert metrics.overall.updates == 2
    # Raised before the attack (revision 1), it reached the attack with revision 2.
    assert metrics.attacks[0].detected and metrics.attacks[0].ttd == 600.0
    assert metrics.rates()["alert_updates"] == pytest.approx(2.0)


def test_signals_give_detector_recall_and_alerts_give_precision() -> None:
    sigs = [signal("graph_enumeration", ATTACKER, T0 + MINUTE, T0 + 3 * MINUTE),
            signal("storage_exfiltration", ATTACKER, T0 + 40 * MINUTE),
            signal("app_credential_added", ATTACKER, T0 + 100 * MINUTE),
            signal("mailbox_enumeration", MONITOR, T0 - timedelta(hours=20)),
            signal("graph_enumeration", ATTACKER, T0 - timedelta(days=1))]
    incident = revised("attack_chain", ATTACKER, "inc-1", 1, T0 + MINUTE, T0 + 100 * MINUTE,
                       kind="incident", signals=sigs[:3])
    metrics = compute_metrics([incident], labels(), events=10, signals=sigs, principal_days=10)
    assert (metrics.overall.alerts, metrics.overall.tp, metrics.overall.fp) == (1, 1, 0)
    assert metrics.overall.precision == 1.0
    assert len(metrics.matched_signals) == 5
    attack = metrics.attacks[0]
    assert sorted(attack.found) == ["app_credential_added", "graph_enumeration",
                                    "storage_exfiltration"]
    assert attack.missing == ["attack_chain"]  # an incident alert is not an attack_chain signal
    assert attack.found["graph_enumeration"] == 180.0
    assert metrics.benign_results[0].signals and not metrics.benign_results[0].alerts
    assert metrics.benign_alerted == []  # signals on a benign principal are fine
    assert metrics.rates() == {"signals": 500.0, "alerts": 100.0, "alert_updates": 0.0}
    assert metrics.to_dict()["overall"]["fp_by_outcome"] == {"benign": 0, "unlabeled": 0,
                                                             "outside": 0}


def test_a_signal_stream_replaces_the_alerts_as_signals() -> None:
    metrics = compute_metrics(todays_alerts(), labels(), events=10, signals=[])
    assert metrics.matched_signals == [] and metrics.overall.found == 0
    assert metrics.attacks[0].detected  # alert-level recall still counts its alerts


def test_undetected_attack_and_missing_principal_days() -> None:
    metrics = compute_metrics([alert("new_origin", STRANGER, T0)], labels(), events=10)
    assert metrics.attack_recall == 0.0 and not metrics.attacks[0].detected
    assert metrics.principal_days is None and metrics.rates()["alerts"] is None
    lines = summary_lines(metrics)
    assert "0/1" in lines[0] and "missed mi_attack" in lines[0]
    assert "1 on unlabeled principals" in lines[2]
    assert "per 1,000 principal-days (-)" in lines[3]


@pytest.mark.parametrize(("record", "message"), [
    ({"detector": "x", "first_seen": T0, "last_seen": T0}, "missing alert_id"),
    ({"alert_id": "a", "detector": "x", "last_seen": T0, "kind": "weird", "first_seen": T0},
     "kind must be one of"),
    ({"alert_id": "a", "detector": "x", "first_seen": T0, "last_seen": T0, "revision": "two"},
     "not an int"),
    ({"alert_id": "a", "detector": "x"}, "no first_seen"),
])
def test_bad_alerts_say_what_is_wrong(record: dict[str, Any], message: str) -> None:
    with pytest.raises(GraphsentryError, match=message):
        latest_alerts([record])


def test_summary_lines_count_every_benign_alert() -> None:
    metrics = compute_metrics(todays_alerts(), labels(), events=1000, principal_days=200)
    attacks, detectors, precision, rates = summary_lines(metrics)
    assert "1/1 (100.0%)" in attacks and "median time to detect 5m00s" in attacks
    assert "3/4" in detectors and "mi_attack:app_credential_added" in detectors
    assert "4 of 7 alerts" in precision and "1 on 1 of 1 benign look-alikes (any time)" in precision
    assert "1 on attack principals outside their attack" in precision
    assert "signals 35.0, alerts 35.0, alert updates 0.0" in rates


def test_display_and_comparison_rows() -> None:
    lab = labels()
    a = compute_metrics(todays_alerts(), lab, events=1000, name="A")
    b = compute_metrics(todays_alerts()[:3], lab, events=1000, name="B")
    rows = metric_rows(a)
    assert rows[-1]["detector"] == OVERALL and rows[-1]["recall"] == "75.0%"
    compared = {r["detector"]: r for r in comparison_rows(a, b)}
    assert compared["attack_chain"]["d_recall"] == "-100.0pp"
    assert compared[OVERALL]["recall_b"] == "50.0%"
    assert attack_rows(a)[0]["detected"] == "yes" and attack_rows(a)[0]["missing"] == \
        "app_credential_added"
    assert benign_rows(a)[0]["alerts"] == 1


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (45, "45s"), (300, "5m00s"), (3 * 3600 + 300, "3h05m"), (-120, "-2m00s")])
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
