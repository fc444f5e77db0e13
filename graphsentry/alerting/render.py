"""Wire dicts for signals and alerts (``schemas/graph_signal.avsc``,
``schemas/graph_alert.avsc``): schema field names, times as timezone-aware UTC datetimes
(Avro ``timestamp-micros``; ISO-8601 strings in JSON, ``graphsentry.alerts``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from detectors.base import AppInfo, DetectorMeta, Signal

# Evidence keys copied into the typed evidence fields (first key present wins).
_LIST_FIELDS = {
    "source_ips": ("source_ips", "ip"),
    "user_agents": ("user_agents", "user_agent"),
    "sample_request_ids": ("sample_request_ids", "request_id"),
    "related_alert_ids": ("related_alert_ids",),
}


def to_datetime(ts: float) -> datetime:
    """Epoch seconds → UTC datetime, rounded to the microsecond (the Avro resolution)."""
    return datetime.fromtimestamp(round(ts * 1_000_000) / 1_000_000, UTC)


def _strings(value: Any) -> list[str]:
    if isinstance(value, Mapping):  # an evidence summary {count, capped, sample}
        value = value.get("sample", [])
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(str(v) for v in value)
    return [str(value)] if value not in (None, "") else []


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str)
    return str(value)


def evidence_record(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Evidence`` record: the full evidence as JSON plus typed common fields."""
    counts = {k: int(v) for k, v in evidence.items()
              if isinstance(v, int) and not isinstance(v, bool)}
    record: dict[str, Any] = {
        "evidence_json": json.dumps(evidence, sort_keys=True, default=json_default),
        "counts": counts,
    }
    for name, keys in _LIST_FIELDS.items():
        record[name] = next((_strings(evidence[k]) for k in keys if k in evidence), [])
    return record


def enrichment_record(app: AppInfo | None, available: bool,
                      asn: int | None = None) -> dict[str, Any]:
    """The ``Enrichment`` record: ``asn`` is the autonomous system of the events when they
    all came from one known AS; ``asn_name`` and ``history_first_seen`` are not filled since
    schema revision 2 (kept, null, for readers of revision 1)."""
    return {
        "available": available, "asn": asn, "asn_name": None,
        "app_first_party": app.first_party if app else None,
        "app_owner_tenant_id": app.owner_tenant_id if app else None,
        "history_first_seen": None,
    }


def signal_record(signal: Signal, meta: DetectorMeta, risk: int,
                  suppressed_by: tuple[str, ...], app: AppInfo | None,
                  available: bool) -> dict[str, Any]:
    """The ``GraphSignal`` dict of one signal emission (revision 1 provisional, 2 final)."""
    who, ctx = signal.who, signal.context
    return {
        "signal_id": signal.signal_id,
        "revision": 2 if signal.final else 1,
        "final": signal.final,
        "detector": signal.detector,
        "title": signal.title or meta.title,
        "severity": signal.severity,
        "fidelity": signal.fidelity,
        "risk_score": risk,
        "tactic": list(meta.tactics),
        "technique": list(meta.techniques),
        "stage": meta.stage,
        "tenant_id": who.tenant_id,
        "app_id": who.app_id,
        "app_display_name": app.display_name if app else None,
        "identity_type": who.identity_type,
        "principal_id": who.principal_id,
        "service_principal_id": who.service_principal_id,
        "user_id": who.user_id,
        "first_seen": to_datetime(signal.first_seen),
        "last_seen": to_datetime(signal.last_seen),
        "window_start": to_datetime(signal.window_start),
        "window_end": to_datetime(signal.window_end),
        "count": signal.count,
        "context": {
            "learning": ctx.learning, "new_network": ctx.new_network,
            "new_client": ctx.new_client, "unusual_hour": ctx.unusual_hour,
            "privilege": ctx.privilege, "first_party_app": ctx.first_party_app,
            "asns": list(ctx.asns),
        },
        "suppressed_by": list(suppressed_by),
        "evidence": evidence_record(signal.evidence),
        "enrichment": enrichment_record(app, available,
                                        ctx.asns[0] if len(ctx.asns) == 1 else None),
    }
