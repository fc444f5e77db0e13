"""Avro binary encoders compiled once from a record schema (the ingest hot path).

Straight-line Python generated from the schema (as dataclasses generates ``__init__``), for the
few Avro types ``graph_activity.avsc`` uses: string, int, long, boolean, enum,
timestamp-micros, arrays of strings, maps of longs and ``["null", T]`` unions. Two encoders per
schema:

- the *text* encoder, for records whose strings are all ASCII (nearly every record): it builds
  the whole encoding as one ``str`` whose characters are the output bytes (prefix bytes from
  tables, ASCII values as they are) and encodes it once with latin-1; no per-field ``encode``
  or ``append``;
- the *bytes* encoder for everything else (non-ASCII text, strings beyond the length tables),
  one ``bytes`` piece per field.

Both produce exactly ``fastavro.schemaless_writer``'s bytes (property tests check it). A value
that does not fit its type raises KeyError, TypeError, AttributeError or ValueError. A field
added in a later schema revision (it carries ``"revision"``) may be absent from the record, or
None where its type has no null: it is written with its default, so producers built against an
earlier revision (or filling every schema field with None first) keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any

Encoder = Callable[[Mapping[str, Any]], bytes]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_TABLE_LENGTHS = 8192  # strings shorter than this get their length prefix from a table


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
    return varint(value)


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int, 14 bits per table lookup."""
    if value < 16384:
        return _VARINT[value]
    return _LOW14[value & 0x3FFF] + _varint_high(value >> 14)


def zigzag(number: int) -> int:
    """The zig-zag form of an Avro long; TypeError/ValueError if it is not one."""
    if number.__class__ is not int and (isinstance(number, bool) or not isinstance(number, int)):
        raise TypeError(f"{number!r} is not an integer")
    if number >= 0:
        if number > _LONG_MAX:
            raise ValueError(f"{number} does not fit an Avro long")
        return number << 1
    if number < _LONG_MIN:
        raise ValueError(f"{number} does not fit an Avro long")
    return (-number << 1) - 1


def micros(value: datetime | int) -> int:
    """Epoch microseconds of an (aware or UTC-naive) datetime, or an int as it is."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // _MICROSECOND
    return int(value)


# --- the bytes encoder's helpers -------------------------------------------------------------

def _long(number: int) -> bytes:
    return varint(zigzag(number))


def _int(number: int) -> bytes:
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValueError(f"{number} does not fit an Avro int")
    return _long(number)


def _string(value: str) -> bytes:
    data = value.encode("utf-8")
    return varint(len(data) << 1) + data


def _boolean(value: bool) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise TypeError(f"{value!r} is not a boolean")


def _timestamp(value: datetime | int) -> bytes:
    return _long(micros(value))


def _long_map(values: Mapping[str, int]) -> bytes:
    if not isinstance(values, Mapping):
        raise TypeError(f"{values!r} is not a map")
    if not values:
        return b"\x00"
    return (_long(len(values)) + b"".join([_string(k) + _long(v) for k, v in values.items()])
            + b"\x00")


def _string_array(values: list[str]) -> bytes:
    if not isinstance(values, list | tuple):
        raise TypeError(f"{values!r} is not an array")
    if not values:
        return b"\x00"
    return _long(len(values)) + b"".join([_string(v) for v in values]) + b"\x00"


# --- the text encoder's helpers: str whose characters are the output bytes --------------------

class _NotText(Exception):
    """Internal: the record needs the bytes encoder (non-ASCII text or a very long string)."""


_T_VARINT = [data.decode("latin-1") for data in _VARINT]
_T_LOW14 = [data.decode("latin-1") for data in _LOW14]
_T_LENGTH = [_T_VARINT[n << 1] for n in range(_TABLE_LENGTHS)]
_T_SOME_LENGTH = ["\x02" + prefix for prefix in _T_LENGTH]  # with the union branch index
_T_NATURAL = _T_LENGTH  # zig-zag varint of a small non-negative int == a length prefix
_T_SOME_NATURAL = _T_SOME_LENGTH


@lru_cache(maxsize=4096)  # high bits of nearby timestamps repeat
def _t_varint_high(value: int) -> str:
    return varint(value).decode("latin-1")


def _t_long(number: int) -> str:
    value = number << 1 if number.__class__ is int and 0 <= number <= _LONG_MAX else zigzag(
        number)
    if value < 16384:
        return _T_VARINT[value]
    if value < 1 << 21:  # three bytes, both parts from tables
        return _T_LOW14[value & 0x3FFF] + _T_VARINT[value >> 14]
    return _T_LOW14[value & 0x3FFF] + _t_varint_high(value >> 14)


def _t_int(number: int) -> str:
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValueError(f"{number} does not fit an Avro int")
    return _t_long(number)


def _t_timestamp(value: datetime | int) -> str:
    if value.__class__ is datetime and value.tzinfo is not None:  # what normalize produces
        delta = value - _EPOCH  # (timedelta // timedelta is slower than its fields)
        folded = ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) << 1
        if 1 << 42 <= folded < 1 << 56:  # eight bytes: 1970-01-26 to 3111; four lookups
            return (_T_LOW14[folded & 0x3FFF] + _T_LOW14[folded >> 14 & 0x3FFF]
                    + _T_LOW14[folded >> 28 & 0x3FFF] + _T_VARINT[folded >> 42])
    return _t_long(micros(value))


def _not_boolean(value: object) -> str:
    raise TypeError(f"{value!r} is not a boolean")


def _t_boolean(value: bool) -> str:  # (a plain boolean field is inlined instead)
    return "\x01" if value is True else "\x00" if value is False else _not_boolean(value)


def _t_string_array(values: list[str]) -> str:
    if values.__class__ is not list and not isinstance(values, list | tuple):
        raise TypeError(f"{values!r} is not an array")
    if not values:
        return "\x00"
    joined = "".join(values)  # TypeError for a non-string item
    if not joined.isascii():
        raise _NotText
    if len(values) == 1:
        return "\x02" + _T_LENGTH[len(joined)] + joined + "\x00"  # "\x02": a count of 1
    encoded = _T_NATURAL[len(values)]
    for item in values:  # (a plain loop beats map/zip/comprehension for a few items)
        encoded += _T_LENGTH[len(item)] + item
    return encoded + "\x00"


def _t_long_map(values: Mapping[str, int]) -> str:
    if values.__class__ is not dict and not isinstance(values, Mapping):
        raise TypeError(f"{values!r} is not a map")
    if not values:
        return "\x00"
    encoded = _t_long(len(values))
    for key, number in values.items():
        if not key.isascii():
            raise _NotText
        encoded += _T_LENGTH[len(key)] + key + _t_long(number)  # IndexError: a very long key
    return encoded + "\x00"


# --- code generation --------------------------------------------------------------------------

def _expression(avro_type: Any, namespace: dict[str, Any], position: int, text: bool,
                var: str = "v") -> str:
    """Expression for one non-null value ``var``: its bytes (or, for ``text``, its str)."""
    prefix = "_t" if text else ""
    if isinstance(avro_type, str) and avro_type in ("long", "int", "boolean"):
        return f"{prefix}_{avro_type}({var})"  # (the text encoder inlines these)
    if avro_type == "string" and not text:  # the text encoder inlines strings
        return f"_string({var})"
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-micros" and avro_type["type"] == "long":
            return f"{prefix}_timestamp({var})"
        if avro_type["type"] == "enum":
            table = f"_ENUM{position}"
            codes = {s: varint(i << 1) for i, s in enumerate(avro_type["symbols"])}
            namespace[table] = codes
            namespace[f"_T{table}"] = {s: code.decode("latin-1") for s, code in codes.items()}
            return f"_T{table}[{var}]" if text else f"{table}[{var}]"
        if avro_type["type"] == "array" and avro_type["items"] == "string":
            return f"{prefix}_string_array({var})"
        if avro_type["type"] == "map" and avro_type["values"] == "long":
            return f"{prefix}_long_map({var})"
    raise NotImplementedError(f"no compiled encoder for Avro type {avro_type!r}")


def _nullable(avro_type: Any) -> Any:
    """T of a ``["null", T]`` union, or None when ``avro_type`` is not a union."""
    if not isinstance(avro_type, list):
        return None
    if len(avro_type) != 2 or avro_type[0] != "null":
        raise NotImplementedError(f"no compiled encoder for union {avro_type!r}")
    return avro_type[1]


def _bytes_encoder_source(fields: list[dict[str, Any]], namespace: dict[str, Any]) -> list[str]:
    lines = ["def encode_bytes(record):", "    out = []", "    add = out.append"]
    for position, field in enumerate(fields):
        avro_type = field["type"]
        lines.append(f"    v = record[{field['name']!r}]")
        if avro_type == ["null", "string"]:  # the most common field: inline, no call
            lines += ["    if v is None:", "        add(b'\\x00')", "    else:",
                      "        data = v.encode()", "        n = len(data)",
                      "        add(_SOME_LENGTH[n] if n < 8192 else b'\\x02' + varint(n << 1))",
                      "        add(data)"]
        elif avro_type == "string":
            lines += ["    data = v.encode()", "    n = len(data)",
                      "    add(_LENGTH[n] if n < 8192 else varint(n << 1))", "    add(data)"]
        elif (inner := _nullable(avro_type)) is not None:
            value = _expression(inner, namespace, position, text=False)
            lines.append(f"    add(b'\\x00' if v is None else b'\\x02' + {value})")
        else:
            lines.append(f"    add({_expression(avro_type, namespace, position, text=False)})")
    lines.append("    return b''.join(out)")
    return lines


def _text_pieces(avro_type: Any, name: str, namespace: dict[str, Any], position: int) -> list[str]:
    """Expressions (str) that encode the value in variable ``name``; common cases inline."""
    small = f"{name}.__class__ is int and 0 <= {name} < {_TABLE_LENGTHS}"
    if avro_type == "string":
        return [f"_T_LENGTH[len({name})]", name]
    if avro_type == ["null", "string"]:
        return [f"'\\x00' if {name} is None else _T_SOME_LENGTH[len({name})]", f"{name} or ''"]
    if avro_type in ("int", "long"):
        return [f"_T_NATURAL[{name}] if {small} else _t_{avro_type}({name})"]
    if avro_type in (["null", "int"], ["null", "long"]):
        return [f"'\\x00' if {name} is None else _T_SOME_NATURAL[{name}] if {small}"
                f" else '\\x02' + _t_{avro_type[1]}({name})"]
    if avro_type == "boolean":
        return [f"'\\x01' if {name} is True else '\\x00' if {name} is False"
                f" else _not_boolean({name})"]
    if (inner := _nullable(avro_type)) is not None:
        value = _expression(inner, namespace, position, text=True, var=name)
        return [f"'\\x00' if {name} is None else '\\x02' + {value}"]
    return [_expression(avro_type, namespace, position, text=True, var=name)]


def _text_encoder_source(fields: list[dict[str, Any]], namespace: dict[str, Any]) -> list[str]:
    names = [f"v{position}" for position in range(len(fields))]
    strings = [name for name, field in zip(names, fields, strict=True)
               if field["type"] in ("string", ["null", "string"])]
    pieces: list[str] = []
    for position, (name, field) in enumerate(zip(names, fields, strict=True)):
        pieces += _text_pieces(field["type"], name, namespace, position)
    namespace["_fields"] = itemgetter(*(field["name"] for field in fields))
    lines = ["def encode_text(record):",
             f"    {', '.join(names)}, = _fields(record)",
             # TypeError for a non-string; falsy values are checked by len() below
             f"    if not ''.join(filter(None, ({', '.join(strings)},))).isascii():",
             "        raise _NotText",
             "    return ''.join((",
             *[f"        {piece}," for piece in pieces],
             "    )).encode('latin-1')"]
    return lines


def compile_encoders(schema: Mapping[str, Any]) -> tuple[Encoder, Encoder]:
    """(text encoder, bytes encoder) of one record schema; the text one raises _NotText or
    IndexError for a record it cannot take."""
    fields = list(schema["fields"])
    namespace: dict[str, Any] = {
        "_long": _long, "_int": _int, "_boolean": _boolean, "_string": _string,
        "_timestamp": _timestamp, "_string_array": _string_array, "varint": varint,
        "_long_map": _long_map, "_t_long_map": _t_long_map,
        "_t_long": _t_long, "_t_int": _t_int, "_t_boolean": _t_boolean,
        "_t_timestamp": _t_timestamp, "_t_string_array": _t_string_array, "_NotText": _NotText,
        "_T_LENGTH": _T_LENGTH, "_T_SOME_LENGTH": _T_SOME_LENGTH, "_T_NATURAL": _T_NATURAL,
        "_T_SOME_NATURAL": _T_SOME_NATURAL, "_not_boolean": _not_boolean,
        # string lengths below 8192 as ready-made bytes, without and with the union index
        "_LENGTH": [varint(n << 1) for n in range(_TABLE_LENGTHS)],
        "_SOME_LENGTH": [b"\x02" + varint(n << 1) for n in range(_TABLE_LENGTHS)],
    }
    source = _text_encoder_source(fields, namespace) + _bytes_encoder_source(fields, namespace)
    exec("\n".join(source), namespace)  # the source comes from our own schema files only
    return namespace["encode_text"], namespace["encode_bytes"]


def compile_encoder(schema: Mapping[str, Any]) -> Encoder:
    """The encoder of one record schema: the text encoder, else the bytes encoder; fields of a
    later revision missing from the record are written with their defaults."""
    encode_text, encode_bytes = compile_encoders(schema)
    added = {field["name"]: field["default"] for field in schema["fields"]
             if "revision" in field and "default" in field}

    def encode(record: Mapping[str, Any]) -> bytes:
        try:
            return encode_text(record)
        except (_NotText, IndexError):  # IndexError: a string beyond the length tables
            return encode_bytes(record)
        except KeyError:
            missing = {name: default for name, default in added.items()
                       if (record.get(name) is None and default is not None)
                       or name not in record}
            if not missing:
                raise
            return encode({**record, **missing})

    return encode
