"""Event times beyond the allowed skew ahead of the clock (issue 8.2), lone surrogates (8.7) and
the summary of inputs that hold no records (8.7), in ``normalize`` and the bridge."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, run_main

from dataflows.bridge import (
    BridgeCounters,
    BridgeTopics,
    FilesSource,
    bridge_message,
    build_bridge_flow,
)
from graphsentry.config import config_from_dict
from graphsentry.ingest import iter_records
from graphsentry.ingest.eventtime import future_limit
from graphsentry.ingest.limits import MAX_FUTURE_SKEW_SECONDS
from graphsentry.ingest.normalize import Reject, normalize_record
from graphsentry.ingest.timeparse import format_timestamp
from tests.ingest.factory import eh_record, line, message

ROOT = Path(__file__).parents[2]
CLOCK = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
TOPICS = BridgeTopics("activity.test", "dlq.test")


def at(offset: timedelta, request: str = "r1", **overrides: Any) -> dict[str, Any]:
    stamp = format_timestamp(CLOCK + offset)
    return eh_record(top={"time": stamp}, timeGenerated=stamp, requestId=request, **overrides)


def clock() -> datetime:
    return CLOCK


def test_default_skew_stays_below_kafkas_one_hour_limit() -> None:
    assert MAX_FUTURE_SKEW_SECONDS == 900 < 3600


@pytest.mark.parametrize(("ahead", "accepted"), [
    (timedelta(0), True), (timedelta(minutes=15), True),
    (timedelta(minutes=15, microseconds=1), False), (timedelta(hours=2), False)])
def test_event_time_ahead_of_the_clock(ahead: timedelta, accepted: bool) -> None:
    result = normalize_record(at(ahead), "t", now=clock)
    assert isinstance(result, Reject) is not accepted
    if not accepted:
        assert isinstance(result, Reject)
        assert result.code == "future_timestamp"


def test_future_reject_says_how_far_ahead() -> None:
    result = normalize_record(at(timedelta(hours=2)), "hub/0/9#3", now=clock)
    assert isinstance(result, Reject) and result.source == "hub/0/9#3"
    assert result.reason == ("future_timestamp: timeGenerated 2026-03-02T10:00:00.000000Z is "
                             "7200 s ahead of the clock (at most 900 s allowed)")


def test_year_9000_is_future_and_skew_is_configurable() -> None:
    far = eh_record(timeGenerated="9000-01-01T00:00:00Z")
    result = normalize_record(far, "t")  # the real wall clock
    assert isinstance(result, Reject) and result.code == "future_timestamp"
    assert not isinstance(normalize_record(at(timedelta(hours=2)), "t", 7201, clock), Reject)
    assert not isinstance(normalize_record(far, "t", max_future_skew=None), Reject)
    with pytest.raises(ValueError):
        normalize_record(at(timedelta(0)), "t", max_future_skew=-1)
    with pytest.raises(ValueError):
        future_limit(float("nan"))


def test_default_clock_limit_is_the_wall_clock_plus_skew() -> None:
    before = datetime.now(UTC)
    limit = future_limit(60.0)
    after = datetime.now(UTC)
    assert before + timedelta(seconds=59) <= limit <= after + timedelta(seconds=60)


def test_iter_records_passes_skew_and_clock(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(line(message(at(timedelta(0), "r1"), at(timedelta(hours=1), "r2"))))
    rejects: list[Reject] = []
    records = list(iter_records([str(path)], rejects.append, now=clock))
    assert [r["request_id"] for r in records] == ["r1"]
    assert [r.code for r in rejects] == ["future_timestamp"]
    assert len(list(iter_records([str(path)], now=clock, max_future_skew=3600))) == 2


# --- the bridge ----------------------------------------------------------------------------

def raw(*records: dict[str, Any], offset: int = 5) -> KafkaSourceMessage[bytes, bytes]:
    return KafkaSourceMessage(key=b"eh", value=json.dumps(message(*records)).encode(),
                              topic="raw", partition=0, offset=offset)


def test_bridge_dead_letters_one_future_record_and_bridges_its_neighbours() -> None:
    """The smallest case of issue 8.2: three good records and one two hours ahead."""
    counters = BridgeCounters()
    records = [at(timedelta(minutes=-1), "r1"), at(timedelta(minutes=-1), "r2"),
               at(timedelta(hours=2), "r3"), at(timedelta(minutes=-1), "r4")]
    out = bridge_message(raw(*records), TOPICS, None, counters, clock)
    good = [m for is_activity, m in out if is_activity]
    letters = [json.loads(m.value) for is_activity, m in out if not is_activity]
    assert len(good) == 3
    assert [(d["reason"].split(":")[0], d["source"]) for d in letters] == [
        ("future_timestamp", "raw/0/5#2")]
    assert counters.summary() == ("1 inputs, 3 bridged, 1 rejected (future_timestamp 1), "
                                  "0 duplicates")


def test_bridge_skew_is_a_parameter() -> None:
    counters = BridgeCounters()
    out = bridge_message(raw(at(timedelta(hours=2))), TOPICS, None, counters, clock, 3 * 3600)
    assert [is_activity for is_activity, _ in out] == [True]


def test_lone_surrogate_is_an_invalid_text_dead_letter_not_an_internal_error() -> None:
    counters = BridgeCounters()
    bad = at(timedelta(0), "r2", userAgent="bad \ud800 agent")
    out = bridge_message(raw(at(timedelta(0), "r1"), bad, at(timedelta(0), "r3")), TOPICS, None,
                         counters, clock)
    assert counters.summary() == "1 inputs, 2 bridged, 1 rejected (invalid_utf8 1), 0 duplicates"
    letter = json.loads(next(m.value for is_activity, m in out if not is_activity))
    assert letter["reason"] == "invalid_utf8: userAgent holds a lone surrogate"
    assert '"userAgent": "bad \\ud800 agent"' in letter["raw"]  # the JSON escape, as sent


def test_lone_surrogate_in_a_uri_or_id_and_in_the_source_name() -> None:
    for field in ("requestUri", "requestId", "location"):
        record = at(timedelta(0))
        record["properties"][field] = "x\udc80y"
        result = normalize_record(record, "in\udcff.json:1", now=clock)
        assert isinstance(result, Reject) and result.code == "invalid_utf8", field
        json.dumps(result.to_json(), ensure_ascii=False).encode("utf-8")  # always encodable
        assert result.source == "in\\udcff.json:1"


def test_bridge_file_mode_summary_of_inputs_without_records(tmp_path: Path) -> None:
    config = config_from_dict({})
    for name, content in (("array.json", b"[]\n"), ("message.json", b'{"records": []}\n'),
                          ("tables.json", b'{"tables": []}')):
        path = tmp_path / name
        path.write_bytes(content)
        out: list[Any] = []
        built = build_bridge_flow(config, FilesSource([str(path)]), TestingSink(out),
                                  TestingSink(out), flow_id=f"bridge_{path.stem}")
        run_main(built.flow)  # type: ignore[no-untyped-call]
        assert out == []
        assert built.counters.summary() == "0 inputs, 0 bridged, 0 rejected, 0 duplicates"


def test_truncated_records_are_counted_by_the_bridge() -> None:
    counters = BridgeCounters()
    out = bridge_message(raw(at(timedelta(0), userAgent="u" * 2000)), TOPICS, None, counters,
                         clock)
    assert [is_activity for is_activity, _ in out] == [True]
    assert counters.summary() == "1 inputs, 1 bridged, 0 rejected, 0 duplicates, 1 truncated"
    merged = BridgeCounters.from_dict(counters.as_dict())
    assert merged.truncated == 1


# --- graphsentry normalize ---------------------------------------------------------------------

def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "graphsentry.cli", "normalize", *args],
                          input=stdin, capture_output=True, cwd=ROOT, check=False)


def now_record(offset: timedelta, request: str) -> dict[str, Any]:
    stamp = format_timestamp(datetime.now(UTC) + offset)
    return eh_record(top={"time": stamp}, timeGenerated=stamp, requestId=request)


@pytest.mark.parametrize("content", [b"[]", b'{"records": []}', b"[]\n", b'{"records": []}\n'])
def test_normalize_prints_a_summary_for_inputs_without_records(content: bytes,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(content)
    for args, stdin in (((str(path),), b""), (("-",), content)):
        done = run_cli(*args, stdin=stdin)
        assert done.returncode == 0
        assert done.stdout == b""
        assert done.stderr.decode() == (
            "normalized 0 records, rejected 0 (reasons: none), duplicates 0\n")


def test_normalize_max_future_skew_option(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(line(message(now_record(timedelta(minutes=-5), "past"),
                                  now_record(timedelta(hours=2), "ahead"))))

    def summary(done: subprocess.CompletedProcess[bytes]) -> str:
        return done.stderr.decode().strip()

    assert summary(run_cli(str(path))) == (
        "normalized 1 records, rejected 1 (reasons: future_timestamp 1), duplicates 0")
    assert summary(run_cli(str(path), "--max-future-skew", "10800")).startswith(
        "normalized 2 records, rejected 0")
    assert summary(run_cli(str(path), "--max-future-skew", "off")).startswith(
        "normalized 2 records, rejected 0")
    bad = run_cli(str(path), "--max-future-skew", "-3")
    assert bad.returncode == 2 and b"must be 0-315360000 seconds" in bad.stderr


def test_normalize_help_states_the_default_skew() -> None:
    help_text = " ".join(run_cli("--help").stdout.decode().split())
    assert f"default {MAX_FUTURE_SKEW_SECONDS:g} = 15 min" in help_text


def test_normalize_counts_truncated_records(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(line(message(eh_record(userAgent="u" * 3000), eh_record(requestId="r2"))))
    done = run_cli(str(path))
    assert done.stderr.decode().strip() == (
        "normalized 2 records, rejected 0 (reasons: none), duplicates 0, truncated 1")
    first = json.loads(done.stdout.splitlines()[0])
    assert first["truncated_fields"] == {"user_agent": 3000}
    assert first["source"] == "MicrosoftGraphActivityLogs"
