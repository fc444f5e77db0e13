"""Labels and alerts for backtest tests: one attack, one benign look-alike, override the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from graphsentry.alerting.book import alert_id

T0 = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
TENANT = "11111111-1111-1111-1111-111111111111"
APP = "22222222-2222-2222-2222-222222222222"
ATTACKER = "33333333-3333-3333-3333-333333333333"
MONITOR = "55555555-5555-5555-5555-555555555555"
STRANGER = "66666666-6666-6666-6666-666666666666"
EXPECTED = ("graph_enumeration", "storage_exfiltration", "app_credential_added", "attack_chain")


def labels_json() -> dict[str, Any]:
    def scenario(name: str, kind: str, principal: str, start: datetime, hours: float,
                 expected: tuple[str, ...]) -> dict[str, Any]:
        return {"name": name, "kind": kind, "tenant_id": TENANT, "app_id": APP,
                "principal_id": principal, "identity_type": "app_only",
                "stages": ["discovery"], "start": start.isoformat(),
                "end": (start + timedelta(hours=hours)).isoformat(),
                "expected_detectors": list(expected)}

    return {"seed": 7, "tenant_id": TENANT, "scenarios": [
        scenario("mi_attack", "attack", ATTACKER, T0, 2, EXPECTED),
        scenario("monitor", "benign", MONITOR, T0 - timedelta(hours=20), 1, ()),
    ]}


def alert(detector: str, principal: str, first: datetime, last: datetime | None = None,
          **overrides: Any) -> dict[str, Any]:
    last = last or first
    body = {
        "alert_id": alert_id(TENANT, principal, detector, first.timestamp()),
        "detector": detector, "title": f"{detector} title", "severity": "high",
        "tenant_id": TENANT, "app_id": APP, "principal_id": principal,
        "identity_type": "app_only", "first_seen": first, "last_seen": last,
        "window_start": first, "window_end": last + timedelta(minutes=10),
    }
    body.update(overrides)
    return body


def signal(detector: str, principal: str, first: datetime, last: datetime | None = None,
           signal_id: str | None = None) -> dict[str, Any]:
    """A signal of the new alert layer's shape."""
    last = last or first
    return {"signal_id": signal_id or alert_id(detector, TENANT, APP, principal,
                                               first.timestamp(), "signal"),
            "detector": detector, "tenant_id": TENANT, "principal_id": principal,
            "app_id": APP, "first_seen": first, "last_seen": last, "severity": "medium"}


def revised(detector: str, principal: str, alert_key: str, revision: int, first: datetime,
            last: datetime, kind: str = "risk",
            signals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One revision of an alert of the new alert layer's shape."""
    return {"alert_id": alert_key, "revision": revision, "detector": detector, "kind": kind,
            "tenant_id": TENANT, "principal_id": principal, "app_id": APP, "severity": "high",
            "first_seen": first, "last_seen": last,
            "signals": [{"signal_id": s["signal_id"], "detector": s["detector"],
                         "first_seen": s["first_seen"], "last_seen": s["last_seen"]}
                        for s in signals or []]}
