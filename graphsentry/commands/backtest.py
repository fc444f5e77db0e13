"""``graphsentry backtest``: detection over labeled input, per configuration, scored per detector.

Input is files (any delivery shape; detection runs embedded), a time range of the activity
topic (detection runs as a replay), or an alert stream (and optionally a signal stream) that
another run produced. Each ``--config`` is run on the same input; with two, the terminal, JSON
and HTML outputs compare them side by side. Matching and metric definitions are in
``graphsentry/backtest/matching.py``, ``metrics.py`` and ``docs/backtest.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphsentry.commands._output import check_writable
from graphsentry.commands._topic_range import add_range_arguments, check_range, with_bootstrap
from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config

HELP = ("run detection over labeled data and report attack and detector recall, precision over "
        "alerts, time to detect, and signals/alerts per 1,000 principal-days")
MAX_CONFIGS = 2
DEFAULT_LATENCY = 2 * 3600.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="FILE",
                        help="raw or normalized Graph activity files ('-' for stdin)")
    source.add_argument("--topic", help="normalized activity topic (use with --from/--to)")
    source.add_argument("--alerts", metavar="FILE",
                        help="score these alerts (JSON lines, every revision) instead of "
                        "running detection")
    add_range_arguments(p)
    p.add_argument("--signals", metavar="FILE",
                   help="with --alerts: the signal stream (JSON lines); default: the alerts")
    p.add_argument("--labels", required=True, help="labels JSON written by graphsentry simulate")
    p.add_argument("--config", action="append", metavar="YAML",
                   help="configuration to test; give two to compare them (default: built-in)")
    p.add_argument("--latency", type=_latency, default=DEFAULT_LATENCY, metavar="DURATION",
                   help="detection latency allowed after an attack's last record: 90m, 2h, "
                   "600s (default 2h)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--progress", action="store_true",
                   help="show progress even when stderr is not a terminal")


def _latency(text: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        value = float(text[:-1]) if text[-1:] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration (90m, 2h, 600s): {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value * units.get(text[-1:], 1.0)


def _config_names(paths: list[str]) -> list[str]:
    names = [Path(p).stem for p in paths]
    if len(set(names)) < len(names):
        names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
    return names


def _load_records(paths: list[str]) -> list[dict[str, Any]]:
    from graphsentry.ingest import iter_records

    rejects = [0]

    def on_reject(_reject: Any) -> None:
        rejects[0] += 1

    records = list(iter_records(paths, on_reject=on_reject))
    if rejects[0]:
        print(f"graphsentry backtest: {rejects[0]} input record(s) rejected", file=sys.stderr)
    if not records:
        raise GraphsentryError("no valid records in the input")
    return records


def _read_lines(path: str, what: str) -> list[dict[str, Any]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GraphsentryError(f"cannot read {what} {path}: {exc.strerror}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise GraphsentryError(f"{path}:{number}: not JSON: {exc.msg}") from None
    return out


def run(args: argparse.Namespace) -> int:
    from graphsentry.backtest import detect_with_signals, principal_days
    from graphsentry.backtest.matching import load_labels
    from graphsentry.backtest.metrics import compute_metrics, summary_lines
    from graphsentry.backtest.report_html import render_report
    from graphsentry.backtest.views import (
        ATTACK_COLUMNS,
        ATTACK_HEADERS,
        BENIGN_COLUMNS,
        BENIGN_HEADERS,
        COMPARE_COLUMNS,
        METRIC_COLUMNS,
        METRIC_HEADERS,
        attack_rows,
        benign_rows,
        compare_headers,
        comparison_rows,
        metric_rows,
    )
    from graphsentry.config import load_config
    from graphsentry.hunt.tables import render_table

    check_range(args)
    check_writable(args.json, "--json")
    check_writable(args.html, "--html")
    if args.signals and not args.alerts:
        raise GraphsentryError("--signals goes with --alerts (a detection run collects its own)")
    paths: list[str] = args.config or []
    if len(paths) > MAX_CONFIGS:
        raise GraphsentryError(f"at most {MAX_CONFIGS} --config files can be compared")
    labels = load_labels(args.labels)
    configs = [load_config(p) for p in paths] or [load_config(None)]
    names = _config_names(paths) if paths else ["default"]
    progress = True if args.progress else None
    records = _load_records(args.input) if args.input else None
    days = principal_days(records) if records is not None else None
    runs = []
    if args.alerts:
        alerts = _read_lines(args.alerts, "alerts")
        signals = _read_lines(args.signals, "signals") if args.signals else None
        runs.append(compute_metrics(alerts, labels, 0, name=Path(args.alerts).stem,
                                    signals=signals, latency=args.latency))
    for name, config in zip(names, configs, strict=True):
        if args.alerts:
            break
        if records is not None:
            found, signals, stats = detect_with_signals(records, config,
                                                        label=f"backtest {name}",
                                                        progress=progress)
            events = stats.events
        else:
            found, signals, events = _replay(args, config, progress)
        runs.append(compute_metrics(found, labels, events, name=name, signals=signals,
                                    principal_days=days, latency=args.latency))
    out = sys.stdout
    for metrics in runs:
        out.write(f"\n== {metrics.name}: {metrics.events} events, {len(metrics.matched)} "
                  f"alerts ({metrics.emissions} versions), {len(metrics.matched_signals)} "
                  "signals ==\n")
        for title, columns, rows, headers in (
                ("attacks", ATTACK_COLUMNS, attack_rows(metrics), ATTACK_HEADERS),
                ("benign look-alikes", BENIGN_COLUMNS, benign_rows(metrics), BENIGN_HEADERS),
                ("detectors", METRIC_COLUMNS, metric_rows(metrics), METRIC_HEADERS)):
            out.write(f"\n{title}\n")
            out.write(render_table(columns, rows, headers=headers, max_width=90,
                                   right_aligned=columns[1:] if title == "detectors" else ()))
        out.write("\n" + "\n".join(summary_lines(metrics)) + "\n")
    if len(runs) == 2:
        a, b = runs
        out.write(f"\n== {a.name} vs {b.name} ==\n")
        out.write(render_table(COMPARE_COLUMNS, comparison_rows(a, b),
                               headers=compare_headers(a.name, b.name),
                               right_aligned=COMPARE_COLUMNS[1:]))
    out.flush()
    source = (" ".join(args.input) if args.input else args.alerts if args.alerts
              else f"{args.topic} [{args.start}, {args.end})")
    if args.json:
        document = {"input": source, "labels": args.labels, "latency_s": args.latency,
                    "runs": [m.to_dict() for m in runs]}
        if len(runs) == 2:
            document["comparison"] = comparison_rows(*runs)
        _write(args.json, json.dumps(document, indent=2) + "\n")
    if args.html:
        notes = [f"input: {source}", f"labels: {args.labels}",
                 f"detection latency allowed: {args.latency:.0f} s",
                 *(f"configuration {n}: {c.source}" for n, c in zip(names, configs, strict=True)
                   if not args.alerts)]
        _write(args.html, render_report(runs, labels, notes=notes))
    return 0


def _replay(args: argparse.Namespace, config: Config, progress: bool | None
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    from dataflows.range_source import parse_range
    from graphsentry.commands.replay import replay

    start, end = parse_range(args.start, args.end)
    config = with_bootstrap(config, args)
    alerts: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    stats = replay(config, args.topic, start, end, on_alert=alerts.append, progress=progress,
                   on_signal=signals.append)
    return alerts, signals, stats.events


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GraphsentryError(f"cannot write {path}: {exc.strerror}") from None
    print(f"graphsentry backtest: wrote {path}", file=sys.stderr)
