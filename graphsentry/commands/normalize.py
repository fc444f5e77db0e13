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


def run(args: argparse.Namespace) -> int:
    from graphsentry.avro import record_to_json
    from graphsentry.ingest import iter_records
    from graphsentry.ingest.dedup import DEFAULT_CAPACITY
    from graphsentry.ingest.reject import Reject

    paths: list[str] = args.paths or ["-"]
    for path in paths:
        if path != "-" and not os.path.isfile(path):
            problem = "is a directory" if os.path.isdir(path) else "no such file"
            raise GraphsentryError(f"cannot read {path}: {problem}")
    capacity = args.dedup_capacity or DEFAULT_CAPACITY
    if capacity < 1:
        raise GraphsentryError("--dedup-capacity must be at least 1")

    reasons: Counter[str] = Counter()
    duplicates = 0
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
                                   on_duplicate=on_duplicate, dedup_capacity=capacity):
            out.write(json.dumps(record_to_json(record), ensure_ascii=False).encode("utf-8"))
            out.write(b"\n")
            normalized += 1
        out.flush()
    finally:
        if reject_file is not None:
            reject_file.close()
    print(_summary(normalized, reasons, duplicates, args.rejects), file=sys.stderr)
    return 0


def _summary(normalized: int, reasons: Counter[str], duplicates: int, path: str | None) -> str:
    rejected = sum(reasons.values())
    detail = ", ".join(f"{code} {count}" for code, count in sorted(reasons.items()))
    where = f" to {path}" if path and rejected else ""
    return (f"normalized {normalized} records, rejected {rejected}{where}"
            f" (reasons: {detail or 'none'}), duplicates {duplicates}")
