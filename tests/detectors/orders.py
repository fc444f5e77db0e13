"""Arrival orders within the lateness, duplication, and what must not depend on them.

**The arrival model.** An input is delivered *within the lateness* ``L`` when no event arrives
after an event more than ``L`` newer than itself: if ``a`` arrives after ``b`` then
``b.ts - a.ts <= L`` (equality allowed: the engine counts an event late only when it is
*more* than ``L`` older than the newest one). :func:`arrivals` builds such orders by giving
every delivery (duplicates included) a delay in ``[0, L]`` and sorting by ``ts + delay``
(ties in random order); its modes push to the extremes: every delay 0 or ``L``, a few
events held back a full ``L``, whole stretches reversed, stretches of event time delayed
together (a lagging partition: a burst arrives after a later event), and uniform noise.

**What must not change** (``Outcome``): the set of signal ids, every final signal body (the
wire record, risk and suppression included), the set of alert ids and the last version of
every alert (revision and body). Along the way :func:`outcome` checks the engine's own
promises: nothing counted late, one final emission per signal id, every provisional signal
finalized, and per alert revisions that never go down with the last emission the highest.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from detectors.event import GraphEvent
from graphsentry.engine import CtxParts
from tests.detectors.factory import LATENESS, Recorder, Runner, in_time_order

EXPLORE = os.environ.get("GRAPHSENTRY_HYPOTHESIS", "") == "explore"
"""``GRAPHSENTRY_HYPOTHESIS=explore``: random (not derandomized) runs with ten times the
examples, for hunting; CI runs a fixed, reproducible set."""


def property_settings(examples: int) -> settings:
    """Settings of the order properties: ``examples`` derandomized examples in CI (so a run
    is reproducible and its time bounded), ten times as many random ones when exploring."""
    if EXPLORE:  # failures are kept in .hypothesis/ and replayed first on the next run
        return settings(max_examples=examples * 10, deadline=None, print_blob=True,
                        suppress_health_check=[HealthCheck.too_slow,
                                               HealthCheck.data_too_large])
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


MODES = ("uniform", "extremes", "hold_back", "reverse", "blocks")


def delays_for(ordered: Sequence[GraphEvent], mode: str, seed: int,
               lateness: float = LATENESS) -> list[float]:
    """A delay in ``[0, lateness]`` per delivery (``ordered``: in time order)."""
    rng = random.Random(seed)
    n = len(ordered)
    if mode == "uniform":
        return [rng.uniform(0, lateness) for _ in range(n)]
    if mode == "extremes":
        return [rng.choice((0.0, lateness)) for _ in range(n)]
    if mode == "hold_back":  # a few events held back the full lateness, the rest on time
        held = set(rng.sample(range(n), min(n, rng.randint(1, 3)))) if n else set()
        return [lateness if i in held else 0.0 for i in range(n)]
    if mode == "blocks":  # stretches of event time delayed together (a lagging partition)
        length = rng.choice((60.0, 600.0, 1800.0, 3600.0))
        chosen: dict[int, float] = {}
        for e in ordered:
            block = int(e.ts // length)
            if block not in chosen:
                chosen[block] = rng.choice((0.0, lateness, rng.uniform(0, lateness)))
        return [chosen[int(e.ts // length)] for e in ordered]
    if mode == "reverse":  # within stretches of one lateness, newest first
        if not n:
            return []
        span = lateness * rng.uniform(0.5, 1.0)
        base = ordered[0].ts
        return [span - ((e.ts - base) % span) for e in ordered]
    raise ValueError(f"unknown mode {mode!r}")


def deliver(events: Sequence[GraphEvent], duplicates: Sequence[int], mode: str, seed: int,
            lateness: float = LATENESS) -> list[GraphEvent]:
    """``events`` plus copies of ``events[i]`` for i in ``duplicates`` (the very same record
    delivered again), in an arrival order within ``lateness`` built by ``mode``."""
    ordered = in_time_order(events)
    copies = in_time_order([*ordered, *(ordered[i % len(ordered)] for i in duplicates)]
                           if ordered else [])
    delays = delays_for(copies, mode, seed, lateness)
    rng = random.Random(seed ^ 0x5EED)
    ties = [rng.random() for _ in copies]
    keyed = sorted(range(len(copies)), key=lambda i: (copies[i].ts + delays[i], ties[i]))
    return [copies[i] for i in keyed]


@st.composite
def arrivals(draw: st.DrawFn, events: Sequence[GraphEvent],
             lateness: float = LATENESS) -> list[GraphEvent]:
    """A delivery of ``events`` within ``lateness``, with some duplicated (strategy)."""
    mode = draw(st.sampled_from(MODES))
    seed = draw(st.integers(0, 2**32 - 1))
    duplicates = draw(st.lists(st.integers(0, max(len(events) - 1, 0)),
                               max_size=max(1, len(events) // 5))) if events else []
    return deliver(events, duplicates, mode, seed, lateness)


def within_lateness(arrival: Sequence[GraphEvent], lateness: float = LATENESS) -> bool:
    """No event arrives after an event more than ``lateness`` newer than itself."""
    newest = float("-inf")
    for e in arrival:
        if e.ts < newest - lateness:
            return False
        newest = max(newest, e.ts)
    return True


@dataclass
class Outcome:
    """What must be the same for every arrival order within the lateness."""

    signal_ids: set[str]
    finals: dict[str, dict[str, Any]]
    """signal id → its final wire record."""
    alerts: dict[str, dict[str, Any]]
    """alert id → its last version."""

    def differences(self, other: Outcome) -> list[str]:
        """Human-readable differences (empty when equal), for assertion messages."""
        out = []
        if self.signal_ids != other.signal_ids:
            out.append(f"signal ids: only here {sorted(self.signal_ids - other.signal_ids)}, "
                       f"only there {sorted(other.signal_ids - self.signal_ids)}")
        for sid in sorted(self.finals.keys() & other.finals.keys()):
            mine, theirs = self.finals[sid], other.finals[sid]
            if mine != theirs:
                keys = sorted(k for k in mine if mine[k] != theirs.get(k))
                out.append(f"final signal {sid} ({mine['detector']}) differs in {keys}: "
                           + "; ".join(f"{k}: {mine[k]!r} != {theirs.get(k)!r}" for k in keys))
        if self.alerts.keys() != other.alerts.keys():
            only_here = {a: self.alerts[a]["detector"] for a in self.alerts.keys()
                         - other.alerts.keys()}
            only_there = {a: other.alerts[a]["detector"] for a in other.alerts.keys()
                          - self.alerts.keys()}
            out.append(f"alert ids: only here {only_here}, only there {only_there}")
        for aid in sorted(self.alerts.keys() & other.alerts.keys()):
            mine, theirs = self.alerts[aid], other.alerts[aid]
            if mine != theirs:
                keys = sorted(k for k in mine if mine[k] != theirs.get(k))
                out.append(f"alert {aid} ({mine['detector']}) last version differs in {keys}: "
                           + "; ".join(f"{k}: {mine[k]!r} != {theirs.get(k)!r}" for k in keys))
        return out


def outcome(engine: Recorder, arrival: Sequence[GraphEvent],
            parts: Callable[[GraphEvent], CtxParts],
            snapshot_after: int | None = None) -> Outcome:
    """Run ``arrival`` through ``engine`` (flushed at the end) and check its promises; with
    ``snapshot_after``, the states go through pickle after that many deliveries (a Bytewax
    snapshot and recovery)."""
    runner = Runner(engine, parts)
    if snapshot_after is not None:
        runner.feed(arrival[:snapshot_after])
        runner.states = pickle.loads(pickle.dumps(runner.states))
        arrival = arrival[snapshot_after:]
    runner.feed(arrival).flush()
    assert engine.counters.late == 0, "an arrival within the lateness was counted late"
    finals: dict[str, dict[str, Any]] = {}
    ids: set[str] = set()
    for record in runner.out.signals:
        sid = record["signal_id"]
        ids.add(sid)
        if record["final"]:
            assert sid not in finals, f"signal {sid} ({record['detector']}) finalized twice"
            finals[sid] = record
    assert ids == finals.keys(), f"provisional signals never finalized: {ids - finals.keys()}"
    last: dict[str, dict[str, Any]] = {}
    for alert in runner.out.alerts:
        aid = alert["alert_id"]
        previous = last.get(aid)
        assert previous is None or alert["revision"] >= previous["revision"], (
            f"alert {aid} ({alert['detector']}) went from revision {previous['revision']} "
            f"back to {alert['revision']}")
        last[aid] = alert
    return Outcome(ids, finals, last)
