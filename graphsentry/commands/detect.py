"""``graphsentry detect``: run the detection dataflow in this process over log files."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, Any

from graphsentry.commands._output import check_writable
from graphsentry.errors import GraphsentryError

HELP = "detect threats in Graph activity log files (any ingest format) without Kafka or Redis"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", default=["-"], metavar="PATH",
                   help="log files in any delivery shape ('-' or nothing: stdin)")
    p.add_argument("--config", help="YAML configuration (default: $GRAPHSENTRY_CONFIG or "
                   "built-in defaults)")
    p.add_argument("--rejects", metavar="FILE",
                   help="write input that could not be normalized here, one JSON per line")
    p.add_argument("--alerts-out", metavar="FILE",
                   help="write alerts here instead of stdout (one JSON per line; every version "
                   "of an alert, the latest has the highest revision)")
    p.add_argument("--signals-out", metavar="FILE",
                   help="also write every signal (provisional and final) here, one JSON per "
                   "line ('-': stdout, interleaved with the alerts)")
    p.add_argument("--format", choices=("json", "ocsf"), default="json",
                   help="alert and signal lines: graphsentry's JSON (schemas/graph_alert.avsc, "
                   "graph_signal.avsc) or OCSF Detection Findings (class 2004, "
                   "docs/wire-format.md); default json")
    p.add_argument("--asn", metavar="FILE", action="append",
                   help="ip2asn TSV to enrich with (repeatable, .gz ok)")
    p.add_argument("--apps", metavar="FILE", help="app directory (Graph JSON export or CSV)")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")


def _open(path: str | None, stack: ExitStack, default: IO[str] | None) -> IO[str] | None:
    if path is None:
        return default
    if path == "-":
        return sys.stdout
    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the stack
    except OSError as exc:
        raise GraphsentryError(f"cannot write {path}: {exc.strerror}") from None
    return stack.enter_context(handle)


def run(args: argparse.Namespace) -> int:
    from graphsentry.alerting.ocsf import alert_to_ocsf_json, signal_to_ocsf, to_json
    from graphsentry.alerts import alert_to_json, format_alert, latest_versions
    from graphsentry.commands._summary import engine_line, ingest_line, tally
    from graphsentry.config import load_config
    from graphsentry.detection import run_embedded
    from graphsentry.enrichment.apps import load_apps
    from graphsentry.enrichment.asn import load_asn
    from graphsentry.enrichment.memory import MemoryStore
    from graphsentry.ingest import Reject, iter_records
    from graphsentry.ingest.readers import check_paths
    from graphsentry.story import render_story

    for path, option in ((args.rejects, "--rejects"), (args.alerts_out, "--alerts-out"),
                         (args.signals_out, "--signals-out")):
        check_writable(path, option)
    config = load_config(args.config)
    check_paths(args.paths)
    store = MemoryStore()
    notes: list[str] = []
    if args.asn:
        notes.append(load_asn(args.asn, store).summary("asn"))
    if args.apps:
        notes.append(load_apps(args.apps, store).summary("apps"))
    ingest_rejects: Counter[str] = Counter()
    engine_rejects: Counter[str] = Counter()
    ingest_duplicates = [0]
    alerts: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    ocsf = args.format == "ocsf"
    encode = alert_to_ocsf_json if ocsf else alert_to_json
    with ExitStack() as stack:
        rejects_out = _open(args.rejects, stack, None)
        alerts_out = _open(args.alerts_out, stack, sys.stdout)
        signals_out = _open(args.signals_out, stack, None)

        def rejected(counts: Counter[str]) -> Callable[[Reject | dict[str, Any]], None]:
            def on_reject(rej: Reject | dict[str, Any]) -> None:
                body = tally(counts, rej)
                if rejects_out is not None:
                    rejects_out.write(json.dumps(body, ensure_ascii=False) + "\n")
            return on_reject

        def on_duplicate(_record: dict[str, Any]) -> None:
            ingest_duplicates[0] += 1

        def on_alert(alert: dict[str, Any]) -> None:
            alerts.append(alert)
            if alerts_out is not None:
                alerts_out.write(encode(alert) + "\n")
                alerts_out.flush()

        def on_signal(signal: dict[str, Any]) -> None:
            signals.append(signal)
            if signals_out is not None:
                signals_out.write((to_json(signal_to_ocsf(signal)) if ocsf
                                   else alert_to_json(signal)) + "\n")

        records = iter_records(args.paths, on_reject=rejected(ingest_rejects),
                               on_duplicate=on_duplicate,
                               max_future_skew=float(config.time.max_future_skew_seconds))
        stats = run_embedded(records, config, store, on_alert=on_alert,
                             on_reject=rejected(engine_rejects), on_signal=on_signal)
    if args.quiet:
        return 0
    err = sys.stderr
    for note in notes:
        print(note, file=err)
    print(ingest_line(ingest_rejects, ingest_duplicates[0]), file=err)
    print(f"graphsentry detect: {stats.summary()} in {stats.elapsed:.1f}s", file=err)
    engine = engine_line(engine_rejects)
    if engine is not None:
        print(engine, file=err)
    if stats.signals:
        print("signals: " + ", ".join(f"{d} {n}" for d, n in sorted(stats.signals.items())),
              file=err)
    if stats.alerts:
        print("alerts: " + ", ".join(f"{d} {n}" for d, n in sorted(stats.alerts.items())),
              file=err)
        print("", file=err)
        for alert in latest_versions(alerts):
            print(format_alert(alert), file=err)
    print("", file=err)
    print(render_story(alerts, colour=err.isatty(), signals=signals), file=err, end="")
    return 0

