"""new_origin: an established principal calls from a network (and AS) it never used before."""

from __future__ import annotations

from typing import Any

import pytest

from detectors.base import AppInfo
from detectors.event import GraphEvent
from detectors.new_origin import NewOrigin, Params
from graphsentry.engine import CtxParts
from tests.detectors.factory import (
    APP,
    DAY,
    HOUR,
    LATENESS,
    NEW_IP,
    OTHER_APP,
    T0,
    delegated,
    event,
    in_time_order,
    routine,
    run,
)

NEW_NET = "198.51.100.0/24"


def established(days: int = 5, **fields: Any) -> list[GraphEvent]:
    return routine(days, **fields)


def test_fires_for_an_established_principal_on_a_new_network() -> None:
    result = run(NewOrigin(), [*established(), event(ts=T0 + 10 * HOUR, ip=NEW_IP)])
    [signal] = result.finals()
    assert signal.dedup == NEW_NET and signal.severity == "high"  # app-only: fixed origins
    assert signal.fidelity == "medium" and not signal.context.learning
    evidence = signal.evidence
    assert evidence["network"] == NEW_NET and evidence["ip"] == NEW_IP
    assert evidence["known_networks"] == 1 and evidence["known_networks_sample"] == [
        "203.0.113.0/24"]
    assert evidence["user_agent_known"] is True and evidence["requests_from_network"] == 1


def test_a_delegated_user_is_medium_and_low_fidelity() -> None:
    history = established(make=delegated)
    [signal] = run(NewOrigin(), [*history, delegated(ts=T0 + 10 * HOUR, ip=NEW_IP)]).finals()
    assert (signal.severity, signal.fidelity) == ("medium", "low")


@pytest.mark.parametrize(("days", "fires"), [(2, False), (3, True)])
def test_the_learning_period_edge(days: int, fires: bool) -> None:
    """Established after three active days (first seen at least two days before)."""
    events = [*established(days), event(ts=T0 + 10 * HOUR, ip=NEW_IP)]
    assert bool(run(NewOrigin(), events).finals()) is fires


def test_silent_on_a_known_network_or_a_new_address_in_it() -> None:
    events = [*established(), event(ts=T0 + 10 * HOUR, ip="203.0.113.250")]
    assert run(NewOrigin(), events).signals == []


def test_silent_on_a_new_network_of_a_known_autonomous_system() -> None:
    asns = {"203.0.113.10": 64500, "192.0.2.9": 64500}
    events = [*established(), event(ts=T0 + 10 * HOUR, ip="192.0.2.9")]
    result = run(NewOrigin(), events, parts=lambda e: CtxParts(asn=asns.get(str(e.ip))))
    assert result.signals == []


def test_silent_without_an_address() -> None:
    events = [*established(), event(ts=T0 + 10 * HOUR, ip=None),
              event(ts=T0 + 11 * HOUR, ip="not-an-ip")]
    assert run(NewOrigin(), events).signals == []


def test_one_signal_per_network_and_hour_with_the_earliest_as_evidence() -> None:
    uses = [event(ts=T0 + 10 * HOUR + 300, ip=NEW_IP, template="/users"),
            event(ts=T0 + 10 * HOUR + 100, ip="198.51.100.78", template="/groups"),
            event(ts=T0 + 10 * HOUR + 200, ip="2001:db8:5:1::1")]
    result = run(NewOrigin(), established() + uses)
    by_network = {s.dedup: s for s in result.finals()}
    assert set(by_network) == {NEW_NET, "2001:db8:5::/48"}
    v4 = by_network[NEW_NET]
    assert v4.evidence["ip"] == "198.51.100.78" and v4.evidence["template"] == "/groups"
    assert v4.evidence["requests_from_network"] == 2
    assert v4.evidence["source_ips"]["sample"] == ["198.51.100.77", "198.51.100.78"]


def test_a_network_in_continuous_use_stops_being_new_after_one_lateness() -> None:
    uses = [event(ts=T0 + 10 * HOUR + n * 600, ip=NEW_IP) for n in range(24)]  # four hours
    result = run(NewOrigin(), established() + uses)
    windows = sorted(s.window_start for s in result.finals())
    assert windows == [T0 + 10 * HOUR, T0 + 11 * HOUR, T0 + 12 * HOUR]
    last_new = max(s.last_seen for s in result.finals())
    assert last_new == T0 + 10 * HOUR + LATENESS  # first use + lateness still new


def test_where_from_is_learnt_per_user_across_apps() -> None:
    """A user who worked from home in Teams for days opens the Azure CLI from home: not a new
    origin (issue 12, case 8); the same from a new network is."""
    history = established(make=delegated, app_id=OTHER_APP)
    cli = [delegated(ts=T0 + 10 * HOUR, app_id=APP, user_agent="azure-cli/2.61")]
    assert run(NewOrigin(), history + cli).signals == []
    away = [delegated(ts=T0 + 10 * HOUR, app_id=APP, ip=NEW_IP)]
    [signal] = run(NewOrigin(), history + away).finals()
    assert signal.context.new_client is True  # the app is new to her too


def test_silent_for_events_later_than_the_lateness_and_not_learnt_from_them() -> None:
    newest = event(ts=T0 + DAY)
    result = run(NewOrigin(), [*established(), newest, event(ts=T0 + 10 * HOUR, ip=NEW_IP)])
    assert result.signals == []
    assert NEW_NET not in result.profile().networks


def test_a_first_party_app_is_context_not_a_reason_to_stay_quiet() -> None:
    app = AppInfo(APP, "Microsoft Graph PowerShell", first_party=True)
    [signal] = run(NewOrigin(), [*established(), event(ts=T0 + 10 * HOUR, ip=NEW_IP)],
                   app=app).finals()
    assert signal.context.first_party_app is True


def test_window_is_configurable() -> None:
    uses = [event(ts=T0 + 10 * HOUR + n * 600, ip=NEW_IP) for n in range(4)]
    result = run(NewOrigin(Params(window_seconds=600)), established() + uses)
    assert len(result.finals()) == 4
    with pytest.raises(ValueError, match="window_seconds"):
        Params(window_seconds=-1)


def test_same_signals_in_any_order_within_the_lateness() -> None:
    uses = [event(ts=T0 + 10 * HOUR + n * 900, ip=ip)
            for n, ip in enumerate([NEW_IP, "192.0.2.1", NEW_IP, "2001:db8::1"] * 2)]
    history = in_time_order(established())
    expected = {s.signal_id: s for s in run(NewOrigin(), history + uses).finals()}
    for order in (uses[::-1], uses[1::2] + uses[::2]):
        got = {s.signal_id: s for s in run(NewOrigin(), history + order).finals()}
        assert got == expected
