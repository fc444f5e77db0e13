"""Alerts and signals on the wire: JSON lines and unframed Avro (``schemas/graph_alert.avsc``,
``schemas/graph_signal.avsc``), and a one-line human form.

Alert and signal dicts are built by ``graphsentry.alerting`` with the schemas' field names;
times are timezone-aware UTC datetimes (Avro ``timestamp-micros``) and ISO-8601 UTC strings in
the JSON form. Nothing in them depends on wall-clock time or arrival order beyond the input
itself (and the ``enrichment.available`` flag), so replays yield identical final versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from graphsentry.alerting.render import evidence_record, to_datetime
from graphsentry.ingest.timeparse import format_timestamp, parse_timestamp

SCHEMA_NAME = "graph_alert"
SIGNAL_SCHEMA = "graph_signal"
TIME_FIELDS = ("first_seen", "last_seen", "window_start", "window_end")
__all__ = ["alert_from_avro", "alert_from_json", "alert_to_avro", "alert_to_json",
           "evidence_record", "format_alert", "iso", "latest_versions", "signal_to_avro",
           "to_datetime"]


def iso(value: datetime) -> str:
    """``2026-01-01T00:00:00.123456Z``: the same form as the records' JSON."""
    return format_timestamp(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str)
    return str(value)


def latest_versions(items: Iterable[Mapping[str, Any]],
                    key: str = "alert_id") -> list[Mapping[str, Any]]:
    """The latest version (highest ``revision``, the later one on a tie) of each alert — or of
    each signal with ``key="signal_id"`` — in a stable order: first evidence, then id."""
    latest: dict[str, Mapping[str, Any]] = {}
    for item in items:
        ident = str(item.get(key))
        known = latest.get(ident)
        if known is None or int(item.get("revision") or 1) >= int(known.get("revision") or 1):
            latest[ident] = item
    return sorted(latest.values(), key=lambda a: (_epoch(a.get("first_seen")), str(a.get(key))))


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_timestamp(value).timestamp()
    return 0.0


def alert_to_json(alert: Mapping[str, Any]) -> str:
    """One line of JSON: the schema's field names, times as ISO-8601 UTC strings."""
    return json.dumps(alert, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def alert_from_json(text: str) -> dict[str, Any]:
    """Inverse of :func:`alert_to_json` (times back to datetimes); also reads signals."""
    alert: dict[str, Any] = json.loads(text)
    for name in TIME_FIELDS:
        alert[name] = _parse_iso(alert[name])
    first = alert["enrichment"].get("history_first_seen")
    if first is not None:
        alert["enrichment"]["history_first_seen"] = _parse_iso(first)
    for ref in alert.get("signals") or ():
        for name in TIME_FIELDS:
            if isinstance(ref.get(name), str):
                ref[name] = _parse_iso(ref[name])
    return alert


def _parse_iso(text: str) -> datetime:
    return parse_timestamp(text)


def alert_to_avro(alert: Mapping[str, Any]) -> bytes:
    """Unframed Avro (``schemas/graph_alert.avsc``), the value on ``graph.alerts.v1``."""
    from graphsentry import avro

    data: bytes = avro.encode(SCHEMA_NAME, alert)
    return data


def signal_to_avro(signal: Mapping[str, Any]) -> bytes:
    """Unframed Avro (``schemas/graph_signal.avsc``), the value on ``graph.signals.v1``."""
    from graphsentry import avro

    data: bytes = avro.encode(SIGNAL_SCHEMA, signal)
    return data


def signal_from_avro(data: bytes) -> dict[str, Any]:
    from graphsentry import avro

    signal: dict[str, Any] = avro.decode(SIGNAL_SCHEMA, data)
    return signal


def alert_from_avro(data: bytes) -> dict[str, Any]:
    from graphsentry import avro

    alert: dict[str, Any] = avro.decode(SCHEMA_NAME, data)
    return alert


def format_alert(alert: Mapping[str, Any]) -> str:
    """A human one-liner: when (first evidence), severity, detector, who, what, and for alerts
    with several signals their count and revision."""
    app = alert.get("app_display_name") or alert["app_id"]
    first = alert["first_seen"]
    when = iso(first)[:19] + "Z" if isinstance(first, datetime) else str(first)
    enrichment = alert.get("enrichment") or {}
    asn = f" AS{enrichment['asn']}" if enrichment.get("asn") else ""
    extra = ""
    if "signal_count" in alert:
        extra = f" [{alert['signal_count']} signal(s), rev {alert.get('revision', 1)}]"
    return (f"{when} {str(alert['severity']).upper():8} {alert['detector']:24} "
            f"app={app} principal={alert['principal_id']}{asn} — {alert['title']}{extra}")
