"""PrincipalHistory: order independence, caps, merge, JSON round trip; network prefixes."""

from __future__ import annotations

import json
import pickle
import random

import pytest
from detectors.history import MAX_ENTRIES, PrincipalHistory, _remember
from hypothesis import given
from hypothesis import strategies as st

from detectors.event import GraphEvent
from detectors.networks import network_of
from tests.detectors.factory import T0, event


def history_of(events: list[GraphEvent], asn: int | None = None) -> PrincipalHistory:
    history = PrincipalHistory()
    for e in events:
        history.observe(e, asn)
    return history


def test_observe_records_first_seen_values_and_counts() -> None:
    history = history_of([
        event(ts=T0 + 60, ip="198.51.100.7", user_agent="sdk/1", family="users"),
        event(ts=T0, ip="198.51.100.200", user_agent="sdk/1", family="groups"),
    ], asn=64500)
    assert (history.first_seen, history.last_seen, history.event_count) == (T0, T0 + 60, 2)
    assert history.networks == {"198.51.100.0/24": T0}
    assert history.asns == {64500: T0}
    assert history.user_agents == {"sdk/1": T0}
    assert history.families == {"users": T0 + 60, "groups": T0}


def test_only_successful_writes_become_write_templates() -> None:
    history = history_of([
        event(method="POST", template="/groups", is_write=True, status=201),
        event(method="PATCH", template="/users/{id}", is_write=True, status=403),
        event(method="GET", template="/users", is_write=False),
    ])
    assert list(history.write_templates) == ["/groups"]


def test_missing_or_bad_ip_and_user_agent_are_skipped() -> None:
    history = history_of([event(ip=None, user_agent=None), event(ip="not-an-ip")])
    assert history.networks == {} and history.user_agents == {"Mozilla/5.0": T0}
    assert history.event_count == 2


def test_user_agents_are_truncated() -> None:
    history = history_of([event(user_agent="x" * 5000)])
    assert [len(ua) for ua in history.user_agents] == [256]


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 1000)), max_size=60),
       st.randoms(use_true_random=False))
def test_capped_map_keeps_the_oldest_values_in_any_order(observations: list[tuple[int, int]],
                                                         rnd: random.Random) -> None:
    """Whatever the order, a capped map holds the ``cap`` values first seen earliest."""
    cap = 5
    shuffled = list(observations)
    rnd.shuffle(shuffled)
    results = []
    for order in (observations, shuffled):
        known: dict[str, float] = {}
        for key, ts in order:
            _remember(known, str(key), float(ts), cap)
        results.append(known)
    first_seen: dict[str, float] = {}
    for key, ts in observations:
        first_seen[str(key)] = min(float(ts), first_seen.get(str(key), float(ts)))
    expected = dict(sorted(first_seen.items(), key=lambda kv: (kv[1], kv[0]))[:cap])
    assert results[0] == results[1] == expected


def test_full_map_drops_newer_values_and_admits_older_ones() -> None:
    known = {f"k{i:03d}": T0 + i for i in range(MAX_ENTRIES)}
    _remember(known, "late", T0 + 10_000)
    assert "late" not in known and len(known) == MAX_ENTRIES
    _remember(known, "early", T0 - 1)
    assert "early" in known and f"k{MAX_ENTRIES - 1:03d}" not in known


def test_established_needs_age_and_events() -> None:
    history = history_of([event(ts=T0 + i) for i in range(10)])
    assert history.established(T0 + 100, min_age_seconds=100, min_events=10)
    assert not history.established(T0 + 99, min_age_seconds=100, min_events=10)
    assert not history.established(T0 + 100, min_age_seconds=100, min_events=11)
    assert not PrincipalHistory().established(T0, 0, 0)


def test_merge_is_commutative_idempotent_and_does_not_double_count() -> None:
    a = history_of([event(ts=T0, ip="198.51.100.1"), event(ts=T0 + 5, family="groups")], 64500)
    b = history_of([event(ts=T0 - 10, ip="203.0.113.9"), event(ts=T0 + 50)], 64501)
    ab, ba = a.merge(b), b.merge(a)
    assert ab.to_dict() == ba.to_dict()
    assert ab.merge(ab).to_dict() == ab.to_dict()
    assert (ab.first_seen, ab.last_seen, ab.event_count) == (T0 - 10, T0 + 50, 2)
    assert ab.networks == {"203.0.113.0/24": T0 - 10, "198.51.100.0/24": T0}
    assert ab.asns == {64500: T0, 64501: T0 - 10}
    assert a.asns == {64500: T0}  # inputs untouched


def test_json_and_pickle_round_trips() -> None:
    history = history_of([event(ts=T0, method="POST", is_write=True, status=201)], asn=64500)
    restored = PrincipalHistory.from_dict(json.loads(json.dumps(history.to_dict())))
    assert restored == history
    assert pickle.loads(pickle.dumps(history)) == history


@pytest.mark.parametrize(("data", "message"), [
    ([], "expected an object"),
    ({"version": 2}, "unsupported version"),
    ({"event_count": -1}, "event_count"),
    ({"first_seen": "yesterday"}, "first_seen"),
    ({"networks": []}, "networks must be an object"),
    ({"families": {"users": None}}, "families"),
    ({"asns": {"AS64500": 1.0}}, "not an integer"),
])
def test_from_dict_rejects_bad_input_with_the_field_named(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrincipalHistory.from_dict(data)  # type: ignore[arg-type]


def test_directory_families_before_respects_time() -> None:
    history = history_of([event(ts=T0, family="users"), event(ts=T0 + 10, family="groups"),
                          event(ts=T0, family="onedrive")])
    assert history.directory_families_before(T0 + 5) == ["users"]
    assert history.directory_families_before(T0 + 10) == ["groups", "users"]


@pytest.mark.parametrize(("ip", "network"), [
    ("203.0.113.10", "203.0.113.0/24"),
    (" 203.0.113.10 ", "203.0.113.0/24"),
    ("2001:db8:1:2::5", "2001:db8:1::/48"),
    ("::ffff:198.51.100.77", "198.51.100.0/24"),
    ("", None),
    (None, None),
    ("203.0.113.300", None),
    ("host.example", None),
])
def test_network_of(ip: str | None, network: str | None) -> None:
    assert network_of(ip) == network
