"""Backtests on simulated data: determinism of alert ids and the command's outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graphsentry.config import config_from_dict
from graphsentry.detection import run_embedded
from graphsentry.ingest import iter_records


def alert_ids(records: list[dict[str, Any]], batch_size: int) -> list[str]:
    config = config_from_dict({"bytewax": {"batch_size": batch_size}}, env={})
    alerts: list[dict[str, Any]] = []
    run_embedded(records, config, on_alert=alerts.append)
    return sorted(a["alert_id"] for a in alerts)


@pytest.mark.slow
def test_same_alert_ids_whatever_the_batch_size(simulated: tuple[Path, Path]) -> None:
    records = list(iter_records([str(simulated[0])]))
    big = alert_ids(records, 5000)
    assert big, "the attack day should raise alerts"
    assert alert_ids(records, 7) == big


@pytest.mark.slow
def test_backtest_command_compares_two_configurations(simulated: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    raw, labels = simulated
    base = tmp_path / "base.yaml"
    base.write_text("detectors:\n  enabled: all\n", encoding="utf-8")
    fewer = tmp_path / "no_chain.yaml"
    fewer.write_text("detectors:\n  enabled: [graph_enumeration, new_origin]\n",
                     encoding="utf-8")
    metrics, report = tmp_path / "m.json", tmp_path / "r.html"
    done = subprocess.run(
        [sys.executable, "-m", "graphsentry.cli", "backtest", "--input", str(raw),
         "--labels", str(labels), "--config", str(base), "--config", str(fewer),
         "--json", str(metrics), "--html", str(report)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "== base vs no_chain ==" in done.stdout
    document = json.loads(metrics.read_text(encoding="utf-8"))
    first, second = document["runs"]
    assert first["events"] == second["events"] > 10_000
    assert first["overall"]["expected"] == second["overall"]["expected"] > 0
    assert second["overall"]["recall"] < first["overall"]["recall"]
    credential = {row["detector"]: row for row in document["comparison"]}["app_credential_added"]
    assert credential["recall_a"] == "100.0%" and credential["recall_b"] == "0.0%"
    html = report.read_text(encoding="utf-8")
    assert "Comparison: base vs no_chain" in html and html.count("<svg xmlns=") == 2


def test_backtest_argument_errors(simulated: tuple[Path, Path], tmp_path: Path) -> None:
    raw, labels = simulated

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "graphsentry.cli", "backtest", *args],
                              capture_output=True, text=True, timeout=120, check=False)

    no_range = run("--topic", "graph.activity.v1", "--labels", str(labels))
    assert no_range.returncode == 2 and "--topic needs --from and --to" in no_range.stderr
    bad_labels = tmp_path / "bad.json"
    bad_labels.write_text('{"scenarios": [{"name": "x"}]}', encoding="utf-8")
    invalid = run("--input", str(raw), "--labels", str(bad_labels))
    assert invalid.returncode == 2 and "missing kind" in invalid.stderr
