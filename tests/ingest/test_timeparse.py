import json
from datetime import UTC, datetime

import pytest

from graphsentry.ingest.timeparse import format_timestamp, parse_timestamp
from tests.ingest.factory import SAMPLES, requires_samples


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-07T11:47:00.6442361Z", datetime(2024, 3, 7, 11, 47, 0, 644236, tzinfo=UTC)),
        ("2024-03-07T11:47:00Z", datetime(2024, 3, 7, 11, 47, tzinfo=UTC)),
        ("2007-01-09T09:41:00.22Z", datetime(2007, 1, 9, 9, 41, 0, 220000, tzinfo=UTC)),
        ("2007-01-09T09:41:00.535404056Z", datetime(2007, 1, 9, 9, 41, 0, 535404, tzinfo=UTC)),
        ("2007-01-09T09:41:00.992099+00:00", datetime(2007, 1, 9, 9, 41, 0, 992099, tzinfo=UTC)),
        ("2007-01-09T11:41:00+02:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("2007-01-09T11:41:00+0200", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("2007-01-09T04:41:00.5-05:00", datetime(2007, 1, 9, 9, 41, 0, 500000, tzinfo=UTC)),
        ("2007-01-09T09:41:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),  # naive -> UTC
        ("2007-01-09 09:41:00.1Z", datetime(2007, 1, 9, 9, 41, 0, 100000, tzinfo=UTC)),
        ("2007-01-09t09:41:00z", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("2007-01-09T09:41:00.Z", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("01/09/2007 09:41:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 09:41:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("01/09/2007 09:41:00 AM", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 9:41:00 AM", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 10:41:00 AM +01:00", datetime(2007, 1, 9, 9, 41, tzinfo=UTC)),
        ("1/9/2007 12:05:00 AM", datetime(2007, 1, 9, 0, 5, tzinfo=UTC)),
        ("1/9/2007 12:05:00 PM", datetime(2007, 1, 9, 12, 5, tzinfo=UTC)),
        ("1/9/2007 9:41:00 PM", datetime(2007, 1, 9, 21, 41, tzinfo=UTC)),
        ("3/2/2026, 8:10:00.123 AM", datetime(2026, 3, 2, 8, 10, 0, 123000, tzinfo=UTC)),
    ],
)
def test_supported_formats_become_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-03-07T25:00:00Z",
     "13/40/2024 10:00:00", "1/9/2007 13:00:00 PM", "1/9/2007 0:30:00 AM", "2024-03-07",
     "1900-01-01T00:00:00Z", "2024-03-07T11:47:00+25:00", "0001-01-01T00:30:00+01:00",
     "٢٠٢٤-03-07T11:47:00Z"],
)
def test_unparseable_timestamps_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_is_iso_utc_with_microseconds_and_z() -> None:
    when = parse_timestamp("2026-01-01T02:00:00.5+02:00")
    assert format_timestamp(when) == "2026-01-01T00:00:00.500000Z"
    assert parse_timestamp(format_timestamp(when)) == when


@requires_samples
def test_every_corner_case_in_the_shared_sample_parses_to_the_same_instant() -> None:
    name = "elastic-integrations_azure-graphactivitylogs_test-time-formats-corner-cases.log"
    text = (SAMPLES / name).read_text(encoding="utf-8")
    times = [parse_timestamp(json.loads(line)["time"]) for line in text.splitlines()]
    assert len(times) == 11
    # All describe 2007-01-09 09:41 UTC; only the fractional seconds differ.
    assert {t.replace(microsecond=0) for t in times} == {datetime(2007, 1, 9, 9, 41, tzinfo=UTC)}
