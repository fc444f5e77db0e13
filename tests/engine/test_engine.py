"""The per-key engine: lateness, duplicates, order independence, suppression, history cadence."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import pytest
from detectors.history import PrincipalHistory

from detectors.base import AppInfo
from detectors.event import GraphEvent
from graphsentry.config import config_from_dict
from graphsentry.engine import CtxParts, DetectionEngine, KeyState
from tests.engine.scenario import ATTACKER, T0, attack, benign, shuffled_within, workload


def events_of(records: list[dict[str, Any]]) -> list[GraphEvent]:
    return [GraphEvent.from_record(r) for r in records]


NO_PARTS = CtxParts()
Run = tuple[list[dict[str, Any]], dict[str, KeyState], list[Any]]


def run(engine: DetectionEngine, events: list[GraphEvent], parts: CtxParts = NO_PARTS) -> Run:
    states: dict[str, KeyState] = {}
    alerts: list[dict[str, Any]] = []
    updates: list[Any] = []
    for event in events:
        state = states.setdefault(f"{event.tenant_id}/{event.app_id}", engine.new_state())
        out = engine.process(state, event, parts)
        alerts.extend(out.alerts)
        if out.history is not None:
            updates.append(out.history)
    return alerts, states, updates


def engine_with(**sections: Any) -> DetectionEngine:
    return DetectionEngine(config_from_dict(sections))


def test_attack_chain_fires_and_benign_principals_stay_quiet() -> None:
    alerts, _, _ = run(engine_with(), events_of(workload()))
    detectors = sorted(a["detector"] for a in alerts)
    assert {"graph_enumeration", "storage_exfiltration", "app_credential_added",
            "attack_chain"} <= set(detectors)
    assert detectors.count("attack_chain") == 1
    assert {a["principal_id"] for a in alerts} == {ATTACKER}


def test_events_older_than_the_lateness_are_late_and_not_detected() -> None:
    engine = engine_with(time={"allowed_lateness_seconds": 600})
    state = engine.new_state()
    newest = events_of(benign(T0 + 7200, hours=0.1, principals=1))[0]
    assert not engine.process(state, newest).late
    discovery = events_of(attack(T0))[:40]  # two hours older than `newest`
    outputs = [engine.process(state, e) for e in discovery]
    assert all(o.late and not o.alerts for o in outputs)
    assert engine.counters.late == len(discovery)
    # within the lateness they are detected
    fresh = engine_with(time={"allowed_lateness_seconds": 7200})
    state = fresh.new_state()
    fresh.process(state, newest)
    found = [a for e in discovery for a in fresh.process(state, e).alerts]
    assert [a["detector"] for a in found] == ["graph_enumeration"]


def test_duplicates_are_dropped_before_detectors() -> None:
    engine = engine_with()
    events = events_of(attack(T0))[:40]
    once, _, _ = run(engine, events)
    engine2 = engine_with()
    twice, _, _ = run(engine2, [e for e in events for _ in range(2)])
    assert engine2.counters.duplicates == len(events)
    assert [a["alert_id"] for a in twice] == [a["alert_id"] for a in once]
    # same request id at another time is not a duplicate
    state = engine2.new_state()
    engine2.process(state, events[0])
    assert not engine2.process(state, replace(events[0], ts=events[0].ts + 1)).duplicate


def test_shuffled_arrival_within_the_lateness_gives_the_same_alert_ids() -> None:
    records = workload()
    expected, _, _ = run(engine_with(), events_of(records))
    assert expected
    for seed in (1, 2, 3):
        got, _, _ = run(engine_with(), events_of(shuffled_within(records, 7000, seed)))
        assert sorted(a["alert_id"] for a in got) == sorted(a["alert_id"] for a in expected)


@pytest.mark.parametrize("how", ["config_app", "config_principal", "allowed_app",
                                 "app_suppresses_detector"])
def test_suppressed_findings_produce_no_alert(how: str) -> None:
    app_id = attack()[0]["app_id"]
    sections: dict[str, Any] = {}
    app = None
    if how == "config_app":
        sections = {"suppress": {"apps": [app_id.upper()]}}
    elif how == "config_principal":
        sections = {"suppress": {"principals": [ATTACKER]}}
    elif how == "allowed_app":
        app = AppInfo(app_id, allowed=True)
    else:
        app = AppInfo(app_id, suppressed_detectors=frozenset({"graph_enumeration"}))
    engine = engine_with(**sections)
    alerts, _, _ = run(engine, events_of(attack()), CtxParts(app=app))
    if how == "app_suppresses_detector":
        assert "graph_enumeration" not in {a["detector"] for a in alerts}
        assert "storage_exfiltration" in {a["detector"] for a in alerts}
        assert engine.counters.suppressed == 1
    else:
        assert alerts == []
        assert engine.counters.suppressed >= 3


def test_history_is_emitted_when_it_learns_or_every_n_events() -> None:
    engine = engine_with(state={"history_save_every": 10})
    steady = events_of(benign(T0, hours=3, principals=1))  # same IP, UA, family throughout
    _, _, updates = run(engine, steady)
    # first event learns (network, UA, family); then one save per 10 events
    assert len(updates) == 1 + (len(steady) - 1) // 10
    assert all(isinstance(h, PrincipalHistory) for _, h in updates)
    # every event from a new network teaches the history something: each is saved
    learning = [replace(e, ip=f"192.0.{i}.1") for i, e in enumerate(steady[:12])]
    _, _, updates = run(engine_with(state={"history_save_every": 1000}), learning)
    assert len(updates) == len(learning)


def test_stored_history_is_adopted_then_merged() -> None:
    engine = engine_with()
    stored = PrincipalHistory()
    first = events_of(benign(T0, hours=0.2, principals=1))
    stored.observe(replace(first[0], ts=T0 - 86_400, ip="192.0.2.1"))
    state = engine.new_state()
    engine.process(state, first[0], CtxParts(history=stored))
    principal = state.principals[first[0].principal_id]
    assert principal.history.first_seen == T0 - 86_400
    later = PrincipalHistory()
    later.observe(replace(first[1], ts=T0 - 2 * 86_400, ip="192.0.2.9"))
    engine.process(state, first[1], CtxParts(history=later))
    assert state.principals[first[0].principal_id].history.first_seen == T0 - 2 * 86_400


def test_expiry_keeps_state_bounded_and_state_pickles() -> None:
    engine = engine_with(time={"allowed_lateness_seconds": 600})
    _, states, _ = run(engine, events_of(workload()))
    for state in states.values():
        assert all(ts >= state.max_ts - 600 - engine.expire_every for ts in state.seen.values())
        copy = pickle.loads(pickle.dumps(state))
        assert copy.max_ts == state.max_ts and copy.principals.keys() == state.principals.keys()
    attacker = states[f"{attack()[0]['tenant_id']}/{attack()[0]['app_id']}"]
    engine.expire(attacker, attacker.max_ts + 10 * 86_400)
    remaining = [s for p in attacker.principals.values() for s in p.detectors.values()]
    # only baselines (peaks of closed windows) outlive their windows
    assert all(not s.windows and s.peaks for s in remaining)


def test_seen_set_is_capped() -> None:
    engine = engine_with(state={"seen_capacity": 5})
    _, states, _ = run(engine, events_of(benign(T0, hours=1, principals=1)))
    assert all(len(s.seen) <= 5 for s in states.values())
