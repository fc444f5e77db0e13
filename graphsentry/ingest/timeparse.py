"""Timestamps as Graph activity logs deliver them, to timezone-aware UTC datetimes.

Accepted: ISO-8601 with 0-9 fractional digits and ``Z``/``±hh:mm``/``±hhmm`` offsets (the
common ``2024-03-07T11:47:00.6442361Z`` goes through ``datetime.fromisoformat`` directly), and the
US forms ``M/d/yyyy h:mm[:ss[.fff]] [AM|PM] [±hh:mm]`` (optionally with a comma after the date,
as in Log Analytics CSV exports). Naive times are UTC. Fractions beyond microseconds are
truncated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

MIN_YEAR = 1970
MAX_YEAR = 9998  # room for any offset without overflowing datetime

_US = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4}),?\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(?:\s*([AaPp])[Mm])?(?:\s*(Z|[+-]\d{2}:?\d{2}))?",
    re.ASCII,
)
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{0,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def parse_timestamp(value: str) -> datetime:
    """Parse one timestamp string; raise ValueError with a short reason if it cannot be."""
    # Fast path: ISO with a time part, as in every Event Hub and Log Analytics JSON record.
    if len(value) >= 19 and value[10] == "T" and value.isascii():
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = _parse_slow(value)
    else:
        parsed = _parse_slow(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    elif parsed.tzinfo is not UTC:
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError(f"timestamp {value[:64]!r} out of range") from exc
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"year {parsed.year} outside {MIN_YEAR}..{MAX_YEAR}")
    return parsed


def _parse_slow(value: str) -> datetime:
    text = value.strip()
    match = _ISO.fullmatch(text)
    if match:
        year, month, day, hour, minute, second, frac, offset = match.groups()
        return _build(year, month, day, hour, minute, second, frac, offset)
    match = _US.fullmatch(text)
    if match:
        month, day, year, hour, minute, second, frac, meridiem, offset = match.groups()
        hour_num = int(hour)
        if meridiem:
            if not 1 <= hour_num <= 12:
                raise ValueError(f"hour {hour_num} with AM/PM in {value[:64]!r}")
            hour_num = hour_num % 12 + (12 if meridiem in "Pp" else 0)
        return _build(year, month, day, str(hour_num), minute, second, frac, offset)
    raise ValueError(f"unrecognised timestamp {value[:64]!r}")


def _build(year: str, month: str, day: str, hour: str, minute: str, second: str | None,
           frac: str | None, offset: str | None) -> datetime:
    micros = int((frac or "0")[:6].ljust(6, "0"))
    tz = _offset(offset) if offset else None
    return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                    micros, tzinfo=tz)


def _offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {text!r} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z`` (the JSON form of every record time)."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
