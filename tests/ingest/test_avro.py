import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphsentry.avro import (
    decode,
    decode_activities,
    decode_activity,
    encode,
    encode_activity,
    message_key,
    message_timestamp_ms,
    record_from_json,
    record_to_json,
    revision_schemas,
)
from graphsentry.avro_compiled import compile_encoder, compile_encoders
from graphsentry.ingest.limits import MAX_URI_CHARS
from graphsentry.ingest.normalize import Reject, normalize_record
from schemas import load_schema
from tests.ingest.factory import TENANT, eh_record


def normalized(**overrides: Any) -> dict[str, Any]:
    record = normalize_record(eh_record(**overrides))
    assert not isinstance(record, Reject)
    return record


def test_round_trip_through_unframed_avro() -> None:
    record = normalized(tokenIssuedAt="2026-03-02T07:55:00Z", wids="a b", userAgent="naïve/1.0")
    data = encode_activity(record)
    assert data == encode("graph_activity", record)
    assert decode_activity(data) == record
    assert decode_activities([data, data]) == [record, record]


_text = st.text(max_size=40)
_ascii = st.text(st.characters(max_codepoint=127), max_size=40)
_longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9998, 1, 1),
                      timezones=st.just(UTC))
_field_strategies = {
    "string": _text, "long": _longs, "int": _ints, "boolean": st.booleans(),
}


def _records(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    strategies = {**_field_strategies, "string": text}
    fields = load_schema("graph_activity")["fields"]
    return st.fixed_dictionaries({f["name"]: _strategy(f["type"], strategies) for f in fields})


def _strategy(avro_type: Any,
              strategies: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    if isinstance(avro_type, str):
        return strategies[avro_type]
    if isinstance(avro_type, list):
        return st.none() | _strategy(avro_type[1], strategies)
    if avro_type.get("logicalType") == "timestamp-micros":
        return _times
    if avro_type["type"] == "enum":
        return st.sampled_from(avro_type["symbols"])
    if avro_type["type"] == "map":
        return st.dictionaries(strategies["string"], strategies[avro_type["values"]], max_size=4)
    return st.lists(strategies["string"], max_size=5)


def _no_surrogates(record: dict[str, Any]) -> bool:
    return all(c < "\ud800" or c > "\udfff" for v in record.values() if isinstance(v, str)
               for c in v)


_TEXT_ENCODER, _BYTES_ENCODER = compile_encoders(load_schema("graph_activity"))


@settings(max_examples=300, deadline=None)
@given(_records(_text).filter(_no_surrogates))
def test_compiled_encoder_matches_fastavro_byte_for_byte(record: dict[str, Any]) -> None:
    assert encode_activity(record) == encode("graph_activity", record)
    assert _BYTES_ENCODER(record) == encode("graph_activity", record)
    assert decode_activity(encode_activity(record)) == record


@settings(max_examples=300, deadline=None)
@given(_records(_ascii))
def test_text_encoder_of_ascii_records_matches_fastavro(record: dict[str, Any]) -> None:
    assert _TEXT_ENCODER(record) == encode("graph_activity", record)


@pytest.mark.parametrize("micros", [0, 1, 63, 64, 8191, 8192, 2**20, 2**21, 2**41 - 1, 2**41,
                                    2**48 - 1, 2**48, 2**55 - 1,
                                    2**55, -1, -(2**40)])
def test_timestamps_near_varint_boundaries(micros: int) -> None:
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    record = normalized()
    record["time_generated"] = when
    record["token_issued_at"] = micros  # epoch microseconds are accepted too
    expected = encode("graph_activity", record)
    assert _TEXT_ENCODER(record) == _BYTES_ENCODER(record) == expected


def test_long_and_non_ascii_strings_take_the_bytes_encoder() -> None:
    long_uri = normalized(requestUri="https://graph.microsoft.com/v1.0/users?" + "a" * 8153)
    assert len(long_uri["request_uri"]) == MAX_URI_CHARS  # one past the text tables
    with pytest.raises(IndexError):
        _TEXT_ENCODER(long_uri)
    assert encode_activity(long_uri) == encode("graph_activity", long_uri)
    for overrides in ({"userAgent": "naïve/1.0"}, {"roles": "Rôle.Read"}):
        record = normalized(**overrides)
        assert encode_activity(record) == encode("graph_activity", record)


@pytest.mark.parametrize(
    ("field", "value"),
    [("request_id", None), ("response_status_code", "200"), ("is_write", 1),
     ("identity_type", "robot"), ("roles", "a b"), ("client_auth_method", 2**31),
     ("time_generated", "2026-01-01")],
)
def test_records_that_do_not_fit_the_schema_raise_value_error(field: str, value: Any) -> None:
    record = normalized()
    record[field] = value
    with pytest.raises(ValueError):
        encode_activity(record)
    with pytest.raises(ValueError):
        encode_activity({k: v for k, v in record.items() if k != "app_id"})
    for encoder in (_TEXT_ENCODER, _BYTES_ENCODER):  # each path refuses it on its own
        with pytest.raises((KeyError, TypeError, AttributeError, ValueError)):
            encoder(record)


def test_json_form_uses_iso_utc_strings_and_round_trips() -> None:
    record = normalized(timeGenerated="2026-03-02T09:00:00.5+01:00")
    as_json = record_to_json(record)
    assert as_json["time_generated"] == "2026-03-02T08:00:00.500000Z"
    assert as_json["token_issued_at"] is None
    assert record_from_json(as_json) == record


def test_kafka_key_and_timestamp() -> None:
    record = normalized(timeGenerated="2026-03-02T08:00:01.0159703Z")
    assert message_key(record) == f"{TENANT}/{record['principal_id']}".encode()
    expected = int(datetime(2026, 3, 2, 8, 0, 1, tzinfo=UTC).timestamp()) * 1000 + 15
    assert message_timestamp_ms(record) == expected


def test_generic_decode_rejects_unknown_schema() -> None:
    with pytest.raises(FileNotFoundError):
        decode("no_such_schema", b"")


_EVERY_TYPE: dict[str, Any] = {"type": "record", "name": "Every", "fields": [
    {"name": n, "type": t} for n, t in [
        ("s", "string"), ("i", "int"), ("l", "long"), ("b", "boolean"),
        ("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]}),
        ("t", {"type": "long", "logicalType": "timestamp-micros"}),
        ("a", {"type": "array", "items": "string"}),
        ("m", {"type": "map", "values": "long"}),
        *[(f"n{k}", ["null", t]) for k, t in enumerate([
            "string", "int", "long", "boolean",
            {"type": "enum", "name": "F", "symbols": ["X", "Y"]},
            {"type": "long", "logicalType": "timestamp-micros"},
            {"type": "array", "items": "string"}, {"type": "map", "values": "long"}])],
    ]]}


def every_type_record(data: st.DataObject) -> dict[str, Any]:
    """A record of :data:`_EVERY_TYPE`, its strings all ASCII or any text."""
    strategies = {**_field_strategies, "string": data.draw(st.sampled_from([_ascii, _text]))}
    record: dict[str, Any] = data.draw(st.fixed_dictionaries({
        f["name"]: _strategy(f["type"], strategies) for f in _EVERY_TYPE["fields"]}).filter(
            _no_surrogates))
    return record


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_supported_type_and_union_matches_fastavro(data: st.DataObject) -> None:
    record = every_type_record(data)
    expected = io.BytesIO()
    fastavro.schemaless_writer(expected, fastavro.parse_schema(_EVERY_TYPE), record)
    _, binary = compile_encoders(_EVERY_TYPE)  # (compile_encoder tries the text one first)
    assert compile_encoder(_EVERY_TYPE)(record) == binary(record) == expected.getvalue()


# --- schema revision 2: source, truncated_fields ------------------------------------------------

def test_revision_one_values_decode_with_the_new_fields_defaults() -> None:
    record = normalized(userAgent="u" * 1500)
    assert record["truncated_fields"] == {"user_agent": 1500}
    older = {k: v for k, v in record.items() if k not in ("source", "truncated_fields")}
    [(revision, writer)] = revision_schemas("graph_activity")
    assert revision == 1
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer, older)
    value = buffer.getvalue()
    assert decode_activity(value) == {**older, "source": "MicrosoftGraphActivityLogs",
                                      "truncated_fields": None}
    assert decode_activities([value, encode_activity(record)])[1] == record
    # a producer of revision-1 records: the new fields are written with their defaults
    assert encode_activity(older) == encode("graph_activity", {
        **older, "source": "MicrosoftGraphActivityLogs", "truncated_fields": None})


def test_a_truncated_value_is_still_an_error() -> None:
    data = encode_activity(normalized())
    for cut in (1, 3, 30):
        with pytest.raises((EOFError, ValueError)):
            decode_activity(data[:-cut])


def test_revision_fields_are_last_and_have_defaults() -> None:
    fields = load_schema("graph_activity")["fields"]
    revised = [f for f in fields if "revision" in f]
    assert [f["name"] for f in revised] == ["source", "truncated_fields"]
    assert fields[-len(revised):] == revised
    assert all("default" in f for f in revised)


def test_a_revision_field_given_as_none_gets_its_default() -> None:
    """Producers that fill every schema field with None first (dict.fromkeys(field_names()))."""
    record = {**normalized(), "source": None, "truncated_fields": None}
    assert decode_activity(encode_activity(record))["source"] == "MicrosoftGraphActivityLogs"
    with pytest.raises(ValueError):
        encode_activity({**record, "source": "SomeOtherLog"})
