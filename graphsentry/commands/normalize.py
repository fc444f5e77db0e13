"""``graphsentry normalize``: raw Graph activity logs in any delivery shape -> JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from typing import IO, Any

from graphsentry.errors import GraphsentryError

HELP = "Normalize Graph activity logs (any delivery shape, gzip, stdin) to JSON lines."
OFF = "off"


def _skew(text: str) -> float | str:
    if text.strip().lower() == OFF:
        return OFF
    from graphsentry.ingest.eventtime import MAX_SKEW_SECONDS, skew

    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds or {OFF!r}: {text!r}") from None
    try:
        skew(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 0-{MAX_SKEW_SECONDS} seconds, got {text!r}") from None
    return seconds


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="input files (Event Hub, storage PT1H.json, Log Analytics JSON/CSV, gzip); "
                        "'-' or nothing reads stdin")
    p.add_argument("--rejects", metavar="FILE",
                   help="write rejects as JSON lines {reason, raw, source} to FILE "
                        "(default: only count them)")
    p.add_argument("--no-dedup", action="store_true",
                   help="keep records delivered more than once (same requestId + timeGenerated)")
    p.add_argument("--dedup-capacity", type=int, default=None, metavar="N",
                   help="how many recent request ids de-duplication remembers (default 1,000,000)")
    p.add_argument("--max-future-skew", type=_skew, default=None, metavar="SECONDS",
                   help="reject records whose event time lies more than SECONDS ahead of the "
                        "wall clock (future_timestamp; default 900 = 15 min, below Kafka's 1 h "
                        f"limit on message timestamps; '{OFF}' turns the check off)")


def run(args: argparse.Namespace) -> int:
    from graphsentry.avro import record_to_json
    from graphsentry.ingest import iter_records
    from graphsentry.ingest.dedup import DEFAULT_CAPACITY
    from graphsentry.ingest.limits import MAX_FUTURE_SKEW_SECONDS
    from graphsentry.ingest.reject import Reject

    paths: list[str] = args.paths or ["-"]
    for path in paths:
        if path != "-" and not os.path.isfile(path):
            problem = "is a directory" if os.path.isdir(path) else "no such file"
            raise GraphsentryError(f"cannot read {path}: {problem}")
    capacity = args.dedup_capacity or DEFAULT_CAPACITY
    skew = (MAX_FUTURE_SKEW_SECONDS if args.max_future_skew is None
            else None if args.max_future_skew == OFF else float(args.max_future_skew))
    if capacity < 1:
        raise GraphsentryError("--dedup-capacity must be at least 1")

    reasons: Counter[str] = Counter()
    duplicates = truncated = 0
    reject_file: IO[str] | None = None
    if args.rejects:
        try:
            reject_file = open(args.rejects, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise GraphsentryError(f"cannot write {args.rejects}: {exc.strerror}") from exc

    def on_reject(item: Reject) -> None:
        reasons[item.code] += 1
        if reject_file is not None:
            reject_file.write(json.dumps(item.to_json()) + "\n")

    def on_duplicate(_record: dict[str, Any]) -> None:
        nonlocal duplicates
        duplicates += 1

    out = sys.stdout.buffer
    normalized = 0
    try:
        for record in iter_records(paths, on_reject, dedup=not args.no_dedup,
                                   on_duplicate=on_duplicate, dedup_capacity=capacity,
                                   max_future_skew=skew):
            out.write(json.dumps(record_to_json(record), ensure_ascii=False).encode("utf-8"))
            out.write(b"\n")
            normalized += 1
            if record["truncated_fields"]:
                truncated += 1
        out.flush()
    finally:
        if reject_file is not None:
            reject_file.close()
    print(_summary(normalized, reasons, duplicates, args.rejects, truncated), file=sys.stderr)
    return 0


def _summary(normalized: int, reasons: Counter[str], duplicates: int, path: str | None,
             truncated: int = 0) -> str:
    """One line, also for inputs that hold no records: ``normalized 0 records, rejected 0 ...``;
    ``truncated T`` (records with a field cut to its limit) is added when T > 0."""
    rejected = sum(reasons.values())
    detail = ", ".join(f"{code} {count}" for code, count in sorted(reasons.items()))
    where = f" to {path}" if path and rejected else ""
    return (f"normalized {normalized} records, rejected {rejected}{where}"
            f" (reasons: {detail or 'none'}), duplicates {duplicates}"
            f"{f', truncated {truncated}' if truncated else ''}")
