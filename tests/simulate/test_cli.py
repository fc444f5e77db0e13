"""``graphsentry simulate`` end to end: determinism, files, errors, progress line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from graphsentry.cli import main
from graphsentry.progress import Progress

SMALL = ["--users", "20", "--days", "2", "--scenario", "mi_token_theft_chain",
         "--scenario", "backup_downloads"]


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / name
    assert main(["simulate", "--out", str(out), *SMALL, *extra]) == 0
    return out


def test_same_seed_and_arguments_give_byte_identical_output(tmp_path: Path) -> None:
    first, second = _run(tmp_path, "a.jsonl"), _run(tmp_path, "b.jsonl")
    assert first.read_bytes() == second.read_bytes()
    labels_a = Path(f"{first}.labels.json").read_bytes()
    assert labels_a == Path(f"{second}.labels.json").read_bytes()
    other = _run(tmp_path, "c.jsonl", "--seed", "8")
    assert other.read_bytes() != first.read_bytes()


def test_output_lines_are_event_hub_messages(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(tmp_path, "run.jsonl", "--records-per-message", "25", "--start", "2026-12-07")
    lines = out.read_text(encoding="utf-8").splitlines()
    bodies = [json.loads(line) for line in lines]
    assert all(list(body) == ["records"] and 1 <= len(body["records"]) <= 25 for body in bodies)
    assert bodies[0]["records"][0]["time"].startswith("2026-12-07")
    labels = json.loads(Path(f"{out}.labels.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in labels["scenarios"]] == ["mi_token_theft_chain",
                                                        "backup_downloads"]
    summary = capsys.readouterr().err
    assert f"in {len(lines)} messages" in summary and "2 scenarios" in summary


def test_stdout_output_without_labels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", "-", "--users", "20", "--days", "1",
                 "--scenario", "delta_sync"]) == 0
    captured = capsys.readouterr()
    assert all(json.loads(line)["records"] for line in captured.out.splitlines())
    assert "labels: not written" in captured.err


def test_benchmark_profile_writes_labels_with_principal_days(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.jsonl"
    assert main(["simulate", "--profile", "benchmark", "--users", "120", "--days", "5",
                 "--scenario", "tap_for_admin", "--scenario", "ci_self_rotation",
                 "--out", str(out)]) == 0
    labels = json.loads(Path(f"{out}.labels.json").read_text(encoding="utf-8"))
    assert labels["run"]["profile"] == "benchmark" and labels["run"]["days"] == 5
    assert [s["name"] for s in labels["scenarios"]] == ["tap_for_admin", "ci_self_rotation"]
    assert labels["scenarios"][1]["prior_runs"] == 4  # Monday to Thursday before Friday
    err = capsys.readouterr().err
    assert f"over {labels['run']['principal_days']} principal-days" in err


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "nope"], "unknown scenario"),
    (["--users", "3"], "users must be"),
    (["--profile", "benchmark", "--days", "3"], "days must be between 5"),
    (["--bootstrap", "127.0.0.1:9092"], "--bootstrap and --config apply with --kafka-topic only"),
    (["--config", "kafka.yaml"], "--bootstrap and --config apply with --kafka-topic only"),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path: Path, argv: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path / "x.jsonl"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("argv, message", [
    (["--days", "0"], "days must be between 1 and 60 for the demo profile, got 0"),
    (["--users", "0"], "users must be between 20 and 5000 for the demo profile, got 0"),
    (["--profile", "benchmark", "--days", "0"],
     "days must be between 5 and 60 for the benchmark profile, got 0"),
])
def test_zero_is_rejected_not_read_as_the_default(tmp_path: Path, argv: list[str],
                                                  message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path / "x.jsonl"), *argv]) == 2
    assert capsys.readouterr().err == f"graphsentry simulate: error: {message}\n"
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("value", ["0", "-1", "301"])
def test_kafka_timeout_out_of_librdkafkas_range_is_a_usage_error(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--out", "-", "--kafka-timeout", value])
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(
        "graphsentry simulate: error: argument --kafka-timeout: must be between 0.01 and 300 "
        f"seconds: {value}\n")


def test_unreachable_broker_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    # port 9 (discard) on localhost: nothing listens, the connection is refused at once
    code = main(["simulate", "--users", "20", "--days", "1", "--scenario", "delta_sync",
                 "--kafka-topic", "graph.activity.raw", "--bootstrap", "127.0.0.1:9",
                 "--kafka-timeout", "1"])
    assert code == 2
    assert ("graphsentry simulate: error: cannot reach Kafka (output) at 127.0.0.1:9 within 1s"
            in capsys.readouterr().err)


def test_progress_draws_and_summarises_only_when_enabled() -> None:
    stream = io.StringIO()
    with Progress(3, "work", stream=stream, force=True, max_rate=1e9) as progress:
        for _ in range(3):
            progress.advance()
    text = stream.getvalue()
    final = text.split("\r\x1b[2K")[-1]
    assert "work: 1/3" in text
    assert final.startswith("work: 3/3 (100.0%)") and final.endswith("s\n")
    quiet = io.StringIO()  # a StringIO is not a terminal: disabled unless forced
    with Progress(3, "work", stream=quiet) as progress:
        progress.advance(3)
    assert quiet.getvalue() == "" and progress.done == 3
