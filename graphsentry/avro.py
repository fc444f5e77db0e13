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
from functools import cache, lru_cache
from typing import Any

import fastavro

from graphsentry.ingest.timeparse import format_timestamp, parse_timestamp
from schemas import load_schema

ACTIVITY_SCHEMA = "graph_activity"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


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
        return _activity_encoder()(record)
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
# Straight-line Python generated once from the schema (as dataclasses generates __init__):
# one function, no per-field calls for strings, unions or enums.

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def _plain_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_VARINT = [_plain_varint(n) for n in range(1 << 14)]  # every 1-2 byte varint
_LOW14 = [bytes(((n & 0x7F) | 0x80, (n >> 7) | 0x80)) for n in range(1 << 14)]


@lru_cache(maxsize=4096)  # high bits of nearby timestamps repeat
def _varint_high(value: int) -> bytes:
    return _varint(value)


def _varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int, 14 bits per table lookup."""
    if value < 16384:
        return _VARINT[value]
    return _LOW14[value & 0x3FFF] + _varint_high(value >> 14)


def _long(number: int) -> bytes:
    """Zig-zag varint of an Avro long (or int: the encoding is the same)."""
    if number.__class__ is not int and (isinstance(number, bool) or not isinstance(number, int)):
        raise TypeError(f"{number!r} is not an integer")
    if number >= 0:
        if number > _LONG_MAX:
            raise ValueError(f"{number} does not fit an Avro long")
        return _varint(number << 1)
    if number < _LONG_MIN:
        raise ValueError(f"{number} does not fit an Avro long")
    return _varint((-number << 1) - 1)


def _int(number: int) -> bytes:
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValueError(f"{number} does not fit an Avro int")
    return _long(number)


def _string(value: str) -> bytes:
    data = value.encode("utf-8")
    return _varint(len(data) << 1) + data


def _boolean(value: bool) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise TypeError(f"{value!r} is not a boolean")


def _micros(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // _MICROSECOND
    return int(value)


def _timestamp(value: datetime | int) -> bytes:
    return _long(_micros(value))


def _string_array(values: list[str]) -> bytes:
    if not isinstance(values, list | tuple):
        raise TypeError(f"{values!r} is not an array")
    if not values:
        return b"\x00"
    return _long(len(values)) + b"".join([_string(v) for v in values]) + b"\x00"


# Avro type -> helper producing the value's bytes (a union adds its branch index in front).
_HELPERS = {"string": "_string", "long": "_long", "int": "_int", "boolean": "_boolean"}


def _value_expression(avro_type: Any, namespace: dict[str, Any], position: int) -> str:
    if isinstance(avro_type, str) and avro_type in _HELPERS:
        return f"{_HELPERS[avro_type]}(v)"
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-micros" and avro_type["type"] == "long":
            return "_timestamp(v)"
        if avro_type["type"] == "enum":
            table = f"_ENUM{position}"
            namespace[table] = {s: _long(i) for i, s in enumerate(avro_type["symbols"])}
            return f"{table}[v]"
        if avro_type["type"] == "array" and avro_type["items"] == "string":
            return "_string_array(v)"
    raise NotImplementedError(f"no compiled encoder for Avro type {avro_type!r}")


def _compile_encoder(schema: dict[str, Any]) -> Callable[[Mapping[str, Any]], bytes]:
    namespace: dict[str, Any] = {
        "_string": _string, "_long": _long, "_int": _int, "_boolean": _boolean,
        "_timestamp": _timestamp, "_string_array": _string_array, "_varint": _varint,
        # string lengths below 8192 as ready-made bytes, without and with the union index
        "_LENGTH": [_varint(n << 1) for n in range(8192)],
        "_SOME_LENGTH": [b"\x02" + _varint(n << 1) for n in range(8192)],
    }
    lines = ["def encode(record):", "    out = []", "    add = out.append"]
    for position, field in enumerate(schema["fields"]):
        avro_type = field["type"]
        lines.append(f"    v = record[{field['name']!r}]")
        if avro_type == ["null", "string"]:  # the most common field: inline, no call
            lines += ["    if v is None:", "        add(b'\\x00')", "    else:",
                      "        data = v.encode()", "        n = len(data)",
                      "        add(_SOME_LENGTH[n] if n < 8192 else b'\\x02' + _varint(n << 1))",
                      "        add(data)"]
        elif avro_type == "string":
            lines += ["    data = v.encode()", "    n = len(data)",
                      "    add(_LENGTH[n] if n < 8192 else _varint(n << 1))", "    add(data)"]
        elif isinstance(avro_type, list):
            if len(avro_type) != 2 or avro_type[0] != "null":
                raise NotImplementedError(f"no compiled encoder for union {avro_type!r}")
            value = _value_expression(avro_type[1], namespace, position)
            lines.append(f"    add(b'\\x00' if v is None else b'\\x02' + {value})")
        else:
            lines.append(f"    add({_value_expression(avro_type, namespace, position)})")
    lines.append("    return b''.join(out)")
    exec("\n".join(lines), namespace)  # the source comes from our own schema file only
    encoder: Callable[[Mapping[str, Any]], bytes] = namespace["encode"]
    return encoder


@cache
def _activity_encoder() -> Callable[[Mapping[str, Any]], bytes]:
    return _compile_encoder(load_schema(ACTIVITY_SCHEMA))


_ACTIVITY_TIME_FIELDS = tuple(
    field["name"] for field in load_schema(ACTIVITY_SCHEMA)["fields"]
    if "timestamp-micros" in str(field["type"])
)
