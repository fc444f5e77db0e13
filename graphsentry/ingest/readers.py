"""Every delivery shape of Graph activity logs -> raw record candidates with their source.

Detected per input (file, stdin or one Kafka message value), not configured:

- gzip, by its magic bytes (files, stdin and message values);
- JSON lines: Event Hub messages ``{"records": [...]}`` one per line, storage-account
  ``PT1H.json`` (one record per line, CRLF), single records, Log Analytics JSON lines;
- one JSON document spread over lines: a pretty-printed message, a JSON array of messages or of
  Log Analytics rows (used when the first line alone is not valid JSON);
- CSV with a header row (Log Analytics export; ``TimeGenerated [UTC]`` style headers accepted);
- query-API responses: Log Analytics ``{"tables": [...]}``, Defender / Graph advanced-hunting
  ``{"Schema", "Results"}`` (``graphsentry.ingest.shapes``, which also names the recognised
  documents that hold no activity records).

Sources read ``<path>:<line>`` plus ``#<index>`` inside a ``records`` array or JSON array.
Undecodable parts become :class:`Reject` items; their neighbours are still read.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, BinaryIO

from graphsentry.errors import GraphsentryError
from graphsentry.ingest import jsonparse, shapes
from graphsentry.ingest.limits import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_LINE_BYTES,
    MAX_RECORD_BYTES,
    MIB,
)
from graphsentry.ingest.reject import Reject, reject

RawItem = tuple[object, str] | Reject
Line = tuple[int, bytes] | Reject  # (line number, bytes) or a reject for an unreadable line
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
_CSV_HEADER_SUFFIX = re.compile(r"\s*\[[^\]]*\]\s*$")


def check_paths(paths: Sequence[str]) -> None:
    """Raise GraphsentryError (as :func:`iter_candidates` would) when a path cannot be opened,
    before a dataflow starts reading them: an error raised inside one surfaces as a Bytewax
    runtime error and a Rust backtrace instead of the message."""
    for path in paths:
        if path == "-":
            continue
        try:
            open(path, "rb").close()  # opened only to see that it can be
        except OSError as exc:
            raise GraphsentryError(f"cannot read {path}: {exc.strerror or exc}") from None


def iter_candidates(paths: Sequence[str]) -> Iterator[RawItem]:
    """Raw records (with their source) or rejects from files and ``-`` (stdin), in order.

    Raises GraphsentryError when a path cannot be opened or read.
    """
    for path in paths:
        if path == "-":
            yield from iter_stream(sys.stdin.buffer, "<stdin>")
            continue
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, generator-friendly
        except OSError as exc:
            raise GraphsentryError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with handle:
            yield from iter_stream(handle, path)


iter_raw = iter_candidates  # the name docs/architecture.md uses


def iter_stream(stream: BinaryIO, name: str) -> Iterator[RawItem]:
    """Candidates from one binary stream in any supported shape (gzip detected)."""
    buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    compressed = buffered.peek(2)[:2] == GZIP_MAGIC
    source: Any = gzip.GzipFile(fileobj=buffered) if compressed else buffered
    yield from _iter_shapes(_read_lines(source, name, compressed), name)


def parse_payload(data: bytes, source: str) -> Iterator[RawItem]:
    """Candidates from one message value (an Event Hub message, possibly gzip or JSON lines)."""
    if len(data) > MAX_LINE_BYTES:
        yield reject("line_too_large", f"{len(data)} bytes (limit {MAX_LINE_BYTES})", data, source)
        return
    if data.startswith(GZIP_MAGIC):
        try:
            inflater = zlib.decompressobj(wbits=31)
            data = inflater.decompress(data, MAX_LINE_BYTES + 1)
        except zlib.error as exc:
            yield reject("invalid_gzip", str(exc), data, source)
            return
        if len(data) > MAX_LINE_BYTES or inflater.unconsumed_tail:
            yield reject("line_too_large", f"inflates beyond {MAX_LINE_BYTES} bytes", data, source)
            return
    data = data.removeprefix(BOM)
    value = _decode(data, source)
    if isinstance(value, Reject) and value.reason.startswith("invalid_json: Extra data"):
        for number, line in enumerate(data.splitlines(), 1):
            if line.strip():
                yield from _explode(_decode(line, f"{source}:{number}"), f"{source}:{number}",
                                    len(line))
        return
    yield from _explode(value, source, len(data))


def _read_lines(stream: BinaryIO, name: str, compressed: bool) -> Iterator[Line]:
    number = 0
    try:
        while line := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES:
                yield reject("line_too_large", f"more than {MAX_LINE_BYTES} bytes", line,
                             f"{name}:{number}")
                while line and not line.endswith(b"\n"):
                    line = stream.readline(MIB)
                continue
            yield number, line
    except (OSError, EOFError, zlib.error) as exc:
        if not compressed:
            raise GraphsentryError(f"cannot read {name}: {exc}") from exc
        yield reject("invalid_gzip", str(exc) or type(exc).__name__, b"", f"{name}:{number + 1}")


def _iter_shapes(lines: Iterator[Line], name: str) -> Iterator[RawItem]:
    for item in lines:  # find the first non-blank line: it decides the shape
        if isinstance(item, Reject):
            yield item
            continue
        number, first = item
        if number == 1:
            first = first.removeprefix(BOM)
        if first.strip():
            break
    else:
        return
    start = first.lstrip()[:1]
    if start in (b"{", b"["):
        value = _decode(first, f"{name}:{number}")
        if isinstance(value, Reject):
            yield from _iter_document(number, first, lines, name)
        else:
            yield from _explode(value, f"{name}:{number}", len(first))
            yield from _iter_json_lines(lines, name)
    elif b"," in first:
        yield from _iter_csv(number, first, lines, name)
    else:
        yield from _iter_json_lines(chain([(number, first)], lines), name)


def _iter_json_lines(lines: Iterable[Line], name: str) -> Iterator[RawItem]:
    for item in lines:
        if isinstance(item, Reject):
            yield item
            continue
        number, line = item
        if not line.strip():
            continue
        source = f"{name}:{number}"
        yield from _explode(_decode(line, source), source, len(line))


def _iter_document(number: int, first: bytes, lines: Iterator[Line],
                   name: str) -> Iterator[RawItem]:
    """A JSON document over several lines; falls back to JSON lines if it does not parse."""
    buffered: list[Line] = [(number, first)]
    size = len(first)
    for item in lines:
        buffered.append(item)
        if not isinstance(item, Reject):
            size += len(item[1])
            if size > MAX_DOCUMENT_BYTES:
                yield reject("input_too_large",
                             f"JSON document beyond {MAX_DOCUMENT_BYTES} bytes; read as JSON lines",
                             first, f"{name}:{number}")
                yield from _iter_json_lines(chain(buffered, lines), name)
                return
    document = b"".join(item[1] for item in buffered if not isinstance(item, Reject))
    value = _decode(document, f"{name}:{number}")
    if isinstance(value, Reject):
        yield from _iter_json_lines(buffered, name)
    else:
        yield from (item for item in buffered if isinstance(item, Reject))
        yield from _explode(value, f"{name}:{number}", len(document))


def _iter_csv(number: int, header_line: bytes, lines: Iterator[Line],
              name: str) -> Iterator[RawItem]:
    pending: list[Reject] = []
    current = [header_line]  # the physical line the csv reader consumed last

    def text_lines() -> Iterator[str]:
        # surrogateescape keeps bad bytes visible: normalize rejects them as invalid_utf8
        yield header_line.decode("utf-8", "surrogateescape")
        for item in lines:
            if isinstance(item, Reject):
                pending.append(item)
            else:
                current[0] = item[1]
                yield item[1].decode("utf-8", "surrogateescape")

    csv.field_size_limit(MAX_LINE_BYTES)
    reader = csv.reader(text_lines(), strict=True)
    offset = number - 1  # reader.line_num counts from the header line
    header: list[str] | None = None
    while True:
        try:
            row: list[str] | csv.Error | None = next(reader)
        except StopIteration:
            row = None
        except csv.Error as exc:
            row = exc
        yield from pending
        pending.clear()
        where = f"{name}:{reader.line_num + offset}"
        if row is None:
            return
        if isinstance(row, csv.Error):
            yield reject("invalid_csv", str(row), current[0], where)
        elif header is None:
            header = [_CSV_HEADER_SUFFIX.sub("", column.strip()) for column in row]
        elif any(row):
            yield dict(zip(header, row, strict=False)), where


def _decode(data: bytes, source: str) -> object:
    """The JSON value of ``data``, or a Reject saying why it has none."""
    try:
        return jsonparse.loads(data)
    except UnicodeDecodeError as exc:
        return reject("invalid_utf8", f"byte {exc.start}: {exc.reason}", data, source)
    except RecursionError:
        return reject("too_deep", f"nesting deeper than {MAX_DEPTH}", data, source)
    except json.JSONDecodeError as exc:
        # json's "Invalid control character at" already ends in "at"
        return reject("invalid_json", f"{exc.msg.removesuffix(' at')} at line {exc.lineno} "
                      f"column {exc.colno}", data, source)
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        return reject("invalid_json", str(exc)[:200], data, source)


def _explode(value: object, source: str, size: int) -> Iterable[RawItem]:
    """Records of one decoded JSON value: an Event Hub message, an array or one record.

    A plain tuple for one item (the common storage-account line): no generator to run.
    """
    if isinstance(value, Reject):
        return (value,)
    if isinstance(value, dict):
        if "records" in value or "Records" in value:
            records = value.get("records", value.get("Records"))
            if not isinstance(records, list):
                return (reject("bad_type", "records is not an array", value, source),)
            return _elements(records, source, size)
        if len(value) <= shapes.MAX_CONTAINER_KEYS:  # (a record has more keys: no call)
            rows = shapes.rows_of(value, source)
            if rows is not None:
                return _sized(rows, size)
    elif isinstance(value, list):
        return _array_elements(value, source, size)
    if size > MAX_RECORD_BYTES:
        return (reject("record_too_large", f"{size} bytes (limit {MAX_RECORD_BYTES})", value,
                       source),)
    return ((value, source),)


def _array_elements(values: list[object], source: str, size: int) -> Iterator[RawItem]:
    for index, element in enumerate(values):
        if isinstance(element, dict) and ("records" in element or "Records" in element
                                          or shapes.is_container(element)):
            yield from _explode(element, f"{source}#{index}", _size_of(element, size))
        else:
            yield from _elements([element], f"{source}#{index}", size, single=True)


def _elements(records: list[object], source: str, size: int,
              single: bool = False) -> Iterator[RawItem]:
    for index, record in enumerate(records):
        where = source if single else f"{source}#{index}"
        record_size = _size_of(record, size)
        if record_size > MAX_RECORD_BYTES:
            yield reject("record_too_large", f"{record_size} bytes (limit {MAX_RECORD_BYTES})",
                         record, where)
        else:
            yield record, where


def _sized(rows: Iterable[RawItem], size: int) -> Iterator[RawItem]:
    """Rows of a container document, each one checked against MAX_RECORD_BYTES."""
    for row in rows:
        if isinstance(row, Reject):
            yield row
            continue
        record, where = row
        record_size = _size_of(record, size)
        if record_size > MAX_RECORD_BYTES:
            yield reject("record_too_large", f"{record_size} bytes (limit {MAX_RECORD_BYTES})",
                         record, where)
        else:
            yield row


def _size_of(value: object, container_size: int) -> int:
    """Serialized size of one element; only measured when its container is itself large."""
    if container_size <= MAX_RECORD_BYTES:
        return container_size
    try:
        return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (ValueError, TypeError, RecursionError):
        return MAX_RECORD_BYTES + 1


__all__ = ["RawItem", "iter_candidates", "iter_raw", "iter_stream", "parse_payload"]
