from datetime import UTC, datetime
from typing import Any

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
)
from graphsentry.ingest.normalize import Reject, normalize_record
from schemas import load_schema
from tests.ingest.factory import APP, TENANT, eh_record


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
_optional_text = st.none() | _text
_longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9998, 1, 1),
                      timezones=st.just(UTC))
_field_strategies = {
    "string": _text, "long": _longs, "int": _ints, "boolean": st.booleans(),
}


def _strategy(avro_type: Any) -> st.SearchStrategy[Any]:
    if isinstance(avro_type, str):
        return _field_strategies[avro_type]
    if isinstance(avro_type, list):
        return st.none() | _strategy(avro_type[1])
    if avro_type.get("logicalType") == "timestamp-micros":
        return _times
    if avro_type["type"] == "enum":
        return st.sampled_from(avro_type["symbols"])
    return st.lists(_text, max_size=5)


_records = st.fixed_dictionaries({
    field["name"]: _strategy(field["type"]) for field in load_schema("graph_activity")["fields"]
}).filter(lambda r: all(c < "\ud800" or c > "\udfff" for v in r.values() if isinstance(v, str)
                        for c in v))


@settings(max_examples=300, deadline=None)
@given(_records)
def test_compiled_encoder_matches_fastavro_byte_for_byte(record: dict[str, Any]) -> None:
    assert encode_activity(record) == encode("graph_activity", record)
    assert decode_activity(encode_activity(record)) == record


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


def test_json_form_uses_iso_utc_strings_and_round_trips() -> None:
    record = normalized(timeGenerated="2026-03-02T09:00:00.5+01:00")
    as_json = record_to_json(record)
    assert as_json["time_generated"] == "2026-03-02T08:00:00.500000Z"
    assert as_json["token_issued_at"] is None
    assert record_from_json(as_json) == record


def test_kafka_key_and_timestamp() -> None:
    record = normalized(timeGenerated="2026-03-02T08:00:01.0159703Z")
    assert message_key(record) == f"{TENANT}/{APP}".encode()
    expected = int(datetime(2026, 3, 2, 8, 0, 1, tzinfo=UTC).timestamp()) * 1000 + 15
    assert message_timestamp_ms(record) == expected


def test_generic_decode_rejects_unknown_schema() -> None:
    with pytest.raises(FileNotFoundError):
        decode("no_such_schema", b"")
