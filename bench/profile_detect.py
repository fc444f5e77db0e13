"""Where the time of the embedded detection flow goes, on the benchmark tenant (cProfile).

Simulates the benchmark profile (``graphsentry simulate --profile benchmark``: 500 users, 8
days, seed 7 by default), reads it through ingest into memory (not profiled), then runs
``graphsentry.detection.run_embedded`` (the deployment's dataflow in this process, in-memory
store) once plainly (the reference rate) and once under cProfile, and prints:

* the share of profiled time per area (own time of the functions of each module group:
  detectors by file, the engine, the profile, the alert layer, the flow's steps, Bytewax,
  the standard library and builtins);
* the top functions by own time, and the cumulative time of the main steps.

cProfile adds a fixed cost per Python call, so call-heavy code looks more expensive than it
is: judge the shares, and the plain run's rate, not the profiled run's. Not a benchmark
(``make bench`` does not run it). Usage: ``python bench/profile_detect.py [--users 500]
[--days 8] [--seed 7] [--top 30] [--save FILE.prof]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import ROOT, cpu_seconds, print_header

from graphsentry.detection import run_embedded
from graphsentry.ingest import iter_records
from graphsentry.simulate import SimulationConfig, simulate

MAIN_STEPS = (
    ("dataflows/detect.py", "on_batch"), ("dataflows/detect.py", "__call__"),
    ("graphsentry/engine.py", "process"), ("graphsentry/engine.py", "close"),
    ("graphsentry/engine.py", "_alert"), ("graphsentry/engine.py", "facts"),
    ("graphsentry/engine.py", "_expire"), ("detectors/event.py", "from_record"),
    ("detectors/profile.py", "observe"), ("dataflows/detect.py", "on_notify"),
    ("dataflows/detect.py", "notify_at"),
)


def area(filename: str, function: str) -> str:
    """The module group a profiled function belongs to."""
    path = filename.replace("\\", "/")
    root = str(ROOT) + "/"
    if path.startswith(root):
        relative = path[len(root):]
        if relative.startswith("detectors/"):
            return relative
        if relative.startswith("graphsentry/alerting/"):
            return "graphsentry/alerting/*"
        return relative
    if "/bytewax/" in path:
        return "bytewax (Python side)"
    if filename == "~":
        return f"builtins ({function.split(' of ')[0].strip('<>')[:40]})" \
            if function.startswith("<method") else "builtins"
    return "standard library / other"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--days", type=int, default=8)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--save", help="write the raw profile (pstats) here")
    args = p.parse_args(argv)

    print_header("profile_detect: cProfile of the embedded detection flow, benchmark tenant")
    sim = simulate(SimulationConfig(seed=args.seed, users=args.users, days=args.days,
                                    profile="benchmark"))
    with tempfile.TemporaryDirectory(prefix="profile-detect-") as folder:
        raw = Path(folder) / "bench.jsonl"
        raw.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
        del sim
        records = list(iter_records([str(raw)]))
    print(f"{len(records):,} normalized records (benchmark profile, {args.users} users, "
          f"{args.days} days, seed {args.seed})", flush=True)

    gc.collect()
    started, cpu = time.perf_counter(), cpu_seconds()
    stats = run_embedded(records)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(f"plain run: {stats.summary()}; {elapsed:.1f} s, {cpu / stats.events * 1e6:.1f} "
          f"CPU-µs per event", flush=True)

    gc.collect()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    run_embedded(records)
    profiler.disable()
    print(f"profiled run: {time.perf_counter() - started:.1f} s", flush=True)
    if args.save:
        profiler.dump_stats(args.save)
    report(pstats.Stats(profiler), args.top, stats.events)
    return 0


def report(stats: pstats.Stats, top: int, events: int) -> None:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values())
    by_area: dict[str, float] = defaultdict(float)
    for (filename, _line, function), row in table.items():
        by_area[area(filename, function)] += row[2]
    print(f"\nown time by area ({total:.1f} profiled seconds; cProfile inflates per-call costs):")
    for name, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {seconds / total:6.1%}  {seconds / events * 1e6:6.2f} µs/event  {name}")

    def label(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        name = filename.replace(str(ROOT) + "/", "")
        return f"{name}:{line}({function})" if filename != "~" else function

    print(f"\ntop {top} functions by own time:")
    print("   own%   cum%     calls  function")
    for key, row in sorted(table.items(), key=lambda kv: -kv[1][2])[:top]:
        print(f"  {row[2] / total:5.1%}  {row[3] / total:5.1%}  {row[1]:>8,}  {label(key)}")
    print("\ncumulative time of the main steps:")
    for suffix, function in MAIN_STEPS:
        for key, row in table.items():
            if key[0].endswith(suffix) and key[2] == function:
                print(f"  {row[3] / total:5.1%}  {row[1]:>8,} calls  {label(key)}")


if __name__ == "__main__":
    raise SystemExit(main())
