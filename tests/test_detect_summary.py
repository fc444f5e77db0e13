"""The summary lines of ``graphsentry detect`` say which stage each count belongs to: what ingest
dropped (rejects, duplicate deliveries) and what the detection engine dropped (too late,
duplicates, rejects), so ``0 duplicates`` next to dropped deliveries reads as no contradiction."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphsentry.cli import main
from graphsentry.detection import DetectStats
from tests.ingest.factory import eh_record, line


def test_detect_stats_summary_names_the_detection_stage() -> None:
    stats = DetectStats(events=10, late=1, duplicates=2, rejects=3, suppressed=1,
                        signals={"new_origin": 4}, alert_updates=5, elapsed=2.0)
    stats.alerts.update({"principal_risk": 1})
    assert stats.summary() == ("10 events (5/s); detection: 1 too late, 2 duplicates, "
                               "3 rejected by the engine; 4 signal emissions (1 suppressed), "
                               "1 alerts (5 versions)")


def test_detect_prints_ingest_and_detection_counts_apart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRAPHSENTRY_CONFIG", raising=False)
    good = line(eh_record(requestId="r1"))
    source = tmp_path / "bad.jsonl"
    source.write_bytes(good + good + line(eh_record(requestId="r2")) + b"[1]\n3\n{bad\n")
    assert main(["detect", str(source), "--alerts-out", str(tmp_path / "alerts.jsonl")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == ("ingest: 3 rejected (not_an_object 2, invalid_json 1), "
                        "1 duplicate deliveries dropped")
    assert re.fullmatch(r"graphsentry detect: 2 events \([\d,]+/s\); detection: 0 too late, "
                        r"0 duplicates, 0 rejected by the engine; 0 signal emissions "
                        r"\(0 suppressed\), 0 alerts \(0 versions\) in \d+\.\ds", lines[1])
