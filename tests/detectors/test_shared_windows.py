"""Windows that share one accumulator (``detectors.windows``: nested lengths, ``_slots_of``,
``_diverge``, ``_pass_up``) give exactly what separate accumulators per window give.

The reference run disables sharing (``_nested`` answers False, so every window opens its own
accumulator, lean above the shortest length: the design before sharing). Every windowed
detector of the catalog, at its own and at other nested window lengths, sees the same events in
an arrival order within the lateness (duplicates included); the runs must agree on every
signal the engine hands to the alert layer (provisional and final, in order: ids, evidence,
context, counts), every wire record and alert, and every principal's profile (the measures
closed windows leave). The shared run also goes through pickle (a Bytewax snapshot and
recovery) at random points of the input.

Then what sharing must survive: a snapshot resumed with other window lengths (the parameters
changed between a snapshot and its recovery), and accumulators :func:`~detectors._accumulators.fork`
and ``_diverge`` cannot work with (no ``first_seen``), whose windows never share.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import detectors.windows as windows_module
from detectors import catalog
from detectors.base import Detector, DetectorMeta, DetectorState, EventContext, Signal, Slot, Who
from detectors.event import GraphEvent
from detectors.windows import WindowedDetector
from tests.detectors.factory import GRAPH, T0, Recorder, Runner, event, settings
from tests.detectors.factory import run as run_with
from tests.detectors.orders import arrivals, property_settings, within_lateness
from tests.detectors.workloads import KINDS, parts, workload

WINDOWED = tuple(d for d in catalog.DETECTOR_IDS
                 if isinstance(KINDS[d].detector(), WindowedDetector))
LENGTHS = (None, (300.0, 1500.0), (600.0, 1800.0, 3600.0, 86_400.0), (900.0, 7200.0))
"""Window lengths tried besides the detector's own (None): all nest, so windows share."""


def params_for(detector_id: str, lengths: tuple[float, ...] | None) -> dict[str, Any]:
    """The workload's small parameters, with per-window values stretched to ``lengths``."""
    params = dict(KINDS[detector_id].params)
    if lengths is None:
        return params
    own = len(catalog.make_params(detector_id, params).windows)
    for name, value in list(params.items()):
        if isinstance(value, list | tuple) and len(value) == own:
            params[name] = [value[min(i, own - 1)] + max(0, i - own + 1)
                            for i in range(len(lengths))]
    params["windows"] = list(lengths)
    return params


@contextmanager
def separate_windows() -> Iterator[None]:
    """Every window gets its own accumulator (sharing off)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(windows_module, "_nested", lambda _windows: False)
        yield


def run(detector_id: str, params: dict[str, Any], arrival: Sequence[GraphEvent],
        snapshots: Sequence[int] = ()) -> tuple[list[Any], ...]:
    detector = catalog.build_detectors({detector_id: params}, [detector_id])[0]
    runner = Runner(Recorder([detector], settings()), parts)
    done = 0
    for at in sorted(snapshots):
        runner.feed(arrival[done:at])
        runner.states = pickle.loads(pickle.dumps(runner.states))
        done = at
    runner.feed(arrival[done:]).flush()
    profiles = [(key, state.profile) for key, state in sorted(runner.states.items())]
    return runner.engine.captured, runner.out.signals, runner.out.alerts, profiles


@pytest.mark.parametrize("detector_id", WINDOWED)
@property_settings(60)
@given(data=st.data())
def test_shared_windows_give_what_separate_windows_give(detector_id: str,
                                                        data: st.DataObject) -> None:
    lengths = data.draw(st.sampled_from(LENGTHS), label="lengths")
    params = params_for(detector_id, lengths)
    events = data.draw(workload([KINDS[detector_id]], principals=2), label="events")
    arrival = data.draw(arrivals(events), label="arrival")
    assert within_lateness(arrival)
    snapshots = data.draw(st.lists(st.integers(0, len(arrival)), max_size=3),
                          label="snapshots")
    shared = run(detector_id, params, arrival, snapshots)
    with separate_windows():
        separate = run(detector_id, params, arrival)
    names = ("signals", "signal records", "alerts", "profiles")
    for name, mine, theirs in zip(names, shared, separate, strict=True):
        assert len(mine) == len(theirs), f"{name}: {len(mine)} != {len(theirs)}"
        for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            assert a == b, f"{name}[{index}] differs:\nshared   {a!r}\nseparate {b!r}"


# -- a snapshot resumed with other window lengths ----------------------------------------------

def _mailbox_reads(offsets: Sequence[float], first: int = 0) -> list[GraphEvent]:
    return [event(ts=T0 + offset, request_id=f"m{first + i:03d}", target_user=f"u{first + i}",
                  uri=f"{GRAPH}/users/u{first + i}/messages", template="/users/{id}/messages",
                  family="mail", category="mail") for i, offset in enumerate(offsets)]


def _resumed(before: tuple[float, ...], after: tuple[float, ...],
             events: tuple[list[GraphEvent], list[GraphEvent]]) -> list[Signal]:
    def mailbox(lengths: tuple[float, ...]) -> Detector:
        floors = [3 + 2 * i for i in range(len(lengths))]
        return catalog.build_detectors({"mailbox_enumeration": {
            "windows": list(lengths), "min_mailboxes": floors}}, ["mailbox_enumeration"])[0]

    first = Runner(Recorder([mailbox(before)], settings())).feed(events[0])
    states = pickle.loads(pickle.dumps(first.states))  # snapshot; resumed by a new process
    resumed = Runner(Recorder([mailbox(after)], settings()), states=states)
    return [*first.engine.captured, *resumed.feed(events[1]).flush().engine.captured]


@pytest.mark.parametrize(("before", "after"), [
    ((600.0, 86_400.0), (600.0, 3600.0, 86_400.0)),      # a length added between two
    ((600.0, 3600.0, 86_400.0), (3600.0, 86_400.0)),     # the shortest removed
    ((600.0, 3600.0, 86_400.0), (600.0, 86_400.0)),      # a length in between removed
    ((600.0, 3600.0), (600.0, 1500.0, 3600.0)),          # lengths that no longer nest
])
def test_a_snapshot_resumed_with_other_window_lengths_keeps_windows_apart(
        before: tuple[float, ...], after: tuple[float, ...]) -> None:
    """The parameters changed between a snapshot and its recovery: windows that shared an
    accumulator under the old lengths may not under the new ones. A window of a length kept
    still counts exactly its own events (its final signal's requests; a window of a new
    length starts at the recovery), and every signal is what separate accumulators give."""
    events = (_mailbox_reads([10, 11]),
              _mailbox_reads([20, 700, 760, 820, 880, 940, 1000, 1900, 4000], first=2))
    shared = _resumed(before, after, events)
    with separate_windows():
        separate = _resumed(before, after, events)
    every = [*events[0], *events[1]]
    kept = [s for s in shared if s.final and s.window_end - s.window_start in before]
    assert kept
    for s in kept:
        inside = [e for e in every if s.window_start <= e.ts < s.window_end]
        assert s.evidence["requests"] == len(inside), s

    def summary(signals: list[Signal]) -> list[tuple[Any, ...]]:
        return [(s.signal_id, s.window_end - s.window_start, s.window_start, s.final,
                 s.evidence["requests"], s.evidence["mailboxes"]) for s in signals]
    assert summary(shared) == summary(separate)


CHANGES = ((600.0, 3600.0, 86_400.0), (600.0, 86_400.0), (3600.0, 86_400.0),
           (300.0, 600.0, 3600.0), (600.0, 1500.0, 3600.0), (900.0, 7200.0))
"""Window lengths a snapshot is taken and resumed with (nested or not)."""
ATTRIBUTES = ("source_ips", "user_agents", "sample_request_ids", "templates")


@property_settings(200)
@given(data=st.data())
def test_a_snapshot_resumed_with_other_window_lengths_gives_what_separate_windows_give(
        data: st.DataObject) -> None:
    """As above on drawn inputs, every signal compared but for its attribute evidence: a
    window left without its shorter windows by the change keeps the attributes its shared
    accumulator collected, where a separate (lean) one has none."""
    detector_id = data.draw(st.sampled_from(WINDOWED), label="detector")
    old = data.draw(st.sampled_from(CHANGES), label="before")
    new = data.draw(st.sampled_from([c for c in CHANGES if c != old]), label="after")
    before, after = params_for(detector_id, old), params_for(detector_id, new)
    arrival = data.draw(arrivals(data.draw(workload([KINDS[detector_id]]), label="events")),
                        label="arrival")
    cut = data.draw(st.integers(0, len(arrival)), label="snapshot after")

    def signals() -> list[tuple[Any, ...]]:
        first = Runner(Recorder(catalog.build_detectors({detector_id: before}, [detector_id]),
                                settings()), parts).feed(arrival[:cut])
        resumed = Runner(Recorder(catalog.build_detectors({detector_id: after},
                                                          [detector_id]), settings()), parts,
                         pickle.loads(pickle.dumps(first.states)))
        resumed.feed(arrival[cut:]).flush()
        return [(s.signal_id, s.final, s.count, s.first_seen, s.last_seen, s.context,
                 {k: v for k, v in s.evidence.items() if k not in ATTRIBUTES})
                for s in [*first.engine.captured, *resumed.engine.captured]]

    shared = signals()
    with separate_windows():
        assert shared == signals()


# -- accumulators that cannot be shared ---------------------------------------------------------

@dataclass(slots=True)
class Hits:
    """An accumulator without ``first_seen``: its windows never share it."""

    users: set[str] = field(default_factory=set)


class DistinctUsers(WindowedDetector[Hits]):
    meta = DetectorMeta(id="distinct_users", title="Distinct users", description="test",
                        severity="low", tactics=("TA0007",), techniques=("T1087",),
                        stage="discovery")
    windows = (600.0, 3600.0)

    def relevant(self, event: GraphEvent) -> bool:
        return event.family == "mail"

    def new_accumulator(self) -> Hits:
        return Hits()

    def add(self, acc: Hits, event: GraphEvent, ctx: EventContext) -> None:
        acc.users.add(event.target_user or "")

    def crossed(self, acc: Hits, level: int, slot: Slot) -> bool:
        return len(acc.users) >= 3 + 2 * level

    def evidence(self, acc: Hits) -> dict[str, Any]:
        return {"users": sorted(acc.users)}


def test_windows_of_an_accumulator_without_first_seen_keep_their_own() -> None:
    events = _mailbox_reads([10, 11, 700, 760, 30, 1900, 2000, 2100])
    got = run_with(DistinctUsers(), events).signals
    with separate_windows():
        expected = run_with(DistinctUsers(), events).signals
    assert got == expected
    assert [(s.window_end - s.window_start, s.final, len(s.evidence["users"]))
            for s in got] == [(600.0, False, 3), (3600.0, False, 5), (600.0, False, 3),
                              (600.0, True, 3), (600.0, True, 3), (3600.0, True, 8)]


def test_a_snapshot_resumed_with_the_same_lengths_keeps_windows_sharing() -> None:
    """Recovery with unchanged parameters costs no copies (the state's memory stays as it was)."""
    detector = catalog.build_detectors({}, ["mailbox_enumeration"])[0]
    who, ctx = Who.of(_mailbox_reads([0])[0]), EventContext()
    state = DetectorState()
    for e in _mailbox_reads([10, 11]):
        detector.observe(state, e, ctx, who)
    state = pickle.loads(pickle.dumps(state))
    for e in _mailbox_reads([20], first=2):
        detector.observe(state, e, ctx, who)
    [acc] = {id(slot.acc): slot.acc for slot in state.slots.values()}.values()
    assert len(state.slots) == 3 and acc.requests == 3
