from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from graphsentry.story import key_evidence, render_story
from tests.backtest.factory import ATTACKER, MONITOR, T0, alert

MINUTE = timedelta(minutes=1)


def with_evidence(base: dict[str, Any], stage: str, evidence: dict[str, Any],
                  related: list[str] | None = None) -> dict[str, Any]:
    base["stage"] = stage
    base["evidence"] = {
        "evidence_json": json.dumps(evidence, sort_keys=True),
        "counts": {k: v for k, v in evidence.items() if isinstance(v, int)},
        "source_ips": evidence.get("source_ips", []), "user_agents": [],
        "sample_request_ids": [], "related_alert_ids": related or [],
    }
    return base


def incident() -> list[dict[str, Any]]:
    discovery = with_evidence(
        alert("graph_enumeration", ATTACKER, T0, T0 + 4 * MINUTE, title="Directory enumeration"),
        "discovery", {"requests": 412, "distinct_templates": 37, "denied_ratio": 0.125,
                      "source_ips": ["203.0.113.7", "203.0.113.9"]})
    exfil = with_evidence(
        alert("storage_exfiltration", ATTACKER, T0 + 30 * MINUTE, T0 + 41 * MINUTE,
              title="Mass file downloads"),
        "exfiltration", {"downloads": 640, "distinct_drives": 18})
    persist = with_evidence(
        alert("app_credential_added", ATTACKER, T0 + 70 * MINUTE, title="Credential added"),
        "persistence", {"target_application": "app-9"})
    chain = with_evidence(
        alert("attack_chain", ATTACKER, T0, T0 + 70 * MINUTE, title="Attack chain on one app",
              severity="critical"),
        "persistence", {"stages": 3},
        related=[persist["alert_id"], discovery["alert_id"], exfil["alert_id"], "gone-id"])
    noise = with_evidence(alert("denied_requests", MONITOR, T0 - 600 * MINUTE,
                                title="Denial burst"), "discovery", {"denied": 120})
    return [chain, noise, persist, exfil, discovery]


def test_incident_lists_stages_in_time_order_with_evidence() -> None:
    text = render_story(incident())
    lines = text.splitlines()
    assert lines[0] == "INCIDENT 1: Attack chain on one app"
    assert f"principal  {ATTACKER} (app_only)" in text
    assert "span       2026-01-02 09:00:00Z -> 2026-01-02 10:10:00Z (1h10m)" in text
    assert "stages     discovery -> exfiltration -> persistence" in text
    order = [text.index(t) for t in ("[DISCOVERY]", "[EXFILTRATION]", "[PERSISTENCE]")]
    assert order == sorted(order)
    assert "denied ratio 0.12" in text and "requests 412" in text
    assert "source IPs 203.0.113.7, 203.0.113.9" in text
    assert "downloads 640" in text
    assert "target application app-9" in text
    assert "(stage alerts not in the input: gone-id)" in text


def test_other_alerts_grouped_by_principal_after_incidents() -> None:
    text = render_story(incident())
    other = text.index("OTHER ALERTS")
    assert text.index(f"principal {MONITOR} (app_only)") > other
    assert text.count("Denial burst") == 1
    assert text.count("Mass file downloads") == 1  # told inside the incident only


def test_plain_text_within_width_and_colour_only_on_request() -> None:
    text = render_story(incident(), width=100)
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "\x1b[1m" in render_story(incident(), colour=True)


def test_no_alerts_and_odd_evidence_do_not_crash() -> None:
    assert render_story([]) == "No alerts.\n"
    odd = alert("new_origin", ATTACKER, T0)
    odd["evidence"] = "not json"
    assert key_evidence(odd) == []
    assert "new_origin" in render_story([odd])


def test_later_alerts_of_the_chained_principal_join_the_incident() -> None:
    alerts = incident()
    later = with_evidence(alert("high_volume_transfer", ATTACKER, T0 + 3 * 60 * MINUTE,
                                title="Transfer after the chain fired"), "exfiltration",
                          {"history_age_seconds": 5400.0})
    earlier = with_evidence(alert("new_origin", ATTACKER, T0 - 5 * 60 * MINUTE,
                                  title="Long before the chain"), "initial_access", {})
    text = render_story([*alerts, later, earlier])
    other = text.index("OTHER ALERTS")
    assert text.index("Transfer after the chain fired") < other
    assert "history age 1h30m" in text
    assert text.index("Long before the chain") > other
    assert text.count("[EXFILTRATION]") == 2  # two runs of exfiltration, persistence between
