"""Size and shape limits applied while reading and normalizing (documented in docs/ingest.md).

Anything beyond a limit becomes a reject with a reason code; nothing is truncated silently.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

MAX_URI_CHARS = 8 * KIB
"""request_uri, in characters."""
MAX_USER_AGENT_CHARS = 1 * KIB
MAX_STRING_CHARS = 1 * KIB
"""Every other string field, and every item of roles/scopes/wids."""
MAX_ARRAY_ITEMS = 256
"""roles, scopes and wids after splitting on spaces."""
MAX_CLAIM_CHARS = 64 * KIB
"""A roles/scopes/wids string before splitting (a long scopes claim is normal)."""

MAX_RECORD_BYTES = 1 * MIB
"""One record: a single-record line, or one element of a large Event Hub message."""
MAX_LINE_BYTES = 8 * MIB
"""One input line, or one Kafka message value (an Event Hub message holds many records)."""
MAX_DOCUMENT_BYTES = 256 * MIB
"""A whole file read as one JSON document (pretty-printed message or JSON array)."""
MAX_DEPTH = 32
"""Nesting depth of any value inside a record."""

RAW_EXCERPT_CHARS = 4 * KIB
"""How much of the original text a reject keeps."""

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
