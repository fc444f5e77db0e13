"""A record (or piece of input) that could not become a normalized record, and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graphsentry.ingest.limits import RAW_EXCERPT_CHARS

REASON_CODES = (
    "not_an_object",        # a JSON value that is not an object where a record was expected
    "missing_field",        # a required field is absent, null or ""
    "bad_timestamp",        # a time field that no supported format parses
    "future_timestamp",     # an event time beyond the allowed skew ahead of the wall clock
    "bad_type",             # a value of a type that cannot be coerced (object where a string goes)
    "bad_value",            # right type, unusable value (HTTP method "G E T")
    "out_of_range",         # negative size/duration, status outside 100-599, int overflow
    "field_too_large",      # a required identifier (requestId, tenantId, appId) beyond its limit
    "record_too_large",     # one record beyond MAX_RECORD_BYTES
    "line_too_large",       # one line / message beyond MAX_LINE_BYTES
    "input_too_large",      # a whole-file JSON document beyond MAX_DOCUMENT_BYTES
    "invalid_utf8",         # bytes that are not UTF-8, or text with lone surrogates (\\ud800)
    "too_deep",             # nesting beyond MAX_DEPTH
    "invalid_json",         # a line or document that does not parse
    "invalid_csv",          # a CSV row the csv module cannot read
    "invalid_gzip",         # a corrupt or truncated gzip stream
    "invalid_table",        # a query-API table whose columns or rows are malformed
    "query_error",          # a query-API response that reports an error (rows it has are read)
    "unsupported_category", # a resource-log / Defender streaming record of another category
    "unsupported_table",    # a Log Analytics row of another table (its Type column)
    "unsupported_shape",    # a recognised input shape that holds no activity records we read
    "internal_error",       # a bug: reported as a reject so one record never stops the stream
)


class Invalid(Exception):
    """Raised inside ingest to carry a reject reason out of nested helpers."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reject:
    """``reason`` is ``"<code>: <detail>"``; ``raw`` the original text, truncated (always valid
    Unicode: lone surrogates appear as ``\\udxxx`` escapes, so a reject always encodes)."""

    reason: str
    raw: str
    source: str

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "raw": self.raw, "source": self.source}


def excerpt(raw: object) -> str:
    """The original input as text, at most RAW_EXCERPT_CHARS characters, encodable as UTF-8."""
    if isinstance(raw, bytes | bytearray):
        text = bytes(raw[: RAW_EXCERPT_CHARS * 4]).decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:
        text = _dump(raw)
    return valid_text(text[:RAW_EXCERPT_CHARS])[:RAW_EXCERPT_CHARS]


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by its ``\\udxxx`` escape (else unchanged)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _dump(obj: Any) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, default=repr)[: RAW_EXCERPT_CHARS * 2]
    except (ValueError, TypeError, RecursionError):
        return f"<unprintable {type(obj).__name__}>"


def reject(code: str, detail: str, raw: object, source: str) -> Reject:
    return Reject(f"{code}: {valid_text(detail)}", excerpt(raw), valid_text(source))
