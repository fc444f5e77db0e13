"""Size, shape and time limits applied while reading and normalizing (docs/ingest.md).

Over-long *fields* are truncated and flagged in the record (``truncated_fields``), never
silently: only a record beyond MAX_RECORD_BYTES, a line beyond MAX_LINE_BYTES, or a required
identifier beyond MAX_STRING_CHARS makes a reject.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

MAX_URI_CHARS = 8 * KIB
"""request_uri, in characters; a longer one is shortened (path and key query options kept)."""
MAX_USER_AGENT_CHARS = 1 * KIB
MAX_STRING_CHARS = 1 * KIB
"""Every other string field, and every item of roles/scopes/wids."""
MAX_ARRAY_ITEMS = 256
"""roles, scopes and wids after splitting on spaces."""
MAX_CLAIM_CHARS = 64 * KIB
"""A roles/scopes/wids string before splitting (a long scopes claim is normal)."""
MAX_QUERY_VALUE_CHARS = 256
"""One query option's value kept in a shortened request_uri ($skiptoken, $deltatoken, ...)."""

MAX_RECORD_BYTES = 1 * MIB
"""One record: a single-record line, or one element of a large Event Hub message."""
MAX_LINE_BYTES = 8 * MIB
"""One input line, or one Kafka message value (an Event Hub message holds many records)."""
MAX_DOCUMENT_BYTES = 256 * MIB
"""A whole file read as one JSON document (pretty-printed message or JSON array)."""
MAX_DEPTH = 32
"""Nesting depth of any value inside a record."""

MAX_FUTURE_SKEW_SECONDS = 15 * 60.0
"""How far ahead of the wall clock an event time may lie (``future_timestamp`` beyond it).

Default 15 min: clock skew between Microsoft's log pipeline and ours, well below Kafka 4's
default ``log.message.timestamp.after.max.ms`` of 1 h, so that a record we accept is never
refused by the broker for its timestamp (which would fail its whole producer batch).
Configurable: ``time.max_future_skew_seconds`` (bridge, detection), ``normalize_record(...,
max_future_skew=...)``, ``graphsentry normalize --max-future-skew``."""

RAW_EXCERPT_CHARS = 4 * KIB
"""How much of the original text a reject keeps."""

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
