"""Matching findings to labels: attack span plus latency, no slack, benign at any time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from graphsentry.backtest.matching import load_labels, match_alerts, parse_labels, to_epoch
from graphsentry.errors import GraphsentryError
from tests.backtest.factory import APP, ATTACKER, MONITOR, STRANGER, T0, alert, labels_json


def outcome(detector: str, principal: str, offset: timedelta, **overrides: object) -> str:
    labels = parse_labels(labels_json())
    return match_alerts([alert(detector, principal, T0 + offset, **overrides)],
                        labels)[0].outcome


@pytest.mark.parametrize(("offset", "expected"), [
    (timedelta(seconds=-1), "outside"),          # no slack before the first record
    (timedelta(0), "tp"),
    (timedelta(hours=1), "tp"),
    (timedelta(hours=4), "tp"),                   # end (2 h) + 2 h detection latency, inclusive
    (timedelta(hours=4, seconds=1), "outside"),
])
def test_attack_span_edges(offset: timedelta, expected: str) -> None:
    assert outcome("graph_enumeration", ATTACKER, offset) == expected


def test_latency_is_a_parameter() -> None:
    labels = parse_labels(labels_json())
    late = alert("graph_enumeration", ATTACKER, T0 + timedelta(hours=2, minutes=30))
    assert match_alerts([late], labels, latency=1799.0)[0].outcome == "outside"
    assert match_alerts([late], labels, latency=1800.0)[0].outcome == "tp"  # inclusive


def test_span_overlapping_the_attack_matches() -> None:
    labels = parse_labels(labels_json())
    long_alert = alert("attack_chain", ATTACKER, T0 - timedelta(hours=3), T0 + timedelta(hours=1))
    assert match_alerts([long_alert], labels)[0].outcome == "tp"


def test_a_user_is_one_principal_across_apps() -> None:
    assert outcome("new_origin", ATTACKER, timedelta(minutes=5), app_id="other-app") == "tp"


def test_benign_principal_is_fp_at_any_time() -> None:
    for hours in (-20, -1, 0, 30, 200):
        assert outcome("denied_requests", MONITOR, timedelta(hours=hours)) == "benign"


def test_unknown_principal_is_unlabeled() -> None:
    assert outcome("graph_enumeration", STRANGER, timedelta(0)) == "unlabeled"


def test_iso_strings_and_epoch_micros_are_times() -> None:
    iso = T0.isoformat().replace("+00:00", "Z")
    assert to_epoch(iso) == T0.timestamp()
    assert to_epoch(int(T0.timestamp() * 1_000_000)) == T0.timestamp()
    assert to_epoch(int(T0.timestamp() * 1000)) == T0.timestamp()
    labels = parse_labels(labels_json())
    matched = match_alerts([alert("graph_enumeration", ATTACKER, T0, first_seen=iso,
                                  last_seen=iso)], labels)
    assert matched[0].outcome == "tp"


def test_principal_days_come_from_the_labels_run() -> None:
    data = labels_json()
    assert parse_labels(data).principal_days is None
    data["run"] = {"principal_days": 420}
    assert parse_labels(data).principal_days == 420
    assert parse_labels(data).scenarios[0].app_id == APP


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("scenarios"), "'scenarios' list"),
    (lambda d: d["scenarios"][0].pop("principal_id"), "missing principal_id"),
    (lambda d: d["scenarios"][0].update(kind="weird"), "kind must be attack or benign"),
    (lambda d: d["scenarios"][0].update(start="yesterday"), "scenario #0"),
    (lambda d: d["scenarios"][0].update(end="2020-01-01T00:00:00Z"), "end is before start"),
])
def test_bad_labels_say_what_is_wrong(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = labels_json()
    mutate(data)
    with pytest.raises(GraphsentryError, match=message):
        parse_labels(data)


def test_load_labels_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphsentryError, match="cannot read labels"):
        load_labels(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GraphsentryError, match="is not JSON"):
        load_labels(bad)
