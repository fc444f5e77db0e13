"""``graphsentry backtest``: detection over labeled input, per configuration, scored per detector.

Input is files (any delivery shape; detection runs embedded) or a time range of the activity
topic (detection runs as a replay). Each ``--config`` is run on the same input; with two, the
terminal, JSON and HTML outputs compare them side by side. Matching and metric definitions are
in ``graphsentry/backtest/metrics.py`` and ``docs/backtest.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphsentry.commands._topic_range import add_range_arguments, check_range, with_bootstrap
from graphsentry.errors import GraphsentryError

if TYPE_CHECKING:
    from graphsentry.config import Config

HELP = "run detection over labeled data and report precision, recall and time to detect"
MAX_CONFIGS = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="FILE",
                        help="raw or normalized Graph activity files ('-' for stdin)")
    source.add_argument("--topic", help="normalized activity topic (use with --from/--to)")
    add_range_arguments(p)
    p.add_argument("--labels", required=True, help="labels JSON written by graphsentry simulate")
    p.add_argument("--config", action="append", metavar="YAML",
                   help="configuration to test; give two to compare them (default: built-in)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--progress", action="store_true",
                   help="show progress even when stderr is not a terminal")


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


def run(args: argparse.Namespace) -> int:
    from graphsentry.backtest import detect_records
    from graphsentry.backtest.matching import load_labels
    from graphsentry.backtest.metrics import (
        COMPARE_COLUMNS,
        METRIC_COLUMNS,
        METRIC_HEADERS,
        compare_headers,
        comparison_rows,
        compute_metrics,
        metric_rows,
        summary_lines,
    )
    from graphsentry.backtest.report_html import render_report
    from graphsentry.config import load_config
    from graphsentry.hunt.tables import render_table

    check_range(args)
    paths: list[str] = args.config or []
    if len(paths) > MAX_CONFIGS:
        raise GraphsentryError(f"at most {MAX_CONFIGS} --config files can be compared")
    labels = load_labels(args.labels)
    configs = [load_config(p) for p in paths] or [load_config(None)]
    names = _config_names(paths) if paths else ["default"]
    progress = True if args.progress else None
    records = _load_records(args.input) if args.input else None
    runs = []
    for name, config in zip(names, configs, strict=True):
        if records is not None:
            alerts, stats = detect_records(records, config, label=f"backtest {name}",
                                           progress=progress)
            events = stats.events
        else:
            alerts, events = _replay(args, config, progress)
        runs.append(compute_metrics(alerts, labels, events, name=name))
    out = sys.stdout
    for metrics in runs:
        out.write(f"\n== {metrics.name}: {metrics.events} events, "
                  f"{metrics.overall.alerts} alerts ==\n")
        out.write(render_table(METRIC_COLUMNS, metric_rows(metrics), headers=METRIC_HEADERS,
                               right_aligned=METRIC_COLUMNS[1:]))
        out.write("\n".join(summary_lines(metrics)) + "\n")
    if len(runs) == 2:
        a, b = runs
        out.write(f"\n== {a.name} vs {b.name} ==\n")
        out.write(render_table(COMPARE_COLUMNS, comparison_rows(a, b),
                               headers=compare_headers(a.name, b.name),
                               right_aligned=COMPARE_COLUMNS[1:]))
    out.flush()
    source = " ".join(args.input) if args.input else f"{args.topic} [{args.start}, {args.end})"
    if args.json:
        document = {"input": source, "labels": args.labels, "runs": [m.to_dict() for m in runs]}
        if len(runs) == 2:
            document["comparison"] = comparison_rows(*runs)
        _write(args.json, json.dumps(document, indent=2) + "\n")
    if args.html:
        notes = [f"input: {source}", f"labels: {args.labels}",
                 *(f"configuration {n}: {c.source}" for n, c in zip(names, configs, strict=True))]
        _write(args.html, render_report(runs, labels, notes=notes))
    return 0


def _replay(args: argparse.Namespace, config: Config, progress: bool | None
            ) -> tuple[list[dict[str, Any]], int]:
    from dataflows.range_source import parse_range
    from graphsentry.commands.replay import replay

    start, end = parse_range(args.start, args.end)
    config = with_bootstrap(config, args)
    alerts: list[dict[str, Any]] = []
    stats = replay(config, args.topic, start, end, on_alert=alerts.append, progress=progress)
    return alerts, stats.events


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise GraphsentryError(f"cannot write {path}: {exc.strerror}") from None
    print(f"graphsentry backtest: wrote {path}", file=sys.stderr)
