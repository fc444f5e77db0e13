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
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import detectors.windows as windows_module
from detectors import catalog
from detectors.event import GraphEvent
from detectors.windows import WindowedDetector
from tests.detectors.factory import Recorder, Runner, settings
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

