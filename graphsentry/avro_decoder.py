"""Avro binary decoder compiled once from a record schema (the detection flow's hot path).

The counterpart of ``graphsentry.avro_compiled``'s encoders: straight-line Python generated from
the schema for the types ``graph_activity.avsc`` uses (string, int, long, boolean, enum,
timestamp-micros, arrays of strings, maps of longs and ``["null", T]`` unions), for the
detection flow, where fastavro's generic reader was about a third of the CPU per event.
``bench/bench_detect.py`` prints the consume + decode rates of both (medians of 50,787 against
36,440 records/s, ``bench/results/detect.txt``).

It reads the whole value as latin-1 text once and slices every string from it, which is right
when the strings are ASCII: it checks that at the end, and a value with other text has its
strings re-read as UTF-8 (the latin-1 slice encoded back to its bytes). It takes the value only
when it reads exactly to its last byte with every union index, boolean and enum code valid,
every varint within 64 bits (ints within 32), every timestamp within years 1-9999, every string
UTF-8 and every map key ASCII; otherwise it raises :class:`NotDecoded` (or IndexError,
KeyError) and the caller decodes with fastavro, which handles what this one does not: values of
earlier schema revisions, non-ASCII map keys, and malformed input with fastavro's own
errors. The result equals fastavro's (property tests check it): the
same dict, timestamps as aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

Decoder = Callable[[bytes], dict[str, Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOT_A_LENGTH = 1 << 62
"""What an odd (negative) one-byte length reads as: far past the end, so the value is refused."""


class NotDecoded(Exception):
    """The compiled decoder does not take this value (see the module docstring)."""


_SMALL = [(b >> 1) ^ -(b & 1) for b in range(128)]
"""One-byte zig-zag varints: byte → long."""
_LENGTH = [_NOT_A_LENGTH if b & 1 else b >> 1 for b in range(128)]
"""One-byte lengths: byte → non-negative long (a negative one reads as past the end)."""
_BOOLEAN = {0: False, 1: True}
_HIGH_BITS = 0x8080808080808080
_EIGHT_BYTES = 0x0080808080808080
"""The continuation bits of an eight-byte varint (read little-endian)."""


def _long(data: bytes, p: int) -> tuple[int, int]:
    """(zig-zag long at ``p``, position after it); IndexError past the end, NotDecoded for a
    varint of more than 64 bits."""
    byte = data[p]
    if byte < 0x80:
        return _SMALL[byte], p + 1
    second = data[p + 1]
    if second < 0x80:
        value = (byte & 0x7F) | second << 7
        return (value >> 1) ^ -(value & 1), p + 2
    value, shift = 0, 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:  # a tenth byte above 1 (fastavro keeps the low 64 bits)
                raise NotDecoded("varint beyond 64 bits")
            return (value >> 1) ^ -(value & 1), p
        shift += 7
        if shift > 63:
            raise NotDecoded("varint longer than 10 bytes")


def _int(data: bytes, p: int) -> tuple[int, int]:
    value, p = _long(data, p)
    if not -(2**31) <= value < 2**31:
        raise NotDecoded("int out of range")
    return value, p


def _length(data: bytes, p: int) -> tuple[int, int]:
    value, p = _long(data, p)
    if value < 0:
        raise NotDecoded("negative length")
    return value, p


_FIRST_MICROS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LAST_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1)


def _micros(data: bytes, p: int) -> tuple[int, int]:
    """A timestamp as epoch microseconds, refused beyond what a datetime holds (as fastavro
    refuses it)."""
    word = int.from_bytes(data[p:p + 8], "little")
    if word & _HIGH_BITS == _EIGHT_BYTES:  # 1978-12-02 to 3111-09-16 (0828 to 1961 before the
        word &= 0x7F7F7F7F7F7F7F7F  # epoch): eight 7-bit groups; squeezed together in pairs
        word = (word & 0x007F007F007F007F) | (word & 0x7F007F007F007F00) >> 1
        word = (word & 0x00003FFF00003FFF) | (word & 0x3FFF00003FFF0000) >> 2
        word = (word & 0x000000000FFFFFFF) | (word & 0x0FFFFFFF00000000) >> 4
        return (word >> 1) ^ -(word & 1), p + 8
    value, p = _long(data, p)
    if not _FIRST_MICROS <= value <= _LAST_MICROS:
        raise NotDecoded("timestamp out of range")
    return value, p


def _timestamp(data: bytes, p: int) -> tuple[datetime, int]:
    """A timestamp as an aware UTC datetime (:func:`_micros`)."""
    value, p = _micros(data, p)
    return _EPOCH + timedelta(0, 0, value), p


def _block_count(data: bytes, p: int) -> tuple[int, int]:
    """Item count of the next array/map block (a negative count is followed by its size)."""
    count = data[p]
    if count < 0x80 and not count & 1:  # (nearly always: a few items)
        return count >> 1, p + 1
    count, p = _long(data, p)
    if count < 0:
        count = -count
        _size, p = _long(data, p)
    return count, p


def _string(data: bytes, text: str, p: int) -> tuple[str, int]:
    n, p = _length(data, p)
    q = p + n
    if q > len(data):
        raise NotDecoded("string past the end")
    return text[p:q], q


def _string_array(data: bytes, text: str, p: int) -> tuple[list[str], int]:
    """The items (ASCII is checked with the record's other strings)."""
    items: list[str] = []
    count, p = _block_count(data, p)
    while count:
        for _ in range(count):
            byte = data[p]
            if byte < 0x80:
                q = p + 1 + _LENGTH[byte]
                items.append(text[p + 1:q])
                p = q
            else:
                item, p = _string(data, text, p)
                items.append(item)
        count, p = _block_count(data, p)
    return items, p


def _utf8(text: str) -> str:
    """A string sliced from the latin-1 reading, as UTF-8 (NotDecoded if it is no UTF-8)."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotDecoded("not UTF-8") from exc


def _utf8_items(items: list[str] | tuple[str, ...]) -> list[str] | tuple[str, ...]:
    """:func:`_utf8` of every item, in a new list or tuple."""
    return type(items)(map(_utf8, items))


SHARED_ARRAYS = 4096
"""How many distinct arrays a compact decoder keeps (all are dropped when it is full)."""


def _string_array_end(data: bytes, p: int) -> int:
    """Where the array of strings at ``p`` ends (its strings are not read)."""
    count, p = _block_count(data, p)
    while count:
        for _ in range(count):
            byte = data[p]
            if byte < 0x80:
                p += 1 + _LENGTH[byte]
            else:
                n, p = _length(data, p)
                p += n
        count, p = _block_count(data, p)
    return p


def _shared_string_array(data: bytes, text: str, p: int,
                         shared: dict[bytes, tuple[str, ...]]) -> tuple[tuple[str, ...], int]:
    """The array at ``p`` as a tuple, the one already built for the same bytes if any."""
    end = _string_array_end(data, p)
    if end > len(data):
        raise NotDecoded("array past the end")
    key = data[p:end]
    items = shared.get(key)
    if items is None:
        items = tuple(_string_array(data, text, p)[0])
        if len(shared) >= SHARED_ARRAYS:
            shared.clear()
        shared[key] = items
    return items, end


def _long_map(data: bytes, text: str, p: int) -> tuple[dict[str, int], int]:
    values: dict[str, int] = {}
    count, p = _block_count(data, p)
    while count:
        for _ in range(count):
            key, p = _string(data, text, p)
            if not key.isascii():
                raise NotDecoded("non-ASCII string")
            values[key], p = _long(data, p)
        count, p = _block_count(data, p)
    return values, p


# --- code generation --------------------------------------------------------------------------

def _read(avro_type: Any, var: str, namespace: dict[str, Any], position: int,
          strings: list[tuple[str, str]], compact: bool) -> list[str]:
    """Lines that read one non-null value of ``avro_type`` at ``p`` into ``var``."""
    if avro_type == "string":
        strings.append((var, f"{var} = _utf8({var})"))
        return ["b = data[p]",
                "if b < 128:", "    q = p + 1 + _LENGTH[b]", f"    {var} = text[p + 1:q]",
                "else:", f"    {var}, q = _string(data, text, p)",
                "p = q"]
    if avro_type == "long":
        return ["b = data[p]",
                "if b < 128:", f"    {var} = _SMALL[b]", "    p += 1",
                "else:", f"    {var}, p = _long(data, p)"]
    if avro_type == "int":
        return ["b = data[p]",
                "if b < 128:", f"    {var} = _SMALL[b]", "    p += 1",
                "else:", f"    {var}, p = _int(data, p)"]
    if avro_type == "boolean":
        return [f"{var} = _BOOLEAN[data[p]]", "p += 1"]
    if isinstance(avro_type, dict):
        kind = avro_type["type"]
        if kind == "long" and avro_type.get("logicalType") == "timestamp-micros":
            return [f"{var}, p = {'_micros' if compact else '_timestamp'}(data, p)"]
        if kind == "enum":
            table = f"_ENUM{position}"
            namespace[table] = {i << 1: symbol for i, symbol in enumerate(avro_type["symbols"])}
            return [f"{var} = {table}[data[p]]", "p += 1"]  # (KeyError beyond 63 symbols)
        if kind == "array" and avro_type["items"] == "string":
            strings.append((f"*{var}", f"{var} = _utf8_items({var})"))
            if compact:
                return [f"{var}, p = _shared_string_array(data, text, p, _SHARED)"]
            return [f"{var}, p = _string_array(data, text, p)"]
        if kind == "map" and avro_type["values"] == "long":
            return [f"{var}, p = _long_map(data, text, p)"]
    raise NotImplementedError(f"no compiled decoder for Avro type {avro_type!r}")


def _field_lines(avro_type: Any, var: str, namespace: dict[str, Any], position: int,
                 strings: list[tuple[str, str]], compact: bool) -> list[str]:
    if not isinstance(avro_type, list):
        return _read(avro_type, var, namespace, position, strings, compact)
    if len(avro_type) != 2 or avro_type[0] != "null":
        raise NotImplementedError(f"no compiled decoder for union {avro_type!r}")
    inner = _read(avro_type[1], var, namespace, position, [], compact)
    if avro_type[1] == "string":
        strings.append((f"({var} or '')", f"{var} = {var} and _utf8({var})"))
    elif isinstance(avro_type[1], dict) and avro_type[1]["type"] == "array":
        strings.append((f"*({var} or ())", f"{var} = {var} and _utf8_items({var})"))
    return ["b = data[p]", "if b == 0:", f"    {var} = None", "    p += 1",
            "elif b == 2:", "    p += 1", *[f"    {line}" for line in inner],
            "else:", "    raise NotDecoded('union index')"]


def compile_decoder(schema: Mapping[str, Any], fields: Collection[str] | None = None,
                    compact: bool = False) -> Decoder:
    """The decoder of one record schema: bytes → dict (see the module docstring) of every
    field, or of ``fields`` only (the others are still read and checked). Timestamps come as
    aware UTC datetimes and arrays as lists, as fastavro gives them; with ``compact`` (the
    detection flow's form) timestamps come as epoch microseconds (int) and arrays of strings as
    tuples, one tuple shared by every value whose array has the same bytes (up to
    :data:`SHARED_ARRAYS` of them per decoder: real tenants send a few permission sets, and
    this saves decoding them and hashing their strings again downstream). Raises
    :class:`NotDecoded` for a value it does not take, IndexError or KeyError for one that ends
    early or holds an invalid code."""
    namespace: dict[str, Any] = {
        "_SMALL": _SMALL, "_LENGTH": _LENGTH, "_BOOLEAN": _BOOLEAN, "NotDecoded": NotDecoded,
        "_long": _long, "_int": _int, "_timestamp": _timestamp, "_micros": _micros,
        "_string": _string, "_string_array": _string_array, "_long_map": _long_map,
        "_shared_string_array": _shared_string_array, "_SHARED": {},
        "_utf8": _utf8, "_utf8_items": _utf8_items,
    }
    schema_fields = list(schema["fields"])
    unknown = set(fields or ()) - {field["name"] for field in schema_fields}
    if unknown:
        raise ValueError(f"not fields of {schema.get('name')}: {sorted(unknown)}")
    names = [f"v{position}" for position in range(len(schema_fields))]
    strings: list[tuple[str, str]] = []  # (ASCII check expression, UTF-8 re-decoding line)
    body: list[str] = []
    for position, (var, field) in enumerate(zip(names, schema_fields, strict=True)):
        body += _field_lines(field["type"], var, namespace, position, strings, compact)
    kept = [(var, field["name"]) for var, field in zip(names, schema_fields, strict=True)
            if fields is None or field["name"] in fields]
    lines = ["def decode(data):", "    text = data.decode('latin-1')", "    p = 0",
             *[f"    {line}" for line in body],
             "    if p != len(data):", "        raise NotDecoded('value does not end here')",
             *([f"    if not ''.join(({', '.join(check for check, _ in strings)},)).isascii():",
                *[f"        {fix}" for _, fix in strings]] if strings else []),
             "    return {", *[f"        {name!r}: {var}," for var, name in kept], "    }"]
    exec("\n".join(lines), namespace)  # the source comes from our own schema files only
    decode: Decoder = namespace["decode"]
    return decode
