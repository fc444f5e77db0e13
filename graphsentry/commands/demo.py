"""``graphsentry demo``: the whole idea in one command, with nothing but Python.

Simulates a tenant (warm-up days, then an attack day with the attack chain and benign
look-alikes), runs the same detection dataflow as the deployment in this process, prints the
alerts and the incident as a story, and scores the run against the simulator's labels. No Kafka,
Redis or Docker is needed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from graphsentry.errors import GraphsentryError

HELP = "simulate a tenant with an attack, detect it in process, and tell the story"
RAW_NAME = "activity.jsonl"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    from graphsentry.simulate import DEMO_DAYS

    p.add_argument("--days", type=int, default=DEMO_DAYS,
                   help="simulated days: history days (the principals' learning period is "
                   f"3 days), then the attack day (default {DEMO_DAYS})")
    p.add_argument("--users", type=int, default=40, help="users in the tenant (default 40)")
    p.add_argument("--keep", metavar="DIR",
                   help="keep the simulated logs, labels and alerts in DIR (default: a "
                   "temporary directory, removed afterwards)")
    p.add_argument("--progress", action="store_true",
                   help="show progress even when stderr is not a terminal")


def _simulate(folder: Path, args: argparse.Namespace) -> tuple[Path, Path, Any]:
    from graphsentry.simulate import SimulationConfig, simulate
    from graphsentry.simulate.labels import write_labels

    config = SimulationConfig(seed=args.seed, users=args.users, days=args.days)
    try:
        config.validate()
    except ValueError as exc:
        raise GraphsentryError(str(exc)) from None
    sim = simulate(config)
    raw = folder / RAW_NAME
    labels = folder / f"{RAW_NAME}.labels.json"
    try:
        raw.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
        write_labels(labels, sim.labels_document())
    except OSError as exc:
        raise GraphsentryError(f"cannot write to {folder}: {exc.strerror}") from None
    return raw, labels, sim


def _section(title: str, colour: bool) -> str:
    line = f"== {title} " + "=" * max(0, 96 - len(title))
    return f"\x1b[1m{line}\x1b[0m" if colour else line


def _demo(folder: Path, args: argparse.Namespace) -> int:
    from graphsentry.alerts import alert_to_json, format_alert, latest_versions
    from graphsentry.backtest import detect_with_signals, principal_days
    from graphsentry.backtest.matching import load_labels
    from graphsentry.backtest.metrics import compute_metrics, summary_lines
    from graphsentry.commands.replay import sort_alerts
    from graphsentry.config import load_config
    from graphsentry.ingest import iter_records
    from graphsentry.story import render_story

    out = sys.stdout
    colour = out.isatty()
    began = time.perf_counter()
    raw, labels_path, sim = _simulate(folder, args)
    attacks = [label.name for label in sim.labels if label.kind == "attack"]
    benign = [label.name for label in sim.labels if label.kind != "attack"]
    out.write(_section("simulated tenant", colour) + "\n")
    out.write(f"{sim.stats.records} Graph activity records over {args.days} day(s), "
              f"{args.users} users, seed {args.seed} ({sim.stats.late} delivered late, "
              f"{sim.stats.duplicates} duplicated)\n"
              f"attacks on the last day: {', '.join(attacks)}\n"
              f"benign look-alikes: {', '.join(benign)}\n\n")
    out.flush()
    dropped: Counter[str] = Counter()
    records = list(iter_records([str(raw)], on_reject=lambda _r: dropped.update(["rejects"]),
                                on_duplicate=lambda _r: dropped.update(["duplicates"])))
    out.write(f"ingest: {len(records)} records normalized, {dropped['duplicates']} duplicate "
              f"deliveries dropped, {dropped['rejects']} rejected\n\n")
    config = load_config(None, env={})  # the built-in defaults: no Kafka, no Redis
    found, signals, stats = detect_with_signals(records, config, label="demo: detecting",
                                                progress=True if args.progress else None)
    alerts = sort_alerts(found)
    signals = signals or []
    (folder / "alerts.jsonl").write_text("".join(alert_to_json(a) + "\n" for a in alerts),
                                         encoding="utf-8")
    (folder / "signals.jsonl").write_text("".join(alert_to_json(s) + "\n" for s in signals),
                                          encoding="utf-8")
    latest = latest_versions(alerts)
    out.write(_section(f"{len(latest)} alerts ({len(alerts)} versions) from "
                       f"{len(latest_versions(signals, 'signal_id'))} signals", colour) + "\n")
    out.writelines(format_alert(alert) + "\n" for alert in latest)
    out.write("\n" + _section("the story", colour) + "\n")
    out.write(render_story(alerts, width=100, colour=colour, signals=signals))
    metrics = compute_metrics(alerts, load_labels(labels_path), stats.events, name="demo",
                              signals=signals, principal_days=principal_days(records))
    out.write("\n" + _section("backtest against the labels", colour) + "\n")
    out.write("\n".join(summary_lines(metrics)) + "\n")
    out.write(f"\n{stats.summary()}; {time.perf_counter() - began:.1f}s in all\n")
    if args.keep:
        out.write(f"kept in {folder}: try\n"
                  f"  graphsentry backtest --input {raw} --labels {labels_path} "
                  f"--html {folder / 'report.html'}\n"
                  f"  graphsentry hunt origins {raw} --top 3\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.keep:
        folder = Path(args.keep)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GraphsentryError(f"cannot create {folder}: {exc.strerror}") from None
        return _demo(folder, args)
    with tempfile.TemporaryDirectory(prefix="graphsentry-demo-") as temp:
        return _demo(Path(temp), args)
