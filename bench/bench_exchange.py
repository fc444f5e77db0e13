"""What a keyed Bytewax step costs when a dataflow runs on 2 processes: which items get pickled,
and what pickling graphsentry's items costs.

1. A keyed flow (``stateful_map``) over 10,000 items on 2 processes (``cluster_main``, all
   input read by process 0), three times: every key routed to process 0 itself, every key to
   process 1, and 100 keys spread by Bytewax's hash. An item type counts its own pickling
   (``__reduce__`` calls) in each process.
2. The flow's item ``(tenant/principal, value)`` for 2,000 events of the simulated tenant:
   CPU-µs to send one (two ``dumps``, as Bytewax does) and to receive one (one ``loads``),
   and its bytes, for three values: ``dataflows.exchange.Routed`` (what the flow sends: one
   marshal blob, written once), the ``(GraphEvent, CtxParts)`` tuple it replaced (the
   classes' own ``__reduce__``), and that tuple in the dataclass/namedtuple default form
   (field names, ``copyreg``).

Run: ``python bench/bench_exchange.py`` (no Kafka or Redis). Nothing is asserted; the output
is committed as ``bench/results/exchange.txt`` and read in docs/performance.md.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import load_note, print_header

ITEMS = 10_000


class Counted:
    """An item value that counts how often this process pickles one."""

    pickled = 0

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        Counted.pickled += 1
        return (Counted, (self.value,))


def _flow(keys: list[str]) -> Any:
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSource

    from dataflows.detect import CallbackSink

    flow = Dataflow("exchange_probe")
    items = op.input("read", flow, TestingSource(
        [(keys[i % len(keys)], i) for i in range(ITEMS)], batch_size=100))
    values = op.map("wrap", items, lambda kv: (kv[0], Counted(kv[1])))
    kept = op.stateful_map("keyed", values, lambda state, value: (state, value.value))
    op.output("drop", kept, CallbackSink(lambda _item: None))
    return flow


def _worker(index: int, addresses: list[str], keys: list[str], results: Any) -> None:
    from bytewax.testing import cluster_main

    cluster_main(_flow(keys), addresses, index)  # type: ignore[no-untyped-call]
    results.put((index, Counted.pickled))


def pickles_on_two_processes(keys: list[str]) -> list[int]:
    """Items each of the 2 processes pickled while the keyed step moved ``ITEMS`` items."""
    from graphsentry.cluster import free_ports

    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(i, addresses, keys, results))
               for i in range(2)]
    for worker in workers:
        worker.start()
    counts = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join()
    return [counts[0], counts[1]]


def key_routed_to(worker: int, tried: int = 200) -> str:
    """A key Bytewax routes to ``worker`` of 2 (found by running: nothing pickled at home)."""
    for n in range(tried):
        key = f"k{n}"
        if (pickles_on_two_processes([key])[0] == 0) == (worker == 0):
            return key
    raise SystemExit(f"no key routed to worker {worker} among {tried}")


@contextmanager
def default_pickling() -> Iterator[None]:
    """GraphEvent, CtxParts and AppInfo pickled as before their ``__reduce__``: the
    dataclass/namedtuple defaults (field names, ``copyreg``)."""
    from detectors.base import AppInfo
    from detectors.event import GraphEvent
    from graphsentry.engine import CtxParts

    classes = (GraphEvent, CtxParts, AppInfo)
    saved = [cls.__dict__["__reduce__"] for cls in classes]
    for cls in classes:
        delattr(cls, "__reduce__")
    try:
        yield
    finally:
        for cls, method in zip(classes, saved, strict=True):
            cls.__reduce__ = method


def _per_item(function: Any, values: list[Any], rounds: int = 7) -> float:
    """CPU-µs per value of ``function``, the best of ``rounds`` (the collector paused)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            started = time.process_time()
            for value in values:
                function(value)
            best = min(best, time.process_time() - started)
    finally:
        gc.enable()
    return best / len(values) * 1e6


def item_costs() -> None:
    """What one item costs to send (Bytewax pickles it twice) and to receive (one unpickle),
    in each form, for events of the simulated tenant with a first-party app's parts."""
    from dataflows.exchange import Routed
    from detectors.base import AppInfo
    from detectors.event import GraphEvent
    from graphsentry.engine import CtxParts
    from graphsentry.ingest import iter_records

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "sim.jsonl"
        subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--users", "50",
                        "--days", "1", "--out", str(out)], check=True, capture_output=True)
        events = [GraphEvent.from_record(r) for r in islice(iter_records([str(out)]), 2000)]
    parts = CtxParts(None, None, AppInfo("1fec8e78-bce4-4aaf-ab1b-5451cc387264",
                                         "Microsoft Teams", first_party=True), True)

    def send_routed(event: GraphEvent) -> bytes:  # a new item each time: its wire is unwritten
        item = (event.principal_key, Routed(event, parts))
        pickle.dumps(item)
        return pickle.dumps(item)

    def send_tuple(event: GraphEvent) -> bytes:
        item = (event.principal_key, (event, parts))
        pickle.dumps(item)
        return pickle.dumps(item)

    forms = (("Routed (marshal wire)", send_routed, nullcontext()),
             ("(event, parts) tuple", send_tuple, nullcontext()),
             ("tuple, default form", send_tuple, default_pickling()))
    for name, send, form in forms:
        with form:
            data = [send(event) for event in events]
            for event, blob in zip(events, data, strict=True):
                _key, value = pickle.loads(blob)
                loaded = (value.event, value.parts) if isinstance(value, Routed) else value
                assert loaded == (event, parts)
            print(f"{name:22} sent (2 pickles) {_per_item(send, events):5.1f} µs, received "
                  f"(1 unpickle) {_per_item(pickle.loads, data):5.1f} µs, "
                  f"{sum(map(len, data)) / len(data):,.0f} bytes per item "
                  f"({len(events):,} items)")


def main() -> int:
    print_header("bench_exchange: what a keyed step pickles on 2 processes, and what an item "
                 "costs to pickle")
    home, away = key_routed_to(0), key_routed_to(1)
    for label, keys in ((f"every key routed to process 0 (key {home!r})", [home]),
                        (f"every key routed to process 1 (key {away!r})", [away]),
                        ("100 keys", [f"key{n}" for n in range(100)])):
        counts = pickles_on_two_processes(keys)
        print(f"{label}: {ITEMS:,} items read by process 0; pickled by process 0: "
              f"{counts[0]:,} ({counts[0] / ITEMS:.2f} per item), by process 1: {counts[1]:,}",
              flush=True)
    item_costs()
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
