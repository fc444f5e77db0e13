"""The ingest JSON parser: orjson's speed, json's results (with or without orjson installed)."""

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphsentry.ingest import jsonparse

try:
    import orjson
    HAS_ORJSON = True
except ImportError:  # the json-only half still runs
    HAS_ORJSON = False
needs_orjson = pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed")
PARSERS = ["orjson", "json"] if HAS_ORJSON else ["json"]


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types (and key order); NaN equals NaN, -0.0 is not 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or repr(a) == repr(b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def outcome(data: bytes) -> tuple[str, Any]:
    try:
        return "value", jsonparse.loads(data)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test with orjson first (as installed) and with json alone (orjson missing)."""
    if request.param == "json":
        monkeypatch.setattr(jsonparse, "_fast_loads", None)
    assert jsonparse.fast_parser() == request.param
    yield request.param


@pytest.mark.parametrize(("data", "expected"), [
    (b'{"a": 1, "b": [true, null, "x"]}', {"a": 1, "b": [True, None, "x"]}),
    (b"NaN", math.nan),  # json's literals are kept: normalize rejects them where they matter
    (b"[Infinity, -Infinity]", [math.inf, -math.inf]),
    (b"1e400", math.inf),
    (b'"\\ud800"', "\ud800"),  # a lone surrogate: normalize rejects it as invalid_utf8
    (b'{"\\udc00": 1}', {"\udc00": 1}),
    (b"18446744073709551615", 2**64 - 1),  # the largest integer both parsers keep exact
    (b"-9223372036854775808", -(2**63)),
    (b"18446744073709551616", float(2**64)),  # beyond: a float, whichever parser runs
    (b"-9223372036854775809", -float(2**63)),
    (b"1" + b"0" * 400, math.inf),
    (b'{"a": 1, "a": 2}', {"a": 2}),
    (b" {} \r\n", {}),
])
def test_values(parser: str, data: bytes, expected: Any) -> None:
    assert same(jsonparse.loads(data), expected)


@pytest.mark.parametrize(("data", "error", "message"), [
    (b'{"a": "\xff"}', "UnicodeDecodeError", "can't decode byte 0xff in position 7"),
    (b"\xef\xbb\xbf{}", "JSONDecodeError", "Unexpected UTF-8 BOM"),
    (b"{not json", "JSONDecodeError", "Expecting property name enclosed in double quotes"),
    (b'{"a": 1} {"b": 2}', "JSONDecodeError", "Extra data: line 1 column 10"),
    (b"", "JSONDecodeError", "Expecting value: line 1 column 1"),
    (b"[1,]", "JSONDecodeError", "Expecting value: line 1 column 4"),
    (b'"\x01"', "JSONDecodeError", "Invalid control character"),
    (b"1" * 5000, "ValueError", "Exceeds the limit (4300 digits)"),
    (b"[" * 100_000 + b"]" * 100_000, "RecursionError", "maximum recursion depth"),
])
def test_errors_are_json_errors(parser: str, data: bytes, error: str, message: str) -> None:
    kind, text = outcome(data)
    assert kind == error and message in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
numbers = st.from_regex(r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?\Z")


def documents() -> st.SearchStrategy[bytes]:
    dumped = st.builds(lambda v, a: json.dumps(v, ensure_ascii=a).encode("utf-8", "surrogatepass"),
                       json_values, st.booleans())
    return dumped | numbers.map(str.encode) | st.binary(max_size=200)


@needs_orjson
@settings(max_examples=500, deadline=None)
@given(documents())
def test_orjson_and_json_agree(data: bytes) -> None:
    try:
        fast = orjson.loads(data)
    except orjson.JSONDecodeError:
        return  # json alone decides, by construction of jsonparse.loads
    assert same(fast, jsonparse.loads_text(data.decode("utf-8")))


@needs_orjson
@settings(max_examples=300, deadline=None)
@given(documents())
def test_the_value_or_error_does_not_depend_on_orjson(data: bytes) -> None:
    with_orjson = outcome(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonparse, "_fast_loads", None)
        without = outcome(data)
    assert with_orjson[0] == without[0]
    assert same(with_orjson[1], without[1]) if with_orjson[0] == "value" else (
        with_orjson[1] == without[1])
