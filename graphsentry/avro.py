"""Avro encoding of records and alerts: unframed (schemaless) binary, schemas from ``schemas/``.

Wire format: see docs/wire-format.md. Decoding and the generic ``encode``/``decode`` use fastavro
with each schema parsed once. ``encode_activity`` is on the ingest hot path, where fastavro's
generic writer costs ~16 µs per record (most of the normalization budget); it uses an encoder
compiled once from ``graph_activity.avsc`` for the few Avro types that schema uses, and the
tests check it byte for byte against fastavro.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import fastavro

from graphsentry.ingest.timeparse import format_timestamp, parse_timestamp
from schemas import load_schema

ACTIVITY_SCHEMA = "graph_activity"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Encoder = Callable[[Any], bytes]


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
    """Inverse of :func:`encode`; timestamps come back as aware UTC datetimes."""
    value = fastavro.schemaless_reader(io.BytesIO(data), parsed_schema(schema_name), None)
    if not isinstance(value, dict):
        raise ValueError(f"{schema_name} did not decode to a record")
    return value


def encode_activity(record: Mapping[str, Any]) -> bytes:
    """Unframed Avro of one normalized record; ValueError if it does not fit the schema."""
    try:
        return b"".join([encode_field(record[name]) for name, encode_field in _activity_fields()])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"record does not match {ACTIVITY_SCHEMA}: {exc!r}") from exc


def decode_activity(data: bytes) -> dict[str, Any]:
    return decode(ACTIVITY_SCHEMA, data)


def decode_activities(values: Iterable[bytes]) -> list[dict[str, Any]]:
    schema = parsed_schema(ACTIVITY_SCHEMA)
    return [fastavro.schemaless_reader(io.BytesIO(v), schema, None) for v in values]  # type: ignore[misc]


def message_key(record: Mapping[str, Any]) -> bytes:
    """Kafka key of a graph.activity.v1 message: ``tenant_id/app_id`` in UTF-8."""
    return f"{record['tenant_id']}/{record['app_id']}".encode()


def message_timestamp_ms(record: Mapping[str, Any]) -> int:
    """Kafka message timestamp: time_generated in epoch milliseconds."""
    return _micros(record["time_generated"]) // 1000


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


# --- the compiled activity encoder -------------------------------------------------------

def _zigzag(number: int) -> bytes:
    if not -(2**63) <= number < 2**63:
        raise ValueError(f"{number} does not fit an Avro long")
    value = (number << 1) ^ (number >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [_zigzag(n) for n in range(2048)]  # most lengths, sizes and indexes


def _long(number: int) -> bytes:
    if number.__class__ is not int and (isinstance(number, bool) or not isinstance(number, int)):
        raise TypeError(f"{number!r} is not an integer")
    return _SMALL[number] if 0 <= number < 2048 else _zigzag(number)


def _int(number: int) -> bytes:
    if not -(2**31) <= number < 2**31:
        raise ValueError(f"{number} does not fit an Avro int")
    return _long(number)


def _string(value: str) -> bytes:
    data = value.encode("utf-8")
    size = len(data)
    return (_SMALL[size] if size < 2048 else _zigzag(size)) + data


def _boolean(value: bool) -> bytes:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not a boolean")
    return b"\x01" if value else b"\x00"


def _micros(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // _MICROSECOND
    return int(value)


def _timestamp(value: datetime | int) -> bytes:
    return _zigzag(_micros(value))


def _string_array(values: list[str]) -> bytes:
    if not isinstance(values, list | tuple):
        raise TypeError(f"{values!r} is not an array")
    if not values:
        return b"\x00"
    return _long(len(values)) + b"".join([_string(v) for v in values]) + b"\x00"


def _enum(symbols: list[str]) -> Encoder:
    index = {symbol: _SMALL[i] for i, symbol in enumerate(symbols)}

    def encode_enum(value: str) -> bytes:
        return index[value]

    return encode_enum


def _nullable(encode_value: Encoder) -> Encoder:
    def encode_union(value: Any) -> bytes:
        return b"\x00" if value is None else b"\x02" + encode_value(value)

    return encode_union


def _nullable_string(value: str | None) -> bytes:
    # The most common field type: one call instead of two on the hot path.
    if value is None:
        return b"\x00"
    data = value.encode("utf-8")
    size = len(data)
    return b"\x02" + (_SMALL[size] if size < 2048 else _zigzag(size)) + data


_PRIMITIVES: dict[str, Encoder] = {
    "string": _string, "long": _long, "int": _int, "boolean": _boolean,
}


def _encoder_for(avro_type: Any) -> Encoder:
    if isinstance(avro_type, str) and avro_type in _PRIMITIVES:
        return _PRIMITIVES[avro_type]
    if isinstance(avro_type, list) and len(avro_type) == 2 and avro_type[0] == "null":
        if avro_type[1] == "string":
            return _nullable_string
        return _nullable(_encoder_for(avro_type[1]))
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-micros" and avro_type["type"] == "long":
            return _timestamp
        if avro_type["type"] == "enum":
            return _enum(avro_type["symbols"])
        if avro_type["type"] == "array" and avro_type["items"] == "string":
            return _string_array
    raise NotImplementedError(f"no compiled encoder for Avro type {avro_type!r}")


@cache
def _activity_fields() -> tuple[tuple[str, Encoder], ...]:
    return tuple((field["name"], _encoder_for(field["type"]))
                 for field in load_schema(ACTIVITY_SCHEMA)["fields"])


_ACTIVITY_TIME_FIELDS = tuple(
    field["name"] for field in load_schema(ACTIVITY_SCHEMA)["fields"]
    if "timestamp-micros" in str(field["type"])
)
