"""Applications refused by Graph (401/403), by resource family: denied and total requests, the
denied ratio, status split and a sample of the denied URIs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from graphsentry.hunt import TALLY_COLUMNS, Record, Tally, for_app, top_per_app

COLUMNS = ("app_id", "family", "denied", "total", "ratio", "status_401", "status_403",
           "uri_sample", *TALLY_COLUMNS)
URI_SAMPLE = 3


@dataclass(slots=True)
class _Family:
    total: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    uris: set[str] = field(default_factory=set)
    denied: Tally = field(default_factory=Tally)  # who was denied, and when


def hunt_denied(records: Iterable[Record], *, app_id: str | None = None,
                top: int | None = None) -> list[dict[str, Any]]:
    """One row per (application, resource family) with at least one denied request."""
    groups: dict[tuple[str, str], _Family] = {}
    for record in for_app(records, app_id):
        key = (str(record.get("app_id")), str(record.get("resource_family")))
        family = groups.get(key)
        if family is None:
            family = groups[key] = _Family()
        family.total += 1
        status = record.get("response_status_code")
        if status in (401, 403):
            family.by_status[status] = family.by_status.get(status, 0) + 1
            family.uris.add(str(record.get("request_uri")))
            family.denied.add(record)
    rows = []
    for (app, name), family in groups.items():
        if not family.denied.count:
            continue
        rows.append({
            "app_id": app, "family": name, "denied": family.denied.count, "total": family.total,
            "ratio": round(family.denied.count / family.total, 3),
            "status_401": family.by_status.get(401, 0), "status_403": family.by_status.get(403, 0),
            "uri_sample": sorted(family.uris)[:URI_SAMPLE], **family.denied.columns(),
        })
    rows.sort(key=lambda r: (r["app_id"], -r["denied"], -r["ratio"], r["family"]))
    return top_per_app(rows, top)
