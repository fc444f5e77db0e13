"""The compact event every detector reads.

Built once per normalized record (``schemas/graph_activity.avsc``) so that detector state and
cross-worker transfer stay small. Field meanings are those of the schema; ``ts`` is
``time_generated`` as epoch seconds (float, UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DENIED_STATUSES = frozenset({401, 403})


@dataclass(slots=True, unsafe_hash=True)
class GraphEvent:
    """Treat as immutable (detectors never change an event). Not ``frozen``: a frozen
    dataclass sets each of its 28 fields through ``object.__setattr__``, which doubled the
    cost of building one per record; ``unsafe_hash`` keeps it hashable by value."""

    ts: float
    request_id: str
    tenant_id: str
    app_id: str
    principal_id: str
    identity_type: str
    method: str
    uri: str
    template: str
    family: str
    category: str
    status: int
    size: int = 0
    operation_id: str | None = None
    service_principal_id: str | None = None
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    target_user: str | None = None
    target_drive: str | None = None
    target_site: str | None = None
    target_item: str | None = None
    target_application: str | None = None
    is_write: bool = False
    is_download: bool = False
    query_top: int | None = None
    has_search: bool = False
    has_filter: bool = False

    @property
    def denied(self) -> bool:
        return self.status in DENIED_STATUSES

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 400

    @property
    def principal_key(self) -> str:
        """Identifies the accounting unit: one principal inside one app of one tenant."""
        return f"{self.tenant_id}/{self.app_id}/{self.principal_id}"

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GraphEvent:
        """Build from a normalized record (schema field names; time as datetime or epoch µs)."""
        tg = record["time_generated"]
        ts = tg.timestamp() if isinstance(tg, datetime) else float(tg) / 1_000_000
        return cls(
            ts=ts,
            request_id=record["request_id"],
            tenant_id=record["tenant_id"],
            app_id=record["app_id"],
            principal_id=record["principal_id"],
            identity_type=str(record["identity_type"]),
            method=record["request_method"],
            uri=record["request_uri"],
            template=record["resource_template"],
            family=record["resource_family"],
            category=record["resource_category"],
            status=int(record["response_status_code"]),
            size=int(record.get("response_size_bytes") or 0),
            operation_id=record.get("operation_id"),
            service_principal_id=record.get("service_principal_id"),
            user_id=record.get("user_id"),
            ip=record.get("ip_address"),
            user_agent=record.get("user_agent"),
            target_user=record.get("target_user"),
            target_drive=record.get("target_drive"),
            target_site=record.get("target_site"),
            target_item=record.get("target_item"),
            target_application=record.get("target_application"),
            is_write=bool(record.get("is_write")),
            is_download=bool(record.get("is_download")),
            query_top=record.get("query_top"),
            has_search=bool(record.get("has_search")),
            has_filter=bool(record.get("has_filter")),
        )
