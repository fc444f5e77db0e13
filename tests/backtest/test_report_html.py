"""The HTML report: self-contained, alerts counted for precision, signals on the timeline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from graphsentry.backtest.matching import parse_labels
from graphsentry.backtest.metrics import compute_metrics
from graphsentry.backtest.report_html import render_report
from tests.backtest.factory import ATTACKER, MONITOR, T0, labels_json, signal
from tests.backtest.test_metrics import todays_alerts as sample_alerts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]


def report(two_configs: bool = False) -> str:
    labels = parse_labels(labels_json())
    runs = [compute_metrics(sample_alerts(), labels, events=10_000, name="base")]
    if two_configs:
        runs.append(compute_metrics(sample_alerts()[:3], labels, events=10_000, name="strict"))
    return render_report(runs, labels, title="t <&> report")


def test_report_is_self_contained() -> None:
    text = report()
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert re.findall(r'(?:src|href)="', text) == []
    assert set(re.findall(r"https?://[^\"' ]+", text)) == {"http://www.w3.org/2000/svg"}
    assert "t &lt;&amp;&gt; report" in text


def test_timeline_has_a_row_per_scenario_and_a_marker_per_alert() -> None:
    text = report()
    for name in ("mi_attack (attack)", "monitor (benign)", "unlabeled 66666666-6666-6666"):
        assert name in text
    alerts = sample_alerts()
    for alert in alerts:
        assert f"alert_id {alert['alert_id']}" in text
    assert text.count("<svg xmlns=") == 1


def test_signals_are_ticks_on_their_principals_row_and_precision_counts_alerts() -> None:
    labels = parse_labels(labels_json())
    sigs = [signal("graph_enumeration", ATTACKER, T0), signal("mailbox_enumeration", MONITOR, T0)]
    text = render_report([compute_metrics(sample_alerts(), labels, events=10, signals=sigs)],
                         labels)
    for item in sigs:
        assert f"signal {item['detector']}" in text and item["signal_id"] in text
    assert "precision: 57.1% (4 of 7 alerts within attacks)" in text


def test_two_configurations_are_compared() -> None:
    text = report(two_configs=True)
    assert "Comparison: base vs strict" in text
    assert "-100.0pp" in text  # attack_chain recall lost in the second configuration
    assert text.count("<svg xmlns=") == 2


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report(two_configs=True), encoding="utf-8")
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    assert CHROMIUM is not None
    dom = subprocess.run([CHROMIUM, *HEADLESS, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") >= 2 and "mi_attack (attack)" in dom
    sizes = {}
    for name, source in (("report", page), ("blank", blank)):
        shot = tmp_path / f"{name}.png"
        subprocess.run([CHROMIUM, *HEADLESS, f"--screenshot={shot}", "--window-size=1400,900",
                        source.as_uri()], capture_output=True, timeout=120, check=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[name] = shot.stat().st_size
    assert sizes["report"] > 10 * sizes["blank"]  # tables and timeline drawn, not a blank page
