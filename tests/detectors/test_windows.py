"""detectors.windows and detectors.base: multi-scale windows, provisional and final signals,
attributes handed up from short windows, baselines recorded at close and read sealed, and the
small deterministic pieces (signal ids, trails, samples)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import pytest

from detectors._accumulators import Activity, CappedSet
from detectors.base import (
    NO_FACTS,
    NO_TRAIL,
    DetectorMeta,
    DetectorState,
    EventContext,
    Facts,
    Shared,
    Slot,
    Trail,
    Who,
    higher,
    sample,
    shape_of,
    signal_id,
    window_start,
)
from detectors.event import GraphEvent
from detectors.high_volume_transfer import Transfer
from detectors.windows import WindowedDetector, above, peak_of, per_window
from tests.detectors.factory import (
    APP,
    DAY,
    HOUR,
    LATENESS,
    NEW_IP,
    SP,
    T0,
    event,
    in_time_order,
    routine,
    run,
    shuffled,
)

META = DetectorMeta(id="counting", title="Counting", description="test detector",
                    severity="medium", tactics=("TA0007",), techniques=("T1526",),
                    stage="discovery")


@dataclass(slots=True)
class Reads(Activity):
    targets: CappedSet = field(default_factory=CappedSet)


class Counting(WindowedDetector[Reads]):
    """Requests on ``/users/{id}``: 10 min / 1 h windows, floors 3 / 5, twice the peak."""

    meta = META
    windows = (600.0, 3600.0)
    measures = ("requests",)
    floors = (3, 5)

    def relevant(self, event: GraphEvent) -> bool:
        return event.family == "users"

    def new_accumulator(self) -> Reads:
        return Reads()

    def add(self, acc: Reads, event: GraphEvent, ctx: EventContext) -> None:
        acc.count(event)
        acc.targets.add(event.target_user)

    def crossed(self, acc: Reads, level: int, slot: Slot) -> bool:
        return above(acc.requests, self.floors[level], peak_of(slot), 2.0)

    def measure(self, acc: Reads) -> tuple[float, ...]:
        return (float(acc.requests),)

    def store_minimum(self, level: int) -> tuple[float, ...]:
        return (self.floors[level] / 2.0,)

    def evidence(self, acc: Reads) -> dict[str, Any]:
        return {**acc.evidence(), "targets": acc.targets.summary()}


def reads(n: int, start: float, step: float = 10.0, **fields: Any) -> list[GraphEvent]:
    return [event(ts=start + i * step, family="users", template="/users/{id}",
                  target_user=f"u{i}", **fields) for i in range(n)]


# -- pieces ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "floor", "peak", "mult", "factor", "expected"), [
    (4, 5, None, 3.0, 1.0, False), (5, 5, None, 3.0, 1.0, True),       # learning: the floor
    (9, 5, None, 3.0, 2.0, False), (10, 5, None, 3.0, 2.0, True),      # learning factor
    (5, 5, 0.0, 3.0, 1.0, True),                                       # no activity yet
    (29, 5, 10.0, 3.0, 1.0, False), (30, 5, 10.0, 3.0, 1.0, True),     # multiple of the peak
    (4, 5, 1.0, 3.0, 1.0, False),                                      # floor still holds
])
def test_above(value: float, floor: float, peak: float | None, mult: float, factor: float,
               expected: bool) -> None:
    assert above(value, floor, peak, mult, factor) is expected


def test_per_window_checks_one_value_per_window() -> None:
    per_window((1, 2), (600.0, 3600.0), "floors")
    with pytest.raises(ValueError, match=r"Params.floors: expected 2 values"):
        per_window((1,), (600.0, 3600.0), "floors")


def test_signal_id_is_a_function_of_what_identifies_the_signal() -> None:
    base = ("storage_exfiltration", "t", "p", "a", 600.0, T0, "")
    assert signal_id(*base) == signal_id(*base)
    assert len(signal_id(*base)) == 32
    variants = {signal_id(*base[:i], v, *base[i + 1:])
                for i, v in enumerate(("x", "t2", "p2", "a2", 3600.0, T0 + 600, "dedup"))}
    assert len(variants | {signal_id(*base)}) == 8


def test_window_start_sample_higher_and_shape() -> None:
    assert window_start(T0 + 599.9, 600) == T0 and window_start(T0 + 600, 600) == T0 + 600
    assert sample([f"v{n:02d}" for n in range(30, 0, -1)], 3) == ["v01", "v02", "v03"]
    assert higher("low", "critical") == "critical" and higher("high", "medium") == "high"
    e = event(ip="1.2.3.4")
    assert shape_of(e) == shape_of(event(ip="5.6.7.8", ts=T0 + 5))
    assert shape_of(e) != shape_of(event(status=403))


def test_shared_gives_one_object_per_equal_value_and_stays_bounded() -> None:
    shared: Shared[tuple[float, str]] = Shared(2)
    first = shared((1.0, "a"))
    assert shared((1.0, "a")) is first and shared((1.0, "a")) == (1.0, "a")
    shared((2.0, "b"))
    third = shared((3.0, "c"))  # the table was full: emptied, then holds this one
    assert len(shared.table) == 1 and shared((3.0, "c")) is third


def test_trail_is_monotone_and_order_independent() -> None:
    facts = [Facts("203.0.113.0/24", False, "low", 64500, notable=True),
             Facts("198.51.100.0/24", True, "critical", 64501, notable=True),
             Facts(None, False, "high", None, notable=True), NO_FACTS]
    results = []
    for order in (facts, facts[::-1], facts[1:] + facts[:1]):
        trail = Trail()
        for f in order:
            trail = trail.with_facts(f)
        results.append(trail)
    assert all(r == results[0] for r in results)
    trail = results[0]
    assert trail.new_network == "198.51.100.0/24"  # the smallest new network
    assert trail.new_client and trail.privilege == "critical"
    assert trail.asns == (64500, 64501) and trail.unknown_asn
    many = Trail()
    for asn in range(20, 0, -1):
        many = many.with_facts(Facts(asn=asn, notable=True))
    assert many.asns == tuple(range(1, 9)) and not many.unknown_asn
    # an event that adds nothing leaves the trail as it is; equal trails are one object
    assert many.with_facts(Facts(asn=3, notable=True)) is many
    assert NO_TRAIL.with_facts(NO_FACTS) is NO_TRAIL.with_facts(NO_FACTS)


# -- provisional and final -------------------------------------------------------------------

def test_fires_provisional_at_the_crossing_and_final_with_the_whole_window() -> None:
    result = run(Counting(), reads(4, T0 + 60))
    [provisional] = result.of(final=False)
    [final] = result.of(final=True)
    assert provisional.signal_id == final.signal_id
    assert (provisional.window_start, provisional.window_end) == (T0, T0 + 600)
    assert provisional.evidence["requests"] == 3 and provisional.last_seen == T0 + 80
    assert final.evidence["requests"] == 4 and final.last_seen == T0 + 90
    assert final.evidence["targets"]["count"] == 4 and final.count == 4
    assert final.evidence["window_seconds"] == 600
    assert final.evidence["baseline_peaks"] is None  # learning: no baseline


@pytest.mark.parametrize(("n", "start", "fires"), [
    (2, T0, False),             # threshold - 1
    (3, T0, True),              # threshold
    (3, T0 + 590, False),       # straddles the window edge: 1 + 2 events
])
def test_window_edge_table(n: int, start: float, fires: bool) -> None:
    found = run(Counting(), reads(n, start, step=5.0)).of(since=0, final=True)
    assert bool([s for s in found if s.window_end - s.window_start == 600]) is fires


def test_quiet_below_every_floor_and_for_events_it_does_not_count() -> None:
    assert run(Counting(), reads(2, T0)).signals == []
    assert run(Counting(), [event(ts=T0 + i) for i in range(10)]).signals == []


def test_slow_activity_fires_on_the_hour_window_only() -> None:
    slow = reads(6, T0, step=590.0)  # one or two per 10 minutes, six in the hour
    result = run(Counting(), slow)
    assert {s.window_end - s.window_start for s in result.finals()} == {3600.0}
    [final] = result.finals()
    assert final.evidence["requests"] == 6


def test_the_hour_window_gets_the_attributes_of_its_short_windows() -> None:
    events = [*reads(3, T0, ip="192.0.2.1"), *reads(3, T0 + 700, ip="192.0.2.2")]
    result = run(Counting(), events)
    hour = [s for s in result.signals if s.window_end - s.window_start == 3600]
    assert [s.final for s in hour] == [False, True]
    for s in hour:  # the provisional too: closed short windows plus the open one
        assert s.evidence["source_ips"]["sample"] == ["192.0.2.1", "192.0.2.2"]
    assert [len(s.evidence["sample_request_ids"]) for s in hour] == [5, 6]


def test_arrival_order_within_the_hour_window_gives_the_same_finals() -> None:
    events = [*reads(3, T0 + 30, ip="192.0.2.9"), *reads(2, T0 + 1300, ip="192.0.2.1"),
              *reads(4, T0 + 2500, ip="192.0.2.5")]
    expected = {s.signal_id: s for s in run(Counting(), events).finals()}
    assert len(expected) == 3
    for seed in range(5):  # all within 45 minutes: any order is within the lateness
        got = {s.signal_id: s for s in run(Counting(), shuffled(events, seed)).finals()}
        assert got == expected


def test_events_later_than_the_lateness_are_not_counted() -> None:
    newest = event(ts=T0 + LATENESS + 601, family="users", template="/users/{id}")
    result = run(Counting(), [newest, *reads(5, T0)])
    assert result.signals == [] and result.engine.counters.late == 5


def test_ended_closes_by_end_then_shorter_first_and_tracks_next_close() -> None:
    state = DetectorState()
    detector = Counting()
    who = Who("t", SP, "app_only", "app")
    ctx = EventContext()
    for e in in_time_order([*reads(1, T0 + 3000), *reads(1, T0 + 100)]):
        detector.observe(state, e, ctx, who)
    assert state.next_close == T0 + 600
    assert detector.ended(state, T0 + 599) == []
    assert detector.close(state, T0 + 599, ctx, who) == [] and len(state.slots) == 3
    assert Counting.ended(state, T0 + 3600) == [
        (600.0, T0, ""), (600.0, T0 + 3000, ""), (3600.0, T0, "")]
    state.next_close = T0 + 600  # ended() only computes; close() pops
    assert detector.close(state, T0 + 3599, ctx, who) == []
    assert sorted(state.slots) == [(600.0, T0 + 3000, ""), (3600.0, T0, "")]
    assert state.next_close == T0 + 3600
    assert detector.close(state, T0 + 3600, ctx, who) == []
    assert state.slots == {} and state.next_close == float("inf")


def test_windows_share_one_accumulator_until_their_events_differ() -> None:
    detector, state = Counting(), DetectorState()
    who, ctx = Who("t", SP, "app_only", "app"), EventContext()
    first, second, late = reads(2, T0 + 10), reads(1, T0 + 700), reads(1, T0 + 30)
    for e in first:
        detector.observe(state, e, ctx, who)
    short, hour = state.slots[(600.0, T0, "")], state.slots[(3600.0, T0, "")]
    assert short.acc is hour.acc and short.acc.requests == 2  # the same two events
    for e in [*second, *late]:  # a new short window, then one more for the first
        detector.observe(state, e, ctx, who)
    after = state.slots[(600.0, T0 + 600, "")]
    assert len({id(short.acc), id(hour.acc), id(after.acc)}) == 3
    assert (short.acc.requests, after.acc.requests, hour.acc.requests) == (3, 1, 4)
    assert hour.acc.lean and not short.acc.lean and not after.acc.lean
    assert (short.acc.targets.size, hour.acc.targets.size) == (2, 2)  # u0, u1; u0 again
    assert short.acc.targets.values is not hour.acc.targets.values  # copied, not shared


def test_shared_and_separate_accumulators_give_the_same_signals() -> None:
    class Separate(Counting):
        windows = (600.0, 1500.0)  # 1500 is not a multiple of 600: windows never share

    class Nested(Counting):
        windows = (300.0, 1500.0)  # nested: shared until the events differ

    events = [*reads(3, T0 + 10, ip="192.0.2.1"), *reads(3, T0 + 320, ip="192.0.2.2"),
              *reads(1, T0 + 40, ip="192.0.2.3")]
    for detector in (Separate(), Nested()):
        hour = [s for s in run(detector, events).finals() if s.window_end - s.window_start
                == 1500]
        [final] = hour
        assert final.evidence["requests"] == 7
        assert final.evidence["targets"]["count"] == 3
        assert final.evidence["source_ips"]["sample"] == ["192.0.2.1", "192.0.2.2",
                                                          "192.0.2.3"]


def test_a_snapshot_of_the_earlier_window_state_layout_resumes() -> None:
    """Bytewax snapshots pickle the state: the previous release's fields still load."""
    key = (600.0, T0, "")
    slot, unresolved = Slot.__new__(Slot), Slot.__new__(Slot)
    slot.__setstate__((None, {"acc": Reads(requests=3), "trail": NO_TRAIL, "fired": True,
                              "learning": False, "unusual_hour": True, "peaks": (2.0,),
                              "resolved": True}))
    unresolved.__setstate__((None, {"acc": Reads(), "trail": NO_TRAIL, "fired": False,
                                    "learning": False, "unusual_hour": None, "peaks": None,
                                    "resolved": False}))
    assert (slot.fired, slot.learning, slot.unusual_hour, slot.peaks) == (True, False, True,
                                                                           (2.0,))
    assert unresolved.basis is None
    state = DetectorState.__new__(DetectorState)
    state.__setstate__((None, {"slots": {key: slot}, "next_close": T0 + 600,
                               "current": (T0, T0 + 600, (slot,))}))
    assert state.current == () and state.high == float("-inf") and state.slots == {key: slot}
    transfer = Transfer.__new__(Transfer)
    transfer.__setstate__((None, {"bytes": 10, "requests": 2, "denied": 0, "first_seen": T0,
                                  "last_seen": T0 + 1, "source_ips": None, "user_agents": None,
                                  "request_ids": None, "templates": None, "capped": 0,
                                  "lean": True}))
    assert transfer == Transfer(2, 0, T0, T0 + 1, 10)
    Counting().observe(state, reads(1, T0 + 5)[0], EventContext(), Who("t", SP, "app_only", "a"))
    assert slot.acc.requests == 4  # it goes on counting where the snapshot left off
    again = pickle.loads(pickle.dumps(state))
    assert again.slots[key].basis == slot.basis and again.slots[key].acc.requests == 4


# -- baselines -------------------------------------------------------------------------------

def history(days: int = 4, per_window: int = 4, at: float = 10 * HOUR) -> list[GraphEvent]:
    out = routine(days, hours=(10, 11))
    for d in range(days, 0, -1):
        out += reads(per_window, T0 - d * DAY + at)
    return out


def test_closed_windows_become_the_principal_baseline_at_that_time_of_day() -> None:
    result = run(Counting(), in_time_order(history()))
    measures = result.profile(SP).measures
    assert set(measures) == {(APP, "counting.requests", 600.0),
                             (APP, "counting.requests", 3600.0)}
    assert measures[(APP, "counting.requests", 600.0)].peak(T0) == 4.0
    assert measures[(APP, "counting.requests", 3600.0)].peak(T0) == 4.0
    # below store_minimum (floor / multiplier): never stored
    quiet = run(Counting(), in_time_order(routine(4) + reads(1, T0 - DAY + 10 * HOUR)))
    assert quiet.profile(SP).measures == {}


@pytest.mark.parametrize(("n", "at", "fires"), [
    (7, 10 * HOUR, False),   # usual time, below twice its peak of 4
    (8, 10 * HOUR, True),    # twice its peak
    (4, 18 * HOUR, True),    # its usual volume at an unusual time of day
])
def test_baseline_table(n: int, at: float, fires: bool) -> None:
    events = in_time_order(history() + reads(n, T0 + at))
    today = run(Counting(), events).of(final=True, since=T0)
    short = [s for s in today if s.window_end - s.window_start == 600]
    assert bool(short) is fires
    if fires:
        assert short[0].context.learning is False
        assert short[0].evidence["baseline_peaks"] == {"requests": 4.0 if at == 10 * HOUR
                                                       else 0.0}
        assert short[0].context.unusual_hour is (at != 10 * HOUR)


def test_a_window_started_within_the_lateness_of_a_baseline_window_does_not_read_it() -> None:
    """Sealed: the window at 11:00 reads the baseline as it was at 09:00 (lateness 2 h,
    rounded to the 3-hour slot): the 10:00 window of today is not part of it, in any order."""
    today = reads(8, T0 + 10 * HOUR) + reads(8, T0 + 11 * HOUR)
    events = history() + today
    results = [run(Counting(), order).of(final=True, since=T0)
               for order in (in_time_order(events),
                             in_time_order(history()) + today[8:] + today[:8])]
    assert [s.signal_id for s in results[0]] == [s.signal_id for s in results[1]]
    late_window = [s for s in results[0] if s.window_start == T0 + 11 * HOUR
                   and s.window_end - s.window_start == 600]
    assert late_window and late_window[0].evidence["baseline_peaks"] == {"requests": 4.0}


def test_learning_windows_carry_no_baseline_and_say_so() -> None:
    [final] = run(Counting(), reads(3, T0)).of(final=True)
    assert final.context.learning is True and final.context.unusual_hour is None


def test_new_network_context_reaches_the_signal() -> None:
    events = in_time_order(history() + reads(8, T0 + 10 * HOUR, ip=NEW_IP))
    [final] = [s for s in run(Counting(), events).of(final=True, since=T0)
               if s.window_end - s.window_start == 600]
    assert final.context.new_network == "198.51.100.0/24"


def test_privilege_only_facts_give_the_trail_the_worked_out_merge_does() -> None:
    """Trail.with_facts remembers the answer for facts that bring only a privilege (no AS,
    network or client news): the same trail the full merge gives, for every start."""
    from detectors.base import NO_TRAIL, UNKNOWN_ASN_TRAIL, Facts, Trail

    starts = [NO_TRAIL, UNKNOWN_ASN_TRAIL, Trail(privilege="high"), Trail(
        new_network="203.0.113.0/24", new_client=True, privilege="medium", asns=(64500,))]
    for trail in starts:
        for privilege in ("low", "medium", "high", "critical"):
            facts = Facts(privilege=privilege, notable=True)
            assert trail.with_facts(facts) == trail._merged(facts)
            assert trail.with_facts(facts) is trail.with_facts(facts)  # remembered
