"""Loader for the ip2asn table (``range_start range_end AS_number country_code AS_description``).

Tab-separated, IPv4 and IPv6 in one file or two, optionally gzip-compressed. Ranges announced
by no one (AS 0, "Not routed") are skipped; malformed lines are counted and reported with their
line numbers, never fatal.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from graphsentry.enrichment.store import AsnRange, EnrichmentStore, LoadReport, ip_key
from graphsentry.errors import GraphsentryError


@contextmanager
def open_text(path: str) -> Iterator[IO[str]]:
    """Open ``path`` (``-`` for stdin, ``.gz`` decompressed) as UTF-8 text."""
    if path == "-":
        yield sys.stdin
        return
    file = Path(path)
    try:
        raw = file.open("rb")
    except OSError as exc:
        raise GraphsentryError(f"cannot read {file}: {exc.strerror}") from exc
    with raw:
        head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        stream: IO[bytes] = (gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b"  # type: ignore[assignment]
                             else raw)
        yield io.TextIOWrapper(stream, encoding="utf-8", errors="replace")


def parse_ip2asn(lines: Iterable[str], report: LoadReport) -> Iterator[AsnRange]:
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            report.reject(number, f"expected 5 tab-separated columns, got {len(parts)}")
            continue
        start, end = ip_key(parts[0]), ip_key(parts[1])
        if start is None or end is None:
            report.reject(number, f"not an IP address range: {parts[0]!r} - {parts[1]!r}")
            continue
        if start[0] != end[0] or start[1] > end[1]:
            report.reject(number, f"inverted or mixed-family range: {parts[0]} - {parts[1]}")
            continue
        try:
            asn = int(parts[2].removeprefix("AS"))
        except ValueError:
            report.reject(number, f"AS number is not an integer: {parts[2]!r}")
            continue
        if asn <= 0:
            report.skipped += 1
            continue
        name = parts[4].strip() if len(parts) > 4 else ""
        report.loaded += 1
        yield AsnRange(start[1], end[1], asn, name, start[0])


def load_asn(paths: Iterable[str], store: EnrichmentStore) -> LoadReport:
    """Replace the store's ASN table with the ranges of ``paths`` (all files, one table)."""
    report = LoadReport()
    files = list(paths)

    def ranges() -> Iterator[AsnRange]:
        for path in files:
            with open_text(path) as text:
                yield from parse_ip2asn(text, report)

    store.put_asn_ranges(ranges())
    return report
