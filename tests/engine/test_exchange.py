"""The worker threads' Python thread state (``graphsentry.cluster.hold_thread_state``)."""

from __future__ import annotations

import threading
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSource, cluster_main

from graphsentry.cluster import hold_thread_state


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
