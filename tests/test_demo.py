"""``graphsentry demo`` end to end, as a user runs it: a subprocess, no Kafka, Redis or Docker.

Checks what the demo promises: the attack chain becomes an incident, every detector a labeled
attack expects fires on that attack, and no alert on a benign look-alike's principal at any
time (issue 12: today's detectors still alert on the backup app, so that test is an expected
failure until the new detection model lands).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from graphsentry.backtest.matching import load_labels, match_alerts

TIME_LIMIT_S = 60.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, float]:
    folder = tmp_path_factory.mktemp("demo")
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "demo", "--keep",
                           str(folder)], capture_output=True, text=True, timeout=300,
                          check=False)
    elapsed = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    return done.stdout, folder, elapsed


def alerts_of(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_demo_runs_within_a_minute_and_prints_every_part(
        demo: tuple[str, Path, float]) -> None:
    out, _folder, elapsed = demo
    assert elapsed < TIME_LIMIT_S
    for heading in ("== simulated tenant", "alerts ==", "== the story", "== backtest against"):
        assert heading in out
    assert "\x1b[" not in out  # not a terminal: no colour


@pytest.mark.slow
def test_the_attack_chain_is_told_as_an_incident(demo: tuple[str, Path, float]) -> None:
    out, folder, _elapsed = demo
    labels = load_labels(folder / "activity.jsonl.labels.json")
    chain = next(s for s in labels.attacks if "attack_chain" in s.expected_detectors)
    assert "INCIDENT 1:" in out
    story = out[out.index("== the story"):out.index("== backtest against")]
    incidents = story.split("INCIDENT ")[1:]
    assert any(f"principal  {chain.principal_id}" in text for text in incidents)


@pytest.mark.slow
def test_every_expected_detector_fires_on_its_attack(demo: tuple[str, Path, float]) -> None:
    _out, folder, _elapsed = demo
    labels = load_labels(folder / "activity.jsonl.labels.json")
    matched = match_alerts(alerts_of(folder), labels)
    for scenario in labels.attacks:
        fired = {m.detector for m in matched if m.outcome == "tp" and m.scenario == scenario}
        missing = set(scenario.expected_detectors) - fired
        assert not missing, f"{scenario.name}: no alert from {sorted(missing)}"


@pytest.mark.slow
@pytest.mark.xfail(reason="issue 12: today's detectors alert on the benign backup app's first "
                   "night; every alert on a benign principal counts, at any time", strict=False)
def test_no_benign_look_alike_is_alerted(demo: tuple[str, Path, float]) -> None:
    _out, folder, _elapsed = demo
    labels = load_labels(folder / "activity.jsonl.labels.json")
    matched = match_alerts(alerts_of(folder), labels)
    benign = sorted({f"{m.scenario.name}:{m.detector}" for m in matched
                     if m.outcome == "benign" and m.scenario is not None})
    assert benign == [], f"benign look-alikes alerted: {benign}"
