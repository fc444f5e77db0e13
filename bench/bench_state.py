"""Detection state: memory per principal and in total, snapshot size per key, idle eviction.

Sections (``--sections``, default all; each runs in a fresh Python process so that memory
figures start from a fresh heap):

``engine``   the state of P (``--principals``, 100k) principals built through
             ``DetectionEngine.process`` directly, for the two shapes of ``bench_detect``
             (``reader``: three directory reads; ``mixed``: reads from two networks and a
             download, six detectors), 100 app ids: pickled bytes in total and per key (what
             a Bytewax snapshot of the key holds), RSS growth in total and per principal.
``flow``     the embedded detection dataflow (``dataflows.detect.build_flow``, one worker, no
             Redis: nothing is evicted) over ``--per-principal`` records of each of P users of
             the hot first-party apps (``workload.principal_stream``): RSS before, at the end
             of input and at its peak, per principal; records/s and CPU-µs per record.
``tenant``   per-key pickled snapshot sizes of long-lived, realistic principals: the
             benchmark tenant (``graphsentry simulate --profile benchmark``, 500 users, 8
             days) through ingest and the engine.
``eviction`` idle eviction on Redis (a durable store, the only kind principals are evicted
             to): ``--days`` simulated days; each day one cohort of ``--cohort`` users is
             active (``--per-day`` records each), the cohorts rotate over ``--cohorts``
             (each principal is active one day in ``--cohorts``, then idle). Run twice, with
             Redis (idle principals leave worker state after ``state.idle_eviction_seconds``,
             default 52 h; their profile goes to Redis and comes back with their next event)
             and with the in-process store (no eviction); per simulated day: live keys, evicted,
             profiles restored from Redis, RSS. The idle check runs every ``--check-seconds``
             (1) of wall clock (``state.eviction_check_seconds``; the default 30 s is nothing
             against hours of real idle time, but here a simulated day passes in seconds).

Usage: ``python bench/bench_state.py [--sections engine,flow,tenant,eviction]
[--principals 100000] [--per-principal 3] ...``; the 1M-principal run:
``nice -n 10 python bench/bench_state.py --sections eviction --stores redis --days 20
--cohorts 20 --cohort 50000 --per-day 3 --check-seconds 5`` (1M principals, each active one
day; Redis holds their profiles, about 3-6 KB each, deleted at the end).
``REDIS_URL`` (default redis://127.0.0.1:6379/0) for ``eviction``; keys under a fresh prefix,
deleted at the end. Memory is VmRSS/VmHWM from /proc (Linux). Target (printed, not asserted):
state < 1 GiB for 100k principals.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import (
    MIB,
    cpu_seconds,
    load_note,
    peak_rss_bytes,
    print_header,
    rss_bytes,
)

from graphsentry.config import config_from_dict
from graphsentry.engine import NO_PARTS, DetectionEngine, Emits, PrincipalState

MEMORY_TARGET = 1 << 30
SECTIONS = ("engine", "flow", "tenant", "eviction")
DAY = 86_400.0

SHAPES: dict[str, list[dict[str, Any]]] = {
    # a steady reader: the same directory list three times (most principals most of the time)
    "reader": [dict(family="users", template="/users")] * 3,
    # a busy principal: directory reads from two networks and a file download (6 detectors)
    "mixed": [dict(family="users", template="/users"),
              dict(family="groups", template="/groups/{id}/members", ip="198.51.100.7"),
              dict(family="onedrive", template="/drives/{id}/items/{id}/content", status=302,
                   is_download=True, category="files", target_drive="b!d", target_item="i")],
}


def engine_states(principals: int, shape: str, apps: int = 100
                  ) -> tuple[DetectionEngine, dict[str, PrincipalState], int]:
    """(engine, state by principal key, events): ``principals`` principals each sending the
    events of ``SHAPES[shape]`` within one hour (all windows still open)."""
    from tests.detectors.factory import T0, event

    engine = DetectionEngine.from_config(config_from_dict({}))
    states: dict[str, PrincipalState] = {}
    template = event()
    events = feed(engine, states, (
        replace(template, ts=T0 + (p % 3600) + i, app_id=f"app-{p % apps:04d}",
                principal_id=f"principal-{p:06d}", request_id=f"r-{p}-{i}", **fields)
        for p in range(principals) for i, fields in enumerate(SHAPES[shape])))
    return engine, states, events


def feed(engine: DetectionEngine, states: dict[str, PrincipalState],
         events: Iterator[Any]) -> int:
    """Process ``events`` into ``states`` (one per principal key, created as needed); the
    number of events. Emitted signals and alerts are dropped every 10,000."""
    out, count = Emits(), 0
    for ev in events:
        state = states.get(ev.principal_key)
        if state is None:
            state = states[ev.principal_key] = engine.new_state()
        engine.process(state, ev, NO_PARTS, out)
        count += 1
        if len(out.signals) > 10_000:
            out = Emits()
    return count


def state_memory(principals: int, shape: str, apps: int = 100
                 ) -> tuple[int, int, int, list[int]]:
    """(pickled bytes, RSS growth, events, pickled bytes per key) of the engine state of
    ``principals`` principals of ``shape`` (see :func:`engine_states`)."""
    gc.collect()
    before = rss_bytes()
    _engine, states, events = engine_states(principals, shape, apps)
    gc.collect()
    grown = rss_bytes() - before
    sizes = [len(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)) for s in states.values()]
    return sum(sizes), grown, events, sizes


def size_line(sizes: list[int]) -> str:
    ordered = sorted(sizes)

    def pick(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (f"per key {statistics.fmean(ordered):,.0f} B mean, {pick(0.5):,} B median, "
            f"{pick(0.99):,} B p99, {ordered[-1]:,} B max")


# -- sections ---------------------------------------------------------------------------------

def section_engine(args: argparse.Namespace) -> None:
    for shape in SHAPES:
        pickled, grown, events, sizes = state_memory(args.principals, shape)
        verdict = "met" if max(pickled, grown) < MEMORY_TARGET else "NOT met"
        print(f"engine, {args.principals:,} {shape} principals ({events:,} events, "
              f"{len(sizes):,} keys): pickled {pickled / MIB:,.1f} MiB ({size_line(sizes)}); "
              f"RSS +{grown / MIB:,.1f} MiB = {grown / args.principals / 1024:.2f} KiB per "
              f"principal (target < 1 GiB: {verdict})", flush=True)
        gc.collect()


def section_flow(args: argparse.Namespace) -> None:
    from bytewax.testing import run_main
    from workload import START, principal_stream

    from dataflows.detect import CallbackSink, DetectSinks, build_flow, records_source
    from graphsentry.enrichment.memory import MemoryStore

    count = args.principals * args.per_principal
    at_end: dict[str, int] = {}

    def stream() -> Iterator[dict[str, Any]]:
        yield from principal_stream(0, args.principals, args.per_principal,
                                    START.timestamp(), DAY)
        at_end["rss"] = rss_bytes()  # the source asked past the last record

    config = config_from_dict({"redis": {"url": None}})
    alerts = [0]
    sinks = DetectSinks(alerts=CallbackSink(lambda _a: alerts.__setitem__(0, alerts[0] + 1)))
    gc.collect()
    before = rss_bytes()
    built = build_flow(config, records_source(stream(), config.bytewax.batch_size), sinks,
                       MemoryStore)
    started, cpu = time.perf_counter(), cpu_seconds()
    run_main(built.flow)  # type: ignore[no-untyped-call]
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    events = built.engine.counters.events
    peak, end = peak_rss_bytes(), at_end.get("rss", 0)
    print(f"flow, {args.principals:,} principals x {args.per_principal} records "
          f"({count:,} records; {events:,} events, {alerts[0]} alert versions) in "
          f"{elapsed:.1f} s: {count / elapsed:,.0f} records/s, {cpu / count * 1e6:.1f} CPU-µs "
          f"per record (generating the records included)", flush=True)
    print(f"flow, RSS before {before / MIB:,.0f} MiB, at end of input {end / MIB:,.0f} MiB "
          f"(+{(end - before) / MIB:,.0f} MiB = {(end - before) / args.principals / 1024:.2f} "
          f"KiB per principal), peak {peak / MIB:,.0f} MiB (+{(peak - before) / MIB:,.0f} MiB = "
          f"{(peak - before) / args.principals / 1024:.2f} KiB per principal)", flush=True)


def section_tenant(args: argparse.Namespace) -> None:
    from detectors.event import GraphEvent
    from graphsentry.ingest import iter_records
    from graphsentry.simulate import SimulationConfig, simulate

    sim = simulate(SimulationConfig(seed=7, users=args.tenant_users, days=args.tenant_days,
                                    profile="benchmark"))
    engine = DetectionEngine.from_config(config_from_dict({}))
    states: dict[str, PrincipalState] = {}
    with tempfile.TemporaryDirectory(prefix="bench-state-") as folder:
        raw = Path(folder) / "tenant.jsonl"
        raw.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
        del sim
        events = feed(engine, states, (GraphEvent.from_record(record)
                                       for record in iter_records([str(raw)])))
    sizes = [len(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL)) for s in states.values()]
    print(f"tenant (benchmark profile, {args.tenant_users} users, {args.tenant_days} days, "
          f"{events:,} events, {len(states):,} principal keys, windows as left at the end of "
          f"input): pickled {sum(sizes) / MIB:,.1f} MiB, {size_line(sizes)}", flush=True)


class CountingEngine(DetectionEngine):
    """The engine, counting the principal states it creates (live keys = created - evicted)."""

    created = 0

    def new_state(self) -> PrincipalState:
        CountingEngine.created += 1
        return super().new_state()


def section_eviction(args: argparse.Namespace, durable: bool) -> None:
    from bytewax.testing import run_main
    from workload import START, principal_stream

    from dataflows.detect import CallbackSink, DetectSinks, build_flow, records_source
    from graphsentry.enrichment.memory import MemoryStore
    from graphsentry.enrichment.redis_store import RedisStore

    restored = [0]

    class CountingRedisStore(RedisStore):
        """Redis, counting the stored profiles lookups brought back."""

        def lookup(self, app_ids: Any, ips: Any, profiles_before: Any) -> Any:
            found = super().lookup(app_ids, ips, profiles_before)
            restored[0] += sum(1 for p in found.profiles.values() if p is not None)
            return found

    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    config = config_from_dict({"redis": {"url": args.redis_url if durable else None,
                                         "key_prefix": prefix},
                               "state": {"eviction_check_seconds": args.check_seconds}})
    stores: list[Any] = []

    def store() -> Any:
        made = CountingRedisStore.from_config(config.redis) if durable else MemoryStore()
        stores.append(made)
        return made

    built: Any = None

    def report(day: int) -> None:
        live = CountingEngine.created - built.counters.evicted
        print(f"  day {day:>3}  live keys {live:>7,}  evicted {built.counters.evicted:>9,}  "
              f"restored from Redis {restored[0]:>7,}  RSS {rss_bytes() / MIB:>6,.0f} MiB",
              flush=True)

    def stream() -> Iterator[dict[str, Any]]:
        for day in range(args.days):
            cohort = day % args.cohorts
            yield from principal_stream(cohort * args.cohort, args.cohort, args.per_day,
                                        START.timestamp() + day * DAY, DAY - 600.0)
            report(day + 1)

    CountingEngine.created = 0
    engine = CountingEngine.from_config(config)
    sinks = DetectSinks(alerts=CallbackSink(lambda _a: None))
    built = build_flow(config, records_source(stream(), config.bytewax.batch_size), sinks, store,
                       engine=engine)
    idle = config.state.idle_eviction_seconds
    kind = (f"Redis (durable): idle principals evicted after {idle / 3600:.0f} h of event time"
            if durable else "in-process store (not durable): nothing is evicted")
    print(f"eviction, {kind}; {args.days} days, {args.cohorts} cohorts of {args.cohort:,} users "
          f"({args.cohorts * args.cohort:,} principals), one cohort active per day, "
          f"{args.per_day} records each", flush=True)
    started, cpu = time.perf_counter(), cpu_seconds()
    run_main(built.flow)  # type: ignore[no-untyped-call]
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    records = args.days * args.cohort * args.per_day
    print(f"  {records:,} records in {elapsed:.1f} s ({cpu / records * 1e6:.1f} CPU-µs per "
          f"record); profiles saved {built.counters.profiles_saved:,}, peak RSS "
          f"{peak_rss_bytes() / MIB:,.0f} MiB", flush=True)
    if durable:
        client = stores[0].client
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        used = sum(int(client.memory_usage(k) or 0) for k in keys[:2000])
        if keys:
            print(f"  Redis: {len(keys):,} keys under the run's prefix, about "
                  f"{used / min(len(keys), 2000):,.0f} B each (MEMORY USAGE, first 2,000)")
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])


# -- driver -----------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated, from {', '.join(SECTIONS)}")
    p.add_argument("--principals", type=int, default=100_000)
    p.add_argument("--per-principal", type=int, default=3, help="records per principal (flow)")
    p.add_argument("--tenant-users", type=int, default=500)
    p.add_argument("--tenant-days", type=int, default=8)
    p.add_argument("--days", type=int, default=14, help="simulated days (eviction)")
    p.add_argument("--cohort", type=int, default=5_000, help="users active per day (eviction)")
    p.add_argument("--cohorts", type=int, default=7, help="cohorts rotating (eviction)")
    p.add_argument("--per-day", type=int, default=4, help="records per active user and day")
    p.add_argument("--check-seconds", type=float, default=1.0,
                   help="state.eviction_check_seconds (eviction)")
    p.add_argument("--stores", default="redis,memory",
                   help="eviction runs: redis (evicts), memory (never evicts), or both")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                         "redis://127.0.0.1:6379/0"))
    p.add_argument("--run-section", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.run_section:  # a child: one section on a fresh heap
        if args.run_section in ("eviction-redis", "eviction-memory"):
            section_eviction(args, durable=args.run_section == "eviction-redis")
        else:
            globals()[f"section_{args.run_section}"](args)
        return 0
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"bench_state: unknown section(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(SECTIONS)}")
    stores = {store.strip() for store in args.stores.split(",")}
    if not stores or stores - {"redis", "memory"}:
        raise SystemExit(f"bench_state: --stores takes redis, memory or both, not {args.stores}")
    print_header("bench_state: detection state per principal, in total, and idle eviction")
    argv = sys.argv[1:] if argv is None else argv
    for section in wanted:
        runs = ([f"eviction-{store.strip()}" for store in args.stores.split(",")]
                if section == "eviction" else [section])
        for run in runs:
            subprocess.run([sys.executable, __file__, *argv, "--run-section", run], check=True)
    print(f"at end: {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
