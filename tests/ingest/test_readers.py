"""Delivery-shape detection and reader-level rejects."""

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graphsentry.errors import GraphsentryError
from graphsentry.ingest import iter_records, normalize_candidates
from graphsentry.ingest.limits import MAX_LINE_BYTES, MAX_RECORD_BYTES
from graphsentry.ingest.readers import iter_candidates, iter_stream, parse_payload
from graphsentry.ingest.reject import Reject
from tests.ingest.factory import FIXTURES, REMOVE, eh_record, line, message


def collect(items: Any) -> tuple[list[tuple[object, str]], list[Reject]]:
    good: list[tuple[object, str]] = []
    bad: list[Reject] = []
    for item in items:
        (bad if isinstance(item, Reject) else good).append(item)
    return good, bad


def from_bytes(data: bytes, name: str = "in") -> tuple[list[tuple[object, str]], list[Reject]]:
    return collect(iter_stream(io.BytesIO(data), name))


def rid(n: int) -> dict[str, Any]:
    return eh_record(requestId=f"r{n}")


def request_ids(items: list[tuple[object, str]]) -> list[str]:
    return [obj["properties"]["requestId"] for obj, _ in items]  # type: ignore[index]


def test_event_hub_message_per_line_with_sources() -> None:
    good, bad = from_bytes(line(message(rid(1), rid(2))) + line(message(rid(3))))
    assert request_ids(good) == ["r1", "r2", "r3"]
    assert [source for _, source in good] == ["in:1#0", "in:1#1", "in:2#0"]
    assert bad == []


def test_storage_lines_with_crlf_and_no_final_newline() -> None:
    data = b"\r\n".join(json.dumps(rid(n)).encode() for n in range(3))
    good, _ = from_bytes(data)
    assert request_ids(good) == ["r0", "r1", "r2"]
    assert [s for _, s in good] == ["in:1", "in:2", "in:3"]


def test_whole_file_message_array_and_pretty_printed_message() -> None:
    good, _ = from_bytes(json.dumps([message(rid(1)), message(rid(2), rid(3))]).encode())
    assert request_ids(good) == ["r1", "r2", "r3"]
    assert [s for _, s in good] == ["in:1#0#0", "in:1#1#0", "in:1#1#1"]
    good, _ = from_bytes(b"\n\n" + json.dumps(message(rid(4), rid(5)), indent=2).encode())
    assert request_ids(good) == ["r4", "r5"]
    assert [s for _, s in good] == ["in:3#0", "in:3#1"]


def test_json_array_of_records_and_bom() -> None:
    good, _ = from_bytes(b"\xef\xbb\xbf" + json.dumps([rid(1), rid(2)], indent=1).encode())
    assert [s for _, s in good] == ["in:1#0", "in:1#1"]


def test_gzip_detected_by_magic_bytes() -> None:
    good, bad = from_bytes(gzip.compress(line(message(rid(1), rid(2)))), "x.json")
    assert request_ids(good) == ["r1", "r2"] and bad == []


def test_truncated_gzip_keeps_what_was_read_and_rejects_the_rest() -> None:
    data = b"".join(line(rid(n)) for n in range(2000))
    good, bad = from_bytes(gzip.compress(data)[:-40])
    assert len(good) > 1000
    assert [r.code for r in bad] == ["invalid_gzip"]


def test_one_bad_line_does_not_drop_its_neighbours() -> None:
    data = line(rid(1)) + b"{not json\n" + b'{"a": "\xff\xfe"}\n' + line(rid(2)) + b"   \n"
    good, bad = from_bytes(data)
    assert request_ids(good) == ["r1", "r2"]
    assert [(r.code, r.source) for r in bad] == [("invalid_json", "in:2"), ("invalid_utf8", "in:3")]
    assert bad[0].raw == "{not json\n"


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"a": "x\x01y"}\n', "invalid_json: Invalid control character at line 1 column 9"),
    (b"{not json\n", "invalid_json: Expecting property name enclosed in double quotes at "
                     "line 1 column 2"),
])
def test_invalid_json_reason_names_the_place_once(data: bytes, reason: str) -> None:
    _, bad = from_bytes(data)
    assert [r.to_json()["reason"] for r in bad] == [reason]


def test_broken_first_line_falls_back_to_json_lines() -> None:
    good, bad = from_bytes(b'{"records": [\n' + line(rid(1)) + line(rid(2)))
    assert request_ids(good) == ["r1", "r2"]
    assert [(r.code, r.source) for r in bad] == [("invalid_json", "in:1")]


def test_deeply_nested_line_is_too_deep_not_a_crash() -> None:
    good, bad = from_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n" + line(rid(1)))
    assert request_ids(good) == ["r1"]
    assert [r.code for r in bad] == ["too_deep"]


def test_line_too_large_is_skipped_whole() -> None:
    huge = b'{"x": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n'
    good, bad = from_bytes(line(rid(1)) + huge + line(rid(2)))
    assert request_ids(good) == ["r1", "r2"]
    assert [(r.code, r.source) for r in bad] == [("line_too_large", "in:2")]
    assert len(bad[0].raw) == 4096


def test_record_too_large_inside_a_large_message_spares_its_neighbours() -> None:
    big = eh_record(requestId="big", atContent="a" * MAX_RECORD_BYTES)
    good, bad = from_bytes(line(message(rid(1), big, rid(2))))
    assert request_ids(good) == ["r1", "r2"]
    assert [(r.code, r.source) for r in bad] == [("record_too_large", "in:1#1")]
    good, bad = from_bytes(line(big))
    assert good == [] and [r.code for r in bad] == ["record_too_large"]


def test_records_that_is_not_an_array() -> None:
    _, bad = from_bytes(line({"records": {"a": 1}}))
    assert [r.reason for r in bad] == ["bad_type: records is not an array"]


def test_csv_log_analytics_export() -> None:
    good, bad = collect(iter_candidates([str(FIXTURES / "log_analytics.csv")]))
    assert bad == []
    first, source = good[0]
    assert isinstance(first, dict)
    assert first["TimeGenerated"] == "3/2/2026, 8:10:00.123 AM"  # " [UTC]" header suffix dropped
    assert first["UserAgent"] == 'Mozilla/5.0 (X11; Linux x86_64), "quoted"'
    assert source.endswith("log_analytics.csv:2")


def test_csv_rows_are_independent() -> None:
    header = (b"TimeGenerated,RequestId,RequestMethod,RequestUri,ResponseStatusCode,"
              b"AadTenantId,AppId,UserAgent\n")
    base = b"2026-03-02T08:00:00Z,r%d,GET,https://graph.microsoft.com/v1.0/users,200,t,a,"
    data = header + (base % 1) + b"ok\n" + (base % 2) + b"bad \xff\n" + b'"unterminated\n'
    rejects: list[Reject] = []
    records = list(normalize_candidates(iter_stream(io.BytesIO(data), "in"), rejects.append))
    assert [r["request_id"] for r in records] == ["r1"]
    assert [(r.code, r.source) for r in rejects] == [("invalid_utf8", "in:3"),
                                                      ("invalid_csv", "in:4")]


def test_malformed_csv_row_between_good_rows() -> None:
    good, bad = from_bytes(b'A,B\n1,2\n"x"y,3\n4,5\n')
    assert good == [({"A": "1", "B": "2"}, "in:2"), ({"A": "4", "B": "5"}, "in:4")]
    assert [(r.code, r.raw, r.source) for r in bad] == [("invalid_csv", '"x"y,3\n', "in:3")]


@pytest.mark.parametrize("name", ["eventhub_message_pretty.json", "eventhub_messages.jsonl",
                                  "eventhub_messages_array.json", "storage_PT1H.json",
                                  "log_analytics.json", "log_analytics.csv"])
def test_every_fixture_shape_yields_records(name: str) -> None:
    good, _ = collect(iter_candidates([str(FIXTURES / name)]))
    assert len(good) >= 2


def test_fixture_counts_across_shapes() -> None:
    rejects: list[Reject] = []
    duplicates: list[dict[str, Any]] = []
    paths = sorted(str(p) for p in FIXTURES.iterdir())
    records = list(iter_records(paths, rejects.append, on_duplicate=duplicates.append))
    assert sorted(r.code for r in rejects) == [
        "bad_timestamp", "invalid_json", "missing_field", "not_an_object"]
    # Five distinct Event Hub requests repeat across the four Event Hub/storage fixtures
    # (3 + 4 + 3 + 3 valid deliveries = 13, so 8 duplicates); the 4 Log Analytics rows are unique.
    assert len({(r["request_id"], r["time_generated"]) for r in records}) == len(records) == 9
    assert len(duplicates) == 8


def test_missing_file_is_an_error() -> None:
    with pytest.raises(GraphsentryError, match="cannot read /no/such/file"):
        list(iter_candidates(["/no/such/file"]))


def test_stdin_is_read_for_dash(tmp_path: Path) -> None:
    script = ("import sys, json; from graphsentry.ingest.readers import iter_candidates; "
              "print(json.dumps([s for _, s in iter_candidates(['-'])]))")
    data = gzip.compress(line(message(rid(1), rid(2))))
    done = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True,
                          check=True, cwd=Path(__file__).parents[2])
    assert json.loads(done.stdout) == ["<stdin>:1#0", "<stdin>:1#1"]


# --- parse_payload: one Kafka message value -------------------------------------------------

def test_payload_event_hub_message() -> None:
    good, bad = collect(parse_payload(json.dumps(message(rid(1), "x", rid(2))).encode(), "t/0/5"))
    assert [s for _, s in good] == ["t/0/5#0", "t/0/5#1", "t/0/5#2"]
    assert bad == []


def test_payload_gzip_json_lines_and_garbage() -> None:
    good, _ = collect(parse_payload(gzip.compress(line(rid(1)) + line(rid(2))), "t/0/6"))
    assert [s for _, s in good] == ["t/0/6:1", "t/0/6:2"]
    _, bad = collect(parse_payload(b"\x1f\x8bgarbage", "t/0/7"))
    assert [r.code for r in bad] == ["invalid_gzip"]
    _, bad = collect(parse_payload(b"\xff\xfe{}", "t/0/8"))
    assert [r.code for r in bad] == ["invalid_utf8"]
    _, bad = collect(parse_payload(b"", "t/0/9"))
    assert [r.code for r in bad] == ["invalid_json"]


def test_payload_size_limits() -> None:
    _, bad = collect(parse_payload(b" " * (MAX_LINE_BYTES + 1), "t/0/1"))
    assert [r.code for r in bad] == ["line_too_large"]
    bomb = gzip.compress(b"[" + b" " * (MAX_LINE_BYTES + 10) + b"]")
    _, bad = collect(parse_payload(bomb, "t/0/2"))
    assert [r.code for r in bad] == ["line_too_large"]


def test_payload_missing_field_record_is_a_candidate_for_normalize() -> None:
    good, _ = collect(parse_payload(json.dumps(eh_record(requestId=REMOVE)).encode(), "t/0/3"))
    assert len(good) == 1
