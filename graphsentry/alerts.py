"""Alerts: a detector ``Finding`` plus its metadata and enrichment, in the shape of
``schemas/graph_alert.avsc``.

An alert is a plain dict with the schema's field names; times are timezone-aware UTC datetimes
(Avro ``timestamp-micros``) and ISO-8601 UTC strings in the JSON form. Nothing in an alert depends
on wall-clock time or arrival order beyond the input itself, so replays yield identical alerts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from detectors.base import DetectorMeta, EventContext, Finding
from graphsentry.ingest.timeparse import format_timestamp, parse_timestamp

SCHEMA_NAME = "graph_alert"
TIME_FIELDS = ("first_seen", "last_seen", "window_start", "window_end")
# Evidence keys copied into the typed evidence fields (first key present wins).
_LIST_FIELDS = {
    "source_ips": ("source_ips", "ips", "ip_addresses"),
    "user_agents": ("user_agents", "uas"),
    "sample_request_ids": ("sample_request_ids", "request_ids"),
    "related_alert_ids": ("related_alert_ids", "alert_ids"),
}


def to_datetime(ts: float) -> datetime:
    """Epoch seconds → UTC datetime, rounded to the microsecond (the Avro resolution)."""
    return datetime.fromtimestamp(round(ts * 1_000_000) / 1_000_000, UTC)


def iso(value: datetime) -> str:
    """``2026-01-01T00:00:00.123456Z``: the same form as the records' JSON."""
    return format_timestamp(value)


def _string_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(str(v) for v in value)
    return []


def evidence_record(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Evidence`` record: the full evidence as JSON plus typed common fields."""
    counts = {k: int(v) for k, v in evidence.items()
              if isinstance(v, int) and not isinstance(v, bool)}
    record: dict[str, Any] = {
        "evidence_json": json.dumps(evidence, sort_keys=True, default=_json_default),
        "counts": counts,
    }
    for name, keys in _LIST_FIELDS.items():
        record[name] = next((_string_list(evidence[k]) for k in keys if k in evidence), [])
    return record


def _history_first_seen(history: Any) -> datetime | None:
    first = getattr(history, "first_seen", None)
    if isinstance(first, datetime):
        return first
    if isinstance(first, (int, float)) and first > 0:
        return to_datetime(float(first))
    return None


def alert_from_finding(finding: Finding, meta: DetectorMeta, ctx: EventContext) -> dict[str, Any]:
    """Build the alert dict for ``finding`` of the detector described by ``meta``.

    ``ctx`` is the context of the event that triggered the finding (enrichment, history).
    """
    app = ctx.app
    return {
        "alert_id": finding.alert_id,
        "detector": finding.detector,
        "title": finding.title or meta.title,
        "severity": finding.severity or meta.severity,
        "tactic": list(meta.tactics),
        "technique": list(meta.techniques),
        "stage": meta.stage,
        "tenant_id": finding.tenant_id,
        "app_id": finding.app_id,
        "app_display_name": app.display_name if app else None,
        "identity_type": finding.identity_type,
        "principal_id": finding.principal_id,
        "service_principal_id": finding.service_principal_id,
        "user_id": finding.user_id,
        "first_seen": to_datetime(finding.first_seen),
        "last_seen": to_datetime(finding.last_seen),
        "window_start": to_datetime(finding.window_start),
        "window_end": to_datetime(finding.window_end),
        "evidence": evidence_record(finding.evidence),
        "enrichment": {
            "available": ctx.enrichment_available,
            "asn": ctx.asn,
            "asn_name": ctx.asn_name,
            "app_first_party": app.first_party if app else None,
            "app_owner_tenant_id": app.owner_tenant_id if app else None,
            "history_first_seen": _history_first_seen(ctx.history),
        },
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str)
    return str(value)


def alert_to_json(alert: Mapping[str, Any]) -> str:
    """One line of JSON: the schema's field names, times as ISO-8601 UTC strings."""
    return json.dumps(alert, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def alert_from_json(text: str) -> dict[str, Any]:
    """Inverse of :func:`alert_to_json` (times back to datetimes)."""
    alert: dict[str, Any] = json.loads(text)
    for name in TIME_FIELDS:
        alert[name] = _parse_iso(alert[name])
    first = alert["enrichment"].get("history_first_seen")
    if first is not None:
        alert["enrichment"]["history_first_seen"] = _parse_iso(first)
    return alert


def _parse_iso(text: str) -> datetime:
    return parse_timestamp(text)


def alert_to_avro(alert: Mapping[str, Any]) -> bytes:
    """Unframed Avro (``schemas/graph_alert.avsc``), the value on ``graph.alerts.v1``."""
    from graphsentry import avro

    data: bytes = avro.encode(SCHEMA_NAME, alert)
    return data


def alert_from_avro(data: bytes) -> dict[str, Any]:
    from graphsentry import avro

    alert: dict[str, Any] = avro.decode(SCHEMA_NAME, data)
    return alert


def format_alert(alert: Mapping[str, Any]) -> str:
    """A human one-liner: when (first evidence), severity, detector, who, what."""
    app = alert.get("app_display_name") or alert["app_id"]
    first = alert["first_seen"]
    when = iso(first)[:19] + "Z" if isinstance(first, datetime) else str(first)
    enrichment = alert.get("enrichment") or {}
    asn = f" AS{enrichment['asn']}" if enrichment.get("asn") else ""
    return (f"{when} {str(alert['severity']).upper():8} {alert['detector']:24} "
            f"app={app} principal={alert['principal_id']}{asn} — {alert['title']}")
