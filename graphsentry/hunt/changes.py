"""Successful writes by application: what each app changed (method, resource template, target),
how often, by whom, first and last seen. Writes are records with ``is_write`` (reads sent as POST,
such as search or ``$batch``, are not writes) and a 2xx/3xx status."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphsentry.hunt import TALLY_COLUMNS, Record, Tally, for_app, top_per_app

COLUMNS = ("app_id", "method", "template", "target", "count", *TALLY_COLUMNS)
TARGET_FIELDS = ("target_application", "target_user", "target_drive", "target_site",
                 "target_item")


def target_of(record: Record) -> str | None:
    """The object the write acted on, most specific kind first (application, user, storage)."""
    return next((str(record[f]) for f in TARGET_FIELDS if record.get(f)), None)


def succeeded_write(record: Record) -> bool:
    status = record.get("response_status_code")
    return bool(record.get("is_write")) and isinstance(status, int) and 200 <= status < 400


def hunt_changes(records: Iterable[Record], *, app_id: str | None = None,
                 top: int | None = None) -> list[dict[str, Any]]:
    """One row per (application, method, template, target) of successful writes."""
    groups: dict[tuple[str, str, str, str | None], Tally] = {}
    for record in for_app(records, app_id):
        if not succeeded_write(record):
            continue
        key = (str(record.get("app_id")), str(record.get("request_method")),
               str(record.get("resource_template")), target_of(record))
        groups.setdefault(key, Tally()).add(record)
    rows = [{"app_id": app, "method": method, "template": template, "target": target,
             "count": tally.count, **tally.columns()}
            for (app, method, template, target), tally in groups.items()]
    rows.sort(key=lambda r: (r["app_id"], -r["count"], r["template"], r["target"] or ""))
    return top_per_app(rows, top)
