"""What crosses between the processes of a cluster (``dataflows.exchange``), and the worker
threads' Python thread state (``graphsentry.cluster.hold_thread_state``)."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSource, cluster_main
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.exchange import Routed
from detectors.base import AppInfo
from detectors.event import GraphEvent
from graphsentry.cluster import hold_thread_state
from graphsentry.engine import CtxParts
from tests.engine.test_engine import established_profile
from tests.ingest.test_avro import _records, _text

APPS = st.none() | st.builds(
    AppInfo, st.text(max_size=8), st.none() | st.text(max_size=8), st.none() | st.text(max_size=8),
    st.booleans(), st.booleans(), st.frozensets(st.text(max_size=8), max_size=3),
    st.none() | st.text(max_size=8))
PARTS = st.builds(CtxParts, st.none() | st.integers(0, 2**32), st.none() | st.text(max_size=12),
                  APPS, st.booleans(), st.none() | st.just(established_profile()))


def _crossed(item: tuple[str, Routed]) -> tuple[str, Routed]:
    """What the other process gets: Bytewax pickles an item twice (sizing, then writing)
    and unpickles the second."""
    first = pickle.dumps(item)
    second = pickle.dumps(item)
    assert first == second
    loaded: tuple[str, Routed] = pickle.loads(second)
    return loaded


@settings(max_examples=200, deadline=None)
@given(_records(_text), PARTS)
def test_an_event_and_its_parts_cross_as_they_are(record: dict[str, Any],
                                                  parts: CtxParts) -> None:
    event = GraphEvent.from_record(record)
    routed = Routed(event, parts)
    key, loaded = _crossed(("tenant/principal", routed))
    assert key == "tenant/principal"
    assert loaded.event == event and loaded.parts == parts
    assert routed.wire is not None and loaded.wire is None  # written once, by the sender


def test_the_wire_is_one_blob_of_values_written_once() -> None:
    event = GraphEvent.from_record({**_record(), "roles": ["User.Read.All"]})
    routed = Routed(event, CtxParts(64500, "EXAMPLE-AS", AppInfo("app", "Backup"), True))
    data = pickle.dumps(routed)
    assert b"GraphEvent" not in data and b"CtxParts" not in data and b"AppInfo" not in data
    wire = routed.wire
    assert wire is not None and wire in data
    pickle.dumps(routed)
    assert routed.wire is wire  # the second pickling reuses it


class Name(str):
    """A str subclass: marshal writes exact built-in types only."""


def test_its_repr_shows_the_event_and_its_parts() -> None:
    event = GraphEvent.from_record(_record())
    assert repr(Routed(event, CtxParts(64500))) == f"Routed({event!r}, {CtxParts(64500)!r})"


def test_values_marshal_cannot_write_fall_back_to_pickling_them() -> None:
    event = GraphEvent.from_record({**_record(), "user_agent": Name("agent")})
    routed = Routed(event, CtxParts())
    _key, loaded = _crossed(("k", routed))
    assert loaded.event == event and type(loaded.event.user_agent) is Name
    assert routed.wire is None


def _record() -> dict[str, Any]:
    from tests.detectors.test_event import RECORD

    return dict(RECORD)


class _Sink(DynamicSink[Any]):
    def __init__(self, hold: bool) -> None:
        self.hold = hold

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        if self.hold:
            hold_thread_state()
        return _Partition()


class _Partition(StatelessSinkPartition[Any]):
    def write_batch(self, items: list[Any]) -> None:
        pass


def _calls_seen_by_a_thread_local(hold: bool) -> list[int]:
    """A one-process cluster (its worker runs on a Bytewax thread): how many calls of a step
    each call's ``threading.local`` remembers."""
    local = threading.local()
    seen: list[int] = []

    def step(items: list[int]) -> list[int]:
        local.calls = getattr(local, "calls", 0) + 1
        seen.append(local.calls)
        return items

    flow = Dataflow("thread_state_probe")
    numbers = op.input("read", flow, TestingSource(list(range(20)), batch_size=4))
    op.output("write", op.flat_map_batch("step", numbers, step), _Sink(hold))
    cluster_main(flow, [], 0)  # type: ignore[no-untyped-call]
    return seen


def test_a_worker_thread_keeps_its_thread_state_once_held() -> None:
    # Without it, each call into Python gets a fresh thread state (PyO3 issue #2495): the
    # thread-local is gone at every call. This is what hold_thread_state exists for.
    assert _calls_seen_by_a_thread_local(hold=False) == [1] * 5
    assert _calls_seen_by_a_thread_local(hold=True) == [1, 2, 3, 4, 5]


def test_holding_on_the_main_thread_does_nothing() -> None:
    from graphsentry import cluster

    hold_thread_state()
    assert not getattr(cluster._THREAD, "held", False)
