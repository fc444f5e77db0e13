"""Hunting: pure aggregations over normalized records (``schemas/graph_activity.avsc``).

Each hunt returns display rows (dicts keyed by its ``COLUMNS``), grouped by application and
sorted by the main count, largest first; ``top`` keeps at most that many rows per application.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

Record = Mapping[str, Any]
PRINCIPAL_SAMPLE = 3
TALLY_COLUMNS = ("principals", "principal_sample", "identity_types", "first_seen", "last_seen")


def for_app(records: Iterable[Record], app_id: str | None) -> Iterator[Record]:
    """The records of one application, or all of them for ``None``."""
    if app_id is None:
        yield from records
    else:
        yield from (r for r in records if r.get("app_id") == app_id)


def top_per_app(rows: list[dict[str, Any]], top: int | None) -> list[dict[str, Any]]:
    """At most ``top`` rows per ``app_id`` (rows already sorted by app, best first)."""
    if top is None:
        return rows
    kept: list[dict[str, Any]] = []
    for _app, group in groupby(rows, key=lambda row: row["app_id"]):
        kept.extend(list(group)[:top])
    return kept


@dataclass(slots=True)
class Tally:
    """What every hunt counts per group: requests, who, and when (event time)."""

    count: int = 0
    principals: set[str] = field(default_factory=set)
    identity_types: set[str] = field(default_factory=set)
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def add(self, record: Record) -> None:
        self.count += 1
        self.principals.add(str(record.get("principal_id")))
        self.identity_types.add(str(record.get("identity_type")))
        moment = record.get("time_generated")
        if isinstance(moment, datetime):
            if self.first_seen is None or moment < self.first_seen:
                self.first_seen = moment
            if self.last_seen is None or moment > self.last_seen:
                self.last_seen = moment

    def columns(self) -> dict[str, Any]:
        return {
            "principals": len(self.principals),
            "principal_sample": sorted(self.principals)[:PRINCIPAL_SAMPLE],
            "identity_types": sorted(self.identity_types),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
