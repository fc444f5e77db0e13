"""The compiled Avro decoder against fastavro: the same values, and what it does not take it
leaves to fastavro (so malformed input gets fastavro's errors)."""

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.event import RECORD_FIELDS, GraphEvent
from graphsentry import avro_decoder
from graphsentry.avro import (
    activity_fields_decoder,
    decode,
    decode_activity,
    encode_activity,
    revision_schemas,
)
from graphsentry.avro_compiled import micros
from graphsentry.avro_decoder import NotDecoded, compile_decoder
from schemas import load_schema
from tests.ingest.test_avro import (
    _EVERY_TYPE,
    _ascii,
    _no_surrogates,
    _records,
    _text,
    every_type_record,
    normalized,
)

REFUSED = (NotDecoded, IndexError, KeyError, OverflowError)
ACTIVITY = load_schema("graph_activity")


def _fastavro(schema: dict[str, Any], data: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(schema), None)


def _encoded(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_supported_type_and_union_decodes_as_fastavro_does(data: st.DataObject) -> None:
    record = every_type_record(data)
    value = _encoded(_EVERY_TYPE, record)
    decoder = compile_decoder(_EVERY_TYPE)
    map_keys = [key for name in ("m", "n7") for key in (record[name] or {})]
    if all(key.isascii() for key in map_keys):  # non-ASCII text is read as UTF-8
        assert decoder(value) == _fastavro(_EVERY_TYPE, value) == record
    else:  # except in map keys: fastavro's
        with pytest.raises(NotDecoded):
            decoder(value)


@settings(max_examples=200, deadline=None)
@given(_records(_text).filter(_no_surrogates))
def test_activity_values_decode_as_fastavro_does(record: dict[str, Any]) -> None:
    value = encode_activity(record)
    expected = decode("graph_activity", value)
    assert decode_activity(value) == expected
    fields = activity_fields_decoder(RECORD_FIELDS)(value)
    assert GraphEvent.from_record(fields) == GraphEvent.from_record(expected)


def test_the_fields_decoder_keeps_only_its_fields_with_timestamps_in_microseconds() -> None:
    record = normalized(roles="User.Read.All Mail.Read")
    fields = activity_fields_decoder(RECORD_FIELDS)(encode_activity(record))
    assert set(fields) == set(RECORD_FIELDS)
    assert fields["time_generated"] == micros(record["time_generated"])
    assert fields["roles"] == ("User.Read.All", "Mail.Read") == tuple(record["roles"])
    assert {k: v for k, v in fields.items() if k not in ("time_generated", "roles")} == {
        k: record[k] for k in RECORD_FIELDS if k not in ("time_generated", "roles")}


def test_compact_arrays_are_one_tuple_per_distinct_bytes_and_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = compile_decoder(ACTIVITY, RECORD_FIELDS, compact=True)
    one = decoder(encode_activity(normalized(roles="User.Read.All Mail.Read")))
    two = decoder(encode_activity(normalized(roles="User.Read.All Mail.Read",
                                             requestId="another")))
    other = decoder(encode_activity(normalized(roles="Mail.Read User.Read.All")))
    assert one["request_id"] != two["request_id"]
    assert one["roles"] is two["roles"]  # shared: built once, hashed once downstream
    assert other["roles"] == ("Mail.Read", "User.Read.All") and other["roles"] is not one["roles"]
    monkeypatch.setattr(avro_decoder, "SHARED_ARRAYS", 3)
    shared = decoder.__globals__["_SHARED"]  # the decoder's own table
    for n in range(10):
        roles = [f"Role{n}.Read", f"Role{n}.Write"]
        assert decoder(encode_activity(normalized(roles=" ".join(roles))))["roles"] == tuple(
            roles)
        assert 0 < len(shared) <= 3  # full: dropped and filled again
    with pytest.raises(ValueError, match="not fields"):
        compile_decoder(ACTIVITY, ("time_generated", "no_such_field"))


@pytest.mark.parametrize("when", [
    datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 26, tzinfo=UTC),
    datetime(2026, 11, 30, 6, 1, 2, 345678, tzinfo=UTC), datetime(3111, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
    # each end of the eight-byte varints (read in one step), just inside and just outside
    datetime(1978, 12, 2, 19, 29, 36, 710655, tzinfo=UTC),
    datetime(1978, 12, 2, 19, 29, 36, 710656, tzinfo=UTC),
    datetime(3111, 9, 16, 23, 10, 18, 963967, tzinfo=UTC),
    datetime(3111, 9, 16, 23, 10, 18, 963968, tzinfo=UTC),
    datetime(1961, 1, 30, 4, 30, 23, 289344, tzinfo=UTC),
    datetime(1961, 1, 30, 4, 30, 23, 289343, tzinfo=UTC),
    datetime(828, 4, 17, 0, 49, 41, 36032, tzinfo=UTC),
    datetime(828, 4, 17, 0, 49, 41, 36031, tzinfo=UTC)])
def test_timestamps_across_varint_lengths(when: datetime) -> None:
    value = encode_activity({**normalized(), "time_generated": when})
    assert decode_activity(value) == decode("graph_activity", value)
    assert decode_activity(value)["time_generated"] == when
    fields = activity_fields_decoder(RECORD_FIELDS)(value)
    assert fields["time_generated"] == micros(when)
    assert GraphEvent.from_record(fields).ts == when.timestamp()


def test_non_ascii_text_is_read_as_utf8_and_other_values_are_fastavros() -> None:
    record = normalized(userAgent="Mozilla/5.0 (Ünïcode ✓)", roles="Rôle.Read User.Read")
    value = encode_activity(record)
    assert compile_decoder(ACTIVITY)(value) == decode("graph_activity", value) == record
    assert decode_activity(value) == record
    fields = compile_decoder(ACTIVITY, RECORD_FIELDS, compact=True)(value)
    assert fields["user_agent"] == "Mozilla/5.0 (Ünïcode ✓)"
    assert fields["roles"] == ("Rôle.Read", "User.Read")
    invalid = value.replace("✓".encode(), b"\xe2\x9c\xff")  # the same length, no UTF-8
    with pytest.raises(NotDecoded):
        compile_decoder(ACTIVITY)(invalid)
    with pytest.raises(UnicodeDecodeError):
        decode("graph_activity", invalid)
    for broken in (value[:-1], value + b"\x00", b"", b"\xff" * 12):
        with pytest.raises(REFUSED):
            compile_decoder(ACTIVITY)(broken)


def _assert_as_fastavro(data: bytes) -> tuple[str, Any]:
    """Both compiled paths give what fastavro gives for ``data`` (a value, or an error); returns
    fastavro's outcome."""
    expected = _outcome(lambda d: decode("graph_activity", d), data)
    assert _outcome(decode_activity, data) == expected
    fields = _outcome(activity_fields_decoder(RECORD_FIELDS), data)
    assert fields[0] == expected[0]
    if expected[0] == "value":
        assert GraphEvent.from_record(fields[1]) == GraphEvent.from_record(expected[1])
    return expected


def _outcome(decoder: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "value", decoder(data)
    except Exception:
        return "error", None


@settings(max_examples=400, deadline=None)
@given(_records(_ascii), st.data())
def test_corrupted_values_give_what_fastavro_gives(record: dict[str, Any],
                                                  data: st.DataObject) -> None:
    """A flipped, cut or added byte: the compiled path never accepts what fastavro refuses and
    never reads a value differently."""
    value = bytearray(encode_activity(record))
    where = data.draw(st.integers(0, len(value) - 1))
    change = data.draw(st.sampled_from(["flip", "cut", "add"]))
    byte = data.draw(st.integers(0, 255))
    if change == "flip":
        value[where] = byte
    elif change == "cut":
        del value[where:]
    else:
        value.insert(where, byte)
    corrupted = bytes(value)
    _assert_as_fastavro(corrupted)


_LONG = {"type": "record", "name": "Long", "fields": [{"name": "n", "type": "long"}]}


@pytest.mark.parametrize("tenth", [0x00, 0x01, 0x02, 0x7F])
def test_ten_byte_varints_read_as_fastavro_reads_them(tenth: int) -> None:
    """A tenth varint byte holds bit 63 only: fastavro keeps the low 64 bits of what a writer
    puts above it, so the compiled decoder leaves such a value to fastavro."""
    value = b"\xff" * 9 + bytes([tenth])
    if tenth <= 1:
        assert compile_decoder(_LONG)(value) == _fastavro(_LONG, value)
    else:
        with pytest.raises(NotDecoded):
            compile_decoder(_LONG)(value)
    smallest = b"\x02" + b"\xff" * 9 + b"\x01"  # response_size_bytes = -2**63
    activity = encode_activity({**normalized(), "response_size_bytes": -(2**63)})
    assert activity.count(smallest) == 1
    activity = activity.replace(smallest, smallest[:-1] + bytes([tenth]))
    expected = decode("graph_activity", activity)
    assert -(2**63) <= expected["response_size_bytes"] < 2**63
    assert decode_activity(activity) == expected
    fields = activity_fields_decoder(RECORD_FIELDS)(activity)
    assert GraphEvent.from_record(fields) == GraphEvent.from_record(expected)


_BLOCKS = {"type": "record", "name": "Blocks", "fields": [
    {"name": "a", "type": {"type": "array", "items": "string"}},
    {"name": "m", "type": ["null", {"type": "map", "values": "long"}]}]}


def test_arrays_and_maps_in_several_blocks_as_other_writers_send_them() -> None:
    """A writer may split an array or map into blocks, a negative count followed by the block's
    size in bytes (Avro spec, "Complex Types"), and pad a varint (here the length 2 of "yy" as
    0x84 0x80 0x00); fastavro's writer sends one block."""
    value = (b"\x03\x0e" + b"\x02x" + b"\x84\x80\x00yy"  # a: -2 items in 7 bytes
             + b"\x02" + b"\x06zzz" + b"\x00"  # a: 1 item; end
             + b"\x02"  # m: not null
             + b"\x01\x06" + b"\x02k\x04"  # m: -1 item in 3 bytes
             + b"\x02" + b"\x04k2\x81\x01" + b"\x00")  # m: 1 item; end
    expected = {"a": ["x", "yy", "zzz"], "m": {"k": 2, "k2": -65}}
    assert _fastavro(_BLOCKS, value) == expected
    assert compile_decoder(_BLOCKS)(value) == expected


@settings(max_examples=150, deadline=None)
@given(st.one_of(_records(_ascii), _records(_text).filter(_no_surrogates)), st.binary(max_size=2))
def test_revision_one_values_give_the_detection_flow_what_fastavro_gives(
        record: dict[str, Any], tail: bytes) -> None:
    """A revision-1 value (no source, no truncated_fields) is fastavro's, with the new fields'
    defaults; with a byte or two after it, it reads as a revision-2 value or fails, as in
    fastavro."""
    [(_, writer)] = revision_schemas("graph_activity")
    older = {k: v for k, v in record.items() if k not in ("source", "truncated_fields")}
    out = io.BytesIO()
    fastavro.schemaless_writer(out, writer, older)
    value = out.getvalue() + tail
    expected = _assert_as_fastavro(value)
    if not tail:
        assert expected == ("value", {**older, "source": "MicrosoftGraphActivityLogs",
                                      "truncated_fields": None})


@pytest.mark.parametrize("avro_type", [
    "double", "bytes", {"type": "array", "items": "long"}, ["null", "string", "long"],
    ["string", "null"]])
def test_types_outside_the_activity_schema_are_refused_when_compiling(avro_type: Any) -> None:
    """The decoder covers the types graph_activity.avsc uses; a schema with another one is
    refused at compile time (never decoded wrongly)."""
    schema = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": avro_type}]}
    with pytest.raises(NotImplementedError, match="no compiled decoder"):
        compile_decoder(schema)
