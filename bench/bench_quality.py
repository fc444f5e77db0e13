"""Detection quality on the multi-day benchmark tenant (issue 12's honest evaluation).

1. simulate the benchmark profile (default 500 users over 8 days, seed 7: recurring benign
   look-alike jobs with days of history, quiet attacks on the last day), write its raw Event Hub
   messages to a temporary file;
2. read them back through ingest (late, out of order, duplicated deliveries; Microsoft Graph
   and Azure AD Graph activity logs);
3. run the embedded detection (``graphsentry.detection.run_embedded``: the deployment's
   dataflow, in process), collecting alerts and, when the detection emits them, signals;
4. score with ``graphsentry.backtest``: attack recall (alerts), expected-detector recall
   (signals), precision over alerts, time to detect, and signals, alerts and alert updates per
   1,000 principal-days; print the tables and the time each step took.

Usage: ``.venv/bin/python bench/bench_quality.py [--users 500] [--days 8] [--seed 7]
[--json FILE] [--html FILE]``. No Kafka or Redis is needed; one process, one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphsentry.backtest import detect_with_signals, principal_days  # noqa: E402
from graphsentry.backtest.matching import parse_labels  # noqa: E402
from graphsentry.backtest.metrics import compute_metrics, summary_lines  # noqa: E402
from graphsentry.backtest.report_html import render_report  # noqa: E402
from graphsentry.backtest.views import (  # noqa: E402
    ATTACK_COLUMNS,
    ATTACK_HEADERS,
    BENIGN_COLUMNS,
    BENIGN_HEADERS,
    METRIC_COLUMNS,
    METRIC_HEADERS,
    attack_rows,
    benign_rows,
    metric_rows,
)
from graphsentry.config import load_config  # noqa: E402
from graphsentry.hunt.tables import render_table  # noqa: E402
from graphsentry.ingest import iter_records  # noqa: E402
from graphsentry.simulate import SimulationConfig, simulate  # noqa: E402
from graphsentry.simulate.benchmark import DEFAULT_DAYS, DEFAULT_USERS  # noqa: E402


def machine() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()} on "
            f"{platform.machine()}, {os.cpu_count()} logical CPUs (shared), {platform.system()}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=DEFAULT_USERS)
    p.add_argument("--days", type=int, default=DEFAULT_DAYS)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--html", metavar="FILE", help="write the HTML report")
    args = p.parse_args(argv)

    print(f"machine: {machine()}")
    timings: dict[str, float] = {}
    began = time.perf_counter()
    sim = simulate(SimulationConfig(seed=args.seed, users=args.users, days=args.days,
                                    profile="benchmark"))
    document = sim.labels_document()
    timings["simulate"] = time.perf_counter() - began
    labels = parse_labels(document)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as folder:
        raw = Path(folder) / "bench.jsonl"
        raw.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
        began = time.perf_counter()
        dropped: Counter[str] = Counter()
        records = list(iter_records(
            [str(raw)], on_reject=lambda r: dropped.update([f"reject {r.reason}"]),
            on_duplicate=lambda _r: dropped.update(["duplicate delivery"])))
        timings["ingest"] = time.perf_counter() - began
    days = principal_days(records)
    print(f"simulated: {sim.stats.records:,} deliveries of {len(sim.records):,} records "
          f"({sim.stats.late:,} late, {sim.stats.duplicates:,} duplicated), {args.users} users, "
          f"{args.days} days, seed {args.seed}; {len(labels.attacks)} attacks, "
          f"{len(labels.benign)} benign look-alikes")
    print(f"ingest: {len(records):,} records, {days:,} principal-days; dropped: "
          + (", ".join(f"{n:,} {k}" for k, n in sorted(dropped.items())) or "none"))
    config = load_config(None, env={})
    began = time.perf_counter()
    alerts, signals, stats = detect_with_signals(records, config, label="bench: detecting")
    timings["detect"] = time.perf_counter() - began
    metrics = compute_metrics(alerts, labels, stats.events, name="default", signals=signals,
                              principal_days=days)
    print(f"detection: {stats.events:,} events, {len(alerts):,} alert versions, "
          + (f"{len(signals):,} signals" if signals is not None
             else "no signal stream (alerts scored as signals)"))
    for title, columns, rows, headers in (
            ("attacks", ATTACK_COLUMNS, attack_rows(metrics), ATTACK_HEADERS),
            ("benign look-alikes", BENIGN_COLUMNS, benign_rows(metrics), BENIGN_HEADERS),
            ("detectors", METRIC_COLUMNS, metric_rows(metrics), METRIC_HEADERS)):
        print(f"\n{title}")
        print(render_table(columns, rows, headers=headers, max_width=90,
                           right_aligned=columns[1:] if title == "detectors" else ()), end="")
    print()
    print("\n".join(summary_lines(metrics)))
    print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f" ({stats.events / timings['detect']:,.0f} events/s detecting)")
    if args.json:
        result: dict[str, Any] = {"machine": machine(), "users": args.users, "days": args.days,
                                  "seed": args.seed, "timings_s": timings,
                                  "metrics": metrics.to_dict()}
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.html:
        Path(args.html).write_text(render_report([metrics], labels,
                                                 title="graphsentry benchmark quality"),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
