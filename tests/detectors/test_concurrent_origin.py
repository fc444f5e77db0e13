"""concurrent_origin: an established principal active from a new network within minutes of
its activity from a usual one (a replayed token used while its owner works)."""

from __future__ import annotations

import random

import pytest

from detectors.concurrent_origin import ConcurrentOrigin, Params
from detectors.event import GraphEvent
from tests.detectors.factory import (
    APP,
    HOME_IP,
    HOUR,
    LATENESS,
    NEW_IP,
    OTHER_APP,
    T0,
    delayed,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

MINUTE = 60.0
NEW_NET = "198.51.100.0/24"


def working(at: float, minutes: int = 30, make: type[GraphEvent] | None = None,
            **fields: object) -> list[GraphEvent]:
    """The owner at work from the home network: one request every five minutes."""
    build = make or event
    return [build(ts=at + m * MINUTE, ip=HOME_IP, **fields)  # type: ignore[operator]
            for m in range(0, minutes, 5)]


def test_fires_when_a_new_network_is_used_between_requests_from_the_usual_one() -> None:
    at = T0 + 10 * HOUR
    events = [*routine(), *working(at), event(ts=at + 12 * MINUTE, ip=NEW_IP, app_id=OTHER_APP)]
    [signal] = run(ConcurrentOrigin(), events).finals()
    assert signal.dedup == NEW_NET and signal.who.app_id == OTHER_APP  # the new network's app
    assert (signal.severity, signal.fidelity) == ("high", "high")
    evidence = signal.evidence
    assert evidence["new_network"] == NEW_NET and evidence["known_network"] == "203.0.113.0/24"
    assert evidence["gap_seconds"] == 0.0 and evidence["ip"] == NEW_IP
    assert evidence["requests_from_new_network"] == 1


@pytest.mark.parametrize(("gap_minutes", "fires"), [(9, True), (10, True), (11, False)])
def test_the_gap_edge(gap_minutes: int, fires: bool) -> None:
    at = T0 + 10 * HOUR
    events = [*routine(), event(ts=at, ip=HOME_IP),
              event(ts=at + gap_minutes * MINUTE, ip=NEW_IP)]
    assert bool(run(ConcurrentOrigin(Params(max_gap_seconds=600.0)), events).finals()) is fires


def test_silent_for_a_traveller_at_the_new_place_only() -> None:
    at = T0 + 10 * HOUR
    events = [*routine(), *working(at - 3 * HOUR, minutes=20),
              *[event(ts=at + m * MINUTE, ip=NEW_IP) for m in range(0, 60, 5)]]
    assert run(ConcurrentOrigin(), events).finals() == []


def test_silent_while_learning_and_for_known_networks_and_dual_stack() -> None:
    at = T0 + 10 * HOUR
    learning = [*routine(days=2), *working(at), event(ts=at + 5 * MINUTE, ip=NEW_IP)]
    assert run(ConcurrentOrigin(), learning).finals() == []
    two_known = in_time_order([*routine(), *routine(ip="192.0.2.10"), *working(at),
                               event(ts=at + 5 * MINUTE, ip="192.0.2.10")])
    assert run(ConcurrentOrigin(), two_known).finals() == []
    dual_stack = [*routine(), *working(at), event(ts=at + 5 * MINUTE, ip="2001:db8:5::1")]
    assert run(ConcurrentOrigin(), dual_stack).finals() == []


def test_a_user_is_one_principal_across_apps() -> None:
    """The usual network in one app, the new one in another: one principal in two places."""
    at = T0 + 10 * HOUR
    history = routine(make=delegated, app_id=APP)
    events = [*history, *working(at, make=delegated, app_id=APP),  # type: ignore[arg-type]
              delegated(ts=at + 7 * MINUTE, ip=NEW_IP, app_id=OTHER_APP)]
    [signal] = run(ConcurrentOrigin(), events).finals()
    assert signal.who.app_id == OTHER_APP and signal.who.identity_type == "delegated"


def test_the_same_final_signal_in_any_arrival_order() -> None:
    at = T0 + 10 * HOUR
    events = [*routine(), *working(at), event(ts=at + 3 * MINUTE, ip=NEW_IP),
              event(ts=at + 50 * MINUTE, ip="198.51.100.9")]  # same /24, later: one signal
    expected = run(ConcurrentOrigin(), in_time_order(events)).finals()
    assert [s.dedup for s in expected] == [NEW_NET]
    for seed in range(5):  # every delivery delayed by up to the lateness
        delays = [random.Random(seed * 1000 + i).uniform(0, LATENESS) for i in range(len(events))]
        assert run(ConcurrentOrigin(), delayed(events, delays)).finals() == expected


def test_the_signal_id_does_not_depend_on_which_app_reached_the_new_network_first() -> None:
    """Two apps of one user reach the new network; the earlier request arrives second (within
    the lateness): one signal, the same id and the same final body in both orders, naming
    the app of the earlier request."""
    at = T0 + 10 * HOUR
    usual = [*routine(), *working(at)]
    early = event(ts=at + 10 * MINUTE, ip=NEW_IP, app_id=OTHER_APP)
    late = event(ts=at + 12 * MINUTE, ip=NEW_IP, app_id=APP)
    results = [run(ConcurrentOrigin(), [*usual, *order])
               for order in ([early, late], [late, early])]
    ids = [{s.signal_id for s in r.signals} for r in results]
    assert ids[0] == ids[1] and len(ids[0]) == 1
    finals = [r.finals() for r in results]
    assert finals[0] == finals[1]
    assert finals[0][0].who.app_id == OTHER_APP
