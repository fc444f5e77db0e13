"""Avro encoding of records and alerts: unframed (schemaless) binary, schemas from ``schemas/``.

Wire format: see docs/wire-format.md. The generic ``encode``/``decode`` use fastavro with each
schema parsed once; ``decode_activity`` uses a decoder compiled from ``graph_activity.avsc``
(``graphsentry.avro_decoder``; consume + decode at 1.4x fastavro's rate in bench_detect) and
fastavro for the values it leaves (earlier revisions, malformed bytes). Values
written with an earlier revision of a schema (before fields carrying ``"revision"`` were added)
decode too: the newest revision is tried first, and a value that ends early is read with the writer
schema of the revision that wrote it, the added fields taking their defaults. ``encode_activity``
is on the ingest hot path, where fastavro's generic writer costs ~16 µs per record; it uses an
encoder compiled once from ``graph_activity.avsc`` (``graphsentry.avro_compiled``, ~3 µs per
record), and the tests check it byte for byte against fastavro.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import fastavro

from graphsentry.avro_compiled import compile_encoder, micros
from graphsentry.avro_decoder import NotDecoded, compile_decoder
from graphsentry.ingest.timeparse import format_timestamp, parse_timestamp
from schemas import load_schema

ACTIVITY_SCHEMA = "graph_activity"


@cache
def parsed_schema(name: str) -> Any:
    """The fastavro-parsed schema ``schemas/<name>.avsc`` (parsed once per process)."""
    return fastavro.parse_schema(load_schema(name))


def encode(schema_name: str, obj: Mapping[str, Any]) -> bytes:
    """Unframed Avro of ``obj`` with ``schemas/<schema_name>.avsc`` (fastavro)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed_schema(schema_name), obj)
    return buffer.getvalue()


def decode(schema_name: str, data: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode`; timestamps come back as aware UTC datetimes.

    Values of earlier schema revisions come back with the added fields' defaults. Raises what
    fastavro raises for data that is no value of any revision (EOFError, ValueError, ...).
    """
    reader = parsed_schema(schema_name)
    try:
        value = fastavro.schemaless_reader(io.BytesIO(data), reader, None)
    except EOFError:
        value = _decode_earlier_revision(schema_name, data, reader)
    if not isinstance(value, dict):
        raise ValueError(f"{schema_name} did not decode to a record")
    return value


@cache
def revision_schemas(name: str) -> tuple[tuple[int, Any], ...]:
    """``(revision, parsed writer schema)`` of every earlier revision of ``schemas/<name>``,
    newest first: the schema without the fields whose ``"revision"`` is later."""
    schema = load_schema(name)
    revisions = sorted({int(f.get("revision", 1)) for f in schema["fields"]}, reverse=True)
    return tuple(
        (revision, fastavro.parse_schema({**schema, "fields": [
            f for f in schema["fields"] if int(f.get("revision", 1)) <= revision]}))
        for revision in revisions[1:])


def _decode_earlier_revision(schema_name: str, data: bytes, reader: Any) -> Any:
    """A value that ended early: the earlier revision whose fields it holds exactly."""
    for _revision, writer in revision_schemas(schema_name):
        buffer = io.BytesIO(data)
        try:
            value = fastavro.schemaless_reader(buffer, writer, reader)
        except EOFError:
            continue
        if buffer.tell() == len(data):
            return value
    raise EOFError(f"not a {schema_name} value of any schema revision ({len(data)} bytes)")


def encode_activity(record: Mapping[str, Any]) -> bytes:
    """Unframed Avro of one normalized record; ValueError if it does not fit the schema."""
    try:
        return _activity_encoder()(record)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"record does not match {ACTIVITY_SCHEMA}: {exc!r}") from exc


_NOT_TAKEN = (NotDecoded, IndexError, KeyError, OverflowError)
"""What the compiled decoder raises for a value it leaves to fastavro."""


def decode_activity(data: bytes) -> dict[str, Any]:
    """A graph.activity.v1 value → the normalized record (every field, timestamps as aware UTC
    datetimes): the compiled decoder, else fastavro (:func:`decode`, with its errors)."""
    return _activity_decoder(None, False)(data)


def activity_fields_decoder(fields: tuple[str, ...]) -> Callable[[bytes], dict[str, Any]]:
    """A decoder of graph.activity.v1 values for a reader of ``fields`` only (the detection
    flow): a dict of those fields with timestamps as epoch microseconds (int) and arrays as
    shared tuples (``compile_decoder``'s compact form). A value the
    compiled decoder leaves to fastavro comes back as :func:`decode_activity` returns it
    (every field, datetimes); errors are fastavro's."""
    return _activity_decoder(fields, True)


@cache
def _activity_decoder(fields: tuple[str, ...] | None,
                      compact: bool) -> Callable[[bytes], dict[str, Any]]:
    """The compiled decoder, falling back to fastavro for the values it leaves."""
    compiled = compile_decoder(load_schema(ACTIVITY_SCHEMA), fields, compact)

    def compiled_or_fastavro(data: bytes) -> dict[str, Any]:
        try:
            return compiled(data)
        except _NOT_TAKEN:
            return decode(ACTIVITY_SCHEMA, data)

    return compiled_or_fastavro


def decode_activities(values: Iterable[bytes]) -> list[dict[str, Any]]:
    return [decode_activity(value) for value in values]


def message_key(record: Mapping[str, Any]) -> bytes:
    """Kafka key of a graph.activity.v1 message: ``tenant_id/principal_id`` in UTF-8 — one
    principal's records keep their order in one partition, and a hot first-party app's users
    spread over all partitions."""
    return f"{record['tenant_id']}/{record['principal_id']}".encode()


def message_timestamp_ms(record: Mapping[str, Any]) -> int:
    """Kafka message timestamp: time_generated in epoch milliseconds."""
    return micros(record["time_generated"]) // 1000


def record_to_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready copy: datetimes become ISO-8601 UTC strings (``…T…​.ffffffZ``)."""
    return {k: format_timestamp(v) if isinstance(v, datetime) else v for k, v in record.items()}


def record_from_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`record_to_json` for graph_activity records (strings -> datetimes)."""
    record = dict(obj)
    for name in _ACTIVITY_TIME_FIELDS:
        value = record.get(name)
        if isinstance(value, str):
            record[name] = parse_timestamp(value)
    return record


@cache
def _activity_encoder() -> Callable[[Mapping[str, Any]], bytes]:
    return compile_encoder(load_schema(ACTIVITY_SCHEMA))


_ACTIVITY_TIME_FIELDS = tuple(
    field["name"] for field in load_schema(ACTIVITY_SCHEMA)["fields"]
    if "timestamp-micros" in str(field["type"])
)
