"""detectors.profile: first-seen maps, rings, sealed queries, caps, persistence.

The profile's promise is that every query sealed at ``before`` answers the same whatever
happened after ``before`` (later events, in any order), and that the maps stay bounded in a
way that does not depend on the order of calls.
"""

from __future__ import annotations

import json
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.profile import (
    DAY,
    HOUR,
    MAX_ENTRIES,
    MAX_MEASURES,
    MAX_USER_AGENT_LENGTH,
    RING_DAYS,
    SLOT_SECONDS,
    SLOTS_PER_DAY,
    Profile,
    Ring,
    hour_of,
    known_before,
    remember,
    slot_of,
)

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
KEY = ("app-1", "storage_exfiltration.downloads", 600.0)


# -- first-seen maps --------------------------------------------------------------------------

def test_remember_keeps_the_earliest_time_and_says_when_a_key_is_new() -> None:
    known: dict[str, float] = {}
    assert remember(known, "a", 50.0) is True
    assert remember(known, "a", 70.0) is False and known["a"] == 50.0
    assert remember(known, "a", 20.0) is False and known["a"] == 20.0


def test_known_before_is_strict() -> None:
    known = {"a": 100.0}
    assert known_before(known, "a", 100.0001)
    assert not known_before(known, "a", 100.0)
    assert not known_before(known, "b", 1e12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30)), max_size=80),
       st.randoms(use_true_random=False))
def test_a_full_map_keeps_the_oldest_keys_whatever_the_order(
        calls: list[tuple[int, int]], rng: random.Random) -> None:
    cap = 8
    shuffled = list(calls)
    rng.shuffle(shuffled)
    maps = []
    for order in (calls, shuffled):
        known: dict[str, float] = {}
        for key, ts in order:
            remember(known, f"k{key:02d}", float(ts), cap)
        maps.append(known)
    assert maps[0] == maps[1]
    first: dict[str, float] = {}
    for key, ts in calls:
        name = f"k{key:02d}"
        first[name] = min(first.get(name, float(ts)), float(ts))
    oldest = sorted(first.items(), key=lambda kv: (kv[1], kv[0]))[:cap]
    assert maps[0] == dict(oldest)


def test_a_full_map_answers_exactly_before_the_time_of_its_newest_kept_key() -> None:
    """Everything first seen before ``before`` is kept as long as fewer than the cap are:
    sealed queries stay exact on a full map."""
    known: dict[str, float] = {}
    for n in range(MAX_ENTRIES + 10):
        remember(known, f"net-{n:04d}", T0 + n)
    assert len(known) == MAX_ENTRIES
    assert known_before(known, "net-0000", T0 + 1)
    assert known_before(known, f"net-{MAX_ENTRIES - 1:04d}", T0 + MAX_ENTRIES)
    assert not known_before(known, f"net-{MAX_ENTRIES:04d}", T0 + 10**6)


def test_saturated_is_sealed() -> None:
    """A map is saturated at ``before`` only when it held the cap of keys first seen before
    then: keys learnt later (arriving in any order) never change the answer."""
    known: dict[str, float] = {}
    for n in range(MAX_ENTRIES - 1):
        remember(known, f"net-{n:04d}", T0 + n)
    assert not Profile.saturated(known, T0 + 10**6)
    remember(known, "net-late", T0 + 10**5)
    assert len(known) == MAX_ENTRIES
    assert not Profile.saturated(known, T0 + 10**5)
    assert Profile.saturated(known, T0 + 10**5 + 1)


# -- rings ---------------------------------------------------------------------------------------

def test_ring_put_keeps_the_maximum_and_add_sums_per_slot() -> None:
    ring = Ring(SLOTS_PER_DAY)
    ring.put(T0 + 60, 5.0)
    ring.put(T0 + 120, 3.0)
    ring.put(T0 + SLOT_SECONDS, 7.0)
    assert ring.peak(T0 + DAY) == 7.0
    assert ring.peak(T0 + DAY, slot=0, spread=0) == 5.0
    hours = Ring(24)
    for minute in range(3):
        hours.add(T0 + 10 * HOUR + minute * 60)
    assert hours.value_at(T0 + 10 * HOUR) == 3.0
    assert hours.value_at(T0 + 11 * HOUR) == 0.0 and hours.value_at(T0 - DAY) == 0.0


@pytest.mark.parametrize(("before", "expected"), [
    (T0 + SLOT_SECONDS - 1, 0.0),  # the slot has not ended: not sealed
    (T0 + SLOT_SECONDS, 5.0),      # ended exactly at before: sealed
    (T0 + RING_DAYS * DAY - 1, 5.0),
    (T0 + RING_DAYS * DAY, 0.0),   # fourteen days later its day left the ring
])
def test_ring_peak_reads_only_slots_ended_by_before_within_fourteen_days(
        before: float, expected: float) -> None:
    ring = Ring(SLOTS_PER_DAY)
    ring.put(T0 + 60, 5.0)
    assert ring.peak(before) == expected


def test_ring_slot_filter_is_circular_around_midnight() -> None:
    ring = Ring(SLOTS_PER_DAY)
    ring.put(T0 + 23 * HOUR, 9.0)       # slot 7 of day 0
    ring.put(T0 + DAY + 4 * HOUR, 4.0)  # slot 1 of day 1
    before = T0 + 3 * DAY
    assert ring.peak(before, slot=0) == 9.0  # neighbours of slot 0: 7 and 1
    assert ring.peak(before, slot=6) == 9.0
    assert ring.peak(before, slot=2) == 4.0
    assert ring.peak(before, slot=4) == 0.0
    assert ring.days_active_at(before, 0) == 2 and ring.days_active_at(before, 4) == 0
    assert ring.active_days(before) == 2


def test_a_newer_day_resets_its_row_and_older_writes_are_ignored() -> None:
    ring = Ring(SLOTS_PER_DAY)
    ring.put(T0, 8.0)
    ring.put(T0 + RING_DAYS * DAY, 2.0)  # same row, fourteen days later
    assert ring.peak(T0 + (RING_DAYS + 1) * DAY) == 2.0
    ring.put(T0 + 10, 99.0)  # the old day: no longer in the ring
    assert ring.peak(T0 + (RING_DAYS + 1) * DAY) == 2.0


def test_ring_round_trips_through_dict_and_pickle_and_rejects_a_wrong_size() -> None:
    ring = Ring(SLOTS_PER_DAY)
    for n in range(20):
        ring.put(T0 + n * 5_000, float(n))
    assert Ring.from_dict(json.loads(json.dumps(ring.to_dict()))) == ring
    assert pickle.loads(pickle.dumps(ring)) == ring
    broken = ring.to_dict() | {"per_day": 24}
    with pytest.raises(ValueError, match="wrong size"):
        Ring.from_dict(broken)


def test_a_ring_holds_arrays_only_for_days_written() -> None:
    ring = Ring(24)
    assert ring.rows == [None] * RING_DAYS
    ring.add(T0 + 5)
    ring.add(T0 + 3 * DAY)
    assert sum(row is not None for row in ring.rows) == 2
    again = Ring.from_dict(ring.to_dict())  # the JSON form is flat; unwritten days stay unset
    assert sum(row is not None for row in again.rows) == 2 and again == ring
    assert again.value_at(T0) == 1.0 and again.active_days(T0 + 4 * DAY) == 2


def test_slot_and_hour_of_a_time() -> None:
    assert slot_of(T0) == 0 and slot_of(T0 + 3 * HOUR - 1) == 0 and slot_of(T0 + 23 * HOUR) == 7
    assert hour_of(T0 + 13 * HOUR + 59 * 60) == 13


# -- learning --------------------------------------------------------------------------------

def test_observe_learns_networks_asns_agents_apps_and_hours() -> None:
    profile = Profile()
    profile.observe(T0 + 100, "203.0.113.10", 64500, "x" * 300, "app-1")
    profile.observe(T0 + 50, "2001:db8:1:2::5", None, None, "app-2")
    assert (profile.first_seen, profile.last_seen, profile.events) == (T0 + 50, T0 + 100, 2)
    assert profile.networks == {"203.0.113.0/24": T0 + 100, "2001:db8:1::/48": T0 + 50}
    assert profile.asns == {64500: T0 + 100}
    assert profile.user_agents == {"x" * MAX_USER_AGENT_LENGTH: T0 + 100}
    assert profile.apps == {"app-1": T0 + 100, "app-2": T0 + 50}
    assert profile.hours.value_at(T0) == 2.0


def test_an_earlier_repeat_of_the_last_event_still_lowers_first_seen() -> None:
    """The look-up cache for an event that taught nothing new must not hide an earlier one."""
    profile = Profile()
    args = ("203.0.113.10", 64500, "agent", "app-1")
    profile.observe(T0 + 100, *args)
    profile.observe(T0 + 200, *args)  # taught nothing: cached
    profile.observe(T0 + 10, *args)   # earlier: must not be skipped
    assert profile.networks["203.0.113.0/24"] == T0 + 10
    assert profile.user_agents["agent"] == T0 + 10 and profile.apps["app-1"] == T0 + 10


def test_record_keeps_values_that_can_matter_within_the_measure_cap() -> None:
    profile = Profile()
    profile.record(KEY, T0, 4.0, minimum=5.0)
    profile.record(KEY, T0, 0.0, minimum=0.0)
    assert profile.measures == {}
    profile.record(KEY, T0, 6.0, minimum=5.0)
    assert profile.measures[KEY].per_day == SLOTS_PER_DAY
    day_key = ("app-1", "storage_exfiltration.downloads", DAY)
    profile.record(day_key, T0, 6.0, minimum=5.0)
    assert profile.measures[day_key].per_day == 1
    for n in range(MAX_MEASURES + 5):
        profile.record(("app-1", f"m{n}", 600.0), T0, 1.0, minimum=0.5)
    assert len(profile.measures) == MAX_MEASURES


def test_mark_keeps_the_first_time() -> None:
    profile = Profile()
    profile.mark("credential:x", T0 + 10)
    profile.mark("credential:x", T0 + 5)
    profile.mark("credential:x", T0 + 50)
    assert profile.knows("marks", "credential:x", T0 + 6)
    assert not profile.knows("marks", "credential:x", T0 + 5)


# -- sealed queries ----------------------------------------------------------------------------

def active(days: int, hours: tuple[int, ...] = (10,), end: float = T0) -> Profile:
    profile = Profile()
    for d in range(days, 0, -1):
        for h in hours:
            profile.observe(end - d * DAY + h * HOUR + 60, "203.0.113.10", None, "a", "app")
    return profile


@pytest.mark.parametrize(("days", "before", "established"), [
    (3, T0, True),                # three active days, first seen three days ago
    (2, T0, False),               # only two active days
    (3, T0 - DAY + 10 * HOUR + 60, False),  # the third day's activity is not sealed yet
    (3, T0 - DAY + 11 * HOUR, True),        # its hour ended: sealed
])
def test_established_needs_days_and_age_before_the_sealed_hour(
        days: int, before: float, established: bool) -> None:
    assert active(days).established(before, min_days=3, min_age=2 * DAY) is established


def test_established_needs_the_minimum_age() -> None:
    profile = Profile()
    for h in range(0, 24, 6):  # active on three days, but first seen 1.5 days ago
        profile.observe(T0 - 1.5 * DAY + h * HOUR, None, None, None, "app")
    assert profile.hours.active_days(T0) == 2
    assert not profile.established(T0 + DAY, min_days=2, min_age=3 * DAY)
    assert profile.established(T0 + DAY, min_days=2, min_age=2 * DAY)


def test_sealed_answers_ignore_what_arrives_after_before() -> None:
    """Events after ``before`` (here in the same hour, and days later) never change a sealed
    answer, whether it was asked (and cached) before they arrived or only after."""
    before = T0 + 10 * HOUR + 30 * 60
    early, late = active(2), active(2)
    asked_early = (early.established(before, 3, DAY), early.usual_hour(before, before),
                   early.peak(KEY, before), early.knows_network("198.51.100.1", before))
    for profile in (early, late):
        profile.observe(before + 60, "198.51.100.1", None, "a", "app")  # same hour
        profile.observe(T0 + 5 * DAY, "198.51.100.1", None, "a", "app")
        profile.record(KEY, T0 + 10 * HOUR + 600, 50.0, 1.0)
    asked_late = (late.established(before, 3, DAY), late.usual_hour(before, before),
                  late.peak(KEY, before), late.knows_network("198.51.100.1", before))
    assert asked_early == asked_late == (False, True, 0.0, False)
    assert early.established(before, 3, DAY) is False  # the cached answer stands


def test_peak_is_sealed_at_a_slot_boundary_and_filtered_by_time_of_day() -> None:
    profile = Profile()
    profile.record(KEY, T0 + 1 * HOUR, 30.0, 1.0)   # slot 0 of day 0
    profile.record(KEY, T0 + 14 * HOUR, 90.0, 1.0)  # slot 4
    assert profile.peak(KEY, T0 + 2 * HOUR) == 0.0  # slot 0 ends at 03:00
    assert profile.peak(KEY, T0 + 3 * HOUR) == 30.0
    assert profile.peak(KEY, T0 + DAY) == 90.0
    assert profile.peak(KEY, T0 + DAY, at=T0 + DAY + 1 * HOUR) == 30.0   # at 01:00
    assert profile.peak(KEY, T0 + DAY, at=T0 + DAY + 13 * HOUR) == 90.0  # at 13:00
    assert profile.peak(("app-1", "other", 600.0), T0 + DAY) == 0.0


def test_a_daily_peak_reads_whole_days_only() -> None:
    key = ("app-1", "storage_exfiltration.downloads", DAY)
    profile = Profile()
    profile.record(key, T0, 40.0, 1.0)
    assert profile.peak(key, T0 + DAY - 1) == 0.0
    assert profile.peak(key, T0 + DAY) == 40.0
    assert profile.peak(key, T0 + DAY + 5 * HOUR, at=T0) == 40.0


def test_usual_hour_needs_activity_within_an_hour_on_two_days() -> None:
    profile = active(3, hours=(10,))
    assert profile.usual_hour(T0, T0 + 10 * HOUR)
    assert profile.usual_hour(T0, T0 + 11 * HOUR + 59 * 60)
    assert not profile.usual_hour(T0, T0 + 12 * HOUR)
    assert not active(1, hours=(10,)).usual_hour(T0, T0 + 10 * HOUR)


def test_knows_network_and_knows() -> None:
    profile = active(1)
    assert profile.knows_network("203.0.113.200", T0) is True
    assert profile.knows_network("198.51.100.1", T0) is False
    assert profile.knows_network(None, T0) is None and profile.knows_network("nope", T0) is None
    assert profile.knows("apps", "app", T0) and not profile.knows("apps", "app", T0 - DAY)
    assert profile.knows("user_agents", "a", T0)


# -- persistence -------------------------------------------------------------------------------

def rich_profile() -> Profile:
    profile = active(4, hours=(1, 9, 17))
    profile.observe(T0 + 5, "2001:db8::1", 64511, "curl/8", "app-2")
    profile.mark("credential:app-9", T0 + 6)
    profile.record(KEY, T0 - DAY, 12.5, 1.0)
    profile.record(("app-2", "graph_enumeration.objects", DAY), T0 - 2 * DAY, 300.0, 1.0)
    return profile


def test_to_dict_and_from_dict_round_trip_through_json() -> None:
    profile = rich_profile()
    text = json.dumps(profile.to_dict())
    again = Profile.from_dict(json.loads(text))
    assert again == profile
    assert again.to_dict() == profile.to_dict()
    before = T0 + 6 * HOUR
    assert again.established(before, 3, 2 * DAY) == profile.established(before, 3, 2 * DAY)
    assert again.peak(KEY, before) == profile.peak(KEY, before) == 12.5


def test_pickle_round_trip_keeps_the_data_not_the_caches() -> None:
    profile = rich_profile()
    profile.established(T0, 3, DAY)
    again = pickle.loads(pickle.dumps(profile))
    assert again == profile


@pytest.mark.parametrize(("data", "message"), [
    ({"version": 1}, "not a version-2"),
    ([], "not a version-2"),
    ({"version": 2}, "KeyError"),
    ({"version": 2, "hours": {"per_day": 24, "stamps": [], "values": ""}}, "wrong size"),
    ({"version": 2, "hours": Ring(24).to_dict(), "asns": {"x": 1.0}}, "ValueError"),
    ({"version": 2, "hours": Ring(24).to_dict(), "measures": {"nope": {}}}, "ValueError"),
])
def test_from_dict_rejects_bad_data_with_a_clear_error(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Profile.from_dict(data)  # type: ignore[arg-type]


def test_from_dict_enforces_the_caps() -> None:
    data = Profile().to_dict()
    data["networks"] = {f"10.{n // 256}.{n % 256}.0/24": float(n)
                        for n in range(MAX_ENTRIES + 20)}
    loaded = Profile.from_dict(data)
    assert len(loaded.networks) == MAX_ENTRIES
    assert max(loaded.networks.values()) == MAX_ENTRIES - 1
