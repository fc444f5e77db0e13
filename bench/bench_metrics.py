"""The cost of the metrics endpoints on the detection flow (embedded, one process).

The flow's counters are always kept (the exit summaries read them); what ``metrics.enabled``
adds is the HTTP server and, at each scrape, reading every counter into samples. This runs
the embedded detection flow (``graphsentry.detection.run_embedded``, the deployment's
dataflow) over a simulated benchmark tenant, alternately without the endpoints ("off") and
with them scraped every ``--scrape-seconds`` ("on", far more often than Prometheus' usual
15-60 s), and prints wall-clock and CPU seconds (the process's, the scraping thread's
included) for each round, the medians and the ratios. The machine is noted: rates on a
shared machine drift, which is why rounds alternate.

Run: ``python bench/bench_metrics.py [--users 120] [--days 5] [--rounds 3]
[--scrape-seconds 1]``. No broker or Redis is needed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphsentry.detection import run_embedded
from graphsentry.metrics.server import start


def records(users: int, days: int, workdir: Path) -> list[dict[str, Any]]:
    from graphsentry.ingest import iter_records

    out = workdir / "sim.jsonl"
    subprocess.run([sys.executable, "-m", "graphsentry.cli", "simulate", "--profile",
                    "benchmark", "--users", str(users), "--days", str(days), "--out", str(out)],
                   check=True, capture_output=True)
    return list(iter_records([str(out)]))


def once(data: list[dict[str, Any]], scrape_seconds: float | None) -> tuple[float, float, int]:
    """``(wall s, CPU s, scrapes)`` of one embedded run, with the endpoints scraped every
    ``scrape_seconds`` (None: no endpoints)."""
    server = start("127.0.0.1", 0) if scrape_seconds is not None else None
    done = threading.Event()
    scrapes = [0]

    def scrape() -> None:
        assert server is not None and scrape_seconds is not None
        while not done.wait(scrape_seconds):
            with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
                response.read()
            scrapes[0] += 1

    scraper = threading.Thread(target=scrape, daemon=True) if server is not None else None
    wall, cpu = time.perf_counter(), time.process_time()
    if scraper is not None:
        scraper.start()
    stats = run_embedded(data)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done.set()
    if scraper is not None:
        scraper.join()
    if server is not None:
        server.close()
    assert stats.events > 0
    return wall, cpu, scrapes[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=120)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scrape-seconds", type=float, default=1.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average at start "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (shared machine)")
    with tempfile.TemporaryDirectory() as tmp:
        data = records(args.users, args.days, Path(tmp))
    print(f"workload: {len(data):,} simulated records ({args.users} users, {args.days} days), "
          f"embedded detection flow, one process")
    once(data[:5000], None)  # warm-up: imports, caches
    results: dict[str, list[tuple[float, float, int]]] = {"off": [], "on": []}
    for round_ in range(1, args.rounds + 1):
        for mode in ("off", "on") if round_ % 2 else ("on", "off"):
            wall, cpu, scrapes = once(data, args.scrape_seconds if mode == "on" else None)
            results[mode].append((wall, cpu, scrapes))
            extra = f", {scrapes} scrapes" if mode == "on" else ""
            print(f"round {round_} {mode:>3}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                  f"{len(data) / wall:,.0f} records/s{extra}")
    wall = {m: statistics.median(r[0] for r in rs) for m, rs in results.items()}
    cpu = {m: statistics.median(r[1] for r in rs) for m, rs in results.items()}
    print(f"median off: {wall['off']:.2f} s wall, {cpu['off']:.2f} s CPU; on (scraped every "
          f"{args.scrape_seconds:g} s): {wall['on']:.2f} s wall, {cpu['on']:.2f} s CPU")
    print(f"on / off: wall {wall['on'] / wall['off']:.3f}, CPU {cpu['on'] / cpu['off']:.3f}")
    print(f"one scrape of /metrics (in process, {SCRAPES} scrapes): "
          f"{scrape_cpu() * 1000:.2f} ms CPU")
    return 0


SCRAPES = 200


def scrape_cpu() -> float:
    """CPU seconds of one rendering of the registry (what a scrape costs the process)."""
    from prometheus_client import REGISTRY, generate_latest

    started = time.process_time()
    for _ in range(SCRAPES):
        generate_latest(REGISTRY)
    return (time.process_time() - started) / SCRAPES


if __name__ == "__main__":
    raise SystemExit(main())
