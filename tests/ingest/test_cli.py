import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphsentry.avro import encode_activity, record_from_json
from graphsentry.cli import main
from schemas import field_names
from tests.ingest.factory import FIXTURES, eh_record, line, message

ROOT = Path(__file__).parents[2]


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "graphsentry.cli", "normalize", *args],
                          input=stdin, capture_output=True, cwd=ROOT, check=False)


def test_records_out_rejects_counted_on_stderr() -> None:
    done = run_cli(str(FIXTURES / "eventhub_messages.jsonl"))
    assert done.returncode == 0
    records = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(records) == 4
    for record in records:
        assert set(record) == set(field_names("graph_activity"))
        assert record["time_generated"].endswith("Z")
        encode_activity(record_from_json(record))  # valid for the wire schema
    assert done.stderr.decode().strip() == (
        "normalized 4 records, rejected 3 (reasons: invalid_json 1, missing_field 1, "
        "not_an_object 1), duplicates 0")


def test_rejects_file_and_duplicates(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    paths = [str(FIXTURES / "eventhub_message_pretty.json"), str(FIXTURES / "storage_PT1H.json")]
    done = run_cli(*paths, "--rejects", str(rejects))
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 4  # 3 + 3 deliveries, 2 of them repeated
    assert "duplicates 2" in done.stderr.decode()
    assert rejects.read_text() == ""
    done = run_cli(*paths, "--no-dedup")
    assert len(done.stdout.splitlines()) == 6


def test_rejects_written_as_json_lines(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    assert main(["normalize", str(FIXTURES / "log_analytics.csv"), "--rejects", str(rejects)]) == 0
    [reject] = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert reject["reason"].startswith("bad_timestamp: ")
    assert reject["source"].endswith("log_analytics.csv:4")
    assert "not a time" in reject["raw"]


def test_gzip_on_stdin() -> None:
    data = gzip.compress(line(message(eh_record(requestId="r1"), eh_record(requestId="r2"))))
    done = run_cli("-", stdin=data)
    assert [json.loads(x)["request_id"] for x in done.stdout.splitlines()] == ["r1", "r2"]
    assert done.returncode == 0


def test_unreadable_input_is_still_exit_zero() -> None:
    done = run_cli("-", stdin=b"\x00\x01 binary junk\n\xff\n")
    assert done.returncode == 0
    assert done.stdout == b""
    assert "rejected 2" in done.stderr.decode()


@pytest.mark.parametrize("path", ["/no/such/file.json", "/"])
def test_missing_file_exits_2_with_a_clear_message(path: str) -> None:
    done = run_cli(str(FIXTURES / "storage_PT1H.json"), path)
    assert done.returncode == 2
    assert done.stdout == b""
    assert f"cannot read {path}" in done.stderr.decode()
