"""``graphsentry demo`` end to end, as a user runs it: a subprocess, no Kafka, Redis or Docker.

Checks what the demo promises: the attack chain becomes an incident, every labeled attack has an
alert, every detector it expects gives a signal on it, and no alert on a benign look-alike's
principal at any time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graphsentry.alerts import latest_versions
from graphsentry.backtest.matching import load_labels, match_alerts, match_findings
from graphsentry.backtest.streams import fold_signals


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``graphsentry demo --keep`` as a user runs it (the timeout only guards against a hang:
    how long the demo takes is printed by the demo itself, not asserted here)."""
    folder = tmp_path_factory.mktemp("demo")
    done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "demo", "--keep",
                           str(folder)], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout, folder


def alerts_of(folder: Path, name: str = "alerts.jsonl") -> list[dict[str, Any]]:
    """The latest version of each alert (or signal) the demo kept."""
    lines = (folder / name).read_text(encoding="utf-8").splitlines()
    key = "alert_id" if name == "alerts.jsonl" else "signal_id"
    return [dict(item) for item in latest_versions([json.loads(line) for line in lines], key)]


@pytest.mark.slow
def test_demo_prints_every_part(demo: tuple[str, Path]) -> None:
    out, _folder = demo
    for heading in ("== simulated tenant", " alerts (", "== the story", "== backtest against"):
        assert heading in out
    assert "\x1b[" not in out  # not a terminal: no colour


@pytest.mark.slow
def test_the_attack_chain_is_told_as_an_incident(demo: tuple[str, Path]) -> None:
    out, folder = demo
    labels = load_labels(folder / "activity.jsonl.labels.json")
    chain = next(s for s in labels.attacks if s.name == "mi_token_theft_chain")
    story = out[out.index("== the story"):out.index("== backtest against")]
    block = story[story.index(f"principal {chain.principal_id}"):]
    block = block[:block.find("=" * 20, 1)] if "=" * 20 in block[1:] else block
    assert "INCIDENT " in block and "Attack chain: " in block
    incident = next(a for a in alerts_of(folder) if a["kind"] == "incident")
    assert incident["principal_id"] == chain.principal_id and incident["final"]
    assert incident["stages"][0] in ("initial_access", "discovery")
    assert {"discovery", "collection", "exfiltration", "persistence"} <= set(incident["stages"])


@pytest.mark.slow
def test_every_attack_alerts_and_every_expected_detector_signals(
        demo: tuple[str, Path]) -> None:
    _out, folder = demo
    labels = load_labels(folder / "activity.jsonl.labels.json")
    alerted = match_alerts(alerts_of(folder), labels)
    signalled = match_findings(fold_signals(alerts_of(folder, "signals.jsonl")), labels)
    for scenario in labels.attacks:
        assert any(m.outcome == "tp" and m.scenario == scenario for m in alerted), \
            f"{scenario.name}: no alert"
        fired = {m.detector for m in signalled if m.outcome == "tp" and m.scenario == scenario}
        missing = set(scenario.expected_detectors) - fired
        assert not missing, f"{scenario.name}: no signal from {sorted(missing)}"


@pytest.mark.slow
def test_no_benign_look_alike_is_alerted(demo: tuple[str, Path]) -> None:
    _out, folder = demo
    labels = load_labels(folder / "activity.jsonl.labels.json")
    matched = match_alerts(alerts_of(folder), labels)
    benign = sorted({f"{m.scenario.name}:{m.detector}" for m in matched
                     if m.outcome == "benign" and m.scenario is not None})
    assert benign == [], f"benign look-alikes alerted: {benign}"
